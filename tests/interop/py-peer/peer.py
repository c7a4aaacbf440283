"""py-libp2p (PyPI ``libp2p`` 0.8.1) interop peer for rapidp2p's tests.

    peer.py listen [--listen MULTIADDR]
    peer.py dial MULTIADDR [--ping] [--identify] [--echo-bytes N]
    peer.py pubsub --topic T [--listen MA] [--connect MA]... [--publish MSG]... [--floodsub]
        (``--mplex-only`` and ``--rsa``: like py-libp2p's own pubsub and floodsub demos)

Noise + yamux over TCP with an Ed25519 identity; serves ``/ipfs/ping/1.0.0``,
``/ipfs/id/1.0.0`` (py-libp2p's own handlers) and ``/echo/1.0.0``. Results are JSON lines on
stdout, diagnostics on stderr. Runs in its own virtualenv (see ``build``), never in the
project's: py-libp2p pins its own dependency versions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import secrets
import sys
import time
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.host.ping import ID as PING_ID
from libp2p.identity.identify.identify import ID as IDENTIFY_ID
from libp2p.identity.identify.identify import parse_identify_response
from libp2p.network.config import ConnectionConfig
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.security.tls.transport import PROTOCOL_ID as TLS_PROTOCOL_ID
from libp2p.security.tls.transport import TLSTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

ECHO_ID = TProtocol("/echo/1.0.0")
PING_LENGTH = 32
CHUNK = 64 * 1024
DIAL_DEADLINE = 300.0
#: The one security protocol offered (``--security noise|tls``).
SECURITY = "noise"


def make_host(mplex_only: bool = False, rsa: bool = False, quic: bool = False) -> Any:
    """A host offering only Noise (or only TLS) and only yamux: negotiation cannot settle elsewhere
    (``mplex_only``: only mplex instead, as py-libp2p's pubsub and floodsub demos do).

    ``max_connections_per_peer=1``: py-libp2p's connect otherwise waits ~250 ms for extra
    connections to the same peer (INTEROP.md).
    """
    if rsa:
        from libp2p.crypto.rsa import create_new_key_pair as create_new_rsa_key_pair

        key_pair = create_new_rsa_key_pair()
    else:
        key_pair = create_new_key_pair()
    if SECURITY == "tls":
        sec_opt: dict[TProtocol, Any] = {TProtocol(TLS_PROTOCOL_ID): TLSTransport(key_pair)}
    else:
        noise = NoiseTransport(key_pair, noise_privkey=create_new_x25519_key_pair().private_key)
        sec_opt = {TProtocol(NOISE_PROTOCOL_ID): noise}
    if mplex_only:
        from libp2p.stream_muxer.mplex.mplex import MPLEX_PROTOCOL_ID, Mplex

        muxers: dict[TProtocol, Any] = {TProtocol(MPLEX_PROTOCOL_ID): Mplex}
    else:
        muxers = {TProtocol(YAMUX_PROTOCOL_ID): Yamux}
    return new_host(
        key_pair=key_pair,
        sec_opt=sec_opt,
        muxer_opt=muxers,
        connection_config=ConnectionConfig(max_connections_per_peer=1),
        # py-libp2p's QUIC v1 (aioquic) only when a QUIC address is listened on or dialled.
        enable_quic=quic,
    )


async def read_chunk(stream: Any, n: int = CHUNK) -> bytes:
    """One read; b"" at EOF (py-libp2p raises StreamEOF or returns b"" depending on state)."""
    try:
        data: bytes = await stream.read(n)
    except StreamEOF:
        return b""
    return data


async def read_exactly(stream: Any, n: int) -> bytes:
    """Reads exactly n bytes; the muxer's read(n) may return fewer."""
    buf = bytearray()
    while len(buf) < n:
        chunk = await read_chunk(stream, n - len(buf))
        if not chunk:
            raise EOFError(f"stream ended after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


async def read_to_eof(stream: Any) -> bytes:
    buf = bytearray()
    while chunk := await read_chunk(stream):
        buf += chunk
    return bytes(buf)


async def echo_handler(stream: Any) -> None:
    """Copies every byte back until the remote half-closes, then closes our write side."""
    try:
        while chunk := await read_chunk(stream):
            await stream.write(chunk)
        await stream.close()
    except Exception as exc:  # a broken echo must not take the listener down
        print(f"echo handler: {exc!r}", file=sys.stderr, flush=True)
        await stream.reset()


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


async def do_ping(host: Any, peer_id: Any) -> float:
    """Two round trips on one ping stream; times the second with ``perf_counter``.

    py-libp2p's own ping reports whole milliseconds (INTEROP.md), and the first round trip
    carries protocol negotiation.
    """
    stream = await host.new_stream(peer_id, [PING_ID])
    rtt = 0.0
    for _ in range(2):
        payload = secrets.token_bytes(PING_LENGTH)
        start = time.perf_counter()
        await stream.write(payload)
        echoed = await read_exactly(stream, PING_LENGTH)
        rtt = (time.perf_counter() - start) * 1000.0
        if echoed != payload:
            raise ValueError("ping payload came back different")
    await stream.close()
    return rtt


def _addr_text(raw: bytes) -> str:
    return str(multiaddr.Multiaddr(raw))


def _observed_text(msg: Any) -> str | None:
    """None when absent or empty: py-libp2p 0.8.1 itself sends b"" on IPv6 connections."""
    if not msg.HasField("observed_addr") or not msg.observed_addr:
        return None
    return _addr_text(msg.observed_addr)


async def do_identify(host: Any, peer_id: Any) -> dict[str, Any]:
    stream = await host.new_stream(peer_id, [IDENTIFY_ID])
    data = await read_to_eof(stream)
    await stream.close()
    msg = parse_identify_response(data)
    return {
        "agent_version": msg.agent_version,
        "protocol_version": msg.protocol_version,
        "protocols": list(msg.protocols),
        "listen_addrs": [_addr_text(a) for a in msg.listen_addrs],
        "observed_addr": _observed_text(msg),
    }


async def do_echo(host: Any, peer_id: Any, n: int) -> bool:
    """Sends n random bytes, half-closes, reads until EOF and compares as bytes arrive."""
    stream = await host.new_stream(peer_id, [ECHO_ID])
    data = secrets.token_bytes(n)
    received = 0
    same = True

    async def reader() -> None:
        nonlocal received, same
        while chunk := await read_chunk(stream):
            if data[received : received + len(chunk)] != chunk:
                same = False
            received += len(chunk)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        view = memoryview(data)
        for pos in range(0, n, CHUNK):
            await stream.write(bytes(view[pos : pos + CHUNK]))
        await stream.close_write()
    await stream.close()
    if received != n:
        print(f"echo: sent {n} bytes, got {received} back", file=sys.stderr, flush=True)
    return same and received == n


async def wait_stdin_eof() -> None:
    """Returns when stdin closes (the test harness' polite stop)."""

    def drain() -> None:
        while sys.stdin.buffer.read1(65536):
            pass

    await trio.to_thread.run_sync(drain, abandon_on_cancel=True)


async def listen(listen_addr: str, mplex_only: bool = False) -> int:
    host = make_host(mplex_only, quic="/quic-v1" in listen_addr)
    host.set_stream_handler(ECHO_ID, echo_handler)
    async with host.run(listen_addrs=[multiaddr.Multiaddr(listen_addr)]):
        wanted = listen_addr.split("/")[1]
        addrs = [str(a) for a in host.get_addrs()]
        addr = next((a for a in addrs if a.split("/")[1] == wanted), addrs[0] if addrs else None)
        if addr is None:
            raise RuntimeError("listening on no address")
        if "/p2p/" not in addr:
            addr = f"{addr}/p2p/{host.get_id().to_string()}"
        print(f"LISTENING {addr}", flush=True)
        await wait_stdin_eof()
    return 0


async def dial(
    target: str, ping: bool, identify: bool, echo_bytes: int | None, mplex_only: bool = False
) -> int:
    info = info_from_p2p_addr(multiaddr.Multiaddr(target))
    host = make_host(mplex_only, quic="/quic-v1" in target)
    if identify:
        # py-libp2p identifies every new connection in the background; with our own identify
        # that makes two identify streams at once, and js-libp2p resets the second (it allows
        # one per connection). No public switch exists, so the private hook is replaced.
        host._schedule_identify = lambda *_args, **_kwargs: None
    failed = False
    async with host.run(listen_addrs=[]):
        with trio.fail_after(DIAL_DEADLINE):
            await host.connect(info)
            if ping:
                emit({"ping_rtt_ms": await do_ping(host, info.peer_id)})
            if identify:
                emit({"identify": await do_identify(host, info.peer_id)})
            if echo_bytes is not None:
                ok = await do_echo(host, info.peer_id, echo_bytes)
                emit({"echo_bytes": echo_bytes, "ok": ok})
                if not ok:
                    print("echo: bytes differ", file=sys.stderr, flush=True)
                    failed = True
    return 1 if failed else 0


async def pubsub(args: argparse.Namespace) -> int:
    """The ``run pubsub`` contract of tests/pubsub/test_pubsub_interop.py: subscribe to the
    topic, print LISTENING, dial every --connect, publish each --publish once a peer
    subscribed to the topic is known (PUBLISHED), print RECEIVED for every message, until
    stdin closes."""
    from libp2p.pubsub.floodsub import FloodSub
    from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
    from libp2p.pubsub.pubsub import Pubsub
    from libp2p.tools.anyio_service import background_trio_service

    host = make_host(args.mplex_only, args.rsa)
    if args.floodsub:
        router: Any = FloodSub(protocols=[TProtocol("/floodsub/1.0.0")])
    else:
        router = GossipSub(
            protocols=[PROTOCOL_ID_V11], degree=6, degree_low=4, degree_high=12,
            heartbeat_interval=1,
        )  # fmt: skip
    ps = Pubsub(host, router)
    async with (
        host.run(listen_addrs=[multiaddr.Multiaddr(args.listen)]),
        contextlib.AsyncExitStack() as stack,
    ):
        await stack.enter_async_context(background_trio_service(ps))
        if not args.floodsub:  # GossipSub runs its heartbeat as a service; FloodSub none
            await stack.enter_async_context(background_trio_service(router))
        await ps.wait_until_ready()
        sub = await ps.subscribe(args.topic)
        addrs = [str(a) for a in host.get_addrs()]
        addr = addrs[0]
        if "/p2p/" not in addr:
            addr = f"{addr}/p2p/{host.get_id().to_string()}"
        print(f"LISTENING {addr}", flush=True)
        for target in args.connect:
            await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(target)))

        async def receive() -> None:
            while True:
                msg = await sub.get()
                print(f"RECEIVED {msg.data.decode(errors='replace')}", flush=True)

        async def publish() -> None:
            while not ps.peer_topics.get(args.topic):
                await trio.sleep(0.05)
            await trio.sleep(1.5)  # a heartbeat: the mesh (or the floodsub peer) is set
            for text in args.publish:
                await ps.publish(args.topic, text.encode())
                print(f"PUBLISHED {text}", flush=True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            nursery.start_soon(publish)
            await wait_stdin_eof()
            nursery.cancel_scope.cancel()
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="peer.py")
    sub = parser.add_subparsers(dest="command", required=True)
    p_listen = sub.add_parser("listen")
    p_listen.add_argument("--listen", default="/ip4/127.0.0.1/tcp/0")
    p_listen.add_argument("--security", choices=["noise", "tls"], default="noise")
    p_listen.add_argument("--mplex-only", action="store_true", help="offer only /mplex/6.7.0")
    p_dial = sub.add_parser("dial")
    p_dial.add_argument("multiaddr")
    p_dial.add_argument("--ping", action="store_true")
    p_dial.add_argument("--identify", action="store_true")
    p_dial.add_argument("--echo-bytes", type=int, default=None)
    p_dial.add_argument("--security", choices=["noise", "tls"], default="noise")
    p_dial.add_argument("--mplex-only", action="store_true", help="offer only /mplex/6.7.0")
    p_ps = sub.add_parser("pubsub")
    p_ps.add_argument("--topic", required=True)
    p_ps.add_argument("--listen", default="/ip4/127.0.0.1/tcp/0")
    p_ps.add_argument("--connect", action="append", default=[])
    p_ps.add_argument("--publish", action="append", default=[])
    p_ps.add_argument("--floodsub", action="store_true", help="FloodSub instead of GossipSub")
    p_ps.add_argument("--mplex-only", action="store_true", help="offer only /mplex/6.7.0")
    p_ps.add_argument("--rsa", action="store_true", help="an RSA identity, as the demos use")
    p_ps.add_argument("--security", choices=["noise", "tls"], default="noise")
    args = parser.parse_args(argv)
    if args.command == "dial" and args.echo_bytes is not None and args.echo_bytes < 0:
        parser.error("--echo-bytes needs a non-negative integer")
    return args


def leaf_exceptions(exc: BaseException) -> list[BaseException]:
    """The real errors inside trio's nested exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaf_exceptions(inner)]
    return [exc]


def main(argv: list[str]) -> int:
    global SECURITY
    args = parse_args(argv)
    SECURITY = args.security
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        if args.command == "listen":
            return trio.run(listen, args.listen, args.mplex_only)
        if args.command == "pubsub":
            return trio.run(pubsub, args)
        return trio.run(
            dial, args.multiaddr, args.ping, args.identify, args.echo_bytes, args.mplex_only
        )
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:  # report, then a non-zero exit
        for leaf in leaf_exceptions(exc):
            print(f"{args.command} failed: {leaf!r}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
