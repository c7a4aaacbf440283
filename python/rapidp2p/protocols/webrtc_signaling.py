"""``/webrtc-signaling/0.0.1`` (libp2p/specs ``webrtc/webrtc.md``), sans-IO: the messages
that set up a ``/webrtc`` connection over a relayed one, and their checks.

Wire: ``uvarint(len) || Message`` with ``Message { optional Type type = 1; optional string
data = 2; }`` and ``Type`` ``SDP_OFFER = 0``, ``SDP_ANSWER = 1``, ``ICE_CANDIDATE = 2``. The
offer and answer carry ``RTCSessionDescription.sdp``; a candidate carries the JSON of
``RTCIceCandidate.toJSON()`` (``{"candidate": "candidate:...", "sdpMid": ..., ...}``), where
JSON ``null`` or an empty ``candidate`` marks the end of the candidates.

The dialler of the relayed connection opens the stream and sends the offer; the listener
answers; both then trickle candidates until their WebRTC connection is up, and close the
stream (reset it on failure). There is no Noise afterwards: the offer and answer carry the
DTLS certificate fingerprints and came over the relayed connection, which Noise secured.

Every message is capped (:data:`MAX_MESSAGE_SIZE`); anything else than what the exchange
expects raises :class:`~rapidp2p.exceptions.SignalingError`, which closes only the stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum

from rapidp2p.exceptions import DecodeError, SignalingError
from rapidp2p.protocols._protobuf import field_bytes, field_varint, iter_fields

__all__ = [
    "MAX_CANDIDATES",
    "MAX_MESSAGE_SIZE",
    "SIGNALING_PROTOCOL",
    "SIGNALING_TIMEOUT",
    "MessageType",
    "SignalingMessage",
    "candidate_message",
    "parse_candidate",
]

SIGNALING_PROTOCOL = "/webrtc-signaling/0.0.1"
#: Largest signalling message read (an SDP is about 1 KiB; js-libp2p's own cap is larger).
MAX_MESSAGE_SIZE = 16 * 1024
#: Candidate messages read per exchange at most (a peer trickles a handful).
MAX_CANDIDATES = 64
#: Seconds the whole exchange may take, from the stream's opening to a connected WebRTC
#: connection (js-libp2p's inbound upgrade allows about as long).
SIGNALING_TIMEOUT = 20.0


class MessageType(IntEnum):
    SDP_OFFER = 0
    SDP_ANSWER = 1
    ICE_CANDIDATE = 2


@dataclass(frozen=True)
class SignalingMessage:
    """One message; ``data`` is the SDP text or the candidate's JSON."""

    type: MessageType
    data: str

    def encode(self) -> bytes:
        return field_varint(1, int(self.type)) + field_bytes(2, self.data.encode())

    @classmethod
    def decode(cls, raw: bytes) -> SignalingMessage:
        """Raises :class:`SignalingError` for a message that does not parse, names an
        unknown type, or carries text that is not UTF-8."""
        kind = 0  # proto3: an absent enum is its zero value
        data = b""
        try:
            for number, _wire, value in iter_fields(raw, max_fields=16):
                if number == 1 and isinstance(value, int):
                    kind = value
                elif number == 2 and isinstance(value, bytes):
                    data = value
        except DecodeError as exc:
            raise SignalingError(f"malformed signalling message: {exc}") from exc
        try:
            mtype = MessageType(kind)
        except ValueError:
            raise SignalingError(f"unknown signalling message type {kind}") from None
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise SignalingError("signalling message data is not UTF-8") from None
        return cls(mtype, text)


def candidate_message(candidate: str | None, sdp_mid: str = "0") -> SignalingMessage:
    """An ``ICE_CANDIDATE`` message in ``RTCIceCandidate.toJSON()`` form (``None``: the
    end of our candidates, JSON ``null``)."""
    if candidate is None:
        return SignalingMessage(MessageType.ICE_CANDIDATE, "null")
    body = {"candidate": candidate, "sdpMid": sdp_mid, "sdpMLineIndex": 0}
    return SignalingMessage(MessageType.ICE_CANDIDATE, json.dumps(body))


def parse_candidate(message: SignalingMessage) -> str | None:
    """The ``candidate:...`` line of an ``ICE_CANDIDATE`` message; None at the end of the
    candidates (``null``, ``""`` or an empty ``candidate``). Raises :class:`SignalingError`
    for another message type or JSON that is not a candidate."""
    if message.type is not MessageType.ICE_CANDIDATE:
        raise SignalingError(f"expected an ICE candidate, got {message.type.name}")
    try:
        value = json.loads(message.data) if message.data else None
    except ValueError:
        raise SignalingError("ICE candidate is not JSON") from None
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise SignalingError("ICE candidate is not a JSON object")
    line = value.get("candidate")
    if line is None or line == "":
        return None
    if not isinstance(line, str):
        raise SignalingError("ICE candidate's 'candidate' is not a string")
    return line
