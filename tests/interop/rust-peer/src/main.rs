//! rust-libp2p interop peer for rapidp2p's tests.
//!
//! TCP or `/ws` (libp2p-websocket) + Noise, `/webrtc-direct` (libp2p-webrtc) (or TLS with `--security tls`) + yamux, a fresh
//! Ed25519 identity, loopback addresses. Serves ping, identify and `/echo/1.0.0`. CLI (see
//! `tests/interop/peers.py`);
//! `--security noise|tls` may follow any command and selects the one security protocol offered:
//!
//! ```text
//! rust-peer listen [--listen MULTIADDR] [--dht server|client [--bootstrap MULTIADDR]...]
//! rust-peer dial MULTIADDR [--ping] [--identify] [--echo-bytes N] [--timeout SECONDS]
//! rust-peer perf ...   (src/perf.rs)
//! rust-peer dht OP KEY [VALUE] --bootstrap MULTIADDR...   (src/dht.rs)
//! rust-peer pubsub --topic T [--listen MA] [--connect MA]... [--publish MSG]...   (src/pubsub.rs)
//! rust-peer rendezvous serve|client ...   (src/rendezvous.rs)
//! rust-peer relay serve|listen|dial ...   (src/relay.rs)
//! rust-peer holepunch --listen MA... --relay MA [--dial MA]   (src/holepunch.rs)
//! rust-peer autonat-serve | autonat-probe ... (src/autonat.rs)
//! rust-peer autonat2-serve | autonat2-client ... (src/autonat2.rs)
//! ```
//!
//! `--swarm-key FILE` (anywhere, any command but perf) joins the private network of that
//! `/key/swarm/psk/1.0.0/` file (libp2p's pnet connection protector under Noise).

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use futures::channel::mpsc;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::identity::Keypair;
use libp2p::kad::{self, store::MemoryStore};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    gossipsub, identify, noise, ping, tcp, tls, yamux, Multiaddr, PeerId, StreamProtocol, Swarm,
};
use serde_json::json;

mod autonat;
mod autonat2;
mod bench_worker;
mod dht;
mod holepunch;
mod perf;
mod pubsub;
mod relay;
mod rendezvous;

const ECHO_PROTOCOL: StreamProtocol = StreamProtocol::new("/echo/1.0.0");
const DEFAULT_LISTEN: &str = "/ip4/127.0.0.1/tcp/0";
const ECHO_CHUNK: usize = 64 * 1024;

/// The private network's key, from `--swarm-key FILE` (set once, before any swarm exists).
static SWARM_KEY: OnceLock<libp2p_pnet::PreSharedKey> = OnceLock::new();

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    stream: libp2p_stream::Behaviour,
    kad: Toggle<kad::Behaviour<MemoryStore>>,
    gossipsub: Toggle<gossipsub::Behaviour>,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn usage(msg: &str) -> ! {
    eprintln!(
        "rust-peer: {msg}\nusage: rust-peer listen [--listen MULTIADDR] [--dht server|client \
         [--bootstrap MULTIADDR]...]\n       \
         rust-peer dial MULTIADDR [--ping] [--identify] [--echo-bytes N] [--timeout SECONDS]\n       \
         rust-peer perf ... (rust-peer perf --help)\n       \
         rust-peer dht OP KEY [VALUE] --bootstrap MULTIADDR... (rust-peer dht --help)\n       \
         rust-peer pubsub --topic T ... (rust-peer pubsub --help)\n       \
         rust-peer bench-worker (JSON lines on stdin: GossipSub / Kademlia benchmark nodes)"
    );
    std::process::exit(2);
}

/// The security protocol `new_swarm` offers (`--security`, default Noise).
static USE_TLS: OnceLock<bool> = OnceLock::new();

/// A TCP + Noise (or TLS) + yamux swarm with a fresh identity; `dht` adds a kad node in that
/// mode, `pubsub` a GossipSub router.
fn new_swarm(dht: Option<kad::Mode>, pubsub: bool) -> Result<Swarm<Behaviour>, Error> {
    let key = Keypair::generate_ed25519();
    let behaviour = |key: &Keypair| -> Result<Behaviour, Error> {
        Ok(Behaviour {
            identify: identify::Behaviour::new(
                identify::Config::new("ipfs/0.1.0".to_owned(), key.public()).with_agent_version(
                    format!("rapidp2p-interop-rust-peer/{}", env!("CARGO_PKG_VERSION")),
                ),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
            stream: libp2p_stream::Behaviour::new(),
            kad: Toggle::from(dht.map(|mode| dht::behaviour(key.public().to_peer_id(), mode))),
            gossipsub: Toggle::from(if pubsub {
                Some(pubsub::behaviour(key)?)
            } else {
                None
            }),
        })
    };
    let idle = |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(300));
    let builder = libp2p::SwarmBuilder::with_existing_identity(key).with_tokio();
    let tcp_config = tcp::Config::default().nodelay(true);
    let swarm = if let Some(psk) = SWARM_KEY.get().copied() {
        builder
            .with_other_transport(|key| pnet_tcp(key, psk))?
            .with_behaviour(behaviour)?
            .with_swarm_config(idle)
            .build()
    } else if *USE_TLS.get().unwrap_or(&false) {
        builder
            .with_tcp(tcp_config, tls::Config::new, yamux::Config::default)?
            .with_quic()
            .with_other_transport(|key| websocket_transport(key, true))?
            .with_behaviour(behaviour)?
            .with_swarm_config(idle)
            .build()
    } else {
        builder
            .with_tcp(tcp_config, noise::Config::new, yamux::Config::default)?
            .with_quic()
            .with_other_transport(|key| websocket_transport(key, false))?
            .with_other_transport(webrtc_transport)?
            .with_behaviour(behaviour)?
            .with_swarm_config(idle)
            .build()
    };
    Ok(swarm)
}

/// `/ws`: libp2p-websocket over its own TCP transport, then Noise (or TLS) + yamux inside the
/// WebSocket stream. Plain TCP addresses stay with the TCP transport (the swarm tries each
/// transport in turn and only this one accepts a `/ws` multiaddr).
fn websocket_transport(
    key: &Keypair,
    use_tls: bool,
) -> Result<libp2p::core::transport::Boxed<(PeerId, StreamMuxerBox)>, Error> {
    use libp2p::core::upgrade::Version;
    use libp2p::Transport as _;
    let ws = libp2p_websocket::Config::new(tcp::tokio::Transport::new(
        tcp::Config::default().nodelay(true),
    ));
    let upgraded = ws.upgrade(Version::V1Lazy);
    Ok(if use_tls {
        upgraded
            .authenticate(tls::Config::new(key)?)
            .multiplex(yamux::Config::default())
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
            .boxed()
    } else {
        upgraded
            .authenticate(noise::Config::new(key)?)
            .multiplex(yamux::Config::default())
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
            .boxed()
    })
}

/// `/webrtc-direct` (libp2p-webrtc on webrtc-rs): secured by Noise on data channel 0 and
/// multiplexed by data channels itself; a fresh certificate per process.
fn webrtc_transport(
    key: &Keypair,
) -> Result<libp2p::core::transport::Boxed<(PeerId, StreamMuxerBox)>, Error> {
    use libp2p::Transport as _;
    let cert = libp2p_webrtc::tokio::Certificate::generate(&mut rand::rng())?;
    Ok(libp2p_webrtc::tokio::Transport::new(key.clone(), cert)
        .map(|(peer, conn), _| (peer, StreamMuxerBox::new(conn)))
        .boxed())
}

/// TCP, then the pnet protector, then Noise + yamux (rust-libp2p's private-network stack).
fn pnet_tcp(
    key: &Keypair,
    psk: libp2p_pnet::PreSharedKey,
) -> Result<libp2p::core::transport::Boxed<(PeerId, libp2p::core::muxing::StreamMuxerBox)>, Error> {
    use libp2p::core::upgrade::Version;
    use libp2p::Transport as _;
    let noise = noise::Config::new(key)?;
    Ok(
        tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
            .and_then(move |socket, _| libp2p_pnet::PnetConfig::new(psk).handshake(socket))
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux::Config::default())
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
            .boxed(),
    )
}

/// Removes `--swarm-key FILE` from `args` and loads the key into [`SWARM_KEY`].
fn take_swarm_key(args: &mut Vec<String>) -> Result<(), Error> {
    let Some(i) = args.iter().position(|a| a == "--swarm-key") else {
        return Ok(());
    };
    if i + 1 >= args.len() {
        usage("--swarm-key needs a file");
    }
    let path = args.remove(i + 1);
    args.remove(i);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let psk: libp2p_pnet::PreSharedKey = text
        .parse()
        .map_err(|e| format!("{path}: bad swarm key: {e}"))?;
    let _ = SWARM_KEY.set(psk);
    Ok(())
}

/// The GossipSub router of a swarm made with `new_swarm(_, true)`.
fn behaviour_gossipsub(swarm: &mut Swarm<Behaviour>) -> &mut gossipsub::Behaviour {
    swarm
        .behaviour_mut()
        .gossipsub
        .as_mut()
        .expect("the pubsub swarm runs gossipsub")
}

/// Removes `--security noise|tls` from `args` and records the choice for `new_swarm`.
fn take_security(args: &mut Vec<String>) {
    let Some(i) = args.iter().position(|a| a == "--security") else {
        return;
    };
    let tls = match args.get(i + 1).map(String::as_str) {
        Some("tls") => true,
        Some("noise") => false,
        other => usage(&format!("--security needs noise or tls, got {other:?}")),
    };
    args.drain(i..i + 2);
    let _ = USE_TLS.set(tls);
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    take_security(&mut args);
    if let Err(e) = take_swarm_key(&mut args) {
        eprintln!("rust-peer: {e}");
        return ExitCode::FAILURE;
    }
    let Some((command, rest)) = args.split_first() else {
        usage("missing command")
    };
    // Both rustls providers are compiled in (libp2p-webrtc's webrtc-rs adds aws-lc-rs):
    // name one, or the first TLS use panics.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if command == "perf" {
        return perf::main(rest);
    }
    if command == "bench-worker" {
        return bench_worker::main();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rust-peer: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command.as_str() {
        "listen" => runtime.block_on(listen(rest)),
        "dial" => runtime.block_on(dial(parse_dial(rest))),
        "dht" => runtime.block_on(dht::run(rest)),
        "pubsub" => runtime.block_on(pubsub::run(rest)),
        "rendezvous" => runtime.block_on(rendezvous::run(rest)),
        "relay" => runtime.block_on(relay::run(rest)),
        "holepunch" => runtime.block_on(holepunch::run(rest)),
        "autonat-serve" => runtime.block_on(autonat::serve(rest)),
        "autonat-probe" => runtime.block_on(autonat::probe(rest)),
        "autonat2-serve" => runtime.block_on(autonat2::run(true, rest)),
        "autonat2-client" => runtime.block_on(autonat2::run(false, rest)),
        other => usage(&format!("unknown command {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rust-peer: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn listen(args: &[String]) -> Result<(), Error> {
    let mut listen_addr = DEFAULT_LISTEN.to_owned();
    let mut dht_mode = None;
    let mut bootstrap = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--listen" => match it.next() {
                Some(v) => listen_addr = v.clone(),
                None => usage("--listen needs a value"),
            },
            "--dht" => match it.next() {
                Some(v) => dht_mode = Some(dht::parse_mode(v)),
                None => usage("--dht needs a value"),
            },
            "--bootstrap" => match it.next() {
                Some(v) => bootstrap.push(v.clone()),
                None => usage("--bootstrap needs a value"),
            },
            other => match other.strip_prefix("--listen=") {
                Some(v) => listen_addr = v.to_owned(),
                None => usage(&format!("unexpected argument {other:?}")),
            },
        }
    }
    if !bootstrap.is_empty() && dht_mode.is_none() {
        usage("--bootstrap needs --dht server|client");
    }
    let mut swarm = new_swarm(dht_mode, false)?;
    let mut incoming = swarm
        .behaviour()
        .stream
        .new_control()
        .accept(ECHO_PROTOCOL)
        .map_err(|e| format!("register echo: {e}"))?;
    tokio::spawn(async move {
        while let Some((peer, stream)) = incoming.next().await {
            tokio::spawn(async move {
                if let Err(e) = echo_back(stream).await {
                    eprintln!("rust-peer: echo with {peer}: {e}");
                }
            });
        }
    });
    swarm.listen_on(listen_addr.parse()?)?;
    dht::add_bootstrap(&mut swarm, &bootstrap, false)?;
    let mut bootstrapped = bootstrap.is_empty();

    // The harness stops us by closing stdin (or by a signal, which needs no handling).
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        std::process::exit(0);
    });

    let local_id = *swarm.local_peer_id();
    let mut announced = false;
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } if !announced => {
                announced = true;
                if dht_mode.is_some() {
                    // Provider records and kad's address book carry confirmed addresses only.
                    swarm.add_external_address(address.clone());
                }
                let full = address.with(Protocol::P2p(local_id));
                let mut out = std::io::stdout().lock();
                writeln!(out, "LISTENING {full}")?;
                out.flush()?;
            }
            SwarmEvent::ListenerError { error, .. } => return Err(error.into()),
            SwarmEvent::ListenerClosed { reason, .. } => {
                return Err(format!("listener closed: {reason:?}").into())
            }
            SwarmEvent::ConnectionEstablished { .. } if !bootstrapped => {
                bootstrapped = true;
                if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
                    let _ = kad.bootstrap();
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => dht::on_identified(&mut swarm, peer_id, &info),
            _ => {}
        }
    }
}

/// Copies every byte back until EOF, then closes the write side.
async fn echo_back(mut stream: libp2p::Stream) -> std::io::Result<()> {
    let mut buf = vec![0u8; ECHO_CHUNK];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        stream.write_all(&buf[..n]).await?;
    }
    stream.close().await
}

struct DialOptions {
    addr: Multiaddr,
    ping: bool,
    identify: bool,
    echo_bytes: Option<usize>,
    timeout: Duration,
}

fn parse_dial(args: &[String]) -> DialOptions {
    let mut addr = None;
    let mut opts = DialOptions {
        addr: Multiaddr::empty(),
        ping: false,
        identify: false,
        echo_bytes: None,
        timeout: Duration::from_secs(60),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--ping" => opts.ping = true,
            "--identify" => opts.identify = true,
            "--echo-bytes" => {
                let v = it
                    .next()
                    .unwrap_or_else(|| usage("--echo-bytes needs a value"));
                let n = v
                    .parse()
                    .unwrap_or_else(|_| usage(&format!("bad --echo-bytes {v:?}")));
                opts.echo_bytes = Some(n);
            }
            "--timeout" => {
                let v = it
                    .next()
                    .unwrap_or_else(|| usage("--timeout needs a value"));
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .unwrap_or_else(|| usage(&format!("bad --timeout {v:?}")));
                opts.timeout = Duration::from_secs_f64(secs);
            }
            other if addr.is_none() && !other.starts_with('-') => {
                addr = Some(
                    other
                        .parse()
                        .unwrap_or_else(|e| usage(&format!("bad multiaddr {other:?}: {e}"))),
                );
            }
            other => usage(&format!("unexpected argument {other:?}")),
        }
    }
    opts.addr = addr.unwrap_or_else(|| usage("dial needs a MULTIADDR"));
    opts
}

/// What the swarm task reports to the dialing code.
enum Report {
    Connected(PeerId),
    DialFailed(String),
    Ping(PeerId, Result<Duration, String>),
    Identified(PeerId, Box<identify::Info>),
    IdentifyFailed(PeerId, String),
    Closed(PeerId, String),
}

async fn dial(opts: DialOptions) -> Result<(), Error> {
    match tokio::time::timeout(opts.timeout, dial_checks(&opts)).await {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {:?}", opts.timeout).into()),
    }
}

fn emit(value: &serde_json::Value) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}")?;
    out.flush()?;
    Ok(())
}

async fn dial_checks(opts: &DialOptions) -> Result<(), Error> {
    let Some(Protocol::P2p(target)) = opts.addr.iter().last() else {
        return Err(format!("multiaddr {} needs /p2p/<peer id>", opts.addr).into());
    };
    let mut swarm = new_swarm(None, false)?;
    let mut control = swarm.behaviour().stream.new_control();
    if opts
        .addr
        .iter()
        .any(|p| matches!(p, Protocol::WebRTCDirect))
    {
        // libp2p-webrtc dials from the UDP socket of one of its listeners only.
        swarm.listen_on("/ip4/127.0.0.1/udp/0/webrtc-direct".parse()?)?;
    }
    swarm.dial(opts.addr.clone())?;

    let (tx, rx) = mpsc::unbounded();
    tokio::spawn(drive(swarm, tx));

    let mut progress = Progress {
        target,
        rx,
        connected: false,
        pinged: None,
        identified: None,
    };

    progress.wait(|p| p.connected).await?;
    if opts.ping {
        progress.wait(|p| p.pinged.is_some()).await?;
        let rtt = progress
            .pinged
            .take()
            .ok_or("no ping")?
            .map_err(|e| format!("ping: {e}"))?;
        emit(&json!({ "ping_rtt_ms": rtt.as_secs_f64() * 1000.0 }))?;
    }
    if opts.identify {
        progress.wait(|p| p.identified.is_some()).await?;
        let info = progress
            .identified
            .take()
            .ok_or("no identify")?
            .map_err(|e| format!("identify: {e}"))?;
        let observed = if info.observed_addr.is_empty() {
            serde_json::Value::Null
        } else {
            json!(info.observed_addr.to_string())
        };
        emit(&json!({ "identify": {
            "agent_version": info.agent_version,
            "protocol_version": info.protocol_version,
            "protocols": info.protocols.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "listen_addrs": info.listen_addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "observed_addr": observed,
        }}))?;
    }
    if let Some(n) = opts.echo_bytes {
        let ok = echo(&mut control, target, n).await?;
        emit(&json!({ "echo_bytes": n, "ok": ok }))?;
        if !ok {
            return Err("echo: the bytes read back differ from the bytes sent".into());
        }
    }
    Ok(())
}

/// What the dialer has seen of the target so far (swarm events arrive in any order).
struct Progress {
    target: PeerId,
    rx: mpsc::UnboundedReceiver<Report>,
    connected: bool,
    pinged: Option<Result<Duration, String>>,
    identified: Option<Result<Box<identify::Info>, String>>,
}

impl Progress {
    /// Consumes swarm reports until `done` holds; a dial failure or a closed connection ends it.
    async fn wait(&mut self, done: fn(&Progress) -> bool) -> Result<(), Error> {
        while !done(self) {
            let report = self.rx.next().await.ok_or("swarm stopped")?;
            self.apply(report)?;
        }
        Ok(())
    }

    fn apply(&mut self, report: Report) -> Result<(), Error> {
        match report {
            Report::Connected(p) if p == self.target => self.connected = true,
            Report::DialFailed(e) => return Err(format!("connect: {e}").into()),
            Report::Ping(p, r) if p == self.target => {
                self.pinged.get_or_insert(r);
            }
            Report::Identified(p, info) if p == self.target => {
                self.identified.get_or_insert(Ok(info));
            }
            Report::IdentifyFailed(p, e) if p == self.target => {
                self.identified.get_or_insert(Err(e));
            }
            Report::Closed(p, cause) if p == self.target => {
                return Err(format!("connection closed: {cause}").into())
            }
            _ => {}
        }
        Ok(())
    }
}

/// Polls the swarm forever, forwarding what the dialing code waits for.
async fn drive(mut swarm: Swarm<Behaviour>, tx: mpsc::UnboundedSender<Report>) {
    loop {
        let report = match swarm.select_next_some().await {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => Report::Connected(peer_id),
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                Report::DialFailed(error.to_string())
            }
            SwarmEvent::ConnectionClosed { peer_id, cause, .. } => {
                Report::Closed(peer_id, format!("{cause:?}"))
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ev)) => {
                Report::Ping(ev.peer, ev.result.map_err(|e| e.to_string()))
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => Report::Identified(peer_id, Box::new(info)),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Error {
                peer_id,
                error,
                ..
            })) => Report::IdentifyFailed(peer_id, error.to_string()),
            _ => continue,
        };
        if tx.unbounded_send(report).is_err() {
            return;
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), so a failure is reproducible.
fn pattern(n: usize) -> Vec<u8> {
    let mut state: u64 = 0x7261_7069_6470_3270;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Sends n bytes while reading the echo concurrently, half-closes, reads to EOF, compares.
async fn echo(control: &mut libp2p_stream::Control, peer: PeerId, n: usize) -> Result<bool, Error> {
    let stream = control
        .open_stream(peer, ECHO_PROTOCOL)
        .await
        .map_err(|e| format!("echo: {e}"))?;
    let data = pattern(n);
    let (mut reader, mut writer) = stream.split();
    let write = async {
        writer.write_all(&data).await?;
        writer.close().await
    };
    let read = async {
        let mut got = Vec::with_capacity(n);
        reader.read_to_end(&mut got).await.map(|_| got)
    };
    let (written, got) = futures::join!(write, read);
    written.map_err(|e| format!("echo write: {e}"))?;
    let got = got.map_err(|e| format!("echo read: {e}"))?;
    if got != data {
        eprintln!(
            "rust-peer: echo sent {} bytes, got {} back",
            data.len(),
            got.len()
        );
        return Ok(false);
    }
    Ok(true)
}
