"""Port mapping codecs (sans-IO): NAT-PMP, PCP, SSDP, HTTP, XML, device description, SOAP.

Every malformed or oversized input raises a typed error (GatewayReplyError, or
MappingRefused for a well-formed refusal) and nothing else."""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapidp2p.exceptions import DecodeError
from rapidp2p.nat import _pmp, _upnp
from rapidp2p.nat.errors import GatewayReplyError, MappingRefused, PortMapError

NONCE = bytes(range(12))

# ---- NAT-PMP ------------------------------------------------------------------------------


def test_pmp_requests_have_the_rfc_layout() -> None:
    assert _pmp.encode_pmp_external() == b"\x00\x00"
    req = _pmp.encode_pmp_map("tcp", 4001, 4001, 3600)
    assert req == struct.pack("!BBHHHI", 0, 2, 0, 4001, 4001, 3600)
    assert _pmp.encode_pmp_map("udp", 4001, 0, 0)[1] == 1
    with pytest.raises(ValueError):
        _pmp.encode_pmp_map("sctp", 4001, 4001, 1)
    with pytest.raises(ValueError):
        _pmp.encode_pmp_map("tcp", 0, 4001, 1)
    with pytest.raises(ValueError):
        _pmp.encode_pmp_map("tcp", 4001, 70000, 1)


def test_pmp_replies_decode() -> None:
    ext = struct.pack("!BBHI4s", 0, 128, 0, 99, bytes([11, 0, 0, 4]))
    assert _pmp.decode_pmp_external(ext) == "11.0.0.4"
    mapped = struct.pack("!BBHIHHI", 0, 130, 0, 99, 4001, 5001, 7200)
    res = _pmp.decode_pmp_map(mapped, "tcp", 4001)
    assert (res.internal_port, res.external_port, res.lifetime) == (4001, 5001, 7200)
    assert res.external_ip is None


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", GatewayReplyError),
        (b"\x00\x82\x00", GatewayReplyError),  # truncated header
        (struct.pack("!BBHIHHI", 1, 130, 0, 0, 4001, 1, 1), GatewayReplyError),  # version
        (struct.pack("!BBHIHHI", 0, 129, 0, 0, 4001, 1, 1), GatewayReplyError),  # UDP reply
        (struct.pack("!BBHIHH", 0, 130, 0, 0, 4001, 1), GatewayReplyError),  # 14 bytes
        (struct.pack("!BBHIHHI", 0, 130, 0, 0, 4002, 1, 1), GatewayReplyError),  # other port
        (struct.pack("!BBHIHHI", 0, 130, 0, 0, 4001, 0, 60), GatewayReplyError),  # ext port 0
        (struct.pack("!BBHIHHI", 0, 130, 2, 0, 4001, 1, 1), MappingRefused),  # refused
    ],
)
def test_pmp_malformed_map_replies_raise_typed_errors(data: bytes, error: type) -> None:
    with pytest.raises(error):
        _pmp.decode_pmp_map(data, "tcp", 4001)


def test_pmp_refusal_carries_its_code_and_errors_are_decode_errors() -> None:
    with pytest.raises(MappingRefused) as info:
        _pmp.decode_pmp_external(struct.pack("!BBHI4s", 0, 128, 3, 0, bytes(4)))
    assert info.value.code == 3
    with pytest.raises(DecodeError):
        _pmp.decode_pmp_external(struct.pack("!BBHI", 0, 128, 0, 0))


# ---- PCP ----------------------------------------------------------------------------------


def _pcp_reply(
    *,
    version: int = 2,
    op: int = 0x81,
    result: int = 0,
    lifetime: int = 3600,
    nonce: bytes = NONCE,
    proto: int = 6,
    internal: int = 4001,
    external: int = 4001,
    ip: bytes = bytes(10) + b"\xff\xff" + bytes([11, 0, 0, 4]),
    extra: bytes = b"",
) -> bytes:
    header = struct.pack("!BBxBII", version, op, result, lifetime, 7) + bytes(12)
    return header + nonce + struct.pack("!B3xHH", proto, internal, external) + ip + extra


def test_pcp_map_request_layout() -> None:
    req = _pmp.encode_pcp_map(NONCE, "udp", 4001, "192.168.1.2", 3600, external_port=4001)
    assert len(req) == 60
    assert req[:4] == bytes([2, 1, 0, 0])
    assert struct.unpack_from("!I", req, 4)[0] == 3600
    assert req[8:24] == bytes(10) + b"\xff\xff" + bytes([192, 168, 1, 2])
    assert req[24:36] == NONCE
    assert req[36] == 17
    assert len(_pmp.encode_pcp_announce("10.0.0.2")) == 24
    with pytest.raises(ValueError):
        _pmp.encode_pcp_map(b"short", "tcp", 1, "10.0.0.2", 1)


def test_pcp_map_reply_decodes_with_the_external_address() -> None:
    res = _pmp.decode_pcp_map(_pcp_reply(external=5000), NONCE, "tcp", 4001)
    assert (res.external_port, res.external_ip, res.lifetime) == (5000, "11.0.0.4", 3600)
    # Options after the MAP body (a multiple of 4) are tolerated.
    assert _pmp.decode_pcp_map(_pcp_reply(extra=bytes(8)), NONCE, "tcp", 4001).external_port


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x02\x81", GatewayReplyError),
        (_pcp_reply()[:40], GatewayReplyError),  # header only, MAP body truncated
        (_pcp_reply() + b"\x00", GatewayReplyError),  # not a multiple of 4
        (_pcp_reply(extra=bytes(1200)), GatewayReplyError),  # over 1100 bytes
        (_pcp_reply(version=3), GatewayReplyError),
        (_pcp_reply(op=0x01), GatewayReplyError),  # a request, not a response
        (_pcp_reply(nonce=bytes(12)), GatewayReplyError),  # someone else's reply
        (_pcp_reply(proto=17), GatewayReplyError),
        (_pcp_reply(internal=4002), GatewayReplyError),
        (_pcp_reply(external=0), GatewayReplyError),
        (_pcp_reply(result=8), MappingRefused),  # NO_RESOURCES
        (struct.pack("!BBHI", 0, 129, 3, 0), GatewayReplyError),  # NAT-PMP noise
    ],
)
def test_pcp_malformed_replies_raise_typed_errors(data: bytes, error: type) -> None:
    with pytest.raises(error):
        _pmp.decode_pcp_map(data, NONCE, "tcp", 4001)


def test_pcp_to_a_nat_pmp_only_gateway_is_unsupported_version() -> None:
    reply = struct.pack("!BBHI", 0, 0x81, 1, 0)  # NAT-PMP "unsupported version"
    with pytest.raises(MappingRefused) as info:
        _pmp.decode_pcp_map(reply, NONCE, "tcp", 4001)
    assert info.value.code == _pmp.PCP_UNSUPP_VERSION
    with pytest.raises(MappingRefused):
        _pmp.decode_pcp_announce(reply)


# ---- SSDP ---------------------------------------------------------------------------------

SSDP_OK = (
    b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n"
    b"ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
    b"LOCATION: http://192.168.1.1:5000/rootDesc.xml\r\n\r\n"
)


def test_msearch_and_ssdp_reply() -> None:
    msg = _upnp.encode_msearch("urn:schemas-upnp-org:device:InternetGatewayDevice:1")
    assert msg.startswith(b"M-SEARCH * HTTP/1.1\r\n") and msg.endswith(b"\r\n\r\n")
    assert b'MAN: "ssdp:discover"' in msg
    st, location = _upnp.parse_ssdp_response(SSDP_OK)
    assert location == "http://192.168.1.1:5000/rootDesc.xml"
    assert st.endswith("InternetGatewayDevice:1")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"NOTIFY * HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 404 Not Found\r\nLOCATION: http://1.2.3.4/\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nST: x\r\n\r\n",  # no LOCATION
        b"HTTP/1.1 200 OK\r\nLOCATION: https://192.168.1.1/d.xml\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nLOCATION: http://router.example/d.xml\r\n\r\n",  # a name
        b"HTTP/1.1 200 OK\r\nLOCATION: file:///etc/passwd\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nLOCATION http://1.2.3.4/\r\n\r\n",  # no colon
        b"HTTP/1.1 200 OK\r\nLOCATION: http://1.2.3.4/" + b"a" * 3000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 100 + b"\r\n",
    ],
)
def test_malformed_ssdp_replies_are_refused(data: bytes) -> None:
    with pytest.raises(GatewayReplyError):
        _upnp.parse_ssdp_response(data)


# ---- HTTP ---------------------------------------------------------------------------------


def test_http_request_and_response() -> None:
    req = _upnp.encode_http_request(
        "POST", "http://10.0.0.1:80/ctl?x=1", body=b"abc", headers={"SOAPAction": '"a#b"'}
    )
    assert req.startswith(b"POST /ctl?x=1 HTTP/1.1\r\nHost: 10.0.0.1:80\r\n")
    assert b"Content-Length: 3\r\n" in req and req.endswith(b"\r\n\r\nabc")
    resp = _upnp.parse_http_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiXX")
    assert (resp.status, resp.body) == (200, b"hi")
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n"
    )
    assert _upnp.parse_http_response(chunked).body == b"abcde"
    assert _upnp.parse_http_response(b"HTTP/1.0 500 X\r\n\r\nto-eof").body == b"to-eof"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",  # no end of headers
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nab\r\n",  # truncated
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 9000 + b"\r\n\r\n",  # head over 8 KiB
        b"HTTP/1.1 200 OK\r\n\r\n" + b"a" * (_upnp.MAX_HTTP_RESPONSE + 1),
    ],
)
def test_malformed_http_responses_are_refused(data: bytes) -> None:
    with pytest.raises(GatewayReplyError):
        _upnp.parse_http_response(data)


# ---- XML, description, SOAP ---------------------------------------------------------------

DESCRIPTION = b"""<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<deviceList><device><deviceList><device>
<serviceList>
<service><serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType>
<controlURL>/ctl/PPP</controlURL></service>
<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<controlURL>/ctl/IPConn</controlURL></service>
<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType>
<controlURL>http://10.9.9.9/elsewhere</controlURL></service>
</serviceList></device></deviceList></device></deviceList></device></root>"""

LOCATION = "http://192.168.1.1:5000/rootDesc.xml"


def test_description_gives_the_wan_services_best_first_on_the_same_host() -> None:
    services = _upnp.parse_description(DESCRIPTION, LOCATION)
    assert [s.control_url for s in services] == [
        "http://192.168.1.1:5000/ctl/IPConn",
        "http://192.168.1.1:5000/ctl/PPP",
    ]  # the v2 service on another host is not followed
    assert services[0].version == 1


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><root>&lol3;</root>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><root>&x;</root>"""


@pytest.mark.parametrize(
    "data",
    [
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        b'<!DOCTYPE root SYSTEM "http://10.0.0.1/evil.dtd"><root/>',
        b"<root>" * 40 + b"</root>" * 40,  # too deep
        b"<root>" + b"<a/>" * 3000 + b"</root>",  # too many elements
        b"<root><unclosed></root>",
        b"\xff\xfe garbage",
        b"",
    ],
)
def test_unsafe_or_malformed_xml_is_refused(data: bytes) -> None:
    with pytest.raises(GatewayReplyError):
        _upnp.parse_xml(data)


@pytest.mark.parametrize(
    "data",
    [
        b"<notroot/>",
        b"<root><device/></root>",  # no WAN service
        DESCRIPTION.replace(b"/ctl/", b"https://192.168.1.1/ctl/"),  # only https control URLs
    ],
)
def test_descriptions_without_a_usable_service_are_refused(data: bytes) -> None:
    with pytest.raises(GatewayReplyError):
        _upnp.parse_description(data, LOCATION)


ST = "urn:schemas-upnp-org:service:WANIPConnection:1"


def _soap(body: str, status: int = 200) -> _upnp.HttpResponse:
    env = (
        '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    )
    return _upnp.HttpResponse(status, {}, env.encode())


def test_soap_request_escapes_and_reply_parses() -> None:
    body = _upnp.encode_soap(ST, "AddPortMapping", [("NewPortMappingDescription", "a<b&c")])
    assert b"a&lt;b&amp;c" in body
    root = _upnp.parse_xml(body)
    assert root.name == "Envelope"
    out = _upnp.parse_soap_response(
        _soap(
            f'<u:GetExternalIPAddressResponse xmlns:u="{ST}">'
            "<NewExternalIPAddress>11.0.0.4</NewExternalIPAddress>"
            "</u:GetExternalIPAddressResponse>"
        ),
        "GetExternalIPAddress",
    )
    assert out == {"NewExternalIPAddress": "11.0.0.4"}


def test_soap_fault_is_a_refusal_with_the_upnp_code() -> None:
    fault = (
        "<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>"
        '<detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode>'
        "<errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail>"
        "</s:Fault>"
    )
    with pytest.raises(MappingRefused) as info:
        _upnp.parse_soap_response(_soap(fault, 500), "AddPortMapping")
    assert info.value.code == 718


@pytest.mark.parametrize(
    "resp",
    [
        _upnp.HttpResponse(200, {}, b""),
        _upnp.HttpResponse(200, {}, b"<html>hello</html>"),
        _soap("<u:SomethingElseResponse/>"),
        _upnp.HttpResponse(200, {}, BILLION_LAUGHS),
    ],
)
def test_malformed_soap_replies_raise_typed_errors(resp: _upnp.HttpResponse) -> None:
    with pytest.raises(GatewayReplyError):
        _upnp.parse_soap_response(resp, "AddPortMapping")


# ---- any bytes: a typed error or a result, never anything else ----------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_datagram_decodes_or_raises_a_typed_error(data: bytes) -> None:
    decoders: list[tuple[Any, type]] = [
        (_pmp.decode_pmp_external, str),
        (lambda d: _pmp.decode_pmp_map(d, "tcp", 4001), _pmp.MapResult),
        (lambda d: _pmp.decode_pcp_map(d, NONCE, "udp", 4001), _pmp.MapResult),
        (_pmp.decode_pcp_announce, type(None)),
        (_upnp.parse_ssdp_response, tuple),
        (_upnp.parse_http_response, _upnp.HttpResponse),
        (_upnp.parse_xml, _upnp.Element),
        (lambda d: _upnp.parse_description(d, LOCATION), list),
        (
            lambda d: _upnp.parse_soap_response(_upnp.HttpResponse(200, {}, d), "AddPortMapping"),
            dict,
        ),
    ]
    for decode, kind in decoders:
        try:
            result = decode(data)
        except PortMapError:
            continue  # the typed error; anything else fails the test
        assert isinstance(result, kind)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [b"HTTP/1.1 200 OK\r\n", b"LOCATION: http://10.0.0.1/\r\n", b"\r\n", b":", b"x", b"\r"]
        ),
        max_size=30,
    )
)
def test_ssdp_and_http_pieces_parse_or_raise_typed_errors(parts: list[bytes]) -> None:
    data = b"".join(parts)
    with contextlib.suppress(PortMapError):  # the typed error; anything else fails
        assert _upnp.parse_ssdp_response(data)[1] == "http://10.0.0.1/"
    with contextlib.suppress(PortMapError):
        assert _upnp.parse_http_response(data).status == 200
