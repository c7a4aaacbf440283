"""``/dnsaddr`` resolution (multiformats/multiaddr protocols/DNSADDR.md): the TXT records of
``_dnsaddr.<domain>`` hold ``dnsaddr=<multiaddr>`` strings; entries that are themselves
``/dnsaddr`` are resolved recursively, within a depth and a total-lookup cap. A trailing
``/p2p/<id>`` on the address asked for keeps only the entries of that peer.

Queries go over UDP to the system's resolvers (``/etc/resolv.conf``) or to the ones given,
packed and parsed with ``dnslib`` (see :mod:`rapidp2p.discovery.mdns` for why that library).
An answer with the TC (truncated) bit set is asked again over TCP on the same server (RFC 7766
section 5: a truncated UDP answer is incomplete, and bootstrap lists with many entries do not
fit in 512 bytes), framed with the two-byte length prefix of RFC 1035 section 4.2.2.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Sequence
from pathlib import Path

from dnslib import QTYPE, DNSQuestion, DNSRecord

from rapidp2p.exceptions import DecodeError, Libp2pError
from rapidp2p.peer import Multiaddr, PeerId

__all__ = [
    "DnsaddrError",
    "DnsaddrResolver",
    "is_dnsaddr",
    "system_nameservers",
]

log = logging.getLogger(__name__)

MAX_DEPTH = 4
"""Nested ``/dnsaddr`` levels followed (go-libp2p's madns resolver follows more, but the
public bootstrap lists nest one level deep)."""
MAX_LOOKUPS = 32
"""TXT queries for one resolution, all levels together (rust-libp2p's cap)."""
MAX_RESULTS = 64
"""Addresses returned for one resolution."""
MAX_RESPONSE = 65535
"""Biggest answer read, over UDP or TCP (a TCP frame's two-byte length cannot say more)."""


class DnsaddrError(Libp2pError):
    """A /dnsaddr could not be resolved: no server answered, an answer was not DNS, or a cap
    was reached."""


def is_dnsaddr(addr: Multiaddr) -> bool:
    items = addr.items()
    return bool(items) and items[0][0] == "dnsaddr"


def system_nameservers(path: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    """The ``nameserver`` lines of resolv.conf (port 53)."""
    servers: list[tuple[str, int]] = []
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                servers.append((parts[1], 53))
    return servers


def _matches(msg: DNSRecord, qid: int, name: str) -> bool:
    """``msg`` answers our query ``qid`` for ``name`` (not a stray or spoofed datagram)."""
    if msg.header.id != qid or not msg.header.qr:
        return False
    return bool(msg.questions) and str(msg.questions[0].qname).rstrip(".").lower() == name


class _Query(asyncio.DatagramProtocol):
    def __init__(self, qid: int, name: str) -> None:
        self.qid = qid
        self.name = name.rstrip(".").lower()
        self.answer: asyncio.Future[DNSRecord] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if self.answer.done() or len(data) > MAX_RESPONSE:
            return
        try:
            msg = DNSRecord.parse(data)
        except Exception:
            return
        if _matches(msg, self.qid, self.name):
            self.answer.set_result(msg)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(DnsaddrError(f"DNS query failed: {exc}"))


class DnsaddrResolver:
    """Resolves ``/dnsaddr`` multiaddrs through TXT queries (``nameservers`` default to the
    system's). Caps: :data:`MAX_DEPTH`, :data:`MAX_LOOKUPS`, :data:`MAX_RESULTS`."""

    def __init__(
        self,
        nameservers: Sequence[tuple[str, int]] | None = None,
        *,
        timeout: float = 3.0,
        attempts: int = 2,
        max_depth: int = MAX_DEPTH,
        max_lookups: int = MAX_LOOKUPS,
        max_results: int = MAX_RESULTS,
    ) -> None:
        self.nameservers = list(nameservers) if nameservers is not None else system_nameservers()
        self.timeout = timeout
        self.attempts = attempts
        self.max_depth = max_depth
        self.max_lookups = max_lookups
        self.max_results = max_results

    async def txt(self, name: str) -> list[str]:
        """Every TXT string of ``name`` (empty when it has none)."""
        if not self.nameservers:
            raise DnsaddrError("no DNS server configured")
        loop = asyncio.get_running_loop()
        last: Exception | None = None
        for _ in range(self.attempts):
            for server in self.nameservers:
                qid = secrets.randbelow(1 << 16)
                query = DNSRecord(q=DNSQuestion(name, QTYPE.TXT))
                query.header.id = qid
                proto = _Query(qid, name)
                transport, _ = await loop.create_datagram_endpoint(
                    lambda proto=proto: proto,  # type: ignore[misc]
                    remote_addr=server,
                )
                try:
                    transport.sendto(bytes(query.pack()))
                    msg = await asyncio.wait_for(proto.answer, self.timeout)
                except (asyncio.TimeoutError, DnsaddrError) as exc:
                    last = exc
                    continue
                finally:
                    transport.close()
                if msg.header.tc:
                    try:
                        msg = await asyncio.wait_for(self._tcp(server, name), self.timeout)
                    except (asyncio.TimeoutError, OSError, DnsaddrError) as exc:
                        last = DnsaddrError(f"truncated UDP answer and TCP retry failed: {exc!r}")
                        continue
                if msg.header.rcode not in (0, 3):  # NOERROR, NXDOMAIN
                    last = DnsaddrError(f"DNS server answered rcode {msg.header.rcode}")
                    continue
                out: list[str] = []
                for rr in msg.rr:
                    if rr.rtype == QTYPE.TXT:
                        out.append(b"".join(rr.rdata.data).decode(errors="replace"))
                return out
        raise DnsaddrError(f"no answer for TXT {name}: {last!r}")

    async def _tcp(self, server: tuple[str, int], name: str) -> DNSRecord:
        """The TXT query for ``name`` over TCP to ``server``, one query per connection."""
        qid = secrets.randbelow(1 << 16)
        query = DNSRecord(q=DNSQuestion(name, QTYPE.TXT))
        query.header.id = qid
        packed = bytes(query.pack())
        reader, writer = await asyncio.open_connection(server[0], server[1])
        try:
            writer.write(len(packed).to_bytes(2, "big") + packed)
            await writer.drain()
            size = int.from_bytes(await reader.readexactly(2), "big")
            data = await reader.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            raise DnsaddrError("DNS server closed the TCP connection mid-answer") from exc
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        try:
            msg = DNSRecord.parse(data)
        except Exception as exc:
            raise DnsaddrError(f"TCP answer is not DNS: {exc}") from exc
        if not _matches(msg, qid, name.rstrip(".").lower()):
            raise DnsaddrError("TCP answer does not match the query")
        return msg

    async def resolve(self, addr: Multiaddr | str) -> list[Multiaddr]:
        """The addresses ``addr`` stands for (itself when it is not a ``/dnsaddr``)."""
        addr = addr if isinstance(addr, Multiaddr) else Multiaddr(addr)
        if not is_dnsaddr(addr):
            return [addr]
        budget = [self.max_lookups]
        out: list[Multiaddr] = []
        _rest, want = addr.split_peer_id()
        await self._resolve(addr, want, 0, budget, out)
        return out

    async def _resolve(
        self,
        addr: Multiaddr,
        want: PeerId | None,
        depth: int,
        budget: list[int],
        out: list[Multiaddr],
    ) -> None:
        if depth > self.max_depth:
            raise DnsaddrError(f"/dnsaddr nested deeper than {self.max_depth}")
        if budget[0] <= 0:
            raise DnsaddrError(f"/dnsaddr resolution needed over {self.max_lookups} lookups")
        budget[0] -= 1
        domain = addr.items()[0][1] or ""
        for text in await self.txt(f"_dnsaddr.{domain}"):
            if not text.startswith("dnsaddr="):
                continue
            try:
                entry = Multiaddr(text[len("dnsaddr=") :])
                _r, pid = entry.split_peer_id()
            except DecodeError as exc:
                log.debug("skipping a bad dnsaddr entry %r: %s", text, exc)
                continue
            if want is not None and pid is not None and pid != want:
                continue
            if is_dnsaddr(entry):
                await self._resolve(entry, want, depth + 1, budget, out)
            elif entry not in out:
                if want is not None and pid is None:
                    continue
                out.append(entry)
            if len(out) >= self.max_results:
                del out[self.max_results :]
                return
