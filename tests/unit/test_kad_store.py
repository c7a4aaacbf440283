"""Record/provider stores (memory and SQLite, same expectations) and the validators."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rapidp2p.crypto import generate_keypair
from rapidp2p.exceptions import InvalidRecordError
from rapidp2p.kad import (
    MemoryProviderStore,
    MemoryRecordStore,
    PermissiveValidator,
    ProviderEntry,
    ProviderStore,
    RecordStore,
    SqliteProviderStore,
    SqliteRecordStore,
    StoredRecord,
    default_validator,
)
from rapidp2p.peer import PeerId


@pytest.fixture(params=["memory", "sqlite"])
def records(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    store: RecordStore = (
        MemoryRecordStore(max_records=3, max_value_size=10)
        if request.param == "memory"
        else SqliteRecordStore(tmp_path / "r.db", max_records=3, max_value_size=10)
    )
    yield store
    store.close()


@pytest.fixture(params=["memory", "sqlite"])
def providers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProviderStore]:
    store: ProviderStore = (
        MemoryProviderStore(max_per_key=2, max_total=3)
        if request.param == "memory"
        else SqliteProviderStore(tmp_path / "p.db", max_per_key=2, max_total=3)
    )
    yield store
    store.close()


def test_records_expiry_and_caps(records: RecordStore) -> None:
    assert records.put(StoredRecord(b"a", b"1", 0, 100, originated=True), 0)
    assert not records.put(StoredRecord(b"big", b"x" * 11, 0, 100), 0)  # value too large
    assert records.put(StoredRecord(b"b", b"2", 0, 50), 0)
    assert records.put(StoredRecord(b"c", b"3", 0, 100), 0)
    assert not records.put(StoredRecord(b"d", b"4", 0, 100), 10)  # full
    assert records.put(StoredRecord(b"a", b"5", 0, 100, True), 10)  # replacing is fine
    assert records.put(StoredRecord(b"d", b"4", 0, 100), 60)  # "b" expired: room again
    got = records.get(b"a", 10)
    assert got is not None and got.value == b"5"
    assert records.get(b"b", 60) is None
    assert [r.key for r in records.originated()] == [b"a"]
    assert records.expire(1000) == 3 and len(records) == 0


def test_provider_caps(providers: ProviderStore) -> None:
    e = lambda p, exp: ProviderEntry(p, (b"\x04\x7f\x00\x00\x01",), exp)  # noqa: E731
    assert providers.add(b"k", e(b"p1", 100), 0)
    assert providers.add(b"k", e(b"p2", 200), 0)
    assert not providers.add(b"k", e(b"p3", 100), 0)  # per-key cap
    assert providers.add(b"k", e(b"p1", 300), 0)  # refresh of a known provider
    assert providers.add(b"j", e(b"p1", 100), 0)
    assert not providers.add(b"i", e(b"p9", 100), 0)  # total cap
    got = providers.get(b"k", 0)
    assert [x.peer for x in got] == [b"p1", b"p2"] and got[0].addrs == (b"\x04\x7f\x00\x00\x01",)
    assert providers.expire(150) == 1  # j's p1 expired; k's entries live until 200/300
    assert providers.add(b"i", e(b"p9", 400), 150)
    assert [x.peer for x in providers.get(b"k", 250)] == [b"p1"]


def test_pk_validator() -> None:
    v = default_validator({"test": PermissiveValidator()})
    key = generate_keypair().public_key()
    pid = PeerId.from_public_key(key)
    v.validate(b"/pk/" + pid.to_bytes(), key.to_protobuf())
    other = generate_keypair().public_key()
    with pytest.raises(InvalidRecordError):
        v.validate(b"/pk/" + pid.to_bytes(), other.to_protobuf())
    with pytest.raises(InvalidRecordError):
        v.validate(b"/pk/" + pid.to_bytes(), b"garbage")
    with pytest.raises(InvalidRecordError):
        v.validate(b"/unknown/x", b"v")
    with pytest.raises(InvalidRecordError):
        v.validate(b"no-namespace", b"v")
    v.validate(b"/test/x", b"anything")
    assert v.select(b"/test/x", [b"a", b"c", b"b"]) == 1
