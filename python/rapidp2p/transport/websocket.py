"""WebSocket (``/ws``): TCP carrying RFC 6455 binary frames, then the usual upgrade inside.

What browsers can dial. The socket's protocol is :class:`_WsPipe`: the sans-IO ``wsproto``
state machine (python-hyper, on the ``h11`` this package already uses) does the HTTP/1.1
upgrade, framing, masking, ping/pong and the close handshake; the payload bytes of every
binary frame go to an ordinary :class:`~rapidp2p._aio.connection.MuxedConnection`, which sees a
byte stream through :class:`_WsTransport` and is upgraded (Noise or TLS, yamux) like a TCP
connection. Only the framing differs from TCP; every other layer is shared.

Limits: the upgrade request is bounded by h11 (16 KiB); frame payloads stream through as they
arrive (never buffered whole), so a peer announcing a huge frame holds no memory; text frames
are a protocol error (libp2p speaks binary only) and close the connection with code 1003.

``/wss`` (and its spelled-out forms ``/tls/ws`` and ``/tls/sni/<host>/ws``) is the same with TLS
between TCP and the WebSocket: Python's :mod:`ssl` wraps the TCP stream (asyncio's SSL
transport), so everything above sees the same bytes. Listening needs the user's certificate
(``WebSocketTransport(tls=...)``, see :func:`server_tls_context`); dialing verifies the server
against the system's trust store unless ``client_tls`` says otherwise, with the SNI name from
``/sni/<host>``, else the ``/dns*`` name, else the IP address.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from rapidp2p._aio.connection import MuxedConnection
from rapidp2p.exceptions import TransportError
from rapidp2p.transport.base import ConnectionFactory, InboundHandler, parse_components
from rapidp2p.transport.tcp import (
    TcpListener,
    _resolve,
    _set_nodelay,
    bind_servers,
    sockaddr_to_multiaddr,
)

if TYPE_CHECKING:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (
        AcceptConnection,
        BytesMessage,
        CloseConnection,
        Ping,
        RejectConnection,
        Request,
        TextMessage,
    )
    from wsproto.utilities import LocalProtocolError as WsLocalError
    from wsproto.utilities import RemoteProtocolError as WsRemoteError

    from rapidp2p.peer import Multiaddr

__all__ = ["WebSocketTransport", "server_tls_context"]

_wsproto_loaded = False


def _load_wsproto() -> None:
    """Imports ``wsproto`` (and h11) into this module's globals: done by the first WebSocket
    connection, so a host that never uses ``/ws`` never loads them (~1.5 MiB, ~30 ms)."""
    global _wsproto_loaded, ConnectionType, WSConnection, WsLocalError, WsRemoteError
    global AcceptConnection, BytesMessage, CloseConnection, Ping, RejectConnection
    global Request, TextMessage
    if _wsproto_loaded:
        return
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (
        AcceptConnection,
        BytesMessage,
        CloseConnection,
        Ping,
        RejectConnection,
        Request,
        TextMessage,
    )
    from wsproto.utilities import LocalProtocolError as WsLocalError
    from wsproto.utilities import RemoteProtocolError as WsRemoteError

    _wsproto_loaded = True


#: Seconds the WebSocket opening handshake may take (either side).
HANDSHAKE_TIMEOUT = 10.0
#: Close code sent when the peer sends a text frame (RFC 6455: unsupported data).
CLOSE_UNSUPPORTED = 1003
#: Close code for a framing violation.
CLOSE_PROTOCOL_ERROR = 1002

_HOST_PROTOS = {"ip4", "ip6", "dns", "dns4", "dns6"}


@dataclass(frozen=True)
class _WsAddr:
    """A parsed WebSocket multiaddr: where to connect and whether TLS runs under the frames."""

    proto: str
    host: str
    port: int
    #: TLS under the WebSocket (``/wss``, ``/tls/ws``, ``/tls/sni/<name>/ws``).
    secure: bool
    #: The name from ``/sni/<name>``, if any.
    sni: str | None
    #: What follows ``/tcp/<port>``: kept as given, so a listener reports the form it was asked.
    suffix: str

    def server_hostname(self) -> str:
        """The TLS server name a dialer sends and verifies: SNI, else the DNS name, else the IP."""
        return self.sni if self.sni is not None else self.host


def _split(addr: Multiaddr) -> _WsAddr:
    """``/ip4/1.2.3.4/tcp/5/ws[/p2p/...]`` -> where and how (also ``/wss``, ``/tls[/sni/h]/ws``)."""
    comps = [c for c in parse_components(addr) if c[0] != "p2p"]
    names = [c[0] for c in comps]
    if len(comps) < 3 or names[0] not in _HOST_PROTOS or names[1] != "tcp":
        raise TransportError(f"not a WebSocket multiaddr: {addr}")
    tail = names[2:]
    sni: str | None = None
    if tail == ["ws"]:
        secure, suffix = False, "/ws"
    elif tail == ["wss"]:
        secure, suffix = True, "/wss"
    elif tail == ["tls", "ws"]:
        secure, suffix = True, "/tls/ws"
    elif tail == ["tls", "sni", "ws"]:
        sni = comps[3][1]
        if not sni:
            raise TransportError(f"empty /sni name in {addr}")
        secure, suffix = True, f"/tls/sni/{sni}/ws"
    else:
        raise TransportError(f"not a WebSocket multiaddr: {addr}")
    try:
        port = int(comps[1][1])
    except ValueError:
        raise TransportError(f"bad TCP port in {addr}") from None
    if not 0 <= port <= 65535:
        raise TransportError(f"bad TCP port in {addr}")
    return _WsAddr(comps[0][0], comps[0][1], port, secure, sni, suffix)


def _ws_addr(sockaddr: tuple[object, ...], suffix: str = "/ws") -> Multiaddr:
    from rapidp2p.peer import Multiaddr

    return Multiaddr(f"{sockaddr_to_multiaddr(sockaddr)}{suffix}")


def server_tls_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A TLS server context for ``/wss`` listeners from a PEM certificate chain and key.

    Why a helper: the defaults browsers need (TLS 1.2 or newer, HTTP/1.1 offered by ALPN, no
    client certificates) in one place; ``ssl.SSLError``/``OSError`` from a bad file become a
    :class:`TransportError` naming the files.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        ctx.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise TransportError(f"cannot load the TLS certificate {certfile}: {exc}") from exc
    return ctx


class _WsTransport(asyncio.Transport):
    """What the inner connection writes to: each write becomes one binary frame."""

    def __init__(self, pipe: _WsPipe) -> None:
        super().__init__()
        self._pipe = pipe

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._pipe.send_payload(bytes(data))

    def is_closing(self) -> bool:
        return self._pipe.closing

    def close(self) -> None:
        self._pipe.close_gracefully()

    def abort(self) -> None:
        self._pipe.abort()

    def can_write_eof(self) -> bool:
        return False

    def pause_reading(self) -> None:
        tr = self._pipe.transport
        if tr is not None:
            tr.pause_reading()

    def resume_reading(self) -> None:
        tr = self._pipe.transport
        if tr is not None:
            tr.resume_reading()

    def is_reading(self) -> bool:
        tr = self._pipe.transport
        return tr is not None and tr.is_reading()

    def get_write_buffer_size(self) -> int:
        tr = self._pipe.transport
        return 0 if tr is None else tr.get_write_buffer_size()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        tr = self._pipe.transport
        return default if tr is None else tr.get_extra_info(name, default)


class _WsPipe(asyncio.Protocol):
    """The socket's protocol: WebSocket framing around ``inner``'s byte stream."""

    def __init__(
        self,
        inner: MuxedConnection,
        *,
        client: bool,
        host: str = "",
        on_open: Callable[[MuxedConnection], None] | None = None,
    ) -> None:
        self.inner = inner
        self.client = client
        self.host = host
        self.on_open = on_open
        _load_wsproto()
        self.ws = WSConnection(ConnectionType.CLIENT if client else ConnectionType.SERVER)
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.closing = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # ---- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        _set_nodelay(transport)
        if self.client:
            self._send(Request(host=self.host, target="/"))

    def data_received(self, data: bytes) -> None:
        try:
            self.ws.receive_data(data)
            for event in self.ws.events():
                self._on_event(event)
        except (WsRemoteError, WsLocalError) as exc:
            self._fail(TransportError(f"WebSocket protocol error: {exc}"), CLOSE_PROTOCOL_ERROR)

    def eof_received(self) -> bool | None:
        if self.open:
            self.inner.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.closing = True
        if not self.opened.done():
            self.opened.set_exception(
                TransportError(f"connection lost during the WebSocket handshake: {exc}")
            )
            self.opened.exception()
        if self.open:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.open:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.open:
            self.inner.resume_writing()

    # ---- WebSocket events --------------------------------------------------------------

    def _on_event(self, event: object) -> None:
        if isinstance(event, BytesMessage):
            if self.open and event.data:
                self.inner.data_received(bytes(event.data))
        elif isinstance(event, Request):
            self._send(AcceptConnection())
            self._opened()
        elif isinstance(event, AcceptConnection):
            self._opened()
        elif isinstance(event, Ping):
            self._send(event.response())
        elif isinstance(event, CloseConnection):
            if self.ws.state.name in ("REMOTE_CLOSING",):
                self._send(event.response())
            if self.transport is not None:
                self.transport.close()
        elif isinstance(event, TextMessage):
            self._fail(TransportError("WebSocket text frame (libp2p is binary)"), CLOSE_UNSUPPORTED)
        elif isinstance(event, RejectConnection):
            self._fail(TransportError(f"WebSocket upgrade refused ({event.status_code})"), None)

    def _opened(self) -> None:
        self.open = True
        self.inner.connection_made(_WsTransport(self))
        if not self.opened.done():
            self.opened.set_result(None)
        if self.on_open is not None:
            self.on_open(self.inner)

    # ---- writes ------------------------------------------------------------------------

    def _send(self, event: Any) -> None:
        tr = self.transport
        if tr is None or tr.is_closing():
            return
        tr.write(self.ws.send(event))

    def send_payload(self, data: bytes) -> None:
        if not data or self.closing:
            return
        try:
            self._send(BytesMessage(data=data))
        except WsLocalError:  # the close handshake started: nothing more may be sent
            self.closing = True

    def close_gracefully(self) -> None:
        if self.closing:
            return
        self.closing = True
        with contextlib.suppress(WsLocalError):
            self._send(CloseConnection(code=1000))
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, err: TransportError, code: int | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(err)
            self.opened.exception()
        if self.open and self.inner.close_reason is None:
            self.inner.close_reason = err
        if code is not None and not self.closing:
            self.closing = True
            with contextlib.suppress(WsLocalError):
                self._send(CloseConnection(code=code, reason=str(err)[:100]))
        if self.transport is not None:
            self.transport.close()


class WebSocketTransport:
    """``/ip4|ip6|dns*/<host>/tcp/<port>/ws``, and over TLS ``/wss``, ``/tls/ws``,
    ``/tls/sni/<name>/ws``: dial and listen.

    ``tls`` is the server context a secure listener presents (its certificate; see
    :func:`server_tls_context`): without it only plain ``/ws`` can listen. ``client_tls`` is the
    context secure dials verify servers with (default: the system's trust store, built on
    first use).
    """

    #: A byte stream under the security handshake: a private network can run over it.
    carries_psk = True

    def __init__(
        self,
        *,
        backlog: int = 512,
        tls: ssl.SSLContext | None = None,
        client_tls: ssl.SSLContext | None = None,
    ) -> None:
        self._backlog = backlog
        self._tls = tls
        self._client_tls = client_tls

    def can_dial(self, addr: Multiaddr) -> bool:
        try:
            _split(addr)
        except TransportError:
            return False
        return True

    #: Every WebSocket address, secure ones too: listening on ``/wss`` without a certificate
    #: then fails with the reason (a certificate is missing), not "no transport".
    can_listen = can_dial

    def _client_context(self) -> ssl.SSLContext:
        if self._client_tls is None:
            self._client_tls = ssl.create_default_context()
            self._client_tls.set_alpn_protocols(["http/1.1"])
        return self._client_tls

    async def listen(
        self, addr: Multiaddr, factory: ConnectionFactory, handler: InboundHandler
    ) -> TcpListener:
        where = _split(addr)  # a typed TransportError before anything binds
        if where.secure and self._tls is None:
            raise TransportError(
                f"cannot listen on {addr}: TLS needs a certificate "
                "(WebSocketTransport(tls=server_tls_context(cert, key)))"
            )
        loop = asyncio.get_running_loop()
        suffix = where.suffix

        def on_open(conn: MuxedConnection) -> None:
            peer = conn.transport.get_extra_info("peername") if conn.transport else None
            if isinstance(peer, tuple) and len(peer) >= 2:
                with contextlib.suppress(ValueError, TypeError):
                    conn.remote_addr = _ws_addr(peer, suffix)
            handler(conn)

        def make() -> _WsPipe:
            pipe = _WsPipe(factory(), client=False, on_open=on_open)
            # A client that never completes the opening handshake is dropped.
            loop.call_later(HANDSHAKE_TIMEOUT, _drop_if_not_open, pipe)
            return pipe

        return await bind_servers(
            addr,
            make,
            self._backlog,
            partial(_ws_addr, suffix=suffix),
            ssl=self._tls if where.secure else None,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
        )

    async def dial(self, addr: Multiaddr, factory: ConnectionFactory) -> MuxedConnection:
        where = _split(addr)
        host, port = where.host, where.port
        loop = asyncio.get_running_loop()
        tls = self._client_context() if where.secure else None
        last: BaseException | None = None
        for fam, ip in await _resolve(where.proto, host, port):
            inner = factory()
            host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            try:
                _, pipe = await loop.create_connection(
                    partial(_WsPipe, inner, client=True, host=host_header),
                    ip,
                    port,
                    family=fam,
                    ssl=tls,
                    server_hostname=where.server_hostname() if tls is not None else None,
                    ssl_handshake_timeout=HANDSHAKE_TIMEOUT if tls is not None else None,
                )
            except ssl.SSLError as exc:  # the server is there but its TLS is not acceptable
                raise TransportError(f"{addr}: TLS handshake failed: {exc}") from exc
            except (OSError, asyncio.TimeoutError) as exc:
                last = exc
                continue
            try:
                await asyncio.wait_for(asyncio.shield(pipe.opened), HANDSHAKE_TIMEOUT)
            except asyncio.TimeoutError:
                pipe.abort()
                raise TransportError(f"{addr}: no WebSocket handshake within 10 s") from None
            except TransportError as exc:
                pipe.abort()
                raise TransportError(f"{addr}: {exc}") from exc
            inner.remote_addr = addr
            return inner
        raise TransportError(f"{addr}: {last}") from last


def _drop_if_not_open(pipe: _WsPipe) -> None:
    if not pipe.open:
        pipe.abort()
