"""``/dnsaddr`` resolution (multiformats/multiaddr protocols/DNSADDR.md): the TXT records of
``_dnsaddr.<domain>`` hold ``dnsaddr=<multiaddr>`` strings; entries that are themselves
``/dnsaddr`` are resolved recursively, within a depth and a total-lookup cap. A trailing
``/p2p/<id>`` on the address asked for keeps only the entries of that peer.

Queries go over UDP to the system's resolvers (``/etc/resolv.conf``) or to the ones given,
packed and parsed with ``dnslib`` (see :mod:`rapidp2p.discovery.mdns` for why that library).
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
"""Biggest UDP answer read (the datagram limit; a truncated answer is used as far as it goes)."""


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
        if msg.header.id != self.qid or not msg.header.qr:
            return
        if not msg.questions or str(msg.questions[0].qname).rstrip(".").lower() != self.name:
            return
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
                if msg.header.rcode not in (0, 3):  # NOERROR, NXDOMAIN
                    last = DnsaddrError(f"DNS server answered rcode {msg.header.rcode}")
                    continue
                out: list[str] = []
                for rr in msg.rr:
                    if rr.rtype == QTYPE.TXT:
                        out.append(b"".join(rr.rdata.data).decode(errors="replace"))
                return out
        raise DnsaddrError(f"no answer for TXT {name}: {last!r}")

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
