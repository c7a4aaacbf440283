// Circuit Relay v2 modes of the go-libp2p interop peer:
//
//	go-peer relay-serve [--listen MA]
//	    a relay (go-libp2p's circuitv2 relay, default resources and limits, loopback addresses
//	    allowed in reservations); prints LISTENING <addr>/p2p/<id>
//	go-peer relay-listen --relay MA
//	    reserves on the relay MA (.../p2p/<relay>) and prints
//	    LISTENING MA/p2p-circuit/p2p/<id>; serves ping and /echo/1.0.0 over relayed connections
//	go-peer relay-dial MA [--ping] [--echo-bytes N] [--timeout SECONDS]
//	    dials a /p2p-circuit address and prints JSON lines ({"limited": true} first)
//
// Each serving mode runs until stdin closes or a signal arrives.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// newRelayCapableHost is newHost (TCP only) with, when relayClient is set, the circuit relay
// transport enabled (go-libp2p's default, which newHost turns off), so the host dials and
// accepts /p2p-circuit connections.
func newRelayCapableHost(listen []string, relayClient bool) (host.Host, error) {
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.Transport(tcp.NewTCPTransport),
		securityOption(),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableMetrics(),
		libp2p.Ping(true),
		libp2p.UserAgent(agentVersion()),
		libp2p.ProtocolVersion("ipfs/0.1.0"),
	}
	if relayClient {
		opts = append(opts, libp2p.EnableRelay())
	} else {
		opts = append(opts, libp2p.DisableRelay())
	}
	if len(listen) == 0 {
		opts = append(opts, libp2p.NoListenAddrs)
	} else {
		opts = append(opts, libp2p.ListenAddrStrings(listen...))
	}
	return libp2p.New(opts...)
}

func waitForStop() {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-done:
	case <-sigs:
	}
}

func runRelayServe(args []string) error {
	listen := defaultListen
	for i := 0; i < len(args); i++ {
		if args[i] == "--listen" && i+1 < len(args) {
			i++
			listen = args[i]
			continue
		}
		usage("relay-serve: unexpected argument " + strconv.Quote(args[i]))
	}
	h, err := newRelayCapableHost([]string{listen}, false)
	if err != nil {
		return err
	}
	defer h.Close()
	// Loopback addresses go into reservations too (the default keeps public ones only).
	r, err := relayv2.New(h, relayv2.WithReservationAddressFilter(func(ma.Multiaddr) bool { return true }))
	if err != nil {
		return err
	}
	defer r.Close()
	addrs := h.Network().ListenAddresses()
	if len(addrs) == 0 {
		return errors.New("no listen address")
	}
	fmt.Printf("LISTENING %s/p2p/%s\n", addrs[0], h.ID())
	waitForStop()
	return nil
}

func runRelayListen(args []string) error {
	relayAddr := ""
	for i := 0; i < len(args); i++ {
		if args[i] == "--relay" && i+1 < len(args) {
			i++
			relayAddr = args[i]
			continue
		}
		usage("relay-listen: unexpected argument " + strconv.Quote(args[i]))
	}
	if relayAddr == "" {
		usage("relay-listen needs --relay MULTIADDR")
	}
	target, err := ma.NewMultiaddr(relayAddr)
	if err != nil {
		return fmt.Errorf("bad relay multiaddr %q: %w", relayAddr, err)
	}
	info, err := peer.AddrInfoFromP2pAddr(target)
	if err != nil {
		return fmt.Errorf("relay multiaddr %q needs /p2p/<id>: %w", relayAddr, err)
	}
	h, err := newRelayCapableHost(nil, true)
	if err != nil {
		return err
	}
	defer h.Close()
	h.SetStreamHandler(echoProtocol, handleEcho)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.Connect(ctx, *info); err != nil {
		return fmt.Errorf("connect to relay: %w", err)
	}
	rsvp, err := client.Reserve(ctx, h, *info)
	if err != nil {
		return fmt.Errorf("reserve: %w", err)
	}
	fmt.Fprintf(os.Stderr, "go-peer: reserved until %s (limit %+v)\n", rsvp.Expiration, rsvp.LimitDuration)
	fmt.Printf("LISTENING %s/p2p-circuit/p2p/%s\n", relayAddr, h.ID())
	waitForStop()
	return nil
}

func runRelayDial(args []string) error {
	opts := parseDial(args)
	ctx, cancel := context.WithTimeout(context.Background(), opts.timeout)
	defer cancel()
	// Streams over a limited (relayed) connection must be asked for explicitly in go-libp2p.
	ctx = network.WithAllowLimitedConn(ctx, "relay interop")
	target, err := ma.NewMultiaddr(opts.addr)
	if err != nil {
		return fmt.Errorf("bad multiaddr %q: %w", opts.addr, err)
	}
	info, err := peer.AddrInfoFromP2pAddr(target)
	if err != nil {
		return fmt.Errorf("multiaddr %q needs /p2p/<peer id>: %w", opts.addr, err)
	}
	h, err := newRelayCapableHost(nil, true)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.Connect(ctx, *info); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	limited := false
	for _, c := range h.Network().ConnsToPeer(info.ID) {
		limited = limited || c.Stat().Limited
	}
	if err := emit(map[string]any{"limited": limited}); err != nil {
		return err
	}
	if opts.ping {
		rtt, err := doPing(ctx, h, info.ID)
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
		if err := emit(map[string]any{"ping_rtt_ms": float64(rtt) / float64(time.Millisecond)}); err != nil {
			return err
		}
	}
	if opts.echoBytes >= 0 {
		ok, err := doEcho(ctx, h, info.ID, opts.echoBytes)
		if err != nil {
			return fmt.Errorf("echo: %w", err)
		}
		if err := emit(map[string]any{"echo_bytes": opts.echoBytes, "ok": ok}); err != nil {
			return err
		}
		if !ok {
			return errors.New("echo: the bytes read back differ from the bytes sent")
		}
	}
	return nil
}
