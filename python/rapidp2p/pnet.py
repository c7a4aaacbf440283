"""Private networks (libp2p ``pnet/Private-Networks-PSK-V1.md``).

Nodes sharing a 32-byte pre-shared key (PSK) only talk to each other: each connection first
exchanges a random 24-byte nonce each way, then every byte (multistream-select, the Noise
handshake, yamux) is XORed with the XSalsa20 keystream of (PSK, sender's nonce). The cipher
runs in Rust (``rapidp2p-pnet``): in the raw phase through :class:`RawProtector`, then inside
the ``_core.conn.Connection`` (same call per read and per flush as without a PSK).

The key comes from a ``/key/swarm/psk/1.0.0/`` file (kubo's ``swarm.key``)::

    host = await Host.create(listen=[...], config=HostConfig(psk="swarm.key"))

Like go-libp2p: ``LIBP2P_FORCE_PNET=1`` makes a host without a PSK refuse to start, and
transports with their own encryption (QUIC, WebTransport, WebRTC) cannot carry a PSK.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

from rapidp2p import _core
from rapidp2p.exceptions import (
    PrivateNetworkError,
    PrivateNetworkRequiredError,
    SwarmKeyError,
    TransportError,
)

__all__ = [
    "FORCE_PNET_ENV",
    "PSK_INCAPABLE_PROTOCOLS",
    "PreSharedKey",
    "PskSource",
    "RawProtector",
    "as_psk",
    "check_addr",
    "check_transports",
    "force_pnet",
    "host_psk",
]

#: go-libp2p's switch: "1" forbids hosts without a private network.
FORCE_PNET_ENV = "LIBP2P_FORCE_PNET"
#: Multiaddr protocols of transports with built-in encryption, which a PSK cannot cover.
PSK_INCAPABLE_PROTOCOLS = frozenset(
    {"quic", "quic-v1", "webtransport", "webrtc", "webrtc-direct", "certhash"}
)
#: The first message of every libp2p byte-stream connection, in either direction.
_MULTISTREAM_HEADER = b"\x13/multistream/1.0.0\n"
#: Largest key file read (a base16 file is 88 bytes).
_MAX_KEY_FILE = 4096


class PreSharedKey:
    """A private network's 32-byte key (its ``repr`` never shows it)."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise SwarmKeyError(f"a pre-shared key is 32 bytes, not {len(key)}")
        self._key = bytes(key)

    @classmethod
    def parse(cls, data: bytes) -> PreSharedKey:
        """Reads a ``/key/swarm/psk/1.0.0/`` file's contents (``/base16/``, ``/base64/`` or
        ``/bin/`` encoding, as go-libp2p accepts)."""
        return cls(_core.conn.parse_swarm_key(data))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PreSharedKey:
        with open(path, "rb") as f:
            data = f.read(_MAX_KEY_FILE + 1)
        try:
            return cls.parse(data)
        except SwarmKeyError as exc:
            raise SwarmKeyError(f"{path}: {exc}") from None

    @classmethod
    def generate(cls) -> PreSharedKey:
        """A fresh random key (from the OS RNG)."""
        return cls(os.urandom(32))

    @property
    def key(self) -> bytes:
        return self._key

    def to_file(self) -> str:
        """The key as kubo's ``swarm.key`` (``/base16/``)."""
        return str(_core.conn.format_swarm_key(self._key))

    def write(self, path: str | os.PathLike[str]) -> None:
        """Writes :meth:`to_file` to ``path``, readable by its owner only."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.to_file())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PreSharedKey) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return "PreSharedKey(..)"


#: What :class:`~rapidp2p.host.HostConfig` accepts as ``psk``: a key, its 32 raw bytes, the
#: contents of a key file, or the path of one.
PskSource = Union[PreSharedKey, bytes, str, "os.PathLike[str]"]


def as_psk(value: PskSource) -> PreSharedKey:
    """Normalises a ``HostConfig.psk`` value."""
    if isinstance(value, PreSharedKey):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return PreSharedKey.parse(data) if data.startswith(b"/key/swarm/") else PreSharedKey(data)
    return PreSharedKey.from_file(Path(value))


def force_pnet() -> bool:
    """True when ``LIBP2P_FORCE_PNET=1`` (go-libp2p's convention)."""
    return os.environ.get(FORCE_PNET_ENV) == "1"


def check_transports(transports: Any) -> None:
    """With a PSK every transport must carry raw bytes we can protect (it declares
    ``carries_psk = True``); QUIC, WebTransport and WebRTC encrypt below us and cannot."""
    for t in transports:
        if not getattr(t, "carries_psk", False):
            raise TransportError(
                f"{type(t).__name__} cannot carry a private network's PSK (the pnet protector "
                "covers raw byte-stream transports such as TCP; QUIC, WebTransport and WebRTC "
                "bring their own encryption); remove it or run without a PSK"
            )


def host_psk(value: PskSource | None, transports: Any) -> PreSharedKey | None:
    """A host's key from its config; enforces ``LIBP2P_FORCE_PNET`` and the transport rule."""
    if value is None:
        if force_pnet():
            raise PrivateNetworkRequiredError(
                f"{FORCE_PNET_ENV}=1 requires a private network: set HostConfig(psk=...) "
                "(or --swarm-key FILE)"
            )
        return None
    psk = as_psk(value)
    check_transports(transports)
    return psk


def check_addr(addr: Any) -> None:
    """Refuses to listen on or dial an address whose transport cannot carry the PSK."""
    parts = set(str(addr).split("/"))
    bad = parts & PSK_INCAPABLE_PROTOCOLS
    if bad:
        raise TransportError(
            f"cannot use {addr} in a private network: /{sorted(bad)[0]} cannot carry a PSK"
        )


class RawProtector:
    """The protector of one connection during its upgrade (before ``_core.conn.Connection``).

    Records the first plaintext bytes from the remote: every libp2p byte stream starts with
    the multistream-select header, so anything else means the remote encrypts with another
    key (or none), and the connection fails at once with :class:`PrivateNetworkError`.
    """

    __slots__ = ("_head", "core", "error")

    def __init__(self, psk: PreSharedKey, nonce: bytes | None = None) -> None:
        self.core: Any = _core.conn.Protector(psk.key, nonce)
        self._head = b""
        #: Set once the remote's first bytes showed it is not in our network.
        self.error: PrivateNetworkError | None = None

    @property
    def local_nonce(self) -> bytes:
        nonce: bytes = self.core.local_nonce
        return nonce

    def encrypt(self, data: bytes) -> bytes:
        out: bytes = self.core.encrypt(data)
        return out

    def decrypt(self, data: bytes) -> bytes:
        """Plaintext of ``data``; raises :class:`PrivateNetworkError` on a foreign stream."""
        plain: bytes = self.core.decrypt(data)
        want = len(_MULTISTREAM_HEADER) - len(self._head)
        if want > 0 and plain:
            self._head += plain[:want]
            if not _MULTISTREAM_HEADER.startswith(self._head):
                self.error = _mismatch(self.core.remote_nonce)
                raise self.error
        return plain

    def diagnose(self, *, timed_out: bool = False) -> PrivateNetworkError | None:
        """Why an upgrade that failed before its security handshake ended did so, when the
        private network explains it (None: it does not)."""
        if self.error is not None:
            return self.error
        if self.core.moved:
            return None
        got = self.core.remote_nonce_received
        if got < _core.conn.PNET_NONCE_LEN:
            return PrivateNetworkError(
                f"the remote sent {got} of the 24 bytes of its private network nonce: it is "
                "not in our private network (no PSK?)"
            )
        if not self._head:
            # A member answers our multistream header with its own at once; a remote with
            # another key cannot read ours: go-libp2p hangs up, rust-libp2p waits for more.
            how = (
                "said nothing we could read until our upgrade timed out"
                if timed_out
                else "gave up on what we sent"
            )
            return PrivateNetworkError(
                f"the remote is not in our private network (PSK mismatch): it sent its nonce, "
                f"then {how}"
            )
        return None


def _mismatch(remote_nonce: bytes | None) -> PrivateNetworkError:
    if remote_nonce is not None and remote_nonce.startswith(_MULTISTREAM_HEADER):
        return PrivateNetworkError(
            "the remote is not in our private network: it does not use a PSK "
            "(it sent plain multistream-select)"
        )
    return PrivateNetworkError("the remote is not in our private network (PSK mismatch)")
