"""The client side of one kad request (go-libp2p-kad-dht's message sender): one request per
outbound stream, the answer checked against the request's type; a peer that answers is a
server and joins the routing table.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rapidp2p.exceptions import RemoteProtocolError
from rapidp2p.kad._proto import KadMessage
from rapidp2p.peer import PeerId
from rapidp2p.protocols.framing import encode_delimited, read_delimited
from rapidp2p.protocols.streams import close_quietly

if TYPE_CHECKING:
    from rapidp2p.kad.dht import KadDHT

__all__ = ["Messenger"]


class Messenger:
    """Sends kad requests for one DHT node."""

    def __init__(self, dht: KadDHT) -> None:
        self._dht = dht

    async def request(self, peer: PeerId, msg: KadMessage, *, reply: bool = True) -> KadMessage:
        """Sends ``msg`` to ``peer`` on a new stream; returns the answer (or ``msg`` itself
        for a one-way message, once the peer consumed it)."""
        dht = self._dht
        cfg = dht.config
        timeout = cfg.request_timeout
        stream = await asyncio.wait_for(dht.host.new_stream(peer, dht.protocol), timeout)
        try:
            stream.write(encode_delimited(msg.encode()))
            await stream.drain()
            if not reply:
                # A one-way message counts as delivered only once the peer read it: it closes
                # its side after reading our EOF (a FIN of ours alone proves nothing).
                await stream.close(wait=True, timeout=timeout)
                return msg
            data = await asyncio.wait_for(read_delimited(stream, cfg.max_message_size), timeout)
            if data is None:
                raise RemoteProtocolError("kad stream closed before the answer")
            answer = KadMessage.decode(data, cfg.max_message_size, cfg.k)
        except BaseException:
            stream.reset()
            raise
        await close_quietly(stream)
        if answer.type != msg.type:
            raise RemoteProtocolError(f"kad answer type {answer.type} for request {msg.type}")
        dht.membership.add(peer)  # it answered: a server
        return answer
