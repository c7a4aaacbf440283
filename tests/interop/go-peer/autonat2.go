package main

// AutoNAT v2 (/libp2p/autonat/2/dial-request, /dial-back) for the interop tests, with
// go-libp2p's autonatv2 package (its dial-backs come from a second host with its own key):
//
//	go-peer autonat2-serve [--listen MA] [--public-only]
//	    serves AutoNAT v2; prints LISTENING <ma>/p2p/<id>, then runs until stdin closes.
//	go-peer autonat2-check SERVER_MA [--listen MA] [--addr MA]... [--public-only]
//	    connects to SERVER_MA, waits until identify shows it serves AutoNAT v2, asks it once
//	    to check --addr (default: our first listen address), sending dial data if asked;
//	    prints {"autonat2_reachability": "Public"|"Private"|"Unknown", "addr": ..., ...}.
//
// Both allow private (loopback, LAN) addresses unless --public-only (autonatv2.AllowPrivateAddrs).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	ma "github.com/multiformats/go-multiaddr"
)

func newAutonat2(h host.Host, publicOnly bool) (*autonatv2.AutoNAT, host.Host, error) {
	dialer, err := newHost(nil)
	if err != nil {
		return nil, nil, err
	}
	var opts []autonatv2.AutoNATOption
	if !publicOnly {
		opts = append(opts, autonatv2.AllowPrivateAddrs)
	}
	an, err := autonatv2.New(dialer, opts...)
	if err != nil {
		dialer.Close()
		return nil, nil, err
	}
	if err := an.Start(h); err != nil {
		dialer.Close()
		return nil, nil, err
	}
	return an, dialer, nil
}

func runAutonat2Serve(args []string) error {
	listen := defaultListen
	publicOnly := false
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--listen" && i+1 < len(args):
			i++
			listen = args[i]
		case args[i] == "--public-only":
			publicOnly = true
		default:
			usage("autonat2-serve: unexpected argument " + strconv.Quote(args[i]))
		}
	}
	h, err := newHost([]string{listen})
	if err != nil {
		return err
	}
	defer h.Close()
	an, dialer, err := newAutonat2(h, publicOnly)
	if err != nil {
		return err
	}
	defer dialer.Close()
	defer an.Close()
	fmt.Printf("LISTENING %s/p2p/%s\n", h.Addrs()[0], h.ID())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

func runAutonat2Check(args []string) error {
	if len(args) < 1 {
		usage("autonat2-check needs the server's multiaddr")
	}
	target := args[0]
	listen := defaultListen
	publicOnly := false
	var addrs []ma.Multiaddr
	for i := 1; i < len(args); i++ {
		switch {
		case args[i] == "--listen" && i+1 < len(args):
			i++
			listen = args[i]
		case args[i] == "--addr" && i+1 < len(args):
			i++
			a, err := ma.NewMultiaddr(args[i])
			if err != nil {
				return err
			}
			addrs = append(addrs, a)
		case args[i] == "--public-only":
			publicOnly = true
		default:
			usage("autonat2-check: unexpected argument " + strconv.Quote(args[i]))
		}
	}
	h, err := newHost([]string{listen})
	if err != nil {
		return err
	}
	defer h.Close()
	an, dialer, err := newAutonat2(h, publicOnly)
	if err != nil {
		return err
	}
	defer dialer.Close()
	defer an.Close()
	if len(addrs) == 0 {
		addrs = h.Addrs()[:1]
	}
	info, err := peer.AddrInfoFromString(target)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.Connect(ctx, *info); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	reqs := make([]autonatv2.Request, 0, len(addrs))
	for _, a := range addrs {
		reqs = append(reqs, autonatv2.Request{Addr: a, SendDialData: true})
	}
	for {
		res, err := an.GetReachability(ctx, reqs)
		if errors.Is(err, autonatv2.ErrNoPeers) {
			// identify has not told us yet that the server speaks AutoNAT v2
			select {
			case <-ctx.Done():
				return fmt.Errorf("the server never showed up as an AutoNAT v2 server")
			case <-time.After(100 * time.Millisecond):
				continue
			}
		}
		if err != nil {
			return err
		}
		addr := ""
		if res.Addr != nil {
			addr = res.Addr.String()
		}
		line, _ := json.Marshal(map[string]any{
			"autonat2_reachability": res.Reachability.String(),
			"addr":                  addr,
			"idx":                   res.Idx,
			"all_refused":           res.AllAddrsRefused,
		})
		fmt.Println(string(line))
		return nil
	}
}
