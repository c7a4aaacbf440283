"""Our Noise against an independent reference built here from PyPI `cryptography` primitives.

The reference follows the Noise spec (rev 34) line by line: protocol name as the initial `h`
(it is exactly 32 bytes), `ck = h`, MixHash(prologue), HKDF with HMAC-SHA256, ChaChaPoly with
nonce = 4 zero bytes + 64-bit little-endian counter, Split() with the initiator sending on the
first key. Handshakes and transport frames must agree in both roles.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from rapidp2p import _core

PROTOCOL = b"Noise_XX_25519_ChaChaPoly_SHA256"


def _pub(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _hkdf(ck: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    temp = hmac.new(ck, ikm, hashlib.sha256).digest()
    out1 = hmac.new(temp, b"\x01", hashlib.sha256).digest()
    return out1, hmac.new(temp, out1 + b"\x02", hashlib.sha256).digest()


def _nonce(n: int) -> bytes:
    return b"\x00" * 4 + n.to_bytes(8, "little")


class _Cipher:
    """A Noise CipherState over cryptography's ChaCha20Poly1305."""

    def __init__(self, key: bytes) -> None:
        self.aead = ChaCha20Poly1305(key)
        self.n = 0

    def seal(self, ad: bytes, plaintext: bytes) -> bytes:
        ct = self.aead.encrypt(_nonce(self.n), plaintext, ad)
        self.n += 1
        return ct

    def open(self, ad: bytes, ciphertext: bytes) -> bytes:
        pt = self.aead.decrypt(_nonce(self.n), ciphertext, ad)
        self.n += 1
        return pt


class _RefXX:
    """A deliberately plain XX implementation (no error handling beyond what the test needs)."""

    def __init__(self, initiator: bool, prologue: bytes = b"") -> None:
        self.initiator = initiator
        self.s = X25519PrivateKey.generate()
        self.e = X25519PrivateKey.generate()
        self.h = PROTOCOL
        self.ck = PROTOCOL
        self.cipher: _Cipher | None = None
        self.re = b""
        self.rs = b""
        self._mix_hash(prologue)

    def _mix_hash(self, data: bytes) -> None:
        self.h = hashlib.sha256(self.h + data).digest()

    def _mix_dh(self, local: X25519PrivateKey, remote: bytes) -> None:
        self.ck, key = _hkdf(self.ck, local.exchange(X25519PublicKey.from_public_bytes(remote)))
        self.cipher = _Cipher(key)

    def _enc(self, plaintext: bytes) -> bytes:
        ct = plaintext if self.cipher is None else self.cipher.seal(self.h, plaintext)
        self._mix_hash(ct)
        return ct

    def _dec(self, ciphertext: bytes) -> bytes:
        pt = ciphertext if self.cipher is None else self.cipher.open(self.h, ciphertext)
        self._mix_hash(ciphertext)
        return pt

    # initiator side
    def write1(self, payload: bytes) -> bytes:
        self._mix_hash(_pub(self.e))
        return _pub(self.e) + self._enc(payload)

    def read2(self, msg: bytes) -> bytes:
        self.re = msg[:32]
        self._mix_hash(self.re)
        self._mix_dh(self.e, self.re)  # ee
        self.rs = self._dec(msg[32:80])
        self._mix_dh(self.e, self.rs)  # es
        return self._dec(msg[80:])

    def write3(self, payload: bytes) -> bytes:
        s_ct = self._enc(_pub(self.s))
        self._mix_dh(self.s, self.re)  # se
        return s_ct + self._enc(payload)

    # responder side
    def read1(self, msg: bytes) -> bytes:
        self.re = msg[:32]
        self._mix_hash(self.re)
        return self._dec(msg[32:])

    def write2(self, payload: bytes) -> bytes:
        self._mix_hash(_pub(self.e))
        out = _pub(self.e)
        self._mix_dh(self.e, self.re)  # ee
        out += self._enc(_pub(self.s))
        self._mix_dh(self.s, self.re)  # es
        return out + self._enc(payload)

    def read3(self, msg: bytes) -> bytes:
        self.rs = self._dec(msg[:48])
        self._mix_dh(self.e, self.rs)  # se
        return self._dec(msg[48:])

    def split(self) -> tuple[_Cipher, _Cipher]:
        """(send, receive) transport ciphers for this side."""
        k1, k2 = _hkdf(self.ck, b"")
        c1, c2 = _Cipher(k1), _Cipher(k2)
        return (c1, c2) if self.initiator else (c2, c1)


def _frame(cipher: _Cipher, plaintext: bytes) -> bytes:
    ct = cipher.seal(b"", plaintext)
    return struct.pack(">H", len(ct)) + ct


def _unframe(cipher: _Cipher, wire: bytes) -> bytes:
    out, pos = b"", 0
    while pos < len(wire):
        (n,) = struct.unpack_from(">H", wire, pos)
        out += cipher.open(b"", wire[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return out


@pytest.mark.parametrize("prologue", [b"", b"some prologue"])
def test_rust_initiator_with_reference_responder(prologue: bytes) -> None:
    ours = _core.conn.NoiseHandshake(True, prologue=prologue)
    ref = _RefXX(False, prologue)
    assert ref.read1(ours.write_message(b"")) == b""
    assert ours.read_message(ref.write2(b"responder says hi")) == b"responder says hi"
    assert ours.remote_static_public == _pub(ref.s)
    assert ref.read3(ours.write_message(b"initiator says hi")) == b"initiator says hi"
    assert ref.rs == ours.local_static_public
    assert ours.handshake_hash == ref.h

    transport = ours.into_transport()
    send, recv = ref.split()
    data = bytes(range(256)) * 300
    assert _unframe(recv, transport.encrypt(data)) == data
    assert transport.decrypt(_frame(send, b"reply") + _frame(send, b"")) == b"reply"


def test_reference_initiator_with_rust_responder() -> None:
    ref = _RefXX(True)
    ours = _core.conn.NoiseHandshake(False)
    assert ours.read_message(ref.write1(b"")) == b""
    assert ref.read2(ours.write_message(b"payload two")) == b"payload two"
    assert ref.rs == ours.local_static_public
    assert ours.read_message(ref.write3(b"payload three")) == b"payload three"
    assert ours.remote_static_public == _pub(ref.s)
    assert ours.handshake_hash == ref.h

    transport = ours.into_transport()
    send, recv = ref.split()
    big = b"\xa5" * 200_000
    assert (
        transport.decrypt(
            b"".join(_frame(send, big[i : i + 65519]) for i in range(0, len(big), 65519))
        )
        == big
    )
    assert _unframe(recv, transport.encrypt(b"back")) == b"back"
