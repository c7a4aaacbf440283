//! Rendezvous with rust-libp2p's `rendezvous` (server and client), for
//! `tests/discovery/test_rendezvous_interop.py`.
//!
//! ```text
//! rust-peer rendezvous serve [--listen MA]
//! rust-peer rendezvous client --server MA [--listen MA] [--register NS]... [--ttl SECS]
//!                             [--discover NS] [--min-results N] [--unregister NS]
//! ```
//!
//! Both print `LISTENING <ma>/p2p/<id>` first. `serve` then prints one JSON line per server
//! event (`{"registered": ns, "peer": id}`, `{"discover_served": n, "peer": id}`, ...).
//! `client` dials the server, registers each `--register` namespace with its listen address
//! (printing `{"registered": ns, "ttl": n}` or `{"register_failed": ns, "error": ...}`),
//! then, with `--discover`, asks until at least `--min-results` registrations of other peers
//! came back (following the cookie), printing `{"discovered": [{"peer", "ns", "ttl", "addrs"}],
//! "cookie": hex}` each time, then unregisters each `--unregister` namespace and prints
//! `{"done": true}`. Both run until killed or stdin closes.

use std::io::Write as _;
use std::time::Duration;

use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, ping, rendezvous, tcp, yamux, Multiaddr, PeerId, Swarm};
use serde_json::json;

use crate::Error;

const USAGE: &str = "usage: rust-peer rendezvous serve [--listen MA]\n       \
    rust-peer rendezvous client --server MA [--listen MA] [--register NS]... [--ttl SECS] \
    [--discover NS] [--min-results N] [--unregister NS]";

fn usage(msg: &str) -> ! {
    eprintln!("rust-peer: {msg}\n{USAGE}");
    std::process::exit(2);
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    server: Toggle<rendezvous::server::Behaviour>,
    client: Toggle<rendezvous::client::Behaviour>,
}

fn new_swarm(server: bool) -> Result<Swarm<Behaviour>, Error> {
    let key = Keypair::generate_ed25519();
    Ok(libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|key| Behaviour {
            identify: identify::Behaviour::new(identify::Config::new(
                "ipfs/0.1.0".to_owned(),
                key.public(),
            )),
            ping: ping::Behaviour::new(ping::Config::new()),
            // Short TTLs allowed so tests can register for seconds, as rapidp2p's server does.
            server: Toggle::from(server.then(|| {
                rendezvous::server::Behaviour::new(
                    rendezvous::server::Config::default().with_min_ttl(1),
                )
            })),
            client: Toggle::from(
                (!server).then(|| rendezvous::client::Behaviour::new(key.clone())),
            ),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
        .build())
}

fn say(value: serde_json::Value) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}")?;
    out.flush()?;
    Ok(())
}

fn namespace(s: &str) -> rendezvous::Namespace {
    rendezvous::Namespace::new(s.to_owned()).unwrap_or_else(|_| usage("namespace too long"))
}

pub async fn run(args: &[String]) -> Result<(), Error> {
    let Some((mode, rest)) = args.split_first() else {
        usage("rendezvous needs serve or client")
    };
    let mut listen = crate::DEFAULT_LISTEN.to_owned();
    let mut server_addr: Option<Multiaddr> = None;
    let mut register: Vec<String> = Vec::new();
    let mut unregister: Vec<String> = Vec::new();
    let mut discover: Option<String> = None;
    let mut ttl: Option<u64> = None;
    let mut min_results: usize = 1;
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        let value = it
            .next()
            .cloned()
            .unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--listen" => listen = value,
            "--server" => server_addr = Some(value.parse()?),
            "--register" => register.push(value),
            "--unregister" => unregister.push(value),
            "--discover" => discover = Some(value),
            "--ttl" => ttl = Some(value.parse()?),
            "--min-results" => min_results = value.parse()?,
            other => usage(&format!("unexpected argument {other:?}")),
        }
    }
    let is_server = match mode.as_str() {
        "serve" => true,
        "client" => false,
        other => usage(&format!("unknown rendezvous mode {other:?}")),
    };
    let mut swarm = new_swarm(is_server)?;
    swarm.listen_on(listen.parse()?)?;
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        std::process::exit(0);
    });
    let local = *swarm.local_peer_id();
    let server_peer: Option<PeerId> = match &server_addr {
        Some(addr) => match addr.iter().last() {
            Some(Protocol::P2p(id)) => Some(id),
            _ => usage("--server needs a /p2p/ address"),
        },
        None if is_server => None,
        None => usage("client needs --server"),
    };
    let mut announced = false;
    let mut pending_register = register.len();
    let mut found: usize = 0;
    let mut finished = false;
    loop {
        let event = swarm.select_next_some().await;
        match event {
            SwarmEvent::NewListenAddr { address, .. } if !announced => {
                announced = true;
                // The client registers the address it listens on (loopback in tests).
                swarm.add_external_address(address.clone());
                say_line(&format!("LISTENING {}", address.with(Protocol::P2p(local))))?;
                if let Some(addr) = &server_addr {
                    swarm.dial(addr.clone())?;
                }
            }
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                return Err(format!("connect: {error}").into())
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. }
                if Some(peer_id) == server_peer && !finished =>
            {
                let client = swarm.behaviour_mut().client.as_mut().expect("client mode");
                for ns in &register {
                    client.register(namespace(ns), peer_id, ttl)?;
                }
                if register.is_empty() {
                    if let Some(ns) = &discover {
                        client.discover(Some(namespace(ns)), None, None, peer_id);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Client(event)) => {
                let server = server_peer.expect("client mode");
                let client = swarm.behaviour_mut().client.as_mut().expect("client mode");
                match event {
                    rendezvous::client::Event::Registered {
                        namespace: ns, ttl, ..
                    } => {
                        say(json!({"registered": ns.to_string(), "ttl": ttl}))?;
                        pending_register = pending_register.saturating_sub(1);
                        if pending_register == 0 {
                            match &discover {
                                Some(d) => client.discover(Some(namespace(d)), None, None, server),
                                None => {
                                    finish(client, &unregister, server)?;
                                    finished = true;
                                }
                            }
                        }
                    }
                    rendezvous::client::Event::RegisterFailed {
                        namespace: ns,
                        error,
                        ..
                    } => {
                        say(
                            json!({"register_failed": ns.to_string(), "error": format!("{error:?}")}),
                        )?;
                        return Err(format!("register {ns} failed: {error:?}").into());
                    }
                    rendezvous::client::Event::Discovered {
                        registrations,
                        cookie,
                        ..
                    } => {
                        let regs: Vec<_> = registrations
                            .iter()
                            .map(|r| {
                                json!({
                                    "peer": r.record.peer_id().to_string(),
                                    "ns": r.namespace.to_string(),
                                    "ttl": r.ttl,
                                    "addrs": r.record.addresses().iter().map(|a| a.to_string())
                                        .collect::<Vec<_>>(),
                                })
                            })
                            .collect();
                        found += registrations
                            .iter()
                            .filter(|r| r.record.peer_id() != local)
                            .count();
                        let wire = cookie.clone().into_wire_encoding();
                        let hex: String = wire.iter().map(|b| format!("{b:02x}")).collect();
                        say(json!({"discovered": regs, "cookie": hex}))?;
                        if found >= min_results {
                            finish(client, &unregister, server)?;
                            finished = true;
                        } else {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            let client =
                                swarm.behaviour_mut().client.as_mut().expect("client mode");
                            let ns = discover.as_deref().map(namespace);
                            client.discover(ns, Some(cookie), None, server);
                        }
                    }
                    rendezvous::client::Event::DiscoverFailed { error, .. } => {
                        say(json!({"discover_failed": format!("{error:?}")}))?;
                        return Err(format!("discover failed: {error:?}").into());
                    }
                    rendezvous::client::Event::Expired { peer } => {
                        say(json!({"expired": peer.to_string()}))?;
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Server(event)) => match event {
                rendezvous::server::Event::PeerRegistered { peer, registration } => say(json!({
                    "registered": registration.namespace.to_string(),
                    "peer": peer.to_string(),
                    "ttl": registration.ttl,
                }))?,
                rendezvous::server::Event::PeerNotRegistered {
                    peer,
                    namespace,
                    error,
                } => say(json!({
                    "register_refused": namespace.to_string(),
                    "peer": peer.to_string(),
                    "error": format!("{error:?}"),
                }))?,
                rendezvous::server::Event::PeerUnregistered { peer, namespace } => say(json!({
                    "unregistered": namespace.to_string(),
                    "peer": peer.to_string(),
                }))?,
                rendezvous::server::Event::DiscoverServed {
                    enquirer,
                    registrations,
                } => say(json!({
                    "discover_served": registrations.len(),
                    "peer": enquirer.to_string(),
                }))?,
                rendezvous::server::Event::DiscoverNotServed { enquirer, error } => say(json!({
                    "discover_refused": format!("{error:?}"),
                    "peer": enquirer.to_string(),
                }))?,
                rendezvous::server::Event::RegistrationExpired(r) => say(json!({
                    "expired": r.namespace.to_string(),
                    "peer": r.record.peer_id().to_string(),
                }))?,
            },
            SwarmEvent::ListenerError { error, .. } => return Err(error.into()),
            _ => {}
        }
    }
}

fn say_line(line: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

fn finish(
    client: &mut rendezvous::client::Behaviour,
    unregister: &[String],
    server: PeerId,
) -> Result<(), Error> {
    for ns in unregister {
        client.unregister(namespace(ns), server);
        say(json!({"unregistered": ns}))?;
    }
    say(json!({"done": true}))
}
