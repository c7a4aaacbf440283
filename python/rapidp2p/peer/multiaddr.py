"""Multiaddrs: self-describing network addresses (``/ip4/1.2.3.4/tcp/4001/p2p/12D3...``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Union

from rapidp2p import _core
from rapidp2p.exceptions import Libp2pError, MultiaddrError
from rapidp2p.peer.peer_id import PeerId

_from_string = _core.wire.multiaddr_from_string
_to_string = _core.wire.multiaddr_to_string
_components = _core.wire.multiaddr_components

_P2P = 0x01A5


class Protocol(NamedTuple):
    """One multiaddr protocol: its multicodec code, name, and whether it carries a value."""

    code: int
    name: str
    has_value: bool


#: Every protocol the codec knows, by code and by name (``ipfs`` is an alias of ``p2p``).
PROTOCOLS_BY_CODE: dict[int, Protocol] = {
    code: Protocol(code, name, has_value)
    for code, name, has_value in _core.wire.multiaddr_protocols()
}
PROTOCOLS_BY_NAME: dict[str, Protocol] = {p.name: p for p in PROTOCOLS_BY_CODE.values()}
PROTOCOLS_BY_NAME["ipfs"] = PROTOCOLS_BY_CODE[_P2P]

# (code, name, value text or None, start offset, value start offset)
_Component = tuple[int, str, str | None, int, int]

MultiaddrLike = Union["Multiaddr", str, bytes]


def _explain(text: str, exc: MultiaddrError) -> str:
    """The codec's message, or for a bad ``/p2p/<id>`` the peer-id wording."""
    for marker in ("/p2p/", "/ipfs/"):
        start = text.find(marker)
        if start >= 0:
            value = text[start + len(marker) :].split("/", 1)[0]
            try:
                PeerId(value)
            except Libp2pError as bad:
                return f"{bad} in multiaddr {text!r}"
    return str(exc)


class Multiaddr:
    """An immutable multiaddr holding its canonical binary form; the text form is cached.

    Equality and hashing use the bytes, so ``/ip6/0::1`` and ``/ip6/::1`` are equal.
    """

    __slots__ = ("_bytes", "_comps", "_text")

    _bytes: bytes
    _text: str | None
    _comps: list[_Component] | None

    def __init__(self, addr: MultiaddrLike) -> None:
        """Parses text (``/ip4/...``) or validates bytes; raises MultiaddrError if malformed."""
        if type(addr) is str:
            try:
                _set_bytes(self, _from_string(addr))
            except MultiaddrError as exc:
                raise MultiaddrError(_explain(addr, exc)) from None
            _set_text(self, None)
        elif isinstance(addr, Multiaddr):
            _set_bytes(self, addr._bytes)
            _set_text(self, addr._text)
        elif isinstance(addr, (bytes, bytearray, memoryview)):
            data = bytes(addr)
            _set_text(self, _to_string(data))
            _set_bytes(self, data)
        elif isinstance(addr, str):
            try:
                _set_bytes(self, _from_string(str(addr)))
            except MultiaddrError as exc:
                raise MultiaddrError(_explain(str(addr), exc)) from None
            _set_text(self, None)
        else:
            raise TypeError(f"Multiaddr() takes str or bytes, not {type(addr).__name__}")
        _set_comps(self, None)

    @classmethod
    def _trusted(cls, data: bytes, text: str | None = None) -> Multiaddr:
        # Bytes known valid (a slice at component boundaries of a valid multiaddr).
        obj = _new(cls)
        _set_bytes(obj, data)
        _set_text(obj, text)
        _set_comps(obj, None)
        return obj

    @classmethod
    def from_bytes(cls, data: bytes) -> Multiaddr:
        """Validates a binary multiaddr (MultiaddrError on anything malformed)."""
        data = bytes(data)
        return cls._trusted(data, _to_string(data))

    def to_bytes(self) -> bytes:
        """The canonical binary form."""
        return self._bytes

    def __bytes__(self) -> bytes:
        return self._bytes

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = _to_string(self._bytes)
            _set_text(self, text)
        return text

    def __repr__(self) -> str:
        return f"<Multiaddr {self}>"

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Multiaddr):
            return self._bytes == other._bytes
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if isinstance(other, Multiaddr):
            return self._bytes != other._bytes
        return NotImplemented

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Multiaddr is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Multiaddr is immutable")

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (Multiaddr, (self._bytes,))

    def _components(self) -> list[_Component]:
        comps = self._comps
        if comps is None:
            comps = _components(self._bytes)
            _set_comps(self, comps)
        return comps

    def protocols(self) -> list[Protocol]:
        """The protocols of the components, in order."""
        by_code = PROTOCOLS_BY_CODE
        return [by_code[c[0]] for c in self._components()]

    def items(self) -> list[tuple[str, str | None]]:
        """(protocol name, value text or None) for each component."""
        return [(c[1], c[2]) for c in self._components()]

    def value_for_protocol(self, protocol: str | int) -> str | None:
        """The text value of the first component of ``protocol`` (name or code).

        Returns None when no component has that protocol, and "" when it has no value.
        """
        if isinstance(protocol, str):
            proto = PROTOCOLS_BY_NAME.get(protocol)
            if proto is None:
                raise MultiaddrError(f"multiaddr: unknown protocol {protocol!r}")
            protocol = proto.code
        for c in self._components():
            if c[0] == protocol:
                return "" if c[2] is None else c[2]
        return None

    def split(self) -> list[Multiaddr]:
        """One single-component multiaddr per component."""
        data = self._bytes
        comps = self._components()
        ends = [c[3] for c in comps[1:]] + [len(data)]
        return [Multiaddr._trusted(data[c[3] : end]) for c, end in zip(comps, ends, strict=True)]

    def encapsulate(self, other: MultiaddrLike) -> Multiaddr:
        """This address with ``other`` appended (``/ip4/.../tcp/1`` + ``/p2p/...``)."""
        if not isinstance(other, Multiaddr):
            other = Multiaddr(other)
        return Multiaddr._trusted(self._bytes + other._bytes)

    def decapsulate(self, other: MultiaddrLike) -> Multiaddr:
        """Cuts this address at the last occurrence of ``other`` (component-aligned).

        As in go-multiaddr, everything from that occurrence on is dropped; if ``other`` does
        not occur, the address is returned unchanged. Cutting everything gives ``/``.
        """
        if not isinstance(other, Multiaddr):
            other = Multiaddr(other)
        data, cut = self._bytes, other._bytes
        if not cut:
            return self
        starts = [c[3] for c in self._components()]
        boundaries = set(starts)
        boundaries.add(len(data))
        for start in reversed(starts):
            if data.startswith(cut, start) and start + len(cut) in boundaries:
                return Multiaddr._trusted(data[:start])
        return self

    def split_peer_id(self) -> tuple[Multiaddr | None, PeerId | None]:
        """Splits a trailing ``/p2p/<peer id>``: (rest or None if empty, peer ID or None)."""
        comps = self._components()
        if not comps or comps[-1][0] != _P2P:
            return self, None
        last = comps[-1]
        data = self._bytes
        peer_id = PeerId._trusted(data[last[4] :], last[2])
        rest = data[: last[3]]
        return (Multiaddr._trusted(rest) if rest else None), peer_id

    def get_peer_id(self) -> PeerId | None:
        """The peer ID of the trailing ``/p2p/`` component, if any."""
        return self.split_peer_id()[1]


_new = object.__new__
_set_bytes: Callable[[Any, Any], None] = vars(Multiaddr)["_bytes"].__set__
_set_text: Callable[[Any, Any], None] = vars(Multiaddr)["_text"].__set__
_set_comps: Callable[[Any, Any], None] = vars(Multiaddr)["_comps"].__set__
