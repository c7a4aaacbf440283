"""Peer discovery: sources that find peers (mDNS, rendezvous, bootstrap lists with /dnsaddr,
delegated routing over HTTP) behind one interface.

Each source is an async iterator of :class:`~rapidp2p.peer.PeerInfo` and, once started on a
host (``await source.start(host)``), emits :class:`PeerDiscovered` on ``host.events``;
:class:`AutoDialer` connects to what they find, up to a target number of peers.
"""

from rapidp2p.discovery.base import AutoDialer, DiscoveryFeed, DiscoverySource, PeerDiscovered

__all__ = ["AutoDialer", "DiscoveryFeed", "DiscoverySource", "PeerDiscovered"]
