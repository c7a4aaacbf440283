"""A persistent peerstore in one SQLite file (stdlib ``sqlite3``, values as msgpack).

One row per peer holds its whole record as a msgpack map; every change is a read-modify-write
inside ``BEGIN IMMEDIATE ... COMMIT``, so a crash leaves either the old or the new state. A
file that is not a database of this schema, or a row that does not decode, raises
:class:`~rapidp2p.exceptions.PeerStoreCorrupt`; nothing is ever dropped silently.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import msgpack

from rapidp2p.exceptions import PeerStoreCorrupt, PeerStoreError
from rapidp2p.peerstore.base import Clock, PeerStore, _PeerData

SCHEMA_VERSION = 1
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "addrs": dict,
    "key": (bytes, type(None)),
    "protos": list,
    "meta": dict,
    "record": (bytes, type(None)),
    "seq": int,
}


class SqlitePeerStore(PeerStore):
    """A peerstore persisted at ``path`` (created if missing). Use from one thread."""

    def __init__(self, path: str | os.PathLike[str], clock: Clock = time.time) -> None:
        super().__init__(clock)
        self.path = os.fspath(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise PeerStoreError(f"cannot open peerstore {self.path}: {exc}") from exc
        self._depth = 0
        try:
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise PeerStoreCorrupt(f"peerstore {self.path} is not a valid database: {exc}") from exc

    def _init_schema(self) -> None:
        db = self._db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        with self._transaction():
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER)")
            db.execute("CREATE TABLE IF NOT EXISTS peers (id BLOB PRIMARY KEY, data BLOB NOT NULL)")
            cols = {r[1] for r in db.execute("PRAGMA table_info(peers)").fetchall()}
            if "updated" not in cols:  # files written before expiry existed: add the column
                db.execute("ALTER TABLE peers ADD COLUMN updated REAL NOT NULL DEFAULT 0")
                db.execute("UPDATE peers SET updated = ?", (self._clock(),))
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise PeerStoreCorrupt(
                    f"peerstore {self.path} has schema {row[0]!r}, expected {SCHEMA_VERSION}"
                )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqlitePeerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise PeerStoreCorrupt(f"peerstore {self.path}: {exc}") from exc
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._db.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise PeerStoreError(f"peerstore {self.path}: commit failed: {exc}") from exc

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise PeerStoreCorrupt(f"peerstore {self.path}: {exc}") from exc

    def _load(self, peer: bytes) -> _PeerData | None:
        rows = self._query("SELECT data FROM peers WHERE id = ?", (peer,))
        if not rows:
            return None
        return self._decode(peer, rows[0][0])

    def _decode(self, peer: bytes, blob: Any) -> _PeerData:
        try:
            data = msgpack.unpackb(blob, raw=False, strict_map_key=False)
        except Exception as exc:  # msgpack raises several unrelated classes
            raise PeerStoreCorrupt(
                f"peerstore row for {peer.hex()} does not decode: {exc}"
            ) from exc
        if not isinstance(data, dict) or any(
            not isinstance(data.get(k), t) for k, t in _FIELDS.items()
        ):
            raise PeerStoreCorrupt(f"peerstore row for {peer.hex()} has an unexpected shape")
        return data

    def _save(self, peer: bytes, data: _PeerData) -> None:
        try:
            blob = msgpack.packb(data, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            raise PeerStoreError(f"value not storable: {exc}") from exc
        self._query(
            "INSERT OR REPLACE INTO peers (id, data, updated) VALUES (?, ?, ?)",
            (peer, blob, self._clock()),
        )

    def _delete(self, peer: bytes) -> None:
        self._query("DELETE FROM peers WHERE id = ?", (peer,))

    def _peer_keys(self) -> list[bytes]:
        return [bytes(r[0]) for r in self._query("SELECT id FROM peers ORDER BY id")]

    def _stale_keys(self, cutoff: float) -> list[bytes]:
        rows = self._query("SELECT id FROM peers WHERE updated < ? ORDER BY updated", (cutoff,))
        return [bytes(r[0]) for r in rows]

    def __len__(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM peers")[0][0])
