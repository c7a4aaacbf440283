"""The connection manager: keep the connection count between two watermarks.

go-libp2p's ``BasicConnMgr`` shape: when more than ``high_water`` connections are open, close
connections of the least valuable peers until ``low_water`` remain (never fewer). A peer's
value is the sum of its tags (:meth:`ConnectionManager.tag_peer`, decaying tags included);
protected peers (:meth:`protect`) and peers first seen less than ``grace_period`` ago are
never trimmed. Trims run at most once per ``silence_period``, triggered by a new connection
over the high watermark or by the host's maintenance loop.

Kademlia tags the peers of its routing table (``kad``, 5) and GossipSub its mesh peers
(``pubsub:<topic>``, 20), so trimming keeps what those protocols need.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rapidp2p.host.host import Host

__all__ = [
    "ConnManagerConfig",
    "ConnectionManager",
    "DecayingTag",
    "bump_sum_bounded",
    "decay_fixed",
    "decay_linear",
]

log = logging.getLogger("rapidp2p.connmgr")

#: A decay function: current value -> (new value, remove the tag).
DecayFn = Callable[[int], tuple[int, bool]]
#: A bump function: (current value, delta) -> new value.
BumpFn = Callable[[int, int], int]


@dataclass
class ConnManagerConfig:
    """Watermarks and periods (seconds), go-libp2p's defaults."""

    low_water: int = 160
    high_water: int = 192
    #: A peer first seen less than this long ago is never trimmed.
    grace_period: float = 20.0
    #: At most one trim per this long.
    silence_period: float = 10.0
    #: Tags of disconnected peers kept (most recently seen first); the rest are forgotten.
    max_disconnected_tagged: int = 1024


def decay_fixed(amount: int) -> DecayFn:
    """Subtracts ``amount`` per interval; the tag goes at zero."""

    def fn(value: int) -> tuple[int, bool]:
        v = value - amount
        return max(v, 0), v <= 0

    return fn


def decay_linear(coef: float) -> DecayFn:
    """Multiplies by ``coef`` per interval (rounding down); the tag goes at zero."""

    def fn(value: int) -> tuple[int, bool]:
        v = int(value * coef)
        return v, v <= 0

    return fn


def bump_sum_bounded(lo: int, hi: int) -> BumpFn:
    def fn(value: int, delta: int) -> int:
        return min(hi, max(lo, value + delta))

    return fn


class DecayingTag:
    """A tag whose value decays every ``interval`` seconds (``decay``) and grows with
    :meth:`bump`; from :meth:`ConnectionManager.register_decaying_tag`."""

    def __init__(
        self, mgr: ConnectionManager, name: str, interval: float, decay: DecayFn, bump: BumpFn
    ) -> None:
        self.name = name
        self.interval = interval
        self._mgr = mgr
        self._decay = decay
        self._bump = bump
        self._values: dict[Any, int] = {}
        self._next = mgr._clock() + interval
        self.closed = False

    def bump(self, peer: Any, delta: int) -> None:
        if not self.closed:
            self._values[peer] = self._bump(self._values.get(peer, 0), delta)

    def remove(self, peer: Any) -> None:
        self._values.pop(peer, None)

    def value(self, peer: Any) -> int:
        return self._values.get(peer, 0)

    def close(self) -> None:
        self.closed = True
        self._values.clear()
        self._mgr._decaying.pop(self.name, None)

    def _tick(self, now: float) -> None:
        while now >= self._next:
            self._next += self.interval
            for peer, value in list(self._values.items()):
                new, drop = self._decay(value)
                if drop:
                    del self._values[peer]
                else:
                    self._values[peer] = new


class ConnectionManager:
    """Tags, protection and trimming for one host (``host.connmgr``)."""

    def __init__(
        self,
        host: Host,
        config: ConnManagerConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.config = config or ConnManagerConfig()
        if self.config.low_water > self.config.high_water:
            raise ValueError("low_water must not exceed high_water")
        self._clock = clock
        self._tags: dict[Any, dict[str, int]] = {}
        self._protected: dict[Any, set[str]] = {}
        self._first_seen: dict[Any, float] = {}
        self._disconnected: dict[Any, float] = {}
        self._decaying: dict[str, DecayingTag] = {}
        self._last_trim = -float("inf")
        #: Connections a trim is closing (not counted, not trimmed again).
        self._closing: set[Any] = set()
        #: Connections closed by trims so far (for metrics).
        self.trimmed = 0

    # ---- tags --------------------------------------------------------------------------

    def tag_peer(self, peer: Any, tag: str, value: int) -> None:
        """Sets ``tag`` of ``peer`` to ``value`` (a peer's value is the sum of its tags)."""
        self._tags.setdefault(peer, {})[tag] = value

    def untag_peer(self, peer: Any, tag: str) -> None:
        tags = self._tags.get(peer)
        if tags is not None:
            tags.pop(tag, None)
            if not tags:
                del self._tags[peer]

    def upsert_tag(self, peer: Any, tag: str, fn: Callable[[int], int]) -> None:
        """Sets ``tag`` to ``fn(current value or 0)``."""
        tags = self._tags.setdefault(peer, {})
        tags[tag] = fn(tags.get(tag, 0))

    def tags(self, peer: Any) -> dict[str, int]:
        """The peer's tags, decaying ones included."""
        out = dict(self._tags.get(peer, {}))
        for name, dt in self._decaying.items():
            v = dt.value(peer)
            if v:
                out[name] = v
        return out

    def peer_value(self, peer: Any) -> int:
        return sum(self.tags(peer).values())

    def register_decaying_tag(
        self, name: str, interval: float, decay: DecayFn, bump: BumpFn
    ) -> DecayingTag:
        if name in self._decaying:
            raise ValueError(f"decaying tag {name!r} already registered")
        if interval <= 0:
            raise ValueError("a decaying tag needs a positive interval")
        dt = self._decaying[name] = DecayingTag(self, name, interval, decay, bump)
        return dt

    # ---- protection --------------------------------------------------------------------

    def protect(self, peer: Any, tag: str) -> None:
        """Never trims ``peer`` while at least one protection tag remains."""
        self._protected.setdefault(peer, set()).add(tag)

    def unprotect(self, peer: Any, tag: str) -> bool:
        """Drops one protection; True if the peer is still protected by another tag."""
        tags = self._protected.get(peer)
        if tags is None:
            return False
        tags.discard(tag)
        if not tags:
            del self._protected[peer]
            return False
        return True

    def is_protected(self, peer: Any, tag: str | None = None) -> bool:
        tags = self._protected.get(peer)
        if not tags:
            return False
        return tag is None or tag in tags

    def is_tagged(self, peer: Any) -> bool:
        """Protected, or holding a tag (the peer store keeps such peers' data)."""
        return (
            peer in self._protected
            or peer in self._tags
            or any(dt.value(peer) for dt in self._decaying.values())
        )

    # ---- host notifications ------------------------------------------------------------

    def connected(self, peer: Any) -> None:
        if peer not in self._first_seen:
            self._first_seen[peer] = self._clock()
        self._disconnected.pop(peer, None)
        if self._count() > self.config.high_water:
            self.trim()

    def disconnected(self, peer: Any) -> None:
        self._first_seen.pop(peer, None)
        self._disconnected[peer] = self._clock()
        over = len(self._disconnected) - self.config.max_disconnected_tagged
        if over > 0:  # forget the tags of the longest-gone peers: bounded memory
            for old in list(self._disconnected)[:over]:
                del self._disconnected[old]
                self.forget(old)

    def forget(self, peer: Any) -> None:
        """Drops everything held about a gone peer (tags, protection stays until unprotect)."""
        self._tags.pop(peer, None)
        for dt in self._decaying.values():
            dt.remove(peer)

    def tick(self) -> None:
        """Decays tags and trims if over the high watermark (the maintenance loop)."""
        now = self._clock()
        for dt in list(self._decaying.values()):
            dt._tick(now)
        if self._count() > self.config.high_water:
            self.trim()

    # ---- trimming ----------------------------------------------------------------------

    def _count(self) -> int:
        return sum(len(c) for c in self.host._conns.values()) - len(self._closing)

    def trim(self, force: bool = False) -> int:
        """Closes the least valuable unprotected peers' connections down to ``low_water``;
        returns the number of connections being closed. At most once per silence period
        unless ``force``."""
        now = self._clock()
        cfg = self.config
        if not force and now - self._last_trim < cfg.silence_period:
            return 0
        self._last_trim = now
        total = self._count()
        excess = total - cfg.low_water
        if excess <= 0:
            return 0
        candidates = []
        for peer, all_conns in self.host._conns.items():
            if peer in self._protected:
                continue
            conns = [c for c in all_conns if c not in self._closing]
            if not conns:
                continue
            if now - self._first_seen.get(peer, now) < cfg.grace_period:
                continue
            candidates.append((self.peer_value(peer), -len(conns), peer, conns))
        candidates.sort(key=lambda c: (c[0], c[1]))
        closing = 0
        for _value, _n, _peer, conns in candidates:
            if closing >= excess:
                break
            if closing + len(conns) > excess:
                continue  # would go below the low watermark: try a peer with fewer
            closing += len(conns)
            for c in conns:
                self._closing.add(c)
                self.host._spawn(self._close(c))
        self.trimmed += closing
        if closing:
            log.debug(
                "trimmed %d connections (%d open, low water %d)", closing, total, cfg.low_water
            )
        return closing

    def stat(self) -> dict[str, int]:
        return {
            "connections": self._count(),
            "tagged_peers": len(self._tags),
            "protected_peers": len(self._protected),
            "trimmed": self.trimmed,
        }

    async def _close(self, conn: Any) -> None:
        try:
            await asyncio.wait_for(conn.close(), 5.0)
        except Exception:
            conn.abort()
        finally:
            self._closing.discard(conn)
