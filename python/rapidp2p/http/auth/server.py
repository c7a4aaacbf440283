"""The server side of ``libp2p-PeerID`` authentication (libp2p/specs ``http/peer-id-auth.md``).

:class:`PeerIdAuthServer` is sans-IO: one ``Authorization`` header and the request's hostname
in, a decision out (serve as peer X, or answer 401/400 with these headers). It keeps no
per-client state: challenges travel in an HMAC-sealed ``opaque`` value and tokens are sealed
the same way (go-libp2p's design), so any number of clients cost nothing between requests.
:func:`auth_handler` wraps an application handler with it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rapidp2p.crypto import PrivateKey
from rapidp2p.exceptions import PeerIdAuthError
from rapidp2p.http.auth._params import (
    CHALLENGE_BYTES,
    b64decode,
    b64encode,
    build_header,
    decode_public_key,
    new_challenge,
    open_sealed,
    parse_header,
    seal,
    sign,
    verify,
)
from rapidp2p.http.messages import Handler, Request, Response
from rapidp2p.peer import PeerId

__all__ = ["AuthDecision", "PeerIdAuthServer", "auth_handler"]

CHALLENGE_TTL = 300.0
"""Seconds a challenge (its opaque state) stays valid (go-libp2p: 5 minutes)."""
_MIN_CHALLENGE_CHARS = CHALLENGE_BYTES  # go-libp2p's check: the base64 text, >= 32 chars


@dataclass
class AuthDecision:
    """The outcome for one request: ``peer_id`` set means serve it as that peer; otherwise
    answer ``status`` (401 to (re)start a handshake, 400 for a malformed one). ``headers``
    go on the response either way."""

    peer_id: PeerId | None = None
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)


class PeerIdAuthServer:
    """Authenticates clients' peer IDs and proves ours (``key``) to them.

    ``hostname_ok`` decides which ``Host`` values are served (without TLS the hostname is
    what the client says: deploy behind TLS, as the spec requires, and check it here).
    """

    def __init__(
        self,
        key: PrivateKey,
        *,
        hostname_ok: Callable[[str], bool],
        hmac_key: bytes | None = None,
        token_ttl: float = 3600.0,
        challenge_ttl: float = CHALLENGE_TTL,
    ) -> None:
        self.key = key
        self.public_key_bytes = key.public_key().to_protobuf()
        self.hostname_ok = hostname_ok
        self._secret = hmac_key or secrets.token_bytes(32)
        self.token_ttl = token_ttl
        self.challenge_ttl = challenge_ttl

    def authenticate(
        self, authorization: str | None, hostname: str, now: float | None = None
    ) -> AuthDecision:
        """Decides one request from its ``Authorization`` header and ``Host``."""
        now = time.time() if now is None else now
        if not self.hostname_ok(hostname):
            return AuthDecision(status=400)
        try:
            params = parse_header(authorization)
            if "sig" in params and "opaque" in params:
                return self._verify_challenge(params, hostname, now)
            if "bearer" in params:
                return self._verify_bearer(params["bearer"], hostname, now)
            if "challenge-server" in params and "public-key" in params:
                return self._sign_challenge(params, hostname, now)
            if params:
                return AuthDecision(status=400)
        except PeerIdAuthError:
            return AuthDecision(status=400)
        return self._challenge_client(hostname, now)

    # ---- each step ----------------------------------------------------------------------

    def _challenge_client(
        self, hostname: str, now: float, extra: dict[str, Any] | None = None
    ) -> AuthDecision:
        challenge = new_challenge()
        state = {"challenge-client": challenge, "hostname": hostname, "created": now}
        state.update(extra or {})
        params = [
            ("challenge-client", challenge),
            ("public-key", b64encode(self.public_key_bytes)),
            ("opaque", seal(self._secret, state)),
        ]
        return AuthDecision(status=401, headers=[("www-authenticate", build_header(params))])

    def _sign_challenge(self, params: dict[str, str], hostname: str, now: float) -> AuthDecision:
        """Client-initiated: prove ourselves, and challenge the client in the same answer."""
        client_key_bytes, _ = decode_public_key(params["public-key"])
        server_sig = self._server_sig(params["challenge-server"], client_key_bytes, hostname)
        challenge = new_challenge()
        state = {
            "challenge-client": challenge,
            "hostname": hostname,
            "created": now,
            "client-public-key": b64encode(client_key_bytes),
        }
        header = build_header(
            [
                ("challenge-client", challenge),
                ("public-key", b64encode(self.public_key_bytes)),
                ("sig", server_sig),
                ("opaque", seal(self._secret, state)),
            ]
        )
        return AuthDecision(status=401, headers=[("www-authenticate", header)])

    def _verify_challenge(self, params: dict[str, str], hostname: str, now: float) -> AuthDecision:
        try:
            state = open_sealed(self._secret, params["opaque"])
        except PeerIdAuthError:
            return self._challenge_client(hostname, now)  # forged or stale secret: start over
        created = state.get("created")
        if not isinstance(created, (int, float)) or now - created > self.challenge_ttl:
            return self._challenge_client(hostname, now)
        if state.get("is-token") or state.get("hostname") != hostname:
            return AuthDecision(status=400)
        client_initiated = "client-public-key" in state
        key_b64 = state["client-public-key"] if client_initiated else params.get("public-key")
        if not isinstance(key_b64, str):
            return AuthDecision(status=400)
        client_key_bytes, client_key = decode_public_key(key_b64)
        try:
            verify(
                client_key,
                [
                    ("challenge-client", str(state.get("challenge-client", "")).encode()),
                    ("server-public-key", self.public_key_bytes),
                    ("hostname", hostname.encode()),
                ],
                params["sig"],
            )
        except PeerIdAuthError:
            return self._challenge_client(hostname, now)  # the spec: 401 on a bad signature
        peer_id = PeerId.from_public_key(client_key)
        info: list[tuple[str, str]] = []
        if not client_initiated:
            info.append(
                (
                    "sig",
                    self._server_sig(
                        params.get("challenge-server", ""), client_key_bytes, hostname
                    ),
                )
            )
        info.append(("bearer", self._token(peer_id, hostname, now)))
        return AuthDecision(peer_id, 200, [("authentication-info", build_header(info))])

    def _verify_bearer(self, bearer: str, hostname: str, now: float) -> AuthDecision:
        try:
            state = open_sealed(self._secret, bearer)
        except PeerIdAuthError:
            return self._challenge_client(hostname, now)
        created = state.get("created")
        if (
            not state.get("is-token")
            or not isinstance(created, (int, float))
            or now - created > self.token_ttl
            or state.get("hostname") != hostname
        ):
            return self._challenge_client(hostname, now)
        try:
            peer_id = PeerId.from_bytes(b64decode(str(state.get("peer-id", ""))))
        except (PeerIdAuthError, ValueError):
            return AuthDecision(status=400)
        return AuthDecision(peer_id, 200)

    def _server_sig(self, challenge_server: str, client_key_bytes: bytes, hostname: str) -> str:
        if len(challenge_server) < _MIN_CHALLENGE_CHARS:
            raise PeerIdAuthError("challenge-server shorter than 32 characters")
        return sign(
            self.key,
            [
                ("challenge-server", challenge_server.encode()),
                ("client-public-key", client_key_bytes),
                ("hostname", hostname.encode()),
            ],
        )

    def _token(self, peer_id: PeerId, hostname: str, now: float) -> str:
        state = {
            "is-token": True,
            "peer-id": b64encode(peer_id.to_bytes()),
            "hostname": hostname,
            "created": now,
        }
        return seal(self._secret, state)


AuthenticatedHandler = Callable[[PeerId, Request], Awaitable[Response]]


def auth_handler(server: PeerIdAuthServer, handler: AuthenticatedHandler) -> Handler:
    """A handler that serves ``handler(peer_id, request)`` only to authenticated peers."""

    async def handle(request: Request) -> Response:
        decision = server.authenticate(
            request.header("authorization"), request.header("host") or ""
        )
        if decision.peer_id is None:
            return Response(decision.status, decision.headers, b"")
        response = await handler(decision.peer_id, request)
        response.headers = list(response.headers) + decision.headers
        return response

    return handle
