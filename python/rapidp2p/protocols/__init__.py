"""libp2p protocols spoken over a negotiated stream: multistream-select, ping, identify.

Each protocol keeps its wire logic in a sans-IO ``_proto.py`` and its asyncio glue in a thin
module that drives any :class:`~rapidp2p.protocols.multistream.ByteStream`.
"""
