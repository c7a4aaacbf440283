"""The port mapper: a host service that maps the listen ports on the LAN's gateway.

Opt-in, as go-libp2p's ``libp2p.NATPortMap()``: ``HostConfig(port_mapping=True)`` (or a
:class:`PortMapConfig`), ``rapidp2p listen --nat-portmap``, or
``await host.add_service(PortMapper(host))``. Once started it:

* discovers the gateway (UPnP IGD v1/v2 and PCP/NAT-PMP searched at once; see
  :func:`rapidp2p.nat.gateway.discover`), again every ``retry_interval`` while none answers;
* maps every IPv4 TCP and UDP listen port (QUIC, WebSocket ride on those), asking for the
  same external port as the internal one and taking what the gateway gives when it is taken;
  new listeners are mapped as they appear (the host tells the service);
* learns the external IP, and adds ``/ip4/<external>/<tcp|udp>/<external port>/...`` (the
  listen address's own suffix kept) to :attr:`Host.addrs <rapidp2p.Host.addrs>` when that IP
  is public (behind a second NAT it would not be dialable), emitting
  :class:`~rapidp2p.nat.PortMappingChanged` and the host's ``LocalAddressesChanged``;
* renews each mapping when half its lease is gone (rust-libp2p's rule; go-libp2p renews a
  one-minute lease every 20 s), and removes every mapping when it closes (the host closes
  its services before its listeners).

A gateway's failure or malformed reply is logged and retried later; it never reaches the
host's connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rapidp2p.exceptions import MultiaddrError
from rapidp2p.host.events import Event
from rapidp2p.host.service import ServiceBase
from rapidp2p.nat.errors import PortMapError
from rapidp2p.peer import Multiaddr
from rapidp2p.transport.base import parse_components

if TYPE_CHECKING:
    from rapidp2p.host.host import Host
    from rapidp2p.nat.gateway import Gateway

__all__ = ["PortMapConfig", "PortMapper", "PortMapping", "PortMappingChanged", "mappable"]

log = logging.getLogger("rapidp2p.nat")

_Key = tuple[str, int]  # (protocol, internal port)


@dataclass
class PortMapConfig:
    """How the port mapper works (seconds)."""

    #: Lease asked for each mapping (rust-libp2p: 1 h; go-libp2p: 1 min).
    lease: int = 3600
    #: Renew when this fraction of the lease is gone.
    renew_fraction: float = 0.5
    #: Discovery methods, preferred first: ``"upnp"``, ``"natpmp"`` (PCP, else NAT-PMP).
    methods: tuple[str, ...] = ("upnp", "natpmp")
    #: How long the SSDP search listens for gateways.
    discovery_timeout: float = 3.0
    #: Between discovery attempts while no gateway answers, and after a failed mapping.
    retry_interval: float = 60.0
    #: The PCP / NAT-PMP gateway (default: the IPv4 default route's gateway).
    gateway: str | None = None
    #: The mapping's description at a UPnP gateway.
    description: str = "rapidp2p"
    #: Advertise the mapped address even when the gateway's external IP is not public
    #: (a second NAT upstream); off, as in go-libp2p.
    advertise_private: bool = False
    #: Bound on removing the mappings at close.
    close_timeout: float = 3.0


@dataclass(frozen=True)
class PortMapping:
    """A mapping held on the gateway."""

    protocol: str
    internal_port: int
    external_port: int
    external_ip: str | None
    #: ``time.monotonic()`` when it should be renewed.
    renew_at: float
    #: ``"upnp"``, ``"pcp"`` or ``"nat-pmp"``.
    via: str


@dataclass(frozen=True)
class PortMappingChanged(Event):
    """A port mapping appeared (``mapped``) or went away; ``peer_id`` is ours, ``addrs`` the
    external addresses it gives (or gave) to :attr:`Host.addrs <rapidp2p.Host.addrs>`."""

    protocol: str = ""
    internal_port: int = 0
    external_port: int = 0
    external_ip: str | None = None
    addrs: tuple[Any, ...] = ()
    mapped: bool = True
    via: str = ""


def mappable(addr: Multiaddr) -> tuple[str, int, str] | None:
    """(protocol, port, the suffix after the port) of a listen address worth mapping: IPv4,
    TCP or UDP, a real port, an unspecified or non-global (not loopback) IP, not relayed."""
    try:
        comps = parse_components(addr)
    except MultiaddrError:
        return None
    if len(comps) < 2 or comps[0][0] != "ip4" or comps[1][0] not in ("tcp", "udp"):
        return None
    if any(name == "p2p-circuit" for name, _ in comps):
        return None
    try:
        ip = ipaddress.IPv4Address(comps[0][1])
        port = int(comps[1][1])
    except ValueError:
        return None
    if ip.is_loopback or not 0 < port < 65536:
        return None
    if ip.is_global:
        return None  # a public listen address needs no mapping
    text = str(addr)
    prefix = f"/ip4/{comps[0][1]}/{comps[1][0]}/{comps[1][1]}"
    return comps[1][0], port, text[len(prefix) :]


class PortMapper(ServiceBase):
    """Maps the host's listen ports on the gateway (UPnP IGD, PCP, NAT-PMP)."""

    service_name = "libp2p.portmap"
    protocols = ()

    def __init__(self, host: Host, config: PortMapConfig | None = None) -> None:
        self.host = host
        self.config = config or PortMapConfig()
        self.gateway: Gateway | None = None
        self._mappings: dict[_Key, PortMapping] = {}
        self._failed: dict[_Key, float] = {}  # key -> monotonic time of the next try
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Set once discovery finished (found a gateway or not): tests and the CLI wait on it.
        self.discovered = asyncio.Event()

    @property
    def mappings(self) -> list[PortMapping]:
        return list(self._mappings.values())

    async def _start(self) -> None:
        self.host.add_address_source(self.external_addrs)
        self.host.on_listen(self.sync_soon)
        self._task = asyncio.ensure_future(self._run())

    def sync_soon(self) -> None:
        """The listen addresses changed: map what is new (called by the host)."""
        self._wake.set()

    def external_addrs(self) -> list[Multiaddr]:
        """The listen addresses as seen from outside through the mappings (what the host
        adds to :attr:`Host.addrs <rapidp2p.Host.addrs>`)."""
        out: list[Multiaddr] = []
        for addr in self.host.listen_addrs:
            m = mappable(addr)
            if m is None:
                continue
            mapping = self._mappings.get((m[0], m[1]))
            if mapping is None or not self._advertisable(mapping):
                continue
            ext = Multiaddr(f"/ip4/{mapping.external_ip}/{m[0]}/{mapping.external_port}{m[2]}")
            if ext not in out:
                out.append(ext)
        return out

    def _advertisable(self, mapping: PortMapping) -> bool:
        if mapping.external_ip is None:
            return False
        try:
            ip = ipaddress.IPv4Address(mapping.external_ip)
        except ValueError:
            return False
        if ip.is_unspecified:
            return False
        return ip.is_global or self.config.advertise_private

    def addrs_of(self, mapping: PortMapping) -> tuple[Multiaddr, ...]:
        if not self._advertisable(mapping):
            return ()
        out: list[Multiaddr] = []
        for addr in self.host.listen_addrs:
            m = mappable(addr)
            if m is not None and (m[0], m[1]) == (mapping.protocol, mapping.internal_port):
                a = Multiaddr(f"/ip4/{mapping.external_ip}/{m[0]}/{mapping.external_port}{m[2]}")
                if a not in out:
                    out.append(a)
        return tuple(out)

    def _wanted(self) -> set[_Key]:
        keys: set[_Key] = set()
        for addr in self.host.listen_addrs:
            m = mappable(addr)
            if m is not None:
                keys.add((m[0], m[1]))
        return keys

    async def _run(self) -> None:
        cfg = self.config
        from rapidp2p.nat.gateway import discover

        while self.gateway is None:
            try:
                self.gateway = await discover(
                    cfg.methods,
                    timeout=cfg.discovery_timeout,
                    gateway_ip=cfg.gateway,
                    description=cfg.description,
                )
                log.info(
                    "port mapping: %s gateway found (local address %s)",
                    self.gateway.kind,
                    self.gateway.local_ip,
                )
            except (PortMapError, OSError) as exc:
                log.info("port mapping: %s; retrying in %.0f s", exc, cfg.retry_interval)
                self.discovered.set()
                await asyncio.sleep(cfg.retry_interval)
        self.discovered.set()
        while True:
            self._wake.clear()
            await self.sync()
            delay = self._next_delay(time.monotonic())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _next_delay(self, now: float) -> float | None:
        """Seconds until the next renewal or retry is due (None: nothing is)."""
        due = [max(m.renew_at, self._failed.get(k, 0.0)) for k, m in self._mappings.items()]
        due += [t for k, t in self._failed.items() if k not in self._mappings]
        return max(1.0, min(due) - now) if due else None

    async def sync(self) -> None:
        """Maps what should be, renews what is due, removes what is no longer listened on."""
        gw = self.gateway
        if gw is None:
            return
        now = time.monotonic()
        wanted = self._wanted()
        changed = False
        for key in [k for k in self._mappings if k not in wanted]:
            changed |= await self._remove(key)
        for key in sorted(wanted):
            current = self._mappings.get(key)
            if current is not None and now < current.renew_at:
                continue
            if self._failed.get(key, 0.0) > now:
                continue  # failed lately: retried after retry_interval
            changed |= await self._map(gw, key, current)
        self._failed = {k: v for k, v in self._failed.items() if k in wanted}
        if changed:
            self.host.notify_addresses_changed()

    async def _map(self, gw: Gateway, key: _Key, current: PortMapping | None) -> bool:
        cfg = self.config
        protocol, port = key
        want = current.external_port if current is not None else port
        try:
            result = await gw.add(protocol, port, want, cfg.lease)
            ext_ip = result.external_ip or await gw.external_ip()
        except (PortMapError, OSError) as exc:
            log.warning("port mapping: %s port %d: %s", protocol, port, exc)
            self._failed[key] = time.monotonic() + cfg.retry_interval
            if current is not None and time.monotonic() > current.renew_at + (
                cfg.lease * (1 - cfg.renew_fraction)
            ):
                self._mappings.pop(key, None)  # the lease has run out: it is gone
                self._emit(current, mapped=False)
                return True
            return False
        self._failed.pop(key, None)
        lease = result.lifetime or cfg.lease  # 0: permanent (UPnP fallback); renew anyway
        mapping = PortMapping(
            protocol,
            port,
            result.external_port,
            ext_ip,
            time.monotonic() + max(1.0, lease * cfg.renew_fraction),
            gw.kind,
        )
        self._mappings[key] = mapping
        same = current is not None and (current.external_port, current.external_ip) == (
            mapping.external_port,
            mapping.external_ip,
        )
        if same:
            log.debug("port mapping renewed: %s %d -> %s", protocol, port, result.external_port)
            return False
        if current is not None:
            self._emit(current, mapped=False)
        log.info(
            "port mapping: %s %d -> %s:%d via %s",
            protocol,
            port,
            ext_ip,
            result.external_port,
            gw.kind,
        )
        self._emit(mapping, mapped=True)
        return True

    async def _remove(self, key: _Key) -> bool:
        mapping = self._mappings.pop(key, None)
        if mapping is None:
            return False
        self._emit(mapping, mapped=False)
        if self.gateway is not None:
            try:
                await self.gateway.delete(
                    mapping.protocol, mapping.internal_port, mapping.external_port
                )
            except (PortMapError, OSError) as exc:
                log.info("port mapping: removing %s %d: %s", *key, exc)
        return True

    def _emit(self, mapping: PortMapping, *, mapped: bool) -> None:
        self.host.events.emit(
            PortMappingChanged(
                self.host.peer_id,
                mapping.protocol,
                mapping.internal_port,
                mapping.external_port,
                mapping.external_ip,
                self.addrs_of(mapping),
                mapped,
                mapping.via,
            )
        )

    async def close(self) -> None:
        """Stops renewing and removes every mapping from the gateway (bounded by
        ``close_timeout``)."""
        if self._closed:
            return
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._mappings:
            try:
                await asyncio.wait_for(self._remove_all(), self.config.close_timeout)
            except asyncio.TimeoutError:
                log.info("port mapping: the gateway did not confirm every removal in time")
            self.host.notify_addresses_changed()
        if self.gateway is not None:
            self.gateway.close()
        await super().close()

    async def _remove_all(self) -> None:
        for key in list(self._mappings):
            await self._remove(key)


def config_of(value: bool | PortMapConfig | None) -> PortMapConfig | None:
    """``HostConfig.port_mapping`` as a config (None: off)."""
    if value is None or value is False:
        return None
    if value is True:
        return PortMapConfig()
    return value
