"""Multiaddr codec and the Multiaddr class: spec vectors, round trips, bad input."""

from __future__ import annotations

import ipaddress
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidp2p import _core
from rapidp2p.exceptions import DecodeError, MultiaddrError, PeerIdError
from rapidp2p.peer import Multiaddr, PeerId, PeerInfo

PEER = "QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC"
PEER_HEX = "a503221220d52ebb89d85b02a284948203a62ff28389c57c9f42beec4ec20db76a68911c0b"
CERTHASH = "uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g"
CERTHASH_HEX = "d203221220c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2"

# (text, hex) from multiformats/multiaddr test/multiaddr.feature and the construct_success
# table of multiformats/rust-multiaddr tests/lib.rs.
VECTORS = [
    ("/ip4/192.0.2.42/tcp/443", "04c000022a0601bb"),
    ("/ip4/1.2.3.4", "0401020304"),
    ("/ip4/0.0.0.0", "0400000000"),
    ("/ip6/::1", "2900000000000000000000000000000001"),
    ("/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21", "29260100094f819700803eca6566e80c21"),
    (
        "/ip6/fe80::9700:803e:ca65:66e8:c21/ip6zone/wlan0",
        "29fe80000000009700803eca6566e80c212a05776c616e30",
    ),
    ("/udp/0", "91020000"),
    ("/tcp/0", "060000"),
    ("/udp/1234", "910204d2"),
    ("/tcp/1234", "0604d2"),
    ("/udp/65535", "9102ffff"),
    ("/tcp/65535", "06ffff"),
    (f"/p2p/{PEER}", PEER_HEX),
    ("/tcp/1234/http", "0604d2e003"),
    ("/tcp/1234/tls/http", "0604d2c003e003"),
    ("/tcp/1234/https", "0604d2bb03"),
    ("/tcp/1234/http/http-path/user", "0604d2e003e1030475736572"),
    (
        "/tcp/1234/http/http-path/api%2Fv0%2Flogin",
        "0604d2e003e1030c6170692f76302f6c6f67696e",
    ),
    (f"/p2p/{PEER}/tcp/1234", PEER_HEX + "0604d2"),
    ("/ip4/127.0.0.1/udp/1234", "047f000001910204d2"),
    ("/ip4/127.0.0.1/tcp/1234", "047f0000010604d2"),
    (f"/ip4/127.0.0.1/p2p/{PEER}", "047f000001" + PEER_HEX),
    (f"/ip4/127.0.0.1/p2p/{PEER}/tcp/1234", "047f000001" + PEER_HEX + "0604d2"),
    (
        f"/ip6/2001:8a0:7ac5:4201:3ac9:86ff:fe31:7095/tcp/8000/ws/p2p/{PEER}",
        "29200108a07ac542013ac986fffe317095061f40dd03" + PEER_HEX,
    ),
    (
        f"/ip6/2001:8a0:7ac5:4201:3ac9:86ff:fe31:7095/tcp/8000/wss/p2p/{PEER}",
        "29200108a07ac542013ac986fffe317095061f40de03" + PEER_HEX,
    ),
    (f"/ip4/127.0.0.1/tcp/9090/p2p-circuit/p2p/{PEER}", "047f000001062382a202" + PEER_HEX),
    (
        "/dnsaddr/sjc-1.bootstrap.libp2p.io",
        "3819736a632d312e626f6f7473747261702e6c69627032702e696f",
    ),
    (
        "/dnsaddr/sjc-1.bootstrap.libp2p.io/tcp/1234/p2p/"
        "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
        "3819736a632d312e626f6f7473747261702e6c69627032702e696f0604d2a50322122006b3608aa0002740"
        "49eb28ad8e793a26ff6fab281a7d3bd77cd18eb745dfaabb",
    ),
    ("/ip4/127.0.0.1/tcp/127/ws", "047f00000106007fdd03"),
    ("/ip4/127.0.0.1/tcp/127/tls", "047f00000106007fc003"),
    ("/ip4/127.0.0.1/tcp/127/tls/ws", "047f00000106007fc003dd03"),
    ("/ip4/127.0.0.1/tcp/127/noise", "047f00000106007fc603"),
    ("/ip4/127.0.0.1/udp/1234/webrtc-direct", "047f000001910204d29802"),
    (
        f"/ip4/127.0.0.1/udp/1234/webrtc-direct/certhash/{CERTHASH}",
        "047f000001910204d29802" + CERTHASH_HEX,
    ),
    ("/ip4/127.0.0.1/udp/1234/quic/webtransport", "047f000001910204d2cc03d103"),
    (
        f"/ip4/127.0.0.1/udp/1234/webtransport/certhash/{CERTHASH}",
        "047f000001910204d2d103" + CERTHASH_HEX,
    ),
]

# Codes from the multicodec table (table.csv); memory is rust-libp2p's 777.
CODES = {
    "ip4": 0x04, "tcp": 0x06, "ip6": 0x29, "dns": 0x35, "dns4": 0x36, "dns6": 0x37,
    "dnsaddr": 0x38, "udp": 0x0111, "webrtc-direct": 0x0118, "webrtc": 0x0119,
    "p2p-circuit": 0x0122, "unix": 0x0190, "p2p": 0x01A5, "https": 0x01BB, "tls": 0x01C0,
    "sni": 0x01C1, "noise": 0x01C6, "quic": 0x01CC, "quic-v1": 0x01CD,
    "webtransport": 0x01D1, "certhash": 0x01D2, "ws": 0x01DD, "wss": 0x01DE,
    "http": 0x01E0, "memory": 0x0309,
}  # fmt: skip


@pytest.mark.parametrize(("text", "hexed"), VECTORS)
def test_vectors(text: str, hexed: str) -> None:
    data = bytes.fromhex(hexed)
    assert _core.wire.multiaddr_from_string(text) == data
    assert _core.wire.multiaddr_to_string(data) == text
    ma = Multiaddr(text)
    assert ma.to_bytes() == data
    assert str(Multiaddr.from_bytes(data)) == text
    assert Multiaddr(data) == ma


def test_protocol_codes_match_multicodec_table() -> None:
    table = {name: code for code, name, _ in _core.wire.multiaddr_protocols()}
    for name, code in CODES.items():
        assert table[name] == code, name


@pytest.mark.parametrize(
    ("text", "hexed"),
    [
        ("/ip4/1.2.3.4/tcp/80/quic-v1", "0401020304060050cd03"),
        ("/dns4/example.com/tcp/443/wss", "360b6578616d706c652e636f6d0601bbde03"),
        ("/dns6/a.b/udp/1/quic", "3703612e6291020001cc03"),
        ("/dns/a.b/tcp/1/tls/sni/a.b/ws", "3503612e62060001c003c10303612e62dd03"),
        ("/ip4/1.2.3.4/udp/9/webrtc", "040102030491020009" + "9902"),
        ("/unix/%2Ftmp%2Fp2p.sock", "9003" + "0d" + b"/tmp/p2p.sock".hex()),
        ("/unix/a%20b%25c", "9003" + "05" + b"a b%c".hex()),
        ("/memory/1234", "8906" + "00000000000004d2"),
        ("/memory/18446744073709551615", "8906" + "ff" * 8),
    ],
)
def test_more_protocols(text: str, hexed: str) -> None:
    data = bytes.fromhex(hexed)
    assert _core.wire.multiaddr_from_string(text) == data
    assert _core.wire.multiaddr_to_string(data) == text


def test_lenient_text_forms() -> None:
    # Accepted but not canonical: the canonical text comes back.
    assert str(Multiaddr("/ip6/0:0::1/")) == "/ip6/::1"
    assert str(Multiaddr(f"/ipfs/{PEER}")) == f"/p2p/{PEER}"
    cid = PeerId.from_string(PEER).to_cid()
    assert str(Multiaddr(f"/p2p/{cid}")) == f"/p2p/{PEER}"
    assert str(Multiaddr("/tcp/080")) == "/tcp/80"
    assert str(Multiaddr("/unix/%2ftmp")) == "/unix/%2Ftmp"
    assert Multiaddr("/").to_bytes() == b""
    assert str(Multiaddr(b"")) == "/"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "start with '/'"),
        ("ip4/1.2.3.4", "start with '/'"),
        ("/ip4", "/ip4: missing value"),
        ("/ip4/::1", "/ip4: invalid IPv4"),
        ("/ip4/1.2.3", "/ip4: invalid IPv4"),
        ("/ip4/256.1.1.1", "/ip4: invalid IPv4"),
        ("/ip6/1.2.3.4", "/ip6: invalid IPv6"),
        ("/tcp/65536", "/tcp: invalid port"),
        ("/tcp/-1", "/tcp: invalid port"),
        ("/tcp/+80", "/tcp: invalid port"),
        ("/udp/jfodsajfidosajfoidsa", "/udp: invalid port"),
        ("/ip4/127.0.0.1/p2p", "/p2p: missing value"),
        ("/ip4/127.0.0.1/p2p/tcp", "/p2p"),
        ("/p2p-circuit/50", 'unknown protocol "50"'),
        ("/ip4/127.0.0.1/udp/1234/webrtc-direct/certhash", "/certhash: missing value"),
        (
            "/ip4/127.0.0.1/udp/1234/webrtc-direct/certhash/b2uaraocy6yrdblb4sfptaddgimjmmp",
            "/certhash",
        ),
        ("/tcp/1234/http/http-path/a/b", 'unknown protocol "b"'),
        ("/foo/1", 'unknown protocol "foo"'),
        ("/ip4/1.2.3.4//tcp/1", "empty protocol name"),
        ("/dns4/", "/dns4: missing value"),
        ("/unix/%zz", "/unix: bad percent escape"),
        ("/memory/18446744073709551616", "/memory"),
        ("/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5O", "/p2p"),
    ],
)
def test_rejects_text(text: str, match: str) -> None:
    with pytest.raises(MultiaddrError, match=match):
        Multiaddr(text)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x04\x01\x02", "/ip4: value needs 4 bytes"),
        (b"\x01", "unknown protocol code 0x1"),
        (b"\x35\x00", "/dns: empty value"),
        (b"\x35\x01/", "/dns: value contains '/'"),
        (b"\x35\x02\xff\xfe", "/dns: value is not UTF-8"),
        (b"\x35\x05a", "/dns: value needs 5 bytes"),
        (b"\xa5\x03\x02\x12\x00", "/p2p"),
        (b"\xa5\x03\x2d\x00\x2b" + b"\x01" * 43, "/p2p: peer id: identity digest"),
        (b"\x81\x00", "bad protocol code"),
        (b"\x35\xff\xff\xff\xff\x0f", "/dns: value length"),
        (b"\xd2\x03\x03\x12\x01\x00", "/certhash"),
    ],
)
def test_rejects_bytes(data: bytes, match: str) -> None:
    with pytest.raises(MultiaddrError, match=match):
        Multiaddr.from_bytes(data)


def test_class_api() -> None:
    ma = Multiaddr(f"/ip4/127.0.0.1/tcp/4001/p2p/{PEER}")
    assert [p.name for p in ma.protocols()] == ["ip4", "tcp", "p2p"]
    assert [p.code for p in ma.protocols()] == [4, 6, 0x01A5]
    assert ma.value_for_protocol("tcp") == "4001"
    assert ma.value_for_protocol(0x04) == "127.0.0.1"
    assert ma.value_for_protocol("udp") is None
    with pytest.raises(MultiaddrError):
        ma.value_for_protocol("nope")
    assert ma.items() == [("ip4", "127.0.0.1"), ("tcp", "4001"), ("p2p", PEER)]
    rest, pid = ma.split_peer_id()
    assert rest == Multiaddr("/ip4/127.0.0.1/tcp/4001")
    assert pid == PeerId.from_base58(PEER)
    assert ma.get_peer_id() == pid
    assert Multiaddr(f"/p2p/{PEER}").split_peer_id() == (None, pid)
    bare = Multiaddr("/ip4/1.2.3.4/tcp/1")
    assert bare.split_peer_id() == (bare, None)
    assert rest.encapsulate(f"/p2p/{PEER}") == ma
    assert rest.encapsulate(Multiaddr(f"/p2p/{PEER}")) == ma
    assert ma.decapsulate("/tcp/4001") == Multiaddr("/ip4/127.0.0.1")
    assert ma.decapsulate(f"/p2p/{PEER}") == rest
    assert ma.decapsulate("/udp/4001") == ma
    assert ma.decapsulate("/ip4/127.0.0.1") == Multiaddr("/")
    # Component-aligned: /tcp/40 is not a prefix match of /tcp/4001.
    assert Multiaddr("/ip4/1.2.3.4/tcp/4001").decapsulate("/tcp/40") == Multiaddr(
        "/ip4/1.2.3.4/tcp/4001"
    )
    assert [str(m) for m in ma.split()] == ["/ip4/127.0.0.1", "/tcp/4001", f"/p2p/{PEER}"]
    assert repr(bare) == "<Multiaddr /ip4/1.2.3.4/tcp/1>"
    assert hash(Multiaddr("/ip6/0::1")) == hash(Multiaddr("/ip6/::1"))
    assert Multiaddr("/ip6/0::1") == Multiaddr("/ip6/::1")
    assert Multiaddr("/ip4/1.2.3.4") != "/ip4/1.2.3.4"
    assert pickle.loads(pickle.dumps(ma)) == ma
    assert Multiaddr(ma) == ma
    with pytest.raises(AttributeError):
        ma._bytes = b""  # type: ignore[misc]
    with pytest.raises(TypeError):
        Multiaddr(5)  # type: ignore[arg-type]


def test_peer_info() -> None:
    info = PeerInfo.from_multiaddr(f"/ip4/127.0.0.1/tcp/4001/p2p/{PEER}")
    assert info.peer_id == PeerId.from_base58(PEER)
    assert info.addrs == [Multiaddr("/ip4/127.0.0.1/tcp/4001")]
    assert PeerInfo.from_multiaddr(Multiaddr(f"/p2p/{PEER}")).addrs == []
    assert info == PeerInfo(info.peer_id, info.addrs)
    with pytest.raises(PeerIdError):
        PeerInfo.from_multiaddr("/ip4/127.0.0.1/tcp/4001")


# ---- property tests: an independent reference encoder in Python -----------------------------


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def lp(v: bytes) -> bytes:
    return uvarint(len(v)) + v


def pct(s: str) -> str:
    keep = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@")
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in s.encode())


_peer_ids = st.one_of(
    st.binary(max_size=42).map(lambda d: b"\x00" + bytes([len(d)]) + d),
    st.binary(min_size=32, max_size=32).map(lambda d: b"\x12\x20" + d),
)
_dns = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]{1,10}){0,3}", fullmatch=True)


def _component(name: str, value: st.SearchStrategy[tuple[str, bytes]]) -> st.SearchStrategy:
    code = uvarint(CODES[name])
    return value.map(lambda tv: (f"/{name}{tv[0]}", code + tv[1]))


COMPONENT = st.one_of(
    _component("ip4", st.ip_addresses(v=4).map(lambda a: (f"/{a}", a.packed))),
    _component("ip6", st.ip_addresses(v=6).map(lambda a: (f"/{a}", a.packed))),
    *(
        _component(n, st.integers(0, 65535).map(lambda p: (f"/{p}", p.to_bytes(2, "big"))))
        for n in ("tcp", "udp")
    ),
    *(
        _component(n, _dns.map(lambda d: (f"/{d}", lp(d.encode()))))
        for n in ("dns", "dns4", "dns6", "dnsaddr", "sni")
    ),
    *(
        _component(n, st.just(("", b"")))
        for n in (
            "quic",
            "quic-v1",
            "ws",
            "wss",
            "tls",
            "noise",
            "webtransport",
            "webrtc",
            "webrtc-direct",
            "p2p-circuit",
            "http",
            "https",
        )
    ),
    _component("p2p", _peer_ids.map(lambda b: (f"/{_core.peer_id.to_base58(b)}", lp(b)))),
    _component(
        "certhash",
        st.binary(min_size=32, max_size=32).map(
            lambda d: (
                "/" + _core.wire.multibase_encode("base64url", b"\x12\x20" + d),
                lp(b"\x12\x20" + d),
            )
        ),
    ),
    _component(
        "unix", st.text(min_size=1, max_size=30).map(lambda s: (f"/{pct(s)}", lp(s.encode())))
    ),
    _component("memory", st.integers(0, 2**64 - 1).map(lambda n: (f"/{n}", n.to_bytes(8, "big")))),
)


def _ip6_canonical(text: str) -> bool:
    return "/ip6/" not in text


@given(st.lists(COMPONENT, min_size=1, max_size=6))
def test_text_bytes_round_trip(parts: list[tuple[str, bytes]]) -> None:
    text = "".join(t for t, _ in parts)
    data = b"".join(b for _, b in parts)
    assert _core.wire.multiaddr_from_string(text) == data
    out = _core.wire.multiaddr_to_string(data)
    if _ip6_canonical(text):
        assert out == text
    assert _core.wire.multiaddr_from_string(out) == data
    ma = Multiaddr(text)
    assert [p.name for p in ma.protocols()] == [t.split("/")[1] for t, _ in parts]
    assert Multiaddr.from_bytes(ma.to_bytes()) == ma


@given(st.ip_addresses(v=6))
def test_ip6_text_matches_python(addr: ipaddress.IPv6Address) -> None:
    ma = Multiaddr(f"/ip6/{addr}")
    assert ipaddress.IPv6Address(ma.value_for_protocol("ip6")) == addr


@given(st.binary(max_size=80))
def test_random_bytes_only_decode_errors(data: bytes) -> None:
    try:
        ma = Multiaddr.from_bytes(data)
    except DecodeError:
        return
    assert Multiaddr(str(ma)).to_bytes() == data


@given(st.lists(COMPONENT, min_size=1, max_size=4), st.data())
def test_mutated_bytes_only_decode_errors(
    parts: list[tuple[str, bytes]], data: st.DataObject
) -> None:
    raw = bytearray(b"".join(b for _, b in parts))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    for candidate in (bytes(raw), bytes(raw[:cut])):
        try:
            ma = Multiaddr.from_bytes(candidate)
        except DecodeError:
            continue
        assert Multiaddr(str(ma)).to_bytes() == candidate


@given(st.text(alphabet=st.sampled_from("/ip4621tcpud.:%-ab0zQm"), max_size=40))
def test_random_text_only_decode_errors(text: str) -> None:
    try:
        ma = Multiaddr(text)
    except DecodeError:
        return
    assert Multiaddr(str(ma)) == ma


@given(st.text(max_size=40))
def test_random_unicode_only_decode_errors(text: str) -> None:
    try:
        ma = Multiaddr(text)
    except DecodeError:
        return
    assert Multiaddr(str(ma)) == ma


def test_lone_surrogate_is_a_decode_error() -> None:
    with pytest.raises(MultiaddrError):
        Multiaddr("/dns/\ud800")
