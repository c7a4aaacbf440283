//! Kademlia (`/ipfs/kad/1.0.0`) with rust-libp2p's `kad`, for `tests/kad/test_kad_interop.py`.
//!
//! ```text
//! rust-peer listen [--listen MA] --dht server|client [--bootstrap MA]...
//! rust-peer dht OP KEY [VALUE] --bootstrap MA... [--timeout SECONDS]
//! ```
//!
//! OP is `put KEY VALUE`, `get KEY` (prints the value), `provide CID`, `find-providers CID`
//! (one peer id a line), `get-closest-peers KEY` (one peer id a line) or `find-peer PEER_ID`
//! (one multiaddr a line); `dht` runs a client-mode node and exits 0 on success, 1 with a
//! message otherwise. rust-libp2p's kad stores any record; when `get` finds several values
//! the greatest byte string wins (the `test` namespace rule the other stacks use).

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use libp2p::kad::{self, store::MemoryStore, GetProvidersOk, GetRecordOk, QueryId, QueryResult};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{dial_opts::DialOpts, SwarmEvent};
use libp2p::{identify, Multiaddr, PeerId, StreamProtocol, Swarm};

use crate::{Behaviour, BehaviourEvent, Error};

pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/kad/1.0.0");
const USAGE: &str = "usage: rust-peer dht put|get|provide|find-providers|get-closest-peers|\
                     find-peer KEY [VALUE] --bootstrap MULTIADDR... [--timeout SECONDS]";

fn usage(msg: &str) -> ! {
    eprintln!("rust-peer: {msg}\n{USAGE}");
    std::process::exit(2);
}

/// A kad node in the given mode (never switched automatically).
pub fn behaviour(local: PeerId, mode: kad::Mode) -> kad::Behaviour<MemoryStore> {
    let mut config = kad::Config::new(KAD_PROTOCOL);
    config.set_query_timeout(Duration::from_secs(30));
    let mut kad = kad::Behaviour::with_config(local, MemoryStore::new(local), config);
    kad.set_mode(Some(mode));
    kad
}

pub fn parse_mode(text: &str) -> kad::Mode {
    match text {
        "server" => kad::Mode::Server,
        "client" => kad::Mode::Client,
        other => crate::usage(&format!("--dht must be server or client, not {other:?}")),
    }
}

/// Learns a peer's listen addresses from identify when it serves kad (inbound connections
/// carry only the dialer's ephemeral address).
pub fn on_identified(swarm: &mut Swarm<Behaviour>, peer: PeerId, info: &identify::Info) {
    if !info.protocols.contains(&KAD_PROTOCOL) {
        return;
    }
    if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
        for addr in &info.listen_addrs {
            kad.add_address(&peer, addr.clone());
        }
    }
}

/// Adds the bootstrap peers to the routing table and dials them.
///
/// `new_port`: dial from a fresh ephemeral port instead of the listen port (libp2p-tcp's
/// default port reuse). A one-shot `dht` command's first dial decides its exit status, and on
/// a busy machine binding the dial socket to the listen port can fail with EADDRINUSE (which
/// libp2p-tcp does not retry, unlike EADDRNOTAVAIL); a long-running peer keeps port reuse.
pub fn add_bootstrap(
    swarm: &mut Swarm<Behaviour>,
    addrs: &[String],
    new_port: bool,
) -> Result<(), Error> {
    for text in addrs {
        let addr: Multiaddr = text
            .parse()
            .map_err(|e| format!("bad bootstrap multiaddr {text:?}: {e}"))?;
        let Some(Protocol::P2p(peer)) = addr.iter().last() else {
            return Err(format!("bootstrap {text} needs /p2p/<peer id>").into());
        };
        let mut bare = addr.clone();
        bare.pop();
        if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
            kad.add_address(&peer, bare);
        }
        let mut opts = DialOpts::peer_id(peer).addresses(vec![addr]);
        if new_port {
            opts = opts.allocate_new_port();
        }
        swarm.dial(opts.build())?;
    }
    Ok(())
}

enum Op {
    Put(String, String),
    Get(String),
    Provide(String),
    FindProviders(String),
    ClosestPeers(String),
    FindPeer(PeerId),
}

fn parse(args: &[String]) -> (Op, Vec<String>, Duration) {
    let mut positional = Vec::new();
    let mut bootstrap = Vec::new();
    let mut timeout = Duration::from_secs(60);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--bootstrap" => bootstrap.push(
                it.next()
                    .cloned()
                    .unwrap_or_else(|| usage("--bootstrap needs a value")),
            ),
            "--timeout" => {
                let v = it
                    .next()
                    .unwrap_or_else(|| usage("--timeout needs a value"));
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .unwrap_or_else(|| usage(&format!("bad --timeout {v:?}")));
                timeout = Duration::from_secs_f64(secs);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other if other.starts_with('-') && other.len() > 1 => {
                usage(&format!("unexpected argument {other:?}"))
            }
            other => positional.push(other.to_owned()),
        }
    }
    let op = match positional.as_slice() {
        [op, key, value] if op == "put" => Op::Put(key.clone(), value.clone()),
        [op, key] => match op.as_str() {
            "get" => Op::Get(key.clone()),
            "provide" => Op::Provide(key.clone()),
            "find-providers" => Op::FindProviders(key.clone()),
            "get-closest-peers" => Op::ClosestPeers(key.clone()),
            "find-peer" => Op::FindPeer(
                key.parse()
                    .unwrap_or_else(|e| usage(&format!("bad peer id {key:?}: {e}"))),
            ),
            other => usage(&format!("unknown dht operation {other:?}")),
        },
        _ => usage("dht needs OP KEY [VALUE]"),
    };
    (op, bootstrap, timeout)
}

/// `rust-peer dht ...`: a client-mode node that bootstraps, runs one operation, prints it.
pub async fn run(args: &[String]) -> Result<(), Error> {
    let (op, bootstrap, timeout) = parse(args);
    if bootstrap.is_empty() {
        usage("dht needs at least one --bootstrap MULTIADDR");
    }
    match tokio::time::timeout(timeout, run_op(op, &bootstrap)).await {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {timeout:?}").into()),
    }
}

async fn run_op(op: Op, bootstrap: &[String]) -> Result<(), Error> {
    let mut swarm = crate::new_swarm(Some(kad::Mode::Client), false)?;
    // Listening gives provider records an address to carry.
    swarm.listen_on(crate::DEFAULT_LISTEN.parse()?)?;
    add_bootstrap(&mut swarm, bootstrap, true)?;
    wait_connected(&mut swarm).await?;
    let id = kad_mut(&mut swarm).bootstrap()?;
    query(&mut swarm, id).await;

    let kad = kad_mut(&mut swarm);
    match op {
        Op::Put(key, value) => {
            let record = kad::Record::new(key.into_bytes(), value.into_bytes());
            let id = kad.put_record(record, kad::Quorum::One)?;
            for result in query(&mut swarm, id).await {
                if let QueryResult::PutRecord(r) = result {
                    r.map_err(|e| format!("put: {e}"))?;
                }
            }
        }
        Op::Get(key) => {
            let id = kad.get_record(kad::RecordKey::new(&key));
            let mut values = Vec::new();
            for result in query(&mut swarm, id).await {
                if let QueryResult::GetRecord(Ok(GetRecordOk::FoundRecord(found))) = result {
                    values.push(found.record.value);
                }
            }
            let best = values.into_iter().max().ok_or("get: no record found")?;
            println!("{}", String::from_utf8_lossy(&best));
        }
        Op::Provide(cid) => {
            let id = kad.start_providing(kad::RecordKey::new(&cid_multihash(&cid)?))?;
            for result in query(&mut swarm, id).await {
                if let QueryResult::StartProviding(r) = result {
                    r.map_err(|e| format!("provide: {e}"))?;
                }
            }
        }
        Op::FindProviders(cid) => {
            let id = kad.get_providers(kad::RecordKey::new(&cid_multihash(&cid)?));
            let mut found = BTreeSet::new();
            for result in query(&mut swarm, id).await {
                if let QueryResult::GetProviders(Ok(GetProvidersOk::FoundProviders {
                    providers,
                    ..
                })) = result
                {
                    found.extend(providers);
                }
            }
            if found.is_empty() {
                return Err(format!("no provider of {cid} found").into());
            }
            for p in found {
                println!("{p}");
            }
        }
        Op::ClosestPeers(key) => {
            let id = kad.get_closest_peers(key.into_bytes());
            let peers = closest(query(&mut swarm, id).await)?;
            if peers.is_empty() {
                return Err("no peer found".into());
            }
            for p in peers {
                println!("{}", p.peer_id);
            }
        }
        Op::FindPeer(target) => {
            let id = kad.get_closest_peers(target);
            let peers = closest(query(&mut swarm, id).await)?;
            let info = peers
                .into_iter()
                .find(|p| p.peer_id == target && !p.addrs.is_empty())
                .ok_or_else(|| format!("find-peer: {target} not found"))?;
            // Bare transport addresses, as the other stacks print them (kad appends /p2p).
            let mut printed = Vec::new();
            for mut a in info.addrs {
                if let Some(Protocol::P2p(_)) = a.iter().last() {
                    a.pop();
                }
                if !printed.contains(&a) {
                    println!("{a}");
                    printed.push(a);
                }
            }
        }
    }
    // ADD_PROVIDER has no reply: let the muxer flush before the process exits.
    let linger = tokio::time::sleep(Duration::from_millis(500));
    tokio::pin!(linger);
    loop {
        tokio::select! {
            () = &mut linger => return Ok(()),
            event = swarm.select_next_some() => on_other_event(&mut swarm, event),
        }
    }
}

fn kad_mut(swarm: &mut Swarm<Behaviour>) -> &mut kad::Behaviour<MemoryStore> {
    swarm
        .behaviour_mut()
        .kad
        .as_mut()
        .expect("the dht swarm runs kad")
}

fn closest(results: Vec<QueryResult>) -> Result<Vec<kad::PeerInfo>, Error> {
    let mut peers = Vec::new();
    for result in results {
        match result {
            QueryResult::GetClosestPeers(Ok(ok)) => peers.extend(ok.peers),
            QueryResult::GetClosestPeers(Err(kad::GetClosestPeersError::Timeout {
                peers: p,
                ..
            })) => peers.extend(p),
            _ => {}
        }
    }
    Ok(peers)
}

async fn wait_connected(swarm: &mut Swarm<Behaviour>) -> Result<(), Error> {
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::ConnectionEstablished { .. } => return Ok(()),
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                return Err(format!("connect to bootstrap: {error}").into())
            }
            other => on_other_event(swarm, other),
        }
    }
}

/// Keeps the address book current while a dht command waits for something else.
fn on_other_event(swarm: &mut Swarm<Behaviour>, event: SwarmEvent<BehaviourEvent>) {
    match event {
        // Provider records carry the confirmed (external) addresses only.
        SwarmEvent::NewListenAddr { address, .. } => swarm.add_external_address(address),
        SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
            peer_id,
            info,
            ..
        })) => on_identified(swarm, peer_id, &info),
        _ => {}
    }
}

/// Drives the swarm until query `id` ends; every result it produced, in order.
async fn query(swarm: &mut Swarm<Behaviour>, id: QueryId) -> Vec<QueryResult> {
    let mut results = Vec::new();
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id: qid,
                result,
                step,
                ..
            })) if qid == id => {
                results.push(result);
                if step.last {
                    return results;
                }
            }
            other => on_other_event(swarm, other),
        }
    }
}

/// A CID's multihash: the key go-libp2p-kad-dht (and rapidp2p) file providers under.
/// Accepts CIDv0 (base58btc `Qm...`) and CIDv1 in base32 (`b...`).
fn cid_multihash(text: &str) -> Result<Vec<u8>, Error> {
    if text.starts_with("Qm") {
        return Ok(bs58::decode(text).into_vec()?);
    }
    let body = text
        .strip_prefix('b')
        .ok_or_else(|| format!("CID {text:?}: only CIDv0 and base32 CIDv1 are supported"))?;
    let bytes = base32_decode(body).ok_or_else(|| format!("CID {text:?}: bad base32"))?;
    let (version, rest) = varint(&bytes).ok_or("CID: bad version")?;
    if version != 1 {
        return Err(format!("CID {text:?}: version {version}").into());
    }
    let (_codec, multihash) = varint(rest).ok_or("CID: bad codec")?;
    Ok(multihash.to_vec())
}

/// RFC 4648 base32, lower case, no padding (multibase `b`).
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(9) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}
