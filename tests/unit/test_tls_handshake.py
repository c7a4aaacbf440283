"""libp2p TLS 1.3 (``/tls/1.0.0``): the handshake through the glue and the security channel, the
refusals with their typed errors (ROBUSTNESS 6-8 for TLS), and hosts talking over TLS with
every identity key type."""

from __future__ import annotations

import asyncio

import pytest

from rapidp2p import _core
from rapidp2p.crypto import KeyType, PrivateKey, generate_keypair
from rapidp2p.exceptions import (
    CertificateError,
    ConnectionClosedError,
    DecryptionError,
    HandshakeError,
    LocalProtocolError,
    PeerIdMismatch,
)
from rapidp2p.host import Host, HostConfig
from rapidp2p.peer import PeerId
from rapidp2p.protocols.echo import PROTOCOL_ID as ECHO
from rapidp2p.protocols.echo import handle_echo
from rapidp2p.protocols.memory import MemoryStream, memory_stream_pair
from rapidp2p.security.noise import SecureSession
from rapidp2p.security.tls import TLS_PROTOCOL_ID, TlsIdentity, tls_inbound, tls_outbound

MUXERS = ["/yamux/1.0.0"]


def _pid(key: PrivateKey) -> PeerId:
    return PeerId.from_public_key(key.public_key())


async def _read_record(stream: MemoryStream) -> bytes:
    header = await stream.readexactly(5)
    return header + await stream.readexactly(int.from_bytes(header[3:5], "big"))


def _drive(client: _core.conn.TlsHandshake, server: _core.conn.TlsHandshake) -> None:
    for _ in range(10):
        out = client.data_to_send()
        if out:
            server.receive(out)
        out = server.data_to_send()
        if out:
            client.receive(out)
        if client.is_finished and server.is_finished:
            return
    raise AssertionError("handshake did not finish")


# ---- the glue ---------------------------------------------------------------------------------


def test_glue_handshake_proves_both_peers_and_agrees_on_yamux() -> None:
    ka, kb = generate_keypair(), generate_keypair(KeyType.ECDSA)
    ia, ib = TlsIdentity(ka), TlsIdentity(kb)
    assert bytes(ia.identity.peer_id) == _pid(ka).to_bytes()
    client = _core.conn.TlsHandshake(ia.identity, True, _pid(kb).to_bytes(), MUXERS)
    server = _core.conn.TlsHandshake(ib.identity, False, None, MUXERS)
    assert not client.is_finished
    _drive(client, server)
    peer, key_pb, muxer = client.remote()
    assert bytes(peer) == _pid(kb).to_bytes()
    assert bytes(key_pb) == kb.public_key().to_protobuf()
    assert muxer == "/yamux/1.0.0"
    peer, _, muxer = server.remote()
    assert bytes(peer) == _pid(ka).to_bytes()
    assert muxer == "/yamux/1.0.0"


def test_glue_misuse_is_a_local_error() -> None:
    ck = _core.conn.TlsCertKey()
    key = generate_keypair()
    with pytest.raises(LocalProtocolError, match="identity signature"):
        ck.certify(key.public_key().to_protobuf(), key.sign(b"not the message"))
    ck = _core.conn.TlsCertKey()
    ident = ck.certify(key.public_key().to_protobuf(), key.sign(ck.message_to_sign))
    with pytest.raises(LocalProtocolError, match="already used"):
        ck.certify(b"", b"")
    hs = _core.conn.TlsHandshake(ident, True)
    with pytest.raises(LocalProtocolError, match="not finished"):
        hs.remote()
    with pytest.raises(LocalProtocolError, match="not finished"):
        _core.conn.Connection(hs, initiator=True)
    with pytest.raises(ValueError, match="dialer"):
        _core.conn.TlsHandshake(ident, False, b"x")


def test_connection_over_tls_records_and_tampering() -> None:
    ka, kb = generate_keypair(), generate_keypair()
    client = _core.conn.TlsHandshake(TlsIdentity(ka).identity, True, None, MUXERS)
    server = _core.conn.TlsHandshake(TlsIdentity(kb).identity, False, None, MUXERS)
    _drive(client, server)
    a = _core.conn.Connection(client, initiator=True)
    b = _core.conn.Connection(server, initiator=False)
    assert a.is_encrypted and b.is_encrypted
    sid = a.open_stream()
    payload = bytes(range(256)) * 1024
    sent = a.send(sid, payload, fin=True)
    wire = a.data_to_send()
    got = b""
    for i in range(0, len(wire), 7000):  # arbitrary splits: partial records wait
        for kind, _, value in b.receive_data(wire[i : i + 7000], 0.0):
            if kind == _core.conn.EV_DATA:
                assert isinstance(value, bytes)
                got += value
    assert got == payload[:sent]
    sid2 = a.open_stream()
    a.send(sid2, b"hello")
    bad = bytearray(a.data_to_send())
    bad[-1] ^= 1
    with pytest.raises(DecryptionError):
        b.receive_data(bytes(bad), 0.0)


# ---- the security channel over a byte stream ------------------------------------------------


async def _pair(
    ka: PrivateKey, kb: PrivateKey, expected: PeerId | None, mux_a: list[str], mux_b: list[str]
) -> tuple[SecureSession, SecureSession]:
    x, y = memory_stream_pair()
    out, inn = await asyncio.gather(
        tls_outbound(x, TlsIdentity(ka), expected, mux_a),
        tls_inbound(y, TlsIdentity(kb), mux_b),
    )
    return out, inn


async def test_channel_handshake_and_muxer_choice() -> None:
    ka, kb = generate_keypair(), generate_keypair()
    out, inn = await _pair(ka, kb, _pid(kb), MUXERS, MUXERS)
    assert out.remote_peer == _pid(kb) and inn.remote_peer == _pid(ka)
    assert out.early_muxer == inn.early_muxer == "/yamux/1.0.0"
    assert out.protocol == TLS_PROTOCOL_ID
    out, inn = await _pair(ka, kb, None, MUXERS, [])
    assert out.early_muxer is None and inn.early_muxer is None


async def test_8_wrong_peer_id_fails_the_dialer_with_peer_id_mismatch() -> None:
    ka, kb = generate_keypair(), generate_keypair()
    expected = _pid(generate_keypair())
    x, y = memory_stream_pair()
    listen = asyncio.ensure_future(tls_inbound(y, TlsIdentity(kb), MUXERS))
    with pytest.raises(PeerIdMismatch, match=str(_pid(kb))):
        await tls_outbound(x, TlsIdentity(ka), expected, MUXERS)
    x.close()
    with pytest.raises(HandshakeError):  # told by an alert, or by the closed stream
        await asyncio.wait_for(listen, 10)


@pytest.mark.parametrize("sent", [b"", b"\x16\x03", b"\x16\x03\x01\x00\x40" + bytes(10)])
async def test_6_truncated_handshake_records_fail(sent: bytes) -> None:
    a, b = memory_stream_pair()
    a.write(sent)
    a.close()
    with pytest.raises(HandshakeError, match="closed during"):
        await tls_inbound(b, TlsIdentity(generate_keypair()), MUXERS)


async def test_6_garbage_and_oversized_records_fail() -> None:
    a, b = memory_stream_pair()
    a.write(b"\x16\x03\x01\x00\x05hello")
    with pytest.raises(HandshakeError):
        await tls_inbound(b, TlsIdentity(generate_keypair()), MUXERS)
    a, b = memory_stream_pair()
    a.write(b"\x16\x03\x01\xff\xff")
    with pytest.raises(HandshakeError, match="bytes during the handshake"):
        await tls_inbound(b, TlsIdentity(generate_keypair()), MUXERS)


async def _hostile_client(identity: _core.conn.TlsIdentity) -> HandshakeError:
    """A client presenting ``identity``; returns the listener's error (and checks the client
    is told with an alert)."""
    server_key = generate_keypair()
    x, y = memory_stream_pair()
    listen = asyncio.ensure_future(tls_inbound(y, TlsIdentity(server_key), MUXERS))
    client = _core.conn.TlsHandshake(identity, True, _pid(server_key).to_bytes(), MUXERS)
    x.write(client.data_to_send())
    while not client.is_finished:
        client.receive(await _read_record(x))
    x.write(client.data_to_send())
    with pytest.raises(HandshakeError) as info:
        await asyncio.wait_for(listen, 10)
    with pytest.raises(HandshakeError, match="alert"):
        client.receive(await _read_record(x))
    return info.value


async def test_7_certificate_without_extension_is_refused() -> None:
    err = await _hostile_client(_core.conn.TlsCertKey()._certify_unchecked())
    assert isinstance(err, CertificateError)
    assert "lacks the libp2p public key extension" in str(err)


async def test_7_bad_identity_signature_is_refused() -> None:
    key = generate_keypair()
    ck = _core.conn.TlsCertKey()
    forged = ck._certify_unchecked(key.public_key().to_protobuf(), key.sign(b"something else"))
    err = await _hostile_client(forged)
    assert isinstance(err, CertificateError)
    assert "signature" in str(err)


async def test_7_undecodable_key_in_the_extension_is_refused() -> None:
    err = await _hostile_client(
        _core.conn.TlsCertKey()._certify_unchecked(b"\x08\x07\x12\x00", b"s")
    )
    assert isinstance(err, CertificateError)


# ---- hosts over TLS ---------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", list(KeyType), ids=lambda k: KeyType(k).name)
async def test_hosts_over_tls_with_every_key_type(key_type: KeyType) -> None:
    cfg = HostConfig(security_protocols=[TLS_PROTOCOL_ID])
    async with (
        await Host.create(generate_keypair(key_type), ["/ip4/127.0.0.1/tcp/0"], cfg) as server,
        Host(generate_keypair(key_type), cfg) as client,
    ):
        server.set_stream_handler(ECHO, handle_echo)
        await client.connect(server.full_addrs[0])
        (conn,) = client.connections(server.peer_id)
        assert conn.security == TLS_PROTOCOL_ID
        assert conn.remote_peer == server.peer_id
        assert conn.muxer == "/yamux/1.0.0"
        rtts = await client.ping(server.peer_id, 2)
        assert len(rtts) == 2
        data = bytes(range(256)) * 4096  # 1 MiB
        stream = await client.new_stream(server.peer_id, ECHO)
        stream.write(data)
        await stream.close()
        assert await stream.read() == data


async def test_default_listener_accepts_tls_and_noise_dialers() -> None:
    async with await Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) as server:
        for protocols in ([TLS_PROTOCOL_ID], ["/noise"], [TLS_PROTOCOL_ID, "/noise"], None):
            cfg = HostConfig(security_protocols=protocols)
            async with Host(config=cfg) as client:
                await client.connect(server.full_addrs[0])
                (conn,) = client.connections(server.peer_id)
                expected = "/noise" if protocols is None else protocols[0]
                assert conn.security == expected
                assert len(await client.ping(server.peer_id, 1)) == 1


async def test_tls_without_early_muxer_negotiates_yamux_inside() -> None:
    cfg = HostConfig(security_protocols=[TLS_PROTOCOL_ID], early_muxer_negotiation=False)
    async with (
        await Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) as server,
        Host(config=cfg) as client,
    ):
        server.set_stream_handler(ECHO, handle_echo)
        await client.connect(server.full_addrs[0])
        (conn,) = client.connections(server.peer_id)
        assert conn.security == TLS_PROTOCOL_ID and conn.muxer == "/yamux/1.0.0"
        stream = await client.new_stream(server.peer_id, ECHO)
        stream.write(b"inside")
        await stream.close()
        assert await stream.read() == b"inside"


def test_glue_checks_certificates_at_the_time_passed_in() -> None:
    # Our certificates are valid from 1975 to 4096: a handshake told it is 1970 (or the
    # year ~4188) refuses the peer's certificate, whatever this machine's clock says.
    ka, kb = generate_keypair(), generate_keypair()
    ia, ib = TlsIdentity(ka), TlsIdentity(kb)
    for now in (0, 70_000_000_000):
        client = _core.conn.TlsHandshake(ia.identity, True, _pid(kb).to_bytes(), MUXERS, now)
        server = _core.conn.TlsHandshake(ib.identity, False, None, MUXERS)
        with pytest.raises(CertificateError, match="not valid now"):
            _drive(client, server)
    client = _core.conn.TlsHandshake(ia.identity, True, _pid(kb).to_bytes(), MUXERS, 1_796_083_200)
    server = _core.conn.TlsHandshake(ib.identity, False, None, MUXERS, 1_796_083_200)
    _drive(client, server)
    assert bytes(client.remote()[0]) == _pid(kb).to_bytes()


@pytest.mark.parametrize("dialer_closes", [True, False])
async def test_closing_sends_close_notify_and_the_peer_ends_cleanly(dialer_closes: bool) -> None:
    cfg = HostConfig(security_protocols=[TLS_PROTOCOL_ID])
    async with (
        await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], config=cfg) as server,
        Host(config=cfg) as client,
    ):
        await client.connect(server.full_addrs[0])
        (dialer,) = client.connections(server.peer_id)
        for _ in range(2000):
            if server.connections(client.peer_id):
                break
            await asyncio.sleep(0.005)
        (listener,) = server.connections(client.peer_id)
        assert dialer.security == listener.security == TLS_PROTOCOL_ID
        closer, other = (dialer, listener) if dialer_closes else (listener, dialer)
        await closer.close()
        await asyncio.wait_for(other.wait_closed(), 10)
        # The peer saw our close_notify before the socket's end: an orderly close (a
        # ConnectionClosedError naming it), not a decryption or protocol error.
        reason = other.close_reason
        assert isinstance(reason, ConnectionClosedError), repr(reason)
        assert "close_notify" in str(reason), repr(reason)
