"""Talking to a gateway: UPnP IGD (SSDP + SOAP over HTTP) and PCP / NAT-PMP (UDP 5351).

asyncio drivers over the sans-IO codecs of :mod:`rapidp2p.nat._upnp` and
:mod:`rapidp2p.nat._pmp`. Each driver is a :class:`Gateway`: ``add`` a mapping (or renew it:
same call, same external port), ``delete`` it, learn the ``external_ip``. Every reply read is
size-capped and every request has a timeout; a malformed reply raises
:class:`~rapidp2p.nat.errors.GatewayReplyError` and touches nothing else.

Discovery (:func:`discover`) runs the UPnP search and the PCP/NAT-PMP probe of the default
gateway at once, as go-libp2p's go-nat does, and keeps the first kind in the configured order
that answered. PCP is tried before NAT-PMP on the same port (RFC 6887 §9: a NAT-PMP-only
gateway answers a PCP request with "unsupported version", and we fall back).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import random
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from rapidp2p.nat import _pmp, _upnp
from rapidp2p.nat._pmp import MapResult
from rapidp2p.nat.errors import GatewayReplyError, MappingRefused, NoGatewayError, PortMapError

__all__ = [
    "Gateway",
    "PmpGateway",
    "UpnpGateway",
    "default_gateway",
    "discover",
    "discover_pmp",
    "discover_upnp",
]

log = logging.getLogger("rapidp2p.nat")

T = TypeVar("T")

#: UPnP error codes (IGD WANIPConnection).
UPNP_CONFLICT = 718
UPNP_ONLY_PERMANENT = 725
UPNP_NO_SUCH_ENTRY = 714


class Gateway(Protocol):
    """What the port mapper needs from a gateway."""

    #: ``"upnp"``, ``"pcp"`` or ``"nat-pmp"``.
    kind: str
    #: Our address on the LAN as the gateway sees it (the mapping's internal client).
    local_ip: str

    async def external_ip(self) -> str: ...

    async def add(
        self, protocol: str, internal_port: int, external_port: int, lease: int
    ) -> MapResult: ...

    async def delete(self, protocol: str, internal_port: int, external_port: int) -> None: ...

    def close(self) -> None: ...


def default_gateway() -> str | None:
    """The IPv4 default route's gateway (Linux ``/proc/net/route``), else None."""
    try:
        with open("/proc/net/route", encoding="ascii") as f:
            lines = f.read(64 * 1024).splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 3 or fields[1] != "00000000":
            continue
        try:
            raw = int(fields[2], 16).to_bytes(4, "little")
        except ValueError:
            continue
        ip = ipaddress.IPv4Address(raw)
        if not ip.is_unspecified:
            return str(ip)
    return None


# ---- UDP ----------------------------------------------------------------------------------


class Datagrams(asyncio.DatagramProtocol):
    """Received datagrams, queued (bounded; excess dropped)."""

    def __init__(self, limit: int = 64) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue(limit)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.queue.full():
            self.queue.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable and such
        log.debug("gateway socket: %s", exc)


# ---- PCP / NAT-PMP ----------------------------------------------------------------------


class PmpGateway:
    """A PCP or NAT-PMP gateway at ``gateway_ip``:5351 (one request in flight at a time;
    retransmitted at 250 ms, doubling, RFC 6886 §3.1, ``tries`` times)."""

    def __init__(
        self,
        gateway_ip: str,
        proto: Datagrams,
        transport: asyncio.DatagramTransport,
        *,
        kind: str,
        tries: int = 4,
    ) -> None:
        self.gateway_ip = gateway_ip
        self.kind = kind
        self._proto = proto
        self._transport = transport
        self._tries = tries
        self._lock = asyncio.Lock()
        self._nonces: dict[tuple[str, int], bytes] = {}
        self._external: str | None = None
        sockname = transport.get_extra_info("sockname")
        self.local_ip: str = sockname[0] if sockname else "0.0.0.0"

    @classmethod
    async def open(
        cls, gateway_ip: str, *, port: int = _pmp.PMP_PORT, tries: int = 4
    ) -> PmpGateway:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            Datagrams, remote_addr=(gateway_ip, port)
        )
        return cls(gateway_ip, proto, transport, kind="pcp", tries=tries)

    def close(self) -> None:
        self._transport.close()

    async def _request(self, data: bytes, decode: Callable[[bytes], T]) -> T:
        """Sends ``data`` until a reply decodes (a malformed one is dropped and waited past;
        a refusal ends it)."""
        async with self._lock:
            q = self._proto.queue
            while not q.empty():
                q.get_nowait()
            wait = 0.25
            last: Exception | None = None
            loop = asyncio.get_running_loop()
            for _ in range(self._tries):
                self._transport.sendto(data)
                deadline = loop.time() + wait
                while (left := deadline - loop.time()) > 0:
                    try:
                        reply, _addr = await asyncio.wait_for(q.get(), left)
                    except asyncio.TimeoutError:
                        break
                    if len(reply) > _pmp.MAX_REPLY:
                        last = GatewayReplyError(f"reply of {len(reply)} bytes dropped")
                        continue
                    try:
                        return decode(reply)
                    except GatewayReplyError as exc:
                        log.debug("%s: dropped a reply: %s", self.kind, exc)
                        last = exc
                wait *= 2
            raise PortMapError(
                f"no valid {self.kind} reply from {self.gateway_ip}"
                + (f" (last: {last})" if last else "")
            )

    async def probe(self) -> None:
        """Finds out whether the gateway speaks PCP, else NAT-PMP (sets :attr:`kind`)."""
        try:
            await self._request(_pmp.encode_pcp_announce(self.local_ip), _pmp.decode_pcp_announce)
            self.kind = "pcp"
            return
        except MappingRefused as exc:
            if exc.code != _pmp.PCP_UNSUPP_VERSION:
                self.kind = "pcp"  # it speaks PCP, even if it dislikes ANNOUNCE
                return
        except PortMapError:
            pass
        self.kind = "nat-pmp"
        self._external = await self._request(_pmp.encode_pmp_external(), _pmp.decode_pmp_external)

    async def external_ip(self) -> str:
        if self.kind == "nat-pmp" or self._external is None:
            if self.kind == "pcp" and self._external is None:
                raise PortMapError("PCP tells the external address with a mapping only")
            self._external = await self._request(
                _pmp.encode_pmp_external(), _pmp.decode_pmp_external
            )
        return self._external

    async def add(
        self, protocol: str, internal_port: int, external_port: int, lease: int
    ) -> MapResult:
        if self.kind == "pcp":
            try:
                return await self._pcp_map(protocol, internal_port, external_port, lease)
            except MappingRefused as exc:
                if exc.code != _pmp.PCP_UNSUPP_VERSION:
                    raise
                self.kind = "nat-pmp"  # a downgraded gateway: RFC 6887 §9
        return await self._request(
            _pmp.encode_pmp_map(protocol, internal_port, external_port, lease),
            lambda d: _pmp.decode_pmp_map(d, protocol, internal_port),
        )

    async def _pcp_map(
        self, protocol: str, internal_port: int, external_port: int, lease: int
    ) -> MapResult:
        key = (protocol, internal_port)
        nonce = self._nonces.get(key) or os.urandom(12)
        self._nonces[key] = nonce
        result = await self._request(
            _pmp.encode_pcp_map(
                nonce, protocol, internal_port, self.local_ip, lease, external_port=external_port
            ),
            lambda d: _pmp.decode_pcp_map(d, nonce, protocol, internal_port),
        )
        if result.external_ip is not None:
            self._external = result.external_ip
        return result

    async def delete(self, protocol: str, internal_port: int, external_port: int) -> None:
        if self.kind == "pcp":
            await self._pcp_map(protocol, internal_port, 0, 0)
            self._nonces.pop((protocol, internal_port), None)
            return
        await self._request(
            _pmp.encode_pmp_map(protocol, internal_port, 0, 0),
            lambda d: _pmp.decode_pmp_map(d, protocol, internal_port),
        )


async def discover_pmp(gateway_ip: str | None = None, *, tries: int = 3) -> PmpGateway:
    """The PCP (else NAT-PMP) gateway at ``gateway_ip`` (default: the default route's)."""
    ip = gateway_ip or default_gateway()
    if ip is None:
        raise NoGatewayError("no default gateway to ask for PCP / NAT-PMP")
    gw = await PmpGateway.open(ip, tries=tries)
    try:
        await gw.probe()
    except BaseException:
        gw.close()
        raise
    return gw


# ---- UPnP IGD -----------------------------------------------------------------------------


async def http_request(
    url: str,
    method: str = "GET",
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
    cap: int = _upnp.MAX_HTTP_RESPONSE,
) -> tuple[_upnp.HttpResponse, str]:
    """One HTTP/1.1 exchange with a gateway (``http://IP:port`` only); the response and our
    local IP on that connection. The response is read to EOF, at most ``cap`` bytes."""
    host, port = _upnp.check_gateway_url(url)

    async def exchange() -> tuple[_upnp.HttpResponse, str]:
        reader, writer = await asyncio.open_connection(host, port, limit=cap)
        try:
            local = writer.get_extra_info("sockname")[0]
            writer.write(_upnp.encode_http_request(method, url, body=body, headers=headers))
            await writer.drain()
            data = bytearray()
            while chunk := await reader.read(16 * 1024):
                data += chunk
                if len(data) > cap:
                    raise GatewayReplyError(f"HTTP response over {cap} bytes from {host}")
            return _upnp.parse_http_response(bytes(data)), str(local)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    try:
        return await asyncio.wait_for(exchange(), timeout)
    except asyncio.TimeoutError:
        raise PortMapError(f"{method} {url}: no answer in {timeout} s") from None
    except OSError as exc:
        raise PortMapError(f"{method} {url}: {exc}") from exc


class UpnpGateway:
    """A UPnP Internet Gateway Device's WAN connection service."""

    kind = "upnp"

    def __init__(
        self,
        service: _upnp.WanService,
        local_ip: str,
        *,
        timeout: float = 5.0,
        description: str = "rapidp2p",
    ) -> None:
        self.service = service
        self.local_ip = local_ip
        self.timeout = timeout
        self.description = description

    def close(self) -> None:
        """Nothing held open (each SOAP call is its own connection)."""

    async def call(self, action: str, args: list[tuple[str, str]]) -> dict[str, str]:
        """One SOAP action; its out-arguments (a fault raises :class:`MappingRefused`)."""
        stype = self.service.service_type
        resp, _ = await http_request(
            self.service.control_url,
            "POST",
            body=_upnp.encode_soap(stype, action, args),
            headers=_upnp.soap_headers(stype, action),
            timeout=self.timeout,
        )
        return _upnp.parse_soap_response(resp, action)

    async def external_ip(self) -> str:
        out = await self.call("GetExternalIPAddress", [])
        text = out.get("NewExternalIPAddress", "")
        try:
            return str(ipaddress.IPv4Address(text))
        except ValueError:
            raise GatewayReplyError(f"external address {text[:40]!r} is not IPv4") from None

    def _add_args(
        self, protocol: str, internal_port: int, external_port: int, lease: int
    ) -> list[tuple[str, str]]:
        return [
            ("NewRemoteHost", ""),
            ("NewExternalPort", str(external_port)),
            ("NewProtocol", protocol.upper()),
            ("NewInternalPort", str(internal_port)),
            ("NewInternalClient", self.local_ip),
            ("NewEnabled", "1"),
            ("NewPortMappingDescription", self.description),
            ("NewLeaseDuration", str(lease)),
        ]

    async def add(
        self, protocol: str, internal_port: int, external_port: int, lease: int
    ) -> MapResult:
        """AddPortMapping at ``external_port`` (the internal port when 0); when it is taken,
        at a few random ports (go-nat does the same, on IGD v1 and v2 alike; v2's
        AddAnyPortMapping is not used: miniupnpd answers it by overwriting the requested port
        when the same LAN host holds it for another program).

        A port is taken when the gateway says so (718), and also when
        GetSpecificPortMappingEntry shows it mapped elsewhere: some gateways (miniupnpd)
        let AddPortMapping overwrite another mapping of the same LAN host, which would steal
        another program's forward (and delete it at our close)."""
        want = external_port or internal_port
        candidates = [want] + [random.randint(1024, 65535) for _ in range(3)]
        last: MappingRefused | None = None
        for port in candidates:
            try:
                if await self._taken(protocol, port, internal_port):
                    raise MappingRefused(
                        f"external {protocol} port {port} is mapped elsewhere", code=UPNP_CONFLICT
                    )
                lease = await self._add_one(protocol, internal_port, port, lease)
                return MapResult(protocol, internal_port, port, lease)
            except MappingRefused as exc:
                last = exc
                if exc.code != UPNP_CONFLICT:
                    raise
        assert last is not None
        raise last

    async def _taken(self, protocol: str, port: int, internal_port: int) -> bool:
        """Whether external ``port`` is mapped to something else than our ``internal_port``
        (a gateway without GetSpecificPortMappingEntry: not known to be taken)."""
        try:
            entry = await self.get_mapping(protocol, port)
        except MappingRefused:
            return False
        if entry is None:
            return False
        return (entry.get("NewInternalClient"), entry.get("NewInternalPort")) != (
            self.local_ip,
            str(internal_port),
        )

    async def _add_one(self, protocol: str, internal_port: int, port: int, lease: int) -> int:
        try:
            await self.call("AddPortMapping", self._add_args(protocol, internal_port, port, lease))
            return lease
        except MappingRefused as exc:
            if exc.code != UPNP_ONLY_PERMANENT or lease == 0:
                raise
        # Only permanent leases: map with 0 (we still delete it on close).
        await self.call("AddPortMapping", self._add_args(protocol, internal_port, port, 0))
        return 0

    async def delete(self, protocol: str, internal_port: int, external_port: int) -> None:
        await self.call(
            "DeletePortMapping",
            [
                ("NewRemoteHost", ""),
                ("NewExternalPort", str(external_port)),
                ("NewProtocol", protocol.upper()),
            ],
        )

    async def get_mapping(self, protocol: str, external_port: int) -> dict[str, str] | None:
        """GetSpecificPortMappingEntry: the gateway's entry (None: there is none)."""
        try:
            return await self.call(
                "GetSpecificPortMappingEntry",
                [
                    ("NewRemoteHost", ""),
                    ("NewExternalPort", str(external_port)),
                    ("NewProtocol", protocol.upper()),
                ],
            )
        except MappingRefused as exc:
            if exc.code == UPNP_NO_SUCH_ENTRY:
                return None
            raise


async def discover_upnp(
    timeout: float = 3.0, *, description: str = "rapidp2p", request_timeout: float = 5.0
) -> UpnpGateway:
    """Searches the LAN (SSDP multicast) for an Internet Gateway Device and returns its best
    WAN connection service; raises :class:`NoGatewayError` when none answers."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        Datagrams, local_addr=("0.0.0.0", 0), family=2
    )
    tried: set[str] = set()
    # go-nat's rule: prefer the gateway that is our default route (anything on the LAN can
    # claim to be an IGD); another one is taken only if the default gateway stays silent.
    router = default_gateway()
    fallback: UpnpGateway | None = None
    try:
        mx = max(1, min(5, int(timeout)))

        def search() -> None:
            for st in (*_upnp.IGD_DEVICES, *_upnp.WAN_SERVICES):
                transport.sendto(_upnp.encode_msearch(st, mx), _upnp.SSDP_ADDR)

        search()
        deadline = loop.time() + timeout
        resend: float | None = loop.time() + min(1.0, timeout / 2)  # UDP: search twice
        while (left := deadline - loop.time()) > 0:
            if resend is not None:
                left = min(left, max(0.0, resend - loop.time()))
            try:
                data, _addr = await asyncio.wait_for(proto.queue.get(), left)
            except asyncio.TimeoutError:
                if resend is not None and loop.time() >= resend:
                    resend = None
                    search()
                continue
            try:
                _st, location = _upnp.parse_ssdp_response(data)
            except GatewayReplyError as exc:
                log.debug("upnp: dropped an SSDP reply: %s", exc)
                continue
            if location in tried or len(tried) >= 8:
                continue
            tried.add(location)
            try:
                resp, local_ip = await http_request(location, timeout=request_timeout)
                if resp.status != 200:
                    raise GatewayReplyError(f"description: HTTP {resp.status}")
                services = _upnp.parse_description(resp.body, location)
            except PortMapError as exc:
                log.debug("upnp: %s: %s", location, exc)
                continue
            gw = UpnpGateway(
                services[0], local_ip, timeout=request_timeout, description=description
            )
            if router is None or _upnp.check_gateway_url(location)[0] == router:
                return gw
            if fallback is None:
                fallback = gw
    finally:
        transport.close()
    if fallback is not None:
        return fallback
    raise NoGatewayError("no UPnP Internet Gateway Device answered")


async def discover(
    methods: Sequence[str] = ("upnp", "natpmp"),
    *,
    timeout: float = 3.0,
    gateway_ip: str | None = None,
    description: str = "rapidp2p",
) -> Gateway:
    """The first gateway kind of ``methods`` (``"upnp"``, ``"natpmp"``: PCP then NAT-PMP)
    that answers; both are searched at once. Raises :class:`NoGatewayError`."""
    tasks: dict[str, asyncio.Task[Any]] = {}
    if "upnp" in methods:
        tasks["upnp"] = asyncio.ensure_future(discover_upnp(timeout, description=description))
    if "natpmp" in methods:
        tasks["natpmp"] = asyncio.ensure_future(discover_pmp(gateway_ip))
    if not tasks:
        raise ValueError(f"no known discovery method in {list(methods)}")
    try:
        await asyncio.wait(list(tasks.values()))
    finally:
        for t in tasks.values():
            t.cancel()
    found: Gateway | None = None
    errors = []
    for name in methods:
        task = tasks.get(name)
        if task is None or task.cancelled():
            continue
        exc = task.exception()
        if exc is not None:
            errors.append(f"{name}: {exc}")
            continue
        gw: Gateway = task.result()
        if found is None:
            found = gw
        else:
            gw.close()
    if found is None:
        raise NoGatewayError("no gateway: " + "; ".join(errors))
    return found
