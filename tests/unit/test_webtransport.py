"""The WebTransport listener's addresses and certificates (the HTTP/3 codec is tested by
``cargo test -p rapidp2p-webtransport``, dialling in ``test_webtransport_dial.py``, the
browser's path by headless Chromium in ``tests/interop/test_browser_webtransport.py``)."""

from __future__ import annotations

import base64
import hashlib
import time

from rapidp2p import _core
from rapidp2p.host import Host
from rapidp2p.peer import Multiaddr
from rapidp2p.transport.quic import is_quic_addr
from rapidp2p.transport.webtransport import (
    CERT_OVERLAP,
    CERT_VALIDITY,
    CertificateManager,
    WebTransportTransport,
    is_webtransport_addr,
)


def _digest(certhash: str) -> bytes:
    raw = base64.urlsafe_b64decode(certhash[1:] + "=" * (-len(certhash[1:]) % 4))
    assert raw[:2] == b"\x12\x20"  # sha2-256, 32 bytes
    return raw[2:]


def test_address_shapes() -> None:
    ok = "/ip4/127.0.0.1/udp/4001/quic-v1/webtransport"
    assert is_webtransport_addr(Multiaddr(ok))
    assert is_webtransport_addr(Multiaddr("/ip6/::1/udp/1/quic-v1/webtransport"))
    hashed = (
        f"{ok}/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g"
        "/p2p/12D3KooWFVCKo3kWL4YcA6ACxRXk7VWENXGjrJE3UGeNkbrxsyhy"
    )
    assert is_webtransport_addr(Multiaddr(hashed))
    assert not is_webtransport_addr(Multiaddr("/ip4/127.0.0.1/udp/4001/quic-v1"))
    assert not is_webtransport_addr(Multiaddr("/ip4/127.0.0.1/tcp/4001/ws"))
    # QUIC does not take WebTransport addresses; WebTransport dials those with a /certhash.
    assert not is_quic_addr(Multiaddr(ok))
    assert WebTransportTransport().can_dial(Multiaddr(hashed))
    assert not WebTransportTransport().can_dial(Multiaddr(ok))


def test_certificates_and_rotation() -> None:
    now = time.time()
    certs = CertificateManager(now)
    der, _key, not_after = certs.current
    # 14 days from an hour ago; the next one starts an hour before the current one ends.
    assert not_after - int(now) == CERT_VALIDITY - CERT_OVERLAP
    assert certs.next[2] == not_after - CERT_OVERLAP + CERT_VALIDITY
    hashes = certs.certhashes()
    assert len(hashes) == 2 and hashes[0] != hashes[1]
    assert _digest(hashes[0]) == hashlib.sha256(der).digest()
    assert certs.multihashes()[0] == b"\x12\x20" + hashlib.sha256(der).digest()
    assert not certs.rotate_if_due(now + 10 * 24 * 3600)
    assert certs.certhashes() == hashes
    # An hour before expiry the next certificate takes over and a new next one is made.
    assert certs.rotate_if_due(not_after - CERT_OVERLAP)
    rotated = certs.certhashes()
    assert rotated[0] == hashes[1] and rotated[1] not in hashes
    # Noise lists the certificate presented before the rotation too (current, next, old).
    listed = certs.multihashes()
    assert len(listed) == 3 and listed[2] == b"\x12\x20" + hashlib.sha256(der).digest()


def test_certificate_validity_capped() -> None:
    der, _key = _core.quic.new_webtransport_certificate(1_700_000_000, 365 * 24 * 3600)
    other, _ = _core.quic.new_webtransport_certificate(1_700_000_000, 3600)
    assert der != other
    assert bytes(_core.quic.webtransport_certhash(der))[:2] == b"\x12\x20"


async def test_host_listens_on_webtransport() -> None:
    async with await Host.create(listen=["/ip4/127.0.0.1/udp/0/quic-v1/webtransport"]) as host:
        (addr,) = host.full_addrs
        text = str(addr)
        assert text.startswith("/ip4/127.0.0.1/udp/") and "/quic-v1/webtransport/" in text
        assert text.count("/certhash/u") == 2 and text.endswith(f"/p2p/{host.peer_id}")
        assert is_webtransport_addr(addr)
        assert not text.startswith("/ip4/127.0.0.1/udp/0/")


async def test_session_without_noise_ends_with_handshake_error() -> None:
    """A session whose client never opens the Noise stream: the connection ends at the
    handshake timeout with a typed HandshakeError, and the host never sees it."""
    import asyncio
    import socket

    from rapidp2p._aio.quic import QuicConnection, QuicSettings
    from rapidp2p._aio.webtransport import WebTransportEndpoint
    from rapidp2p.crypto import generate_keypair
    from rapidp2p.exceptions import HandshakeError
    from rapidp2p.security.noise import NoiseIdentity
    from rapidp2p.security.tls import TlsIdentity

    key = generate_keypair()
    certs = CertificateManager()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    accepted: list[QuicConnection] = []
    ep = WebTransportEndpoint(
        sock,
        TlsIdentity(key),
        listen=True,
        settings=QuicSettings(handshake_timeout=0.2),
        on_connection=accepted.append,
        webtransport=certs.current[:2],
        noise=NoiseIdentity(key),
        certhashes=certs.multihashes,
    )
    try:
        # What Rust reports once a CONNECT was accepted (connection id 7, unknown to quinn).
        ep._session(7, ("127.0.0.1", 4242, True, None))
        conn = ep._conns[7]
        assert str(conn.remote_addr) == "/ip4/127.0.0.1/udp/4242/quic-v1/webtransport"
        await asyncio.wait_for(conn.wait_closed(), 10)
        assert isinstance(conn.close_reason, HandshakeError)
        assert "did not finish" in str(conn.close_reason)
        assert accepted == []
    finally:
        ep.close()
        sock.close()
