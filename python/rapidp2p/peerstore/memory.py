"""The in-memory peerstore (the host's default)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rapidp2p.peerstore.base import Clock, PeerStore, _PeerData


class MemoryPeerStore(PeerStore):
    """Keeps everything in a dict; single-threaded (asyncio), so a transaction is trivially
    atomic: edits happen on a copy that replaces the stored value only on success.

    Reads use the stored value as is (no copy); an edit copies the peer's containers one
    level deep (metadata values are replaced, never changed in place, and containers are
    copied on the way in and out by the base class)."""

    def __init__(self, clock: Clock = time.time) -> None:
        super().__init__(clock)
        self._peers: dict[bytes, _PeerData] = {}

    def _load(self, peer: bytes) -> _PeerData | None:
        data = self._peers.get(peer)
        if data is None:
            return None
        out = dict(data)
        out["addrs"] = dict(data["addrs"])
        out["protos"] = list(data["protos"])
        out["meta"] = dict(data["meta"])
        return out

    def _peek(self, peer: bytes) -> _PeerData | None:
        return self._peers.get(peer)

    def _save(self, peer: bytes, data: _PeerData) -> None:
        self._peers[peer] = data

    def _delete(self, peer: bytes) -> None:
        self._peers.pop(peer, None)

    def _peer_keys(self) -> list[bytes]:
        return list(self._peers)

    def close(self) -> None:
        """Nothing to release; the data stays readable."""

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        yield
