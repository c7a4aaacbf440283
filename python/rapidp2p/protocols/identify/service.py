"""Identify over a negotiated stream, and recording its result in the peerstore.

The host registers :func:`handle_identify` for ``/ipfs/id/1.0.0`` and
:func:`handle_identify_push` for ``/ipfs/id/push/1.0.0``, and calls :func:`identify` on a new
outbound stream once a connection is up (and :func:`push_identify` when its addresses or
protocols change).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Protocol

from rapidp2p.crypto import PrivateKey
from rapidp2p.exceptions import RemoteProtocolError, StreamTimeout
from rapidp2p.host.addrs import addrs_for_remote
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.peerstore import CONNECTED_ADDR_TTL, PeerStore
from rapidp2p.protocols.framing import encode_delimited, read_delimited
from rapidp2p.protocols.identify._proto import (
    MAX_MESSAGE_SIZE,
    MAX_MESSAGES,
    IdentifyInfo,
    IdentifyMessage,
    build_identify,
    seal_peer_record,
    validate_identify,
)
from rapidp2p.protocols.multistream._timeout import run_with_timeout
from rapidp2p.protocols.multistream.negotiate import ByteStream
from rapidp2p.protocols.streams import ClosableStream, half_close

DEFAULT_TIMEOUT = 30.0
"""Bound on reading a whole identify response (go-libp2p uses 30 s)."""


class IdentifyConfig(Protocol):
    @property
    def agent_version(self) -> str: ...

    @property
    def protocol_version(self) -> str: ...


class IdentifyHost(Protocol):
    """What identify needs from a host; :class:`rapidp2p.host.Host` fits as is."""

    @property
    def peer_id(self) -> PeerId: ...

    @property
    def key(self) -> PrivateKey: ...

    @property
    def addrs(self) -> list[Multiaddr]:
        """Our listen addresses, advertised to peers."""

    @property
    def protocols(self) -> list[str]:
        """The protocols we serve."""

    @property
    def config(self) -> IdentifyConfig: ...

    @property
    def peerstore(self) -> PeerStore: ...


#: Per host: (key, {listen addresses as bytes: sealed peer record}). A record is signed again
#: only when the key or the addresses change (go-libp2p does the same), not per connection;
#: a few address sets coexist (peers on loopback, a private network or the internet each
#: hear a different subset).
_records: weakref.WeakKeyDictionary[Any, tuple[PrivateKey, dict[tuple[bytes, ...], bytes]]] = (
    weakref.WeakKeyDictionary()
)
_RECORDS_PER_HOST = 8


def _our_record(host: IdentifyHost, addrs: list[Multiaddr]) -> bytes:
    key = host.key
    addr_bytes = tuple(a.to_bytes() for a in addrs)
    try:
        cached = _records.get(host)
    except TypeError:  # a host object that cannot be weakly referenced: no cache
        return seal_peer_record(key, addrs)
    if cached is None or cached[0] is not key:
        cached = (key, {})
        _records[host] = cached
    sealed = cached[1].get(addr_bytes)
    if sealed is None:
        sealed = seal_peer_record(key, addrs)
        if len(cached[1]) >= _RECORDS_PER_HOST:
            cached[1].clear()
        cached[1][addr_bytes] = sealed
    return sealed


def _our_message(
    host: IdentifyHost, observed_addr: Multiaddr | None, remote_addr: Multiaddr | None = None
) -> bytes:
    """Our identify message for a peer seen at ``remote_addr`` (which picks the addresses we
    tell it: no loopback ones unless it is on loopback itself, see ``addrs_for_remote``)."""
    addrs = addrs_for_remote(list(host.addrs), remote_addr)
    return build_identify(
        private_key=host.key,
        listen_addrs=addrs,
        protocols=host.protocols,
        observed_addr=observed_addr,
        protocol_version=host.config.protocol_version,
        agent_version=host.config.agent_version,
        signed_peer_record=_our_record(host, addrs),
    )


async def handle_identify(
    host: IdentifyHost, stream: ClosableStream, *, observed_addr: Multiaddr | None = None
) -> None:
    """Responder for ``/ipfs/id/1.0.0``: writes our Identify message, then half-closes.

    ``observed_addr`` is the address we see the remote at (the connection's remote addr);
    it also decides which of our addresses the remote hears about.
    """
    stream.write(encode_delimited(_our_message(host, observed_addr, observed_addr)))
    await stream.drain()
    await half_close(stream)  # identify ends the response with EOF


async def push_identify(
    host: IdentifyHost, stream: ClosableStream, *, remote_addr: Multiaddr | None = None
) -> None:
    """Initiator for ``/ipfs/id/push/1.0.0``: sends our current message, then half-closes.
    ``remote_addr`` (the connection's) picks the addresses the peer hears about."""
    stream.write(encode_delimited(_our_message(host, None, remote_addr)))
    await stream.drain()
    await half_close(stream)


async def read_identify(
    stream: ByteStream, remote_peer: PeerId, *, timeout: float | None = DEFAULT_TIMEOUT
) -> IdentifyInfo:
    """Reads delimited Identify messages until EOF (at most MAX_MESSAGES, each <= 8 KiB),
    merges and validates them. Raises FrameTooLarge, ProtobufError, PeerIdMismatch,
    RemoteProtocolError (no message / too many), StreamTimeout."""
    try:
        return await run_with_timeout(_read_all(stream, remote_peer), timeout)
    except asyncio.TimeoutError as exc:
        raise StreamTimeout(f"identify response not complete within {timeout} s") from exc


async def _read_all(stream: ByteStream, remote_peer: PeerId) -> IdentifyInfo:
    merged: IdentifyMessage | None = None
    for _ in range(MAX_MESSAGES + 1):
        data = await read_delimited(stream, MAX_MESSAGE_SIZE)
        if data is None:
            break
        msg = IdentifyMessage.decode(data)
        merged = msg if merged is None else merged.merge(msg)
    else:
        raise RemoteProtocolError(f"identify response of over {MAX_MESSAGES} messages")
    if merged is None:
        raise RemoteProtocolError("identify stream closed without a message")
    return validate_identify(merged, remote_peer)


def record_identify(
    peerstore: PeerStore, info: IdentifyInfo, *, addr_ttl: float = CONNECTED_ADDR_TTL
) -> None:
    """Stores what identify learned. Addresses come from the signed record when one was
    accepted (certified), else from the listen addresses; protocols are replaced."""
    pid = info.peer_id
    if info.public_key is not None:
        peerstore.add_pubkey(pid, info.public_key)
    if info.has_protocols:
        peerstore.set_protocols(pid, info.protocols)
    if info.envelope is not None and info.peer_record is not None:
        peerstore.consume_peer_record(info.envelope, info.peer_record, addr_ttl)
    elif info.listen_addrs:
        peerstore.add_addrs(pid, info.listen_addrs, addr_ttl)
    if info.agent_version is not None:
        peerstore.put(pid, "AgentVersion", info.agent_version)
    if info.protocol_version is not None:
        peerstore.put(pid, "ProtocolVersion", info.protocol_version)


async def identify(
    host: IdentifyHost,
    stream: ByteStream,
    remote_peer: PeerId,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> IdentifyInfo:
    """Initiator for ``/ipfs/id/1.0.0`` on a fresh stream: reads the peer's answer,
    validates it, records it in ``host.peerstore`` and returns it."""
    info = await read_identify(stream, remote_peer, timeout=timeout)
    record_identify(host.peerstore, info)
    return info


async def handle_identify_push(
    host: IdentifyHost,
    stream: ByteStream,
    remote_peer: PeerId,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> IdentifyInfo:
    """Responder for ``/ipfs/id/push/1.0.0``: reads the pushed message and records it
    (absent fields leave the stored values alone)."""
    info = await read_identify(stream, remote_peer, timeout=timeout)
    record_identify(host.peerstore, info)
    return info


__all__ = [
    "DEFAULT_TIMEOUT",
    "IdentifyHost",
    "handle_identify",
    "handle_identify_push",
    "identify",
    "push_identify",
    "read_identify",
    "record_identify",
]
