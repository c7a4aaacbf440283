package main

import (
	"crypto/tls"
	"fmt"
	"os"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/p2p/transport/websocket"
)

// websocketTransport is the WebSocket transport, able to listen on /wss when the environment
// names a PEM certificate and key (RAPIDP2P_WSS_CERT, RAPIDP2P_WSS_KEY: the tests' throwaway
// CA signed them). Dialing /wss verifies servers with the system roots, which SSL_CERT_FILE
// replaces with that CA.
func websocketTransport() (libp2p.Option, error) {
	certFile, keyFile := os.Getenv("RAPIDP2P_WSS_CERT"), os.Getenv("RAPIDP2P_WSS_KEY")
	if certFile == "" || keyFile == "" {
		return libp2p.Transport(websocket.New), nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("wss certificate: %w", err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return libp2p.Transport(websocket.New, websocket.WithTLSConfig(conf)), nil
}
