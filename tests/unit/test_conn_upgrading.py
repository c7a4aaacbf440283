"""``_core.conn.Connection.upgrading``: one Rust object from the first byte (security
multistream-select, Noise or TLS handshake, early muxer, muxer), with the Noise signature
check answered from Python (EV_VERIFY -> ``verified``), driven here without sockets.

The asyncio driver does not use it yet (issue 9); these tests pin the glue's contract.
"""

from __future__ import annotations

from typing import Any

import pytest

from rapidp2p import _core
from rapidp2p.crypto import PrivateKey, generate_keypair, public_key_from_protobuf
from rapidp2p.exceptions import (
    ConnectionRefusedByPeer,
    HandshakeError,
    PeerIdMismatch,
)
from rapidp2p.peer import PeerId
from rapidp2p.protocols.multistream._proto import encode_messages
from rapidp2p.security.noise import SIGNATURE_PREFIX, NoiseIdentity
from rapidp2p.security.tls import TlsIdentity

conn = _core.conn
MUXERS = ["/yamux/1.0.0", "/mplex/6.7.0"]


def upgrading(
    key: PrivateKey,
    initiator: bool,
    protocols: list[str],
    expected: PeerId | None = None,
) -> Any:
    ident = NoiseIdentity(key)
    return conn.Connection.upgrading(
        initiator=initiator,
        protocols=protocols,
        muxers=MUXERS,
        early_muxers=MUXERS,
        noise_static_secret=ident.static_secret,
        noise_payload=ident.payload(MUXERS),
        tls_identity=TlsIdentity(key).identity,
        expected_peer=None if expected is None else expected.to_bytes(),
        keepalive_interval=None,
    )


class Side:
    """One connection and what it reported; EV_VERIFY is answered with the identity key."""

    def __init__(self, c: Any, *, lie: bool = False) -> None:
        self.c = c
        self.lie = lie
        self.events: list[tuple[int, int, Any]] = []

    def take(self, events: list[tuple[int, int, Any]]) -> None:
        for ev in events:
            self.events.append(ev)
            if ev[0] == conn.EV_VERIFY:
                key_pb, sig, static = ev[2]
                ok = public_key_from_protobuf(key_pb).verify(SIGNATURE_PREFIX + static, sig)
                err = None if ok and not self.lie else "bad Noise identity signature"
                self.take(self.c.verified(err, 0.0))

    def of(self, kind: int) -> list[Any]:
        return [v for k, _, v in self.events if k == kind]


def pump(a: Side, b: Side) -> None:
    for _ in range(50):
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.c.data_to_send()
            if data:
                moved = True
                dst.take(dst.c.receive_data(data, 0.0))
        if not moved:
            return
    raise AssertionError("never went quiet")


@pytest.mark.parametrize("protocol", ["/noise", "/tls/1.0.0"])
def test_upgrade_then_streams(protocol: str) -> None:
    kd, kl = generate_keypair(), generate_keypair()
    pd, pl = PeerId.from_public_key(kd.public_key()), PeerId.from_public_key(kl.public_key())
    d = Side(upgrading(kd, True, [protocol], expected=pl))
    lst = Side(upgrading(kl, False, ["/noise", "/tls/1.0.0"]))
    assert d.c.is_upgrading
    pump(d, lst)
    ((proto, peer, key_pb, early),) = d.of(conn.EV_SECURED)
    assert (proto, PeerId.from_bytes(peer), early) == (protocol, pl, "/yamux/1.0.0")
    assert public_key_from_protobuf(key_pb) == kl.public_key()
    assert PeerId.from_bytes(lst.of(conn.EV_SECURED)[0][1]) == pd
    assert lst.of(conn.EV_SECURITY) == [protocol]
    assert d.of(conn.EV_MUXER) == ["/yamux/1.0.0"]
    assert len(d.of(conn.EV_VERIFY)) == (protocol == "/noise")
    assert not d.c.is_upgrading and d.c.muxer == "/yamux/1.0.0"
    sid = d.c.open_stream()
    d.c.send(sid, b"hello", True)
    pump(d, lst)
    assert lst.of(conn.EV_DATA) == [b"hello"]


def test_verify_refusal_and_wrong_peer_are_typed() -> None:
    kd, kl = generate_keypair(), generate_keypair()
    d = Side(upgrading(kd, True, ["/noise"]))
    lst = Side(upgrading(kl, False, ["/noise"]), lie=True)
    with pytest.raises(HandshakeError, match="bad Noise identity signature"):
        pump(d, lst)
    assert lst.c.is_closed

    other = PeerId.from_public_key(generate_keypair().public_key())
    d = Side(upgrading(kd, True, ["/noise"], expected=other))
    lst = Side(upgrading(kl, False, ["/noise"]))
    with pytest.raises(PeerIdMismatch, match=f"dialed {other}, but the remote proved"):
        pump(d, lst)


def test_refused_dialer_and_early_eof() -> None:
    d = upgrading(generate_keypair(), True, ["/noise"])
    answer = encode_messages("/multistream/1.0.0", "na", "refused: connection limit")
    with pytest.raises(ConnectionRefusedByPeer, match="connection limit"):
        d.receive_data(answer, 0.0)

    lst = upgrading(generate_keypair(), False, ["/noise"])
    lst.receive_data(encode_messages("/multistream/1.0.0", "/noise") + b"\x00\x20abc", 0.0)
    with pytest.raises(HandshakeError, match="closed during the Noise handshake"):
        lst.receive_eof()


# ---- the asyncio driver: Noise and TLS upgrades run in Rust, plaintext in the fallback -------


async def _upgrade_pair(args: dict[str, Any]) -> tuple[Any, Any, PeerId]:
    """A TCP connection pair upgraded by two ``Upgrader``s built with ``args``."""
    import asyncio

    from rapidp2p._aio.connection import MuxedConnection
    from rapidp2p.host.upgrader import Upgrader
    from rapidp2p.peer import Multiaddr
    from rapidp2p.transport.tcp import TcpTransport

    kd, kl = generate_keypair(), generate_keypair()
    tr = TcpTransport()
    accepted: asyncio.Queue[MuxedConnection] = asyncio.Queue()
    listener = await tr.listen(
        Multiaddr("/ip4/127.0.0.1/tcp/0"), MuxedConnection, accepted.put_nowait
    )
    try:
        client = await tr.dial(listener.addrs[0], MuxedConnection)
        server = await asyncio.wait_for(accepted.get(), 5)
        pl = PeerId.from_public_key(kl.public_key())
        await asyncio.wait_for(
            asyncio.gather(
                Upgrader(kd, **args).upgrade_outbound(client, pl),
                Upgrader(kl, **args).upgrade_inbound(server),
            ),
            10,
        )
    finally:
        await listener.close()
    return client, server, pl


@pytest.mark.parametrize(
    ("args", "python_reads"),
    [
        ({"security_protocols": ["/noise"]}, False),
        ({"security_protocols": ["/tls/1.0.0"]}, False),
        ({"enable_plaintext": True, "security_protocols": ["/plaintext/2.0.0"]}, True),
    ],
    ids=["noise", "tls", "plaintext"],
)
async def test_driver_upgrades_noise_and_tls_in_rust(
    monkeypatch: pytest.MonkeyPatch, args: dict[str, Any], python_reads: bool
) -> None:
    """Noise and TLS never read through the raw phase (the Rust connection took every byte
    from the first); plaintext takes the Python fallback. Either way the connection carries
    streams and knows the remote."""
    import asyncio

    from rapidp2p._aio.raw import RawStream

    reads: list[int] = []
    orig_read, orig_exactly = RawStream.read, RawStream.readexactly

    async def read(self: RawStream, n: int = -1) -> bytes:
        reads.append(n)
        return await orig_read(self, n)

    async def readexactly(self: RawStream, n: int) -> bytes:
        reads.append(n)
        return await orig_exactly(self, n)

    monkeypatch.setattr(RawStream, "read", read)
    monkeypatch.setattr(RawStream, "readexactly", readexactly)
    client, server, pl = await _upgrade_pair(args)
    try:
        assert bool(reads) is python_reads
        assert client.remote_peer == pl and server.remote_peer == client.local_peer
        assert client.security == server.security == args["security_protocols"][0]
        assert client.muxer == server.muxer == "/yamux/1.0.0"
        got: asyncio.Queue[bytes] = asyncio.Queue()

        async def serve(st: Any) -> None:
            got.put_nowait(await st.read())
            await st.close()

        tasks: set[asyncio.Task[None]] = set()
        server.on_stream = lambda st: tasks.add(asyncio.ensure_future(serve(st)))
        st = await client.open_stream()
        st.write(b"x" * 100_000)
        await st.close()
        assert await asyncio.wait_for(got.get(), 5) == b"x" * 100_000
    finally:
        client.abort()
        server.abort()
