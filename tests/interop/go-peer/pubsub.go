// pubsub: GossipSub with go-libp2p-pubsub, for tests/pubsub/test_pubsub_interop.py:
//
//	go-peer pubsub --topic T [--listen MA] [--connect MA]... [--publish MSG]...
//	    [--router gossipsub|floodsub]
//
// It subscribes to T, prints "LISTENING <ma>/p2p/<id>" once listening and subscribed, dials
// every --connect; once a peer subscribed to T is connected it publishes each --publish
// (printing "PUBLISHED <msg>"), and prints "RECEIVED <data>" for every message another peer
// published on T, until killed or stdin closes. Messages are signed and verified (StrictSign),
// peer scoring is on, and message IDs are the library default (from || seqno).
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

const pubsubUsage = "usage: go-peer pubsub --topic T [--listen MULTIADDR] [--connect MULTIADDR]... " +
	"[--publish MSG]... [--router gossipsub|floodsub]\n"

type pubsubOptions struct {
	topic   string
	listen  string
	connect []string
	publish []string
	router  string
}

func pubsubUsageExit(msg string) {
	fmt.Fprintf(os.Stderr, "go-peer: %s\n%s", msg, pubsubUsage)
	os.Exit(2)
}

func parsePubsub(args []string) pubsubOptions {
	o := pubsubOptions{listen: defaultListen, router: "gossipsub"}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch arg {
		case "-h", "--help":
			fmt.Print(pubsubUsage)
			os.Exit(0)
		case "--topic", "--listen", "--connect", "--publish", "--router":
			if i+1 >= len(args) {
				pubsubUsageExit(arg + " needs a value")
			}
			i++
			switch arg {
			case "--topic":
				o.topic = args[i]
			case "--listen":
				o.listen = args[i]
			case "--connect":
				o.connect = append(o.connect, args[i])
			case "--publish":
				o.publish = append(o.publish, args[i])
			default:
				o.router = args[i]
			}
		default:
			pubsubUsageExit("unexpected argument " + strconv.Quote(arg))
		}
	}
	if o.topic == "" {
		pubsubUsageExit("pubsub needs --topic")
	}
	if o.router != "gossipsub" && o.router != "floodsub" {
		pubsubUsageExit("--router must be gossipsub or floodsub")
	}
	return o
}

// scoreParams turns peer scoring on with mild weights: misbehaviour is penalised, nothing a
// well-behaved peer on loopback does (several peers share 127.0.0.1) costs it anything.
func scoreParams() (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	params := &pubsub.PeerScoreParams{
		Topics:                    map[string]*pubsub.TopicScoreParams{},
		AppSpecificScore:          func(peer.ID) float64 { return 0 },
		AppSpecificWeight:         1,
		IPColocationFactorWeight:  0,
		BehaviourPenaltyWeight:    -10,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     0.9,
		DecayInterval:             time.Second,
		DecayToZero:               0.01,
		RetainScore:               30 * time.Second,
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold:             -100,
		PublishThreshold:            -200,
		GraylistThreshold:           -300,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 5,
	}
	return params, thresholds
}

var printMu sync.Mutex

func printLine(format string, args ...any) {
	printMu.Lock()
	defer printMu.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

func runPubsub(args []string) error {
	o := parsePubsub(args)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, err := newHost([]string{o.listen})
	if err != nil {
		return err
	}
	defer h.Close()

	var ps *pubsub.PubSub
	opts := []pubsub.Option{pubsub.WithMessageSignaturePolicy(pubsub.StrictSign)}
	if o.router == "floodsub" {
		ps, err = pubsub.NewFloodSub(ctx, h, opts...)
	} else {
		params, thresholds := scoreParams()
		// Flood publishing (a publisher's own messages go to every topic peer above the publish
		// threshold) lets --publish work before the first heartbeat has built a mesh.
		opts = append(opts, pubsub.WithPeerScore(params, thresholds), pubsub.WithFloodPublish(true))
		ps, err = pubsub.NewGossipSub(ctx, h, opts...)
	}
	if err != nil {
		return err
	}
	topic, err := ps.Join(o.topic)
	if err != nil {
		return err
	}
	sub, err := topic.Subscribe()
	if err != nil {
		return err
	}
	events, err := topic.EventHandler()
	if err != nil {
		return err
	}
	addrs := h.Network().ListenAddresses()
	if len(addrs) == 0 {
		return errors.New("no listen address")
	}
	printLine("LISTENING %s/p2p/%s", addrs[0], h.ID())

	go func() {
		for {
			msg, err := sub.Next(ctx)
			if err != nil {
				return
			}
			if msg.GetFrom() == h.ID() {
				continue // our own publication, delivered locally
			}
			printLine("RECEIVED %s", msg.Data)
		}
	}()
	for _, text := range o.connect {
		addr, err := ma.NewMultiaddr(text)
		if err != nil {
			return fmt.Errorf("bad multiaddr %q: %w", text, err)
		}
		info, err := peer.AddrInfoFromP2pAddr(addr)
		if err != nil {
			return fmt.Errorf("--connect %q needs /p2p/<peer id>: %w", text, err)
		}
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		err = h.Connect(cctx, *info)
		ccancel()
		if err != nil {
			return fmt.Errorf("connect %s: %w", text, err)
		}
	}
	if len(o.publish) > 0 {
		go func() {
			// Publish once a peer subscribed to the topic is connected.
			for {
				ev, err := events.NextPeerEvent(ctx)
				if err != nil {
					return
				}
				if ev.Type == pubsub.PeerJoin {
					break
				}
			}
			// PeerJoin fires when the peer's SUBSCRIBE arrives on the stream it opened to us;
			// our own stream to it may (we believe) still be negotiating then, and a message for a
			// peer without an outgoing stream is dropped, with no retry (seen over QUIC, 1 run in 8:
			// PUBLISHED printed, a GRAFT sent 80 ms later, the message never sent). One
			// heartbeat later the stream is up.
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
			for _, m := range o.publish {
				if err := topic.Publish(ctx, []byte(m)); err != nil {
					fmt.Fprintln(os.Stderr, "go-peer: publish:", err)
					return
				}
				printLine("PUBLISHED %s", m)
			}
		}()
	}

	// Run until stdin closes or a signal arrives.
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
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
