"""The kad-dht wire messages as dataclasses over the Rust codec (``_core.kad_*_message``).

Decoding is bounded in Rust: the whole message against ``max_size`` (FrameTooLarge), peer
lists against ``max_peers`` (extra entries skipped unread), addresses per peer against 32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from rapidp2p import _core

__all__ = ["ConnectionType", "KadMessage", "KadPeer", "KadRecord", "MessageType"]


class MessageType(IntEnum):
    PUT_VALUE = 0
    GET_VALUE = 1
    ADD_PROVIDER = 2
    GET_PROVIDERS = 3
    FIND_NODE = 4
    PING = 5


class ConnectionType(IntEnum):
    NOT_CONNECTED = 0
    CONNECTED = 1
    CAN_CONNECT = 2
    CANNOT_CONNECT = 3


@dataclass(frozen=True)
class KadPeer:
    """``Message.Peer``: peer-ID bytes, multiaddr bytes, connectedness hint."""

    peer_id: bytes
    addrs: tuple[bytes, ...] = ()
    connection: int = ConnectionType.NOT_CONNECTED


@dataclass(frozen=True)
class KadRecord:
    """``Record``: key, value and the receiver-set reception time (RFC 3339 text)."""

    key: bytes
    value: bytes
    time_received: str = ""


@dataclass(frozen=True)
class KadMessage:
    type: int
    key: bytes = b""
    record: KadRecord | None = None
    closer_peers: tuple[KadPeer, ...] = field(default=())
    provider_peers: tuple[KadPeer, ...] = field(default=())
    cluster_level: int = 0

    def encode(self) -> bytes:
        rec = self.record
        return _core.kad.encode_message(
            int(self.type),
            self.key,
            None if rec is None else (rec.key, rec.value, rec.time_received),
            [(p.peer_id, list(p.addrs), int(p.connection)) for p in self.closer_peers],
            [(p.peer_id, list(p.addrs), int(p.connection)) for p in self.provider_peers],
            self.cluster_level,
        )

    @classmethod
    def decode(
        cls, data: bytes, max_size: int = _core.kad.MAX_MESSAGE_SIZE, max_peers: int = 20
    ) -> KadMessage:
        """Raises FrameTooLarge over ``max_size``, ProtobufError on malformed input."""
        ty, key, rec, closer, providers, level = _core.kad.decode_message(data, max_size, max_peers)
        return cls(
            ty,
            key,
            None if rec is None else KadRecord(*rec),
            tuple(KadPeer(p, tuple(a), c) for p, a, c in closer),
            tuple(KadPeer(p, tuple(a), c) for p, a, c in providers),
            level,
        )
