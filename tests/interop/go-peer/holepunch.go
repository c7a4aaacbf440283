// DCUtR hole-punch mode of the go-libp2p interop peer:
//
//	go-peer holepunch --listen MA... --relay MA [--dial MA] [--announce MA]... [--wait SECONDS]
//
// A host with TCP and QUIC, the relay client and go-libp2p's EnableHolePunching (the default
// hole-punching service, whose events are traced to stdout). It connects to the relay (which
// then observes its NAT's address) and either reserves there and prints
// {"addrs": ["<relay>/p2p-circuit/p2p/<id>"]} (no --dial), or dials --dial through the relay
// and prints {"relayed": ..., "limited": true}. Hole-punch outcomes are JSON lines
// {"hole_punch": "succeeded"|"failed", ...} (the end of each go-libp2p attempt); a line
// "ping" on stdin pings the peer and prints {"ping": seconds, "limited": bool, "addr": ...}.
// --announce adds addresses to the ones the host advertises (and offers in CONNECT).
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// punchTracer prints the end of every hole-punch attempt and every direct dial.
type punchTracer struct {
	mu      sync.Mutex
	start   time.Time
	attempt int
}

func (t *punchTracer) Trace(evt *holepunch.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch e := evt.Evt.(type) {
	case *holepunch.HolePunchAttemptEvt:
		t.attempt = e.Attempt
	case *holepunch.EndHolePunchEvt:
		outcome := "failed"
		if e.Success {
			outcome = "succeeded"
		}
		_ = emit(map[string]any{
			"hole_punch": outcome, "peer": evt.Remote.String(), "attempt": t.attempt,
			"seconds": time.Since(t.start).Seconds(), "error": e.Error,
		})
	case *holepunch.DirectDialEvt:
		if e.Success {
			_ = emit(map[string]any{"hole_punch": "succeeded", "peer": evt.Remote.String(),
				"direct_dial": true, "seconds": time.Since(t.start).Seconds()})
		}
	case *holepunch.ProtocolErrorEvt:
		_ = emit(map[string]any{"hole_punch_error": e.Error, "peer": evt.Remote.String()})
	}
}

func runHolePunch(args []string) error {
	var listen, announce []string
	relayAddr, dialAddr := "", ""
	for i := 0; i < len(args); i++ {
		if i+1 >= len(args) {
			usage("holepunch: " + strconv.Quote(args[i]) + " needs a value")
		}
		switch args[i] {
		case "--listen":
			listen = append(listen, args[i+1])
		case "--announce":
			announce = append(announce, args[i+1])
		case "--relay":
			relayAddr = args[i+1]
		case "--dial":
			dialAddr = args[i+1]
		case "--wait": // accepted for symmetry with the Python dialer; events are streamed
		default:
			usage("holepunch: unexpected argument " + strconv.Quote(args[i]))
		}
		i++
	}
	if relayAddr == "" || len(listen) == 0 {
		usage("holepunch needs --listen and --relay")
	}
	relayInfo, err := peer.AddrInfoFromString(relayAddr)
	if err != nil {
		return fmt.Errorf("relay %q: %w", relayAddr, err)
	}
	var extra []ma.Multiaddr
	for _, a := range announce {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return fmt.Errorf("announce %q: %w", a, err)
		}
		extra = append(extra, m)
	}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return err
	}
	tracer := &punchTracer{start: time.Now()}
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
		securityOption(),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableMetrics(),
		libp2p.Ping(true),
		libp2p.UserAgent(agentVersion()),
		libp2p.ListenAddrStrings(listen...),
		libp2p.EnableRelay(),
		libp2p.EnableHolePunching(holepunch.WithTracer(tracer)),
		libp2p.AddrsFactory(func(addrs []ma.Multiaddr) []ma.Multiaddr {
			return append(addrs, extra...)
		}),
	)
	if err != nil {
		return err
	}
	defer h.Close()
	h.SetStreamHandler(echoProtocol, handleEcho)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.Connect(ctx, *relayInfo); err != nil {
		return fmt.Errorf("connect to relay: %w", err)
	}
	var target peer.ID
	if dialAddr == "" {
		if _, err := client.Reserve(ctx, h, *relayInfo); err != nil {
			return fmt.Errorf("reserve: %w", err)
		}
		// Give identify with the relay a moment: our observed address comes with it.
		time.Sleep(500 * time.Millisecond)
		if err := emit(map[string]any{"peer_id": h.ID().String(),
			"addrs": []string{relayAddr + "/p2p-circuit/p2p/" + h.ID().String()}}); err != nil {
			return err
		}
	} else {
		info, err := peer.AddrInfoFromString(dialAddr)
		if err != nil {
			return fmt.Errorf("dial %q: %w", dialAddr, err)
		}
		time.Sleep(500 * time.Millisecond) // identify with the relay first (observed address)
		tracer.mu.Lock()
		tracer.start = time.Now()
		tracer.mu.Unlock()
		dctx := network.WithAllowLimitedConn(ctx, "hole punch interop")
		if err := h.Connect(dctx, *info); err != nil {
			return fmt.Errorf("dial through the relay: %w", err)
		}
		target = info.ID
		limited := false
		for _, c := range h.Network().ConnsToPeer(target) {
			limited = limited || c.Stat().Limited
		}
		if err := emit(map[string]any{"relayed": dialAddr, "limited": limited}); err != nil {
			return err
		}
	}
	scanner := bufio.NewScanner(os.Stdin)
	for scanner.Scan() {
		if scanner.Text() != "ping" {
			continue
		}
		p := target
		if p == "" { // the listener pings whoever reached it last
			for _, c := range h.Network().Conns() {
				if c.RemotePeer() != relayInfo.ID {
					p = c.RemotePeer()
				}
			}
		}
		pctx, pcancel := context.WithTimeout(network.WithAllowLimitedConn(context.Background(), "ping"), 20*time.Second)
		res := <-ping.Ping(pctx, h, p)
		pcancel()
		if res.Error != nil {
			_ = emit(map[string]any{"ping": nil, "error": res.Error.Error()})
			continue
		}
		limited, addr := true, ""
		for _, c := range h.Network().ConnsToPeer(p) {
			if !c.Stat().Limited {
				limited, addr = false, c.RemoteMultiaddr().String()
				break
			}
			addr = c.RemoteMultiaddr().String()
		}
		_ = emit(map[string]any{"ping": res.RTT.Seconds(), "limited": limited, "addr": addr})
	}
	return nil
}
