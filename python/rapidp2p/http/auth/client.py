"""The client side of ``libp2p-PeerID`` authentication (libp2p/specs ``http/peer-id-auth.md``).

:class:`PeerIdAuthClient` runs the handshake over any request function (plain HTTP here,
any HTTP client elsewhere) the way go-libp2p's ``ClientPeerIDAuth`` does: with no token it
starts the client-initiated handshake (the server proves itself before the body is sent);
with a token it sends the token, and a 401 answer restarts the server-initiated handshake.
Tokens are kept per hostname, bounded.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from rapidp2p.crypto import PrivateKey, PublicKey
from rapidp2p.exceptions import PeerIdAuthError
from rapidp2p.http.auth._params import (
    CHALLENGE_BYTES,
    b64encode,
    build_header,
    decode_public_key,
    new_challenge,
    parse_header,
    sign,
    verify,
)
from rapidp2p.http.messages import Body, Headers, Response
from rapidp2p.peer import PeerId

__all__ = ["PeerIdAuthClient", "SendRequest"]

SendRequest = Callable[[str, str, Headers, Body], Awaitable[Response]]
"""``send(method, path, headers, body) -> Response``: one HTTP request to the server."""

_MAX_TOKENS = 1024


@dataclass
class _Token:
    bearer: str
    peer_id: PeerId
    stored: float


class PeerIdAuthClient:
    """Proves ``key``'s peer ID to HTTP servers and checks theirs."""

    def __init__(self, key: PrivateKey, *, token_ttl: float = 3600.0) -> None:
        self.key = key
        self.public_key_bytes = key.public_key().to_protobuf()
        self.token_ttl = token_ttl
        self._tokens: OrderedDict[str, _Token] = OrderedDict()

    def has_token(self, hostname: str) -> bool:
        """True while a bearer token for ``hostname`` is held and not expired."""
        return self._token(hostname) is not None

    def _token(self, hostname: str) -> _Token | None:
        token = self._tokens.get(hostname)
        if token is not None and time.monotonic() - token.stored > self.token_ttl:
            del self._tokens[hostname]
            return None
        return token

    async def request(
        self,
        send: SendRequest,
        hostname: str,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: Headers | Sequence[tuple[str, str]] = (),
        expected_peer: PeerId | None = None,
    ) -> tuple[PeerId, Response]:
        """Sends the request authenticated; returns the server's proven peer ID and its answer.

        The body goes only in a request made after the server proved its peer ID. Raises
        :class:`PeerIdAuthError` when the server's proof fails or names another peer.
        """
        base = [(n, v) for n, v in headers if n.lower() != "authorization"]
        token = self._token(hostname)
        if token is not None:
            _check_peer(token.peer_id, expected_peer)
            resp = await send(method, path, [*base, _bearer(token.bearer)], body)
            if resp.status != 401:
                return token.peer_id, resp
            return await self._server_initiated(
                send, hostname, method, path, base, body, resp, expected_peer
            )
        return await self._client_initiated(send, hostname, method, path, base, body, expected_peer)

    async def _client_initiated(
        self,
        send: SendRequest,
        hostname: str,
        method: str,
        path: str,
        base: Headers,
        body: bytes,
        expected_peer: PeerId | None,
    ) -> tuple[PeerId, Response]:
        challenge_server = new_challenge()
        first = build_header(
            [
                ("challenge-server", challenge_server),
                ("public-key", b64encode(self.public_key_bytes)),
            ]
        )
        resp = await send(method, path, [*base, ("authorization", first)], b"")
        www = parse_header(resp.header("www-authenticate"))
        if resp.status != 401 or "challenge-client" not in www:
            raise PeerIdAuthError(f"the server did not start the handshake (HTTP {resp.status})")
        if "sig" not in www:  # the server chose to lead: its own handshake
            return await self._server_initiated(
                send, hostname, method, path, base, body, resp, expected_peer
            )
        server_key_bytes, server_key = _server_key(www)
        self._verify_server(server_key, www["sig"], challenge_server, hostname)
        peer_id = PeerId.from_public_key(server_key)
        _check_peer(peer_id, expected_peer)  # before the body leaves
        second = build_header(
            [
                ("opaque", www.get("opaque", "")),
                ("sig", self._sign_challenge(www["challenge-client"], server_key_bytes, hostname)),
            ]
        )
        resp = await send(method, path, [*base, ("authorization", second)], body)
        info = parse_header(resp.header("authentication-info"))
        if "bearer" not in info:
            raise PeerIdAuthError(f"the server refused our signature (HTTP {resp.status})")
        self._store(hostname, info["bearer"], peer_id)
        return peer_id, resp

    async def _server_initiated(
        self,
        send: SendRequest,
        hostname: str,
        method: str,
        path: str,
        base: Headers,
        body: bytes,
        challenge: Response,
        expected_peer: PeerId | None,
    ) -> tuple[PeerId, Response]:
        www = parse_header(challenge.header("www-authenticate"))
        if "challenge-client" not in www:
            raise PeerIdAuthError(f"HTTP {challenge.status} without a libp2p-PeerID challenge")
        server_key_bytes, server_key = _server_key(www)
        challenge_server = new_challenge()
        header = build_header(
            [
                ("public-key", b64encode(self.public_key_bytes)),
                ("challenge-server", challenge_server),
                ("sig", self._sign_challenge(www["challenge-client"], server_key_bytes, hostname)),
                ("opaque", www.get("opaque", "")),
            ]
        )
        resp = await send(method, path, [*base, ("authorization", header)], b"")
        info = parse_header(resp.header("authentication-info"))
        if "sig" not in info or "bearer" not in info:
            raise PeerIdAuthError(f"the server refused our signature (HTTP {resp.status})")
        self._verify_server(server_key, info["sig"], challenge_server, hostname)
        peer_id = PeerId.from_public_key(server_key)
        _check_peer(peer_id, expected_peer)
        self._store(hostname, info["bearer"], peer_id)
        # The server is proven only now: the real request (with its body) goes with the token.
        resp = await send(method, path, [*base, _bearer(info["bearer"])], body)
        return peer_id, resp

    # ---- signatures -----------------------------------------------------------------------

    def _sign_challenge(self, challenge_client: str, server_key_bytes: bytes, hostname: str) -> str:
        if len(challenge_client) < CHALLENGE_BYTES:
            raise PeerIdAuthError("challenge-client shorter than 32 characters")
        return sign(
            self.key,
            [
                ("challenge-client", challenge_client.encode()),
                ("server-public-key", server_key_bytes),
                ("hostname", hostname.encode()),
            ],
        )

    def _verify_server(
        self, server_key: PublicKey, sig: str, challenge_server: str, hostname: str
    ) -> None:
        verify(
            server_key,
            [
                ("challenge-server", challenge_server.encode()),
                ("client-public-key", self.public_key_bytes),
                ("hostname", hostname.encode()),
            ],
            sig,
        )

    def _store(self, hostname: str, bearer: str, peer_id: PeerId) -> None:
        self._tokens[hostname] = _Token(bearer, peer_id, time.monotonic())
        self._tokens.move_to_end(hostname)
        while len(self._tokens) > _MAX_TOKENS:
            self._tokens.popitem(last=False)


def _bearer(token: str) -> tuple[str, str]:
    return ("authorization", build_header([("bearer", token)]))


def _server_key(www: dict[str, str]) -> tuple[bytes, PublicKey]:
    if "public-key" not in www:
        raise PeerIdAuthError("the server's challenge lacks its public key")
    return decode_public_key(www["public-key"])


def _check_peer(peer_id: PeerId, expected: PeerId | None) -> None:
    if expected is not None and peer_id != expected:
        raise PeerIdAuthError(f"the server proved peer {peer_id}, not {expected}")
