//! DCUtR hole punching with rust-libp2p's `libp2p-dcutr`, for `tests/nat/test_dcutr_netns.py`.
//!
//! ```text
//! rust-peer holepunch --listen MA... --relay MA [--dial MA]
//! ```
//!
//! TCP and QUIC, the relay client transport, identify (whose observed addresses become the
//! address candidates DCUtR offers), ping every second and `dcutr::Behaviour`. It connects to
//! the relay, then either reserves there and prints `{"addrs": ["<relay>/p2p-circuit/p2p/<id>"]}`
//! (no `--dial`) or dials `--dial` through the relay and prints `{"relayed": ..., "limited": true}`.
//! Each DCUtR outcome is a line `{"hole_punch": "succeeded"|"failed", ...}`; a line `ping` on
//! stdin prints the next ping round trip with the peer and the connection that carried it:
//! `{"ping": seconds, "limited": bool, "addr": ...}`. Runs until stdin closes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::StreamExt;
use libp2p::core::{muxing::StreamMuxerBox, upgrade::Version};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::Transport as _;
use libp2p::{dcutr, identify, noise, ping, tcp, yamux, Multiaddr, PeerId, Swarm};
use serde_json::json;

use crate::Error;

fn usage(msg: &str) -> ! {
    eprintln!("rust-peer: {msg}\nusage: rust-peer holepunch --listen MA... --relay MA [--dial MA]");
    std::process::exit(2);
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    client: libp2p_relay::client::Behaviour,
    dcutr: dcutr::Behaviour,
}

type BoxedTransport = libp2p::core::transport::Boxed<(PeerId, StreamMuxerBox)>;

fn relayed(
    key: &Keypair,
    transport: libp2p_relay::client::Transport,
) -> Result<BoxedTransport, Error> {
    Ok(transport
        .upgrade(Version::V1)
        .authenticate(noise::Config::new(key)?)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
        .boxed())
}

fn new_swarm() -> Result<Swarm<Behaviour>, Error> {
    let key = Keypair::generate_ed25519();
    let local = key.public().to_peer_id();
    let (transport, client) = libp2p_relay::client::new(local);
    Ok(libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_quic()
        .with_other_transport(|key| relayed(key, transport))?
        .with_behaviour(|key| Behaviour {
            identify: identify::Behaviour::new(identify::Config::new(
                "ipfs/0.1.0".to_owned(),
                key.public(),
            )),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(1))),
            client,
            dcutr: dcutr::Behaviour::new(local),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
        .build())
}

/// Lines of stdin, read on a thread; the process exits when stdin closes.
fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded();
    std::thread::spawn(move || {
        let mut line = String::new();
        loop {
            line.clear();
            match std::io::stdin().read_line(&mut line) {
                Ok(0) | Err(_) => std::process::exit(0),
                Ok(_) => {
                    if tx.unbounded_send(line.trim().to_owned()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

pub async fn run(args: &[String]) -> Result<(), Error> {
    let mut listen: Vec<Multiaddr> = Vec::new();
    let mut relay: Option<Multiaddr> = None;
    let mut dial: Option<Multiaddr> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match (arg.as_str(), it.next()) {
            ("--listen", Some(v)) => listen.push(v.parse()?),
            ("--relay", Some(v)) => relay = Some(v.parse()?),
            ("--dial", Some(v)) => dial = Some(v.parse()?),
            _ => usage(&format!("unexpected argument {arg:?}")),
        }
    }
    let relay = relay.unwrap_or_else(|| usage("holepunch needs --relay MA"));
    if listen.is_empty() {
        usage("holepunch needs --listen MA");
    }
    let Some(Protocol::P2p(relay_id)) = relay.iter().last() else {
        return Err(format!("relay {relay} needs /p2p/<id>").into());
    };
    let mut swarm = new_swarm()?;
    let local = *swarm.local_peer_id();
    for a in &listen {
        swarm.listen_on(a.clone())?;
    }
    // Listen first (dials then leave from the listen port), then meet the relay and wait for
    // its identify: the observed address is the candidate DCUtR will offer.
    let mut listening = 0;
    while listening < listen.len() {
        if let SwarmEvent::NewListenAddr { .. } = swarm.select_next_some().await {
            listening += 1;
        }
    }
    swarm.dial(relay.clone())?;
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                ..
            })) if peer_id == relay_id => break,
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                return Err(format!("connect to relay: {error}").into())
            }
            _ => {}
        }
    }
    let mut target: Option<PeerId> = None;
    match &dial {
        None => {
            swarm.listen_on(relay.clone().with(Protocol::P2pCircuit))?;
        }
        Some(addr) => {
            let Some(Protocol::P2p(p)) = addr.iter().last() else {
                return Err(format!("{addr} needs /p2p/<peer id>").into());
            };
            target = Some(p);
            swarm.dial(addr.clone())?;
        }
    }
    let start = Instant::now();
    let mut commands = stdin_lines();
    let mut conns: HashMap<ConnectionId, (PeerId, bool, Multiaddr)> = HashMap::new();
    let mut want_ping = false;
    loop {
        tokio::select! {
            cmd = commands.next() => {
                if cmd.as_deref() == Some("ping") {
                    want_ping = true;
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. }
                    if address.iter().any(|p| p == Protocol::P2pCircuit) =>
                {
                    let full = if address.iter().last() == Some(Protocol::P2p(local)) {
                        address
                    } else {
                        address.with(Protocol::P2p(local))
                    };
                    crate::emit(&json!({ "peer_id": local.to_string(), "addrs": [full.to_string()] }))?;
                }
                SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                    let relayed = endpoint.is_relayed();
                    let addr = endpoint.get_remote_address().clone();
                    if peer_id != relay_id {
                        if target.is_none() {
                            target = Some(peer_id);
                        }
                        if relayed && dial.is_some() && Some(peer_id) == target {
                            crate::emit(&json!({ "relayed": addr.to_string(), "limited": true }))?;
                        }
                    }
                    conns.insert(connection_id, (peer_id, relayed, addr));
                }
                SwarmEvent::ConnectionClosed { connection_id, .. } => {
                    conns.remove(&connection_id);
                }
                SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                    eprintln!("rust-peer: dial to {peer_id:?} failed: {error}");
                }
                SwarmEvent::Behaviour(BehaviourEvent::Dcutr(ev)) => {
                    let record = match &ev.result {
                        Ok(id) => json!({
                            "hole_punch": "succeeded",
                            "peer": ev.remote_peer_id.to_string(),
                            "addr": conns.get(id).map(|c| c.2.to_string()),
                            "seconds": start.elapsed().as_secs_f64(),
                        }),
                        Err(e) => json!({
                            "hole_punch": "failed",
                            "peer": ev.remote_peer_id.to_string(),
                            "error": e.to_string(),
                            "seconds": start.elapsed().as_secs_f64(),
                        }),
                    };
                    crate::emit(&record)?;
                }
                SwarmEvent::Behaviour(BehaviourEvent::Ping(ev)) if want_ping && Some(ev.peer) == target => {
                    if let (Ok(rtt), Some((_, relayed, addr))) = (&ev.result, conns.get(&ev.connection)) {
                        // A direct connection's round trip is what the tests ask about.
                        if !relayed || !conns.values().any(|c| Some(c.0) == target && !c.1) {
                            crate::emit(&json!({
                                "ping": rtt.as_secs_f64(), "limited": relayed, "addr": addr.to_string(),
                            }))?;
                            want_ping = false;
                        }
                    }
                }
                _ => {}
            }
        }
    }
}
