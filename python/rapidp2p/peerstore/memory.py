"""The in-memory peerstore (the host's default)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rapidp2p.peerstore.base import Clock, PeerStore, _PeerData

#: Default cap of the in-memory store (about 1 KiB each: tens of MiB at most).
DEFAULT_MAX_PEERS = 20_000


class MemoryPeerStore(PeerStore):
    """Keeps everything in a dict, at most ``max_peers`` peers (the least recently written
    go first); single-threaded (asyncio), so a transaction is trivially
    atomic: edits happen on a copy that replaces the stored value only on success.

    Reads use the stored value as is (no copy); an edit copies the peer's containers one
    level deep (metadata values are replaced, never changed in place, and containers are
    copied on the way in and out by the base class)."""

    def __init__(self, clock: Clock = time.time, *, max_peers: int = DEFAULT_MAX_PEERS) -> None:
        super().__init__(clock)
        self._peers: dict[bytes, _PeerData] = {}
        #: Last write time per peer, oldest first (a write moves a peer to the end).
        self._written: dict[bytes, float] = {}
        #: Past this many peers, the least recently written are forgotten (bounded memory).
        self.max_peers = max_peers
        #: Peers forgotten because of the cap (for metrics).
        self.evicted = 0

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
        self._written.pop(peer, None)
        self._written[peer] = self._clock()
        over = len(self._peers) - self.max_peers
        if over > 0:
            for old in list(self._written)[:over]:
                if old != peer:
                    self._delete(old)
                    self.evicted += 1

    def _delete(self, peer: bytes) -> None:
        self._peers.pop(peer, None)
        self._written.pop(peer, None)

    def _stale_keys(self, cutoff: float) -> list[bytes]:
        out = []
        for key, at in self._written.items():  # oldest first: stop at the first fresh one
            if at >= cutoff:
                break
            out.append(key)
        return out

    def __len__(self) -> int:
        return len(self._peers)

    def _peer_keys(self) -> list[bytes]:
        return list(self._peers)

    def close(self) -> None:
        """Nothing to release; the data stays readable."""

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        yield
