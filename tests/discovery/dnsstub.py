"""A stub DNS server on loopback for tests: answers TXT queries from a dict (asyncio, dnslib),
over UDP and over TCP on the same port. With ``udp_limit`` set, a UDP answer bigger than that
is replaced by an empty one with the TC bit, as a real server does past 512 bytes."""

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
        packed = self.stub.answer(query)
        limit = self.stub.udp_limit
        if limit is not None and len(packed) > limit:
            truncated = query.reply()
            truncated.header.tc = 1
            packed = bytes(truncated.pack())
            self.stub.truncated += 1
        assert self.transport is not None
        self.transport.sendto(packed, addr)


class DnsStub:
    """``async with DnsStub({"_dnsaddr.example.test": ["dnsaddr=/ip4/..."]}) as server:``;
    ``server.address`` is its (127.0.0.1, port)."""

    def __init__(
        self, txt: dict[str, list[str]], *, udp_limit: int | None = None, tcp: bool = True
    ) -> None:
        self.txt = txt
        self.udp_limit = udp_limit
        self.tcp = tcp
        self.queries: list[str] = []
        self.tcp_queries: list[str] = []
        self.truncated = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self.address: tuple[str, int] = ("127.0.0.1", 0)

    def answer(self, query: DNSRecord) -> bytes:
        """The packed full answer to ``query`` from the table."""
        reply = query.reply()
        name = str(query.q.qname).rstrip(".")
        records = self.txt.get(name)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif query.q.qtype == QTYPE.TXT:
            for text in records:
                reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT(text), ttl=60))
        return bytes(reply.pack())

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            size = int.from_bytes(await reader.readexactly(2), "big")
            query = DNSRecord.parse(await reader.readexactly(size))
            self.tcp_queries.append(str(query.q.qname).rstrip("."))
            packed = self.answer(query)
            writer.write(len(packed).to_bytes(2, "big") + packed)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> DnsStub:
        loop = asyncio.get_running_loop()
        # The TCP side needs the UDP side's port number, which another process may hold on
        # TCP: pick another UDP port and try again.
        for attempt in range(20):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _StubProtocol(self), local_addr=("127.0.0.1", 0)
            )
            self._transport = transport
            self.address = transport.get_extra_info("sockname")[:2]
            if not self.tcp:
                break
            try:
                self._server = await asyncio.start_server(self._serve_tcp, *self.address)
                break
            except OSError:
                transport.close()
                if attempt == 19:
                    raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
