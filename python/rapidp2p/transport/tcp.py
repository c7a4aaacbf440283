"""TCP: listen and dial on ``/ip4``, ``/ip6``, ``/dns``, ``/dns4``, ``/dns6`` + ``/tcp/<port>``.

Sockets are owned by asyncio (uvloop when installed); names resolve with
``loop.getaddrinfo``; TCP_NODELAY is set on every socket; ``/tcp/0`` binds an ephemeral
port and the listener reports the real one.

Port reuse (go-libp2p's ``reuseport``): listeners set SO_REUSEPORT, and a dial to a
non-loopback address leaves from the port of a listener of its family, so the mapping a NAT
makes for it (what identify's observers report) is the one peers can reach us at, and a
hole punch (DCUtR's TCP simultaneous open) meets it. A dial whose 4-tuple is taken falls back
to an ephemeral port.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
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
    reuse_port: bool = False,
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
            if reuse_port and port != 0:
                _check_port_free(fam, ip, port)  # SO_REUSEPORT would share a taken port
            srv = await loop.create_server(
                make,
                ip,
                port,
                family=fam,
                backlog=backlog,
                reuse_address=True,
                reuse_port=reuse_port or None,
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


def _check_port_free(family: int, ip: str, port: int) -> None:
    """Raises OSError(EADDRINUSE) when a socket listens on ``ip:port`` already: a listener
    with SO_REUSEPORT would otherwise share the port (with another host of this user, or a
    second listener of ours) instead of failing as a busy port should."""
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
        probe.bind((ip, port))
    finally:
        probe.close()


class TcpListener:
    """One or more bound server sockets (a ``/dns`` name may bind several addresses)."""

    def __init__(self, servers: list[asyncio.AbstractServer], addrs: list[Multiaddr]) -> None:
        self._servers = servers
        self._addrs = addrs
        self.closed = False

    @property
    def addrs(self) -> list[Multiaddr]:
        return list(self._addrs)

    async def close(self) -> None:
        self.closed = True
        for srv in self._servers:
            srv.close()
        for srv in self._servers:
            with contextlib.suppress(asyncio.TimeoutError, OSError):
                await asyncio.wait_for(srv.wait_closed(), 1.0)


class TcpTransport:
    """Plain TCP through asyncio's ``create_server`` / ``create_connection``.

    ``local_ip`` binds dials to that source address (a multi-homed host; tests that dial
    from several loopback addresses). ``reuse_port`` (default on): listen with SO_REUSEPORT
    and dial non-loopback addresses from a listen port (see the module's docstring).
    """

    #: A raw byte stream: a private network's protector can run over it (rapidp2p.pnet).
    carries_psk = True

    def __init__(
        self, *, backlog: int = 512, local_ip: str | None = None, reuse_port: bool = True
    ) -> None:
        self._backlog = backlog
        self._local_ip = local_ip
        self.reuse_port = reuse_port and hasattr(socket, "SO_REUSEPORT")
        self._listeners: list[TcpListener] = []

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

        lst = await bind_servers(
            addr, make, self._backlog, sockaddr_to_multiaddr, reuse_port=self.reuse_port
        )
        self._listeners = [x for x in self._listeners if not x.closed]
        self._listeners.append(lst)
        return lst

    def listen_port_for(self, family: int, target: str) -> tuple[str, int] | None:
        """The (local IP, port) a dial to ``target`` reuses: a live listener of ``family``
        bound to the unspecified address or to an address on the same side of loopback as
        ``target``; None when there is none (or port reuse is off)."""
        if not self.reuse_port:
            return None
        try:
            dest = ipaddress.ip_address(target)
        except ValueError:
            return None
        for lst in self._listeners:
            if lst.closed:
                continue
            for a in lst.addrs:
                comps = parse_components(a)
                ip = ipaddress.ip_address(comps[0][1])
                if ip.version != dest.version or family not in (_ip_family(ip), 0):
                    continue
                if ip.is_unspecified or ip.is_loopback == dest.is_loopback:
                    return ("" if ip.is_unspecified else str(ip)), int(comps[1][1])
        return None

    async def dial(
        self, addr: Multiaddr, factory: ConnectionFactory, *, reuse: bool | None = None
    ) -> MuxedConnection:
        """Connects to ``addr``. ``reuse``: None leaves from a listen port for non-loopback
        targets (falling back to an ephemeral port); True always tries the listen port (a
        hole punch); False never does."""
        proto, host, port = _split(addr)
        loop = asyncio.get_running_loop()
        last: BaseException | None = None
        for fam, ip in await _resolve(proto, host, port):
            wants = reuse if reuse is not None else not ipaddress.ip_address(ip).is_loopback
            bound = self.listen_port_for(fam, ip) if wants else None
            try:
                if bound is not None:
                    try:
                        return await _dial_from(loop, factory, fam, ip, port, bound)
                    except OSError as exc:
                        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL) or reuse:
                            raise
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


def _ip_family(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return socket.AF_INET if ip.version == 4 else socket.AF_INET6


async def _dial_from(
    loop: asyncio.AbstractEventLoop,
    factory: ConnectionFactory,
    family: int,
    ip: str,
    port: int,
    local: tuple[str, int],
) -> MuxedConnection:
    """Connects from ``local`` (a listen port, shared through SO_REUSEPORT)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setblocking(False)
        sock.bind(local)
        await loop.sock_connect(sock, (ip, port))
        transport, conn = await loop.create_connection(factory, sock=sock)
    except BaseException:
        sock.close()
        raise
    _set_nodelay(transport)
    return conn
