"""Noise transport throughput side by side with PyPI ``cryptography``'s ChaCha20Poly1305.

Each round encrypts one write into libp2p frames (split at 65519 bytes, 2-byte length prefix)
and decrypts it again: ours is one call each way; the baseline calls the AEAD once per frame
from Python, building the nonce and length prefix itself. pytest-benchmark prints the figures;
GB/s = bytes / median time. A second group measures the cost of releasing the GIL by running
the same sizes with the release threshold forced to 0 and to "never".
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from rapidp2p import _core

MAX_PLAIN = 65519
SIZES = [64 * 1024, 1024]


def _transports() -> tuple[_core.conn.NoiseTransport, _core.conn.NoiseTransport]:
    i, r = _core.conn.NoiseHandshake(True), _core.conn.NoiseHandshake(False)
    r.read_message(i.write_message(b""))
    i.read_message(r.write_message(b""))
    r.read_message(i.write_message(b""))
    return i.into_transport(), r.into_transport()


def _ours(size: int) -> Callable[[], bytes]:
    a, b = _transports()
    data = b"\x5a" * size

    def round_trip() -> bytes:
        return b.decrypt(a.encrypt(data))

    return round_trip


def _baseline(size: int) -> Callable[[], bytes]:
    """Per-frame AEAD calls from Python, the way a pure-Python Noise transport does them."""
    key = bytes(range(32))
    enc, dec = ChaCha20Poly1305(key), ChaCha20Poly1305(key)
    counters = [0, 0]
    data = b"\x5a" * size

    def round_trip() -> bytes:
        frames = []
        for pos in range(0, len(data), MAX_PLAIN):
            nonce = b"\x00\x00\x00\x00" + counters[0].to_bytes(8, "little")
            counters[0] += 1
            ct = enc.encrypt(nonce, data[pos : pos + MAX_PLAIN], None)
            frames.append(struct.pack(">H", len(ct)) + ct)
        wire = b"".join(frames)
        out, pos = [], 0
        while pos < len(wire):
            (n,) = struct.unpack_from(">H", wire, pos)
            nonce = b"\x00\x00\x00\x00" + counters[1].to_bytes(8, "little")
            counters[1] += 1
            out.append(dec.decrypt(nonce, wire[pos + 2 : pos + 2 + n], None))
            pos += 2 + n
        return b"".join(out)

    return round_trip


def _report(benchmark: Any, size: int) -> None:
    stats = benchmark.stats.stats
    gbps = size / stats.median / 1e9
    benchmark.extra_info["GB/s"] = round(gbps, 3)
    print(f"\n{benchmark.name}: {gbps:.3f} GB/s (encrypt+decrypt, median)")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s // 1024}KiB")
def test_noise_roundtrip_rapidp2p(benchmark: Any, size: int) -> None:
    fn = _ours(size)
    benchmark.group = f"noise encrypt+decrypt {size // 1024} KiB"
    assert benchmark(fn) == b"\x5a" * size
    _report(benchmark, size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s // 1024}KiB")
def test_noise_roundtrip_cryptography(benchmark: Any, size: int) -> None:
    fn = _baseline(size)
    benchmark.group = f"noise encrypt+decrypt {size // 1024} KiB"
    assert benchmark(fn) == b"\x5a" * size
    _report(benchmark, size)


@pytest.fixture
def gil_threshold() -> Iterator[Callable[[int], None]]:
    previous = _core.conn._noise_gil_release_min()

    def set_threshold(value: int) -> None:
        _core.conn._noise_gil_release_min(value)

    yield set_threshold
    _core.conn._noise_gil_release_min(previous)


@pytest.mark.parametrize("release", [True, False], ids=["release", "hold"])
@pytest.mark.parametrize("size", [1024, 4096, 16384, 65536], ids=lambda s: f"{s}B")
def test_noise_gil_release_cost(
    benchmark: Any,
    gil_threshold: Callable[[int], None],
    size: int,
    release: bool,
) -> None:
    gil_threshold(0 if release else 1 << 62)
    fn = _ours(size)
    benchmark.group = f"noise GIL release cost {size} B"
    assert benchmark(fn) == b"\x5a" * size
    _report(benchmark, size)
