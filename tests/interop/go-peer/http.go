// HTTP over libp2p streams with go-libp2p's p2p/http (libp2phttp), for rapidp2p's interop tests.
//
//	go-peer http-serve [--listen MA]
//	    prints LISTENING <ma>/p2p/<id>; serves over /http/1.1 streams:
//	      /rapidp2p-test/echo/1   at /echo/   any method -> JSON {method, path, query, peer, body_len}
//	      /rapidp2p-test/digest/1 at /digest/ POST -> "<bytes> <sha256 hex>" of the body
//	    and the /.well-known/libp2p/protocols document (libp2phttp's own handler).
//	go-peer http-get --connect MA [--path P] [--protocol ID]
//	go-peer http-post --connect MA [--path P] [--protocol ID] --bytes N
//	go-peer http-wellknown --connect MA
//	    each prints one JSON line {"status", "headers", "body", ...}; with --protocol the path is
//	    relative to the protocol's prefix, resolved by libp2phttp from the well-known document.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	libp2phttp "github.com/libp2p/go-libp2p/p2p/http"
	ma "github.com/multiformats/go-multiaddr"
)

const maxHTTPBody = 64 << 20

func runHTTPServe(args []string) error {
	listen := defaultListen
	for i := 0; i < len(args); i++ {
		if args[i] == "--listen" && i+1 < len(args) {
			i++
			listen = args[i]
			continue
		}
		usage("unexpected argument " + strconv.Quote(args[i]))
	}
	h, err := newHost([]string{listen})
	if err != nil {
		return err
	}
	defer h.Close()

	server := &libp2phttp.Host{StreamHost: h}
	server.SetHTTPHandlerAtPath("/rapidp2p-test/echo/1", "/echo/", http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxHTTPBody))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			remote := libp2phttp.ClientPeerID(r)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Served-By", "go-libp2p")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"method":   r.Method,
				"path":     r.URL.Path,
				"query":    r.URL.RawQuery,
				"peer":     remote.String(),
				"body_len": len(body),
				"x_test":   r.Header.Get("X-Test"),
			})
		}))
	server.SetHTTPHandlerAtPath("/rapidp2p-test/digest/1", "/digest/", http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				http.Error(w, "POST only", http.StatusMethodNotAllowed)
				return
			}
			hash := sha256.New()
			n, err := io.Copy(hash, io.LimitReader(r.Body, maxHTTPBody))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(hash.Sum(nil)))
		}))
	served := make(chan error, 1)
	go func() { served <- server.Serve() }()
	defer server.Close()

	p2p, err := ma.NewMultiaddr("/p2p/" + h.ID().String())
	if err != nil {
		return err
	}
	addrs := h.Network().ListenAddresses()
	if len(addrs) == 0 {
		return errors.New("no listen address")
	}
	if _, err := fmt.Fprintf(os.Stdout, "LISTENING %s\n", addrs[0].Encapsulate(p2p)); err != nil {
		return err
	}
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
	case err := <-served:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return nil
}

type httpClientOptions struct {
	connect  string
	path     string
	protocol string
	bytes    int64
	timeout  time.Duration
}

func parseHTTPClient(args []string, defaultPath string) httpClientOptions {
	opts := httpClientOptions{path: defaultPath, bytes: -1, timeout: 60 * time.Second}
	for i := 0; i < len(args); i++ {
		if i+1 >= len(args) {
			usage(args[i] + " needs a value")
		}
		flag, value := args[i], args[i+1]
		i++
		switch flag {
		case "--connect":
			opts.connect = value
		case "--path":
			opts.path = value
		case "--protocol":
			opts.protocol = value
		case "--bytes", "--timeout":
			n, err := strconv.ParseFloat(value, 64)
			if err != nil || n < 0 {
				usage("bad value for " + flag + ": " + strconv.Quote(value))
			}
			if flag == "--bytes" {
				opts.bytes = int64(n)
			} else {
				opts.timeout = time.Duration(n * float64(time.Second))
			}
		default:
			usage("unexpected argument " + strconv.Quote(flag))
		}
	}
	if opts.connect == "" {
		usage("--connect MULTIADDR is required")
	}
	return opts
}

// runHTTPClient makes one request (GET, POST or the well-known document) and prints it.
func runHTTPClient(method string, args []string) error {
	defaultPath := "/"
	if method == "WELLKNOWN" {
		defaultPath = libp2phttp.WellKnownProtocols
	}
	opts := parseHTTPClient(args, defaultPath)
	ctx, cancel := context.WithTimeout(context.Background(), opts.timeout)
	defer cancel()
	target, err := ma.NewMultiaddr(opts.connect)
	if err != nil {
		return fmt.Errorf("bad multiaddr %q: %w", opts.connect, err)
	}
	info, err := peer.AddrInfoFromP2pAddr(target)
	if err != nil {
		return fmt.Errorf("multiaddr %q needs /p2p/<peer id>: %w", opts.connect, err)
	}
	h, err := newHost(nil)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.Connect(ctx, *info); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	httpHost := &libp2phttp.Host{StreamHost: h}
	var client http.Client
	if opts.protocol != "" {
		client, err = httpHost.NamespacedClient(protocol.ID(opts.protocol), *info)
	} else {
		var rt http.RoundTripper
		rt, err = httpHost.NewConstrainedRoundTripper(*info)
		client = http.Client{Transport: rt}
	}
	if err != nil {
		return fmt.Errorf("http client: %w", err)
	}

	result := map[string]any{}
	var body io.Reader
	httpMethod := http.MethodGet
	if method == "POST" {
		httpMethod = http.MethodPost
		data := make([]byte, opts.bytes)
		_, _ = rand.NewChaCha8([32]byte{0: 'h', 1: 't', 2: 't', 3: 'p'}).Read(data)
		sum := sha256.Sum256(data)
		result["sent_bytes"] = len(data)
		result["sent_sha256"] = hex.EncodeToString(sum[:])
		body = strings.NewReader(string(data))
	}
	req, err := http.NewRequestWithContext(ctx, httpMethod, opts.path, body)
	if err != nil {
		return err
	}
	req.Header.Set("X-Test", "from-go")
	if method == "WELLKNOWN" {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", httpMethod, opts.path, err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPBody))
	if err != nil {
		return fmt.Errorf("reading the response body: %w", err)
	}
	headers := map[string]string{}
	for name := range resp.Header {
		headers[strings.ToLower(name)] = resp.Header.Get(name)
	}
	result["status"] = resp.StatusCode
	result["headers"] = headers
	result["body"] = string(respBody)
	if method == "WELLKNOWN" {
		var meta libp2phttp.PeerMeta
		if err := json.Unmarshal(respBody, &meta); err != nil {
			return fmt.Errorf("well-known document %q: %w", respBody, err)
		}
		result["well_known"] = meta
	}
	return emit(result)
}
