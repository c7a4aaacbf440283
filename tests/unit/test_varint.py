from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidp2p import _core
from rapidp2p.exceptions import VarintError


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_varint_round_trip(value: int) -> None:
    encoded = _core.wire.varint_encode(value)
    assert len(encoded) <= 9
    assert _core.wire.varint_decode(encoded) == (value, len(encoded))


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"\x81\x00", "minimal"), (b"\x80", "truncated"), (b"\xff" * 10, "9 bytes")],
)
def test_varint_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(VarintError, match=reason):
        _core.wire.varint_decode(data)
