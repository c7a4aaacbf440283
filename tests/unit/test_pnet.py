"""Private networks (libp2p pnet, PSK v1): key files, the protector, and hosts in and out of
a network (TCP and memory, early muxer negotiation and the in-Noise preamble path)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from rapidp2p import _core
from rapidp2p.exceptions import (
    LocalProtocolError,
    PrivateNetworkError,
    PrivateNetworkRequiredError,
    SwarmKeyError,
    TransportError,
)
from rapidp2p.host import Host, HostConfig
from rapidp2p.pnet import FORCE_PNET_ENV, PreSharedKey, RawProtector, as_psk, check_addr
from rapidp2p.protocols.echo import PROTOCOL_ID as ECHO
from rapidp2p.protocols.echo import handle_echo

KEY_HEX = "a7aedf6d1c3b3ba5b4e4a0e2b1e4dd95b08f5b4a52d3e6b1e7e0f5d37bd3f3e1"
KUBO_FILE = f"/key/swarm/psk/1.0.0/\n/base16/\n{KEY_HEX}\n".encode()
TCP = "/ip4/127.0.0.1/tcp/0"


# ---- key files -----------------------------------------------------------------------------


def test_kubo_swarm_key_round_trips(tmp_path: Path) -> None:
    psk = PreSharedKey.parse(KUBO_FILE)
    assert psk.key == bytes.fromhex(KEY_HEX)
    assert psk.to_file().encode() == KUBO_FILE
    path = tmp_path / "swarm.key"
    psk.write(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert PreSharedKey.from_file(path) == psk
    assert as_psk(path) == as_psk(str(path)) == as_psk(KUBO_FILE) == as_psk(psk.key) == psk
    assert KEY_HEX not in repr(psk)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "/key/swarm/psk/1.0.0/"),
        (b"/key/swarm/psk/2.0.0/\n/base16/\n" + KEY_HEX.encode(), "/key/swarm/psk/1.0.0/"),
        (b"/key/swarm/psk/1.0.0/\n/base58/\nabc\n", "unknown encoding"),
        (b"/key/swarm/psk/1.0.0/\n/base16/\n" + KEY_HEX[:40].encode(), "shorter"),
        (b"/key/swarm/psk/1.0.0/\n/base16/\n" + b"zz" * 32, "not hexadecimal"),
        (b"/key/swarm/psk/1.0.0/\n/bin/\nshort", "shorter"),
    ],
)
def test_bad_key_files_are_refused(tmp_path: Path, data: bytes, needle: str) -> None:
    path = tmp_path / "swarm.key"
    path.write_bytes(data)
    with pytest.raises(SwarmKeyError, match=needle):
        PreSharedKey.from_file(path)
    with pytest.raises(SwarmKeyError):
        Host(config=HostConfig(psk=path))


def test_raw_key_must_be_32_bytes() -> None:
    with pytest.raises(SwarmKeyError):
        PreSharedKey(b"\x00" * 31)


# ---- the protector -------------------------------------------------------------------------


def test_protector_known_answer() -> None:
    """XSalsa20 vector of Go's golang.org/x/crypto/salsa20 tests (an independent cipher)."""
    p = _core.conn.Protector(b"this is 32-byte key for xsalsa20", b"24-byte nonce for xsalsa")
    assert p.local_nonce == b"24-byte nonce for xsalsa"
    assert p.encrypt(b"Hello world!").hex() == "002d4513843fc240c401e541"


def test_protectors_pair_up_and_reject_foreign_bytes() -> None:
    psk = PreSharedKey.generate()
    a, b = RawProtector(psk), RawProtector(psk)
    assert a.local_nonce != b.local_nonce  # from the OS RNG
    wire = a.local_nonce + a.encrypt(b"\x13/multistream/1.0.0\n\x07/noise\n")
    # Any split of the wire, the nonce included, gives the same plaintext.
    got = b"".join(b.decrypt(wire[i : i + 5]) for i in range(0, len(wire), 5))
    assert got == b"\x13/multistream/1.0.0\n\x07/noise\n"

    stranger = RawProtector(PreSharedKey.generate())
    with pytest.raises(PrivateNetworkError, match="PSK mismatch"):
        stranger.decrypt(wire)
    plain_peer = RawProtector(psk)
    with pytest.raises(PrivateNetworkError, match="does not use a PSK"):
        plain_peer.decrypt(b"\x13/multistream/1.0.0\n\x07/noise\n\x00\x20" + b"x" * 32)


def test_truncated_nonce_is_diagnosed() -> None:
    p = RawProtector(PreSharedKey.generate())
    assert p.decrypt(os.urandom(10)) == b""
    err = p.diagnose()
    assert isinstance(err, PrivateNetworkError)
    assert "10 of the 24 bytes" in str(err)


def test_a_moved_protector_refuses_to_encrypt() -> None:
    psk = PreSharedKey.generate()
    p = _core.conn.Protector(psk.key)
    conn = _core.conn.Connection(None, initiator=True)
    with pytest.raises(LocalProtocolError, match="nonce has not arrived"):
        conn.set_protector(p)
    p.decrypt(os.urandom(24))
    conn.set_protector(p)
    assert conn.is_protected and p.moved
    with pytest.raises(LocalProtocolError, match="moved"):
        p.encrypt(b"would leak")


def test_connection_covers_every_byte_in_both_directions() -> None:
    """Two plaintext-yamux connections with protectors: the wire is not the plaintext, and
    reads split anywhere (partial frames carried inside the connection) still decode."""
    psk = PreSharedKey.generate()
    pa, pb = _core.conn.Protector(psk.key), _core.conn.Protector(psk.key)
    pa.decrypt(pb.local_nonce)
    pb.decrypt(pa.local_nonce)
    a = _core.conn.Connection(None, initiator=True, keepalive_interval=None)
    b = _core.conn.Connection(None, initiator=False, keepalive_interval=None)
    a.set_protector(pa)
    b.set_protector(pb)
    sid = a.open_stream()
    payload = os.urandom(200_000)
    sent = 0
    received = bytearray()
    for _ in range(200):
        if sent < len(payload):
            sent += a.send(sid, payload, False, sent, None)
        wire = a.data_to_send()
        assert payload[:64] not in wire
        buf = bytearray(7_001)
        for i in range(0, len(wire), 7_001):  # uneven reads into one reused buffer
            piece = wire[i : i + 7_001]
            buf[: len(piece)] = piece
            events = b.receive_into(buf, len(piece), 0.0)
            for kind, _sid, value in events:
                if kind == _core.conn.EV_DATA:
                    received += value
                    b.ack(_sid, len(value))
        back = b.data_to_send()
        if back:
            a.receive_data(back, 0.0)
        if len(received) == len(payload):
            break
    assert bytes(received) == payload


# ---- hosts ---------------------------------------------------------------------------------


def _capture_inbound(host: Host) -> list[Any]:
    """The raw connections a host accepts (to read why they closed); call before listen."""
    made: list[Any] = []
    factory = host._new_protocol

    def wrapped() -> Any:
        mux = factory()
        made.append(mux)
        return mux

    host._new_protocol = wrapped  # type: ignore[method-assign]
    return made


async def _echo(host: Host, peer: Any, size: int) -> bool:
    stream = await host.new_stream(peer, ECHO)
    data = os.urandom(size)
    got = hashlib.sha256()

    async def reader() -> int:
        n = 0
        async for chunk in stream:
            got.update(chunk)
            n += len(chunk)
        return n

    task = asyncio.ensure_future(reader())
    stream.write(data)
    await stream.drain()
    await stream.close()
    n = await asyncio.wait_for(task, 60)
    return n == size and got.digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("addr", [TCP, "/memory/0"])
@pytest.mark.parametrize("early_muxer", [True, False])
async def test_same_key_hosts_ping_identify_echo(addr: str, early_muxer: bool) -> None:
    psk = PreSharedKey.generate()
    cfg = HostConfig(psk=psk, early_muxer_negotiation=early_muxer)
    async with (
        await Host.create(listen=[addr], config=cfg) as server,
        Host(config=HostConfig(psk=psk.key)) as client,
    ):
        server.set_stream_handler(ECHO, handle_echo)
        conn = await client.connect(server.full_addrs[0])
        assert conn.remote_peer == server.peer_id
        assert conn._conn.is_protected
        assert len(await client.ping(server.peer_id, 2)) == 2
        info = await client.identify.identify_peer(conn)
        assert info.peer_id == server.peer_id
        assert await _echo(client, server.peer_id, 3 << 20)


@pytest.mark.parametrize("client_psk", [None, "other"])
async def test_outsiders_are_refused_with_a_typed_error(client_psk: str | None) -> None:
    psk = PreSharedKey.generate()
    other = PreSharedKey.generate() if client_psk else None
    async with Host(config=HostConfig(psk=psk)) as server:
        accepted = _capture_inbound(server)
        await server.listen(TCP)
        async with Host(config=HostConfig(psk=other, upgrade_timeout=5)) as client:
            with pytest.raises(Exception) as info:
                await client.connect(server.full_addrs[0])
            if other is not None:
                # Our own dial fails with the typed error (wrapped by the dial).
                assert "not in our private network" in str(info.value)
        for _ in range(200):
            if accepted and accepted[0].is_closed:
                break
            await asyncio.sleep(0.02)
        assert accepted and isinstance(accepted[0].close_reason, PrivateNetworkError)
        assert not server.connections()


async def test_a_member_dialing_a_public_host_gets_a_typed_error() -> None:
    async with (
        await Host.create(listen=[TCP]) as public,
        Host(config=HostConfig(psk=PreSharedKey.generate(), upgrade_timeout=5)) as member,
    ):
        with pytest.raises(Exception) as info:
            await member.connect(public.full_addrs[0])
        errors = getattr(info.value, "errors", {}) or {"": info.value}
        assert all(isinstance(e, PrivateNetworkError) for e in errors.values()), errors


async def test_truncated_nonce_from_a_raw_socket() -> None:
    """A remote that sends part of a nonce and closes: PrivateNetworkError, host unaffected."""
    psk = PreSharedKey.generate()
    async with Host(config=HostConfig(psk=psk)) as server:
        accepted = _capture_inbound(server)
        await server.listen(TCP)
        port = int(server.addrs[0].value_for_protocol("tcp"))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(os.urandom(10))
        await writer.drain()
        writer.close()
        await reader.read()  # our nonce (24 bytes) and the server's close
        for _ in range(200):
            if accepted and accepted[0].is_closed:
                break
            await asyncio.sleep(0.02)
        assert isinstance(accepted[0].close_reason, PrivateNetworkError)
        assert "10 of the 24 bytes" in str(accepted[0].close_reason)
        # The host still serves members.
        async with Host(config=HostConfig(psk=psk)) as client:
            await client.connect(server.full_addrs[0])


def test_force_pnet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FORCE_PNET_ENV, "1")
    with pytest.raises(PrivateNetworkRequiredError, match="LIBP2P_FORCE_PNET"):
        Host()
    Host(config=HostConfig(psk=PreSharedKey.generate()))


def test_transports_that_cannot_carry_a_psk_are_refused() -> None:
    class QuicLike:
        def can_dial(self, addr: Any) -> bool:
            return "quic-v1" in str(addr)

        def can_listen(self, addr: Any) -> bool:
            return self.can_dial(addr)

    with pytest.raises(TransportError, match="QuicLike cannot carry a private network"):
        Host(config=HostConfig(psk=PreSharedKey.generate()), transports=[QuicLike()])  # type: ignore[list-item]
    Host(transports=[QuicLike()])  # type: ignore[list-item]  # fine without a PSK
    for addr in ("/ip4/127.0.0.1/udp/1/quic-v1", "/ip4/127.0.0.1/udp/1/quic-v1/webtransport"):
        with pytest.raises(TransportError, match="cannot carry a PSK"):
            check_addr(addr)
    check_addr("/ip4/127.0.0.1/tcp/1")


async def test_listening_on_quic_with_a_psk_is_refused() -> None:
    async with Host(config=HostConfig(psk=PreSharedKey.generate())) as host:
        with pytest.raises(TransportError, match="private network"):
            await host.listen("/ip4/127.0.0.1/udp/0/quic-v1")


class _FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


async def test_bytes_received_before_protect_are_decrypted() -> None:
    """A listener's upgrade starts in a task: the dialer's first bytes may already be there
    when the protector is installed; they must be decrypted, not passed on raw."""
    from rapidp2p._aio.connection import MuxedConnection

    psk = PreSharedKey.generate()
    remote = RawProtector(psk)
    mux = MuxedConnection()
    tr = _FakeTransport()
    mux.connection_made(tr)  # type: ignore[arg-type]
    mux.data_received(remote.local_nonce + remote.encrypt(b"\x13/multistream/1.0.0\n"))
    mine = RawProtector(psk)
    mux.raw_stream().protect(mine)
    assert tr.written == [mine.local_nonce]
    assert await mux.raw_stream().readexactly(20) == b"\x13/multistream/1.0.0\n"
    mux.raw_stream().write(b"hello")
    assert remote.core.decrypt(tr.written[0] + tr.written[1]) == b"hello"


def test_nonce_then_silence_is_diagnosed_as_a_mismatch() -> None:
    """rust-libp2p with another key sends its nonce and waits: our timeout names the key."""
    p = RawProtector(PreSharedKey.generate())
    assert p.decrypt(os.urandom(24)) == b""
    for timed_out, how in ((True, "until our upgrade timed out"), (False, "gave up")):
        err = p.diagnose(timed_out=timed_out)
        assert isinstance(err, PrivateNetworkError)
        assert "PSK mismatch" in str(err) and how in str(err)


async def test_private_network_under_tls() -> None:
    """The protector sits under any security protocol: TLS 1.3 handshake and records too."""
    psk = PreSharedKey.generate()
    cfg = HostConfig(psk=psk, security_protocols=["/tls/1.0.0"])
    async with (
        await Host.create(listen=[TCP], config=cfg) as server,
        Host(config=HostConfig(psk=psk, security_protocols=["/tls/1.0.0"])) as client,
    ):
        server.set_stream_handler(ECHO, handle_echo)
        conn = await client.connect(server.full_addrs[0])
        assert conn.security == "/tls/1.0.0"
        assert conn._conn.is_protected
        assert await _echo(client, server.peer_id, 1 << 20)
