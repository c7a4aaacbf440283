"""Delegated routing over HTTP: the IPFS "Routing V1" API (specs.ipfs.tech/routing/http-routing-v1,
IPIP-337) as a client and as a small server in front of rapidp2p's DHT.

* ``GET /routing/v1/providers/{cid}`` and ``GET /routing/v1/peers/{peer-id}`` return
  ``{"Providers": [...]}`` / ``{"Peers": [...]}`` as JSON, or one record per line as NDJSON
  when the request accepts ``application/x-ndjson``; 404 when nothing was found.
* Records of the ``peer`` schema (``{"Schema": "peer", "ID": ..., "Addrs": [...]}``) are
  used; other schemas and bad addresses are skipped, as the spec asks of clients.

The client speaks plain HTTP/1.1 over TCP through :mod:`rapidp2p.http.plain` (h11); put
TLS in front for a server on the internet.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from rapidp2p.discovery.base import DiscoveryFeed
from rapidp2p.exceptions import DecodeError, Libp2pError
from rapidp2p.http._limits import HttpLimits
from rapidp2p.http.messages import Request, Response
from rapidp2p.http.plain import plain_request
from rapidp2p.peer import Multiaddr, PeerId, PeerInfo

if TYPE_CHECKING:
    from rapidp2p.kad.dht import KadDHT

__all__ = [
    "DelegatedRoutingClient",
    "DelegatedRoutingError",
    "RoutingV1Server",
    "parse_records",
]

log = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"
MAX_RECORDS = 100
"""Records read from one answer (the spec's cap for non-streaming answers)."""
MAX_ADDRS = 32
MAX_BODY = 1 << 20


class DelegatedRoutingError(Libp2pError):
    """The routing server failed, or answered something that is not Routing V1."""


def _peer_of(record: Any) -> PeerInfo | None:
    if not isinstance(record, dict) or record.get("Schema") != "peer":
        return None
    raw_id = record.get("ID")
    if not isinstance(raw_id, str):
        return None
    try:
        pid = PeerId.from_string(raw_id)
    except DecodeError:
        return None
    addrs: list[Multiaddr] = []
    raw_addrs = record.get("Addrs") or []
    if isinstance(raw_addrs, list):
        for text in raw_addrs[:MAX_ADDRS]:
            if not isinstance(text, str):
                continue
            try:
                addrs.append(Multiaddr(text))
            except DecodeError:
                continue
    return PeerInfo(pid, addrs)


def parse_records(body: bytes, content_type: str | None, key: str) -> list[PeerInfo]:
    """The ``peer`` records of a JSON (``{key: [...]}``) or NDJSON answer, capped at
    :data:`MAX_RECORDS`. Raises DelegatedRoutingError for a body that is neither."""
    records: list[Any] = []
    try:
        if content_type is not None and content_type.split(";")[0].strip() == NDJSON:
            for line in body.splitlines():
                if line.strip():
                    records.append(json.loads(line))
                if len(records) >= MAX_RECORDS:
                    break
        else:
            doc = json.loads(body)
            if not isinstance(doc, dict):
                raise DelegatedRoutingError("routing answer is not a JSON object")
            listed = doc.get(key) or []
            if not isinstance(listed, list):
                raise DelegatedRoutingError(f"routing answer's {key} is not a list")
            records = listed[:MAX_RECORDS]
    except (ValueError, UnicodeDecodeError) as exc:
        raise DelegatedRoutingError(f"routing answer is not JSON: {exc}") from exc
    out = [p for p in (_peer_of(r) for r in records) if p is not None]
    return out


class DelegatedRoutingClient:
    """Finds providers and peers through a Routing V1 server at ``host:port``; what it finds
    also feeds the source (``async for``) and the attached host's events."""

    name = "delegated-routing"
    protocols: tuple[str, ...] = ()

    def __init__(self, host: str, port: int, *, prefix: str = "", streaming: bool = True) -> None:
        self.server_host = host
        self.server_port = port
        self.prefix = prefix.rstrip("/")
        self.streaming = streaming
        self.feed = DiscoveryFeed(self.name)
        self._limits = HttpLimits(max_body_bytes=MAX_BODY)

    def __aiter__(self) -> AsyncIterator[PeerInfo]:
        return self.feed.subscribe()

    def on_connection(self, conn: object) -> None:
        """Nothing to do per connection (a discovery source only reports peers)."""

    async def start(self, host: Any) -> None:
        self.feed.attach(host)
        await host.add_service(self)  # registers first: the nested start is skipped

    async def close(self) -> None:
        self.feed.close()

    async def _get(self, path: str, key: str) -> list[PeerInfo]:
        accept = f"{NDJSON}, application/json" if self.streaming else "application/json"
        try:
            resp = await plain_request(
                self.server_host,
                self.server_port,
                "GET",
                f"{self.prefix}/routing/v1/{path}",
                headers=[("accept", accept)],
                limits=self._limits,
            )
        except (OSError, Libp2pError) as exc:
            raise DelegatedRoutingError(f"routing server unreachable: {exc}") from exc
        if resp.status == 404:
            return []
        if resp.status != 200:
            raise DelegatedRoutingError(f"routing server answered {resp.status}")
        found = parse_records(resp.content, resp.header("content-type"), key)
        for info in found:
            if info.addrs:
                self.feed.found(info)
        return found

    async def find_providers(self, cid: str) -> list[PeerInfo]:
        """Providers of ``cid`` (text CID) the server knows."""
        return await self._get(f"providers/{cid}", "Providers")

    async def find_peer(self, peer_id: PeerId) -> PeerInfo | None:
        """The addresses of ``peer_id`` (the server may return other peers too: only the one
        asked for is kept)."""
        found = await self._get(f"peers/{peer_id.to_cid()}", "Peers")
        return next((p for p in found if p.peer_id == peer_id), None)


def _record(info: PeerInfo) -> dict[str, Any]:
    return {
        "Schema": "peer",
        "ID": str(info.peer_id),
        "Addrs": [str(a) for a in info.addrs[:MAX_ADDRS]],
        "Protocols": ["transport-bitswap"],
    }


class RoutingV1Server:
    """A Routing V1 handler over a :class:`~rapidp2p.kad.KadDHT` (serve it with
    :func:`rapidp2p.http.plain.serve_plain` or mount it on a libp2p HTTP server)."""

    def __init__(self, dht: KadDHT, *, max_records: int = MAX_RECORDS) -> None:
        self.dht = dht
        self.max_records = max_records

    async def __call__(self, request: Request) -> Response:
        if request.method != "GET":
            return Response(405, [("allow", "GET")])
        parts = request.path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["routing", "v1"]:
            return Response(404)
        kind, arg = parts[2], parts[3]
        try:
            if kind == "providers":
                found, key = await self._providers(arg), "Providers"
            elif kind == "peers":
                found, key = await self._peer(arg), "Peers"
            else:
                return Response(404)
        except DecodeError as exc:
            return Response(400, [("content-type", "text/plain")], str(exc).encode())
        if not found:
            return Response(404)
        records = [_record(p) for p in found[: self.max_records]]
        accept = request.header("accept") or ""
        if NDJSON in accept:
            body = b"".join(json.dumps(r).encode() + b"\n" for r in records)
            return Response(200, [("content-type", NDJSON)], body)
        return Response(
            200, [("content-type", "application/json")], json.dumps({key: records}).encode()
        )

    async def _providers(self, cid: str) -> list[PeerInfo]:
        found: list[PeerInfo] = []
        try:
            async for info in self.dht.find_providers(cid, count=self.max_records):
                found.append(info)
        except Libp2pError as exc:
            if isinstance(exc, DecodeError):
                raise
            log.debug("routing v1: provider lookup failed: %s", exc)
        return found

    async def _peer(self, text: str) -> list[PeerInfo]:
        pid = PeerId.from_string(text)
        try:
            info = await self.dht.find_peer(pid)
        except Libp2pError as exc:
            if isinstance(exc, DecodeError):
                raise
            return []
        return [info] if info.addrs else []
