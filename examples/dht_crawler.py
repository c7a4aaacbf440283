"""A Kademlia DHT crawler: walks a network from one bootstrap peer and prints a table.

    python examples/dht_crawler.py --demo                 # crawls 8 in-process nodes
    python examples/dht_crawler.py --bootstrap <multiaddr> [--protocol /ipfs/lan/kad/1.0.0]

For every peer it reaches, the crawler asks ``FIND_NODE`` for the peer's own ID and a few
random keys (each answer lists up to k=20 peers of one region of the peer's routing table),
queues every peer it had not seen, and runs identify for the agent version. It speaks the
kad wire protocol directly over ``host.new_stream`` (one varint-length-prefixed protobuf
request and answer per stream: ``rapidp2p.protocols.framing`` for the framing,
``rapidp2p.kad.KadMessage`` for the encoding), so it does not join the DHT. Everything is
bounded: peers visited, requests in flight, time per request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from dataclasses import dataclass, field

import rapidp2p
from rapidp2p import Host, Multiaddr, PeerId, PeerInfo
from rapidp2p.exceptions import Libp2pError
from rapidp2p.kad import PROTOCOL_ID, KadConfig, KadDHT, KadMessage, MessageType
from rapidp2p.protocols.framing import encode_delimited, read_delimited

MAX_MESSAGE = 64 * 1024
RANDOM_KEYS = 3


@dataclass
class Visit:
    """What the crawler learned about one peer."""

    peer: PeerId
    addrs: list[Multiaddr]
    agent: str = "?"
    neighbours: set[PeerId] = field(default_factory=set)
    error: str = ""


class Crawler:
    def __init__(self, host: Host, protocol: str, max_peers: int, timeout: float) -> None:
        self.host = host
        self.protocol = protocol
        self.max_peers = max_peers
        self.timeout = timeout
        self.visits: dict[PeerId, Visit] = {}
        self._slots = asyncio.Semaphore(8)

    async def find_node(self, peer: PeerInfo, key: bytes) -> list[PeerInfo]:
        """One FIND_NODE request; the peers of the answer that carry addresses."""
        stream = await self.host.new_stream(peer, self.protocol)
        try:
            request = KadMessage(MessageType.FIND_NODE, key).encode()
            stream.write(encode_delimited(request))
            await stream.close()
            data = await read_delimited(stream, MAX_MESSAGE)
            if data is None:
                raise EOFError("the peer closed the stream without an answer")
            answer = KadMessage.decode(data)
        except BaseException:
            stream.reset()
            raise
        found = []
        for kp in answer.closer_peers:
            with contextlib.suppress(Libp2pError, ValueError):
                addrs = [Multiaddr.from_bytes(a) for a in kp.addrs]
                found.append(PeerInfo(PeerId.from_bytes(kp.peer_id), addrs))
        return found

    async def ask(self, info: PeerInfo, visit: Visit) -> list[PeerInfo]:
        """Identify, then FIND_NODE for the peer's own ID and a few random keys."""
        conn = await self.host.connect(info)
        ident = await self.host.identify.identify_peer(conn)
        visit.agent = ident.agent_version or "?"
        keys = [info.peer_id.to_bytes()] + [os.urandom(32) for _ in range(RANDOM_KEYS)]
        answers = await asyncio.gather(*(self.find_node(info, k) for k in keys))
        return [p for answer in answers for p in answer if p.peer_id != self.host.peer_id]

    async def visit(self, info: PeerInfo) -> list[PeerInfo]:
        visit = self.visits[info.peer_id]
        async with self._slots:
            try:
                found = await asyncio.wait_for(self.ask(info, visit), self.timeout)
            except (Libp2pError, OSError, ValueError, asyncio.TimeoutError) as exc:
                visit.error = type(exc).__name__  # IncompleteReadError is an EOFError
                return []
            except EOFError:
                visit.error = "EOF"
                return []
            finally:
                await self.host.disconnect(info.peer_id)
        visit.neighbours = {p.peer_id for p in found}
        return found

    async def crawl(self, start: list[PeerInfo]) -> None:
        pending: set[asyncio.Task[list[PeerInfo]]] = set()

        def enqueue(info: PeerInfo) -> None:
            if info.peer_id in self.visits or len(self.visits) >= self.max_peers:
                return
            self.visits[info.peer_id] = Visit(info.peer_id, info.addrs)
            pending.add(asyncio.ensure_future(self.visit(info)))

        for info in start:
            enqueue(info)
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                pending.discard(task)
                for info in task.result():
                    enqueue(info)

    def table(self) -> str:
        rows = [("PEER", "AGENT", "NEIGHBOURS", "ADDRESS")]
        for v in sorted(self.visits.values(), key=lambda v: str(v.peer)):
            neighbours = f"error: {v.error}" if v.error else str(len(v.neighbours))
            addr = str(v.addrs[0]) if v.addrs else "-"
            rows.append((str(v.peer), v.agent, neighbours, addr))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        return "\n".join(line.rstrip() for line in lines)


async def crawl(bootstrap: list[str], protocol: str, max_peers: int, timeout: float) -> None:
    async with Host() as host:
        crawler = Crawler(host, protocol, max_peers, timeout)
        await crawler.crawl([PeerInfo.from_multiaddr(a) for a in bootstrap])
        print(crawler.table(), flush=True)
        ok = sum(1 for v in crawler.visits.values() if not v.error)
        print(f"crawled {len(crawler.visits)} peers, {ok} answered", flush=True)


async def demo(nodes: int) -> None:
    """A chain of DHT servers (each bootstraps from the one before) crawled from node 0."""
    hosts: list[Host] = []
    dhts: list[KadDHT] = []
    try:
        for i in range(nodes):
            host = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
            hosts.append(host)
            dht = KadDHT(host, KadConfig(mode="server"))
            await dht.start()
            dhts.append(dht)
            if i:
                await dht.bootstrap([hosts[i - 1].full_addrs[0]])
        await crawl([str(hosts[0].full_addrs[0])], PROTOCOL_ID, max_peers=100, timeout=10.0)
    finally:
        for dht in dhts:
            await dht.close()
        for host in hosts:
            await host.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", action="store_true", help="crawl a network of local nodes")
    parser.add_argument("--nodes", type=int, default=8, help="nodes in the demo network")
    parser.add_argument("--bootstrap", action="append", default=[], metavar="MULTIADDR")
    parser.add_argument("--protocol", default=PROTOCOL_ID, help="kad protocol id")
    parser.add_argument("--max-peers", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per peer")
    args = parser.parse_args()
    if args.demo:
        rapidp2p.run(demo(args.nodes))
    elif args.bootstrap:
        rapidp2p.run(crawl(args.bootstrap, args.protocol, args.max_peers, args.timeout))
    else:
        parser.error("give --demo or --bootstrap MULTIADDR")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
