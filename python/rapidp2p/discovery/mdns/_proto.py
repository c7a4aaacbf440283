"""mDNS peer discovery (libp2p/specs discovery/mdns.md) in sans-IO form: the query, our
response, and what a received packet tells us. No sockets, no clock.

DNS packing and parsing come from ``dnslib`` (pure Python, no threads, no sockets of its own,
so it fits a sans-IO core driven by asyncio; ``zeroconf`` owns its sockets and threads and
would fight the host's event loop).

A response carries, as go-libp2p's (zeroconf) and js-libp2p's do: the answer
``_p2p._udp.local PTR <instance>._p2p._udp.local`` and the additional records SRV (port and
host name), TXT (one ``dnsaddr=<multiaddr>/p2p/<id>`` string per address) and A/AAAA for the
host name (go-libp2p's browser drops services that have no address record). Readers look for
TXT records in answers and additionals alike, since rust-libp2p puts everything in answers.
"""

from __future__ import annotations

import ipaddress
import secrets
import string
from dataclasses import dataclass

from dnslib import AAAA, PTR, QTYPE, RR, SRV, TXT, A, DNSHeader, DNSQuestion, DNSRecord

from rapidp2p.exceptions import DecodeError, MultiaddrError, PeerIdError
from rapidp2p.peer import Multiaddr, PeerId, PeerInfo

__all__ = [
    "MAX_PACKET_SIZE",
    "MDNS_PORT",
    "SERVICE_NAME",
    "MdnsCore",
    "MdnsError",
    "random_instance_name",
]

SERVICE_NAME = "_p2p._udp.local"
MDNS_PORT = 5353
MDNS_GROUP_V4 = "224.0.0.251"
MDNS_GROUP_V6 = "ff02::fb"
DNSADDR_PREFIX = "dnsaddr="
DEFAULT_TTL = 120
"""Record TTL in seconds (RFC 6762's recommendation for records with host names)."""
MAX_PACKET_SIZE = 9000
"""Biggest datagram parsed or sent (RFC 6762 section 17)."""
MAX_RESPONSE_SIZE = 1400
"""Our responses stay within one Ethernet frame: TXT strings past it are left out (go-libp2p
filters its addresses for the same reason)."""
MAX_PEERS_PER_PACKET = 32
MAX_ADDRS_PER_PEER = 32
_ALPHABET = string.ascii_lowercase + string.digits


class MdnsError(DecodeError):
    """A datagram that is not a DNS message."""


def random_instance_name() -> str:
    """A random 32-63 character name (the spec's rule: it must not leak the peer ID)."""
    length = 32 + secrets.randbelow(32)
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _suitable(addr: Multiaddr) -> bool:
    """go-libp2p's rule: IP (or ``.local`` DNS) addresses, no relay or browser transports."""
    items = addr.items()
    if not items:
        return False
    first, value = items[0]
    if first in ("dns", "dns4", "dns6", "dnsaddr"):
        if not (value or "").lower().endswith(".local"):
            return False
    elif first not in ("ip4", "ip6"):
        return False
    bad = {"p2p-circuit", "webtransport", "webrtc", "webrtc-direct", "ws", "wss"}
    return not any(name in bad for name, _ in items)


@dataclass
class Received:
    """What one datagram asked or told: whether it queried our service, and the peers found."""

    is_query: bool
    peers: list[PeerInfo]


class MdnsCore:
    """Builds our query and response; reads datagrams into peers found."""

    def __init__(
        self,
        peer_id: PeerId,
        *,
        instance: str | None = None,
        ttl: int = DEFAULT_TTL,
        service: str = SERVICE_NAME,
    ) -> None:
        self.peer_id = peer_id
        self.instance = instance or random_instance_name()
        self.ttl = ttl
        self.service = service.rstrip(".")
        self.addrs: list[Multiaddr] = []

    @property
    def instance_fqdn(self) -> str:
        return f"{self.instance}.{self.service}"

    @property
    def host_name(self) -> str:
        return f"{self.instance}.local"

    def build_query(self) -> bytes:
        """``_p2p._udp.local PTR?`` (id 0, no recursion, as RFC 6762 wants)."""
        q = DNSRecord(DNSHeader(id=0, qr=0, rd=0), q=DNSQuestion(self.service, QTYPE.PTR))
        return bytes(q.pack())

    def build_response(self, addrs: list[Multiaddr] | None = None) -> bytes | None:
        """Our announcement for ``addrs`` (default :attr:`addrs`), None when nothing is
        suitable to announce. TXT strings are dropped from the end to fit
        :data:`MAX_RESPONSE_SIZE`."""
        suitable = [a for a in (addrs if addrs is not None else self.addrs) if _suitable(a)]
        if not suitable:
            return None
        txts = [f"{DNSADDR_PREFIX}{a}/p2p/{self.peer_id}" for a in suitable]
        txts = [t for t in txts if len(t.encode()) <= 255]
        ip4 = ip6 = None
        port = 4001
        for a in suitable:
            items = dict(a.items())
            if ip4 is None and "ip4" in items:
                ip4 = items["ip4"]
                port = int(items.get("tcp") or items.get("udp") or port)
            if ip6 is None and "ip6" in items:
                ip6 = items["ip6"]
        while txts:
            packet = self._pack(txts, ip4, ip6, port)
            if len(packet) <= MAX_RESPONSE_SIZE:
                return packet
            txts.pop()
        return None

    def _pack(self, txts: list[str], ip4: str | None, ip6: str | None, port: int) -> bytes:
        resp = DNSRecord(DNSHeader(id=0, qr=1, aa=1, rd=0))
        fqdn = self.instance_fqdn
        resp.add_answer(RR(self.service, QTYPE.PTR, rdata=PTR(fqdn), ttl=self.ttl))
        resp.add_ar(RR(fqdn, QTYPE.SRV, rdata=SRV(0, 0, port, self.host_name), ttl=self.ttl))
        resp.add_ar(RR(fqdn, QTYPE.TXT, rdata=TXT(txts), ttl=self.ttl))
        if ip4 is not None:
            resp.add_ar(RR(self.host_name, QTYPE.A, rdata=A(ip4), ttl=self.ttl))
        if ip6 is not None:
            resp.add_ar(RR(self.host_name, QTYPE.AAAA, rdata=AAAA(ip6), ttl=self.ttl))
        return bytes(resp.pack())

    def parse(self, data: bytes) -> Received:
        """Reads one datagram. Raises MdnsError for anything that is not a DNS message; a
        valid message about other services gives an empty result."""
        if len(data) > MAX_PACKET_SIZE:
            raise MdnsError(f"datagram of {len(data)} bytes over {MAX_PACKET_SIZE}")
        try:
            msg = DNSRecord.parse(data)
        except Exception as exc:  # dnslib raises several types (DNSError, BufferError, ...)
            raise MdnsError(f"not a DNS message: {exc}") from exc
        service = self.service.lower()
        if not msg.header.qr:
            asks = any(
                str(q.qname).rstrip(".").lower() == service and q.qtype in (QTYPE.PTR, QTYPE.ANY)
                for q in msg.questions
            )
            return Received(asks, [])
        records = list(msg.rr) + list(msg.ar)
        instances = {
            str(rr.rdata.label).rstrip(".").lower()
            for rr in msg.rr
            if rr.rtype == QTYPE.PTR and str(rr.rname).rstrip(".").lower() == service
        }
        if not instances:
            return Received(False, [])
        found: dict[PeerId, list[Multiaddr]] = {}
        for rr in records:
            if rr.rtype != QTYPE.TXT or str(rr.rname).rstrip(".").lower() not in instances:
                continue
            for raw in rr.rdata.data:
                if not raw.startswith(DNSADDR_PREFIX.encode()):
                    continue
                info = _peer_of(raw[len(DNSADDR_PREFIX) :])
                if info is None or info[0] == self.peer_id:
                    continue
                pid, addr = info
                if pid not in found:
                    if len(found) >= MAX_PEERS_PER_PACKET:
                        continue
                    found[pid] = []
                addrs = found[pid]
                if addr not in addrs and len(addrs) < MAX_ADDRS_PER_PEER:
                    addrs.append(addr)
        return Received(False, [PeerInfo(p, a) for p, a in found.items() if a])


def _peer_of(raw: bytes) -> tuple[PeerId, Multiaddr] | None:
    try:
        addr = Multiaddr(raw.decode())
        rest, pid = addr.split_peer_id()
    except (UnicodeDecodeError, MultiaddrError, PeerIdError, ValueError):
        return None
    if pid is None or rest is None:
        return None
    return pid, rest


def is_link_local_v6(addr: str) -> bool:
    try:
        return ipaddress.IPv6Address(addr).is_link_local
    except ValueError:
        return False
