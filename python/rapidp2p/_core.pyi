"""Type stubs for the compiled extension ``rapidp2p._core`` (glue over the Rust crates).

Each section belongs to the crate it wraps; keep it in step with ``rust/py/src/<section>.rs``.
"""

__version__: str

# ---- wire: varints, framing, multibase, multihash, CID, multiaddr, key protobufs -------------

def varint_encode(value: int) -> bytes: ...
def varint_decode(data: bytes) -> tuple[int, int]: ...
def encode_key_protobuf(key_type: int, data: bytes) -> bytes: ...
def decode_key_protobuf(data: bytes) -> tuple[int, bytes]: ...

# ---- proto: noise payload, identify, signed envelope, peer record ----------------------------

# ---- noise: XX handshake -------------------------------------------------------------------

# ---- conn: Noise transport + yamux session ---------------------------------------------------
