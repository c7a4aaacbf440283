package main

import (
	"fmt"
	"os"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/pnet"
)

// swarmKey is the private network's key from --swarm-key FILE (nil: a public network).
var swarmKey pnet.PSK

// takeSwarmKey removes "--swarm-key FILE" from args (anywhere after the command) and loads
// the /key/swarm/psk/1.0.0/ file, so every command builds its host inside that network.
func takeSwarmKey(args []string) ([]string, error) {
	for i, a := range args {
		if a != "--swarm-key" {
			continue
		}
		if i+1 >= len(args) {
			usage("--swarm-key needs a file")
		}
		f, err := os.Open(args[i+1])
		if err != nil {
			return nil, err
		}
		defer f.Close()
		psk, err := pnet.DecodeV1PSK(f)
		if err != nil {
			return nil, fmt.Errorf("%s: bad swarm key: %w", args[i+1], err)
		}
		swarmKey = psk
		return append(append([]string{}, args[:i]...), args[i+2:]...), nil
	}
	return args, nil
}

// pnetOptions turns on go-libp2p's connection protector when a swarm key was given.
func pnetOptions() []libp2p.Option {
	if swarmKey == nil {
		return nil
	}
	return []libp2p.Option{libp2p.PrivateNetwork(swarmKey)}
}
