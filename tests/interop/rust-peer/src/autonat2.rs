//! AutoNAT v2 (`/libp2p/autonat/2/dial-request`, `/dial-back`) with rust-libp2p's
//! `autonat::v2` behaviours, for `tests/interop/test_autonat_interop.py`.
//!
//! ```text
//! rust-peer autonat2-serve [--listen MA]
//! rust-peer autonat2-client [--listen MA] [--connect MA]
//! ```
//!
//! Both print `LISTENING <ma>/p2p/<id>` first. `autonat2-serve` then prints one JSON line per
//! request it served (`{"served": addr, "data_amount": n, "ok": bool}`). `autonat2-client`
//! dials `--connect` (rust-libp2p sends dial requests on outbound connections only: it takes
//! inbound ones for dial-backs), waits until identify gave it an address candidate (its listen
//! port on the IP the server sees it at, by identify's address translation), lets it test
//! that candidate, prints `{"autonat2_tested": addr, "bytes_sent": n, "ok": bool, "error":
//! ...}` for the first result and exits. Both run until stdin closes otherwise.

use std::io::Write as _;
use std::time::Duration;

use futures::StreamExt;
use libp2p::autonat::v2 as autonat;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, tcp, yamux, Swarm};
use serde_json::json;

use crate::Error;

const USAGE: &str = "usage: rust-peer autonat2-serve [--listen MA]\n       \
    rust-peer autonat2-client [--listen MA] [--connect MA]";

fn usage(msg: &str) -> ! {
    eprintln!("rust-peer: {msg}\n{USAGE}");
    std::process::exit(2);
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    server: Toggle<autonat::server::Behaviour>,
    client: Toggle<autonat::client::Behaviour>,
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
            server: Toggle::from(server.then(autonat::server::Behaviour::default)),
            // The defaults: a candidate is tested every 5 s.
            client: Toggle::from((!server).then(autonat::client::Behaviour::default)),
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

pub async fn run(server: bool, args: &[String]) -> Result<(), Error> {
    let mut listen = crate::DEFAULT_LISTEN.to_owned();
    let mut connect: Option<libp2p::Multiaddr> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--listen" => listen = it.next().cloned().unwrap_or_else(|| usage("--listen MA")),
            "--connect" => {
                let v = it.next().unwrap_or_else(|| usage("--connect MA"));
                connect = Some(v.parse()?);
            }
            other => usage(&format!("unexpected argument {other:?}")),
        }
    }
    let mut swarm = new_swarm(server)?;
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
                let line = format!("LISTENING {}", address.with(Protocol::P2p(local)));
                let mut out = std::io::stdout().lock();
                writeln!(out, "{line}")?;
                out.flush()?;
                if let Some(addr) = connect.take() {
                    swarm.dial(addr)?;
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Server(ev)) => say(json!({
                "served": ev.tested_addr.to_string(),
                "data_amount": ev.data_amount,
                "ok": ev.result.is_ok(),
            }))?,
            SwarmEvent::Behaviour(BehaviourEvent::Client(ev)) => {
                say(json!({
                    "autonat2_tested": ev.tested_addr.to_string(),
                    "bytes_sent": ev.bytes_sent,
                    "server": ev.server.to_string(),
                    "ok": ev.result.is_ok(),
                    "error": ev.result.err().map(|e| e.to_string()),
                }))?;
                return Ok(());
            }
            _ => {}
        }
    }
}
