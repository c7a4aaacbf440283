"""Chat between two peers over a custom protocol with line framing.

    python examples/chat.py --demo                     # two peers in one process
    python examples/chat.py listen                     # prints LISTENING <multiaddr>
    python examples/chat.py dial <multiaddr>           # on the other side (another terminal
                                                       # or machine); type lines, Ctrl-D ends

Each line you type is one message: UTF-8 text ending in ``\\n`` on the protocol
``/rapidp2p-example/chat/1.0.0``. A stream carries bytes, not messages, so the reader keeps
what it received after the last newline for the next read, and refuses a line longer than
``MAX_LINE`` (a peer must not make us buffer without end). To chat between two machines,
listen on an address the other machine can reach, e.g. ``--listen /ip4/0.0.0.0/tcp/4001``
and dial ``/ip4/<that machine's address>/tcp/4001/p2p/<its peer id>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import stat
import sys
from collections.abc import AsyncIterator

import rapidp2p
from rapidp2p import Host, Stream
from rapidp2p.exceptions import Libp2pError

PROTOCOL = "/rapidp2p-example/chat/1.0.0"
MAX_LINE = 64 * 1024


async def read_lines(stream: Stream) -> AsyncIterator[str]:
    """The stream's lines, without their newline, until EOF (a last unterminated line too)."""
    buffer = b""
    while True:
        chunk = await stream.read(MAX_LINE)
        if not chunk:
            if buffer:
                yield buffer.decode("utf-8", "replace")
            return
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", "replace")
        if len(buffer) > MAX_LINE:
            stream.reset()
            raise ValueError(f"line longer than {MAX_LINE} bytes")


def send_line(stream: Stream, text: str) -> None:
    stream.write(text.replace("\n", " ").encode() + b"\n")


def short(peer: object) -> str:
    return str(peer)[-8:]


async def print_incoming(stream: Stream) -> None:
    """Prints each line from the remote, then a note when it leaves."""
    who = short(stream.remote_peer)
    try:
        async for line in read_lines(stream):
            print(f"<{who}> {line}", flush=True)
    except (Libp2pError, ValueError) as exc:
        print(f"* {who}: {exc}", flush=True)
    print(f"* {who} left", flush=True)


async def stdin_lines() -> AsyncIterator[str]:
    """Lines typed on stdin (a pipe or a terminal), read without blocking the event loop."""
    fd = sys.stdin.fileno()
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)):
        # `< file` or /dev/null (a background job): not something the event loop can watch.
        for line in sys.stdin:
            yield line.rstrip("\n")
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        yield line.decode("utf-8", "replace").rstrip("\n")


async def chat(stream: Stream) -> None:
    """Sends what we type, prints what we receive; at the end of our input, half-closes and
    waits for the remote to finish too."""
    incoming = asyncio.ensure_future(print_incoming(stream))
    try:
        async for line in stdin_lines():
            send_line(stream, line)
            await stream.drain()
        await stream.close()  # half-close: the remote reads EOF after our last line
        await incoming
    finally:
        incoming.cancel()


async def listen(listen_addr: str, once: bool) -> None:
    done = asyncio.Event()

    async def on_chat(stream: Stream) -> None:
        print(f"* {short(stream.remote_peer)} joined", flush=True)
        await chat(stream)
        done.set()

    async with await Host.create(listen=[listen_addr]) as host:
        host.set_stream_handler(PROTOCOL, on_chat)
        for addr in host.full_addrs:
            print(f"LISTENING {addr}", flush=True)
        if once:
            await done.wait()
        else:
            await asyncio.Event().wait()  # serve until interrupted


async def dial(addr: str) -> None:
    async with Host() as host:
        stream = await host.new_stream(addr, PROTOCOL)
        print(f"* connected to {short(stream.remote_peer)}", flush=True)
        await chat(stream)


async def demo() -> None:
    """Alice listens, Bob dials; they trade two lines each and say goodbye."""
    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) as alice, Host() as bob:
        alice_got: list[str] = []

        async def alice_handler(stream: Stream) -> None:
            async for line in read_lines(stream):
                alice_got.append(line)
                print(f"alice got: {line}", flush=True)
                send_line(stream, f"hello bob, you said {line!r}")
            await stream.close()

        alice.set_stream_handler(PROTOCOL, alice_handler)
        stream = await bob.new_stream(alice.full_addrs[0], PROTOCOL)
        for text in ("hi alice", "how are you?"):
            send_line(stream, text)
        await stream.close()
        async for line in read_lines(stream):
            print(f"bob got: {line}", flush=True)
        print(f"demo done: {len(alice_got)} lines each way", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", action="store_true", help="two peers in one process")
    sub = parser.add_subparsers(dest="command")
    p_listen = sub.add_parser("listen", help="wait for a peer to dial")
    p_listen.add_argument("--listen", default="/ip4/127.0.0.1/tcp/0", metavar="MULTIADDR")
    p_listen.add_argument("--once", action="store_true", help="exit after the first chat")
    p_dial = sub.add_parser("dial", help="dial a listening peer")
    p_dial.add_argument("addr", metavar="MULTIADDR", help="ends in /p2p/<peer id>")
    args = parser.parse_args()
    if args.demo:
        rapidp2p.run(demo())
    elif args.command == "listen":
        rapidp2p.run(listen(args.listen, args.once))
    elif args.command == "dial":
        rapidp2p.run(dial(args.addr))
    else:
        parser.error("give --demo, listen or dial")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a chat quietly
        main()
