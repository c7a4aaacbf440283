// dht: Kademlia (/ipfs/kad/1.0.0) with go-libp2p-kad-dht, for tests/kad/test_kad_interop.py:
//
//	go-peer listen [--listen MA] --dht server|client [--bootstrap MA]...
//	go-peer dht OP KEY [VALUE] --bootstrap MA... [--timeout SECONDS]
//
// OP is put KEY VALUE, get KEY (prints the value), provide CID, find-providers CID (one peer id a
// line), get-closest-peers KEY (one peer id a line) or find-peer PEER_ID (one multiaddr a
// line); `dht` runs a client-mode node that exits 0 on success, 1 with a message otherwise.
// Records in the namespace "test" are accepted whatever their value (the greatest byte string
// wins), so the three stacks agree on what is valid.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

const kadProtocol = protocol.ID("/ipfs/kad/1.0.0")

const dhtUsage = "usage: go-peer dht put|get|provide|find-providers|get-closest-peers|find-peer " +
	"KEY [VALUE] --bootstrap MULTIADDR... [--timeout SECONDS]\n"

// testValidator accepts any record in its namespace and prefers the greatest value.
type testValidator struct{}

func (testValidator) Validate(string, []byte) error { return nil }

func (testValidator) Select(_ string, values [][]byte) (int, error) {
	if len(values) == 0 {
		return 0, errors.New("no values")
	}
	best := 0
	for i, v := range values {
		if bytes.Compare(v, values[best]) > 0 {
			best = i
		}
	}
	return best, nil
}

// startDHT runs a DHT node on h in the given mode and connects to the bootstrap peers.
func startDHT(ctx context.Context, h host.Host, mode string, bootstrap []string) (*dht.IpfsDHT, error) {
	var opt dht.ModeOpt
	switch mode {
	case "server":
		opt = dht.ModeServer
	case "client":
		opt = dht.ModeClient
	default:
		return nil, fmt.Errorf("--dht must be server or client, not %q", mode)
	}
	// The Amino prefix (/ipfs) forbids validators beyond /pk and /ipns, so the node runs under
	// a private prefix and speaks /ipfs/kad/1.0.0 through the protocol override.
	d, err := dht.New(h,
		dht.Mode(opt),
		dht.ProtocolPrefix("/rapidp2p-interop"),
		dht.V1ProtocolOverride(kadProtocol),
		dht.NamespacedValidator("pk", record.PublicKeyValidator{}),
		dht.NamespacedValidator("test", testValidator{}),
	)
	if err != nil {
		return nil, err
	}
	for _, text := range bootstrap {
		addr, err := ma.NewMultiaddr(text)
		if err != nil {
			return nil, fmt.Errorf("bad bootstrap multiaddr %q: %w", text, err)
		}
		info, err := peer.AddrInfoFromP2pAddr(addr)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %q needs /p2p/<peer id>: %w", text, err)
		}
		if err := h.Connect(ctx, *info); err != nil {
			return nil, fmt.Errorf("connect to bootstrap %s: %w", text, err)
		}
	}
	if len(bootstrap) > 0 {
		// The routing table fills once identify says the bootstrap peers speak kad.
		for d.RoutingTable().Size() == 0 {
			select {
			case <-ctx.Done():
				return nil, errors.New("no bootstrap peer entered the routing table (does it serve /ipfs/kad/1.0.0?)")
			case <-time.After(20 * time.Millisecond):
			}
		}
		select {
		case <-d.RefreshRoutingTable():
		case <-ctx.Done():
		}
	}
	return d, nil
}

func runDHT(args []string) error {
	var positional, bootstrap []string
	timeout := 60 * time.Second
	for i := 0; i < len(args); i++ {
		switch arg := args[i]; arg {
		case "--bootstrap", "--timeout":
			if i+1 >= len(args) {
				dhtUsageExit(arg + " needs a value")
			}
			i++
			if arg == "--bootstrap" {
				bootstrap = append(bootstrap, args[i])
			} else {
				secs, err := strconv.ParseFloat(args[i], 64)
				if err != nil || secs <= 0 {
					dhtUsageExit("bad --timeout " + strconv.Quote(args[i]))
				}
				timeout = time.Duration(secs * float64(time.Second))
			}
		case "-h", "--help":
			fmt.Print(dhtUsage)
			os.Exit(0)
		default:
			if len(arg) > 1 && arg[0] == '-' {
				dhtUsageExit("unexpected argument " + strconv.Quote(arg))
			}
			positional = append(positional, arg)
		}
	}
	if len(positional) < 2 {
		dhtUsageExit("dht needs OP and KEY")
	}
	op, key := positional[0], positional[1]
	want := 2
	if op == "put" {
		want = 3
	}
	if len(positional) != want {
		dhtUsageExit(fmt.Sprintf("%s takes %d arguments", op, want-1))
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	h, err := newHost([]string{defaultListen})
	if err != nil {
		return err
	}
	defer h.Close()
	d, err := startDHT(ctx, h, "client", bootstrap)
	if err != nil {
		return err
	}
	defer d.Close()

	switch op {
	case "put":
		return d.PutValue(ctx, key, []byte(positional[2]))
	case "get":
		value, err := d.GetValue(ctx, key, dht.Quorum(1))
		if err != nil {
			return fmt.Errorf("get %s: %w", key, err)
		}
		fmt.Println(string(value))
	case "provide":
		c, err := cid.Decode(key)
		if err != nil {
			return fmt.Errorf("bad CID %q: %w", key, err)
		}
		return d.Provide(ctx, c, true)
	case "find-providers":
		c, err := cid.Decode(key)
		if err != nil {
			return fmt.Errorf("bad CID %q: %w", key, err)
		}
		found := 0
		for info := range d.FindProvidersAsync(ctx, c, 20) {
			fmt.Println(info.ID)
			found++
		}
		if found == 0 {
			return fmt.Errorf("no provider of %s found", key)
		}
	case "get-closest-peers":
		peers, err := d.GetClosestPeers(ctx, key)
		if err != nil {
			return err
		}
		if len(peers) == 0 {
			return errors.New("no peer found")
		}
		for _, p := range peers {
			fmt.Println(p)
		}
	case "find-peer":
		id, err := peer.Decode(key)
		if err != nil {
			return fmt.Errorf("bad peer id %q: %w", key, err)
		}
		info, err := d.FindPeer(ctx, id)
		if err != nil {
			return fmt.Errorf("find-peer %s: %w", key, err)
		}
		for _, a := range info.Addrs {
			fmt.Println(a)
		}
	default:
		dhtUsageExit("unknown dht operation " + strconv.Quote(op))
	}
	return nil
}

func dhtUsageExit(msg string) {
	fmt.Fprintf(os.Stderr, "go-peer: %s\n%s", msg, dhtUsage)
	os.Exit(2)
}
