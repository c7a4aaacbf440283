"""Kademlia interop with go-libp2p-kad-dht and rust-libp2p's kad: each peer with rapidp2p in
both directions, then one mixed network of all three stacks where every stack's operations
are checked against the records and providers each other stack put.

The peer CLI (``tests/interop/{go,rust}-peer/run``; a peer without it skips, which
``tests/kad/conftest.py`` turns into a failure under CI):

* ``run listen --dht server [--bootstrap MULTIADDR]...``: also runs a Kademlia node in server
  mode on ``/ipfs/kad/1.0.0``, with a validator for the namespace ``test`` that accepts any
  value and selects the greatest byte string; prints ``LISTENING ...`` as usual.
* ``run dht OP KEY [VALUE] --bootstrap MULTIADDR...`` with OP one of ``put``, ``get``,
  ``provide``, ``find-providers``, ``get-closest-peers``, ``find-peer`` (a client-mode node):
  ``put`` stores KEY (text) = VALUE (text); ``get`` prints the value; ``provide CID`` announces
  itself; ``find-providers CID`` prints one provider peer ID a line; ``get-closest-peers KEY``
  one peer ID a line; ``find-peer PEER_ID`` one multiaddr a line. Exit 0 on success, non-zero
  with a message on stderr otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator

import pytest
from peers import PeerError, PeerProcess, _peer_env, build_peer

from rapidp2p.host import Host
from rapidp2p.kad import KadConfig, KadDHT, PermissiveValidator, default_validator, provider_key
from rapidp2p.peer import PeerId

pytestmark = pytest.mark.interop
each_peer = pytest.mark.parametrize("peer", ["go-peer", "rust-peer"])

CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


@contextlib.asynccontextmanager
async def dht_peer(name: str, *bootstrap: str) -> AsyncIterator[PeerProcess]:
    extra = ["--dht", "server"]
    for b in bootstrap:
        extra += ["--bootstrap", b]
    proc = PeerProcess(name, "/ip4/127.0.0.1/tcp/0", extra_args=extra)
    try:
        await asyncio.to_thread(proc.start)
    except PeerError as exc:
        if "--dht" in str(exc) or "unknown" in str(exc).lower() or "usage" in str(exc).lower():
            pytest.skip(f"{name} has no `run listen --dht server` yet")
        raise
    try:
        yield proc
    finally:
        await asyncio.to_thread(proc.stop)


@contextlib.asynccontextmanager
async def rapid_node(mode: str = "server") -> AsyncIterator[KadDHT]:
    host = await Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
    dht = KadDHT(
        host,
        KadConfig(mode=mode, request_timeout=10.0, query_timeout=30.0),
        validator=default_validator({"test": PermissiveValidator()}),
    )
    await dht.start()
    try:
        yield dht
    finally:
        await dht.close()
        await host.close()


async def peer_dht(name: str, *args: str) -> tuple[int, str, str]:
    directory = build_peer(name)
    proc = await asyncio.create_subprocess_exec(
        str(directory / "run"),
        "dht",
        *args,
        cwd=directory,
        env=_peer_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


@each_peer
async def test_rapidp2p_uses_peer_as_dht_server(peer: str) -> None:
    async with dht_peer(peer) as remote, rapid_node() as a, rapid_node("client") as b:
        await a.bootstrap([remote.addr])
        await b.bootstrap([remote.addr])
        remote_id = PeerId.from_string(remote.peer_id)
        assert remote_id in a.routing
        assert remote_id in await b.get_closest_peers(b"interop-key")
        # PUT_VALUE / GET_VALUE through the remote node.
        assert await a.put_value(b"/test/interop", b"from-rapidp2p") >= 1
        a.records.delete(b"/test/interop")  # b must get it from the remote, not from a
        assert await b.get_value(b"/test/interop", quorum=1) == b"from-rapidp2p"
        # ADD_PROVIDER / GET_PROVIDERS.
        assert await a.provide(CID) >= 1
        found = [p.peer_id async for p in b.find_providers(CID)]
        assert a.peer_id in found
        # FIND_NODE for a peer the remote knows.
        info = await b.find_peer(a.peer_id)
        assert set(info.addrs) & set(a.host.addrs)


@each_peer
async def test_peer_uses_rapidp2p_as_dht_server(peer: str) -> None:
    async with rapid_node() as a, rapid_node() as c:
        boot = str(a.host.full_addrs[0])
        await c.bootstrap([boot])
        async with dht_peer(peer, boot):
            await c.put_value(b"/test/from-rapid", b"value-r")
            code, out, err = await peer_dht(peer, "get", "/test/from-rapid", "--bootstrap", boot)
            assert code == 0 and out.strip() == "value-r", err
            code, out, err = await peer_dht(
                peer, "put", "/test/from-peer", "value-p", "--bootstrap", boot
            )
            assert code == 0, err
            assert await c.get_value(b"/test/from-peer", quorum=1) == b"value-p"
            await c.provide(CID)
            code, out, err = await peer_dht(peer, "find-providers", CID, "--bootstrap", boot)
            assert code == 0 and str(c.peer_id) in out.split(), err
            code, out, err = await peer_dht(peer, "provide", CID, "--bootstrap", boot)
            assert code == 0, err
            found = {str(p.peer_id) async for p in a.find_providers(CID)}
            assert len(found) >= 2
            code, out, err = await peer_dht(peer, "find-peer", str(c.peer_id), "--bootstrap", boot)
            assert code == 0 and set(out.split()) & {str(x) for x in c.host.addrs}, err


STACKS = ("rapidp2p", "go-peer", "rust-peer")


async def stack_dht(stack: str, *args: str) -> list[str]:
    """One ``dht`` operation as a fresh client process of ``stack`` (rapidp2p: the CLI);
    its output lines. Fails the test with the process' stderr when it exits non-zero."""
    if stack == "rapidp2p":
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rapidp2p.cli",
            "dht",
            *args,
            "--permissive-namespace",  # the shared /test/ namespace (the peers' validator)
            "test",
            # A provider announces where it listens: loopback only in tests.
            *(["--listen", "/ip4/127.0.0.1/tcp/0"] if args[0] == "provide" else []),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out_b, err_b = await asyncio.wait_for(proc.communicate(), 120)
        code, out, err = proc.returncode or 0, out_b.decode(), err_b.decode()
    else:
        code, out, err = await peer_dht(stack, *args)
    assert code == 0, f"{stack} dht {' '.join(args)} exited {code}: {err}"
    return out.split()


async def test_mixed_network() -> None:
    """rapidp2p, go and rust server nodes in one network; a client of each stack puts a
    value and provides a CID; clients of the two other stacks must get that value and find
    that provider; every stack's FIND_NODE finds every server and each other stack's nodes."""
    async with rapid_node() as r1:
        boot = str(r1.host.full_addrs[0])
        async with (
            dht_peer("go-peer", boot) as go,
            dht_peer("rust-peer", boot) as rust,
            rapid_node() as r2,
        ):
            await r2.bootstrap([boot, go.addr, rust.addr])
            servers = {str(r1.peer_id), str(r2.peer_id), go.peer_id, rust.peer_id}
            # Each client joins through a node of another stack.
            entry = {
                "rapidp2p": ["--bootstrap", rust.addr, "--bootstrap", go.addr],
                "go-peer": ["--bootstrap", rust.addr],
                "rust-peer": ["--bootstrap", go.addr],
            }
            node_addr = {"rapidp2p": str(r2.host.full_addrs[0]), "go-peer": go.addr}
            node_addr["rust-peer"] = rust.addr

            # PUT_VALUE by each stack; the rapidp2p server stores each (so go and rust PUT to
            # rapidp2p), and GET_VALUE by each other stack returns it.
            for putter in STACKS:
                key, value = f"/test/mixed-{putter}", f"value-from-{putter}"
                await stack_dht(putter, "put", key, value, *entry[putter])
                stored = r1.records.get(key.encode(), time.time())
                assert stored is not None and stored.value == value.encode(), putter
            for putter in STACKS:
                key, value = f"/test/mixed-{putter}", f"value-from-{putter}"
                getters = [s for s in STACKS if s != putter]
                outs = await asyncio.gather(*(stack_dht(g, "get", key, *entry[g]) for g in getters))
                for getter, out in zip(getters, outs, strict=True):
                    assert out == [value], f"{getter} got {out} for the value {putter} put"

            # ADD_PROVIDER by each stack (a CID each); the rapidp2p server learns exactly that
            # provider, and GET_PROVIDERS by each other stack finds it.
            cids = {
                "rapidp2p": CID,
                "go-peer": "bafkreie7ohywtosou76tasm7j63yigtzxe7d5zqus4zu3j6oltvgtibeom",
                "rust-peer": "QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u",
            }
            provider_of: dict[str, str] = {}
            for provider, cid in cids.items():
                await stack_dht(provider, "provide", cid, *entry[provider])
                # The provider's process has exited; its last bytes may still be on their way
                # through our loop (a loaded machine): give the server a moment to read them.
                for _ in range(100):
                    entries = r1.providers.get(provider_key(cid), time.time(), 20)
                    if entries:
                        break
                    await asyncio.sleep(0.05)
                assert len(entries) == 1, f"{provider}'s ADD_PROVIDER reached the rapidp2p server"
                pid = str(PeerId.from_bytes(entries[0].peer))
                assert pid not in servers
                provider_of[provider] = pid
            for provider, cid in cids.items():
                seekers = [s for s in STACKS if s != provider]
                outs = await asyncio.gather(
                    *(stack_dht(s, "find-providers", cid, *entry[s]) for s in seekers)
                )
                pid = provider_of[provider]
                for seeker, out in zip(seekers, outs, strict=True):
                    # rapidp2p's CLI prints the provider's full addresses after its peer ID.
                    assert out[:1] == [pid], f"{seeker} looking for {provider}'s"
                    assert all(a.endswith(f"/p2p/{pid}") for a in out[1:]), out

            # FIND_NODE: every stack's lookup finds the four servers, and its find-peer finds
            # the other stacks' server nodes with their listen addresses.
            outs = await asyncio.gather(
                *(stack_dht(s, "get-closest-peers", "mixed-key", *entry[s]) for s in STACKS)
            )
            for stack, out in zip(STACKS, outs, strict=True):
                assert set(out) == servers, f"{stack}'s closest peers"
            for seeker in STACKS:
                for target in STACKS:
                    if target == seeker:
                        continue
                    addr, _, pid = node_addr[target].rpartition("/p2p/")
                    out = await stack_dht(seeker, "find-peer", pid, *entry[seeker])
                    # rapidp2p's CLI prints full addresses (ending in /p2p/<id>).
                    assert addr in out or f"{addr}/p2p/{pid}" in out, (
                        f"{seeker} finding {target}'s node: {out}"
                    )
