"""Chat rooms on GossipSub: each room is a topic; join several, talk in any.

    python examples/pubsub_rooms.py --demo
    python examples/pubsub_rooms.py --name alice --room general --room random
        # prints LISTENING <multiaddr>; then, elsewhere:
    python examples/pubsub_rooms.py --name bob --room general --connect <multiaddr>

Type ``#room text`` to talk in a room (plain text goes to the first room). Every message is
signed by its author's key (GossipSub's default StrictSign policy) and carries a small JSON
object ``{"name": ..., "text": ...}``; the printed sender is the verified peer ID.

GossipSub sends a message to the peers it knows are in the topic and forwards it along its
mesh: a peer's subscription arrives a moment after connecting, and the mesh links form at
the next heartbeat (every second). A message published before then is not delivered to
everyone (no error is raised), so ``wait_for_room`` waits until each node's mesh of the room
holds the neighbours we expect.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import stat
import sys
from collections.abc import AsyncIterator

import rapidp2p
from rapidp2p import Host
from rapidp2p.pubsub import GossipSub, Message, Subscription

TOPIC_PREFIX = "/rapidp2p-example/rooms/"


def encode(name: str, text: str) -> bytes:
    return json.dumps({"name": name, "text": text}).encode()


def describe(room: str, msg: Message) -> str:
    try:
        body = json.loads(msg.data or b"{}")
        name, text = str(body["name"]), str(body["text"])
    except (ValueError, KeyError, TypeError):
        name, text = "?", repr(msg.data)
    return f"[#{room}] {name} ({str(msg.from_peer)[-8:]}): {text}"


async def wait_for_room(ps: GossipSub, room: str, members: int, timeout: float = 10.0) -> None:
    """Waits until ``members`` connected peers are in our mesh of ``room``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(ps.mesh_peers(TOPIC_PREFIX + room)) < members:
        if loop.time() > deadline:
            raise TimeoutError(f"#{room} has fewer than {members} other members")
        await asyncio.sleep(0.02)


async def print_room(
    room: str, sub: Subscription, out: list[str] | None = None, who: str = ""
) -> None:
    async for msg in sub:
        line = describe(room, msg)
        print(f"{who}{line}", flush=True)
        if out is not None:
            out.append(line)


async def demo() -> None:
    """Alice, Bob and Carol in #general; Bob and Carol also in #random."""
    names = ["alice", "bob", "carol"]
    rooms = {"alice": ["general"], "bob": ["general", "random"], "carol": ["general", "random"]}
    hosts = {n: await Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) for n in names}
    tasks: list[asyncio.Task[None]] = []
    received: dict[str, list[str]] = {n: [] for n in names}
    try:
        pubsub = {n: await hosts[n].add_service(GossipSub(hosts[n])) for n in names}
        for n in names:
            for room in rooms[n]:
                sub = await pubsub[n].subscribe(TOPIC_PREFIX + room)
                printer = print_room(room, sub, received[n], f"{n} sees ")
                tasks.append(asyncio.ensure_future(printer))
        await hosts["bob"].connect(hosts["alice"].full_addrs[0])
        await hosts["carol"].connect(hosts["bob"].full_addrs[0])
        await wait_for_room(pubsub["bob"], "general", 2)
        await wait_for_room(pubsub["bob"], "random", 1)
        await wait_for_room(pubsub["alice"], "general", 1)
        await wait_for_room(pubsub["carol"], "general", 1)
        await wait_for_room(pubsub["carol"], "random", 1)
        await pubsub["alice"].publish(TOPIC_PREFIX + "general", encode("alice", "hi all"))
        await pubsub["carol"].publish(TOPIC_PREFIX + "random", encode("carol", "psst, bob"))
        await pubsub["bob"].publish(TOPIC_PREFIX + "general", encode("bob", "hi alice"))
        # A subscriber sees its own messages too: alice 2 in #general; bob and carol the
        # two of #general and the one of #random.
        want = {"alice": 2, "bob": 3, "carol": 3}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while any(len(received[n]) < want[n] for n in names) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for n in names:
            print(f"{n} received {len(received[n])} messages", flush=True)
    finally:
        for t in tasks:
            t.cancel()
        for host in hosts.values():
            await host.close()


async def stdin_lines() -> AsyncIterator[str]:
    if stat.S_ISREG(os.fstat(sys.stdin.fileno()).st_mode):
        for line in sys.stdin:
            yield line.rstrip("\n")
        return
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        yield line.decode("utf-8", "replace").rstrip("\n")


async def interactive(name: str, rooms: list[str], listen: str, connect: list[str]) -> None:
    async with await Host.create(listen=[listen]) as host:
        ps = await host.add_service(GossipSub(host))
        tasks = []
        for room in rooms:
            sub = await ps.subscribe(TOPIC_PREFIX + room)
            tasks.append(asyncio.ensure_future(print_room(room, sub)))
        for addr in host.full_addrs:
            print(f"LISTENING {addr}", flush=True)
        for addr in connect:
            await host.connect(addr)
        if connect:
            await wait_for_room(ps, rooms[0], 1)
        async for line in stdin_lines():
            room, text = rooms[0], line
            if line.startswith("#") and " " in line:
                room, text = line[1:].split(" ", 1)
            if room not in rooms:
                print(f"* not in #{room} (rooms: {', '.join(rooms)})", file=sys.stderr)
                continue
            await ps.publish(TOPIC_PREFIX + room, encode(name, text))
        await ps.wait_sent()
        for t in tasks:
            t.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", action="store_true", help="three peers in one process")
    parser.add_argument("--name", default="anon", help="the name others see")
    parser.add_argument("--room", action="append", default=[], help="a room to join (repeat)")
    parser.add_argument("--listen", default="/ip4/127.0.0.1/tcp/0", metavar="MULTIADDR")
    parser.add_argument("--connect", action="append", default=[], metavar="MULTIADDR")
    args = parser.parse_args()
    if args.demo:
        rapidp2p.run(demo())
    else:
        rapidp2p.run(interactive(args.name, args.room or ["general"], args.listen, args.connect))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
