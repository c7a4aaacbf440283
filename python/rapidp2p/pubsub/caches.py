"""The message cache (history windows for gossip and IWANT) and the seen-message time cache."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["MessageCache", "TimeCache"]


class TimeCache:
    """IDs remembered for ``ttl`` seconds after first sight (insertion order = expiry order)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: OrderedDict[bytes, float] = OrderedDict()

    def __contains__(self, key: bytes) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, key: bytes, now: float) -> bool:
        """Remembers ``key``; False if it was already there."""
        if key in self._entries:
            return False
        self._entries[key] = now + self.ttl
        return True

    def sweep(self, now: float) -> None:
        entries = self._entries
        while entries:
            key, expiry = next(iter(entries.items()))
            if expiry > now:
                break
            del entries[key]


class MessageCache:
    """The last ``length`` heartbeats of messages; gossip is drawn from the last ``gossip``.

    ``get`` also counts how many times each peer asked for a message (IWANT retransmission
    cap, ROBUSTNESS 31).
    """

    def __init__(self, length: int, gossip: int) -> None:
        self.length = length
        self.gossip = gossip
        self._msgs: dict[bytes, Any] = {}
        self._windows: list[list[tuple[bytes, str]]] = [[]]
        self._asked: dict[bytes, dict[Any, int]] = {}

    def __contains__(self, mid: bytes) -> bool:
        return mid in self._msgs

    def __len__(self) -> int:
        return len(self._msgs)

    def put(self, mid: bytes, msg: Any) -> None:
        if mid in self._msgs:
            return
        self._msgs[mid] = msg
        self._windows[0].append((mid, msg.topic))

    def get(self, mid: bytes) -> Any:
        return self._msgs.get(mid)

    def get_for_peer(self, mid: bytes, peer: Any) -> tuple[Any, int]:
        """(message or None, how many times ``peer`` has now asked for it)."""
        msg = self._msgs.get(mid)
        if msg is None:
            return None, 0
        counts = self._asked.setdefault(mid, {})
        counts[peer] = n = counts.get(peer, 0) + 1
        return msg, n

    def gossip_ids(self, topic: str) -> list[bytes]:
        out: list[bytes] = []
        for window in self._windows[: self.gossip]:
            out.extend(mid for mid, t in window if t == topic)
        return out

    def shift(self) -> None:
        if len(self._windows) >= self.length:
            for mid, _ in self._windows.pop():
                self._msgs.pop(mid, None)
                self._asked.pop(mid, None)
        self._windows.insert(0, [])
