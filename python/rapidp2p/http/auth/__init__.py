"""``libp2p-PeerID`` HTTP authentication (libp2p/specs ``http/peer-id-auth.md``).

Both sides prove their libp2p identity by signing the other's challenge with their host
key; the server then hands out an HMAC-sealed bearer token::

    server = PeerIdAuthServer(host.key, hostname_ok=lambda h: h == "example.com")
    app = auth_handler(server, my_handler)            # my_handler(peer_id, request)
    await serve_plain(app, "127.0.0.1", 8080)          # or HttpServer.mount(...)

    client = PeerIdAuthClient(other.key)
    server_peer, resp = await client.request(send, "example.com", "POST", "/x", body=b"...")
"""

from __future__ import annotations

from rapidp2p.http.auth._params import SCHEME
from rapidp2p.http.auth.client import PeerIdAuthClient, SendRequest
from rapidp2p.http.auth.server import AuthDecision, PeerIdAuthServer, auth_handler

__all__ = [
    "SCHEME",
    "AuthDecision",
    "PeerIdAuthClient",
    "PeerIdAuthServer",
    "SendRequest",
    "auth_handler",
]
