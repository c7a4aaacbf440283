package main

// go-peer mdns [--listen MULTIADDR] [--no-connect]
//
// Starts go-libp2p's mDNS discovery (p2p/discovery/mdns, service "_p2p._udp") on a host
// listening on MULTIADDR (default /ip4/0.0.0.0/tcp/0), prints `LISTENING <addr>/p2p/<id>`
// (its first non-loopback address), then one JSON line per peer found:
// {"found": ID, "addrs": [...]}, and, unless --no-connect, {"connected": ID} or
// {"connect_error": ID, "error": "..."} after dialing it. Runs until stdin closes.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	manet "github.com/multiformats/go-multiaddr/net"
)

type mdnsNotifee struct {
	h       host.Host
	connect bool
	mu      sync.Mutex
	out     *json.Encoder
}

func (n *mdnsNotifee) say(v map[string]any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	_ = n.out.Encode(v)
}

func (n *mdnsNotifee) HandlePeerFound(info peer.AddrInfo) {
	addrs := make([]string, 0, len(info.Addrs))
	for _, a := range info.Addrs {
		addrs = append(addrs, a.String())
	}
	n.say(map[string]any{"found": info.ID.String(), "addrs": addrs})
	if !n.connect {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := n.h.Connect(ctx, info); err != nil {
		n.say(map[string]any{"connect_error": info.ID.String(), "error": err.Error()})
		return
	}
	n.say(map[string]any{"connected": info.ID.String()})
}

func runMdns(args []string) error {
	listen := "/ip4/0.0.0.0/tcp/0"
	connect := true
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--listen" && i+1 < len(args):
			i++
			listen = args[i]
		case args[i] == "--no-connect":
			connect = false
		default:
			usage("unexpected argument " + strconv.Quote(args[i]))
		}
	}
	h, err := newHost([]string{listen})
	if err != nil {
		return err
	}
	defer h.Close()
	shown := ""
	for _, a := range h.Addrs() {
		if !manet.IsIPLoopback(a) {
			shown = a.String()
			break
		}
	}
	if shown == "" && len(h.Addrs()) > 0 {
		shown = h.Addrs()[0].String()
	}
	fmt.Printf("LISTENING %s/p2p/%s\n", shown, h.ID())
	n := &mdnsNotifee{h: h, connect: connect, out: json.NewEncoder(os.Stdout)}
	svc := mdns.NewMdnsService(h, mdns.ServiceName, n)
	if err := svc.Start(); err != nil {
		return err
	}
	defer svc.Close()
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}
