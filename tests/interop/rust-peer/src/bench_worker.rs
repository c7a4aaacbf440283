//! rust-libp2p nodes for rapidp2p's GossipSub and Kademlia benchmarks (`benches/pubsub_mesh.py`,
//! `benches/kad_mixed.py`), driven by JSON lines on stdin:
//!
//! ```text
//! rust-peer bench-worker
//! ```
//!
//! Each stdin line is `{"id": N, "op": OP, ...}`; each gets one stdout line `{"id": N, ...}` (or
//! `{"id": N, "error": "..."}`). The pubsub ops are those of `benches/pubsub_mesh_worker.py`:
//! `start {nodes, heartbeat, idontwant} -> {addrs}`, `dial {dials: [[node, addr]]}`,
//! `subscribe`, `mesh -> {sizes}`, `idontwant` (fixed at start here: `{"unsupported": true}`),
//! `expect`, `publish {run, size, count, interval} -> {t0_ns, t1_ns}`,
//! `collect {run, count, idle, limit} -> {got, subscribers, lat_ns, last_ns}`, `bytes` (not
//! counted here: `{"bytes": null}`), `quit`. GossipSub signs and verifies strictly, D=6/4/12,
//! flood publish on, no peer scoring, 1 MiB messages allowed (the default is 64 KiB).
//! Kademlia: `kad_start {count} -> {addrs}` (server-mode nodes), `kad_connect {dials}`,
//! `kad_refresh -> {table}` (a bootstrap query per node), `kad_lookups {keys: [hex],
//! concurrency} -> {lat_ns, found, elapsed_ns, failed}`. Times are CLOCK_MONOTONIC ns.
//! Every node is its own swarm, driven by its own task on a 2-thread tokio runtime.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use libp2p::identify;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, kad, Multiaddr, PeerId, Swarm};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::{Behaviour, BehaviourEvent, Error};

const TOPIC: &str = "bench";

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// CLOCK_MONOTONIC in ns: the clock every worker process on the machine shares.
fn monotonic_ns() -> i64 {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec (two i64 on 64-bit Linux) to a valid pointer.
    unsafe { clock_gettime(1, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Per run: messages each local subscriber got, their latencies, the last arrival.
#[derive(Default)]
struct Recorder {
    counts: HashMap<u32, HashMap<i64, i64>>,
    lat: HashMap<u32, Vec<i64>>,
    last: HashMap<u32, i64>,
}

enum Cmd {
    Dial(Multiaddr, oneshot::Sender<bool>),
    Subscribe,
    Mesh(oneshot::Sender<usize>),
    Publish(Vec<u8>, oneshot::Sender<Result<(), String>>),
    Table(oneshot::Sender<usize>),
    Refresh(oneshot::Sender<()>),
    Lookup(Vec<u8>, oneshot::Sender<(usize, bool)>),
}

enum Pending {
    Lookup(oneshot::Sender<(usize, bool)>),
    Refresh(oneshot::Sender<()>),
}

struct Shared {
    rec: Mutex<Recorder>,
    progress: Notify,
}

/// One node's task: its swarm's events and the worker's commands.
async fn node_task(
    index: i64,
    mut swarm: Swarm<Behaviour>,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    shared: Arc<Shared>,
) {
    let topic = gossipsub::IdentTopic::new(TOPIC);
    let mut dials: HashMap<PeerId, Vec<oneshot::Sender<bool>>> = HashMap::new();
    let mut queries: HashMap<kad::QueryId, Pending> = HashMap::new();
    loop {
        tokio::select! {
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { return };
                match cmd {
                    Cmd::Dial(addr, tx) => {
                        let Some(Protocol::P2p(peer)) = addr.iter().last() else {
                            let _ = tx.send(false);
                            continue;
                        };
                        if let Some(k) = swarm.behaviour_mut().kad.as_mut() {
                            k.add_address(&peer, addr.clone());
                        }
                        if swarm.is_connected(&peer) {
                            let _ = tx.send(true);
                        } else if swarm.dial(addr).is_ok() {
                            dials.entry(peer).or_default().push(tx);
                        } else {
                            let _ = tx.send(false);
                        }
                    }
                    Cmd::Subscribe => {
                        if let Some(g) = swarm.behaviour_mut().gossipsub.as_mut() {
                            let _ = g.subscribe(&topic);
                        }
                    }
                    Cmd::Mesh(tx) => {
                        let n = swarm.behaviour().gossipsub.as_ref()
                            .map_or(0, |g| g.mesh_peers(&topic.hash()).count());
                        let _ = tx.send(n);
                    }
                    Cmd::Publish(data, tx) => {
                        let r = match swarm.behaviour_mut().gossipsub.as_mut() {
                            Some(g) => g.publish(topic.clone(), data).map(|_| ()).map_err(|e| e.to_string()),
                            None => Err("no gossipsub".into()),
                        };
                        let _ = tx.send(r);
                    }
                    Cmd::Table(tx) => {
                        let n = swarm.behaviour_mut().kad.as_mut()
                            .map_or(0, |k| k.kbuckets().map(|b| b.num_entries()).sum());
                        let _ = tx.send(n);
                    }
                    Cmd::Refresh(tx) => match swarm.behaviour_mut().kad.as_mut().map(|k| k.bootstrap()) {
                        Some(Ok(id)) => { queries.insert(id, Pending::Refresh(tx)); }
                        _ => { let _ = tx.send(()); }
                    },
                    Cmd::Lookup(key, tx) => match swarm.behaviour_mut().kad.as_mut() {
                        Some(k) => { queries.insert(k.get_closest_peers(key), Pending::Lookup(tx)); }
                        None => { let _ = tx.send((0, false)); }
                    },
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                    for tx in dials.remove(&peer_id).unwrap_or_default() {
                        let _ = tx.send(true);
                    }
                }
                SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), .. } => {
                    for tx in dials.remove(&peer).unwrap_or_default() {
                        let _ = tx.send(false);
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                    peer_id, info, ..
                })) => crate::dht::on_identified(&mut swarm, peer_id, &info),
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                    message, ..
                })) if index != 0 && message.data.len() >= 16 => {
                    let now = monotonic_ns();
                    let d = &message.data;
                    let run = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
                    let mut t = [0u8; 8];
                    t.copy_from_slice(&d[8..16]);
                    let sent = i64::from_be_bytes(t);
                    let mut rec = shared.rec.lock().expect("recorder lock");
                    *rec.counts.entry(run).or_default().entry(index).or_default() += 1;
                    rec.lat.entry(run).or_default().push(now - sent);
                    rec.last.insert(run, now);
                    drop(rec);
                    shared.progress.notify_waiters();
                }
                SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                    id, result, step, ..
                })) => {
                    if !step.last {
                        continue;
                    }
                    match (queries.remove(&id), result) {
                        (Some(Pending::Lookup(tx)), kad::QueryResult::GetClosestPeers(r)) => {
                            let _ = tx.send(match r {
                                Ok(ok) => (ok.peers.len(), true),
                                Err(kad::GetClosestPeersError::Timeout { peers, .. }) => (peers.len(), false),
                            });
                        }
                        (Some(Pending::Refresh(tx)), _) => { let _ = tx.send(()); }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
    }
}

struct Worker {
    nodes: BTreeMap<i64, mpsc::UnboundedSender<Cmd>>,
    shared: Arc<Shared>,
}

fn int(v: &Value, key: &str) -> Result<i64, Error> {
    v.get(key)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("missing integer {key:?}").into())
}

fn float(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

impl Worker {
    async fn spawn_node(&mut self, index: i64, dht: bool) -> Result<String, Error> {
        let mut swarm = if dht {
            crate::new_swarm(Some(kad::Mode::Server), false)?
        } else {
            crate::new_swarm(None, true)?
        };
        swarm.listen_on(crate::DEFAULT_LISTEN.parse()?)?;
        let local = *swarm.local_peer_id();
        let addr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                break address.with(Protocol::P2p(local));
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(node_task(index, swarm, rx, self.shared.clone()));
        self.nodes.insert(index, tx);
        Ok(addr.to_string())
    }

    fn node(&self, index: i64) -> Result<mpsc::UnboundedSender<Cmd>, Error> {
        self.nodes
            .get(&index)
            .cloned()
            .ok_or_else(|| format!("no local node {index}").into())
    }

    async fn dial(&self, cmd: &Value) -> Result<Value, Error> {
        let mut waits = Vec::new();
        for d in cmd
            .get("dials")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let node = d.get(0).and_then(Value::as_i64).ok_or("bad dial")?;
            let addr: Multiaddr = d
                .get(1)
                .and_then(Value::as_str)
                .ok_or("bad dial")?
                .parse()?;
            let (tx, rx) = oneshot::channel();
            self.node(node)?
                .send(Cmd::Dial(addr, tx))
                .map_err(|_| "node gone")?;
            waits.push(rx);
        }
        let mut failed = 0;
        for rx in waits {
            match tokio::time::timeout(Duration::from_secs(30), rx).await {
                Ok(Ok(true)) => {}
                _ => failed += 1,
            }
        }
        Ok(json!({ "failed": failed }))
    }

    async fn ask<T>(&self, make: impl Fn(oneshot::Sender<T>) -> Cmd) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        for tx in self.nodes.values() {
            let (otx, orx) = oneshot::channel();
            tx.send(make(otx)).map_err(|_| "node gone")?;
            out.push(orx.await?);
        }
        Ok(out)
    }

    async fn publish(&self, cmd: &Value) -> Result<Value, Error> {
        let node = self.node(0)?;
        let run = int(cmd, "run")? as u32;
        let size = int(cmd, "size")? as usize;
        let count = int(cmd, "count")?;
        let interval = float(cmd, "interval");
        // Incompressible filler (xorshift64): nothing on the path compresses, but be honest.
        let mut x = (monotonic_ns() as u64) | 1;
        let pad: Vec<u8> = (0..size.saturating_sub(16))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let t0 = monotonic_ns();
        for seq in 0..count {
            if interval > 0.0 {
                let due = t0 + (seq as f64 * interval * 1e9) as i64;
                let wait = due - monotonic_ns();
                if wait > 0 {
                    tokio::time::sleep(Duration::from_nanos(wait as u64)).await;
                }
            }
            let mut msg = Vec::with_capacity(16 + pad.len());
            msg.extend_from_slice(&run.to_be_bytes());
            msg.extend_from_slice(&(seq as u32).to_be_bytes());
            msg.extend_from_slice(&monotonic_ns().to_be_bytes());
            msg.extend_from_slice(&pad);
            let (tx, rx) = oneshot::channel();
            node.send(Cmd::Publish(msg, tx)).map_err(|_| "node gone")?;
            rx.await?.map_err(|e| format!("publish: {e}"))?;
        }
        Ok(json!({ "t0_ns": t0, "t1_ns": monotonic_ns() }))
    }

    async fn collect(&self, cmd: &Value) -> Result<Value, Error> {
        let run = int(cmd, "run")? as u32;
        let count = int(cmd, "count")?;
        let idle = Duration::from_secs_f64(float(cmd, "idle"));
        let end = tokio::time::Instant::now() + Duration::from_secs_f64(float(cmd, "limit"));
        let subs: Vec<i64> = self.nodes.keys().copied().filter(|&i| i != 0).collect();
        loop {
            let notified = self.shared.progress.notified();
            {
                let rec = self.shared.rec.lock().expect("recorder lock");
                let c = rec.counts.get(&run);
                let got = |i: &i64| c.and_then(|c| c.get(i)).copied().unwrap_or(0);
                if subs.iter().all(|i| got(i) >= count) {
                    break;
                }
            }
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero()
                || tokio::time::timeout(idle.min(left), notified)
                    .await
                    .is_err()
            {
                break;
            }
        }
        let mut rec = self.shared.rec.lock().expect("recorder lock");
        let got: i64 = {
            let c = rec.counts.get(&run);
            subs.iter()
                .map(|i| c.and_then(|c| c.get(i)).copied().unwrap_or(0).min(count))
                .sum()
        };
        let lat = rec.lat.remove(&run).unwrap_or_default();
        let last = rec.last.get(&run).copied().unwrap_or(0);
        Ok(json!({ "got": got, "subscribers": subs.len(), "lat_ns": lat, "last_ns": last }))
    }

    async fn lookups(&self, cmd: &Value) -> Result<Value, Error> {
        let keys: Vec<Vec<u8>> = cmd
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("missing keys")?
            .iter()
            .map(|k| decode_hex(k.as_str().unwrap_or("")))
            .collect::<Result<_, _>>()?;
        let conc = int(cmd, "concurrency").unwrap_or(1).max(1) as usize;
        let nodes: Vec<_> = self.nodes.values().cloned().collect();
        if nodes.is_empty() {
            return Err("no kad nodes (kad_start first)".into());
        }
        let n = keys.len();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let keys = Arc::new(keys);
        let results = Arc::new(Mutex::new(vec![(0i64, 0usize, true); n]));
        let start = monotonic_ns();
        let mut tasks = Vec::new();
        for _ in 0..conc {
            let (next, keys, results, nodes) =
                (next.clone(), keys.clone(), results.clone(), nodes.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if k >= keys.len() {
                        return;
                    }
                    let (tx, rx) = oneshot::channel();
                    let t = monotonic_ns();
                    let sent = nodes[k % nodes.len()].send(Cmd::Lookup(keys[k].clone(), tx));
                    let got = match (
                        sent,
                        tokio::time::timeout(Duration::from_secs(60), rx).await,
                    ) {
                        (Ok(()), Ok(Ok(r))) => r,
                        _ => (0, false),
                    };
                    results.lock().expect("results lock")[k] = (monotonic_ns() - t, got.0, got.1);
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        let elapsed = monotonic_ns() - start;
        let r = results.lock().expect("results lock");
        Ok(json!({
            "lat_ns": r.iter().map(|x| x.0).collect::<Vec<_>>(),
            "found": r.iter().map(|x| x.1).collect::<Vec<_>>(),
            "failed": r.iter().filter(|x| !x.2).count(),
            "elapsed_ns": elapsed,
        }))
    }
}

fn decode_hex(s: &str) -> Result<Vec<u8>, Error> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("bad hex key {s:?}").into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("bad hex: {e}").into()))
        .collect()
}

async fn handle(worker: &Arc<tokio::sync::RwLock<Worker>>, cmd: &Value) -> Result<Value, Error> {
    let op = cmd.get("op").and_then(Value::as_str).unwrap_or("");
    match op {
        "start" | "kad_start" => {
            let mut w = worker.write().await;
            if op == "start" {
                let heartbeat = Duration::from_secs_f64(float(cmd, "heartbeat").max(0.01));
                let idontwant = cmd
                    .get("idontwant")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                let _ = crate::pubsub::BENCH.set(crate::pubsub::BenchParams {
                    heartbeat,
                    idontwant,
                });
                let mut addrs = serde_json::Map::new();
                for i in cmd
                    .get("nodes")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    let i = i.as_i64().ok_or("bad node index")?;
                    addrs.insert(i.to_string(), Value::String(w.spawn_node(i, false).await?));
                }
                Ok(json!({ "addrs": addrs }))
            } else {
                let mut addrs = Vec::new();
                for i in 0..int(cmd, "count")? {
                    addrs.push(w.spawn_node(i, true).await?);
                }
                Ok(json!({ "addrs": addrs }))
            }
        }
        "dial" | "kad_connect" => {
            let w = worker.read().await;
            let mut out = w.dial(cmd).await?;
            if op == "kad_connect" {
                out["table"] = json!(w.ask(Cmd::Table).await?);
            }
            Ok(out)
        }
        "subscribe" => {
            let w = worker.read().await;
            for tx in w.nodes.values() {
                tx.send(Cmd::Subscribe).map_err(|_| "node gone")?;
            }
            Ok(json!({}))
        }
        "mesh" => Ok(json!({ "sizes": worker.read().await.ask(Cmd::Mesh).await? })),
        "idontwant" => Ok(json!({ "unsupported": true })),
        "expect" | "quit" => Ok(json!({})),
        "bytes" => Ok(json!({ "bytes": null })),
        "publish" => worker.read().await.publish(cmd).await,
        "collect" => worker.read().await.collect(cmd).await,
        "kad_refresh" => {
            let w = worker.read().await;
            let mut waits = Vec::new();
            for tx in w.nodes.values() {
                let (otx, orx) = oneshot::channel();
                tx.send(Cmd::Refresh(otx)).map_err(|_| "node gone")?;
                waits.push(orx);
            }
            for rx in waits {
                let _ = tokio::time::timeout(Duration::from_secs(60), rx).await;
            }
            Ok(json!({ "table": w.ask(Cmd::Table).await? }))
        }
        "kad_lookups" => worker.read().await.lookups(cmd).await,
        other => Err(format!("unknown op {other:?}").into()),
    }
}

pub fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rust-peer: tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve());
    std::process::ExitCode::SUCCESS
}

async fn serve() {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let worker = Arc::new(tokio::sync::RwLock::new(Worker {
        nodes: BTreeMap::new(),
        shared: Arc::new(Shared {
            rec: Mutex::new(Recorder::default()),
            progress: Notify::new(),
        }),
    }));
    let out = Arc::new(Mutex::new(()));
    let reply = move |id: Value, r: Result<Value, Error>| {
        let mut body = r.unwrap_or_else(|e| json!({ "error": e.to_string() }));
        body["id"] = id;
        let _guard = out.lock().expect("stdout lock");
        println!("{body}");
    };
    while let Some(line) = rx.recv().await {
        let Ok(cmd) = serde_json::from_str::<Value>(&line) else {
            eprintln!("rust-peer: bad command line {line:?}");
            return;
        };
        let id = cmd.get("id").cloned().unwrap_or(Value::Null);
        let op = cmd
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if matches!(
            op.as_str(),
            "publish" | "collect" | "kad_lookups" | "mesh" | "expect"
        ) {
            let (worker, reply) = (worker.clone(), reply.clone());
            tokio::spawn(async move {
                let r = handle(&worker, &cmd).await;
                reply(id, r);
            });
        } else {
            let r = handle(&worker, &cmd).await;
            reply(id, r);
            if op == "quit" {
                return;
            }
        }
    }
}
