"""The ceiling under every libp2p stack: perf's exchange over plain TCP on the same event loop
(uvloop when installed), behind the ``rapidp2p perf`` command line.

No security, no muxer, no negotiation: a request is 16 bytes (upload size, download size, both
u64 big-endian), then the upload; the server answers with the download. Requests can repeat on
one connection (``--reuse-connection``). ``--streams`` is refused (plain TCP has no streams).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import perf_flags  # sibling module: this file runs as a script

EXIT_UNSUPPORTED = 3
BLOCK = bytes(1 << 20)


class _Sender:
    """Writes ``count`` zero bytes with the transport's flow control, then calls ``done``."""

    def __init__(self, transport: asyncio.Transport, count: int, done: Any) -> None:
        self.transport, self.count, self.done = transport, count, done
        self.paused = False

    def pump(self) -> None:
        while self.count and not self.paused:
            n = min(self.count, len(BLOCK))
            self.transport.write(BLOCK if n == len(BLOCK) else BLOCK[:n])
            self.count -= n
        if not self.count and self.done is not None:
            done, self.done = self.done, None
            done()


class ServerProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.header = bytearray()
        self.up_left = -1
        self.down = 0
        self.sender: _Sender | None = None

    def data_received(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.up_left < 0:
                need = 16 - len(self.header)
                self.header += view[:need]
                view = view[need:]
                if len(self.header) < 16:
                    return
                self.up_left = int.from_bytes(self.header[:8], "big")
                self.down = int.from_bytes(self.header[8:], "big")
                self.header.clear()
            take = min(self.up_left, len(view))
            self.up_left -= take
            view = view[take:]
            if self.up_left == 0:
                self.up_left = -1
                self.sender = _Sender(self.transport, self.down, None)
                self.sender.pump()

    def pause_writing(self) -> None:
        if self.sender is not None:
            self.sender.paused = True

    def resume_writing(self) -> None:
        if self.sender is not None:
            self.sender.paused = False
            self.sender.pump()


class ClientProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.connected = asyncio.get_running_loop().create_future()
        self.waiter: asyncio.Future[None] | None = None
        self.expect = 0
        self.sender: _Sender | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.connected.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.expect -= len(data)
        if self.expect <= 0 and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def pause_writing(self) -> None:
        if self.sender is not None:
            self.sender.paused = True

    def resume_writing(self) -> None:
        if self.sender is not None:
            self.sender.paused = False
            self.sender.pump()

    async def request(self, up: int, down: int) -> None:
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self.expect = down
        self.transport.write(up.to_bytes(8, "big") + down.to_bytes(8, "big"))
        self.sender = _Sender(self.transport, up, None)
        self.sender.pump()
        if down == 0:
            # Nothing comes back: wait until the kernel took the upload (the server counts it).
            while self.sender.count or self.transport.get_write_buffer_size():
                await asyncio.sleep(0.0005)
            return
        await self.waiter


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


async def serve(address: str) -> None:
    host, port = _split(address)
    server = await asyncio.get_running_loop().create_server(ServerProtocol, host, port)
    print(f"tcp {host}:{server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


async def client(args: argparse.Namespace) -> int:
    host, port = _split(args.server_address)
    loop = asyncio.get_running_loop()
    per = [args.iterations // args.concurrency] * args.concurrency
    for i in range(args.iterations % args.concurrency):
        per[i] += 1

    async def dialer(count: int) -> None:
        proto: ClientProtocol | None = None
        for _ in range(count):
            start = time.perf_counter()
            if proto is None:
                _, proto = await loop.create_connection(ClientProtocol, host, port)
                await proto.connected
            if not args.connect_only:
                await proto.request(args.upload_bytes, args.download_bytes)
                proto.waiter = None
            _emit(
                {
                    "type": "final",
                    "timeSeconds": time.perf_counter() - start,
                    "uploadBytes": 0 if args.connect_only else args.upload_bytes,
                    "downloadBytes": 0 if args.connect_only else args.download_bytes,
                }
            )
            if not args.reuse_connection:
                proto.transport.close()
                proto = None
        if proto is not None:
            proto.transport.close()

    start = time.perf_counter()
    await asyncio.gather(*(dialer(n) for n in per if n))
    if args.iterations > 1:
        _emit(
            {
                "type": "summary",
                "iterations": args.iterations,
                "elapsedSeconds": time.perf_counter() - start,
            }
        )
    return 0


def main() -> int:
    args = perf_flags.parse("rawtcp_perf")
    if args.streams != 1:
        print("plain TCP has no streams", file=sys.stderr)
        return EXIT_UNSUPPORTED
    try:
        import uvloop

        new_loop: Any = uvloop.new_event_loop
    except ImportError:
        new_loop = asyncio.new_event_loop
    loop = new_loop()
    asyncio.set_event_loop(loop)
    try:
        if args.run_server:
            loop.run_until_complete(serve(args.server_address))
            return 0
        return int(loop.run_until_complete(client(args)))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
