"""Signed envelopes (libp2p RFC 0002).

The signature covers ``uvarint(len) || x`` for the domain, the payload type and the payload,
so a signature made for one purpose (domain) can never be replayed for another. Opening an
envelope verifies the signature BEFORE the payload is deserialised, then checks that the
payload type is the one registered for the domain (ROBUSTNESS 26).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar

from rapidp2p import _core
from rapidp2p.crypto import PrivateKey, PublicKey, public_key_from_protobuf
from rapidp2p.exceptions import RecordError, SignatureError


class Record(Protocol):
    """A payload type that can travel in an envelope."""

    DOMAIN: ClassVar[str]
    PAYLOAD_TYPE: ClassVar[bytes]

    def marshal(self) -> bytes: ...

    @classmethod
    def unmarshal(cls, data: bytes) -> Record: ...

    def check_signer(self, key: PublicKey) -> None:
        """Raises RecordError if ``key`` may not sign this record."""


_R = TypeVar("_R", bound=Record)
_REGISTRY: dict[bytes, type[Record]] = {}


def register_record_type(cls: type[_R]) -> type[_R]:
    """Makes ``Envelope.open`` able to decode payloads of ``cls.PAYLOAD_TYPE``."""
    _REGISTRY[cls.PAYLOAD_TYPE] = cls
    return cls


def signing_buffer(domain: str, payload_type: bytes, payload: bytes) -> bytes:
    """The exact bytes an envelope signature covers."""
    return _core.proto.envelope_signing_buffer(domain.encode("utf-8"), payload_type, payload)


@dataclass(frozen=True)
class Envelope:
    """A verified (or freshly sealed) signed envelope; ``raw`` is its wire encoding."""

    public_key: PublicKey
    payload_type: bytes
    payload: bytes
    signature: bytes
    raw: bytes

    @classmethod
    def seal(cls, private_key: PrivateKey, record: Record) -> Envelope:
        """Signs ``record`` under its domain and returns the envelope."""
        payload = record.marshal()
        sig = private_key.sign(signing_buffer(record.DOMAIN, record.PAYLOAD_TYPE, payload))
        public_key = private_key.public_key()
        raw = _core.proto.encode_envelope(
            public_key.to_protobuf(), record.PAYLOAD_TYPE, payload, sig
        )
        return cls(public_key, record.PAYLOAD_TYPE, payload, sig, raw)

    @classmethod
    def open(cls, data: bytes, domain: str) -> tuple[Envelope, Record]:
        """Decodes, verifies under ``domain``, then decodes the payload.

        Raises ProtobufError / KeyError_ (undecodable), SignatureError (wrong domain, altered
        type or payload, wrong key), RecordError (payload type not for this domain, or the
        record's peer does not match the signing key).
        """
        envelope = cls.open_unchecked_payload(data, domain)
        record_cls = _REGISTRY.get(envelope.payload_type)
        if record_cls is None or domain != record_cls.DOMAIN:
            raise RecordError(
                f"payload type {envelope.payload_type.hex()} is not a record of domain {domain!r}"
            )
        record = record_cls.unmarshal(envelope.payload)
        record.check_signer(envelope.public_key)
        return envelope, record

    @classmethod
    def open_unchecked_payload(cls, data: bytes, domain: str) -> Envelope:
        """Decodes and verifies the signature; the payload is left undecoded."""
        key_bytes, payload_type, payload, sig = _core.proto.decode_envelope(data)
        public_key = public_key_from_protobuf(key_bytes)
        if not public_key.verify(signing_buffer(domain, payload_type, payload), sig):
            raise SignatureError(f"envelope signature does not verify for domain {domain!r}")
        return cls(public_key, payload_type, payload, sig, bytes(data))

    def to_bytes(self) -> bytes:
        return self.raw
