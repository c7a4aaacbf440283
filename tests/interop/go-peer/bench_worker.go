// bench-worker: go-libp2p nodes for rapidp2p's GossipSub and Kademlia benchmarks
// (benches/pubsub_mesh.py, benches/kad_mixed.py), driven by JSON lines on stdin:
//
//	go-peer bench-worker
//
// Each stdin line is {"id": N, "op": OP, ...}; each gets one stdout line {"id": N, ...} (or
// {"id": N, "error": "..."}). The pubsub ops are those of benches/pubsub_mesh_worker.py:
// start {nodes, heartbeat, idontwant} -> {addrs}; dial {dials: [[node, addr]]}; subscribe;
// mesh -> {sizes}; idontwant {on} (fixed at start here: -> {"unsupported": true}); expect;
// publish {run, size, count, interval} -> {t0_ns, t1_ns}; collect {run, count, idle, limit}
// -> {got, subscribers, lat_ns, last_ns}; bytes -> {bytes}; quit. GossipSub signs and verifies
// strictly (StrictSign), D=6/4/12, flood publish on, no peer scoring, as the other workers.
// The Kademlia ops: kad_start {count} -> {addrs} (server-mode nodes, /ipfs/kad/1.0.0);
// kad_connect {dials: [[node, addr]]} -> {failed, table}; kad_refresh -> {table};
// kad_lookups {keys: [hex], concurrency} -> {lat_ns, found, elapsed_ns, failed}: each key
// looked up (GetClosestPeers) from a rotating local node, `concurrency` at a time.
// Timestamps are CLOCK_MONOTONIC nanoseconds, shared by every process on the machine.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"
)

const benchTopic = "bench"

// monotonicNs reads CLOCK_MONOTONIC (Go's time package keeps its monotonic reading private).
func monotonicNs() int64 {
	var ts syscall.Timespec
	_, _, _ = syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Sec*1e9 + ts.Nsec
}

// meshTracer follows one node's mesh (GRAFT/PRUNE) and counts the pubsub bytes it sends.
type meshTracer struct {
	mu    sync.Mutex
	mesh  map[peer.ID]bool
	bytes atomic.Int64
}

func (t *meshTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (t *meshTracer) OnClosedOutboundStream(peer.ID)           {}
func (t *meshTracer) Join(string)                              {}
func (t *meshTracer) Leave(string)                             {}
func (t *meshTracer) Graft(p peer.ID, topic string) {
	t.mu.Lock()
	t.mesh[p] = true
	t.mu.Unlock()
}
func (t *meshTracer) Prune(p peer.ID, topic string) {
	t.mu.Lock()
	delete(t.mesh, p)
	t.mu.Unlock()
}
func (t *meshTracer) ValidateMessage(*pubsub.Message)                      {}
func (t *meshTracer) DeliverMessage(*pubsub.Message)                       {}
func (t *meshTracer) RejectMessage(*pubsub.Message, string)                {}
func (t *meshTracer) DuplicateMessage(*pubsub.Message)                     {}
func (t *meshTracer) ThrottlePeer(peer.ID)                                 {}
func (t *meshTracer) RecvRPC(*pubsub.RPC)                                  {}
func (t *meshTracer) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (t *meshTracer) UndeliverableMessage(*pubsub.Message)                 {}
func (t *meshTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (t *meshTracer) SendRPC(rpc *pubsub.RPC, _ peer.ID) {
	n := proto.Size(&rpc.RPC)
	// The frame: a uvarint length prefix, then the RPC (as the other workers count).
	var prefix [binary.MaxVarintLen64]byte
	t.bytes.Add(int64(n + binary.PutUvarint(prefix[:], uint64(n))))
}

type benchNode struct {
	h      host.Host
	ps     *pubsub.PubSub
	topic  *pubsub.Topic
	tracer *meshTracer
	kad    *dht.IpfsDHT
}

// recorder: per run, the messages each local subscriber got, their latencies, the last one.
type recorder struct {
	mu     sync.Mutex
	counts map[uint32]map[int]int
	lat    map[uint32][]int64
	last   map[uint32]int64
	notify chan struct{}
}

func (r *recorder) record(node int, data []byte) {
	now := monotonicNs()
	if len(data) < 16 {
		return
	}
	run := binary.BigEndian.Uint32(data[0:4])
	sent := int64(binary.BigEndian.Uint64(data[8:16]))
	r.mu.Lock()
	c := r.counts[run]
	if c == nil {
		c = map[int]int{}
		r.counts[run] = c
	}
	c[node]++
	r.lat[run] = append(r.lat[run], now-sent)
	r.last[run] = now
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

type benchWorker struct {
	ctx   context.Context
	nodes map[int]*benchNode
	order []int
	rec   *recorder
}

type benchCmd struct {
	ID          int                  `json:"id"`
	Op          string               `json:"op"`
	Nodes       []int                `json:"nodes"`
	Heartbeat   float64              `json:"heartbeat"`
	Idontwant   bool                 `json:"idontwant"`
	Dials       [][2]json.RawMessage `json:"dials"`
	Run         uint32               `json:"run"`
	Size        int                  `json:"size"`
	Count       int                  `json:"count"`
	Interval    float64              `json:"interval"`
	Idle        float64              `json:"idle"`
	Limit       float64              `json:"limit"`
	Keys        []string             `json:"keys"`
	Concurrency int                  `json:"concurrency"`
}

func (w *benchWorker) dialList(raw [][2]json.RawMessage) ([]int, []peer.AddrInfo, error) {
	nodes := make([]int, 0, len(raw))
	infos := make([]peer.AddrInfo, 0, len(raw))
	for _, d := range raw {
		var node int
		var text string
		if err := json.Unmarshal(d[0], &node); err != nil {
			return nil, nil, err
		}
		if err := json.Unmarshal(d[1], &text); err != nil {
			return nil, nil, err
		}
		addr, err := ma.NewMultiaddr(text)
		if err != nil {
			return nil, nil, err
		}
		info, err := peer.AddrInfoFromP2pAddr(addr)
		if err != nil {
			return nil, nil, err
		}
		if w.nodes[node] == nil {
			return nil, nil, fmt.Errorf("no local node %d", node)
		}
		nodes = append(nodes, node)
		infos = append(infos, *info)
	}
	return nodes, infos, nil
}

// connectAll dials every (node, peer) pair concurrently; the number that failed.
func (w *benchWorker) connectAll(nodes []int, infos []peer.AddrInfo) int {
	var failed atomic.Int64
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func(h host.Host, info peer.AddrInfo) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
			defer cancel()
			if h.Connect(ctx, info) != nil {
				failed.Add(1)
			}
		}(w.nodes[nodes[i]].h, infos[i])
	}
	wg.Wait()
	return int(failed.Load())
}

func addrOf(h host.Host) (string, error) {
	addrs := h.Network().ListenAddresses()
	if len(addrs) == 0 {
		return "", errors.New("no listen address")
	}
	return fmt.Sprintf("%s/p2p/%s", addrs[0], h.ID()), nil
}

func (w *benchWorker) handle(c *benchCmd) (map[string]any, error) {
	switch c.Op {
	case "start":
		params := pubsub.DefaultGossipSubParams()
		params.D, params.Dlo, params.Dhi = 6, 4, 12
		params.HeartbeatInterval = time.Duration(c.Heartbeat * float64(time.Second))
		if !c.Idontwant {
			params.IDontWantMessageThreshold = 1 << 30
		}
		addrs := map[string]string{}
		for _, i := range c.Nodes {
			h, err := newHost([]string{defaultListen})
			if err != nil {
				return nil, err
			}
			tr := &meshTracer{mesh: map[peer.ID]bool{}}
			ps, err := pubsub.NewGossipSub(w.ctx, h,
				pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
				pubsub.WithGossipSubParams(params),
				pubsub.WithFloodPublish(true),
				pubsub.WithRawTracer(tr))
			if err != nil {
				return nil, err
			}
			topic, err := ps.Join(benchTopic)
			if err != nil {
				return nil, err
			}
			w.nodes[i] = &benchNode{h: h, ps: ps, topic: topic, tracer: tr}
			w.order = append(w.order, i)
			if addrs[fmt.Sprint(i)], err = addrOf(h); err != nil {
				return nil, err
			}
		}
		return map[string]any{"addrs": addrs}, nil
	case "dial", "kad_connect":
		nodes, infos, err := w.dialList(c.Dials)
		if err != nil {
			return nil, err
		}
		out := map[string]any{"failed": w.connectAll(nodes, infos)}
		if c.Op == "kad_connect" {
			out["table"] = w.tableSizes()
		}
		return out, nil
	case "subscribe":
		for i, n := range w.nodes {
			sub, err := n.topic.Subscribe(pubsub.WithBufferSize(4096))
			if err != nil {
				return nil, err
			}
			go func(node int, sub *pubsub.Subscription, self peer.ID) {
				for {
					msg, err := sub.Next(w.ctx)
					if err != nil {
						return
					}
					if node != 0 && msg.GetFrom() != self {
						w.rec.record(node, msg.Data)
					}
				}
			}(i, sub, n.h.ID())
		}
		return map[string]any{}, nil
	case "mesh":
		sizes := []int{}
		for _, i := range w.order {
			t := w.nodes[i].tracer
			t.mu.Lock()
			sizes = append(sizes, len(t.mesh))
			t.mu.Unlock()
		}
		return map[string]any{"sizes": sizes}, nil
	case "idontwant":
		return map[string]any{"unsupported": true}, nil
	case "expect":
		return map[string]any{}, nil
	case "publish":
		n := w.nodes[0]
		if n == nil {
			return nil, errors.New("node 0 is not here")
		}
		pad := make([]byte, max(0, c.Size-16))
		_, _ = rand.Read(pad)
		t0 := monotonicNs()
		for seq := 0; seq < c.Count; seq++ {
			if c.Interval > 0 {
				due := t0 + int64(float64(seq)*c.Interval*1e9)
				if d := due - monotonicNs(); d > 0 {
					time.Sleep(time.Duration(d))
				}
			}
			msg := make([]byte, 16, 16+len(pad))
			binary.BigEndian.PutUint32(msg[0:4], c.Run)
			binary.BigEndian.PutUint32(msg[4:8], uint32(seq))
			binary.BigEndian.PutUint64(msg[8:16], uint64(monotonicNs()))
			if err := n.topic.Publish(w.ctx, append(msg, pad...)); err != nil {
				return nil, err
			}
		}
		return map[string]any{"t0_ns": t0, "t1_ns": monotonicNs()}, nil
	case "collect":
		return w.collect(c), nil
	case "bytes":
		var total int64
		for _, n := range w.nodes {
			total += n.tracer.bytes.Load()
		}
		return map[string]any{"bytes": total}, nil
	case "kad_start":
		addrs := []string{}
		for k := 0; k < c.Count; k++ {
			h, err := newHost([]string{defaultListen})
			if err != nil {
				return nil, err
			}
			d, err := dht.New(h,
				dht.Mode(dht.ModeServer),
				dht.ProtocolPrefix("/rapidp2p-interop"),
				dht.V1ProtocolOverride(kadProtocol),
				dht.NamespacedValidator("pk", record.PublicKeyValidator{}),
				dht.NamespacedValidator("test", testValidator{}),
			)
			if err != nil {
				return nil, err
			}
			w.nodes[k] = &benchNode{h: h, kad: d}
			w.order = append(w.order, k)
			a, err := addrOf(h)
			if err != nil {
				return nil, err
			}
			addrs = append(addrs, a)
		}
		return map[string]any{"addrs": addrs}, nil
	case "kad_refresh":
		var wg sync.WaitGroup
		for _, n := range w.nodes {
			wg.Add(1)
			go func(d *dht.IpfsDHT) {
				defer wg.Done()
				select {
				case <-d.RefreshRoutingTable():
				case <-time.After(60 * time.Second):
				}
			}(n.kad)
		}
		wg.Wait()
		return map[string]any{"table": w.tableSizes()}, nil
	case "kad_lookups":
		return w.lookups(c)
	case "quit":
		for _, n := range w.nodes {
			if n.kad != nil {
				_ = n.kad.Close()
			}
			_ = n.h.Close()
		}
		return map[string]any{}, nil
	}
	return nil, fmt.Errorf("unknown op %q", c.Op)
}

func (w *benchWorker) tableSizes() []int {
	sizes := []int{}
	for _, i := range w.order {
		sizes = append(sizes, w.nodes[i].kad.RoutingTable().Size())
	}
	return sizes
}

func (w *benchWorker) collect(c *benchCmd) map[string]any {
	end := time.Now().Add(time.Duration(c.Limit * float64(time.Second)))
	subs := []int{}
	for i := range w.nodes {
		if i != 0 {
			subs = append(subs, i)
		}
	}
	idle := time.Duration(c.Idle * float64(time.Second))
	for {
		w.rec.mu.Lock()
		done := true
		for _, i := range subs {
			if w.rec.counts[c.Run][i] < c.Count {
				done = false
			}
		}
		w.rec.mu.Unlock()
		if done {
			break
		}
		wait := min(idle, time.Until(end))
		if wait <= 0 {
			break
		}
		select {
		case <-w.rec.notify:
			continue
		case <-time.After(wait):
		}
		break
	}
	w.rec.mu.Lock()
	defer w.rec.mu.Unlock()
	got := 0
	for _, i := range subs {
		got += min(w.rec.counts[c.Run][i], c.Count)
	}
	lat := w.rec.lat[c.Run]
	delete(w.rec.lat, c.Run)
	if lat == nil {
		lat = []int64{}
	}
	return map[string]any{
		"got": got, "subscribers": len(subs), "lat_ns": lat, "last_ns": w.rec.last[c.Run],
	}
}

func (w *benchWorker) lookups(c *benchCmd) (map[string]any, error) {
	if len(w.order) == 0 {
		return nil, errors.New("no kad nodes (kad_start first)")
	}
	conc := max(1, c.Concurrency)
	lat := make([]int64, len(c.Keys))
	found := make([]int, len(c.Keys))
	var failed atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	start := monotonicNs()
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= len(c.Keys) {
					return
				}
				key, err := hex.DecodeString(c.Keys[k])
				if err != nil {
					failed.Add(1)
					continue
				}
				d := w.nodes[w.order[k%len(w.order)]].kad
				ctx, cancel := context.WithTimeout(w.ctx, 60*time.Second)
				t := monotonicNs()
				peers, err := d.GetClosestPeers(ctx, string(key))
				lat[k] = monotonicNs() - t
				cancel()
				if err != nil {
					failed.Add(1)
				}
				found[k] = len(peers)
			}
		}()
	}
	wg.Wait()
	return map[string]any{
		"lat_ns": lat, "found": found, "elapsed_ns": monotonicNs() - start,
		"failed": failed.Load(),
	}, nil
}

func runBenchWorker() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &benchWorker{ctx: ctx, nodes: map[int]*benchNode{}, rec: &recorder{
		counts: map[uint32]map[int]int{}, lat: map[uint32][]int64{}, last: map[uint32]int64{},
		notify: make(chan struct{}, 1),
	}}
	var outMu sync.Mutex
	reply := func(id int, body map[string]any, err error) {
		if err != nil {
			body = map[string]any{"error": err.Error()}
		}
		body["id"] = id
		line, _ := json.Marshal(body)
		outMu.Lock()
		os.Stdout.Write(append(line, '\n'))
		outMu.Unlock()
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	var wg sync.WaitGroup
	for in.Scan() {
		c := &benchCmd{}
		if err := json.Unmarshal(in.Bytes(), c); err != nil {
			return fmt.Errorf("bad command line: %w", err)
		}
		if c.Op == "quit" {
			wg.Wait()
			body, err := w.handle(c)
			reply(c.ID, body, err)
			return nil
		}
		// Setup ops run in order; publish, collect and lookups overlap (as the Python worker).
		switch c.Op {
		case "publish", "collect", "kad_lookups", "mesh", "bytes", "expect":
			wg.Add(1)
			go func() {
				defer wg.Done()
				body, err := w.handle(c)
				reply(c.ID, body, err)
			}()
		default:
			body, err := w.handle(c)
			reply(c.ID, body, err)
		}
	}
	return in.Err()
}
