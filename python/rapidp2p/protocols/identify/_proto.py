"""Identify (``/ipfs/id/1.0.0``, ``/ipfs/id/push/1.0.0``), sans-IO: build and parse.

On the wire a response is one or more uvarint-delimited ``Identify`` protobufs, then the
stream closes; parts are merged (older go-libp2p split large messages in two). Limits
(ROBUSTNESS 27): each message at most 8 KiB, at most :data:`MAX_MESSAGES` parts, at most
:data:`MAX_LISTEN_ADDRS` listen addresses and :data:`MAX_PROTOCOLS` protocols kept; a signed
peer record that does not verify, or that is for another peer, is discarded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from rapidp2p import _core
from rapidp2p.crypto import PrivateKey, PublicKey, public_key_from_protobuf
from rapidp2p.exceptions import DecodeError, Libp2pError, PeerIdMismatch
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.records import Envelope, PeerRecord

log = logging.getLogger(__name__)

PROTOCOL_ID = "/ipfs/id/1.0.0"
PUSH_PROTOCOL_ID = "/ipfs/id/push/1.0.0"
MAX_MESSAGE_SIZE: int = _core.proto.MAX_IDENTIFY_SIZE
MAX_MESSAGES = 10
MAX_LISTEN_ADDRS = 64
MAX_PROTOCOLS = 128

_V = TypeVar("_V")


@dataclass
class IdentifyMessage:
    """One decoded Identify protobuf, fields as on the wire (None = absent)."""

    public_key: bytes | None = None
    listen_addrs: list[bytes] = field(default_factory=list)
    protocols: list[str] = field(default_factory=list)
    observed_addr: bytes | None = None
    protocol_version: str | None = None
    agent_version: str | None = None
    signed_peer_record: bytes | None = None

    def encode(self) -> bytes:
        return _core.proto.encode_identify(
            public_key=self.public_key,
            listen_addrs=self.listen_addrs,
            protocols=self.protocols,
            observed_addr=self.observed_addr,
            protocol_version=self.protocol_version,
            agent_version=self.agent_version,
            signed_peer_record=self.signed_peer_record,
        )

    @classmethod
    def decode(cls, data: bytes) -> IdentifyMessage:
        """Raises ProtobufError for a bad or over-8-KiB message."""
        return cls(*_core.proto.decode_identify(data))

    def merge(self, other: IdentifyMessage) -> IdentifyMessage:
        """Repeated fields concatenate; a present optional field in ``other`` wins."""
        return IdentifyMessage(
            public_key=_pick(other.public_key, self.public_key),
            listen_addrs=(self.listen_addrs + other.listen_addrs)[: MAX_LISTEN_ADDRS * 4],
            protocols=(self.protocols + other.protocols)[: MAX_PROTOCOLS * 4],
            observed_addr=_pick(other.observed_addr, self.observed_addr),
            protocol_version=_pick(other.protocol_version, self.protocol_version),
            agent_version=_pick(other.agent_version, self.agent_version),
            signed_peer_record=_pick(other.signed_peer_record, self.signed_peer_record),
        )


def _pick(new: _V | None, old: _V | None) -> _V | None:
    return new if new is not None else old


@dataclass(frozen=True)
class IdentifyInfo:
    """A validated Identify result about ``peer_id``."""

    peer_id: PeerId
    public_key: PublicKey | None
    listen_addrs: tuple[Multiaddr, ...]
    protocols: tuple[str, ...]
    observed_addr: Multiaddr | None
    protocol_version: str | None
    agent_version: str | None
    envelope: Envelope | None = None
    peer_record: PeerRecord | None = None
    record_error: str | None = None
    """Why a signed peer record that was sent got discarded (None if none was or it was kept)."""
    has_protocols: bool = True
    """False when the message carried no protocols field (an identify-push of other fields)."""


def build_identify(
    *,
    private_key: PrivateKey,
    listen_addrs: Sequence[Multiaddr],
    protocols: Sequence[str],
    observed_addr: Multiaddr | None,
    protocol_version: str | None,
    agent_version: str | None,
    signed_record: bool = True,
    seq: int | None = None,
    signed_peer_record: bytes | None = None,
) -> bytes:
    """Our Identify message (not length-prefixed), trimmed to fit in 8 KiB: the signed
    record goes first, then trailing addresses, then trailing protocols.

    ``signed_peer_record``: an envelope already sealed for these addresses (see
    :func:`seal_peer_record`), used instead of signing a new one."""
    public_key = private_key.public_key()
    addrs = list(listen_addrs)[:MAX_LISTEN_ADDRS]
    msg = IdentifyMessage(
        public_key=public_key.to_protobuf(),
        listen_addrs=[a.to_bytes() for a in addrs],
        protocols=list(protocols)[:MAX_PROTOCOLS],
        observed_addr=observed_addr.to_bytes() if observed_addr is not None else None,
        protocol_version=protocol_version,
        agent_version=agent_version,
    )
    if signed_record:
        if signed_peer_record is None:
            signed_peer_record = seal_peer_record(private_key, addrs, seq)
        msg.signed_peer_record = signed_peer_record
    data = msg.encode()
    while len(data) > MAX_MESSAGE_SIZE:
        if msg.signed_peer_record is not None:
            msg.signed_peer_record = None
        elif msg.listen_addrs:
            msg.listen_addrs.pop()
        elif msg.protocols:
            msg.protocols.pop()
        else:
            msg.agent_version = msg.agent_version[:64] if msg.agent_version else None
            msg.protocol_version = None
        data = msg.encode()
    return data


def seal_peer_record(
    private_key: PrivateKey, listen_addrs: Sequence[Multiaddr], seq: int | None = None
) -> bytes:
    """Our signed peer record (envelope bytes) for the first MAX_LISTEN_ADDRS addresses."""
    peer = PeerId.from_public_key(private_key.public_key())
    record = PeerRecord.create(peer, list(listen_addrs)[:MAX_LISTEN_ADDRS], seq)
    return Envelope.seal(private_key, record).raw


def validate_identify(msg: IdentifyMessage, remote_peer: PeerId) -> IdentifyInfo:
    """Checks a received message against the authenticated ``remote_peer``.

    A public key for another peer raises PeerIdMismatch (the peer lies about itself). Bad
    addresses are skipped, lists are truncated, and a bad signed record is discarded (its
    reason in ``record_error``); the rest of the message is still used.
    """
    public_key: PublicKey | None = None
    if msg.public_key is not None:
        public_key = public_key_from_protobuf(msg.public_key)
        if PeerId.from_public_key(public_key) != remote_peer:
            raise PeerIdMismatch(f"identify public key is not the key of {remote_peer}")
    addrs = _multiaddrs(msg.listen_addrs[:MAX_LISTEN_ADDRS])
    observed = _multiaddrs([msg.observed_addr]) if msg.observed_addr is not None else []
    envelope: Envelope | None = None
    record: PeerRecord | None = None
    record_error: str | None = None
    if msg.signed_peer_record is not None:
        try:
            envelope, opened = PeerRecord.open_envelope(msg.signed_peer_record)
            if opened.peer_id != remote_peer:
                raise PeerIdMismatch(f"signed peer record is for {opened.peer_id}")
            record = replace(opened, addrs=opened.addrs[:MAX_LISTEN_ADDRS])
        except Libp2pError as exc:
            envelope, record, record_error = None, None, f"{type(exc).__name__}: {exc}"
            log.debug("discarding signed peer record from %s: %s", remote_peer, record_error)
    return IdentifyInfo(
        peer_id=remote_peer,
        public_key=public_key,
        listen_addrs=tuple(addrs),
        protocols=tuple(dict.fromkeys(msg.protocols))[:MAX_PROTOCOLS],
        observed_addr=observed[0] if observed else None,
        protocol_version=msg.protocol_version,
        agent_version=msg.agent_version,
        envelope=envelope,
        peer_record=record,
        record_error=record_error,
        has_protocols=bool(msg.protocols),
    )


def _multiaddrs(raw: Sequence[bytes]) -> list[Multiaddr]:
    out: list[Multiaddr] = []
    for b in raw:
        try:
            out.append(Multiaddr.from_bytes(b))
        except DecodeError:
            continue
    return out
