"""Record and provider stores, in memory or in SQLite (stdlib), every one bounded.

Times are wall-clock seconds (``time.time()``) passed in by the caller, so stored expiries
survive a restart of a persistent store. Caps (ROBUSTNESS 29): records by count and value
size; providers per key and in total. A full store refuses newcomers rather than evicting
live entries, so a flood cannot push out what honest peers stored; expired entries are
swept first.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MemoryProviderStore",
    "MemoryRecordStore",
    "ProviderEntry",
    "ProviderStore",
    "RecordStore",
    "SqliteProviderStore",
    "SqliteRecordStore",
    "StoredRecord",
]


@dataclass(frozen=True)
class StoredRecord:
    key: bytes
    value: bytes
    received: float
    expires: float
    #: Put by this node (republished by it), not merely stored for others.
    originated: bool = False


@dataclass(frozen=True)
class ProviderEntry:
    peer: bytes
    addrs: tuple[bytes, ...]
    expires: float


class RecordStore(ABC):
    def __init__(self, max_records: int = 16384, max_value_size: int = 48 * 1024) -> None:
        self.max_records = max_records
        self.max_value_size = max_value_size

    @abstractmethod
    def _get(self, key: bytes) -> StoredRecord | None: ...
    @abstractmethod
    def _put(self, rec: StoredRecord) -> None: ...
    @abstractmethod
    def delete(self, key: bytes) -> None: ...
    @abstractmethod
    def __len__(self) -> int: ...
    @abstractmethod
    def expire(self, now: float) -> int:
        """Drops expired records; returns how many."""

    @abstractmethod
    def originated(self) -> list[StoredRecord]:
        """Records this node put (to republish)."""

    def get(self, key: bytes, now: float) -> StoredRecord | None:
        rec = self._get(key)
        if rec is not None and rec.expires <= now:
            self.delete(key)
            return None
        return rec

    def put(self, rec: StoredRecord, now: float) -> bool:
        """Stores (or replaces) a record; False when over a cap."""
        if len(rec.value) > self.max_value_size:
            return False
        if self._get(rec.key) is None and len(self) >= self.max_records:
            self.expire(now)
            if len(self) >= self.max_records:
                return False
        self._put(rec)
        return True

    def close(self) -> None:
        return None


class MemoryRecordStore(RecordStore):
    def __init__(self, max_records: int = 16384, max_value_size: int = 48 * 1024) -> None:
        super().__init__(max_records, max_value_size)
        self._data: dict[bytes, StoredRecord] = {}

    def _get(self, key: bytes) -> StoredRecord | None:
        return self._data.get(key)

    def _put(self, rec: StoredRecord) -> None:
        self._data[rec.key] = rec

    def delete(self, key: bytes) -> None:
        self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)

    def expire(self, now: float) -> int:
        dead = [k for k, r in self._data.items() if r.expires <= now]
        for k in dead:
            del self._data[k]
        return len(dead)

    def originated(self) -> list[StoredRecord]:
        return [r for r in self._data.values() if r.originated]


class SqliteRecordStore(RecordStore):
    def __init__(
        self, path: str | Path, max_records: int = 16384, max_value_size: int = 48 * 1024
    ) -> None:
        super().__init__(max_records, max_value_size)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS kad_records (key BLOB PRIMARY KEY, value BLOB NOT NULL,"
            " received REAL NOT NULL, expires REAL NOT NULL, originated INTEGER NOT NULL)"
        )

    def _get(self, key: bytes) -> StoredRecord | None:
        row = self._db.execute(
            "SELECT key, value, received, expires, originated FROM kad_records WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        return StoredRecord(bytes(row[0]), bytes(row[1]), row[2], row[3], bool(row[4]))

    def _put(self, rec: StoredRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO kad_records VALUES (?, ?, ?, ?, ?)",
            (rec.key, rec.value, rec.received, rec.expires, int(rec.originated)),
        )

    def delete(self, key: bytes) -> None:
        self._db.execute("DELETE FROM kad_records WHERE key = ?", (key,))

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM kad_records").fetchone()[0])

    def expire(self, now: float) -> int:
        return self._db.execute("DELETE FROM kad_records WHERE expires <= ?", (now,)).rowcount

    def originated(self) -> list[StoredRecord]:
        rows = self._db.execute(
            "SELECT key, value, received, expires, originated FROM kad_records WHERE originated = 1"
        ).fetchall()
        return [StoredRecord(bytes(r[0]), bytes(r[1]), r[2], r[3], True) for r in rows]

    def close(self) -> None:
        self._db.close()


class ProviderStore(ABC):
    def __init__(self, max_per_key: int = 64, max_total: int = 100_000) -> None:
        self.max_per_key = max_per_key
        self.max_total = max_total

    @abstractmethod
    def _providers(self, key: bytes) -> list[ProviderEntry]: ...
    @abstractmethod
    def _set(self, key: bytes, entry: ProviderEntry) -> None: ...
    @abstractmethod
    def total(self) -> int: ...
    @abstractmethod
    def expire(self, now: float) -> int: ...

    def add(self, key: bytes, entry: ProviderEntry, now: float) -> bool:
        """Adds or refreshes a provider of ``key``; False when a cap refuses a newcomer."""
        current = self._providers(key)
        if not any(e.peer == entry.peer for e in current):
            live = [e for e in current if e.expires > now]
            if len(live) >= self.max_per_key:
                return False
            if self.total() >= self.max_total:
                self.expire(now)
                if self.total() >= self.max_total:
                    return False
        self._set(key, entry)
        return True

    @abstractmethod
    def provided_by(self, peer: bytes, now: float) -> list[tuple[bytes, ProviderEntry]]:
        """Every live ``(key, entry)`` whose provider is ``peer`` (what a restarted node
        must keep republishing)."""

    def get(self, key: bytes, now: float, limit: int | None = None) -> list[ProviderEntry]:
        """Live providers of ``key``, latest expiry first."""
        live = sorted(
            (e for e in self._providers(key) if e.expires > now), key=lambda e: -e.expires
        )
        return live if limit is None else live[:limit]

    def close(self) -> None:
        return None


class MemoryProviderStore(ProviderStore):
    def __init__(self, max_per_key: int = 64, max_total: int = 100_000) -> None:
        super().__init__(max_per_key, max_total)
        self._data: dict[bytes, dict[bytes, ProviderEntry]] = {}
        self._total = 0

    def _providers(self, key: bytes) -> list[ProviderEntry]:
        return list(self._data.get(key, {}).values())

    def _set(self, key: bytes, entry: ProviderEntry) -> None:
        peers = self._data.setdefault(key, {})
        if entry.peer not in peers:
            self._total += 1
        peers[entry.peer] = entry

    def total(self) -> int:
        return self._total

    def provided_by(self, peer: bytes, now: float) -> list[tuple[bytes, ProviderEntry]]:
        out = []
        for key, peers in self._data.items():
            e = peers.get(peer)
            if e is not None and e.expires > now:
                out.append((key, e))
        return out

    def expire(self, now: float) -> int:
        n = 0
        for key in list(self._data):
            peers = self._data[key]
            for p in [p for p, e in peers.items() if e.expires <= now]:
                del peers[p]
                n += 1
            if not peers:
                del self._data[key]
        self._total -= n
        return n


def _pack_addrs(addrs: tuple[bytes, ...]) -> bytes:
    out = bytearray()
    for a in addrs:
        out += len(a).to_bytes(2, "big") + a
    return bytes(out)


def _unpack_addrs(data: bytes) -> tuple[bytes, ...]:
    out: list[bytes] = []
    i = 0
    while i + 2 <= len(data):
        n = int.from_bytes(data[i : i + 2], "big")
        out.append(data[i + 2 : i + 2 + n])
        i += 2 + n
    return tuple(out)


class SqliteProviderStore(ProviderStore):
    def __init__(self, path: str | Path, max_per_key: int = 64, max_total: int = 100_000) -> None:
        super().__init__(max_per_key, max_total)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS kad_providers (key BLOB NOT NULL, peer BLOB NOT NULL,"
            " addrs BLOB NOT NULL, expires REAL NOT NULL, PRIMARY KEY (key, peer))"
        )

    def _providers(self, key: bytes) -> list[ProviderEntry]:
        rows = self._db.execute(
            "SELECT peer, addrs, expires FROM kad_providers WHERE key = ?", (key,)
        ).fetchall()
        return [ProviderEntry(bytes(r[0]), _unpack_addrs(bytes(r[1])), r[2]) for r in rows]

    def _set(self, key: bytes, entry: ProviderEntry) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO kad_providers VALUES (?, ?, ?, ?)",
            (key, entry.peer, _pack_addrs(entry.addrs), entry.expires),
        )

    def total(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM kad_providers").fetchone()[0])

    def provided_by(self, peer: bytes, now: float) -> list[tuple[bytes, ProviderEntry]]:
        rows = self._db.execute(
            "SELECT key, addrs, expires FROM kad_providers WHERE peer = ? AND expires > ?",
            (peer, now),
        ).fetchall()
        return [(bytes(r[0]), ProviderEntry(peer, _unpack_addrs(bytes(r[1])), r[2])) for r in rows]

    def expire(self, now: float) -> int:
        return self._db.execute("DELETE FROM kad_providers WHERE expires <= ?", (now,)).rowcount

    def close(self) -> None:
        self._db.close()
