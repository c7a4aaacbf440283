"""TCP: listen and dial on ``/ip4``, ``/ip6``, ``/dns``, ``/dns4``, ``/dns6`` + ``/tcp/<port>``.

Sockets are owned by asyncio (uvloop when installed); names resolve with
``loop.getaddrinfo``; TCP_NODELAY is set on every socket; ``/tcp/0`` binds an ephemeral
port and the listener reports the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl as _ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from rapidp2p._aio.connection import MuxedConnection
from rapidp2p.exceptions import TransportError
from rapidp2p.transport.base import ConnectionFactory, InboundHandler, parse_components

if TYPE_CHECKING:
    from rapidp2p.peer import Multiaddr

__all__ = ["TcpListener", "TcpTransport", "sockaddr_to_multiaddr"]

_HOST_PROTOS = {"ip4", "ip6", "dns", "dns4", "dns6"}


def _split(addr: Multiaddr) -> tuple[str, str, int]:
    comps = parse_components(addr)
    if len(comps) < 2 or comps[0][0] not in _HOST_PROTOS or comps[1][0] != "tcp":
        raise TransportError(f"not a TCP multiaddr: {addr}")
    rest = [c for c in comps[2:] if c[0] != "p2p"]
    if rest:
        raise TransportError(f"unsupported multiaddr suffix for TCP: {addr}")
    try:
        port = int(comps[1][1])
    except ValueError:
        raise TransportError(f"bad TCP port in {addr}") from None
    if not 0 <= port <= 65535:
        raise TransportError(f"bad TCP port in {addr}")
    return comps[0][0], comps[0][1], port


def _family(proto: str) -> int:
    return {"ip4": socket.AF_INET, "dns4": socket.AF_INET, "ip6": socket.AF_INET6}.get(
        proto, socket.AF_INET6 if proto == "dns6" else socket.AF_UNSPEC
    )


def sockaddr_to_multiaddr(sockaddr: tuple[object, ...]) -> Multiaddr:
    """``("127.0.0.1", 4001)`` -> ``/ip4/127.0.0.1/tcp/4001`` (IPv6 when the host has ``:``)."""
    from rapidp2p.peer import Multiaddr

    host, port = str(sockaddr[0]), int(sockaddr[1])  # type: ignore[call-overload]
    proto = "ip6" if ":" in host else "ip4"
    return Multiaddr(f"/{proto}/{host}/tcp/{port}")


def _os_reason(exc: BaseException | None) -> str:
    """``connection refused`` rather than ``[Errno 111] Connect call failed ('127.0.0.1', 1)``."""
    if isinstance(exc, OSError) and (exc.errno or exc.strerror):
        # uvloop's strerror is "Connect call failed (...)": the errno says what happened.
        text = os.strerror(exc.errno) if exc.errno else str(exc.strerror)
        return text[:1].lower() + text[1:]
    return str(exc)


def _set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _resolve(proto: str, host: str, port: int) -> list[tuple[int, str]]:
    if proto in ("ip4", "ip6"):
        return [(_family(proto), host)]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, family=_family(proto), type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TransportError(f"cannot resolve {host}: {exc}") from exc
    seen: list[tuple[int, str]] = []
    for fam, _t, _p, _c, sa in infos:
        item = (int(fam), str(sa[0]))
        if item not in seen:
            seen.append(item)
    if not seen:
        raise TransportError(f"{host} resolves to no address")
    return seen


async def bind_servers(
    addr: Multiaddr,
    make: Callable[[], asyncio.BaseProtocol],
    backlog: int,
    to_multiaddr: Callable[[tuple[object, ...]], Multiaddr],
    *,
    ssl: _ssl.SSLContext | None = None,
    ssl_handshake_timeout: float | None = None,
) -> TcpListener:
    """Binds a TCP server socket for every address ``addr``'s host resolves to (shared by the
    transports that run over TCP: plain, WebSocket, WebSocket over TLS with ``ssl``); nothing
    stays bound on failure."""
    comps = parse_components(addr)
    proto, host, port = comps[0][0], comps[0][1], int(comps[1][1])
    loop = asyncio.get_running_loop()
    servers: list[asyncio.AbstractServer] = []
    addrs: list[Multiaddr] = []
    try:
        for fam, ip in await _resolve(proto, host, port):
            srv = await loop.create_server(
                make,
                ip,
                port,
                family=fam,
                backlog=backlog,
                reuse_address=True,
                ssl=ssl,
                ssl_handshake_timeout=ssl_handshake_timeout if ssl is not None else None,
            )
            servers.append(srv)
            addrs += [to_multiaddr(sock.getsockname()) for sock in srv.sockets]
    except OSError as exc:
        for started in servers:
            started.close()
        raise TransportError(f"cannot listen on {addr}: {exc}") from exc
    return TcpListener(servers, addrs)


class TcpListener:
    """One or more bound server sockets (a ``/dns`` name may bind several addresses)."""

    def __init__(self, servers: list[asyncio.AbstractServer], addrs: list[Multiaddr]) -> None:
        self._servers = servers
        self._addrs = addrs

    @property
    def addrs(self) -> list[Multiaddr]:
        return list(self._addrs)

    async def close(self) -> None:
        for srv in self._servers:
            srv.close()
        for srv in self._servers:
            with contextlib.suppress(asyncio.TimeoutError, OSError):
                await asyncio.wait_for(srv.wait_closed(), 1.0)


class TcpTransport:
    """Plain TCP through asyncio's ``create_server`` / ``create_connection``.

    ``local_ip`` binds dials to that source address (a multi-homed host; tests that dial
    from several loopback addresses).
    """

    #: A raw byte stream: a private network's protector can run over it (rapidp2p.pnet).
    carries_psk = True

    def __init__(self, *, backlog: int = 512, local_ip: str | None = None) -> None:
        self._backlog = backlog
        self._local_ip = local_ip

    def can_dial(self, addr: Multiaddr) -> bool:
        try:
            _split(addr)
        except TransportError:
            return False
        return True

    can_listen = can_dial

    async def listen(
        self, addr: Multiaddr, factory: ConnectionFactory, handler: InboundHandler
    ) -> TcpListener:
        _split(addr)  # a typed TransportError before anything binds

        def on_made(conn: MuxedConnection) -> None:
            if conn.transport is not None:
                _set_nodelay(conn.transport)
            handler(conn)

        def make() -> MuxedConnection:
            conn = factory()
            conn.on_made = on_made
            return conn

        return await bind_servers(addr, make, self._backlog, sockaddr_to_multiaddr)

    async def dial(self, addr: Multiaddr, factory: ConnectionFactory) -> MuxedConnection:
        proto, host, port = _split(addr)
        loop = asyncio.get_running_loop()
        last: BaseException | None = None
        for fam, ip in await _resolve(proto, host, port):
            try:
                local = None if self._local_ip is None else (self._local_ip, 0)
                transport, conn = await loop.create_connection(
                    factory, ip, port, family=fam, local_addr=local
                )
            except OSError as exc:
                last = exc
                continue
            _set_nodelay(transport)
            return conn
        raise TransportError(f"{addr}: {_os_reason(last)}") from last
