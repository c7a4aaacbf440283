//! GossipSub with rust-libp2p's `gossipsub`, for `tests/pubsub/test_pubsub_interop.py`.
//!
//! ```text
//! rust-peer pubsub --topic T [--listen MA] [--connect MA]... [--publish MSG]...
//! ```
//!
//! Subscribes to T, prints `LISTENING <ma>/p2p/<id>` once listening and subscribed, dials every
//! `--connect`; once a peer subscribed to T is connected it publishes each `--publish`
//! (printing `PUBLISHED <msg>`), and prints `RECEIVED <data>` for every message received on T,
//! until killed or stdin closes. Messages are signed and verified strictly, peer scoring is on
//! (rust-libp2p's default parameters), message IDs are go-libp2p-pubsub's default (the `from`
//! bytes then the 8 seqno bytes), not rust-libp2p's (base58 `from` then the decimal seqno).

use std::io::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, Multiaddr};

use crate::{BehaviourEvent, Error};

const USAGE: &str = "usage: rust-peer pubsub --topic T [--listen MULTIADDR] \
                     [--connect MULTIADDR]... [--publish MSG]...";

fn usage(msg: &str) -> ! {
    eprintln!("rust-peer: {msg}\n{USAGE}");
    std::process::exit(2);
}

/// go-libp2p-pubsub's `DefaultMsgIdFn`: `from || seqno`, the bytes as they are on the wire
/// (strict validation has checked both are there and the seqno is 8 bytes, big-endian).
fn go_default_message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    let mut id = message.source.map(|p| p.to_bytes()).unwrap_or_default();
    if let Some(seqno) = message.sequence_number {
        id.extend_from_slice(&seqno.to_be_bytes());
    }
    gossipsub::MessageId::from(id)
}

/// The benchmark worker's router settings (`bench-worker`, set once before its nodes exist).
pub struct BenchParams {
    pub heartbeat: Duration,
    pub idontwant: bool,
}

pub static BENCH: OnceLock<BenchParams> = OnceLock::new();

/// The benchmark mesh's router: strict signing, D=6/4/12, the given heartbeat, flood
/// publish, no scoring, 1 MiB messages (64 KiB payloads exceed the 64 KiB default).
fn bench_behaviour(key: &Keypair, b: &BenchParams) -> Result<gossipsub::Behaviour, Error> {
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .message_id_fn(go_default_message_id)
        .heartbeat_interval(b.heartbeat)
        .mesh_n(6)
        .mesh_n_low(4)
        .mesh_n_high(12)
        .flood_publish(true)
        .max_transmit_size(1 << 20)
        .idontwant_message_size_threshold(if b.idontwant { 1024 } else { 1 << 30 })
        .build()
        .map_err(|e| format!("gossipsub config: {e}"))?;
    Ok(
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)
            .map_err(|e| format!("gossipsub: {e}"))?,
    )
}

/// A strictly signing, scoring GossipSub router for `key` (the benchmark worker's when set).
pub fn behaviour(key: &Keypair) -> Result<gossipsub::Behaviour, Error> {
    if let Some(b) = BENCH.get() {
        return bench_behaviour(key, b);
    }
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .message_id_fn(go_default_message_id)
        .build()
        .map_err(|e| format!("gossipsub config: {e}"))?;
    let mut behaviour =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)
            .map_err(|e| format!("gossipsub: {e}"))?;
    behaviour
        .with_peer_score(
            gossipsub::PeerScoreParams::default(),
            gossipsub::PeerScoreThresholds::default(),
        )
        .map_err(|e| format!("gossipsub scoring: {e}"))?;
    Ok(behaviour)
}

fn say(line: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

pub async fn run(args: &[String]) -> Result<(), Error> {
    let mut topic_name = None;
    let mut listen = crate::DEFAULT_LISTEN.to_owned();
    let mut connect: Vec<Multiaddr> = Vec::new();
    let mut publish: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = match arg.as_str() {
            "--topic" | "--listen" | "--connect" | "--publish" => it
                .next()
                .cloned()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value"))),
            other => usage(&format!("unexpected argument {other:?}")),
        };
        match arg.as_str() {
            "--topic" => topic_name = Some(value),
            "--listen" => listen = value,
            "--connect" => connect.push(
                value
                    .parse()
                    .unwrap_or_else(|e| usage(&format!("bad multiaddr {value:?}: {e}"))),
            ),
            _ => publish.push(value),
        }
    }
    let topic =
        gossipsub::IdentTopic::new(topic_name.unwrap_or_else(|| usage("pubsub needs --topic")));

    let mut swarm = crate::new_swarm(None, true)?;
    crate::behaviour_gossipsub(&mut swarm).subscribe(&topic)?;
    swarm.listen_on(listen.parse()?)?;
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        std::process::exit(0);
    });

    let local = *swarm.local_peer_id();
    let mut announced = false;
    let mut pending_publish = Some(publish);
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } if !announced => {
                announced = true;
                say(&format!("LISTENING {}", address.with(Protocol::P2p(local))))?;
                for addr in &connect {
                    swarm.dial(addr.clone())?;
                }
            }
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                return Err(format!("connect: {error}").into())
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => match event {
                gossipsub::Event::Subscribed { topic: t, .. } if t == topic.hash() => {
                    if let Some(messages) = pending_publish.take() {
                        for m in messages {
                            crate::behaviour_gossipsub(&mut swarm)
                                .publish(topic.clone(), m.as_bytes())
                                .map_err(|e| format!("publish: {e}"))?;
                            say(&format!("PUBLISHED {m}"))?;
                        }
                    }
                }
                gossipsub::Event::Message { message, .. } if message.topic == topic.hash() => {
                    say(&format!(
                        "RECEIVED {}",
                        String::from_utf8_lossy(&message.data)
                    ))?;
                }
                _ => {}
            },
            SwarmEvent::ListenerError { error, .. } => return Err(error.into()),
            _ => {}
        }
    }
}
