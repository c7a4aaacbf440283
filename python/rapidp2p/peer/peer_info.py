"""PeerInfo: a peer ID with the addresses it can be dialled at."""

from __future__ import annotations

from collections.abc import Iterable

from rapidp2p.exceptions import PeerIdError
from rapidp2p.peer.multiaddr import Multiaddr, MultiaddrLike
from rapidp2p.peer.peer_id import PeerId


class PeerInfo:
    """A peer ID and its addresses (without the ``/p2p/`` suffix), as ``Host.connect`` takes."""

    __slots__ = ("addrs", "peer_id")

    def __init__(self, peer_id: PeerId, addrs: Iterable[Multiaddr] = ()) -> None:
        self.peer_id = peer_id
        self.addrs: list[Multiaddr] = list(addrs)

    @classmethod
    def from_multiaddr(cls, addr: MultiaddrLike) -> PeerInfo:
        """PeerInfo from ``<transport addr>/p2p/<peer id>`` (PeerIdError if there is no peer ID)."""
        if not isinstance(addr, Multiaddr):
            addr = Multiaddr(addr)
        rest, peer_id = addr.split_peer_id()
        if peer_id is None:
            raise PeerIdError(f"multiaddr {addr} does not end with /p2p/<peer id>")
        return cls(peer_id, [rest] if rest is not None else [])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PeerInfo):
            return self.peer_id == other.peer_id and self.addrs == other.addrs
        return NotImplemented

    # Mutable (addrs is a list), so unhashable; mypy wants __hash__ to stay a method.
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PeerInfo({self.peer_id!r}, {self.addrs!r})"
