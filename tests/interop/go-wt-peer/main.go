// Command go-wt-peer is the go-libp2p WebTransport interop peer for rapidp2p's tests.
//
// It is a separate module from ../go-peer on purpose: it pins go-libp2p v0.48.0, whose
// webtransport-go (v0.10.0) asks its own QUIC stack for RESET_STREAM_AT but never requires
// the peer to support it. Newer webtransport-go (v0.13.0, in go-libp2p v0.52.0 of
// ../go-peer) refuses a server whose QUIC transport parameters lack RESET_STREAM_AT, which
// quinn-proto 0.11 (rapidp2p's QUIC) does not offer. CLI (the contract of ../peers.py):
//
//	go-wt-peer listen [--listen MULTIADDR]   prints LISTENING <ma>/p2p/<id>; serves ping and
//	                                         /echo/1.0.0 until stdin closes
//	go-wt-peer dial MULTIADDR [--ping] [--echo-bytes N] [--timeout SECONDS]
//	                                         one JSON object a line; exit 0 only when all passed
//
// Only the WebTransport transport is enabled, so every connection is a WebTransport one.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	webtransport "github.com/libp2p/go-libp2p/p2p/transport/webtransport"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	echoProtocol  = protocol.ID("/echo/1.0.0")
	defaultListen = "/ip4/127.0.0.1/udp/0/quic-v1/webtransport"
)

func emit(v any) error {
	return json.NewEncoder(os.Stdout).Encode(v)
}

func echo(s network.Stream) {
	defer s.Close()
	_, _ = io.Copy(s, s)
}

func newHost(listen string) (host.Host, error) {
	opts := []libp2p.Option{libp2p.Transport(webtransport.New)}
	if listen == "" {
		opts = append(opts, libp2p.NoListenAddrs)
	} else {
		opts = append(opts, libp2p.ListenAddrStrings(listen))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, err
	}
	h.SetStreamHandler(echoProtocol, echo)
	return h, nil
}

func runListen(args []string) error {
	listen := defaultListen
	for i := 0; i < len(args); i++ {
		if args[i] == "--listen" && i+1 < len(args) {
			listen = args[i+1]
			i++
		} else {
			return fmt.Errorf("unknown listen argument %q", args[i])
		}
	}
	h, err := newHost(listen)
	if err != nil {
		return err
	}
	defer h.Close()
	addrs := h.Addrs()
	if len(addrs) == 0 {
		return errors.New("no listen address")
	}
	if _, err := fmt.Printf("LISTENING %s/p2p/%s\n", addrs[0], h.ID()); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // until the test closes our stdin
	return nil
}

func doEcho(ctx context.Context, h host.Host, id peer.ID, n int) (bool, error) {
	s, err := h.NewStream(ctx, id, echoProtocol)
	if err != nil {
		return false, err
	}
	defer s.Close()
	data := make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		return false, err
	}
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(data)
		if err == nil {
			err = s.CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(s)
	if err != nil {
		return false, err
	}
	if err := <-werr; err != nil {
		return false, err
	}
	return bytes.Equal(got, data), nil
}

func runDial(args []string) error {
	if len(args) < 1 {
		return errors.New("dial needs a multiaddr")
	}
	doPing, echoBytes, timeout := false, -1, 60*time.Second
	for i := 1; i < len(args); i++ {
		switch {
		case args[i] == "--ping":
			doPing = true
		case args[i] == "--echo-bytes" && i+1 < len(args):
			n, err := strconv.Atoi(args[i+1])
			if err != nil {
				return err
			}
			echoBytes = n
			i++
		case args[i] == "--timeout" && i+1 < len(args):
			s, err := strconv.ParseFloat(args[i+1], 64)
			if err != nil {
				return err
			}
			timeout = time.Duration(s * float64(time.Second))
			i++
		default:
			return fmt.Errorf("unknown dial argument %q", args[i])
		}
	}
	target, err := ma.NewMultiaddr(args[0])
	if err != nil {
		return fmt.Errorf("bad multiaddr %q: %w", args[0], err)
	}
	info, err := peer.AddrInfoFromP2pAddr(target)
	if err != nil {
		return fmt.Errorf("multiaddr %q needs /p2p/<peer id>: %w", args[0], err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	h, err := newHost("")
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.Connect(ctx, *info); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	conns := h.Network().ConnsToPeer(info.ID)
	if len(conns) == 0 {
		return errors.New("connect: no connection")
	}
	if err := emit(map[string]any{"connected": map[string]any{
		"remote_peer": info.ID.String(),
		"remote_addr": conns[0].RemoteMultiaddr().String(),
		"local_peer":  h.ID().String(),
		"transport":   conns[0].ConnState().Transport,
	}}); err != nil {
		return err
	}
	if doPing {
		res := <-ping.Ping(ctx, h, info.ID)
		if res.Error != nil {
			return fmt.Errorf("ping: %w", res.Error)
		}
		if err := emit(map[string]any{"ping_rtt_ms": float64(res.RTT) / float64(time.Millisecond)}); err != nil {
			return err
		}
	}
	if echoBytes >= 0 {
		ok, err := doEcho(ctx, h, info.ID, echoBytes)
		if err != nil {
			return fmt.Errorf("echo: %w", err)
		}
		if err := emit(map[string]any{"echo_bytes": echoBytes, "ok": ok}); err != nil {
			return err
		}
		if !ok {
			return errors.New("echo: the bytes read back differ from the bytes sent")
		}
	}
	return nil
}

func main() {
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "listen":
		err = runListen(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "dial":
		err = runDial(os.Args[2:])
	default:
		err = errors.New("usage: go-wt-peer listen [--listen MA] | dial MA [--ping] [--echo-bytes N]")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-wt-peer:", err)
		os.Exit(1)
	}
}
