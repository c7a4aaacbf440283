"""A stub DNS server on loopback for tests: answers TXT queries from a dict (asyncio, dnslib)."""

from __future__ import annotations

import asyncio
from typing import Any

from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord


class _StubProtocol(asyncio.DatagramProtocol):
    def __init__(self, stub: DnsStub) -> None:
        self.stub = stub
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query = DNSRecord.parse(data)
        self.stub.queries.append(str(query.q.qname).rstrip("."))
        reply = query.reply()
        name = str(query.q.qname).rstrip(".")
        records = self.stub.txt.get(name)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif query.q.qtype == QTYPE.TXT:
            for text in records:
                reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT(text), ttl=60))
        assert self.transport is not None
        self.transport.sendto(bytes(reply.pack()), addr)


class DnsStub:
    """``async with DnsStub({"_dnsaddr.example.test": ["dnsaddr=/ip4/..."]}) as server:``;
    ``server.address`` is its (127.0.0.1, port)."""

    def __init__(self, txt: dict[str, list[str]]) -> None:
        self.txt = txt
        self.queries: list[str] = []
        self._transport: asyncio.DatagramTransport | None = None
        self.address: tuple[str, int] = ("127.0.0.1", 0)

    async def __aenter__(self) -> DnsStub:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _StubProtocol(self), local_addr=("127.0.0.1", 0)
        )
        self._transport = transport
        self.address = transport.get_extra_info("sockname")[:2]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._transport is not None:
            self._transport.close()
