"""The pubsub RPC in Python terms: messages, decoded frames, outgoing frame builders, signing.

Bytes are decoded and encoded by the Rust codec (``_core.pubsub.decode_rpc`` etc.). A message
is encoded once (``Message.encoded``) and spliced into every frame that carries it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rapidp2p import _core
from rapidp2p.protocols.framing import encode_uvarint

if TYPE_CHECKING:
    from rapidp2p.crypto import PrivateKey, PublicKey
    from rapidp2p.peer import PeerId

__all__ = [
    "RPC",
    "Message",
    "Outgoing",
    "decode_rpc",
    "default_message_id",
    "sign_message",
    "verify_message",
]


@dataclass(eq=False)
class Message:
    """A pubsub message. ``from_`` is the author's peer ID bytes (None when unsigned)."""

    topic: str
    data: bytes | None
    from_: bytes | None = None
    seqno: bytes | None = None
    signature: bytes | None = None
    key: bytes | None = None
    #: Set by the router: the message ID and the peer we got it from (None: published here).
    id: bytes = b""
    received_from: PeerId | None = None
    _encoded: bytes | None = field(default=None, repr=False)

    @property
    def encoded(self) -> bytes:
        enc = self._encoded
        if enc is None:
            enc = self._encoded = _core.pubsub.encode_message(
                self.from_, self.data, self.seqno, self.topic, self.signature, self.key
            )
        return enc

    @property
    def size(self) -> int:
        return len(self.encoded)

    @property
    def from_peer(self) -> PeerId | None:
        """The author as a :class:`~rapidp2p.peer.PeerId` (None if absent or malformed)."""
        if self.from_ is None:
            return None
        from rapidp2p.peer import PeerId

        try:
            return PeerId.from_bytes(self.from_)
        except Exception:
            return None


@dataclass
class RPC:
    """One decoded frame (lists already trimmed to the codec's caps)."""

    subscriptions: list[tuple[bool, str]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    ihave: list[tuple[str, list[bytes]]] = field(default_factory=list)
    iwant: list[bytes] = field(default_factory=list)
    graft: list[str] = field(default_factory=list)
    prune: list[tuple[str, list[tuple[bytes | None, bytes | None]], int | None]] = field(
        default_factory=list
    )
    idontwant: list[bytes] = field(default_factory=list)


def decode_rpc(data: bytes, max_size: int) -> RPC:
    """Decodes one frame; raises FrameTooLarge / ProtobufError."""
    subs, msgs, control = _core.pubsub.decode_rpc(data, max_size)
    rpc = RPC(subscriptions=subs)
    for from_, mdata, seqno, topic, sig, key in msgs:
        if topic is None:
            continue
        rpc.messages.append(Message(topic, mdata, from_, seqno, sig, key))
    if control is not None:
        rpc.ihave, rpc.iwant, rpc.graft, rpc.prune, rpc.idontwant = control
    return rpc


#: Messages up to this many bytes carry the control part in the same frame.
PIGGYBACK_MAX = 8192


class Outgoing:
    """What is queued for one peer until the next flush; becomes one or more frames."""

    __slots__ = ("graft", "idontwant", "ihave", "iwant", "messages", "prune", "subscriptions")

    def __init__(self) -> None:
        self.subscriptions: list[tuple[bool, str]] = []
        self.messages: list[bytes] = []
        self.ihave: list[tuple[str, list[bytes]]] = []
        self.iwant: list[bytes] = []
        self.graft: list[str] = []
        self.prune: list[tuple[str, list[tuple[bytes | None, bytes | None]], int | None]] = []
        self.idontwant: list[bytes] = []

    def has_control(self) -> bool:
        return bool(self.ihave or self.iwant or self.graft or self.prune or self.idontwant)

    def _control_bound(self) -> int:
        """An upper bound on the encoded size of the subscriptions and control parts."""
        n = 16
        for _, t in self.subscriptions:
            n += len(t) + 8
        for t, ids in self.ihave:
            n += len(t) + 8 + sum(len(i) + 4 for i in ids)
        n += sum(len(i) + 4 for i in self.iwant) + sum(len(i) + 4 for i in self.idontwant) + 16
        n += sum(len(t) + 8 for t in self.graft)
        for t, px, _ in self.prune:
            n += len(t) + 24 + sum(len(a or b"") + len(b or b"") + 12 for a, b in px)
        return n

    def frames(self, max_size: int) -> list[bytes]:
        """Encoded frames, each at most ``max_size`` bytes (messages split across frames)."""
        return [b"".join(parts) for parts in self.frame_parts(max_size)]

    def frame_parts(
        self, max_size: int, idontwant_cache: dict[tuple[bytes, ...], bytes] | None = None
    ) -> list[list[bytes]]:
        """The frames as lists of pieces whose concatenation is the frame.

        Messages stay separate pieces (their field header, then the already-encoded message
        itself), so a writer can hand them to the muxer by reference: a 64 KiB message
        forwarded to D peers is never copied into D frames. Subscriptions and control ride in
        the first frame when its messages are small (one frame per peer per flush); with
        bigger ones they come first as a frame of their own, so the peer reads IDONTWANT (and
        GRAFT/PRUNE) without waiting for the messages behind them. A control-only frame is
        exactly one piece; a frame with messages has at least two. Protobuf fields may come
        in any order; these pieces keep the canonical one (subscriptions, messages, control).

        ``idontwant_cache`` shares the encoding of an IDONTWANT-only control part between
        the peers of one flush: a new message is announced to every mesh peer with the same
        IDONTWANT, so it is encoded once, not once per peer.
        """
        out: list[list[bytes]] = []
        batches: list[list[bytes]] = []
        batch: list[bytes] = []
        size = 0
        for m in self.messages:
            n = len(m) + 6
            if n > max_size:
                continue  # never sent (the remote would refuse the frame)
            if batch and size + n > max_size:
                batches.append(batch)
                batch, size = [], 0
            batch.append(m)
            size += n
        if batch:
            batches.append(batch)
        if self.subscriptions or self.has_control():
            first: list[bytes] = []
            if batches:
                size = sum(len(m) + 6 for m in batches[0])
                if size <= PIGGYBACK_MAX and self._control_bound() + size <= max_size:
                    first = batches.pop(0)
            head = (
                _core.pubsub.encode_rpc(subscriptions=self.subscriptions)
                if (self.subscriptions)
                else b""
            )
            if not self.has_control():
                ctl = b""
            elif idontwant_cache is not None and not (
                self.ihave or self.iwant or self.graft or self.prune
            ):
                ids = tuple(self.idontwant)
                hit = idontwant_cache.get(ids)
                if hit is None:
                    hit = idontwant_cache[ids] = _core.pubsub.encode_rpc(idontwant=self.idontwant)
                ctl = hit
            else:
                ctl = _core.pubsub.encode_rpc(
                    ihave=self.ihave,
                    iwant=self.iwant,
                    graft=self.graft,
                    prune=self.prune,
                    idontwant=self.idontwant,
                )
            if first:
                parts = _message_parts(first)
                if head:
                    parts.insert(0, head)
                if ctl:
                    parts.append(ctl)
            else:
                parts = [head + ctl]
            if sum(len(p) for p in parts) <= max_size:
                out.append(parts)
        for b in batches:
            out.append(_message_parts(b))
        return out


def _message_parts(msgs: list[bytes]) -> list[bytes]:
    """RPC field 2 (publish) for each already-encoded message: header piece, then the body."""
    parts: list[bytes] = []
    for m in msgs:
        parts.append(_PUBLISH_TAG + encode_uvarint(len(m)))
        parts.append(m)
    return parts


_PUBLISH_TAG = b"\x12"  # field 2, length-delimited


def default_message_id(msg: Message) -> bytes:
    """go-libp2p-pubsub's default: ``from || seqno`` (the bytes, concatenated)."""
    return (msg.from_ or b"") + (msg.seqno or b"")


def content_message_id(msg: Message) -> bytes:
    """For unsigned topics: SHA-256 of topic and data (anonymous messages have no seqno)."""
    h = hashlib.sha256(msg.topic.encode())
    h.update(b"\0")
    h.update(msg.data or b"")
    return h.digest()


MessageIdFn = Callable[[Message], bytes]


def sign_message(key: PrivateKey, msg: Message) -> None:
    """Fills ``signature`` (and ``key`` when the peer ID does not embed the public key)."""
    from rapidp2p.peer import PeerId

    buf = _core.pubsub.signing_bytes(msg.from_, msg.data, msg.seqno, msg.topic)
    msg.signature = key.sign(buf)
    pid = PeerId.from_public_key(key.public_key())
    if pid.extract_public_key() is None:
        msg.key = key.public_key().to_protobuf()
    msg._encoded = None


#: Author keys kept by :func:`verify_message` (parsing a key costs more than the check).
KEY_CACHE_SIZE = 1024


def verify_message(msg: Message, keys: dict[bytes, PublicKey] | None = None) -> str | None:
    """None if the signature is good, else why not (bad signature, key/from mismatch...).

    ``keys`` caches the public key per (from, key) so a known author's key is parsed and
    matched against its peer ID once, not per message.
    """
    from rapidp2p.crypto import public_key_from_protobuf
    from rapidp2p.peer import PeerId

    if msg.signature is None or msg.from_ is None or msg.seqno is None:
        return "missing signature, from or seqno"
    ck = msg.from_ if msg.key is None else msg.from_ + b"/" + msg.key
    pk = keys.get(ck) if keys is not None else None
    if pk is None:
        try:
            author = PeerId.from_bytes(msg.from_)
        except Exception:
            return "malformed from"
        try:
            if msg.key is not None:
                pk = public_key_from_protobuf(msg.key)
                if PeerId.from_public_key(pk) != author:
                    return "key does not match from"
            else:
                embedded = author.extract_public_key()
                if embedded is None:
                    return "no key for from"
                pk = embedded
        except Exception:
            return "malformed key"
        if keys is not None:
            if len(keys) >= KEY_CACHE_SIZE:
                keys.clear()
            keys[ck] = pk
    buf = _core.pubsub.signing_bytes(msg.from_, msg.data, msg.seqno, msg.topic)
    try:
        ok = pk.verify(buf, msg.signature)
    except Exception:
        ok = False
    return None if ok else "bad signature"
