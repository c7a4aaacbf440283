"""``/webrtc`` without a browser: the ``/webrtc-signaling/0.0.1`` codec and its typed errors,
two rapidp2p hosts connecting over ``/webrtc`` through a rapidp2p relay (both roles of the
signalling, streams on the WebRTC connection), and bad signalling closing only its stream
(the browser peers are in tests/interop/test_browser_webrtc_relay.py)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import Libp2pError, SignalingError
from rapidp2p.host import Host
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.echo import handle_echo
from rapidp2p.protocols.framing import encode_delimited, read_delimited
from rapidp2p.protocols.webrtc_signaling import (
    MAX_MESSAGE_SIZE,
    SIGNALING_PROTOCOL,
    MessageType,
    SignalingMessage,
    candidate_message,
    parse_candidate,
)
from rapidp2p.relay import RelayService
from rapidp2p.transport import TcpTransport
from rapidp2p.transport.webrtc import WebRtcTransport, is_webrtc_addr, split_webrtc

TCP = "/ip4/127.0.0.1/tcp/0"
ECHO = "/echo/1.0.0"
PEER = "12D3KooWFVCKo3kWL4YcA6ACxRXk7VWENXGjrJE3UGeNkbrxsyhy"
RELAY = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"


def test_message_round_trip_and_js_form() -> None:
    offer = SignalingMessage(MessageType.SDP_OFFER, "v=0\r\n")
    # js-libp2p (protons) writes the zero enum too: type=0 then data.
    assert offer.encode() == b"\x08\x00\x12\x05v=0\r\n"
    assert SignalingMessage.decode(offer.encode()) == offer
    # proto3: an absent type is SDP_OFFER.
    assert SignalingMessage.decode(b"\x12\x01x") == SignalingMessage(MessageType.SDP_OFFER, "x")
    line = "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host"
    assert parse_candidate(SignalingMessage.decode(candidate_message(line).encode())) == line
    assert parse_candidate(candidate_message(None)) is None
    for end in ("", '""', '{"candidate": ""}', "null"):
        assert parse_candidate(SignalingMessage(MessageType.ICE_CANDIDATE, end)) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"\x08\x07",  # unknown type
        b"\x08",  # truncated varint
        b"\x12\x05ab",  # data past the end
        b"\x12\x02\xff\xfe",  # not UTF-8
    ],
)
def test_malformed_message_is_a_signaling_error(raw: bytes) -> None:
    with pytest.raises(SignalingError):
        SignalingMessage.decode(raw)


@pytest.mark.parametrize(
    "message",
    [
        SignalingMessage(MessageType.SDP_ANSWER, "{}"),
        SignalingMessage(MessageType.ICE_CANDIDATE, "{not json"),
        SignalingMessage(MessageType.ICE_CANDIDATE, "[1]"),
        SignalingMessage(MessageType.ICE_CANDIDATE, '{"candidate": 5}'),
    ],
)
def test_bad_candidate_is_a_signaling_error(message: SignalingMessage) -> None:
    with pytest.raises(SignalingError):
        parse_candidate(message)


def test_address_shapes() -> None:
    base = f"/ip4/127.0.0.1/tcp/1/ws/p2p/{RELAY}/p2p-circuit"
    assert split_webrtc(Multiaddr(f"{base}/webrtc/p2p/{PEER}")) == (
        Multiaddr(base),
        PeerId.from_string(PEER),
    )
    assert split_webrtc(Multiaddr(f"{base}/webrtc")) == (Multiaddr(base), None)
    for bad in [
        base,
        f"{base}/p2p/{PEER}",
        "/ip4/127.0.0.1/udp/1/webrtc-direct",
        f"/ip4/127.0.0.1/tcp/1/p2p-circuit/webrtc/p2p/{PEER}",  # no relay id
    ]:
        assert not is_webrtc_addr(bad), bad
    t = WebRtcTransport()
    assert t.can_dial(Multiaddr(f"{base}/webrtc/p2p/{PEER}"))
    assert t.can_dial(Multiaddr(f"{base}/webrtc"))  # the dialer passes the peer apart
    assert not t.can_listen(Multiaddr(f"{base}/webrtc/p2p/{PEER}"))
    assert t.can_listen(Multiaddr(f"{base}/webrtc"))


async def ends_unanswered(stream: Stream) -> None:
    """Reads until the remote resets (or closes) the stream; it must answer nothing."""
    with contextlib.suppress(Libp2pError):
        message = await read_delimited(stream, MAX_MESSAGE_SIZE)
        assert message is None, message
    assert stream.is_reset or stream.remote_closed


async def _three_hosts() -> tuple[Host, Host, Host]:
    relay = await Host.create(listen=[TCP])
    await relay.add_service(RelayService(relay))
    alice = await Host.create(transports=[TcpTransport(), WebRtcTransport()])
    bob = await Host.create(transports=[TcpTransport(), WebRtcTransport()])
    return relay, alice, bob


async def test_two_hosts_connect_over_webrtc_through_a_relay() -> None:
    relay, alice, bob = await _three_hosts()
    async with relay, alice, bob:
        alice.set_stream_handler(ECHO, handle_echo)
        bob.set_stream_handler(ECHO, handle_echo)
        addrs = await alice.listen(f"{relay.full_addrs[0]}/p2p-circuit/webrtc")
        assert addrs and all(str(a).endswith("/p2p-circuit/webrtc") for a in addrs), addrs
        target = Multiaddr(f"{addrs[0]}/p2p/{alice.peer_id}")

        conn = await bob.connect(target)
        assert conn.remote_peer == alice.peer_id
        assert not conn.limited, "the WebRTC connection is direct, not the relayed one"
        assert str(conn.remote_addr).endswith("/p2p-circuit/webrtc"), conn.remote_addr
        # Streams from bob go over the WebRTC connection (preferred over the circuit) ...
        stream = await bob.new_stream(alice.peer_id, ECHO, lazy=False)
        assert stream.conn is conn
        payload = b"over /webrtc" * 1000
        stream.write(payload)
        await stream.close()
        assert await stream.read() == payload
        # ... and alice, the answerer, has it too and opens streams on it.
        for _ in range(100):
            if alice.direct_connection(bob.peer_id) is not None:
                break
            await asyncio.sleep(0.02)
        back = alice.direct_connection(bob.peer_id)
        assert back is not None and str(back.remote_addr).endswith("/webrtc")
        stream = await alice.new_stream(bob.peer_id, ECHO, lazy=False)
        assert stream.conn is back
        stream.write(b"and back")
        await stream.close()
        assert await stream.read() == b"and back"


async def test_malformed_signalling_closes_only_its_stream() -> None:
    relay, alice, bob = await _three_hosts()
    async with relay, alice, bob:
        alice.set_stream_handler(ECHO, handle_echo)
        addrs = await alice.listen(f"{relay.full_addrs[0]}/p2p-circuit/webrtc")
        circuit = Multiaddr(f"{str(addrs[0]).removesuffix('/webrtc')}/p2p/{alice.peer_id}")
        transport = next(t for t in alice.transports if isinstance(t, WebRtcTransport))
        bad_inputs = [
            b"\x08\x07",  # unknown message type
            SignalingMessage(MessageType.SDP_ANSWER, "v=0").encode(),  # not an offer
            SignalingMessage(MessageType.SDP_OFFER, "not sdp").encode(),
        ]
        for i, body in enumerate(bad_inputs):
            stream = await bob.new_stream(circuit, SIGNALING_PROTOCOL, lazy=False)
            stream.write(encode_delimited(body))
            await ends_unanswered(stream)
            for _ in range(100):
                if len(transport.failures) > i:
                    break
                await asyncio.sleep(0.02)
            assert isinstance(transport.failures[-1], SignalingError), transport.failures
        # A frame over the cap: refused before its body is read.
        stream = await bob.new_stream(circuit, SIGNALING_PROTOCOL, lazy=False)
        stream.write(encode_delimited(b"\x12" + b"x" * (MAX_MESSAGE_SIZE + 10)))
        await ends_unanswered(stream)
        # The relayed connection survived all of it, and a real /webrtc dial still works
        # (after it: `connect` returns a live connection, the relayed one included).
        assert bob.is_connected(alice.peer_id)
        await bob.disconnect(alice.peer_id)
        conn = await bob.connect(Multiaddr(f"{addrs[0]}/p2p/{alice.peer_id}"))
        assert not conn.limited
        assert len(await bob.ping(alice.peer_id, 1)) == 1


async def test_signalling_times_out() -> None:
    relay, alice, bob = await _three_hosts()
    async with relay, alice, bob:
        transport = next(t for t in alice.transports if isinstance(t, WebRtcTransport))
        transport.signaling_timeout = 0.3
        addrs = await alice.listen(f"{relay.full_addrs[0]}/p2p-circuit/webrtc")
        circuit = Multiaddr(f"{str(addrs[0]).removesuffix('/webrtc')}/p2p/{alice.peer_id}")
        stream = await bob.new_stream(circuit, SIGNALING_PROTOCOL, lazy=False)
        # Silence: alice gives up and resets the stream.
        await ends_unanswered(stream)
        assert isinstance(transport.failures[-1], SignalingError)
        assert "timed out" in str(transport.failures[-1])
        assert bob.is_connected(alice.peer_id)
