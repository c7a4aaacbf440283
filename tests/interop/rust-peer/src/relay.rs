//! Circuit Relay v2 with rust-libp2p's `libp2p-relay`, for `tests/relay/test_relay_rust_interop.py`.
//!
//! ```text
//! rust-peer relay serve [--listen MA]
//! rust-peer relay listen --relay MA
//! rust-peer relay dial MA [--ping] [--echo-bytes N] [--timeout SECONDS]
//! ```
//!
//! `serve` runs a relay server (default limits: 2 minutes and 128 KiB per circuit; its listen
//! address is its external address, so reservations carry it) and prints
//! `LISTENING <ma>/p2p/<id>`. `listen` reserves on the relay MA (`.../p2p/<relay>`) and prints
//! `LISTENING MA/p2p-circuit/p2p/<id>`, serving ping and `/echo/1.0.0` over circuits. `dial`
//! reaches a `/p2p-circuit` address and prints JSON lines: `{"limited": bool}` (the connection
//! is relayed), then the checks asked for. `serve` and `listen` run until stdin closes.

use std::time::Duration;

use futures::channel::mpsc;
use futures::StreamExt;
use libp2p::core::{muxing::StreamMuxerBox, upgrade::Version};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::Transport as _;
use libp2p::{identify, noise, ping, tcp, yamux, Multiaddr, PeerId, Swarm};
use serde_json::json;

use crate::Error;

const USAGE: &str = "usage: rust-peer relay serve [--listen MA]\n       \
    rust-peer relay listen --relay MA\n       \
    rust-peer relay dial MA [--ping] [--echo-bytes N] [--timeout SECONDS]";

fn usage(msg: &str) -> ! {
    eprintln!("rust-peer: {msg}\n{USAGE}");
    std::process::exit(2);
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    stream: libp2p_stream::Behaviour,
    relay: Toggle<libp2p_relay::Behaviour>,
    client: libp2p_relay::client::Behaviour,
}

type BoxedTransport = libp2p::core::transport::Boxed<(PeerId, StreamMuxerBox)>;

/// The relay client transport, upgraded like TCP (Noise, yamux) for relayed connections.
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

fn new_swarm(server: bool) -> Result<Swarm<Behaviour>, Error> {
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
        .with_other_transport(|key| relayed(key, transport))?
        .with_behaviour(|key| Behaviour {
            identify: identify::Behaviour::new(identify::Config::new(
                "ipfs/0.1.0".to_owned(),
                key.public(),
            )),
            ping: ping::Behaviour::new(ping::Config::new()),
            stream: libp2p_stream::Behaviour::new(),
            relay: Toggle::from(
                server
                    .then(|| libp2p_relay::Behaviour::new(local, libp2p_relay::Config::default())),
            ),
            client,
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
        .build())
}

fn say_listening(addr: &Multiaddr) -> Result<(), Error> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    writeln!(out, "LISTENING {addr}")?;
    out.flush()?;
    Ok(())
}

fn stop_on_stdin_close() {
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        std::process::exit(0);
    });
}

fn serve_echo(swarm: &Swarm<Behaviour>) -> Result<(), Error> {
    let mut incoming = swarm
        .behaviour()
        .stream
        .new_control()
        .accept(crate::ECHO_PROTOCOL)
        .map_err(|e| format!("register echo: {e}"))?;
    tokio::spawn(async move {
        while let Some((peer, stream)) = incoming.next().await {
            tokio::spawn(async move {
                if let Err(e) = crate::echo_back(stream).await {
                    eprintln!("rust-peer: echo with {peer}: {e}");
                }
            });
        }
    });
    Ok(())
}

pub async fn run(args: &[String]) -> Result<(), Error> {
    let Some((mode, rest)) = args.split_first() else {
        usage("relay needs serve, listen or dial")
    };
    match mode.as_str() {
        "serve" => serve(rest).await,
        "listen" => listen(rest).await,
        "dial" => {
            let opts = crate::parse_dial(rest);
            match tokio::time::timeout(opts.timeout, dial(&opts)).await {
                Ok(result) => result,
                Err(_) => Err(format!("timed out after {:?}", opts.timeout).into()),
            }
        }
        other => usage(&format!("unknown relay mode {other:?}")),
    }
}

async fn serve(args: &[String]) -> Result<(), Error> {
    let mut listen = crate::DEFAULT_LISTEN.to_owned();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match (arg.as_str(), it.next()) {
            ("--listen", Some(v)) => listen = v.clone(),
            _ => usage(&format!("unexpected argument {arg:?}")),
        }
    }
    let mut swarm = new_swarm(true)?;
    swarm.listen_on(listen.parse()?)?;
    stop_on_stdin_close();
    let local = *swarm.local_peer_id();
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => {
                // The relay answers reservations only once it has an external address, and
                // puts those addresses in them.
                swarm.add_external_address(address.clone());
                say_listening(&address.with(Protocol::P2p(local)))?;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Relay(ev)) => {
                eprintln!("rust-peer: relay: {ev:?}")
            }
            SwarmEvent::ListenerError { error, .. } => return Err(error.into()),
            _ => {}
        }
    }
}

async fn listen(args: &[String]) -> Result<(), Error> {
    let mut relay: Option<Multiaddr> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match (arg.as_str(), it.next()) {
            ("--relay", Some(v)) => relay = Some(v.parse()?),
            _ => usage(&format!("unexpected argument {arg:?}")),
        }
    }
    let relay = relay.unwrap_or_else(|| usage("listen needs --relay MA"));
    let mut swarm = new_swarm(false)?;
    serve_echo(&swarm)?;
    swarm.listen_on(relay.clone().with(Protocol::P2pCircuit))?;
    stop_on_stdin_close();
    let local = *swarm.local_peer_id();
    let mut announced = false;
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } if !announced => {
                announced = true;
                // A circuit listen address already ends in /p2p/<our id>.
                let full = if address.iter().last() == Some(Protocol::P2p(local)) {
                    address
                } else {
                    address.with(Protocol::P2p(local))
                };
                say_listening(&full)?;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Client(ev)) => {
                eprintln!("rust-peer: relay client: {ev:?}")
            }
            SwarmEvent::ListenerClosed { reason, .. } => {
                return Err(format!("relay listener closed: {reason:?}").into())
            }
            SwarmEvent::ListenerError { error, .. } => return Err(error.into()),
            _ => {}
        }
    }
}

enum Report {
    Connected(PeerId, bool),
    DialFailed(String),
    Ping(PeerId, Result<Duration, String>),
}

async fn dial(opts: &crate::DialOptions) -> Result<(), Error> {
    let Some(Protocol::P2p(target)) = opts.addr.iter().last() else {
        return Err(format!("multiaddr {} needs /p2p/<peer id>", opts.addr).into());
    };
    let mut swarm = new_swarm(false)?;
    let mut control = swarm.behaviour().stream.new_control();
    swarm.dial(opts.addr.clone())?;
    let (tx, mut rx) = mpsc::unbounded();
    tokio::spawn(async move {
        loop {
            let report = match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished {
                    peer_id, endpoint, ..
                } => Report::Connected(peer_id, endpoint.is_relayed()),
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    Report::DialFailed(error.to_string())
                }
                SwarmEvent::Behaviour(BehaviourEvent::Ping(ev)) => {
                    Report::Ping(ev.peer, ev.result.map_err(|e| e.to_string()))
                }
                _ => continue,
            };
            if tx.unbounded_send(report).is_err() {
                return;
            }
        }
    });
    let mut limited = None;
    let mut pinged = None;
    while limited.is_none() || (opts.ping && pinged.is_none()) {
        match rx.next().await.ok_or("swarm stopped")? {
            Report::Connected(p, relayed) if p == target => {
                if limited.is_none() {
                    crate::emit(&json!({ "limited": relayed }))?;
                }
                limited = Some(relayed);
            }
            Report::DialFailed(e) => return Err(format!("connect: {e}").into()),
            Report::Ping(p, r) if p == target => pinged = pinged.or(Some(r)),
            _ => {}
        }
    }
    if let Some(r) = pinged {
        let rtt = r.map_err(|e| format!("ping: {e}"))?;
        crate::emit(&json!({ "ping_rtt_ms": rtt.as_secs_f64() * 1000.0 }))?;
    }
    if let Some(n) = opts.echo_bytes {
        let ok = crate::echo(&mut control, target, n).await?;
        crate::emit(&json!({ "echo_bytes": n, "ok": ok }))?;
        if !ok {
            return Err("echo: the bytes read back differ from the bytes sent".into());
        }
    }
    Ok(())
}
