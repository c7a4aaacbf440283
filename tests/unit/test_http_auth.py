"""``libp2p-PeerID`` HTTP authentication: the spec's signature vectors, both handshakes
between our client and server over plain HTTP on loopback, tokens, and refusals."""

from __future__ import annotations

import pytest

from rapidp2p.crypto import generate_keypair, private_key_from_protobuf
from rapidp2p.exceptions import PeerIdAuthError
from rapidp2p.http import Request, Response
from rapidp2p.http.auth import PeerIdAuthClient, PeerIdAuthServer, auth_handler
from rapidp2p.http.auth._params import (
    b64decode,
    b64encode,
    build_header,
    data_to_sign,
    parse_header,
    sign,
)
from rapidp2p.http.plain import plain_request, serve_plain
from rapidp2p.peer import PeerId

# libp2p/specs http/peer-id-auth.md, "Signing Example" and the complete handshake examples.
SERVER_KEY = private_key_from_protobuf(
    bytes.fromhex(
        "0801124001010101010101010101010101010101010101010101010101010101010101018a88e3dd7409f195"
        "fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    )
)
CLIENT_KEY = private_key_from_protobuf(
    bytes.fromhex(
        "0801124002020202020202020202020202020202020202020202020202020202020202028139770ea87d175f"
        "56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
    )
)


def test_spec_signing_example() -> None:
    client_pub = CLIENT_KEY.public_key().to_protobuf()
    assert (
        client_pub.hex()
        == "080112208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
    )
    parts = [
        ("hostname", b"example.com"),
        ("challenge-server", b"ERERERERERERERERERERERERERERERERERERERERERE="),
        ("client-public-key", client_pub),
    ]
    assert data_to_sign(parts).hex() == (
        "6c69627032702d5065657249443d6368616c6c656e67652d7365727665723d45524552455245524552455245"
        "5245524552455245524552455245524552455245524552455245524552453d36636c69656e742d7075626c69"
        "632d6b65793d080112208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3941468"
        "6f73746e616d653d6578616d706c652e636f6d"
    )
    assert sign(SERVER_KEY, parts) == (
        "UA88qZbLUzmAxrD9KECbDCgSKAUBAvBHrOCF2X0uPLR1uUCF7qGfLPc7dw3Olo-LaFCDpk5sXN7TkLWPVvuXAA=="
    )


def test_spec_handshake_signatures() -> None:
    server_pub = SERVER_KEY.public_key().to_protobuf()
    client_pub = CLIENT_KEY.public_key().to_protobuf()
    assert b64encode(server_pub) == "CAESIIqI4910CfGV_VLbLTy6XXLKZwm_HZQSG_N0iAG0D29c"
    assert b64encode(client_pub) == "CAESIIE5dw6ofRdfVqNUZsNMfszLjYqRtO43ol32D1uPybOU"
    client_sig = sign(
        CLIENT_KEY,
        [
            ("challenge-client", b"ERERERERERERERERERERERERERERERERERERERERERE="),
            ("server-public-key", server_pub),
            ("hostname", b"example.com"),
        ],
    )
    # The client-initiated example's client signature. (The server-initiated example lists
    # the same inputs with another signature, 5RT0Bb...; Ed25519 is deterministic, so one of
    # the two examples was generated from inputs other than those the spec shows.)
    assert client_sig == (
        "OrwJPO4buHKJdKXP2av8PFwv3XF_-m5MqndskeVV5UzufYzBCTm7RBaFnBS1sEhuQHZSZPh9RJgN5NmLzrUrBQ=="
    )
    server_sig = sign(
        SERVER_KEY,
        [
            ("challenge-server", b"MzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMz"),
            ("client-public-key", client_pub),
            ("hostname", b"example.com"),
        ],
    )
    assert server_sig == (
        "HQ7BJRaSpRhNCORNiALNJENdwXUyq0eM2cxNoxe-XnQw6oEAMaeYnjMYaHHjgq0XNxZmy4W2ngKUcI1CgprLCQ=="
    )


def test_header_parsing() -> None:
    # The shape go-libp2p writes (spec example), with another scheme after it.
    value = (
        'libp2p-PeerID challenge-client="ERERERERERERERERERERERERERERERERERERERERERE=", '
        'public-key="CAESIIqI4910CfGV_VLbLTy6XXLKZwm_HZQSG_N0iAG0D29c", opaque="abc", '
        'unknown="x" Basic realm="r"'
    )
    assert parse_header(value) == {
        "challenge-client": "ERERERERERERERERERERERERERERERERERERERERERE=",
        "public-key": "CAESIIqI4910CfGV_VLbLTy6XXLKZwm_HZQSG_N0iAG0D29c",
        "opaque": "abc",
    }
    assert parse_header(build_header([("bearer", "t"), ("sig", "")])) == {"bearer": "t"}
    assert parse_header("Basic abc") == {}
    assert b64decode("CAESIIqI4910CfGV_VLbLTy6XXLKZwm_HZQSG_N0iAG0D29c") == b64decode(
        "CAESIIqI4910CfGV_VLbLTy6XXLKZwm_HZQSG_N0iAG0D29c"
    )
    for bad in ["libp2p-PeerID sig=unquoted", "libp2p-PeerID " + "x" * 3000]:
        with pytest.raises(PeerIdAuthError):
            parse_header(bad)
    with pytest.raises(PeerIdAuthError):
        b64decode("not*base64")


class Recorder:
    """A plain-HTTP sender that remembers every request's Authorization header and body."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sent: list[tuple[str | None, bytes]] = []

    async def __call__(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> Response:
        auth = next((v for n, v in headers if n.lower() == "authorization"), None)
        self.sent.append((auth, body if isinstance(body, bytes) else b"<stream>"))
        return await plain_request("127.0.0.1", self.port, method, path, headers=headers, body=body)


async def start_server(server_key=SERVER_KEY, **kwargs):  # type: ignore[no-untyped-def]
    seen: list[tuple[PeerId, bytes]] = []

    async def whoami(peer_id: PeerId, request: Request) -> Response:
        body = await request.read()
        seen.append((peer_id, body))
        return Response(200, [], f"hello {peer_id} ({len(body)} B)".encode())

    auth = PeerIdAuthServer(server_key, hostname_ok=lambda h: h.startswith("127.0.0.1:"), **kwargs)
    srv = await serve_plain(auth_handler(auth, whoami))
    port = srv.sockets[0].getsockname()[1]
    return srv, port, seen, auth


async def test_client_initiated_then_bearer_token() -> None:
    srv, port, seen, _ = await start_server()
    async with srv:
        client = PeerIdAuthClient(CLIENT_KEY)
        host = f"127.0.0.1:{port}"
        send = Recorder(port)
        server_id, resp = await client.request(
            send,
            host,
            "POST",
            "/whoami",
            body=b"payload",
            expected_peer=PeerId.from_public_key(SERVER_KEY.public_key()),
        )
        client_id = PeerId.from_public_key(CLIENT_KEY.public_key())
        assert server_id == PeerId.from_public_key(SERVER_KEY.public_key())
        assert resp.status == 200 and resp.content == f"hello {client_id} (7 B)".encode()
        # Two requests: challenge-server (no body), then the signature with the body.
        assert [parse_header(a).keys() for a, _ in send.sent] == [
            {"challenge-server", "public-key"},
            {"opaque", "sig"},
        ]
        assert [b for _, b in send.sent] == [b"", b"payload"]
        assert seen == [(client_id, b"payload")]
        assert client.has_token(host)

        # Next request: the bearer token alone.
        _, resp = await client.request(send, host, "GET", "/whoami")
        assert resp.status == 200
        assert list(parse_header(send.sent[-1][0]).keys()) == ["bearer"]
        assert len(send.sent) == 3
        assert seen[-1] == (client_id, b"")


async def test_rejected_token_runs_the_server_initiated_handshake() -> None:
    srv, port, seen, _ = await start_server(hmac_key=b"k" * 32)
    host = f"127.0.0.1:{port}"
    client = PeerIdAuthClient(CLIENT_KEY)
    async with srv:
        await client.request(Recorder(port), host, "GET", "/")
    # The server restarts with another secret: the old token no longer opens.
    srv, port2, seen, _ = await start_server(hmac_key=b"j" * 32)
    assert client.has_token(host)
    async with srv:
        send = Recorder(port2)
        client._tokens[f"127.0.0.1:{port2}"] = client._tokens.pop(host)
        host = f"127.0.0.1:{port2}"
        server_id, resp = await client.request(send, host, "PUT", "/", body=b"data")
        assert server_id == PeerId.from_public_key(SERVER_KEY.public_key())
        assert resp.status == 200 and resp.content.endswith(b"(4 B)")
        assert [list(parse_header(a)) for a, _ in send.sent] == [
            ["bearer"],  # rejected: 401 with challenge-client
            ["public-key", "challenge-server", "sig", "opaque"],  # server-initiated
            ["bearer"],  # the new token, with the body
        ]
        assert [b for _, b in send.sent] == [b"data", b"", b"data"]
        assert seen[-1][1] == b"data"


async def test_server_that_cannot_prove_its_key_is_refused() -> None:
    impostor = generate_keypair()
    srv, port, seen, _ = await start_server(server_key=impostor)
    async with srv:
        client = PeerIdAuthClient(CLIENT_KEY)
        with pytest.raises(PeerIdAuthError, match="not"):
            await client.request(
                Recorder(port),
                f"127.0.0.1:{port}",
                "POST",
                "/",
                body=b"secret",
                expected_peer=PeerId.from_public_key(SERVER_KEY.public_key()),
            )
        # The impostor proved its own key, not the expected one: the body never reached it.
        assert seen == []


def test_server_decisions_on_bad_input() -> None:
    auth = PeerIdAuthServer(SERVER_KEY, hostname_ok=lambda h: h == "example.com", token_ttl=60)
    assert auth.authenticate(None, "evil.com").status == 400
    first = auth.authenticate(None, "example.com", now=1000.0)
    assert first.status == 401 and first.peer_id is None
    www = parse_header(dict(first.headers)["www-authenticate"])
    assert set(www) == {"challenge-client", "public-key", "opaque"}

    client_pub = b64encode(CLIENT_KEY.public_key().to_protobuf())
    server_pub = SERVER_KEY.public_key().to_protobuf()

    def answer(signer, opaque: str, challenge: str, hostname: str = "example.com") -> str:  # type: ignore[no-untyped-def]
        sig = sign(
            signer,
            [
                ("challenge-client", challenge.encode()),
                ("server-public-key", server_pub),
                ("hostname", hostname.encode()),
            ],
        )
        return build_header(
            [
                ("public-key", client_pub),
                ("challenge-server", "c" * 32),
                ("sig", sig),
                ("opaque", opaque),
            ]
        )

    good = answer(CLIENT_KEY, www["opaque"], www["challenge-client"])
    ok = auth.authenticate(good, "example.com", now=1001.0)
    assert ok.peer_id == PeerId.from_public_key(CLIENT_KEY.public_key())
    info = parse_header(dict(ok.headers)["authentication-info"])
    assert set(info) == {"sig", "bearer"}

    # Signed by another key than the one announced: 401 and a fresh challenge.
    forged = answer(generate_keypair(), www["opaque"], www["challenge-client"])
    assert auth.authenticate(forged, "example.com", now=1001.0).status == 401
    # A tampered opaque value, or one past its 5 minutes: start over.
    tampered = www["opaque"][:-4] + ("AAAA" if not www["opaque"].endswith("AAAA") else "BBBB")
    assert (
        auth.authenticate(
            answer(CLIENT_KEY, tampered, www["challenge-client"]), "example.com"
        ).status
        == 401
    )
    assert auth.authenticate(good, "example.com", now=1000.0 + 301).status == 401
    # A too-short challenge-server: malformed.
    short = good.replace('challenge-server="' + "c" * 32, 'challenge-server="' + "c" * 8)
    assert auth.authenticate(short, "example.com", now=1001.0).status == 400

    bearer = build_header([("bearer", info["bearer"])])
    assert auth.authenticate(bearer, "example.com", now=1030.0).peer_id == ok.peer_id
    assert auth.authenticate(bearer, "example.com", now=1001.0 + 61).status == 401  # expired
    # The opaque challenge state is not a token, nor the token a challenge.
    assert (
        auth.authenticate(
            build_header([("bearer", www["opaque"])]), "example.com", now=1001.0
        ).status
        == 401
    )
    # Unknown parameters are ignored (a plain challenge follows); a malformed one is a 400.
    assert auth.authenticate('libp2p-PeerID foo="bar"', "example.com").status == 401
    assert auth.authenticate("libp2p-PeerID sig=unquoted", "example.com").status == 400
    assert auth.authenticate("libp2p-PeerID " + "x" * 3000, "example.com").status == 400
