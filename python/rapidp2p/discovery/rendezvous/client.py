"""The rendezvous client: register, unregister, discover; and a discovery source that polls
a server with cookies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rapidp2p.discovery.base import DiscoveryFeed
from rapidp2p.discovery.rendezvous._proto import (
    DEFAULT_TTL,
    MAX_MESSAGE_SIZE,
    PROTOCOL_ID,
    Discover,
    DiscoverResponse,
    Message,
    Register,
    RegisterResponse,
    RendezvousError,
    ResponseStatus,
    Unregister,
)
from rapidp2p.discovery.rendezvous.records import open_record, seal_record
from rapidp2p.exceptions import Libp2pError, StreamResetError
from rapidp2p.peer import Multiaddr, PeerId, PeerInfo
from rapidp2p.protocols.framing import read_delimited, write_delimited
from rapidp2p.protocols.multistream._timeout import run_with_timeout

if TYPE_CHECKING:
    from rapidp2p.host.host import Host

__all__ = ["Discovered", "RendezvousClient"]

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 15.0


@dataclass(frozen=True)
class Discovered:
    """One registration a server returned, its record verified."""

    peer: PeerInfo
    ns: str
    ttl: int


def _server_key(server: PeerId | PeerInfo | Multiaddr) -> PeerId | None:
    if isinstance(server, PeerId):
        return server
    if isinstance(server, PeerInfo):
        return server.peer_id
    return server.split_peer_id()[1]


def _status_name(status: int) -> str:
    try:
        return ResponseStatus(status).name
    except ValueError:
        return str(status)


class RendezvousClient:
    """Talks ``/rendezvous/1.0.0`` to servers; what ``discover`` finds also feeds the source
    (``async for info in client``) and ``host.events``."""

    name = "rendezvous"
    protocols: tuple[str, ...] = ()

    def __init__(self, host: Host | None = None) -> None:
        self.feed = DiscoveryFeed(self.name)
        self._host: Host | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Servers (peer IDs) that accept only rust-libp2p's record kind.
        self._legacy_servers: set[PeerId] = set()
        if host is not None:
            self._attach(host)

    def _attach(self, host: Host) -> None:
        self._host = host
        self.feed.attach(host)

    def on_connection(self, conn: object) -> None:
        """Nothing to do per connection (a discovery source only dials)."""

    async def start(self, host: Host) -> None:
        self._attach(host)
        await host.add_service(self)  # registers first: the nested start is skipped

    def __aiter__(self) -> AsyncIterator[PeerInfo]:
        return self.feed.subscribe()

    @property
    def host(self) -> Host:
        if self._host is None:
            raise RuntimeError("RendezvousClient is not started on a host")
        return self._host

    async def _request(
        self, server: PeerId | PeerInfo | Multiaddr, message: Message
    ) -> Message | None:
        stream = await self.host.new_stream(server, PROTOCOL_ID, timeout=REQUEST_TIMEOUT)
        try:
            await write_delimited(stream, message.encode())
            if isinstance(message.body, Unregister):
                await stream.close()
                return None
            raw = await run_with_timeout(read_delimited(stream, MAX_MESSAGE_SIZE), REQUEST_TIMEOUT)
            if raw is None:
                raise RendezvousError("server closed the stream without answering")
            answer = Message.decode(raw)
            await stream.close()
            return answer
        except BaseException:
            stream.reset()
            raise

    def signed_record(self, addrs: list[Multiaddr] | None = None, *, legacy: bool = False) -> bytes:
        """Our peer record (our advertised addresses), sealed with the host's key; in
        rust-libp2p's envelope kind when ``legacy`` (see :mod:`.records`)."""
        host = self.host
        chosen = addrs if addrs is not None else host.addrs
        return seal_record(host.key, host.peer_id, chosen, legacy=legacy)

    async def register(
        self,
        server: PeerId | PeerInfo | Multiaddr,
        ns: str,
        ttl: int = DEFAULT_TTL,
        *,
        addrs: list[Multiaddr] | None = None,
        legacy: bool | None = None,
    ) -> int:
        """Registers our addresses under ``ns``; returns the TTL the server granted.

        The record goes in the spec's envelope; a server that refuses it (rust-libp2p's) gets
        rust-libp2p's kind instead. ``legacy=True`` sends rust-libp2p's kind at once: rust-libp2p
        clients can read no other, so use it where they discover through the server.
        Raises RendezvousError (with ``status``) when the server refuses.
        """
        key = _server_key(server)
        legacy = bool(legacy) or key in self._legacy_servers
        try:
            answer = await self._register_once(server, ns, ttl, addrs, legacy)
        except StreamResetError:
            if legacy:
                raise
            answer = None
        if not legacy and (
            answer is None
            or (
                isinstance(answer.body, RegisterResponse)
                and answer.body.status == ResponseStatus.E_INVALID_SIGNED_PEER_RECORD
            )
        ):
            # rust-libp2p's server accepts only its own record kind, and resets the stream
            # on the spec's: retry once in its kind, and remember the server.
            answer = await self._register_once(server, ns, ttl, addrs, True)
            if key is not None:
                self._legacy_servers.add(key)
                if len(self._legacy_servers) > 1024:
                    self._legacy_servers.pop()
        assert answer is not None
        if not isinstance(answer.body, RegisterResponse):
            raise RendezvousError(f"expected REGISTER_RESPONSE, got {answer.type.name}")
        if answer.body.status != ResponseStatus.OK:
            raise RendezvousError(
                f"register refused: {_status_name(answer.body.status)} {answer.body.status_text}",
                answer.body.status,
            )
        return answer.body.ttl or ttl

    async def _register_once(
        self,
        server: PeerId | PeerInfo | Multiaddr | Multiaddr,
        ns: str,
        ttl: int,
        addrs: list[Multiaddr] | None,
        legacy: bool,
    ) -> Message | None:
        req = Register(ns, self.signed_record(addrs, legacy=legacy), ttl)
        return await self._request(server, Message(req))

    async def unregister(self, server: PeerId | PeerInfo | Multiaddr, ns: str) -> None:
        await self._request(server, Message(Unregister(ns)))

    async def discover(
        self,
        server: PeerId | PeerInfo | Multiaddr,
        ns: str = "",
        *,
        limit: int = 0,
        cookie: bytes = b"",
    ) -> tuple[list[Discovered], bytes]:
        """Registrations under ``ns`` (every namespace when empty), and the cookie to pass next
        time for only newer ones. Records that fail verification are skipped."""
        answer = await self._request(server, Message(Discover(ns, limit, cookie)))
        assert answer is not None
        body = answer.body
        if not isinstance(body, DiscoverResponse):
            raise RendezvousError(f"expected DISCOVER_RESPONSE, got {answer.type.name}")
        if body.status != ResponseStatus.OK:
            raise RendezvousError(
                f"discover refused: {_status_name(body.status)} {body.status_text}", body.status
            )
        found: list[Discovered] = []
        for reg in body.registrations[: limit or None]:
            try:
                record = open_record(reg.signed_peer_record)
            except Libp2pError as exc:
                log.debug("rendezvous: skipping a bad record from %s: %s", server, exc)
                continue
            info = PeerInfo(record.peer_id, record.addrs)
            found.append(Discovered(info, reg.ns, reg.ttl))
            self.feed.found(info)
        return found, body.cookie

    def watch(
        self, server: PeerId | PeerInfo | Multiaddr, ns: str, *, interval: float = 30.0
    ) -> None:
        """Polls ``server`` for ``ns`` every ``interval`` seconds (following the cookie),
        feeding what it finds to the source until :meth:`close`."""
        task = asyncio.get_running_loop().create_task(self._watch(server, ns, interval))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, server: PeerId | PeerInfo | Multiaddr, ns: str, interval: float) -> None:
        cookie = b""
        while True:
            try:
                _found, cookie = await self.discover(server, ns, cookie=cookie)
            except RendezvousError as exc:
                if exc.status == ResponseStatus.E_INVALID_COOKIE:
                    cookie = b""
                log.debug("rendezvous watch of %s: %s", ns, exc)
            except Exception as exc:
                log.debug("rendezvous watch of %s: %s", ns, exc)
            await asyncio.sleep(interval)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.feed.close()
