"""WebRTC-direct listener without a browser: multiaddr shapes, the certificate and its
certhash, demultiplexing of unknown senders, and the handshake deadline (the real dialler,
Chromium's js-libp2p, is in tests/interop/test_browser_webrtc_direct.py)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from rapidp2p import _core
from rapidp2p.crypto import generate_keypair
from rapidp2p.exceptions import HandshakeTimeout, Libp2pError, TransportError
from rapidp2p.host import Host
from rapidp2p.peer import Multiaddr
from rapidp2p.security.noise import NoiseIdentity
from rapidp2p.transport.webrtc_direct import WebRtcDirectTransport, is_webrtc_direct_addr

LISTEN = "/ip4/127.0.0.1/udp/0/webrtc-direct"
UFRAG = "libp2p+webrtc+v1/abcdefghijklmnop"


def binding_request(username: str) -> bytes:
    user = username.encode()
    attr = (6).to_bytes(2, "big") + len(user).to_bytes(2, "big") + user
    attr += b"\0" * (-len(attr) % 4)
    return b"\x00\x01" + len(attr).to_bytes(2, "big") + b"\x21\x12\xa4\x42" + b"\7" * 12 + attr


def endpoint(timeout: float = 10.0) -> _core.webrtc.Endpoint:
    der, key = _core.webrtc.new_certificate()
    ident = NoiseIdentity(generate_keypair())
    return _core.webrtc.Endpoint(
        "127.0.0.1",
        9,
        der,
        key,
        ident.static_secret,
        ident.payload([]),
        0.0,
        handshake_timeout=timeout,
    )


def test_multiaddr_shapes() -> None:
    ok = [
        "/ip4/127.0.0.1/udp/1/webrtc-direct",
        "/ip6/::1/udp/1/webrtc-direct",
        "/ip4/127.0.0.1/udp/1/webrtc-direct/certhash/uEiC" + "A" * 43,
        "/ip4/127.0.0.1/udp/1/webrtc-direct/certhash/uEiC"
        + "A" * 43
        + "/p2p/12D3KooWFVCKo3kWL4YcA6ACxRXk7VWENXGjrJE3UGeNkbrxsyhy",
    ]
    for a in ok:
        assert is_webrtc_direct_addr(Multiaddr(a)), a
    for a in [
        "/ip4/127.0.0.1/udp/1/quic-v1",
        "/ip4/127.0.0.1/tcp/1/webrtc-direct",
        "/ip4/127.0.0.1/udp/1/webrtc-direct/ws",
        "/ip4/127.0.0.1/udp/1/webrtc",
    ]:
        assert not is_webrtc_direct_addr(Multiaddr(a)), a
    # A certhash that is not a multibase multihash never becomes a multiaddr.
    with pytest.raises(Libp2pError):
        Multiaddr("/ip4/127.0.0.1/udp/1/webrtc-direct/certhash/not-a-multihash!")


def test_certhash_is_the_certificate_fingerprint() -> None:
    import base64
    import hashlib

    der, _key = _core.webrtc.new_certificate()
    h = _core.webrtc.certificate_certhash(der)
    assert h.startswith("u")
    raw = base64.urlsafe_b64decode(h[1:] + "=" * (-len(h[1:]) % 4))
    assert raw == b"\x12\x20" + hashlib.sha256(der).digest()


def test_garbage_and_foreign_stun_make_no_connection() -> None:
    ep = endpoint()
    for junk in [b"", b"\x16" * 80, b"\x00" * 19, binding_request("a:b"), b"\xff" * 1500]:
        assert ep.receive_datagram(junk, "127.0.0.1", 5000, 0.1) == []
    assert ep.connection_count == 0
    assert ep.stats[3] == 5
    assert ep.datagrams_to_send() == []
    ep.receive_datagram(binding_request(f"{UFRAG}:{UFRAG}"), "127.0.0.1", 5000, 0.2)
    assert ep.connection_count == 1


def test_silent_dialler_times_out_with_handshake_timeout() -> None:
    ep = endpoint(timeout=2.0)
    ep.receive_datagram(binding_request(f"{UFRAG}:{UFRAG}"), "127.0.0.1", 5001, 1.0)
    assert ep.connection_count == 1
    now, events = 1.0, []
    while not events and now < 10.0:
        at = ep.next_timer()
        now = max(now + 0.001, at if at is not None else now + 0.5)
        events = [e for e in ep.handle_timer(now) if e[0] == _core.webrtc.EV_CLOSED]
    assert ep.connection_count == 0
    assert 3.0 + 0.5 > now >= 3.0
    (_kind, _cid, _sid, err) = events[0]
    assert isinstance(err, HandshakeTimeout)
    assert isinstance(err, TimeoutError)


async def test_host_listens_with_one_persistent_certificate(tmp_path: Path) -> None:
    path = tmp_path / "webrtc.cert"
    t = WebRtcDirectTransport(certificate_path=path)
    async with await Host.create(transports=[t], listen=[LISTEN, LISTEN]) as host:
        addrs = [str(a) for a in host.full_addrs]
        assert len(addrs) == 2
        for a in addrs:
            assert a.startswith("/ip4/127.0.0.1/udp/")
            assert f"/webrtc-direct/certhash/{t.certhash}/p2p/{host.peer_id}" in a, a
    # Reloaded from the file: the same certhash (advertised addresses stay valid).
    again = WebRtcDirectTransport(certificate_path=path)
    assert again.certhash == t.certhash
    assert WebRtcDirectTransport().certhash != t.certhash
    bad = tmp_path / "bad.cert"
    bad.write_bytes(b"nonsense")
    with pytest.raises(TransportError):
        _ = WebRtcDirectTransport(certificate_path=bad).certhash


async def test_silent_dialler_on_a_socket_is_dropped_and_listener_survives() -> None:
    from rapidp2p._aio.webrtc import WebRtcSettings
    from rapidp2p.transport.webrtc_direct import WebRtcDirectListener

    t = WebRtcDirectTransport(generate_keypair(), WebRtcSettings(handshake_timeout=0.5))
    lst = await t.listen_secured(Multiaddr(LISTEN), None, lambda c: None)
    assert isinstance(lst, WebRtcDirectListener)
    ep = lst.endpoint
    port = ep.local_port
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, remote_addr=("127.0.0.1", port)
    )
    try:
        transport.sendto(b"garbage")
        transport.sendto(binding_request(f"{UFRAG}:{UFRAG}"))
        for _ in range(200):
            if ep.failures:
                break
            await asyncio.sleep(0.05)
        assert ep.failures, ep.stats
        assert isinstance(ep.failures[0], HandshakeTimeout)
        assert ep.rtc_connections == 0
        assert ep.stats[3] >= 1  # the garbage was dropped
        assert not ep.is_closed
    finally:
        transport.close()
        await t.close()


async def test_cli_listen_prints_a_webrtc_direct_address() -> None:
    cli = [sys.executable, "-m", "rapidp2p.cli"]
    listener = await asyncio.create_subprocess_exec(
        *cli,
        "listen",
        "--json",
        "--listen",
        LISTEN,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert listener.stdout is not None
        record = json.loads(await asyncio.wait_for(listener.stdout.readline(), 60))
        (addr,) = record["addrs"]
        assert addr.startswith("/ip4/127.0.0.1/udp/"), addr
        assert "/webrtc-direct/certhash/uEi" in addr, addr
        assert addr.endswith(f"/p2p/{record['peer_id']}"), record
    finally:
        listener.terminate()
        await listener.wait()
