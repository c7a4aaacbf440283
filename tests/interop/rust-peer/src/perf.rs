//! `rust-peer perf ...`: the libp2p perf protocol (`/perf/1.0.0`) with the command line of
//! `rapidp2p perf` (test-plans shape plus the benchmark suite's extensions).
//!
//! ```text
//! rust-peer perf --run-server [--server-address HOST:PORT]
//! rust-peer perf --server-address HOST:PORT [--transport tcp|quic-v1] [--upload-bytes N]
//!     [--download-bytes N] [--iterations N] [--reuse-connection] [--streams K]
//!     [--concurrency C] [--connect-only] [-v]
//! ```
//!
//! The server listens on TCP and QUIC v1 at the same port (as the test-plans servers). It uses
//! the shared perf identity (Ed25519 from an all-zero seed) and no connection
//! or stream limits beyond yamux's (raised to 4096 streams per connection). Inbound perf
//! streams are served by a small connection handler that spawns one task per stream, so a
//! burst of streams is never dropped. The client opens streams with `libp2p-stream`.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::IpAddr;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::{DeniedUpgrade, ReadyUpgrade};
use libp2p::core::Endpoint;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::handler::{ConnectionEvent, FullyNegotiatedInbound};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, SubstreamProtocol, SwarmEvent, THandler, THandlerInEvent, THandlerOutEvent,
    ToSwarm,
};
use libp2p::{identify, noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use serde_json::json;

use crate::Error;

const PERF: StreamProtocol = StreamProtocol::new("/perf/1.0.0");
const DEFAULT_SERVER_ADDRESS: &str = "127.0.0.1:4001";
/// The peer id of the shared perf identity (Ed25519, 32 zero bytes of seed).
pub const SERVER_PEER_ID: &str = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
/// Bytes per write: large enough that per-call costs vanish, yamux cuts frames anyway.
const BLOCK: usize = 256 * 1024;
/// Streams per connection (the suite's 1000-stream row, with headroom).
const MAX_STREAMS: usize = 4096;
/// Exit code the benchmark suite reads as "this stack does not support the mode".
const EXIT_UNSUPPORTED: u8 = 3;
static ZEROS: [u8; BLOCK] = [0u8; BLOCK];

const USAGE: &str = "usage: rust-peer perf --run-server [--server-address HOST:PORT]\n       \
         rust-peer perf --server-address HOST:PORT [--transport tcp|quic-v1] [--upload-bytes N] \
         [--download-bytes N] [--iterations N] [--reuse-connection] [--streams K] \
         [--concurrency C] [--connect-only] [-v]";

fn usage(msg: &str) -> ! {
    eprintln!("rust-peer: {msg}\n{USAGE}");
    std::process::exit(2);
}

#[derive(Clone)]
struct Options {
    run_server: bool,
    server_address: Option<String>,
    transport: String,
    upload: u64,
    download: u64,
    iterations: usize,
    reuse_connection: bool,
    streams: usize,
    concurrency: usize,
    connect_only: bool,
}

fn parse(args: &[String]) -> Options {
    let mut o = Options {
        run_server: false,
        server_address: None,
        transport: "tcp".to_owned(),
        upload: 0,
        download: 0,
        iterations: 1,
        reuse_connection: false,
        streams: 1,
        concurrency: 1,
        connect_only: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> String {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match flag {
            "--run-server" => o.run_server = true,
            "--reuse-connection" => o.reuse_connection = true,
            "--connect-only" => o.connect_only = true,
            "-v" | "--verbose" => {}
            "--server-address" => o.server_address = Some(value(flag)),
            "--transport" => o.transport = value(flag),
            "--upload-bytes" => o.upload = number(flag, &value(flag)),
            "--download-bytes" => o.download = number(flag, &value(flag)),
            "--iterations" | "--streams" | "--concurrency" => {
                let n = number(flag, &value(flag));
                let n = usize::try_from(n)
                    .ok()
                    .filter(|n| *n >= 1)
                    .unwrap_or_else(|| usage(&format!("{flag} must be at least 1")));
                match flag {
                    "--iterations" => o.iterations = n,
                    "--streams" => o.streams = n,
                    _ => o.concurrency = n,
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => usage(&format!("unexpected argument {other:?}")),
        }
    }
    o
}

fn number(flag: &str, text: &str) -> u64 {
    text.parse()
        .unwrap_or_else(|_| usage(&format!("{flag} must be a u64, got {text:?}")))
}

/// `HOST:PORT` (`[v6]:PORT`; `localhost` is 127.0.0.1) to `/ip4|ip6/HOST/tcp/PORT`.
fn server_multiaddr(address: &str) -> Result<Multiaddr, String> {
    let (host, port) = address
        .rsplit_once(':')
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| format!("server address {address:?} is not HOST:PORT"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    let ip: IpAddr = host
        .parse()
        .map_err(|_| format!("server address {address:?} is not IP:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("bad port in server address {address:?}"))?;
    Ok(Multiaddr::empty().with(ip.into()).with(Protocol::Tcp(port)))
}

/// `/ip4|ip6/HOST/tcp/PORT` to `/ip4|ip6/HOST/udp/PORT/quic-v1` (same port number).
fn quic_multiaddr(tcp: &Multiaddr) -> Multiaddr {
    tcp.iter()
        .map(|p| match p {
            Protocol::Tcp(port) => Protocol::Udp(port),
            other => other,
        })
        .chain(std::iter::once(Protocol::QuicV1))
        .collect()
}

/// Entry point: parses, then runs the server or the client on a multi-threaded runtime.
pub fn main(args: &[String]) -> std::process::ExitCode {
    let opts = parse(args);
    if opts.transport != "tcp" && opts.transport != "quic-v1" {
        eprintln!(
            "rust-peer: transport {:?} is not supported (tcp or quic-v1)",
            opts.transport
        );
        return std::process::ExitCode::from(EXIT_UNSUPPORTED);
    }
    let address = match (&opts.server_address, opts.run_server) {
        (Some(a), _) => a.clone(),
        (None, true) => DEFAULT_SERVER_ADDRESS.to_owned(),
        (None, false) => usage("--server-address is required for the client"),
    };
    let addr = match server_multiaddr(&address) {
        Ok(a) => a,
        Err(e) => usage(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rust-peer: tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let quic = quic_multiaddr(&addr);
    let result = if opts.run_server {
        runtime.block_on(serve(addr, quic))
    } else if opts.transport == "quic-v1" {
        runtime.block_on(client(quic, opts))
    } else {
        runtime.block_on(client(addr, opts))
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rust-peer: perf: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

// ---- swarm -----------------------------------------------------------------------------------

#[derive(NetworkBehaviour)]
struct PerfBehaviour {
    identify: identify::Behaviour,
    server: Toggle<ServeBehaviour>,
    stream: libp2p_stream::Behaviour,
}

fn server_key() -> Result<Keypair, Error> {
    let key = Keypair::ed25519_from_bytes([0u8; 32])?;
    debug_assert_eq!(key.public().to_peer_id().to_string(), SERVER_PEER_ID);
    Ok(key)
}

fn perf_swarm(key: Keypair, serve: bool) -> Result<Swarm<PerfBehaviour>, Error> {
    let mut yamux_config = yamux::Config::default();
    yamux_config.set_max_num_streams(MAX_STREAMS);
    let behaviour = |key: &Keypair| PerfBehaviour {
        identify: identify::Behaviour::new(
            identify::Config::new("ipfs/0.1.0".to_owned(), key.public()).with_agent_version(
                format!("rapidp2p-interop-rust-peer/{}", env!("CARGO_PKG_VERSION")),
            ),
        ),
        server: Toggle::from(serve.then_some(ServeBehaviour)),
        stream: libp2p_stream::Behaviour::new(),
    };
    let swarm_config = |c: libp2p::swarm::Config| {
        c.with_idle_connection_timeout(Duration::from_secs(3600))
            .with_max_negotiating_inbound_streams(MAX_STREAMS)
    };
    let builder = libp2p::SwarmBuilder::with_existing_identity(key).with_tokio();
    let tcp_config = tcp::Config::default().nodelay(true);
    let muxer = move || yamux_config.clone();
    let swarm = if *crate::USE_TLS.get().unwrap_or(&false) {
        builder
            .with_tcp(tcp_config, libp2p::tls::Config::new, muxer)?
            .with_quic()
            .with_behaviour(behaviour)?
            .with_swarm_config(swarm_config)
            .build()
    } else {
        builder
            .with_tcp(tcp_config, noise::Config::new, muxer)?
            .with_quic()
            .with_behaviour(behaviour)?
            .with_swarm_config(swarm_config)
            .build()
    };
    Ok(swarm)
}

/// Serves `/perf/1.0.0` on every connection (no limit on connections or streams).
struct ServeBehaviour;

impl NetworkBehaviour for ServeBehaviour {
    type ConnectionHandler = ServeHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(ServeHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(ServeHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// Accepts perf streams and spawns a task for each (no channel that could overflow).
struct ServeHandler;

impl ConnectionHandler for ServeHandler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = DeniedUpgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = Infallible;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(ReadyUpgrade::new(PERF), ())
    }

    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<DeniedUpgrade, Infallible, Infallible>> {
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, event: Infallible) {
        match event {}
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol, (), Infallible>,
    ) {
        if let ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
            protocol: stream,
            ..
        }) = event
        {
            tokio::spawn(async move {
                if let Err(e) = serve_stream(stream).await {
                    eprintln!("rust-peer: perf stream: {e}");
                }
            });
        }
    }
}

/// One perf request: the u64 asked for, drain the upload to EOF, then send and half-close.
async fn serve_stream(mut stream: libp2p::Stream) -> std::io::Result<()> {
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).await?;
    let wanted = u64::from_be_bytes(header);
    let mut buf = vec![0u8; BLOCK];
    while stream.read(&mut buf).await? != 0 {}
    send_zeros(&mut stream, wanted, |_| {}).await?;
    stream.close().await
}

async fn send_zeros(
    stream: &mut libp2p::Stream,
    mut count: u64,
    mut on_sent: impl FnMut(u64),
) -> std::io::Result<()> {
    while count > 0 {
        let n = count.min(BLOCK as u64);
        stream.write_all(&ZEROS[..n as usize]).await?;
        count -= n;
        on_sent(n);
    }
    Ok(())
}

async fn serve(addr: Multiaddr, quic: Multiaddr) -> Result<(), Error> {
    let mut swarm = perf_swarm(server_key()?, true)?;
    swarm.listen_on(addr)?;
    swarm.listen_on(quic)?;
    let local = *swarm.local_peer_id();
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", address.with(Protocol::P2p(local)))?;
                out.flush()?;
            }
            SwarmEvent::ListenerError { error, .. } => return Err(error.into()),
            SwarmEvent::ListenerClosed { reason, .. } => {
                return Err(format!("listener closed: {reason:?}").into())
            }
            _ => {}
        }
    }
}

// ---- client ----------------------------------------------------------------------------------

enum Command {
    Connect(Multiaddr, PeerId, oneshot::Sender<Result<(), String>>),
    Disconnect(PeerId, oneshot::Sender<()>),
}

/// A dialing host: its own identity and swarm, driven by a task that takes commands.
struct Dialer {
    commands: mpsc::UnboundedSender<Command>,
    control: libp2p_stream::Control,
}

impl Dialer {
    fn start() -> Result<Dialer, Error> {
        let swarm = perf_swarm(Keypair::generate_ed25519(), false)?;
        let control = swarm.behaviour().stream.new_control();
        let (tx, rx) = mpsc::unbounded();
        tokio::spawn(drive(swarm, rx));
        Ok(Dialer {
            commands: tx,
            control,
        })
    }

    async fn connect(&self, addr: &Multiaddr, peer: PeerId) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .unbounded_send(Command::Connect(addr.clone(), peer, tx))
            .map_err(|_| "swarm stopped")?;
        rx.await.map_err(|_| "swarm stopped")?.map_err(Into::into)
    }

    async fn disconnect(&self, peer: PeerId) {
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .unbounded_send(Command::Disconnect(peer, tx))
            .is_ok()
        {
            let _ = rx.await;
        }
    }
}

async fn drive(mut swarm: Swarm<PerfBehaviour>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut dialing: Vec<(ConnectionId, oneshot::Sender<Result<(), String>>)> = Vec::new();
    let mut closing: Vec<(PeerId, oneshot::Sender<()>)> = Vec::new();
    loop {
        tokio::select! {
            command = commands.next() => match command {
                None => return,
                Some(Command::Connect(addr, peer, reply)) => {
                    let opts = DialOpts::peer_id(peer)
                        .addresses(vec![addr])
                        .condition(PeerCondition::Always)
                        .build();
                    let id = opts.connection_id();
                    match swarm.dial(opts) {
                        Ok(()) => dialing.push((id, reply)),
                        Err(e) => { let _ = reply.send(Err(e.to_string())); }
                    }
                }
                Some(Command::Disconnect(peer, reply)) => {
                    if swarm.disconnect_peer_id(peer).is_ok() {
                        closing.push((peer, reply));
                    } else {
                        let _ = reply.send(());
                    }
                }
            },
            event = swarm.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { connection_id, .. } => {
                    if let Some(i) = dialing.iter().position(|(id, _)| *id == connection_id) {
                        let _ = dialing.swap_remove(i).1.send(Ok(()));
                    }
                }
                SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                    if let Some(i) = dialing.iter().position(|(id, _)| *id == connection_id) {
                        let _ = dialing.swap_remove(i).1.send(Err(error.to_string()));
                    }
                }
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                    closing.retain_mut(|(p, _)| *p != peer_id);
                    // Dropping a reply sender wakes its waiter too; nothing else to do.
                }
                _ => {}
            },
        }
    }
}

/// Bytes moved and when the last intermediary report was printed.
struct Progress {
    upload: u64,
    download: u64,
    last: Instant,
    last_up: u64,
    last_down: u64,
    emit: bool,
}

impl Progress {
    fn new(start: Instant, emit: bool) -> Progress {
        Progress {
            upload: 0,
            download: 0,
            last: start,
            last_up: 0,
            last_down: 0,
            emit,
        }
    }

    fn add(&mut self, up: u64, down: u64) {
        self.upload += up;
        self.download += down;
        if !self.emit {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.last) >= Duration::from_secs(1) {
            report(
                "intermediary",
                now.duration_since(self.last),
                self.upload - self.last_up,
                self.download - self.last_down,
            );
            self.last = now;
            self.last_up = self.upload;
            self.last_down = self.download;
        }
    }
}

fn report(kind: &str, time: Duration, upload: u64, download: u64) {
    // Written by hand to keep the field order of the other implementations' output.
    line(&format!(
        "{{\"type\": \"{kind}\", \"timeSeconds\": {}, \"uploadBytes\": {upload}, \
         \"downloadBytes\": {download}}}",
        json!(time.as_secs_f64())
    ));
}

fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// The client side of one perf stream: header, upload, half-close, download to EOF.
async fn perf_stream(
    control: &mut libp2p_stream::Control,
    peer: PeerId,
    upload: u64,
    download: u64,
    progress: &mut Progress,
) -> Result<(), Error> {
    let mut stream = control
        .open_stream(peer, PERF)
        .await
        .map_err(|e| format!("open perf stream: {e}"))?;
    stream.write_all(&download.to_be_bytes()).await?;
    send_zeros(&mut stream, upload, |n| progress.add(n, 0)).await?;
    stream.close().await?;
    let mut buf = vec![0u8; BLOCK];
    let mut got: u64 = 0;
    loop {
        let n = stream.read(&mut buf).await? as u64;
        if n == 0 {
            break;
        }
        got += n;
        if got > download {
            return Err(format!("server sent more than the {download} bytes asked").into());
        }
        progress.add(0, n);
    }
    if got != download {
        return Err(format!("server sent {got} of the {download} bytes asked").into());
    }
    Ok(())
}

async fn iteration(
    dialer: &Dialer,
    addr: &Multiaddr,
    peer: PeerId,
    opts: &Options,
    connected: &mut bool,
    emit: bool,
) -> Result<(), Error> {
    let start = Instant::now();
    if !*connected {
        dialer.connect(addr, peer).await?;
        *connected = true;
    }
    let mut progress = Progress::new(start, emit);
    if !opts.connect_only {
        if opts.streams == 1 {
            let mut control = dialer.control.clone();
            perf_stream(
                &mut control,
                peer,
                opts.upload,
                opts.download,
                &mut progress,
            )
            .await?;
        } else {
            let runs = (0..opts.streams).map(|_| {
                let mut control = dialer.control.clone();
                async move {
                    let mut p = Progress::new(start, false);
                    perf_stream(&mut control, peer, opts.upload, opts.download, &mut p)
                        .await
                        .map(|()| (p.upload, p.download))
                }
            });
            for done in futures::future::join_all(runs).await {
                let (up, down) = done?;
                progress.add(up, down);
            }
        }
    }
    report("final", start.elapsed(), progress.upload, progress.download);
    Ok(())
}

async fn client(addr: Multiaddr, opts: Options) -> Result<(), Error> {
    let peer: PeerId = SERVER_PEER_ID.parse()?;
    let addr = addr.with(Protocol::P2p(peer));
    let emit = opts.iterations == 1 && opts.streams == 1;
    let mut counts = vec![opts.iterations / opts.concurrency; opts.concurrency];
    for c in counts.iter_mut().take(opts.iterations % opts.concurrency) {
        *c += 1;
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for count in counts.into_iter().filter(|c| *c > 0) {
        let (addr, opts) = (addr.clone(), opts.clone());
        tasks.push(tokio::spawn(async move {
            let dialer = Dialer::start()?;
            let mut connected = false;
            for _ in 0..count {
                iteration(&dialer, &addr, peer, &opts, &mut connected, emit).await?;
                if !opts.reuse_connection {
                    dialer.disconnect(peer).await;
                    connected = false;
                }
            }
            Ok::<(), Error>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| format!("dialer task: {e}"))??;
    }
    if opts.iterations > 1 {
        line(&format!(
            "{{\"type\": \"summary\", \"iterations\": {}, \"elapsedSeconds\": {}}}",
            opts.iterations,
            json!(start.elapsed().as_secs_f64())
        ));
    }
    Ok(())
}
