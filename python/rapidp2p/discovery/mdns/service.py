"""The mDNS discovery service: multicast sockets on asyncio around :class:`MdnsCore`.

``await MdnsService().start(host)`` joins ``224.0.0.251`` and ``ff02::fb`` on port 5353 on
every multicast-capable interface (SO_REUSEPORT, so go-, js- and rust-libp2p or avahi on the
same machine can share the port), answers ``_p2p._udp.local`` queries with the host's
addresses, queries every ``query_interval`` seconds, and feeds every peer it hears about to
its readers and ``host.events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import ifaddr

from rapidp2p.discovery.base import DiscoveryFeed
from rapidp2p.discovery.mdns._proto import (
    DEFAULT_TTL,
    MDNS_GROUP_V4,
    MDNS_GROUP_V6,
    MDNS_PORT,
    SERVICE_NAME,
    MdnsCore,
    MdnsError,
)
from rapidp2p.peer import Multiaddr, PeerInfo

if TYPE_CHECKING:
    from rapidp2p.host.host import Host

__all__ = ["MdnsService"]

log = logging.getLogger(__name__)

MIN_RESPONSE_INTERVAL = 1.0
"""RFC 6762 section 6: a record is multicast at most once per second (also bounds what a
query flood can make us send)."""


def _interfaces() -> tuple[list[tuple[str, str]], list[tuple[str, int]]]:
    """(IPv4 (name, address)) and (IPv6 (name, index)) of every non-loopback interface."""
    v4: list[tuple[str, str]] = []
    v6: list[tuple[str, int]] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                if not ipaddress.IPv4Address(ip.ip).is_loopback:
                    v4.append((adapter.name, ip.ip))
            else:
                addr = ipaddress.IPv6Address(ip.ip[0])
                if addr.is_link_local and not addr.is_loopback:
                    with contextlib.suppress(OSError):
                        v6.append((adapter.name, socket.if_nametoindex(adapter.name)))
    return v4, sorted(set(v6))


def _is_loopback(addr: Multiaddr) -> bool:
    for name, value in addr.items():
        if name in ("ip4", "ip6") and value is not None:
            return ipaddress.ip_address(value).is_loopback
    return False


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, service: MdnsService) -> None:
        self.service = service

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.service._on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("mdns socket error: %s", exc)


class MdnsService:
    """Announces this host and finds peers on the local network (``name = "mdns"``)."""

    name = "mdns"
    protocols: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        query_interval: float = 10.0,
        ttl: int = DEFAULT_TTL,
        ipv4: bool = True,
        ipv6: bool = True,
        port: int = MDNS_PORT,
        service: str = SERVICE_NAME,
        announce_loopback: bool = False,
    ) -> None:
        self.query_interval = query_interval
        self.ttl = ttl
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.port = port
        self.service = service
        self.announce_loopback = announce_loopback
        self.feed = DiscoveryFeed(self.name)
        self.core: MdnsCore | None = None
        self._host: Host | None = None
        self._transports: list[tuple[asyncio.DatagramTransport, socket.socket, str]] = []
        self._v4_ifaces: list[str] = []
        self._v6_ifaces: list[int] = []
        self._task: asyncio.Task[None] | None = None
        self._last_response = -1e9
        self._response_pending = False
        self._seen: dict[Any, float] = {}
        #: Datagrams that were not DNS messages (for tests and ``rapidp2p peers``).
        self.bad_datagrams = 0

    def __aiter__(self) -> AsyncIterator[PeerInfo]:
        return self.feed.subscribe()

    def on_connection(self, conn: object) -> None:
        """Nothing to do per connection (a discovery source only dials)."""

    async def start(self, host: Host) -> None:
        self._host = host
        self.feed.attach(host)
        self.core = MdnsCore(host.peer_id, ttl=self.ttl, service=self.service)
        loop = asyncio.get_running_loop()
        v4, v6 = _interfaces()
        self._v4_ifaces = [ip for _name, ip in v4]
        self._v6_ifaces = sorted({idx for _name, idx in v6})
        socks: list[tuple[socket.socket, str]] = []
        if self.ipv4 and self._v4_ifaces:
            socks.append((self._socket_v4(), "v4"))
        if self.ipv6 and self._v6_ifaces:
            with contextlib.suppress(OSError):
                socks.append((self._socket_v6(), "v6"))
        if not socks:
            log.warning("mdns: no multicast-capable interface; discovery is idle")
        for sock, family in socks:
            transport, _proto = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), sock=sock
            )
            self._transports.append((transport, sock, family))
        await host.add_service(self)  # registers first: the nested start is skipped
        self._task = loop.create_task(self._run())

    def _socket_v4(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("", self.port))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        for ip in self._v4_ifaces:
            mreq = socket.inet_aton(MDNS_GROUP_V4) + socket.inet_aton(ip)
            with contextlib.suppress(OSError):  # already joined through another address
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        sock.setblocking(False)
        return sock

    def _socket_v6(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("::", self.port))
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
        group = socket.inet_pton(socket.AF_INET6, MDNS_GROUP_V6)
        for idx in self._v6_ifaces:
            with contextlib.suppress(OSError):
                sock.setsockopt(
                    socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group + struct.pack("@I", idx)
                )
        sock.setblocking(False)
        return sock

    def _announced_addrs(self) -> list[Multiaddr]:
        assert self._host is not None
        addrs = self._host.addrs
        if not self.announce_loopback:
            addrs = [a for a in addrs if not _is_loopback(a)]
        return addrs

    def _send(self, packet: bytes) -> None:
        """Multicasts ``packet`` out of every interface (straight on the socket: one datagram
        per interface, and a full send buffer just loses this round, as UDP may)."""
        for _transport, sock, family in self._transports:
            try:
                if family == "v4":
                    for ip in self._v4_ifaces:
                        sock.setsockopt(
                            socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ip)
                        )
                        sock.sendto(packet, (MDNS_GROUP_V4, self.port))
                else:
                    for idx in self._v6_ifaces:
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
                        sock.sendto(packet, (MDNS_GROUP_V6, self.port, 0, idx))
            except OSError as exc:  # an interface went away, a full buffer: next round
                log.debug("mdns send failed: %s", exc)

    async def _run(self) -> None:
        assert self.core is not None
        self._respond()  # announce ourselves once at start
        while True:
            self._send(self.core.build_query())
            await asyncio.sleep(self.query_interval)

    def _respond(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self._last_response + MIN_RESPONSE_INTERVAL - loop.time()
        if wait > 0:
            if not self._response_pending:
                self._response_pending = True
                loop.call_later(wait, self._respond_later)
            return
        assert self.core is not None
        packet = self.core.build_response(self._announced_addrs())
        if packet is not None:
            self._last_response = loop.time()
            self._send(packet)

    def _respond_later(self) -> None:
        self._response_pending = False
        if self.core is not None and self._transports:
            self._respond()

    def _on_datagram(self, data: bytes) -> None:
        core = self.core
        if core is None:
            return
        try:
            received = core.parse(data)
        except MdnsError as exc:
            self.bad_datagrams += 1
            log.debug("mdns: %s", exc)
            return
        if received.is_query:
            self._respond()
        now = asyncio.get_running_loop().time()
        for info in received.peers:
            key = (info.peer_id, tuple(info.addrs))
            last = self._seen.get(key)
            if last is not None and now - last < self.query_interval / 2:
                continue  # the same answer again (several interfaces, several queriers)
            self._seen[key] = now
            if len(self._seen) > 4096:
                self._seen.pop(next(iter(self._seen)))
            self.feed.found(info)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for transport, _sock, _family in self._transports:
            transport.close()
        self._transports.clear()
        self.core = None
        self.feed.close()
