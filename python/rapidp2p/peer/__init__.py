"""Peer identities and addresses: :class:`PeerId`, :class:`Multiaddr`, :class:`PeerInfo`.

The codecs are compiled (``rapidp2p._core``); these classes are thin immutable wrappers that
hold the canonical bytes, so creating, hashing and comparing them stays cheap.
"""

from __future__ import annotations

from rapidp2p.peer.multiaddr import Multiaddr, Protocol
from rapidp2p.peer.peer_id import PeerId
from rapidp2p.peer.peer_info import PeerInfo

__all__ = ["Multiaddr", "PeerId", "PeerInfo", "Protocol"]
