"""rapidp2p dials rapidp2p over WebTransport on loopback (issue 14): hosts that ping, echo
1 MiB and run 100 streams at once; a wrong ``/certhash`` (TLS refuses the certificate), a
server whose Noise handshake does not list the certificate it presented, and a wrong peer id
each end the dial with a typed error while the listener keeps serving."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os

import pytest

from rapidp2p import Host
from rapidp2p._aio.quic import QuicConnection
from rapidp2p.crypto import generate_keypair
from rapidp2p.exceptions import CertificateError, DialError, PeerIdMismatch, TransportError
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.echo import handle_echo
from rapidp2p.transport.webtransport import WebTransportListener, WebTransportTransport

WT_LISTEN = "/ip4/127.0.0.1/udp/0/quic-v1/webtransport"
MIB = 1 << 20


def _certhash(digest: bytes) -> str:
    """The ``/certhash`` text of a SHA-256 digest (multibase base64url, sha2-256 multihash)."""
    return "u" + base64.urlsafe_b64encode(b"\x12\x20" + digest).rstrip(b"=").decode()


def _with_hashes(addr: Multiaddr, hashes: list[str]) -> Multiaddr:
    head = str(addr).split("/certhash/", 1)[0]
    return Multiaddr(head + "".join(f"/certhash/{h}" for h in hashes))


async def _echo(host: Host, peer: PeerId, data: bytes) -> bytes:
    st = await host.new_stream(peer, ["/echo/1.0.0"])
    st.write(data)
    await st.close()
    return await asyncio.wait_for(st.read(), 30)


async def test_hosts_ping_echo_and_100_streams_over_webtransport() -> None:
    async with await Host.create(listen=[WT_LISTEN]) as server, Host() as client:
        server.set_stream_handler("/echo/1.0.0", handle_echo)
        (target,) = server.full_addrs
        conn = await client.connect(target)
        assert conn.muxer == "webtransport" and conn.security == "/noise"
        assert conn.remote_peer == server.peer_id
        assert "/webtransport" in str(conn.remote_addr)
        assert len(await client.ping(server.peer_id, count=3)) == 3

        payload = os.urandom(MIB)
        assert await _echo(client, server.peer_id, payload) == payload

        msgs = [os.urandom(64) + i.to_bytes(4, "big") for i in range(100)]
        got = await asyncio.gather(*(_echo(client, server.peer_id, m) for m in msgs))
        assert got == msgs
        # One connection carried everything: WebTransport streams are the libp2p streams.
        assert len(client.connections(server.peer_id)) == 1

        # The listener's side knows the dialer by the key Noise proved.
        (back,) = server.connections(client.peer_id)
        assert back.direction == "inbound" and back.muxer == "webtransport"
        # And it can open streams to the dialer (a server-initiated WebTransport stream).
        client.set_stream_handler("/echo/1.0.0", handle_echo)
        assert await _echo(server, client.peer_id, b"from the listener") == b"from the listener"


async def test_wrong_certhash_is_a_certificate_error_and_the_listener_survives() -> None:
    async with await Host.create(listen=[WT_LISTEN]) as server, Host() as client:
        (target,) = server.full_addrs
        wrong = _with_hashes(target, [_certhash(hashlib.sha256(b"another cert").digest())])
        transport = next(t for t in client.transports if isinstance(t, WebTransportTransport))
        with pytest.raises(CertificateError, match="certhash"):
            await asyncio.wait_for(transport.dial_secured(wrong, server.peer_id), 10)
        # Through the host: the dial fails with the certificate refusal as its reason.
        with pytest.raises(DialError) as info:
            await client.connect(Multiaddr(f"{wrong}/p2p/{server.peer_id}"))
        assert any(isinstance(e, CertificateError) for e in info.value.errors.values())
        # The listener serves the next, correct dial.
        assert len(await client.ping(target, count=1)) == 1


async def _listener(
    key_owner: WebTransportTransport,
) -> tuple[WebTransportListener, list[QuicConnection]]:
    accepted: list[QuicConnection] = []
    lst = await key_owner.listen_secured(Multiaddr(WT_LISTEN), None, accepted.append)
    return lst, accepted


async def test_noise_extensions_must_list_the_presented_certificate() -> None:
    """A server whose TLS certificate is the dialled one but whose Noise handshake does not
    list it (a man in the middle relaying Noise): the dialer aborts before message 3."""
    kb = generate_keypair()
    a, b = WebTransportTransport(generate_keypair()), WebTransportTransport(kb)
    lst, accepted = await _listener(b)
    try:
        (addr,) = lst.addrs
        lst.endpoint.certhashes = lambda: [b"\x12\x20" + bytes(32)]
        with pytest.raises(CertificateError, match="Noise extensions"):
            await asyncio.wait_for(a.dial_secured(addr, None), 10)
        assert accepted == []
        # Listing it again: the same listener accepts the next dial.
        lst.endpoint.certhashes = lst.certs.multihashes
        conn = await asyncio.wait_for(
            a.dial_secured(addr, PeerId.from_public_key(kb.public_key())), 10
        )
        assert conn.remote_peer == PeerId.from_public_key(kb.public_key())
        await asyncio.sleep(0)
        assert len(accepted) == 1
    finally:
        await a.close()
        await b.close()


async def test_dial_with_the_next_certhash_only_fails_until_rotation() -> None:
    """The address's hashes name the certificate a dial accepts: the next certificate's hash
    alone does not match the one presented now."""
    a, b = WebTransportTransport(generate_keypair()), WebTransportTransport(generate_keypair())
    lst, _accepted = await _listener(b)
    try:
        (addr,) = lst.addrs
        current, nxt = lst.certs.certhashes()
        with pytest.raises(CertificateError):
            await asyncio.wait_for(a.dial_secured(_with_hashes(addr, [nxt]), None), 10)
        conn = await asyncio.wait_for(a.dial_secured(_with_hashes(addr, [current]), None), 10)
        assert not conn.is_closed
    finally:
        await a.close()
        await b.close()


async def test_wrong_peer_id_is_refused_typed() -> None:
    a, b = WebTransportTransport(generate_keypair()), WebTransportTransport(generate_keypair())
    lst, accepted = await _listener(b)
    try:
        other = PeerId.from_public_key(generate_keypair().public_key())
        with pytest.raises(PeerIdMismatch):
            await asyncio.wait_for(a.dial_secured(lst.addrs[0], other), 10)
        assert accepted == []
    finally:
        await a.close()
        await b.close()


async def test_addresses_without_a_sha256_certhash_are_not_dialable() -> None:
    t = WebTransportTransport(generate_keypair())
    bare = Multiaddr("/ip4/127.0.0.1/udp/4001/quic-v1/webtransport")
    assert not t.can_dial(bare)
    assert not t.can_dial(
        Multiaddr(f"{bare}".replace("4001", "0") + "/certhash/" + _certhash(bytes(32)))
    )
    with pytest.raises(TransportError):
        await t.dial_secured(bare, None)
    await t.close()


async def test_an_address_learnt_before_a_rotation_still_dials() -> None:
    """After the listener rotates (the next certificate is presented), an address with the
    old pair of hashes still dials, and Noise lists the old certificate's hash too; the old
    certificate alone no longer matches what is presented."""
    a, b = WebTransportTransport(generate_keypair()), WebTransportTransport(generate_keypair())
    lst, _accepted = await _listener(b)
    try:
        (old,) = lst.addrs
        old_current, _old_next = lst.certs.certhashes()
        # What ``addrs`` does once the current certificate is an hour from expiry.
        assert lst.certs.rotate_if_due(lst.certs.current[2])
        der, key, _ = lst.certs.current
        lst.endpoint._ep.set_webtransport_certificate(der, key)
        assert len(lst.endpoint.certhashes()) == 3
        conn = await asyncio.wait_for(a.dial_secured(old, None), 10)
        assert not conn.is_closed
        with pytest.raises(CertificateError):
            await asyncio.wait_for(a.dial_secured(_with_hashes(old, [old_current]), None), 10)
    finally:
        await a.close()
        await b.close()
