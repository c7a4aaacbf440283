"""UPnP IGD messages (sans-IO): SSDP search and its replies, the device description, SOAP
requests and replies, and the small HTTP/1.1 they travel in.

Everything from the network is untrusted and size-capped before it is parsed. XML is parsed
with expat directly, configured against the XML attacks (what ``defusedxml`` does): a
document type declaration (the door to entity expansion and external entities) is refused,
as is any entity declaration, and nesting depth and element count are capped. Only the
elements a control point needs are kept, by their local names (namespaces vary by vendor).
"""

from __future__ import annotations

import ipaddress
import xml.parsers.expat
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit
from xml.sax.saxutils import escape

from rapidp2p.nat.errors import GatewayReplyError, MappingRefused

__all__ = [
    "IGD_DEVICES",
    "SSDP_ADDR",
    "WAN_SERVICES",
    "Element",
    "HttpResponse",
    "WanService",
    "encode_http_request",
    "encode_msearch",
    "encode_soap",
    "parse_description",
    "parse_http_response",
    "parse_soap_response",
    "parse_ssdp_response",
    "parse_xml",
]

SSDP_ADDR = ("239.255.255.250", 1900)
#: Largest SSDP datagram read.
MAX_SSDP = 2048
#: Largest HTTP response (head and body) read from a gateway: a description or a SOAP reply.
MAX_HTTP_RESPONSE = 64 * 1024
MAX_HEAD = 8 * 1024
MAX_HEADERS = 64
MAX_XML_DEPTH = 32
MAX_XML_ELEMENTS = 2000

IGD_DEVICES = (
    "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
)
#: The WAN services that map ports, best first (WANPPPConnection is what PPPoE gateways
#: offer).
WAN_SERVICES = (
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
)


# ---- SSDP -------------------------------------------------------------------------------


def encode_msearch(search_target: str, mx: int = 2) -> bytes:
    """An SSDP M-SEARCH for ``search_target`` (answers within ``mx`` seconds)."""
    return (
        "M-SEARCH * HTTP/1.1\r\n"
        f"HOST: {SSDP_ADDR[0]}:{SSDP_ADDR[1]}\r\n"
        'MAN: "ssdp:discover"\r\n'
        f"MX: {mx}\r\n"
        f"ST: {search_target}\r\n"
        "\r\n"
    ).encode()


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    """Start line and headers (names lower-cased; the first of a repeated header wins)."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes any byte
        raise GatewayReplyError("undecodable header") from exc
    lines = text.split("\r\n")
    if len(lines) > MAX_HEADERS + 1:
        raise GatewayReplyError(f"more than {MAX_HEADERS} header lines")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise GatewayReplyError(f"malformed header line {line[:60]!r}")
        headers.setdefault(name.strip().lower(), value.strip())
    return lines[0], headers


def parse_ssdp_response(data: bytes) -> tuple[str, str]:
    """(search target, description URL) from an M-SEARCH answer; the URL must be plain
    ``http://`` on an IP address (a gateway on the LAN), nothing else is fetched."""
    if len(data) > MAX_SSDP:
        raise GatewayReplyError(f"SSDP reply of {len(data)} bytes (cap {MAX_SSDP})")
    head, _, _ = data.partition(b"\r\n\r\n")
    start, headers = _parse_head(head)
    parts = start.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or parts[1] != "200":
        raise GatewayReplyError(f"not an SSDP search answer: {start[:60]!r}")
    location = headers.get("location", "")
    check_gateway_url(location)
    return headers.get("st", ""), location


def check_gateway_url(url: str) -> tuple[str, int]:
    """(IP, port) of an ``http://IP[:port]/...`` URL; anything else is refused."""
    if len(url) > 512:
        raise GatewayReplyError("URL over 512 characters")
    try:
        parts = urlsplit(url)
        port = parts.port or 80
        host = parts.hostname or ""
        ipaddress.ip_address(host)
    except ValueError as exc:
        raise GatewayReplyError(f"not an http://IP URL: {url[:80]!r}") from exc
    if parts.scheme != "http":
        raise GatewayReplyError(f"not an http:// URL: {url[:80]!r}")
    return host, port


# ---- HTTP -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def encode_http_request(
    method: str, url: str, *, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """An HTTP/1.1 request for ``url`` (``Connection: close``: the response ends at EOF)."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0 or end - pos > 16:
            raise GatewayReplyError("malformed chunk size line")
        size_text = data[pos:end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise GatewayReplyError(f"bad chunk size {size_text[:16]!r}") from exc
        if size < 0:
            raise GatewayReplyError("negative chunk size")
        pos = end + 2
        if size == 0:
            return bytes(out)
        if pos + size > len(data):
            raise GatewayReplyError("chunk truncated")
        out += data[pos : pos + size]
        pos += size
        if data[pos : pos + 2] != b"\r\n":
            raise GatewayReplyError("chunk not followed by CRLF")
        pos += 2


def parse_http_response(data: bytes) -> HttpResponse:
    """A whole HTTP/1.x response (read until the server closed); the body by its
    Content-Length, its chunks, or to the end."""
    if len(data) > MAX_HTTP_RESPONSE:
        raise GatewayReplyError(f"HTTP response over {MAX_HTTP_RESPONSE} bytes")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise GatewayReplyError("HTTP response without an end of headers")
    if len(head) > MAX_HEAD:
        raise GatewayReplyError(f"HTTP head over {MAX_HEAD} bytes")
    start, headers = _parse_head(head)
    parts = start.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise GatewayReplyError(f"not an HTTP response: {start[:60]!r}")
    status = int(parts[1])
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    elif "content-length" in headers:
        text = headers["content-length"]
        if not text.isdigit():
            raise GatewayReplyError(f"bad Content-Length {text[:20]!r}")
        length = int(text)
        if length > len(body):
            raise GatewayReplyError(f"body of {len(body)} bytes, Content-Length {length}")
        body = body[:length]
    return HttpResponse(status, headers, body)


# ---- XML --------------------------------------------------------------------------------


@dataclass
class Element:
    """An XML element by local name (namespace dropped), its text and children."""

    name: str
    text: str = ""
    children: list[Element] = field(default_factory=list)

    def find(self, name: str) -> Element | None:
        return next((c for c in self.children if c.name == name), None)

    def child_text(self, name: str) -> str:
        c = self.find(name)
        return c.text.strip() if c is not None else ""

    def iter(self, name: str) -> list[Element]:
        """Every descendant (and self) named ``name``, document order."""
        out: list[Element] = []
        stack = [self]
        while stack:
            el = stack.pop()
            if el.name == name:
                out.append(el)
            stack.extend(reversed(el.children))
        return out


def parse_xml(data: bytes) -> Element:
    """The root element of ``data``; refuses DTDs and entity declarations, caps depth and
    element count (raises :class:`GatewayReplyError`)."""
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    stack: list[Element] = []
    root: list[Element] = []
    count = 0

    def refuse(*_args: object) -> None:
        raise GatewayReplyError("XML with a document type or entity declaration refused")

    def start(name: str, _attrs: object) -> None:
        nonlocal count
        count += 1
        if count > MAX_XML_ELEMENTS or len(stack) >= MAX_XML_DEPTH:
            raise GatewayReplyError("XML too large or too deep")
        el = Element(name.rsplit(" ", 1)[-1])
        if stack:
            stack[-1].children.append(el)
        else:
            root.append(el)
        stack.append(el)

    def end(_name: str) -> None:
        stack.pop()

    def chars(text: str) -> None:
        if stack and len(stack[-1].text) < 4096:
            stack[-1].text += text

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise GatewayReplyError(f"malformed XML: {exc}") from exc
    if not root:
        raise GatewayReplyError("XML without a root element")
    return root[0]


# ---- device description ----------------------------------------------------------------


@dataclass(frozen=True)
class WanService:
    """A WAN connection service of a gateway: its type and absolute control URL."""

    service_type: str
    control_url: str

    @property
    def version(self) -> int:
        return 2 if self.service_type.endswith(":2") else 1


def parse_description(data: bytes, location: str) -> list[WanService]:
    """The WAN connection services of a device description fetched from ``location``, best
    first (:data:`WAN_SERVICES` order); control URLs resolved against URLBase or the
    location, and kept only when on the same host as the description."""
    if len(data) > MAX_HTTP_RESPONSE:
        raise GatewayReplyError("description over its size cap")
    root = parse_xml(data)
    if root.name != "root":
        raise GatewayReplyError(f"description root is <{root.name[:40]}>, not <root>")
    base = root.child_text("URLBase") or location
    loc_host = check_gateway_url(location)[0]
    found: list[WanService] = []
    for svc in root.iter("service"):
        stype = svc.child_text("serviceType")
        control = svc.child_text("controlURL")
        if stype not in WAN_SERVICES or not control:
            continue
        url = urljoin(base, control)
        try:
            host, _ = check_gateway_url(url)
        except GatewayReplyError:
            continue
        if host != loc_host:
            continue  # a control URL elsewhere than the gateway is not followed
        found.append(WanService(stype, url))
    if not found:
        raise GatewayReplyError("no WANIPConnection or WANPPPConnection service")
    found.sort(key=lambda s: WAN_SERVICES.index(s.service_type))
    return found


# ---- SOAP -------------------------------------------------------------------------------


def encode_soap(service_type: str, action: str, args: list[tuple[str, str]]) -> bytes:
    """The SOAP envelope of ``action`` with ``args`` (values escaped)."""
    inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in args)
    return (
        '<?xml version="1.0"?>\r\n'
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">'
        f'<s:Body><u:{action} xmlns:u="{escape(service_type)}">{inner}</u:{action}>'
        "</s:Body></s:Envelope>"
    ).encode()


def soap_headers(service_type: str, action: str) -> dict[str, str]:
    return {
        "Content-Type": 'text/xml; charset="utf-8"',
        "SOAPAction": f'"{service_type}#{action}"',
    }


def parse_soap_response(resp: HttpResponse, action: str) -> dict[str, str]:
    """The out-arguments of a successful ``action`` (name -> text); a SOAP fault raises
    :class:`MappingRefused` with the UPnP error code, anything else
    :class:`GatewayReplyError`."""
    if not resp.body:
        raise GatewayReplyError(f"HTTP {resp.status} without a body for {action}")
    root = parse_xml(resp.body)
    body = root.find("Body") if root.name == "Envelope" else None
    if body is None:
        raise GatewayReplyError(f"{action}: not a SOAP envelope")
    fault = body.find("Fault")
    if fault is not None or resp.status != 200:
        code_text = ""
        desc = ""
        if fault is not None:
            for err in fault.iter("UPnPError"):
                code_text = err.child_text("errorCode")
                desc = err.child_text("errorDescription")
                break
        code = int(code_text) if code_text.isdigit() and len(code_text) < 6 else 0
        raise MappingRefused(f"{action}: UPnP error {code or resp.status} {desc[:80]}", code=code)
    reply = body.find(f"{action}Response")
    if reply is None:
        raise GatewayReplyError(f"{action}: no {action}Response in the SOAP body")
    return {c.name: c.text.strip() for c in reply.children}
