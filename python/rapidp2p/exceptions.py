"""The exception hierarchy of rapidp2p.

Every parser and protocol raises a subclass of :class:`Libp2pError`, so callers can catch
one base class. The Rust extension raises these same classes (it looks them up here), which
keeps the hierarchy importable and documented without the compiled module.

Following h11/h2, a peer's violation is a :class:`RemoteProtocolError` and a misuse of the
API by local code is a :class:`LocalProtocolError`.
"""

from __future__ import annotations

import asyncio


class Libp2pError(Exception):
    """Base class of every error rapidp2p raises on purpose."""


# --- decoding and identities -------------------------------------------------------------


class DecodeError(Libp2pError, ValueError):
    """Bytes or text that do not parse; the message names what is wrong."""


class VarintError(DecodeError):
    """A varint that is truncated, longer than 9 bytes, or not minimally encoded."""


class FrameTooLarge(DecodeError):
    """A length prefix above the protocol's cap, refused before the body is read."""


class MultibaseError(DecodeError):
    """Unknown multibase prefix or bad characters for the base."""


class MultihashError(DecodeError):
    """Unknown multihash code or a digest of the wrong length."""


class CidError(DecodeError):
    """A CID that does not parse or is not a libp2p-key CID where one is required."""


class MultiaddrError(DecodeError):
    """Unknown multiaddr protocol or a malformed value."""


class ProtobufError(DecodeError):
    """A protobuf message that does not decode or is not in the expected deterministic form."""


class KeyError_(DecodeError):
    """Undecodable or unsupported key material (named so it does not shadow builtins.KeyError)."""


class PeerIdError(DecodeError):
    """A peer ID that does not parse or is not valid."""


class SignatureError(Libp2pError):
    """A signature that does not verify."""


class RecordError(DecodeError):
    """A signed envelope or record to discard: unknown or unexpected payload type, or a
    record whose peer ID does not match the key that signed it."""


# --- protocol state machines -------------------------------------------------------------


class ProtocolError(Libp2pError):
    """A protocol state machine was driven into an invalid state."""


class RemoteProtocolError(ProtocolError):
    """The remote peer violated the protocol; the offending stream or connection is closed."""


class LocalProtocolError(ProtocolError):
    """Local code misused the API (for example, a write after close)."""


class HandshakeError(RemoteProtocolError):
    """The security handshake failed (truncated message, bad signature, bad key, ...)."""


class HandshakeTimeout(HandshakeError, TimeoutError):
    """A connection handshake (e.g. WebRTC-direct ICE, DTLS and Noise) did not finish in time."""


class SignalingError(HandshakeError):
    """The ``/webrtc-signaling`` exchange that sets up a ``/webrtc`` connection failed: a
    malformed or unexpected message, an SDP or ICE candidate that does not parse, or no
    connection in time. Only the signalling stream and the WebRTC connection it was setting
    up close; the relayed connection it ran on stays."""


class PeerIdMismatch(HandshakeError):
    """The remote proved a different peer ID than the one the dialer expected."""


class CertificateError(HandshakeError):
    """The peer's TLS certificate was refused: no libp2p extension, a malformed one, a bad
    identity signature, an unsupported key, not valid now, or not exactly one certificate;
    or a WebTransport server's certificate whose hash is not among the multiaddr's
    ``/certhash`` values (or not among those its Noise handshake lists)."""


class PrivateNetworkError(HandshakeError):
    """The remote is not in our private network: it has no PSK, another PSK, or none of the
    connection protector's nonce arrived (see :mod:`rapidp2p.pnet`)."""


class PrivateNetworkRequiredError(Libp2pError):
    """``LIBP2P_FORCE_PNET=1`` is set but the host has no private network key."""


class SwarmKeyError(DecodeError):
    """A private network key file is not a valid ``/key/swarm/psk/1.0.0/`` file."""


class DecryptionError(RemoteProtocolError):
    """A transport frame failed authentication; the connection is closed."""


class MuxerError(RemoteProtocolError):
    """The remote broke the stream multiplexer's rules; a GoAway was sent, the connection closes."""


class NegotiationError(Libp2pError):
    """multistream-select failed (malformed message, wrong header, timeout)."""


class ProtocolNotSupported(NegotiationError):
    """The remote answered ``na`` to every protocol offered."""


# --- streams, connections, resources ------------------------------------------------------


class StreamError(Libp2pError):
    """Base class of errors on one stream."""


class StreamResetError(StreamError):
    """The stream was reset (by either side); unlike EOF, data may have been lost."""


class StreamClosedError(StreamError, LocalProtocolError):
    """A write after the local side closed (half-closed) the stream."""


class UnexpectedEOF(StreamError, RemoteProtocolError):
    """The stream ended in the middle of a message (a varint, a delimited body, an exact read)."""


class ReadLimitError(StreamError, asyncio.LimitOverrunError, ValueError):
    """``readline``/``readuntil`` found no separator within the limit.

    Like :class:`asyncio.LimitOverrunError` (``consumed`` says how many bytes were looked at);
    also a ValueError, which is what :meth:`asyncio.StreamReader.readline` raises.
    """

    def __init__(self, message: str, consumed: int) -> None:
        asyncio.LimitOverrunError.__init__(self, message, consumed)


class StreamTimeout(StreamError, TimeoutError):
    """A read or write on a stream did not complete in time."""


class LimitedConnectionError(Libp2pError):
    """A protocol that moves much data refused a limited connection (a relayed circuit with a
    time and data budget) it was not explicitly allowed to use."""


class ConnectionClosedError(Libp2pError):
    """The connection is closed; the reason, when known, is in the message."""


class GoAwayError(ConnectionClosedError):
    """The remote sent GoAway: no new streams; the code is in ``code``."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class ResourceLimitError(Libp2pError):
    """A configured limit (connections, streams, handshakes, buffers) was reached."""


class ResourceLimitExceeded(ResourceLimitError):
    """A resource-manager scope refused a reservation; ``scope`` names it (``"system"``,
    ``"transient"``, ``"peer:<id>"``, ``"conn"``, ...) and ``limit`` the limit that was hit
    (``"conns_inbound"``, ``"streams"``, ``"memory"``, ``"per_ip"``, ...)."""

    def __init__(self, scope: str, limit: str, detail: str = "") -> None:
        self.scope = scope
        self.limit = limit
        text = f"limit reached: {scope} scope, {limit}"
        super().__init__(f"{text} ({detail})" if detail else text)


class StreamLimitError(ResourceLimitError):
    """No more streams may be opened now (stream limit or unacknowledged-stream backlog)."""


class TransportError(Libp2pError):
    """A transport could not listen or dial."""


class DialError(TransportError):
    """Every address of a peer failed to dial; ``errors`` maps each address to its failure."""

    def __init__(self, message: str, errors: dict[str, BaseException] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


class DialTimeout(DialError, TimeoutError):
    """``connect(..., timeout=)`` ran out of time (also a builtin TimeoutError)."""


class DialRefused(DialError, ConnectionRefusedError):
    """Nothing listens at the dialled address (a QUIC dial answered by an ICMP port
    unreachable); also a builtin ConnectionRefusedError."""


class HostClosedError(LocalProtocolError):
    """The host was closed: it cannot listen, dial or open streams again (create a new one)."""


class UpgradeError(Libp2pError):
    """A raw connection could not be secured and multiplexed."""


class ConnectionGated(Libp2pError):
    """The connection gater refused a dial, an accepted socket, a secured or an upgraded
    connection; the message says which hook and why."""


class ConnectionRefusedByPeer(UpgradeError):
    """The listener refused our connection before securing it (a limit, a gater); its
    reason, when it sent one, is in the message."""


class PeerStoreError(Libp2pError):
    """A peerstore operation failed (storage unavailable, value not storable)."""


class PeerStoreCorrupt(PeerStoreError):
    """A persistent peerstore's file or a stored value is unreadable; nothing is discarded
    silently, the caller decides (for example, move the file aside and start empty)."""


class NoSubscribersError(Libp2pError, TimeoutError):
    """``wait_for_subscribers`` timed out: too few connected peers joined the topic."""


class KadError(Libp2pError):
    """A Kademlia DHT operation failed (no peer answered, nothing could be stored)."""


class KadNotFoundError(KadError):
    """A DHT lookup ended without the value, providers or peer it was looking for."""


class InvalidRecordError(KadError):
    """A DHT record failed its namespace's validator, or no validator covers its key."""


# --- HTTP over libp2p (rapidp2p.http) -----------------------------------------------------


class HttpError(Libp2pError):
    """Base class of the errors of ``rapidp2p.http`` (HTTP over libp2p and peer ID auth)."""


class HttpProtocolError(HttpError, RemoteProtocolError):
    """The remote sent malformed HTTP/1.1 (bad request or status line, bad framing, EOF inside
    a message); only the stream carrying it is reset."""


class HeadersTooLarge(HttpProtocolError):
    """A request or response head exceeded the configured header limit."""


class BodyTooLarge(HttpProtocolError):
    """A request or response body exceeded the configured body limit."""


class HttpTimeout(HttpError, TimeoutError):
    """The remote took longer than the configured timeout to send a message head or body."""


class PeerIdAuthError(HttpError):
    """``libp2p-PeerID`` authentication failed: malformed header, bad signature, expired or
    forged opaque state or token, or a server that does not prove the expected peer ID."""


__all__ = [
    "BodyTooLarge",
    "CertificateError",
    "CidError",
    "ConnectionClosedError",
    "ConnectionGated",
    "ConnectionRefusedByPeer",
    "DecodeError",
    "DecryptionError",
    "DialError",
    "DialRefused",
    "DialTimeout",
    "FrameTooLarge",
    "GoAwayError",
    "HandshakeError",
    "HandshakeTimeout",
    "HeadersTooLarge",
    "HostClosedError",
    "HttpError",
    "HttpProtocolError",
    "HttpTimeout",
    "InvalidRecordError",
    "KadError",
    "KadNotFoundError",
    "KeyError_",
    "Libp2pError",
    "LocalProtocolError",
    "MultiaddrError",
    "MultibaseError",
    "MultihashError",
    "MuxerError",
    "NegotiationError",
    "NoSubscribersError",
    "PeerIdAuthError",
    "PeerIdError",
    "PeerIdMismatch",
    "PeerStoreCorrupt",
    "PeerStoreError",
    "ProtobufError",
    "ProtocolError",
    "ProtocolNotSupported",
    "ReadLimitError",
    "RecordError",
    "RemoteProtocolError",
    "ResourceLimitError",
    "ResourceLimitExceeded",
    "SignatureError",
    "StreamClosedError",
    "StreamError",
    "StreamLimitError",
    "StreamResetError",
    "StreamTimeout",
    "TransportError",
    "UnexpectedEOF",
    "UpgradeError",
    "VarintError",
]
