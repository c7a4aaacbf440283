"""Helpers shared by the host and limits tests (two hosts, an echo handler); no tests here."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from rapidp2p._aio.stream import Stream
from rapidp2p.host import Host, HostConfig

ECHO = "/echo/1.0.0"
LISTEN = {"tcp": "/ip4/127.0.0.1/tcp/0", "memory": "/memory/0"}


async def echo_handler(stream: Stream) -> None:
    """Copies every byte back until EOF, then half-closes."""
    async for chunk in stream:
        stream.write(chunk)
        await stream.drain()
    await stream.close()


@contextlib.asynccontextmanager
async def host_pair(
    transport: str, server_config: HostConfig | None = None, client_config: HostConfig | None = None
) -> AsyncIterator[tuple[Host, Host]]:
    """(client, server): the server listens on ``transport`` and serves ECHO."""
    server = await Host.create(listen=[LISTEN[transport]], config=server_config)
    server.set_stream_handler(ECHO, echo_handler)
    client = await Host.create(config=client_config)
    try:
        yield client, server
    finally:
        await client.close()
        await server.close()


def server_info(server: Host) -> str:
    return str(server.full_addrs[0])
