"""The rendezvous client: register, unregister, discover; a discovery source that polls a
server with cookies (:meth:`RendezvousClient.watch`), and registrations kept alive by
re-registering before their TTL runs out (:meth:`RendezvousClient.keep_registered`).

A registration lives only for its TTL on the server (the spec: "peers SHOULD refresh their
registrations before they expire"); go-libp2p-rendezvous's client re-registers in the
background, rust-libp2p leaves it to the application. Here the refresh is a task per
(server, namespace), re-sent at :data:`REFRESH_FRACTION` of the granted TTL with the host's
current addresses (so a registration also follows address changes), and retried with jittered
exponential backoff after a failure, always before the registration would expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
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
REFRESH_FRACTION = 0.75
"""A registration is re-sent after this fraction of the TTL the server granted."""
RETRY_MIN = 1.0
"""First retry delay after a failed (re-)registration, doubled per failure."""
RETRY_MAX = 300.0
"""Longest retry delay (also capped by the time left before the registration expires)."""


def refresh_delay(granted_ttl: float, fraction: float = REFRESH_FRACTION) -> float:
    """Seconds to wait before re-registering a registration granted ``granted_ttl``."""
    return max(0.5, granted_ttl * fraction)


def retry_delay(failures: int, time_left: float, rng: random.Random | None = None) -> float:
    """Seconds before retry number ``failures`` (1-based): exponential from :data:`RETRY_MIN`
    to :data:`RETRY_MAX`, jittered down by up to a half (so many clients refused together do
    not come back together), and at most half the time the registration has left."""
    base = min(RETRY_MAX, RETRY_MIN * (2 ** max(0, failures - 1)))
    jittered: float = base - (rng or random).uniform(0, base / 2)
    if time_left > 0:
        jittered = min(jittered, max(RETRY_MIN / 2, time_left / 2))
    return jittered


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
    #: Not served, but opened: its streams count in the ``service:libp2p.rendezvous`` scope.
    protocols: tuple[str, ...] = (PROTOCOL_ID,)
    service_name = "libp2p.rendezvous"

    def __init__(self, host: Host | None = None) -> None:
        self.feed = DiscoveryFeed(self.name)
        self._host: Host | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Servers (peer IDs) that accept only rust-libp2p's record kind.
        self._legacy_servers: set[PeerId] = set()
        #: Refresh tasks of :meth:`keep_registered`, by (server, namespace).
        self._keepers: dict[tuple[str, str], asyncio.Task[None]] = {}
        #: Counters of the background tasks ("registered", "register_failed", "watch_polls").
        self.stats: dict[str, int] = {}
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
        """Drops our registration under ``ns`` (and stops keeping it registered)."""
        keeper = self._keepers.pop((str(server), ns), None)
        if keeper is not None:
            keeper.cancel()
        await self._request(server, Message(Unregister(ns)))

    async def keep_registered(
        self,
        server: PeerId | PeerInfo | Multiaddr,
        ns: str,
        ttl: int = DEFAULT_TTL,
        *,
        addrs: list[Multiaddr] | None = None,
        legacy: bool | None = None,
        fraction: float = REFRESH_FRACTION,
    ) -> int:
        """Registers under ``ns`` now (raising what :meth:`register` raises), then keeps the
        registration alive: re-registers after ``fraction`` of each granted TTL until
        :meth:`unregister` or :meth:`close`. Returns the first granted TTL."""
        granted = await self.register(server, ns, ttl, addrs=addrs, legacy=legacy)
        key = (str(server), ns)
        old = self._keepers.pop(key, None)
        if old is not None:
            old.cancel()
        task = asyncio.get_running_loop().create_task(
            self._refresh(server, ns, ttl, granted, addrs, legacy, fraction)
        )
        self._keepers[key] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return granted

    async def _refresh(
        self,
        server: PeerId | PeerInfo | Multiaddr,
        ns: str,
        ttl: int,
        granted: int,
        addrs: list[Multiaddr] | None,
        legacy: bool | None,
        fraction: float,
    ) -> None:
        loop = asyncio.get_running_loop()
        expires = loop.time() + granted
        delay = refresh_delay(granted, fraction)
        failures = 0
        while True:
            await asyncio.sleep(delay)
            try:
                granted = await self.register(server, ns, ttl, addrs=addrs, legacy=legacy)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                self.stats["register_failed"] = self.stats.get("register_failed", 0) + 1
                delay = retry_delay(failures, expires - loop.time())
                log.info(
                    "rendezvous: re-registering %r with %s failed (%s); retry in %.1f s",
                    ns,
                    server,
                    exc,
                    delay,
                )
                continue
            failures = 0
            self.stats["registered"] = self.stats.get("registered", 0) + 1
            expires = loop.time() + granted
            delay = refresh_delay(granted, fraction)

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
        self,
        server: PeerId | PeerInfo | Multiaddr,
        ns: str,
        *,
        interval: float = 30.0,
        limit: int = 0,
    ) -> None:
        """Polls ``server`` for ``ns`` every ``interval`` seconds, following the cookie so each
        poll returns only registrations newer than the last (a refreshed registration counts as
        new, so address changes come through), feeding them to the source until :meth:`close`.
        A full page (``limit`` answers) is followed at once by the next; a cookie the server no
        longer knows (it restarted or forgot it) starts over from the beginning."""
        task = asyncio.get_running_loop().create_task(self._watch(server, ns, interval, limit))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(
        self, server: PeerId | PeerInfo | Multiaddr, ns: str, interval: float, limit: int
    ) -> None:
        cookie = b""
        while True:
            full_page = False
            try:
                found, cookie = await self.discover(server, ns, limit=limit, cookie=cookie)
                full_page = limit > 0 and len(found) >= limit
            except RendezvousError as exc:
                if exc.status == ResponseStatus.E_INVALID_COOKIE:
                    cookie = b""
                    full_page = True  # start over now, not one interval later
                log.debug("rendezvous watch of %s: %s", ns, exc)
            except Exception as exc:
                log.debug("rendezvous watch of %s: %s", ns, exc)
            self.stats["watch_polls"] = self.stats.get("watch_polls", 0) + 1
            await asyncio.sleep(0 if full_page else interval)

    async def close(self) -> None:
        """Stops the refresh and watch tasks (registrations stay until their TTL runs out)."""
        self._keepers.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.feed.close()
