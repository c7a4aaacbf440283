"""Port mapping drivers against fake gateways on loopback, and the PortMapper service on a
real host with an in-memory gateway (mapping, advertised address, event, renewal, removal on
close). The real gateway (miniupnpd) is in tests/nat/test_portmap_netns.py."""

from __future__ import annotations

import asyncio
import struct
from typing import Any, cast

import pytest

from rapidp2p import Host, HostConfig
from rapidp2p.host.events import LocalAddressesChanged
from rapidp2p.nat import (
    GatewayReplyError,
    MappingRefused,
    PortMapConfig,
    PortMapError,
    PortMapper,
    PortMappingChanged,
)
from rapidp2p.nat._pmp import MapResult
from rapidp2p.nat.gateway import PmpGateway, UpnpGateway, discover_upnp
from rapidp2p.nat.service import mappable
from rapidp2p.peer import Multiaddr

pytestmark = pytest.mark.timeout(60)


# ---- PCP / NAT-PMP against a fake gateway ----------------------------------------------------


class FakePmp(asyncio.DatagramProtocol):
    """Answers with ``script(request) -> list of replies``."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.requests.append(data)
        assert self.transport is not None
        for reply in self.script(data):
            self.transport.sendto(reply, addr)


async def _fake_pmp(script: Any) -> tuple[FakePmp, int, asyncio.DatagramTransport]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: FakePmp(script), local_addr=("127.0.0.1", 0)
    )
    return proto, transport.get_extra_info("sockname")[1], transport


def _nat_pmp_only(req: bytes) -> list[bytes]:
    if req[0] == 2:  # PCP: "unsupported version" in NAT-PMP's format (RFC 6887 §9)
        return [struct.pack("!BBHI", 0, 0x80 | req[1], 1, 0)]
    if req[1] == 0:
        return [struct.pack("!BBHI4s", 0, 128, 0, 5, bytes([11, 0, 0, 9]))]
    _v, op, _r, internal, external, life = struct.unpack("!BBHHHI", req)
    return [struct.pack("!BBHIHHI", 0, 128 + op, 0, 5, internal, external or 0, life)]


async def test_pcp_falls_back_to_nat_pmp_and_maps() -> None:
    fake, port, transport = await _fake_pmp(_nat_pmp_only)
    gw = await PmpGateway.open("127.0.0.1", port=port)
    try:
        await gw.probe()
        assert gw.kind == "nat-pmp"
        assert await gw.external_ip() == "11.0.0.9"
        res = await gw.add("tcp", 4001, 4001, 3600)
        assert (res.external_port, res.lifetime) == (4001, 3600)
        await gw.delete("tcp", 4001, 4001)
        assert fake.requests[-1] == struct.pack("!BBHHHI", 0, 2, 0, 4001, 0, 0)
    finally:
        gw.close()
        transport.close()


async def test_pcp_gateway_maps_with_pcp_and_learns_the_external_ip() -> None:
    def pcp(req: bytes) -> list[bytes]:
        if req[1] == 0:  # ANNOUNCE
            return [struct.pack("!BBxBII", 2, 0x80, 0, 0, 1) + bytes(12)]
        lifetime = struct.unpack_from("!I", req, 4)[0]
        nonce, proto, internal = req[24:36], req[36], struct.unpack_from("!H", req, 40)[0]
        header = struct.pack("!BBxBII", 2, 0x81, 0, lifetime, 1) + bytes(12)
        ip = bytes(10) + b"\xff\xff" + bytes([11, 0, 0, 7])
        body = nonce + struct.pack("!B3xHH", proto, internal, 6000 if lifetime else 0) + ip
        return [header + body]

    fake, port, transport = await _fake_pmp(pcp)
    gw = await PmpGateway.open("127.0.0.1", port=port)
    try:
        await gw.probe()
        assert gw.kind == "pcp"
        res = await gw.add("udp", 4001, 4001, 120)
        assert (res.external_port, res.external_ip) == (6000, "11.0.0.7")
        assert await gw.external_ip() == "11.0.0.7"
        renewed = await gw.add("udp", 4001, 6000, 120)  # same nonce on renewal
        assert fake.requests[-1][24:36] == fake.requests[-2][24:36]
        assert renewed.external_port == 6000
        await gw.delete("udp", 4001, 6000)
        assert struct.unpack_from("!I", fake.requests[-1], 4)[0] == 0
    finally:
        gw.close()
        transport.close()


async def test_malformed_datagrams_are_dropped_and_a_valid_reply_still_counts() -> None:
    good = _nat_pmp_only

    def noisy(req: bytes) -> list[bytes]:
        return [b"", b"\x00" * 2000, b"\x07garbage", struct.pack("!BBHI", 0, 200, 0, 0), *good(req)]

    _fake, port, transport = await _fake_pmp(noisy)
    gw = await PmpGateway.open("127.0.0.1", port=port)
    try:
        gw.kind = "nat-pmp"
        assert (await gw.add("tcp", 4001, 4001, 60)).external_port == 4001
    finally:
        gw.close()
        transport.close()


async def test_only_garbage_or_silence_is_a_port_map_error() -> None:
    _fake, port, transport = await _fake_pmp(lambda req: [b"\x00\x80"])
    gw = await PmpGateway.open("127.0.0.1", port=port, tries=2)
    try:
        gw.kind = "nat-pmp"
        with pytest.raises(PortMapError) as info:
            await gw.external_ip()
        assert not isinstance(info.value, MappingRefused)
    finally:
        gw.close()
        transport.close()


async def test_a_refusal_is_final() -> None:
    def refuse(req: bytes) -> list[bytes]:
        return [struct.pack("!BBHIHHI", 0, 128 + req[1], 2, 0, 4001, 0, 0)]

    fake, port, transport = await _fake_pmp(refuse)
    gw = await PmpGateway.open("127.0.0.1", port=port)
    try:
        gw.kind = "nat-pmp"
        with pytest.raises(MappingRefused):
            await gw.add("tcp", 4001, 4001, 60)
        assert len(fake.requests) == 1
    finally:
        gw.close()
        transport.close()


# ---- UPnP against a fake HTTP gateway --------------------------------------------------------

ST1 = "urn:schemas-upnp-org:service:WANIPConnection:1"


def _http(body: bytes, status: str = "200 OK") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _soap_ok(action: str, args: dict[str, str]) -> bytes:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in args.items())
    return _http(
        (
            '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
            f'<s:Body><u:{action}Response xmlns:u="{ST1}">{inner}</u:{action}Response>'
            "</s:Body></s:Envelope>"
        ).encode()
    )


def _soap_fault(code: int) -> bytes:
    return _http(
        (
            '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
            "<s:Body><s:Fault><faultcode>s:Client</faultcode><detail><UPnPError>"
            f"<errorCode>{code}</errorCode><errorDescription>x</errorDescription>"
            "</UPnPError></detail></s:Fault></s:Body></s:Envelope>"
        ).encode(),
        "500 Internal Server Error",
    )


class FakeIgd:
    """A WANIPConnection:1 control point over HTTP on loopback: ``taken`` ports are mapped to
    another host (GetSpecificPortMappingEntry shows it), ``refused`` ones only fail
    AddPortMapping with 718."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.taken: set[int] = set()
        self.refused: set[int] = set()
        self.raw_reply: bytes | None = None
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/ctl"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
        from rapidp2p.nat._upnp import parse_xml

        call = parse_xml(body).iter("Body")[0].children[0]
        args = {c.name: c.text for c in call.children}
        self.calls.append((call.name, args))
        if self.raw_reply is not None:
            writer.write(self.raw_reply)
        elif call.name == "AddPortMapping" and int(args["NewExternalPort"]) in self.refused:
            writer.write(_soap_fault(718))
        elif call.name == "GetSpecificPortMappingEntry":
            if int(args["NewExternalPort"]) in self.taken:
                entry = {"NewInternalPort": "9", "NewInternalClient": "192.168.1.77"}
                writer.write(_soap_ok(call.name, entry))
            else:
                writer.write(_soap_fault(714))  # NoSuchEntryInArray
        elif call.name == "GetExternalIPAddress":
            writer.write(_soap_ok(call.name, {"NewExternalIPAddress": "11.0.0.5"}))
        else:
            writer.write(_soap_ok(call.name, {}))
        await writer.drain()
        writer.close()


async def test_upnp_add_conflict_retries_another_port_and_deletes() -> None:
    igd = FakeIgd()
    url = await igd.start()
    from rapidp2p.nat._upnp import WanService

    gw = UpnpGateway(WanService(ST1, url), "192.168.1.2", timeout=5)
    igd.refused.add(4001)  # AddPortMapping says 718
    res = await gw.add("tcp", 4001, 0, 3600)
    assert res.external_port != 4001 and res.internal_port == 4001
    adds = [a for n, a in igd.calls if n == "AddPortMapping"]
    assert adds[0]["NewExternalPort"] == "4001"
    assert adds[0]["NewInternalClient"] == "192.168.1.2"
    assert adds[0]["NewProtocol"] == "TCP" and adds[0]["NewLeaseDuration"] == "3600"
    # Mapped to another host (the entry says so): not even asked, another port is taken.
    igd.taken.add(4002)
    igd.calls.clear()
    res2 = await gw.add("udp", 4002, 4002, 3600)
    assert res2.external_port != 4002
    assert ("GetSpecificPortMappingEntry", "4002") in [
        (n, a["NewExternalPort"]) for n, a in igd.calls
    ]
    assert "4002" not in [a["NewExternalPort"] for n, a in igd.calls if n == "AddPortMapping"]
    assert await gw.external_ip() == "11.0.0.5"
    await gw.delete("tcp", 4001, res.external_port)
    assert igd.calls[-1] == (
        "DeletePortMapping",
        {"NewRemoteHost": "", "NewExternalPort": str(res.external_port), "NewProtocol": "TCP"},
    )
    assert igd.server is not None
    igd.server.close()


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * (70 * 1024),  # over the cap: read stops there
        b"not http at all",
        _http(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"),
        _http(b"<s:Envelope/>"),
    ],
)
async def test_upnp_bad_replies_raise_typed_errors(raw: bytes) -> None:
    igd = FakeIgd()
    url = await igd.start()
    from rapidp2p.nat._upnp import WanService

    gw = UpnpGateway(WanService(ST1, url), "192.168.1.2", timeout=5)
    igd.raw_reply = raw
    with pytest.raises(GatewayReplyError):
        await gw.external_ip()
    assert igd.server is not None
    igd.server.close()


async def test_upnp_discovery_without_a_gateway_is_no_gateway_error() -> None:
    from rapidp2p.nat import NoGatewayError

    try:
        await discover_upnp(0.5)
    except NoGatewayError:
        return
    except OSError as exc:  # no multicast route on this machine: also "no gateway"
        pytest.skip(f"no multicast route here: {exc}")
    pytest.skip("a UPnP gateway answered on this network")


# ---- the service, on a host, with an in-memory gateway ---------------------------------------


class MemoryGateway:
    kind = "upnp"
    local_ip = "192.168.1.2"

    def __init__(self, external_ip: str = "11.0.0.5") -> None:
        self.ip = external_ip
        self.table: dict[tuple[str, int], int] = {}
        self.adds: list[tuple[str, int, int, int]] = []
        self.deletes: list[tuple[str, int, int]] = []
        self.closed = False

    async def external_ip(self) -> str:
        return self.ip

    async def add(self, protocol: str, internal: int, external: int, lease: int) -> MapResult:
        self.adds.append((protocol, internal, external, lease))
        if self.table.get((protocol, external)) == internal:
            ext = external  # a renewal keeps its port
        else:
            ext = external + 1000 if external < 60000 else external  # another port than asked
        self.table[(protocol, ext)] = internal
        return MapResult(protocol, internal, ext, lease)

    async def delete(self, protocol: str, internal: int, external: int) -> None:
        self.deletes.append((protocol, internal, external))
        self.table.pop((protocol, external), None)

    def close(self) -> None:
        self.closed = True


def test_which_listen_addresses_are_mapped() -> None:
    assert mappable(Multiaddr("/ip4/0.0.0.0/tcp/4001")) == ("tcp", 4001, "")
    assert mappable(Multiaddr("/ip4/192.168.1.2/udp/4001/quic-v1")) == ("udp", 4001, "/quic-v1")
    assert mappable(Multiaddr("/ip4/10.0.0.2/tcp/4001/ws")) == ("tcp", 4001, "/ws")
    for no in ["/ip4/127.0.0.1/tcp/4001", "/ip4/11.0.0.2/tcp/4001", "/ip6/::/tcp/4001"]:
        assert mappable(Multiaddr(no)) is None, no


async def _wait_for(sub: Any, pred: Any) -> Any:
    while True:
        ev = await sub.get(timeout=20)
        if pred(ev):
            return ev


async def test_portmapper_maps_advertises_renews_and_removes_on_close() -> None:
    gw = MemoryGateway()
    cfg = PortMapConfig(lease=2, renew_fraction=0.5)
    host = Host(config=HostConfig(port_mapping=cfg))
    await host.start()
    mapper = host.services.find(PortMapper)
    assert mapper is not None
    mapper.gateway = gw  # skip discovery: the in-memory gateway answers
    with host.events.subscribe(PortMappingChanged, LocalAddressesChanged) as sub:
        await host.listen("/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1")
        tcp_port = int(str(host.listen_addrs[0]).split("/")[4])
        udp_port = int(str(host.listen_addrs[1]).split("/")[4])
        seen = {}
        while len(seen) < 2:
            ev = await _wait_for(sub, lambda e: isinstance(e, PortMappingChanged))
            seen[ev.protocol] = ev
        assert seen["tcp"].mapped and seen["tcp"].via == "upnp"
        tcp_addr = Multiaddr(f"/ip4/11.0.0.5/tcp/{tcp_port + 1000}")
        quic_addr = Multiaddr(f"/ip4/11.0.0.5/udp/{udp_port + 1000}/quic-v1")
        assert seen["tcp"].addrs == (tcp_addr,)
        assert seen["udp"].addrs == (quic_addr,)
        assert tcp_addr in host.addrs and quic_addr in host.addrs
        # Renewal: the same internal port asked again at the external port it got.
        while sum(1 for a in gw.adds if a[:2] == ("tcp", tcp_port)) < 2:
            await asyncio.sleep(0.1)
        renewal = [a for a in gw.adds if a[:2] == ("tcp", tcp_port)][1]
        assert renewal == ("tcp", tcp_port, tcp_port + 1000, 2)
        await host.close()
        assert ("tcp", tcp_port, tcp_port + 1000) in gw.deletes
        assert ("udp", udp_port, udp_port + 1000) in gw.deletes
        assert gw.table == {} and gw.closed
        assert tcp_addr not in host.addrs
        gone = [e async for e in sub if isinstance(e, PortMappingChanged) and not e.mapped]
    assert {(e.protocol, e.addrs) for e in gone} == {("tcp", (tcp_addr,)), ("udp", (quic_addr,))}


async def test_private_external_ip_is_not_advertised_by_default() -> None:
    gw = MemoryGateway("100.64.0.9")  # carrier-grade NAT upstream: not dialable
    host = Host(config=HostConfig(port_mapping=PortMapConfig()))
    await host.start()
    mapper = host.services.find(PortMapper)
    assert mapper is not None
    mapper.gateway = gw
    try:
        with host.events.subscribe(PortMappingChanged) as sub:
            await host.listen("/ip4/0.0.0.0/tcp/0")
            ev = await sub.get(timeout=20)
        assert isinstance(ev, PortMappingChanged) and ev.mapped and ev.addrs == ()
        assert not any("100.64.0.9" in str(a) for a in host.addrs)
    finally:
        await host.close()


async def test_port_mapping_is_off_by_default() -> None:
    async with Host() as host:
        assert host.services.find(PortMapper) is None


async def test_a_failing_renewal_waits_for_the_retry_interval() -> None:
    """A renewal that failed is retried after ``retry_interval``, not at every wake-up."""
    from rapidp2p.nat.service import PortMapping

    host = Host()
    mapper = PortMapper(host, PortMapConfig(retry_interval=60))
    assert mapper._next_delay(0.0) is None  # nothing mapped, nothing failed
    mapper._mappings[("tcp", 4001)] = PortMapping("tcp", 4001, 4001, "11.0.0.5", 100.0, "upnp")
    assert mapper._next_delay(40.0) == 60.0  # the renewal is due at 100
    mapper._failed[("tcp", 4001)] = 160.0  # the renewal at 100 failed
    assert mapper._next_delay(120.0) == 40.0
    mapper._failed[("udp", 4001)] = 130.0  # a first mapping that failed
    assert mapper._next_delay(120.0) == 10.0
    await host.close()


async def test_no_gateway_leaves_the_host_working() -> None:
    """Nobody answers on port 5351: discovery fails (retried later), nothing is mapped or
    advertised, and the host serves as usual."""
    cfg = PortMapConfig(methods=("natpmp",), gateway="127.0.0.1", retry_interval=3600)
    config = HostConfig(port_mapping=cfg)
    host = await Host.create(listen=["/ip4/0.0.0.0/tcp/0"], config=config)
    other = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    try:
        mapper = host.services.find(PortMapper)
        assert mapper is not None
        await asyncio.wait_for(mapper.discovered.wait(), 30)
        assert mapper.gateway is None and mapper.mappings == []
        assert mapper.external_addrs() == []
        port = str(host.listen_addrs[0]).split("/")[4]
        rtts = await other.ping(f"/ip4/127.0.0.1/tcp/{port}/p2p/{host.peer_id}")
        assert len(rtts) == 1
    finally:
        await other.close()
        await host.close()
