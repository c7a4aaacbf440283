// perf: the libp2p perf protocol (/perf/1.0.0) with the command line of `rapidp2p perf`
// (test-plans shape plus the benchmark suite's extensions):
//
//	go-peer perf --run-server [--server-address HOST:PORT]
//	go-peer perf --server-address HOST:PORT [--transport tcp|quic-v1|ws] [--upload-bytes N]
//	    [--download-bytes N] [--iterations N] [--reuse-connection] [--streams K]
//	    [--concurrency C] [--connect-only] [-v]
//
// The server listens on TCP and QUIC v1 at the same port (as the test-plans servers; TCP only
// with a swarm key). It uses the shared perf identity (Ed25519 from an all-zero seed) with the resource
// manager and the connection manager disabled, so a benchmark may open thousands of
// connections and streams from one address.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-libp2p/p2p/transport/websocket"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	perfProtocol         = protocol.ID("/perf/1.0.0")
	perfServerPeerID     = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
	perfDefaultAddress   = "127.0.0.1:4001"
	perfBlock            = 256 << 10
	perfExitUnsupported  = 3
	perfConnectTimeout   = 60 * time.Second
	perfReportInterval   = time.Second
	perfUsageDescription = "usage: go-peer perf --run-server [--server-address HOST:PORT]\n" +
		"       go-peer perf --server-address HOST:PORT [--transport tcp|quic-v1|ws] [--upload-bytes N]\n" +
		"           [--download-bytes N] [--iterations N] [--reuse-connection] [--streams K]\n" +
		"           [--concurrency C] [--connect-only] [-v]\n"
)

// perfZeros is shared read-only by every sender.
var perfZeros = make([]byte, perfBlock)

type perfOptions struct {
	runServer     bool
	serverAddress string
	transport     string
	upload        uint64
	download      uint64
	iterations    int
	streams       int
	concurrency   int
	reuse         bool
	connectOnly   bool
}

func perfUsage(msg string) {
	fmt.Fprintf(os.Stderr, "go-peer: %s\n%s", msg, perfUsageDescription)
	os.Exit(2)
}

func parsePerf(args []string) perfOptions {
	o := perfOptions{transport: "tcp", iterations: 1, streams: 1, concurrency: 1}
	for i := 0; i < len(args); i++ {
		flag, inline, hasInline := strings.Cut(args[i], "=")
		if !strings.HasPrefix(flag, "--") {
			flag, hasInline = args[i], false
		}
		value := func() string {
			if hasInline {
				return inline
			}
			if i+1 >= len(args) {
				perfUsage(flag + " needs a value")
			}
			i++
			return args[i]
		}
		number := func() uint64 {
			text := value()
			n, err := strconv.ParseUint(text, 10, 64)
			if err != nil {
				perfUsage(flag + " must be a u64, got " + strconv.Quote(text))
			}
			return n
		}
		atLeastOne := func() int {
			n := number()
			if n < 1 || n > 1<<31 {
				perfUsage(flag + " must be at least 1")
			}
			return int(n)
		}
		switch flag {
		case "--run-server":
			o.runServer = true
		case "--reuse-connection":
			o.reuse = true
		case "--connect-only":
			o.connectOnly = true
		case "-v", "--verbose":
		case "-h", "--help":
			fmt.Print(perfUsageDescription)
			os.Exit(0)
		case "--server-address":
			o.serverAddress = value()
		case "--transport":
			o.transport = value()
		case "--upload-bytes":
			o.upload = number()
		case "--download-bytes":
			o.download = number()
		case "--iterations":
			o.iterations = atLeastOne()
		case "--streams":
			o.streams = atLeastOne()
		case "--concurrency":
			o.concurrency = atLeastOne()
		default:
			perfUsage("unexpected argument " + strconv.Quote(args[i]))
		}
	}
	return o
}

// perfMultiaddr turns HOST:PORT ([v6]:PORT; localhost is 127.0.0.1) into a TCP multiaddr.
func perfMultiaddr(address string) (ma.Multiaddr, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("server address %q is not HOST:PORT", address)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, fmt.Errorf("server address %q is not IP:PORT", address)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("bad port in server address %q", address)
	}
	family := "ip6"
	if ip.To4() != nil {
		family = "ip4"
	}
	return ma.NewMultiaddr(fmt.Sprintf("/%s/%s/tcp/%s", family, ip, port))
}

func runPerf(args []string) error {
	o := parsePerf(args)
	if o.transport != "tcp" && ((o.transport != "quic-v1" && o.transport != "ws") || swarmKey != nil) {
		fmt.Fprintf(os.Stderr, "go-peer: transport %q is not supported (tcp, or quic-v1/ws without a swarm key)\n", o.transport)
		os.Exit(perfExitUnsupported)
	}
	if o.transport == "ws" && !o.runServer {
		// The client dials the full /ws multiaddr the server printed (its ephemeral port).
		addr, err := ma.NewMultiaddr(o.serverAddress)
		if err != nil {
			perfUsage("--transport ws needs the server's printed /ws multiaddr: " + err.Error())
		}
		addr, _ = ma.SplitFunc(addr, func(c ma.Component) bool { return c.Protocol().Code == ma.P_P2P })
		return perfClient(addr, o)
	}
	address := o.serverAddress
	if address == "" {
		if !o.runServer {
			perfUsage("--server-address is required for the client")
		}
		address = perfDefaultAddress
	}
	addr, err := perfMultiaddr(address)
	if err != nil {
		perfUsage(err.Error())
	}
	quic, err := ma.NewMultiaddr(strings.Replace(addr.String(), "/tcp/", "/udp/", 1) + "/quic-v1")
	if err != nil {
		perfUsage(err.Error())
	}
	if o.runServer {
		if swarmKey != nil {
			return perfServe(addr)
		}
		if o.transport == "ws" {
			// Also listen on /ws at an ephemeral port; the runner dials the printed address.
			ws, err := ma.NewMultiaddr(strings.SplitN(addr.String(), "/tcp/", 2)[0] + "/tcp/0/ws")
			if err != nil {
				perfUsage(err.Error())
			}
			return perfServe(addr, quic, ws)
		}
		return perfServe(addr, quic)
	}
	if o.transport == "quic-v1" {
		addr = quic
	}
	return perfClient(addr, o)
}

// newPerfHost is a TCP (and WebSocket /ws) + Noise (or TLS) + yamux and QUIC v1 host with no resource or
// connection limits (TCP only with a swarm key: QUIC cannot carry the PSK).
func newPerfHost(key crypto.PrivKey, listen ...ma.Multiaddr) (host.Host, error) {
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.Transport(tcp.NewTCPTransport),
		securityOption(),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.ConnectionManager(connmgr.NullConnMgr{}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent(agentVersion()),
		libp2p.ProtocolVersion("ipfs/0.1.0"),
	}
	opts = append(opts, pnetOptions()...)
	if swarmKey == nil {
		opts = append(opts, libp2p.Transport(libp2pquic.NewTransport), libp2p.Transport(websocket.New))
	}
	if len(listen) == 0 {
		opts = append(opts, libp2p.NoListenAddrs)
	} else {
		opts = append(opts, libp2p.ListenAddrs(listen...))
	}
	return libp2p.New(opts...)
}

func perfServerKey() (crypto.PrivKey, error) {
	key, _, err := crypto.GenerateEd25519Key(bytes.NewReader(make([]byte, 32)))
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if id.String() != perfServerPeerID {
		return nil, fmt.Errorf("perf identity is %s, expected %s", id, perfServerPeerID)
	}
	return key, nil
}

func perfServe(addrs ...ma.Multiaddr) error {
	key, err := perfServerKey()
	if err != nil {
		return err
	}
	h, err := newPerfHost(key, addrs...)
	if err != nil {
		return err
	}
	defer h.Close()
	h.SetStreamHandler(perfProtocol, handlePerf)
	for _, a := range h.Addrs() {
		fmt.Printf("%s/p2p/%s\n", a, h.ID())
	}
	// Serve until killed (stdin is usually /dev/null for a benchmark server).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	<-sigs
	return nil
}

// handlePerf reads the u64 asked for, drains the upload to EOF, then sends and half-closes.
func handlePerf(s network.Stream) {
	defer s.Close()
	var header [8]byte
	if _, err := io.ReadFull(s, header[:]); err != nil {
		_ = s.Reset()
		return
	}
	wanted := binary.BigEndian.Uint64(header[:])
	buf := make([]byte, perfBlock)
	for {
		_, err := s.Read(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = s.Reset()
			return
		}
	}
	if err := perfSendZeros(s, wanted, nil); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.CloseWrite()
}

func perfSendZeros(w io.Writer, count uint64, onSent func(uint64)) error {
	for count > 0 {
		n := min(count, perfBlock)
		if _, err := w.Write(perfZeros[:n]); err != nil {
			return err
		}
		count -= n
		if onSent != nil {
			onSent(n)
		}
	}
	return nil
}

// perfReport is one line of the runner's output schema (field order as the other stacks).
type perfReport struct {
	Type          string  `json:"type"`
	TimeSeconds   float64 `json:"timeSeconds"`
	UploadBytes   uint64  `json:"uploadBytes"`
	DownloadBytes uint64  `json:"downloadBytes"`
}

var stdoutMu sync.Mutex

func emitLine(v any) {
	line, _ := json.Marshal(v)
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	_, _ = os.Stdout.Write(append(line, '\n'))
}

// perfProgress counts bytes and prints an intermediary report about once a second.
type perfProgress struct {
	upload, download     uint64
	last                 time.Time
	lastUp, lastDown     uint64
	emitIntermediaryLine bool
}

func (p *perfProgress) add(up, down uint64) {
	p.upload += up
	p.download += down
	if !p.emitIntermediaryLine {
		return
	}
	now := time.Now()
	if elapsed := now.Sub(p.last); elapsed >= perfReportInterval {
		emitLine(perfReport{"intermediary", elapsed.Seconds(), p.upload - p.lastUp, p.download - p.lastDown})
		p.last, p.lastUp, p.lastDown = now, p.upload, p.download
	}
}

// perfStream runs the client side of one perf stream: header, upload, half-close, download.
func perfStream(h host.Host, id peer.ID, upload, download uint64, p *perfProgress) error {
	s, err := h.NewStream(context.Background(), id, perfProtocol)
	if err != nil {
		return fmt.Errorf("open perf stream: %w", err)
	}
	defer s.Close()
	var header [8]byte
	binary.BigEndian.PutUint64(header[:], download)
	if _, err := s.Write(header[:]); err != nil {
		return err
	}
	if err := perfSendZeros(s, upload, func(n uint64) { p.add(n, 0) }); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	buf := make([]byte, perfBlock)
	var got uint64
	for {
		n, err := s.Read(buf)
		got += uint64(n)
		if got > download {
			return fmt.Errorf("server sent more than the %d bytes asked", download)
		}
		p.add(0, uint64(n))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("download after %d bytes: %w", got, err)
		}
	}
	if got != download {
		return fmt.Errorf("server sent %d of the %d bytes asked", got, download)
	}
	return nil
}

func perfIteration(h host.Host, info peer.AddrInfo, o perfOptions, emitIntermediary bool) error {
	start := time.Now()
	if h.Network().Connectedness(info.ID) != network.Connected {
		ctx, cancel := context.WithTimeout(context.Background(), perfConnectTimeout)
		err := h.Connect(ctx, info)
		cancel()
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
	}
	progress := &perfProgress{last: start, emitIntermediaryLine: emitIntermediary}
	if !o.connectOnly {
		if o.streams == 1 {
			if err := perfStream(h, info.ID, o.upload, o.download, progress); err != nil {
				return err
			}
		} else {
			var wg sync.WaitGroup
			var mu sync.Mutex
			var firstErr error
			for range o.streams {
				wg.Add(1)
				go func() {
					defer wg.Done()
					mine := &perfProgress{}
					err := perfStream(h, info.ID, o.upload, o.download, mine)
					mu.Lock()
					defer mu.Unlock()
					if err != nil && firstErr == nil {
						firstErr = err
					}
					progress.upload += mine.upload
					progress.download += mine.download
				}()
			}
			wg.Wait()
			if firstErr != nil {
				return firstErr
			}
		}
	}
	emitLine(perfReport{"final", time.Since(start).Seconds(), progress.upload, progress.download})
	return nil
}

func perfClient(addr ma.Multiaddr, o perfOptions) error {
	id, err := peer.Decode(perfServerPeerID)
	if err != nil {
		return err
	}
	info := peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{addr}}
	emitIntermediary := o.iterations == 1 && o.streams == 1
	counts := make([]int, o.concurrency)
	for i := range counts {
		counts[i] = o.iterations / o.concurrency
		if i < o.iterations%o.concurrency {
			counts[i]++
		}
	}
	start := time.Now()
	errs := make(chan error, len(counts))
	for _, count := range counts {
		go func() {
			errs <- perfDialer(info, o, count, emitIntermediary)
		}()
	}
	for range counts {
		if err := <-errs; err != nil {
			return err
		}
	}
	if o.iterations > 1 {
		emitLine(struct {
			Type           string  `json:"type"`
			Iterations     int     `json:"iterations"`
			ElapsedSeconds float64 `json:"elapsedSeconds"`
		}{"summary", o.iterations, time.Since(start).Seconds()})
	}
	return nil
}

// perfDialer runs count iterations from its own host (its own identity and connections).
func perfDialer(info peer.AddrInfo, o perfOptions, count int, emitIntermediary bool) error {
	if count == 0 {
		return nil
	}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return err
	}
	h, err := newPerfHost(key)
	if err != nil {
		return err
	}
	defer h.Close()
	for range count {
		if err := perfIteration(h, info, o, emitIntermediary); err != nil {
			return err
		}
		if !o.reuse {
			if err := h.Network().ClosePeer(info.ID); err != nil {
				return fmt.Errorf("close connection: %w", err)
			}
		}
	}
	return nil
}
