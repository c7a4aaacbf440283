// Command go-peer is the go-libp2p interop peer for rapidp2p's tests.
//
// It speaks TCP + Noise (or TLS / plaintext with --security) + yamux only, on loopback, with a fresh Ed25519 identity, and serves
// ping, identify and /echo/1.0.0. CLI (see tests/interop/peers.py):
//
//	go-peer listen [--listen MULTIADDR] [--dht server|client [--bootstrap MULTIADDR]...]
//	go-peer dial MULTIADDR [--ping] [--identify] [--echo-bytes N] [--timeout SECONDS]
//	go-peer perf ... (perf.go)
//	go-peer dht OP KEY [VALUE] --bootstrap MULTIADDR... (dht.go)
//	go-peer pubsub --topic T [--listen MA] [--connect MA]... [--publish MSG]... (pubsub.go)
//	go-peer bench-worker (JSON lines on stdin: GossipSub / Kademlia benchmark nodes, bench_worker.go)
//	go-peer mdns [--listen MULTIADDR] [--no-connect] (mdns.go)
//	go-peer http-serve | http-get | http-post | http-wellknown ... (http.go)
//	go-peer http-auth-serve | http-auth-request ... (http_auth.go)
//	go-peer relay-serve | relay-listen | relay-dial ... (relay.go)
//	go-peer holepunch --listen MA... --relay MA [--dial MA] ... (holepunch.go)
//	go-peer autonat-serve | autonat-probe ... (autonat.go)
//	go-peer autonat2-serve | autonat2-check ... (autonat2.go)
//
// `--security noise|tls|plaintext` may follow any command: the one security protocol offered.
// --swarm-key FILE (any command) joins the private network of that key file (pnet.go).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	identify "github.com/libp2p/go-libp2p/p2p/protocol/identify"
	identifypb "github.com/libp2p/go-libp2p/p2p/protocol/identify/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/insecure"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-msgio/pbio"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	echoProtocol   = protocol.ID("/echo/1.0.0")
	defaultListen  = "/ip4/127.0.0.1/tcp/0"
	maxIdentifyMsg = 64 << 10
)

// security: the one security protocol offered: "noise" (default), "tls" or "plaintext"
// (`/plaintext/2.0.0`, for the plaintext interop test only).
var security = "noise"

// takeSecurity removes `--security noise|tls|plaintext` from os.Args and records the choice.
func takeSecurity() {
	for i, a := range os.Args {
		if a != "--security" {
			continue
		}
		if i+1 >= len(os.Args) || (os.Args[i+1] != "tls" && os.Args[i+1] != "noise" &&
			os.Args[i+1] != "plaintext") {
			usage("--security needs noise, tls or plaintext")
		}
		security = os.Args[i+1]
		os.Args = append(os.Args[:i:i], os.Args[i+2:]...)
		return
	}
}

// securityOption is the one security transport a host offers.
func securityOption() libp2p.Option {
	switch security {
	case "tls":
		return libp2p.Security(libp2ptls.ID, libp2ptls.New)
	case "plaintext":
		return libp2p.Security(insecure.ID, insecure.NewWithIdentity)
	}
	return libp2p.Security(noise.ID, noise.New)
}

func main() {
	takeSecurity()
	if len(os.Args) < 2 {
		usage("missing command")
	}
	args, err := takeSwarmKey(os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-peer:", err)
		os.Exit(1)
	}
	os.Args = append(os.Args[:2], args...)
	switch os.Args[1] {
	case "listen":
		err = runListen(os.Args[2:])
	case "dial":
		err = runDial(os.Args[2:])
	case "perf":
		err = runPerf(os.Args[2:])
	case "dht":
		err = runDHT(os.Args[2:])
	case "pubsub":
		err = runPubsub(os.Args[2:])
	case "bench-worker":
		err = runBenchWorker()
	case "mdns":
		err = runMdns(os.Args[2:])
	case "http-serve":
		err = runHTTPServe(os.Args[2:])
	case "http-get":
		err = runHTTPClient("GET", os.Args[2:])
	case "http-post":
		err = runHTTPClient("POST", os.Args[2:])
	case "http-wellknown":
		err = runHTTPClient("WELLKNOWN", os.Args[2:])
	case "http-auth-serve":
		err = runHTTPAuthServe(os.Args[2:])
	case "http-auth-request":
		err = runHTTPAuthRequest(os.Args[2:])
	case "relay-serve":
		err = runRelayServe(os.Args[2:])
	case "relay-listen":
		err = runRelayListen(os.Args[2:])
	case "relay-dial":
		err = runRelayDial(os.Args[2:])
	case "holepunch":
		err = runHolePunch(os.Args[2:])
	case "autonat-serve":
		err = runAutonatServe(os.Args[2:])
	case "autonat-probe":
		err = runAutonatProbe(os.Args[2:])
	case "autonat2-serve":
		err = runAutonat2Serve(os.Args[2:])
	case "autonat2-check":
		err = runAutonat2Check(os.Args[2:])
	default:
		usage("unknown command " + strconv.Quote(os.Args[1]))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-peer:", err)
		os.Exit(1)
	}
}

func usage(msg string) {
	fmt.Fprintf(os.Stderr, "go-peer: %s\nusage: go-peer listen [--listen MULTIADDR]\n"+
		"       go-peer dial MULTIADDR [--ping] [--identify] [--echo-bytes N] [--timeout SECONDS]\n"+
		"       go-peer perf ... (go-peer perf --help)\n"+
		"       go-peer dht OP KEY [VALUE] --bootstrap MULTIADDR... (go-peer dht --help)\n"+
		"       go-peer pubsub --topic T ... (go-peer pubsub --help)\n"+
		"       go-peer http-serve | http-get | http-post | http-wellknown ... (http.go)\n"+
		"       go-peer http-auth-serve | http-auth-request ... (http_auth.go)\n", msg)
	os.Exit(2)
}

func agentVersion() string {
	version := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/libp2p/go-libp2p" {
				version = dep.Version
			}
		}
	}
	return "rapidp2p-interop-go-peer/go-libp2p@" + version
}

// extraHostOptions are appended to every host newHost builds (a command's own features).
var extraHostOptions []libp2p.Option

// newHost builds a host restricted to TCP and WebSocket (/ws, /wss: wss.go) + Noise (or TLS) + yamux,
// and QUIC v1, with no NAT, relay or discovery.
func newHost(listen []string) (host.Host, error) {
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, err
	}
	ws, err := websocketTransport()
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.Transport(tcp.NewTCPTransport),
		ws,
		securityOption(),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.Ping(true),
		libp2p.UserAgent(agentVersion()),
		libp2p.ProtocolVersion("ipfs/0.1.0"),
	}
	opts = append(opts, pnetOptions()...)
	if swarmKey == nil { // QUIC encrypts below libp2p: it cannot carry a private network's PSK
		opts = append(opts, libp2p.Transport(libp2pquic.NewTransport))
	}
	opts = append(opts, extraHostOptions...)
	if len(listen) == 0 {
		opts = append(opts, libp2p.NoListenAddrs)
	} else {
		opts = append(opts, libp2p.ListenAddrStrings(listen...))
	}
	return libp2p.New(opts...)
}

func runListen(args []string) error {
	listen := defaultListen
	dhtMode := ""
	var bootstrap []string
	for i := 0; i < len(args); i++ {
		switch {
		case (args[i] == "--listen" || args[i] == "--dht" || args[i] == "--bootstrap") && i+1 < len(args):
			i++
			switch args[i-1] {
			case "--listen":
				listen = args[i]
			case "--dht":
				dhtMode = args[i]
			default:
				bootstrap = append(bootstrap, args[i])
			}
		case len(args[i]) > 9 && args[i][:9] == "--listen=":
			listen = args[i][9:]
		default:
			usage("unexpected argument " + strconv.Quote(args[i]))
		}
	}
	if len(bootstrap) > 0 && dhtMode == "" {
		usage("--bootstrap needs --dht server|client")
	}
	h, err := newHost([]string{listen})
	if err != nil {
		return err
	}
	defer h.Close()
	h.SetStreamHandler(echoProtocol, handleEcho)
	if dhtMode != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		d, err := startDHT(ctx, h, dhtMode, bootstrap)
		cancel()
		if err != nil {
			return err
		}
		defer d.Close()
	}

	addrs := h.Network().ListenAddresses()
	if len(addrs) == 0 {
		return errors.New("no listen address")
	}
	p2p, err := ma.NewMultiaddr("/p2p/" + h.ID().String())
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(os.Stdout, "LISTENING %s\n", addrs[0].Encapsulate(p2p)); err != nil {
		return err
	}

	// Serve until a signal arrives or stdin closes (the test harness' polite stop).
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
	return nil
}

// handleEcho copies every byte back until EOF, then closes its write side.
func handleEcho(s network.Stream) {
	defer s.Close()
	if _, err := io.Copy(s, s); err != nil {
		fmt.Fprintln(os.Stderr, "go-peer: echo:", err)
		_ = s.Reset()
		return
	}
	_ = s.CloseWrite()
}

type dialOptions struct {
	addr      string
	ping      bool
	identify  bool
	echoBytes int64
	timeout   time.Duration
}

func parseDial(args []string) dialOptions {
	opts := dialOptions{echoBytes: -1, timeout: 60 * time.Second}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch arg {
		case "--ping":
			opts.ping = true
		case "--identify":
			opts.identify = true
		case "--echo-bytes", "--timeout":
			if i+1 >= len(args) {
				usage(arg + " needs a value")
			}
			i++
			value, err := strconv.ParseFloat(args[i], 64)
			if err != nil || value < 0 {
				usage("bad value for " + arg + ": " + strconv.Quote(args[i]))
			}
			if arg == "--echo-bytes" {
				opts.echoBytes = int64(value)
			} else {
				opts.timeout = time.Duration(value * float64(time.Second))
			}
		default:
			if opts.addr != "" || (len(arg) > 1 && arg[0] == '-') {
				usage("unexpected argument " + strconv.Quote(arg))
			}
			opts.addr = arg
		}
	}
	if opts.addr == "" {
		usage("dial needs a MULTIADDR")
	}
	return opts
}

func emit(v any) error {
	return json.NewEncoder(os.Stdout).Encode(v)
}

func runDial(args []string) error {
	opts := parseDial(args)
	ctx, cancel := context.WithTimeout(context.Background(), opts.timeout)
	defer cancel()

	target, err := ma.NewMultiaddr(opts.addr)
	if err != nil {
		return fmt.Errorf("bad multiaddr %q: %w", opts.addr, err)
	}
	info, err := peer.AddrInfoFromP2pAddr(target)
	if err != nil {
		return fmt.Errorf("multiaddr %q needs /p2p/<peer id>: %w", opts.addr, err)
	}
	h, err := newHost(nil)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.Connect(ctx, *info); err != nil {
		return fmt.Errorf("connect: %w", err)
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
	if opts.identify {
		result, err := doIdentify(ctx, h, info.ID)
		if err != nil {
			return fmt.Errorf("identify: %w", err)
		}
		if err := emit(map[string]any{"identify": result}); err != nil {
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

func doPing(ctx context.Context, h host.Host, id peer.ID) (time.Duration, error) {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	select {
	case res := <-ping.Ping(pctx, h, id):
		return res.RTT, res.Error
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// doIdentify opens its own identify stream so it reports exactly what the remote sent.
func doIdentify(ctx context.Context, h host.Host, id peer.ID) (map[string]any, error) {
	s, err := h.NewStream(ctx, id, identify.ID)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(deadline)
	}
	_ = s.CloseWrite()
	reader := pbio.NewDelimitedReader(s, maxIdentifyMsg)
	var msg identifypb.Identify
	count := 0
	for {
		var part identifypb.Identify
		if err := reader.ReadMsg(&part); err != nil {
			if errors.Is(err, io.EOF) && count > 0 {
				break
			}
			return nil, fmt.Errorf("reading message %d: %w", count+1, err)
		}
		mergeIdentify(&msg, &part)
		count++
	}
	listen := []string{}
	for _, raw := range msg.ListenAddrs {
		addr, err := ma.NewMultiaddrBytes(raw)
		if err != nil {
			return nil, fmt.Errorf("bad listen addr: %w", err)
		}
		listen = append(listen, addr.String())
	}
	var observed any
	if len(msg.ObservedAddr) > 0 {
		addr, err := ma.NewMultiaddrBytes(msg.ObservedAddr)
		if err != nil {
			return nil, fmt.Errorf("bad observed addr: %w", err)
		}
		observed = addr.String()
	}
	protocols := msg.Protocols
	if protocols == nil {
		protocols = []string{}
	}
	return map[string]any{
		"agent_version":    msg.GetAgentVersion(),
		"protocol_version": msg.GetProtocolVersion(),
		"protocols":        protocols,
		"listen_addrs":     listen,
		"observed_addr":    observed,
	}, nil
}

// mergeIdentify applies protobuf merge rules for the fields we report (repeated fields append,
// set scalars replace), since a peer may split its identify record over several messages.
func mergeIdentify(dst, src *identifypb.Identify) {
	if src.AgentVersion != nil {
		dst.AgentVersion = src.AgentVersion
	}
	if src.ProtocolVersion != nil {
		dst.ProtocolVersion = src.ProtocolVersion
	}
	if src.ObservedAddr != nil {
		dst.ObservedAddr = src.ObservedAddr
	}
	dst.Protocols = append(dst.Protocols, src.Protocols...)
	dst.ListenAddrs = append(dst.ListenAddrs, src.ListenAddrs...)
}

// doEcho writes n pseudo-random bytes while reading the echo concurrently (so neither side's
// window can stall the other), half-closes, reads to EOF and compares.
func doEcho(ctx context.Context, h host.Host, id peer.ID, n int64) (bool, error) {
	s, err := h.NewStream(ctx, id, echoProtocol)
	if err != nil {
		return false, err
	}
	defer s.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(deadline)
	}
	data := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{0: 'r', 1: 'a', 2: 'p', 3: 'i', 4: 'd'}).Read(data)

	writeErr := make(chan error, 1)
	go func() {
		_, err := s.Write(data)
		if err == nil {
			err = s.CloseWrite()
		}
		writeErr <- err
	}()
	got, readErr := io.ReadAll(s)
	if err := <-writeErr; err != nil {
		return false, fmt.Errorf("write: %w", err)
	}
	if readErr != nil {
		return false, fmt.Errorf("read after %d bytes: %w", len(got), readErr)
	}
	if !bytes.Equal(got, data) {
		fmt.Fprintf(os.Stderr, "go-peer: echo sent %d bytes, got %d back\n", len(data), len(got))
		return false, nil
	}
	return true, nil
}
