"""HTTP over libp2p (libp2p/specs ``http``): serve and call HTTP/1.1 on ``/http/1.1`` streams.

Needs the ``http`` extra (``pip install rapidp2p[http]``, which brings ``h11``, the sans-IO
HTTP/1.1 parser)::

    from rapidp2p.http import HttpClient, HttpServer, Response

    server = await host.add_service(HttpServer(host))
    server.mount("/my-app/1", handler, path="/app/")        # async handler(Request) -> Response
    resp = await HttpClient(other).request(host.peer_id, "GET", "/app/hello")

``asgi_handler(app)`` serves an ASGI application; ``rapidp2p.http.auth`` is the
``libp2p-PeerID`` authentication scheme over plain HTTP.
"""

from __future__ import annotations

from rapidp2p.http._limits import HttpLimits
from rapidp2p.http.asgi import asgi_handler
from rapidp2p.http.client import HttpClient, StreamingResponse
from rapidp2p.http.messages import Handler, Request, Response
from rapidp2p.http.server import HttpServer
from rapidp2p.http.wellknown import PROTOCOL_ID, WELL_KNOWN_PATH

__all__ = [
    "PROTOCOL_ID",
    "WELL_KNOWN_PATH",
    "Handler",
    "HttpClient",
    "HttpLimits",
    "HttpServer",
    "Request",
    "Response",
    "StreamingResponse",
    "asgi_handler",
]
