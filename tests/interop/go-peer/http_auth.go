// libp2p-PeerID HTTP authentication (go-libp2p p2p/http/auth) over plain HTTP on loopback.
//
//	go-peer http-auth-serve [--port N]
//	    prints LISTENING /ip4/127.0.0.1/tcp/<port>/http/p2p/<id>; every path needs
//	    authentication and answers JSON {peer, method, path, body_len, body_sha256} (NoTLS mode,
//	    hostnames 127.0.0.1:<port> only).
//	go-peer http-auth-request --url http://127.0.0.1:P/path [--bytes N] [--requests K]
//	    K authenticated requests (the first runs the handshake, later ones use the token); one
//	    JSON line each: {server_peer, client_peer, status, body, sent_sha256}.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	httpauth "github.com/libp2p/go-libp2p/p2p/http/auth"
)

func runHTTPAuthServe(args []string) error {
	port := 0
	for i := 0; i < len(args); i++ {
		if args[i] == "--port" && i+1 < len(args) {
			i++
			n, err := strconv.Atoi(args[i])
			if err != nil {
				usage("bad --port " + strconv.Quote(args[i]))
			}
			port = n
			continue
		}
		usage("unexpected argument " + strconv.Quote(args[i]))
	}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	hostPort := ln.Addr().String()
	auth := &httpauth.ServerPeerIDAuth{
		PrivKey:         key,
		TokenTTL:        time.Hour,
		NoTLS:           true,
		ValidHostnameFn: func(h string) bool { return h == hostPort },
		Next: func(client peer.ID, w http.ResponseWriter, r *http.Request) {
			hash := sha256.New()
			n, err := io.Copy(hash, io.LimitReader(r.Body, maxHTTPBody))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"peer":        client.String(),
				"method":      r.Method,
				"path":        r.URL.Path,
				"body_len":    n,
				"body_sha256": hex.EncodeToString(hash.Sum(nil)),
			})
		},
	}
	server := &http.Server{Handler: auth, ReadHeaderTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- server.Serve(ln) }()
	defer server.Close()
	if _, err := fmt.Fprintf(os.Stdout, "LISTENING /ip4/127.0.0.1/tcp/%d/http/p2p/%s\n",
		ln.Addr().(*net.TCPAddr).Port, id); err != nil {
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
		return err
	}
	return nil
}

func runHTTPAuthRequest(args []string) error {
	url := ""
	size := int64(0)
	requests := 1
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "--url":
			url = args[i+1]
		case "--bytes", "--requests":
			n, err := strconv.ParseInt(args[i+1], 10, 64)
			if err != nil || n < 0 {
				usage("bad value for " + args[i])
			}
			if args[i] == "--bytes" {
				size = n
			} else {
				requests = int(n)
			}
		default:
			usage("unexpected argument " + strconv.Quote(args[i]))
		}
	}
	if url == "" || !strings.HasPrefix(url, "http://127.0.0.1:") {
		usage("--url http://127.0.0.1:PORT/... is required (loopback only)")
	}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return err
	}
	self, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return err
	}
	data := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{0: 'a', 1: 'u', 2: 't', 3: 'h'}).Read(data)
	sum := sha256.Sum256(data)
	auth := &httpauth.ClientPeerIDAuth{PrivKey: key, TokenTTL: time.Hour}
	client := &http.Client{Timeout: 60 * time.Second}
	for i := 0; i < requests; i++ {
		method := http.MethodGet
		var body io.Reader
		if size > 0 {
			method = http.MethodPost
			body = bytes.NewReader(data)
		}
		req, err := http.NewRequest(method, url, body)
		if err != nil {
			return err
		}
		hadToken := auth.HasToken(req.Host)
		server, resp, err := auth.AuthenticatedDo(client, req)
		if err != nil {
			return fmt.Errorf("request %d: %w", i+1, err)
		}
		respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPBody))
		resp.Body.Close()
		if err != nil {
			return err
		}
		if err := emit(map[string]any{
			"server_peer": server.String(),
			"client_peer": self.String(),
			"status":      resp.StatusCode,
			"body":        string(respBody),
			"sent_sha256": hex.EncodeToString(sum[:]),
			"had_token":   hadToken,
		}); err != nil {
			return err
		}
	}
	return nil
}
