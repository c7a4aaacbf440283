"""``rapidp2p._core.pubsub``: the RPC codec for FloodSub / GossipSub v1.0-v1.2.

Keep in step with ``rust/py/src/pubsub.rs``.
"""

__all__ = [
    "DEFAULT_MAX_RPC_SIZE",
    "decode_rpc",
    "encode_message",
    "encode_rpc",
    "signing_bytes",
]

DEFAULT_MAX_RPC_SIZE: int

def decode_rpc(
    data: bytes, max_size: int = ...
) -> tuple[
    list[tuple[bool, str]],
    list[tuple[bytes | None, bytes | None, bytes | None, str | None, bytes | None, bytes | None]],
    tuple[
        list[tuple[str, list[bytes]]],
        list[bytes],
        list[str],
        list[tuple[str, list[tuple[bytes | None, bytes | None]], int | None]],
        list[bytes],
    ]
    | None,
]: ...
def encode_message(
    from_: bytes | None,
    data: bytes | None,
    seqno: bytes | None,
    topic: str | None,
    signature: bytes | None = None,
    key: bytes | None = None,
) -> bytes: ...
def signing_bytes(
    from_: bytes | None, data: bytes | None, seqno: bytes | None, topic: str | None
) -> bytes: ...
def encode_rpc(
    *,
    subscriptions: list[tuple[bool, str]] = ...,
    messages: list[bytes] = ...,
    ihave: list[tuple[str, list[bytes]]] = ...,
    iwant: list[bytes] = ...,
    graft: list[str] = ...,
    prune: list[tuple[str, list[tuple[bytes | None, bytes | None]], int | None]] = ...,
    idontwant: list[bytes] = ...,
) -> bytes: ...
