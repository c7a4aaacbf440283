"""For IPFS users: talk to a kubo daemon (or any go-libp2p node) from Python.

    python examples/kubo_interop.py --demo
    python examples/kubo_interop.py /ip4/127.0.0.1/tcp/4001/p2p/<kubo peer id> \\
        [--find-providers CID]... [--provide CID]...

``ipfs id`` prints the daemon's peer ID and addresses. The example connects (TCP, Noise,
yamux: what kubo listens with on TCP), prints the remote's identify record and three ping
round trips, then joins its Kademlia DHT as a client through it:

* it picks the DHT protocol from the protocols the remote announces: kubo runs two DHTs,
  the public one on ``/ipfs/kad/1.0.0`` (its routing table keeps only peers with public
  addresses, and it serves only once the daemon is publicly reachable) and one for the local
  network on ``/ipfs/lan/kad/1.0.0``, so a daemon on your machine or LAN answers on the LAN
  one (``--kad-protocol`` picks one by hand);
* ``--find-providers CID`` lists the peers that provide a CID (for instance one added with
  ``ipfs add`` on the daemon: it provides its own blocks);
* ``--provide CID`` announces this node as a provider of CID; ``ipfs routing findprovs CID``
  on the daemon then lists this node's peer ID (while the record lives, 48 hours).

rapidp2p speaks no Bitswap, so it finds content but does not fetch IPFS blocks; see
``file_share.py`` for fetching a file over a stream of your own protocol.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import rapidp2p
from rapidp2p import Host, PeerId, PeerInfo, Stream
from rapidp2p.kad import KadConfig, KadDHT, KadMessage, MessageType, provider_key

WAN_KAD = "/ipfs/kad/1.0.0"
LAN_KAD = "/ipfs/lan/kad/1.0.0"


async def read_delimited(stream: Stream, limit: int = 64 * 1024) -> bytes:
    """One uvarint-length-prefixed message (the kad framing) of at most ``limit`` bytes."""
    length = shift = 0
    while True:
        byte = (await stream.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")
    if length > limit:
        raise ValueError(f"message of {length} bytes over the {limit}-byte limit")
    return await stream.readexactly(length)


async def providers_held_by(host: Host, peer: PeerId, protocol: str, cid: str) -> set[PeerId]:
    """The providers of ``cid`` that ``peer`` itself holds: one GET_PROVIDERS to it alone."""
    request = KadMessage(MessageType.GET_PROVIDERS, provider_key(cid)).encode()
    stream = await host.new_stream(peer, protocol)
    try:
        stream.write(bytes([len(request)]) + request)  # < 128 bytes: a one-byte varint
        await stream.close()
        answer = KadMessage.decode(await read_delimited(stream))
    except BaseException:
        stream.reset()
        raise
    return {PeerId.from_bytes(p.peer_id) for p in answer.provider_peers}


async def visit(
    addr: str,
    kad_protocol: str | None,
    find: list[str],
    provide: list[str],
    listen: str = "/ip4/127.0.0.1/tcp/0",
) -> None:
    # A provider record must carry an address the daemon can give to others (go-libp2p-kad-dht
    # ignores records without one), so this node listens too.
    async with await Host.create(listen=[listen]) as host:
        print(f"local peer id {host.peer_id}", flush=True)
        conn = await host.connect(addr)
        peer = conn.remote_peer
        info = await host.identify.identify_peer(conn)
        print(f"connected to {peer}", flush=True)
        print(f"agent {info.agent_version}", flush=True)
        print(f"protocol version {info.protocol_version}", flush=True)
        print(f"protocols {len(info.protocols)}: {' '.join(sorted(info.protocols))}", flush=True)
        rtts = await host.ping(peer, 3)
        print("ping " + " ".join(f"{rtt * 1000:.2f} ms" for rtt in rtts), flush=True)

        if kad_protocol is None:
            offered = [p for p in (LAN_KAD, WAN_KAD) if p in info.protocols]
            if not offered:
                print("the peer serves no Kademlia DHT: done", flush=True)
                return
            kad_protocol = offered[0]
        print(f"dht protocol {kad_protocol}", flush=True)
        config = KadConfig(protocol=kad_protocol, mode="client", query_timeout=30.0)
        async with KadDHT(host, config) as dht:
            size = await dht.bootstrap([PeerInfo(peer, [a for a in info.listen_addrs])])
            print(f"dht routing table {size} peers", flush=True)
            for cid in find:
                found = [p async for p in dht.find_providers(cid, count=20)]
                for p in found:
                    print(f"provider of {cid}: {p.peer_id}", flush=True)
                print(f"{len(found)} providers of {cid}", flush=True)
            for cid in provide:
                told = await dht.provide(cid)
                print(f"provided {cid} to {told} peers", flush=True)
                # ADD_PROVIDER has no answer: ask the daemon until it lists us, so that the
                # record is stored before this program closes the connection.
                for _ in range(50):
                    if host.peer_id in await providers_held_by(host, peer, kad_protocol, cid):
                        print(f"the peer lists us as a provider of {cid}", flush=True)
                        break
                    await asyncio.sleep(0.1)
                else:
                    print(f"the peer does not list us as a provider of {cid}", flush=True)


async def demo() -> None:
    """A rapidp2p DHT server stands in for the daemon; a third node provides a CID on it."""
    cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    loopback = ["/ip4/127.0.0.1/tcp/0"]
    async with (
        await Host.create(listen=loopback) as daemon,
        await Host.create(listen=loopback) as other,
        KadDHT(daemon, KadConfig(protocol=LAN_KAD, mode="server")),
        KadDHT(other, KadConfig(protocol=LAN_KAD, mode="server")) as other_dht,
    ):
        await other_dht.bootstrap([daemon.full_addrs[0]])
        await other_dht.provide(cid)
        print(f"stand-in daemon {daemon.peer_id}; provider {other.peer_id}", flush=True)
        await visit(str(daemon.full_addrs[0]), None, [cid], [cid])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("addr", nargs="?", help="the daemon's multiaddr, ending in /p2p/<id>")
    parser.add_argument("--demo", action="store_true", help="a local stand-in daemon")
    parser.add_argument("--kad-protocol", help=f"{LAN_KAD} or {WAN_KAD} (default: detect)")
    parser.add_argument("--find-providers", action="append", default=[], metavar="CID")
    parser.add_argument("--provide", action="append", default=[], metavar="CID")
    parser.add_argument(
        "--listen",
        default="/ip4/127.0.0.1/tcp/0",
        metavar="MULTIADDR",
        help="our address, given to the daemon with --provide (default: loopback)",
    )
    args = parser.parse_args()
    if args.demo:
        rapidp2p.run(demo())
    elif args.addr:
        find, provide = args.find_providers, args.provide
        rapidp2p.run(visit(args.addr, args.kad_protocol, find, provide, args.listen))
    else:
        parser.error("give the daemon's multiaddr, or --demo")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
