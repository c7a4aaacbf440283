"""File sharing: provide a file's CID on the DHT, find a provider, fetch it over a stream and
check its hash.

    python examples/file_share.py --demo                  # a 4-node DHT in one process
    python examples/file_share.py provide FILE            # prints CID <cid> and LISTENING <ma>
    python examples/file_share.py fetch CID --bootstrap <ma> [-o OUT]

The CID is a CIDv1 of the raw bytes with a SHA-256 multihash, as ``ipfs add --cid-version 1
--raw-leaves`` gives for a file of one block. The provider announces it with
``KadDHT.provide``; the fetcher asks the DHT with ``KadDHT.find_providers``, opens a stream
to a provider on ``/rapidp2p-example/file/1.0.0``, sends the CID followed by a newline and
reads the bytes until EOF, then checks they hash to the CID's digest (a provider is
untrusted). The file is served whole in one stream, so this suits files that fit in memory;
IPFS itself splits files into blocks and fetches them with Bitswap, which rapidp2p does not
speak.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import os
import sys
from pathlib import Path

import rapidp2p
from rapidp2p import Host, Stream
from rapidp2p.exceptions import Libp2pError
from rapidp2p.kad import KadConfig, KadDHT, provider_key

PROTOCOL = "/rapidp2p-example/file/1.0.0"
MAX_FILE = 64 * 1024 * 1024
MAX_REQUEST = 256
RAW_CODEC = 0x55
SHA2_256 = 0x12


def cid_of(data: bytes) -> str:
    """CIDv1, codec raw, SHA-256 multihash, in base32 (``b`` + lowercase, no padding)."""
    multihash = bytes([SHA2_256, 32]) + hashlib.sha256(data).digest()
    binary = bytes([1, RAW_CODEC]) + multihash
    return "b" + base64.b32encode(binary).decode().lower().rstrip("=")


def sha256_of_cid(cid: str) -> bytes:
    """The SHA-256 digest a CID names (the DHT key is its multihash: ``provider_key``)."""
    multihash = provider_key(cid)
    if multihash[:2] != bytes([SHA2_256, 32]):
        raise ValueError(f"{cid} does not name a SHA-256 digest")
    return multihash[2:]


def serve_files(host: Host, files: dict[str, bytes]) -> None:
    """Serves ``files`` (CID -> bytes): one request line, the bytes, then EOF."""

    async def handler(stream: Stream) -> None:
        request = b""
        while not request.endswith(b"\n"):
            chunk = await stream.read(MAX_REQUEST)
            if not chunk or len(request) + len(chunk) > MAX_REQUEST:
                stream.reset()
                return
            request += chunk
        data = files.get(request.decode("ascii", "replace").strip())
        if data is None:
            stream.reset()  # not ours: the fetcher tries another provider
            return
        stream.write(data)
        await stream.drain()
        await stream.close()

    host.set_stream_handler(PROTOCOL, handler)


async def fetch_from(host: Host, provider: object, cid: str) -> bytes:
    """The bytes of ``cid`` from one provider, checked against the CID's digest."""
    stream = await host.new_stream(provider, PROTOCOL)  # type: ignore[arg-type]
    stream.write(cid.encode() + b"\n")
    await stream.close()
    data = b""
    while chunk := await stream.read(1 << 20):
        data += chunk
        if len(data) > MAX_FILE:
            stream.reset()
            raise ValueError(f"provider sent more than {MAX_FILE} bytes")
    if hashlib.sha256(data).digest() != sha256_of_cid(cid):
        raise ValueError("hash mismatch: the provider sent other bytes")
    return data


async def find_and_fetch(dht: KadDHT, cid: str) -> tuple[bytes, object]:
    """Asks the DHT for providers and fetches from the first that delivers valid bytes."""
    async for info in dht.find_providers(cid, count=5):
        if info.peer_id == dht.host.peer_id:
            continue
        try:
            return await fetch_from(dht.host, info, cid), info.peer_id
        except (Libp2pError, OSError, ValueError) as exc:
            print(f"provider {info.peer_id} failed: {exc}", file=sys.stderr)
    raise SystemExit(f"no provider delivered {cid}")


async def dht_node(host: Host, mode: str = "server") -> KadDHT:
    # On a local network (loopback, private addresses) the default "auto" mode stays a
    # client, so nodes that should answer queries say "server" explicitly.
    dht = KadDHT(host, KadConfig(mode=mode, request_timeout=5.0, query_timeout=20.0))
    await dht.start()
    return dht


async def provide(path: Path, listen: str, bootstrap: list[str]) -> None:
    data = path.read_bytes()
    cid = cid_of(data)
    async with await Host.create(listen=[listen]) as host:
        serve_files(host, {cid: data})
        async with await dht_node(host) as dht:
            if bootstrap:
                await dht.bootstrap(bootstrap)
            told = await dht.provide(cid)
            print(f"CID {cid}", flush=True)
            for addr in host.full_addrs:
                print(f"LISTENING {addr}", flush=True)
            print(f"provided to {told} peers; serving until interrupted", file=sys.stderr)
            await asyncio.Event().wait()


async def fetch(cid: str, bootstrap: list[str], out: Path | None) -> None:
    async with Host() as host, await dht_node(host, "client") as dht:
        await dht.bootstrap(bootstrap)
        data, provider = await find_and_fetch(dht, cid)
        if out is not None:
            out.write_bytes(data)
        print(f"fetched {len(data)} bytes of {cid} from {provider}: sha256 ok", flush=True)


async def demo() -> None:
    """Four DHT servers; one provides a file; a fifth node finds it and fetches it."""
    loopback = "/ip4/127.0.0.1/tcp/0"
    hosts = [await Host.create(listen=[loopback]) for _ in range(4)]
    fetcher = Host()
    dhts: list[KadDHT] = []
    try:
        for i, host in enumerate(hosts):
            dhts.append(await dht_node(host))
            if i:
                await dhts[i].bootstrap([hosts[0].full_addrs[0]])
        data = os.urandom(256 * 1024) + b"hello from the provider\n"
        cid = cid_of(data)
        serve_files(hosts[1], {cid: data})
        told = await dhts[1].provide(cid)
        print(f"node 1 provides {cid} ({len(data)} bytes), told {told} peers", flush=True)
        fetcher.start()
        dhts.append(await dht_node(fetcher, "client"))
        await dhts[-1].bootstrap([hosts[3].full_addrs[0]])
        got, provider = await find_and_fetch(dhts[-1], cid)
        which = next(i for i, h in enumerate(hosts) if h.peer_id == provider)
        assert got == data
        print(f"fetched {len(got)} bytes from node {which}: sha256 ok", flush=True)
    finally:
        for dht in dhts:
            await dht.close()
        for host in [*hosts, fetcher]:
            await host.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", action="store_true", help="a small DHT in one process")
    sub = parser.add_subparsers(dest="command")
    p_provide = sub.add_parser("provide", help="serve a file and announce its CID")
    p_provide.add_argument("file", type=Path)
    p_provide.add_argument("--listen", default="/ip4/127.0.0.1/tcp/0", metavar="MULTIADDR")
    p_provide.add_argument("--bootstrap", action="append", default=[], metavar="MULTIADDR")
    p_fetch = sub.add_parser("fetch", help="find a provider of CID and fetch it")
    p_fetch.add_argument("cid")
    p_fetch.add_argument("--bootstrap", action="append", required=True, metavar="MULTIADDR")
    p_fetch.add_argument("-o", "--output", type=Path, help="write the file here")
    args = parser.parse_args()
    if args.demo:
        rapidp2p.run(demo())
    elif args.command == "provide":
        rapidp2p.run(provide(args.file, args.listen, args.bootstrap))
    elif args.command == "fetch":
        rapidp2p.run(fetch(args.cid, args.bootstrap, args.output))
    else:
        parser.error("give --demo, provide or fetch")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
