"""Fuzzing through the Python bindings: every decoder ``_core`` exposes to peer input gets
arbitrary bytes (and the text decoders arbitrary text) and may only return or raise a
:class:`Libp2pError` subclass. A Rust panic would surface as ``pyo3_runtime.PanicException``
(a BaseException), so anything else that escapes fails here. The Rust targets themselves are
fuzzed by ``rust/fuzz`` (stable harness in CI, cargo-fuzz in ``nox -s fuzz``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapidp2p import _core
from rapidp2p.exceptions import Libp2pError

FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


def _conn_receive(data: bytes) -> Any:
    """A muxed connection (no cipher) fed hostile bytes, then its timer."""
    conn = _core.conn.Connection(None, initiator=False)
    conn.receive_data(data, time.monotonic())
    conn.handle_timer(time.monotonic() + 100)
    return conn.data_to_send()


def _noise_read(data: bytes) -> Any:
    return _core.conn.NoiseHandshake(initiator=False).read_message(data)


BYTE_DECODERS: dict[str, Callable[[bytes], Any]] = {
    "varint": _core.wire.varint_decode,
    "key_protobuf": _core.wire.decode_key_protobuf,
    "frames": lambda d: _core.wire.split_frames(d, 1024),
    "frames_eof": lambda d: _core.wire.split_frames(d, 1 << 20, True),
    "multihash": _core.wire.multihash_decode,
    "peer_id": _core.peer_id.validate,
    "peer_id_key": _core.peer_id.public_key,
    "multiaddr": _core.wire.multiaddr_to_string,
    "multiaddr_components": _core.wire.multiaddr_components,
    "noise_payload": _core.proto.decode_noise_payload,
    "noise_handshake": _noise_read,
    "identify": _core.proto.decode_identify,
    "envelope": _core.proto.decode_envelope,
    "peer_record": _core.proto.decode_peer_record,
    "yamux_session": _conn_receive,
    "kad_message": _core.kad.decode_message,
    "pubsub_rpc": _core.pubsub.decode_rpc,
}

TEXT_DECODERS: dict[str, Callable[[str], Any]] = {
    "multiaddr_text": _core.wire.multiaddr_from_string,
    "multibase": _core.wire.multibase_decode,
    "cid": _core.wire.cid_decode,
    "peer_id_text": _core.peer_id.from_string,
}


def _only_library_errors(fn: Callable[[Any], Any], value: Any) -> None:
    with contextlib.suppress(Libp2pError):  # anything else (a PanicException) fails
        fn(value)


# Bytes that look like what peers send: arbitrary, or a valid-ish prefix with noise after it.
_prefixes = st.sampled_from(
    [
        b"",
        b"\x00",
        b"\x08\x01\x12\x20",  # key protobuf header
        b"\x04\x7f\x00\x00\x01\x06\x0f\xa1",  # /ip4/127.0.0.1/tcp/4001
        b"\x00\x01\x00\x01\x00\x00\x00\x01\x00\x04\x00\x00",  # yamux SYN
        b"\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x04abcd",  # yamux DATA
    ]
)
hostile_bytes = st.one_of(
    st.binary(max_size=4096), st.builds(lambda p, b: p + b, _prefixes, st.binary(max_size=512))
)


@pytest.mark.parametrize("name", sorted(BYTE_DECODERS))
@FUZZ
@given(data=hostile_bytes)
def test_byte_decoders_raise_only_library_errors(name: str, data: bytes) -> None:
    _only_library_errors(BYTE_DECODERS[name], data)


@pytest.mark.parametrize("name", sorted(TEXT_DECODERS))
@FUZZ
@given(text=st.one_of(st.text(max_size=256), st.from_regex(r"/[a-z0-9]{1,8}(/[^/]{0,20}){0,6}")))
def test_text_decoders_raise_only_library_errors(name: str, text: str) -> None:
    _only_library_errors(TEXT_DECODERS[name], text)
