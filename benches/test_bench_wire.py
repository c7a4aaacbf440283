"""Wire codecs side by side with the PyPI packages: ``multiaddr``, ``base58``, ``varint`` and
py-libp2p (``libp2p``). Each benchmark group holds one operation, so pytest-benchmark's table
shows the ratio directly. Baselines that are not importable are skipped with the reason.

py-libp2p pulls in many dependencies, so it lives in its own venv; run the full comparison as
``PYTHONPATH=python /work/venvs/pylibp2p/bin/python -m pytest benches/test_bench_wire.py``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest

from rapidp2p import _core
from rapidp2p.peer import Multiaddr, PeerId

try:
    import multiaddr as py_multiaddr
except ImportError as e:  # pragma: no cover - depends on the environment
    py_multiaddr = None
    MULTIADDR_SKIP = f"PyPI multiaddr not importable: {e}"
try:
    import base58 as py_base58
except ImportError as e:  # pragma: no cover
    py_base58 = None
    BASE58_SKIP = f"PyPI base58 not importable: {e}"
try:
    import varint as py_varint
except ImportError as e:  # pragma: no cover
    py_varint = None
    VARINT_SKIP = f"PyPI varint not importable: {e}"
try:
    from libp2p.crypto.ed25519 import Ed25519PublicKey as LibP2PEd25519PublicKey
    from libp2p.peer.id import ID as LibP2PID
    from libp2p.utils.varint import read_varint_prefixed_bytes_sync
except ImportError as e:  # pragma: no cover
    LibP2PID = None
    LIBP2P_SKIP = (
        f"py-libp2p not importable ({e}); install libp2p==0.8.1 in /work/venvs/pylibp2p "
        "and run this file with that interpreter"
    )


def _need(module: Any, reason_name: str) -> None:
    if module is None:
        reason = globals()[reason_name]
        print(f"\nSKIP: {reason}")
        pytest.skip(reason)


PEER = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
ADDRS = [
    "/ip4/127.0.0.1/tcp/4001",
    "/ip6/2001:8a0:7ac5:4201:3ac9:86ff:fe31:7095/udp/4001/quic-v1",
    f"/ip4/192.0.2.42/tcp/443/p2p/{PEER}",
    "/dns4/example.com/tcp/443/wss",
]
ADDR_BYTES = [_core.wire.multiaddr_from_string(a) for a in ADDRS]
# Ed25519 public key (raw 32 bytes) from the libp2p peer-id spec vectors.
ED25519_RAW = bytes.fromhex("1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e")
ED25519_PB = _core.wire.encode_key_protobuf(1, ED25519_RAW)
PEER_BYTES = _core.peer_id.from_string(PEER)
KEY_PEER = _core.peer_id.to_base58(b"\x00" + bytes([len(ED25519_PB)]) + ED25519_PB)
FRAMES = b"".join(_core.wire.encode_frame(bytes([i]) * (i % 200)) for i in range(100))


def _rapidp2p_key() -> Any:
    """A rapidp2p PublicKey if the crypto package is there, else an object with to_protobuf."""
    try:
        from rapidp2p.crypto import public_key_from_protobuf

        return public_key_from_protobuf(ED25519_PB)
    except ImportError:

        class _Key:
            def to_protobuf(self) -> bytes:
                return ED25519_PB

        return _Key()


def _run_all(fn: Callable[[Any], Any], items: list[Any]) -> Callable[[], None]:
    def go() -> None:
        for item in items:
            fn(item)

    return go


# ---- multiaddr: text -> object (parse + binary encode) ---------------------------------------


@pytest.mark.benchmark(group="multiaddr-parse-text (4 addrs)")
def test_multiaddr_parse_rapidp2p(benchmark: Any) -> None:
    benchmark(_run_all(Multiaddr, ADDRS))
    assert [Multiaddr(a).to_bytes() for a in ADDRS] == ADDR_BYTES


@pytest.mark.benchmark(group="multiaddr-parse-text (4 addrs)")
def test_multiaddr_parse_pypi(benchmark: Any) -> None:
    _need(py_multiaddr, "MULTIADDR_SKIP")
    benchmark(_run_all(py_multiaddr.Multiaddr, ADDRS))
    assert [py_multiaddr.Multiaddr(a).to_bytes() for a in ADDRS] == ADDR_BYTES


# ---- multiaddr: text -> bytes -----------------------------------------------------------------


@pytest.mark.benchmark(group="multiaddr-text-to-bytes (4 addrs)")
def test_multiaddr_to_bytes_rapidp2p(benchmark: Any) -> None:
    benchmark(_run_all(lambda a: Multiaddr(a).to_bytes(), ADDRS))


@pytest.mark.benchmark(group="multiaddr-text-to-bytes (4 addrs)")
def test_multiaddr_to_bytes_pypi(benchmark: Any) -> None:
    _need(py_multiaddr, "MULTIADDR_SKIP")
    benchmark(_run_all(lambda a: py_multiaddr.Multiaddr(a).to_bytes(), ADDRS))


# ---- multiaddr: bytes -> text (decode + format) -----------------------------------------------


@pytest.mark.benchmark(group="multiaddr-bytes-to-text (4 addrs)")
def test_multiaddr_format_rapidp2p(benchmark: Any) -> None:
    benchmark(_run_all(lambda b: str(Multiaddr.from_bytes(b)), ADDR_BYTES))
    assert [str(Multiaddr.from_bytes(b)) for b in ADDR_BYTES] == ADDRS


@pytest.mark.benchmark(group="multiaddr-bytes-to-text (4 addrs)")
def test_multiaddr_format_pypi(benchmark: Any) -> None:
    _need(py_multiaddr, "MULTIADDR_SKIP")
    benchmark(_run_all(lambda b: str(py_multiaddr.Multiaddr(b)), ADDR_BYTES))
    assert [str(py_multiaddr.Multiaddr(b)) for b in ADDR_BYTES] == ADDRS


# ---- multiaddr: split off /p2p/<id> ------------------------------------------------------------


@pytest.mark.benchmark(group="multiaddr-split-peer-id")
def test_multiaddr_split_peer_id_rapidp2p(benchmark: Any) -> None:
    text = ADDRS[2]
    rest, pid = benchmark(lambda: Multiaddr(text).split_peer_id())
    assert str(pid) == PEER and str(rest) == "/ip4/192.0.2.42/tcp/443"


@pytest.mark.benchmark(group="multiaddr-split-peer-id")
def test_multiaddr_split_peer_id_pypi(benchmark: Any) -> None:
    _need(py_multiaddr, "MULTIADDR_SKIP")
    text = ADDRS[2]

    def split() -> tuple[Any, str | None]:
        ma = py_multiaddr.Multiaddr(text)
        pid = ma.get_peer_id()
        return ma.decapsulate(f"/p2p/{pid}"), pid

    rest, pid = benchmark(split)
    assert pid == PEER and str(rest) == "/ip4/192.0.2.42/tcp/443"


# ---- peer ID from a public key -------------------------------------------------------------------


@pytest.mark.benchmark(group="peer-id-from-key (+base58)")
def test_peer_id_from_key_rapidp2p(benchmark: Any) -> None:
    key = _rapidp2p_key()
    text = benchmark(lambda: PeerId.from_public_key(key).to_base58())
    assert text == KEY_PEER


@pytest.mark.benchmark(group="peer-id-from-key (+base58)")
def test_peer_id_from_key_pylibp2p(benchmark: Any) -> None:
    _need(LibP2PID, "LIBP2P_SKIP")
    key = LibP2PEd25519PublicKey.from_bytes(ED25519_RAW)
    text = benchmark(lambda: LibP2PID.from_pubkey(key).to_base58())
    assert text == KEY_PEER


# ---- peer ID base58 text -------------------------------------------------------------------


@pytest.mark.benchmark(group="peer-id-to-base58")
def test_peer_id_to_base58_rapidp2p(benchmark: Any) -> None:
    # A fresh object each round: to_base58 caches its text.
    assert benchmark(lambda: PeerId.from_bytes(PEER_BYTES).to_base58()) == PEER


@pytest.mark.benchmark(group="peer-id-to-base58")
def test_peer_id_to_base58_pypi_base58(benchmark: Any) -> None:
    _need(py_base58, "BASE58_SKIP")
    assert benchmark(lambda: py_base58.b58encode(PEER_BYTES).decode()) == PEER


@pytest.mark.benchmark(group="peer-id-to-base58")
def test_peer_id_to_base58_pylibp2p(benchmark: Any) -> None:
    _need(LibP2PID, "LIBP2P_SKIP")
    assert benchmark(lambda: LibP2PID(PEER_BYTES).to_base58()) == PEER


@pytest.mark.benchmark(group="peer-id-from-base58")
def test_peer_id_from_base58_rapidp2p(benchmark: Any) -> None:
    assert benchmark(lambda: PeerId.from_base58(PEER)).to_bytes() == PEER_BYTES


@pytest.mark.benchmark(group="peer-id-from-base58")
def test_peer_id_from_base58_pypi_base58(benchmark: Any) -> None:
    _need(py_base58, "BASE58_SKIP")
    assert benchmark(lambda: py_base58.b58decode(PEER)) == PEER_BYTES


@pytest.mark.benchmark(group="peer-id-from-base58")
def test_peer_id_from_base58_pylibp2p(benchmark: Any) -> None:
    _need(LibP2PID, "LIBP2P_SKIP")
    assert benchmark(lambda: LibP2PID.from_base58(PEER)).to_bytes() == PEER_BYTES


# ---- varint-length-prefixed frame splitting ------------------------------------------------------


def _split_with_pypi_varint(data: bytes) -> list[bytes]:
    stream = io.BytesIO(data)
    frames = []
    while stream.tell() < len(data):
        n = py_varint.decode_stream(stream)
        frames.append(stream.read(n))
    return frames


@pytest.mark.benchmark(group="varint-frames (100 frames, 9.9 KB)")
def test_frames_rapidp2p(benchmark: Any) -> None:
    frames, used = benchmark(_core.wire.split_frames, FRAMES, 1 << 20)
    assert len(frames) == 100 and used == len(FRAMES)


@pytest.mark.benchmark(group="varint-frames (100 frames, 9.9 KB)")
def test_frames_pypi_varint(benchmark: Any) -> None:
    _need(py_varint, "VARINT_SKIP")
    frames = benchmark(_split_with_pypi_varint, FRAMES)
    assert frames == _core.wire.split_frames(FRAMES, 1 << 20)[0]


@pytest.mark.benchmark(group="varint-frames (100 frames, 9.9 KB)")
def test_frames_pylibp2p(benchmark: Any) -> None:
    _need(LibP2PID, "LIBP2P_SKIP")

    def split(data: bytes) -> list[bytes]:
        stream = io.BytesIO(data)
        frames = []
        while stream.tell() < len(data):
            frames.append(read_varint_prefixed_bytes_sync(stream, 1 << 20))
        return frames

    frames = benchmark(split, FRAMES)
    assert frames == _core.wire.split_frames(FRAMES, 1 << 20)[0]
