//! AutoNAT v1 (`/libp2p/autonat/1.0.0`) with rust-libp2p's `autonat` behaviour, for
//! `tests/interop/test_autonat_interop.py`.
//!
//! ```text
//! rust-peer autonat-serve [--listen MA]
//! rust-peer autonat-probe SERVER_MA [--listen MA | --no-listen] [--candidate MA]...
//! ```
//!
//! `autonat-serve` prints `LISTENING <ma>/p2p/<id>`, then one JSON line per answered request
//! (`{"inbound": "ok"|"error", "peer": id, ...}`) until stdin closes. `autonat-probe` listens on
//! 127.0.0.1 (unless `--no-listen`), adds SERVER_MA as its only server, probes at once and
//! prints `{"autonat_status": "OK"|"E_DIAL_ERROR"|..., "nat_status": ...}` for the first
//! answer, then exits (`--listen` picks another listen address). Both dial back non-global IPs (`only_global_ips = false`): the tests
//! run on loopback.

use std::io::Write as _;
use std::time::Duration;

use futures::StreamExt;
use libp2p::autonat::v1 as autonat;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use serde_json::json;

use crate::Error;

const USAGE: &str = "usage: rust-peer autonat-serve [--listen MA]\n       \
    rust-peer autonat-probe SERVER_MA [--listen MA | --no-listen] [--candidate MA]...";

fn usage(msg: &str) -> ! {
    eprintln!("rust-peer: {msg}\n{USAGE}");
    std::process::exit(2);
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    autonat: autonat::Behaviour,
}

fn new_swarm(probe: bool) -> Result<Swarm<Behaviour>, Error> {
    let key = Keypair::generate_ed25519();
    let local = key.public().to_peer_id();
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
            autonat: autonat::Behaviour::new(
                local,
                autonat::Config {
                    only_global_ips: false,
                    boot_delay: if probe {
                        Duration::from_millis(500)
                    } else {
                        Duration::from_secs(3600)
                    },
                    use_connected: false,
                    throttle_server_period: Duration::ZERO,
                    // A probe aborted early (no address yet, say) is retried at once.
                    retry_interval: Duration::from_secs(1),
                    refresh_interval: Duration::from_secs(1),
                    ..Default::default()
                },
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

fn status_name(err: &autonat::ResponseError) -> &'static str {
    match err {
        autonat::ResponseError::DialError => "E_DIAL_ERROR",
        autonat::ResponseError::DialRefused => "E_DIAL_REFUSED",
        autonat::ResponseError::BadRequest => "E_BAD_REQUEST",
        autonat::ResponseError::InternalError => "E_INTERNAL_ERROR",
    }
}

pub async fn serve(args: &[String]) -> Result<(), Error> {
    let mut listen = crate::DEFAULT_LISTEN.to_owned();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--listen" => listen = it.next().cloned().unwrap_or_else(|| usage("--listen MA")),
            other => usage(&format!("unexpected argument {other:?}")),
        }
    }
    let mut swarm = new_swarm(false)?;
    swarm.listen_on(listen.parse()?)?;
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        std::process::exit(0);
    });
    let local = *swarm.local_peer_id();
    let mut announced = false;
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } if !announced => {
                announced = true;
                say_line(&format!("LISTENING {}", address.with(Protocol::P2p(local))))?;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(autonat::Event::InboundProbe(ev))) => {
                match ev {
                    autonat::InboundProbeEvent::Response { peer, address, .. } => {
                        say(json!({"inbound": "ok", "peer": peer.to_string(),
                                   "address": address.to_string()}))?
                    }
                    autonat::InboundProbeEvent::Error { peer, error, .. } => {
                        say(json!({"inbound": "error", "peer": peer.to_string(),
                                   "error": format!("{error:?}")}))?
                    }
                    autonat::InboundProbeEvent::Request { .. } => {}
                }
            }
            _ => {}
        }
    }
}

pub async fn probe(args: &[String]) -> Result<(), Error> {
    let Some((server, rest)) = args.split_first() else {
        usage("autonat-probe needs the server's multiaddr")
    };
    let server: Multiaddr = server.parse()?;
    let Some(Protocol::P2p(server_peer)) = server.iter().last() else {
        usage("the server address needs /p2p/")
    };
    let mut listen = Some(crate::DEFAULT_LISTEN.to_owned());
    let mut candidates: Vec<Multiaddr> = Vec::new();
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--no-listen" => listen = None,
            "--listen" => {
                listen = Some(it.next().cloned().unwrap_or_else(|| usage("--listen MA")));
            }
            "--candidate" => {
                let v = it.next().unwrap_or_else(|| usage("--candidate MA"));
                candidates.push(v.parse()?);
            }
            other => usage(&format!("unexpected argument {other:?}")),
        }
    }
    let mut swarm = new_swarm(true)?;
    if let Some(l) = listen {
        swarm.listen_on(l.parse()?)?;
    }
    let local: PeerId = *swarm.local_peer_id();
    swarm
        .behaviour_mut()
        .autonat
        .add_server(server_peer, Some(server.clone()));
    for c in candidates {
        swarm.behaviour_mut().autonat.probe_address(c);
    }
    swarm.dial(server)?;
    let deadline = tokio::time::sleep(Duration::from_secs(60));
    tokio::pin!(deadline);
    loop {
        let event = tokio::select! {
            ev = swarm.select_next_some() => ev,
            _ = &mut deadline => return Err("no AutoNAT answer within 60 s".into()),
        };
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                eprintln!(
                    "rust-peer: listening on {}",
                    address.with(Protocol::P2p(local))
                );
            }
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(autonat::Event::OutboundProbe(ev))) => {
                let nat = format!("{:?}", swarm.behaviour().autonat.nat_status());
                match ev {
                    autonat::OutboundProbeEvent::Response { address, .. } => {
                        say(
                            json!({"autonat_status": "OK", "address": address.to_string(),
                                   "nat_status": nat}),
                        )?;
                        return Ok(());
                    }
                    autonat::OutboundProbeEvent::Error { error, .. } => match error {
                        autonat::OutboundProbeError::Response(e) => {
                            say(json!({"autonat_status": status_name(&e), "nat_status": nat}))?;
                            return Ok(());
                        }
                        other => eprintln!("rust-peer: probe error {other:?}"),
                    },
                    autonat::OutboundProbeEvent::Request { .. } => {}
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(autonat::Event::StatusChanged {
                old,
                new,
            })) => eprintln!("rust-peer: nat status {old:?} -> {new:?}"),
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
