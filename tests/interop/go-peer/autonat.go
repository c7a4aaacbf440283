package main

// AutoNAT v1 (/libp2p/autonat/1.0.0) for the interop tests:
//
//	go-peer autonat-serve [--listen MA]
//	    serves AutoNAT v1 (libp2p.EnableNATService, 3 dial-backs per peer and 30 in all per
//	    minute); prints LISTENING <ma>/p2p/<id>, then runs until stdin closes.
//	go-peer autonat-probe SERVER_MA [--no-listen] [--timeout SECONDS]
//	    listens on 127.0.0.1 (unless --no-listen), connects to SERVER_MA and asks it once to
//	    dial us back with go-libp2p's own client (autonat.NewAutoNATClient(...).DialBack);
//	    prints {"autonat_status": "OK"|"E_DIAL_ERROR"|..., "text": ...} and exits 0 when a
//	    response arrived.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
)

func runAutonatServe(args []string) error {
	listen := defaultListen
	for i := 0; i < len(args); i++ {
		if args[i] == "--listen" && i+1 < len(args) {
			i++
			listen = args[i]
			continue
		}
		usage("autonat-serve: unexpected argument " + strconv.Quote(args[i]))
	}
	extraHostOptions = append(extraHostOptions,
		libp2p.EnableNATService(),
		libp2p.AutoNATServiceRateLimit(30, 3, time.Minute),
	)
	h, err := newHost([]string{listen})
	if err != nil {
		return err
	}
	defer h.Close()
	for _, a := range h.Addrs() {
		fmt.Printf("LISTENING %s/p2p/%s\n", a, h.ID())
		break
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

func runAutonatProbe(args []string) error {
	if len(args) < 1 {
		usage("autonat-probe needs the server's multiaddr")
	}
	target := args[0]
	listen := []string{defaultListen}
	timeout := 30 * time.Second
	for i := 1; i < len(args); i++ {
		switch {
		case args[i] == "--no-listen":
			listen = nil
		case args[i] == "--listen" && i+1 < len(args):
			i++
			listen = []string{args[i]}
		case args[i] == "--timeout" && i+1 < len(args):
			i++
			secs, err := strconv.ParseFloat(args[i], 64)
			if err != nil {
				usage("--timeout needs seconds")
			}
			timeout = time.Duration(secs * float64(time.Second))
		default:
			usage("autonat-probe: unexpected argument " + strconv.Quote(args[i]))
		}
	}
	h, err := newHost(listen)
	if err != nil {
		return err
	}
	defer h.Close()
	info, err := peer.AddrInfoFromString(target)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := h.Connect(ctx, *info); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	client := autonat.NewAutoNATClient(h, nil, nil)
	err = client.DialBack(ctx, info.ID)
	out := map[string]any{"autonat_status": "OK", "text": "", "addrs": h.Addrs()}
	var anErr autonat.Error
	if errors.As(err, &anErr) {
		out["autonat_status"] = anErr.Status.String()
		out["text"] = anErr.Text
	} else if err != nil {
		return fmt.Errorf("dial-back request: %w", err)
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
	return nil
}
