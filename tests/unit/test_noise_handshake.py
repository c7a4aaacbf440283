"""NoiseHandshake: the three XX messages through the Python glue, and every misuse it refuses."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from rapidp2p import _core
from rapidp2p.exceptions import HandshakeError


def _pair(
    i_secret: bytes | None = None, r_secret: bytes | None = None
) -> tuple[_core.conn.NoiseHandshake, _core.conn.NoiseHandshake]:
    return _core.conn.NoiseHandshake(True, i_secret), _core.conn.NoiseHandshake(False, r_secret)


def _run(i: _core.conn.NoiseHandshake, r: _core.conn.NoiseHandshake) -> list[bytes]:
    payloads = []
    payloads.append(r.read_message(i.write_message(b"")))
    payloads.append(i.read_message(r.write_message(b"from responder")))
    payloads.append(r.read_message(i.write_message(b"from initiator")))
    return payloads


def test_handshake_exchanges_payloads_and_static_keys() -> None:
    i, r = _pair()
    assert i.is_initiator and not r.is_initiator
    assert i.is_my_turn and not r.is_my_turn
    assert i.remote_static_public is None
    assert _run(i, r) == [b"", b"from responder", b"from initiator"]
    assert i.is_finished and r.is_finished
    assert i.remote_static_public == r.local_static_public
    assert r.remote_static_public == i.local_static_public
    assert i.handshake_hash == r.handshake_hash
    assert len(i.handshake_hash) == 32


def test_static_public_matches_an_independent_x25519() -> None:
    secret = bytes(range(32))
    expected = (
        X25519PrivateKey.from_private_bytes(secret)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    assert _core.conn.NoiseHandshake(True, secret).local_static_public == expected


def test_message_lengths_follow_the_xx_pattern() -> None:
    i, r = _pair()
    m1 = i.write_message(b"")
    assert len(m1) == 32  # e in clear, empty payload without a key adds nothing
    r.read_message(m1)
    m2 = r.write_message(b"abc")
    assert len(m2) == 32 + 48 + 3 + 16  # e, encrypted s, encrypted payload
    i.read_message(m2)
    assert len(i.write_message(b"")) == 48 + 16


def test_into_transport_spends_the_handshake() -> None:
    i, r = _pair()
    with pytest.raises(HandshakeError, match="not finished"):
        i.into_transport()
    _run(i, r)
    ti = i.into_transport()
    assert ti.handshake_hash == r.handshake_hash
    assert ti.remote_static_public == r.local_static_public
    assert i.is_finished
    with pytest.raises(HandshakeError, match="already"):
        i.into_transport()
    with pytest.raises(HandshakeError):
        i.write_message(b"")


@pytest.mark.parametrize("secret", [b"", b"\x01" * 31, b"\x01" * 33])
def test_static_secret_must_be_32_bytes(secret: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        _core.conn.NoiseHandshake(True, secret)


def test_out_of_order_calls_raise() -> None:
    i, r = _pair()
    with pytest.raises(HandshakeError, match="out of order"):
        r.write_message(b"")
    with pytest.raises(HandshakeError, match="out of order"):
        i.read_message(b"\x00" * 32)
    _run(i, r)
    with pytest.raises(HandshakeError, match="finished"):
        i.write_message(b"")


def _advance_to(step: int) -> tuple[_core.conn.NoiseHandshake, bytes]:
    """Runs the handshake until message `step` is written; returns its reader and the message.

    Message 1 carries no payload, as in libp2p: it has no tag, so only its length is checkable.
    """
    writer, reader = _pair()
    for n in range(1, step):
        reader.read_message(writer.write_message(b"" if n == 1 else b"payload"))
        writer, reader = reader, writer
    return reader, writer.write_message(b"" if step == 1 else b"payload")


@pytest.mark.parametrize("step", [1, 2, 3])
@pytest.mark.parametrize("keep", [0, 1, -1])
def test_truncated_messages_fail_and_the_handshake_stays_failed(step: int, keep: int) -> None:
    reader, msg = _advance_to(step)
    with pytest.raises(HandshakeError):
        reader.read_message(msg[:keep])
    with pytest.raises(HandshakeError, match="failed"):
        reader.read_message(msg)


def test_tampered_second_message_fails() -> None:
    i, r = _pair()
    r.read_message(i.write_message(b""))
    m2 = bytearray(r.write_message(b"payload"))
    m2[40] ^= 0x01  # inside the encrypted static key
    with pytest.raises(HandshakeError, match="decryption failed"):
        i.read_message(bytes(m2))


def test_prologue_mismatch_fails() -> None:
    i = _core.conn.NoiseHandshake(True, prologue=b"a")
    r = _core.conn.NoiseHandshake(False, prologue=b"b")
    r.read_message(i.write_message(b""))
    with pytest.raises(HandshakeError):
        i.read_message(r.write_message(b""))


def test_oversize_messages_are_refused() -> None:
    i, r = _pair()
    with pytest.raises(HandshakeError, match="exceeds 65535"):
        i.write_message(b"\x00" * (65535 - 32 + 1))
    with pytest.raises(HandshakeError, match="exceeds 65535"):
        r.read_message(b"\x00" * 65536)


def test_low_order_ephemeral_is_refused() -> None:
    r = _core.conn.NoiseHandshake(False)
    r.read_message(b"\x00" * 32)
    with pytest.raises(HandshakeError, match="low-order"):
        r.write_message(b"")
