"""``rapidp2p._core.kad``: Kademlia keys, routing table, closest-peers lookup, message codec.

Keep in step with ``rust/py/src/kad.rs``.
"""

__all__ = [
    "MAX_MESSAGE_SIZE",
    "NEXT_FINISHED",
    "NEXT_REQUEST",
    "NEXT_WAITING",
    "UPDATE_FULL",
    "UPDATE_INSERTED",
    "UPDATE_PENDING",
    "UPDATE_REFRESHED",
    "UPDATE_REJECTED",
    "Query",
    "RoutingTable",
    "decode_message",
    "distance",
    "encode_message",
    "key",
]

from typing import final

UPDATE_INSERTED: int
UPDATE_REFRESHED: int
UPDATE_PENDING: int  # bucket full: check the returned least-recently-seen peer
UPDATE_FULL: int
UPDATE_REJECTED: int  # the local peer, or refused by the diversity filter
NEXT_WAITING: int
NEXT_REQUEST: int
NEXT_FINISHED: int
MAX_MESSAGE_SIZE: int

def key(data: bytes) -> bytes: ...
def distance(a: bytes, b: bytes) -> bytes: ...

@final
class RoutingTable:
    """k-buckets around one local peer; peers are peer-ID bytes, keys 32 bytes."""

    def __new__(
        cls,
        local_peer: bytes,
        k: int = 20,
        max_group_per_bucket: int | None = None,
        max_group_per_table: int | None = None,
        now: float = 0.0,
    ) -> RoutingTable: ...
    def update(
        self, peer: bytes, now: float, group: bytes | None = None
    ) -> tuple[int, bytes | None]: ...
    def resolve_pending(self, lrs: bytes, alive: bool, now: float) -> bytes | None: ...
    def remove(self, peer: bytes) -> bytes | None: ...
    def closest(self, key: bytes, n: int) -> list[bytes]: ...
    def closest_to(self, preimage: bytes, n: int) -> list[bytes]: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: bytes, /) -> bool: ...
    def peers(self) -> list[bytes]: ...
    def bucket_index(self, key: bytes) -> int | None: ...
    def populated_buckets(self) -> list[int]: ...
    def bucket(self, i: int) -> list[bytes]: ...
    def pending(self, i: int) -> bytes | None: ...
    def stale_buckets(self, now: float, interval: float, max_cpl: int = 15) -> list[int]: ...
    def mark_refreshed(self, i: int, now: float) -> None: ...
    def touch(self, key: bytes, now: float) -> None: ...
    def last_refresh(self, i: int) -> float | None: ...
    def random_peer_id_in_bucket(
        self, i: int, seed: int, max_tries: int = 65536
    ) -> bytes | None: ...
    @property
    def local_key(self) -> bytes: ...
    @property
    def k(self) -> int: ...

@final
class Query:
    """One iterative closest-peers lookup: poll/next(now), on_success, on_failure."""

    def __new__(
        cls,
        key: bytes,
        seeds: list[bytes],
        alpha: int = 3,
        k: int = 20,
        timeout: float = 10.0,
        max_candidates: int = 1024,
        local: bytes | None = None,
    ) -> Query: ...
    def next(self, now: float) -> tuple[int, bytes | None]: ...
    def poll(self, now: float) -> tuple[list[bytes], bool]: ...
    def on_success(self, peer: bytes, closer: list[bytes]) -> bool: ...
    def on_failure(self, peer: bytes) -> bool: ...
    def finish(self) -> None: ...
    @property
    def finished(self) -> bool: ...
    def next_deadline(self) -> float | None: ...
    def result(self) -> list[bytes]: ...
    def hops(self, peer: bytes) -> int | None: ...
    @property
    def num_waiting(self) -> int: ...
    @property
    def stats(self) -> tuple[int, int, int]: ...

def encode_message(
    type: int,
    key: bytes = ...,
    record: tuple[bytes, bytes, str] | None = None,
    closer_peers: list[tuple[bytes, list[bytes], int]] = ...,
    provider_peers: list[tuple[bytes, list[bytes], int]] = ...,
    cluster_level: int = 0,
) -> bytes: ...
def decode_message(
    data: bytes, max_size: int = ..., max_peers: int = 20
) -> tuple[
    int,
    bytes,
    tuple[bytes, bytes, str] | None,
    list[tuple[bytes, list[bytes], int]],
    list[tuple[bytes, list[bytes], int]],
    int,
]: ...
