"""Identify on every connection, identify-push on protocol changes, events for both.

The wire logic is ``rapidp2p.protocols.identify``; this service wires it to the host: it
serves ``/ipfs/id/1.0.0`` (telling each peer the address we observe it at), runs identify
once per new connection (results recorded in the peerstore, :class:`PeerIdentified`
emitted), and pushes our new protocol list to connected peers when handlers change.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from rapidp2p._aio.stream import Stream
from rapidp2p.exceptions import Libp2pError
from rapidp2p.host.events import PeerIdentified, ProtocolsChanged
from rapidp2p.host.service import ServiceBase
from rapidp2p.peer import Multiaddr, PeerId
from rapidp2p.protocols.identify import (
    PROTOCOL_ID,
    PUSH_PROTOCOL_ID,
    IdentifyInfo,
    handle_identify,
    handle_identify_push,
    identify,
    push_identify,
)
from rapidp2p.protocols.multistream import select_outbound
from rapidp2p.protocols.multistream._timeout import run_with_timeout
from rapidp2p.protocols.streams import close_quietly
from rapidp2p.transport.contracts import Connection

if TYPE_CHECKING:
    from rapidp2p.host.host import Host

__all__ = ["IdentifyService"]

log = logging.getLogger("rapidp2p.identify")


class IdentifyService(ServiceBase):
    """Identify and identify-push for one host."""

    protocols = (PROTOCOL_ID, PUSH_PROTOCOL_ID)
    service_name = "libp2p.identify"

    def __init__(self, host: Host) -> None:
        self.host = host
        self._results: dict[Connection, asyncio.Future[IdentifyInfo]] = {}
        #: Addresses peers told us they see us at (most recent last, bounded).
        self.observed_addrs: list[Multiaddr] = []
        self._push_scheduled = False

    async def _start(self) -> None:
        self.host.set_stream_handler(PROTOCOL_ID, self._handle)
        self.host.set_stream_handler(PUSH_PROTOCOL_ID, self._handle_push)

    async def _handle(self, stream: Stream) -> None:
        await handle_identify(self.host, stream, observed_addr=stream.conn.remote_addr)

    async def _handle_push(self, stream: Stream) -> None:
        peer = stream.remote_peer
        before = set(self._protocols_of(peer))
        info = await handle_identify_push(self.host, stream, peer)
        await stream.close()  # we read it all: our FIN tells the pusher so
        if info.has_protocols:
            after = set(info.protocols)
            if after != before:
                self.host.events.emit(
                    ProtocolsChanged(
                        peer, tuple(sorted(after - before)), tuple(sorted(before - after))
                    )
                )

    def _protocols_of(self, peer: PeerId) -> list[str]:
        try:
            return list(self.host.peerstore.get_protocols(peer))
        except Libp2pError as exc:  # only the ProtocolsChanged diff is lost
            log.warning("peerstore: cannot read protocols of %s: %s", peer, exc)
            return []

    def on_connection(self, mux: Connection) -> None:
        """Starts identify on a new connection (its result is kept for ``identify_peer``)."""
        fut = self.host.spawn_for(mux, self._identify(mux))  # cancelled when it closes
        self._results[mux] = fut
        fut.add_done_callback(_identify_done)
        mux.on_close.append(self._forget)

    def _forget(self, mux: Connection) -> None:
        self._results.pop(mux, None)

    async def identify_peer(self, conn: Connection) -> IdentifyInfo:
        """The identify result of ``conn`` (runs identify if it has not run yet)."""
        fut = self._results.get(conn)
        if fut is None or (fut.done() and (fut.cancelled() or fut.exception() is not None)):
            fut = asyncio.ensure_future(self._identify(conn))
            self._results[conn] = fut
        return await asyncio.shield(fut)

    async def _identify(self, mux: Connection) -> IdentifyInfo:
        timeout = self.host.config.negotiation_timeout
        stream = await run_with_timeout(mux.open_stream(), timeout)
        try:
            # The textbook exchange (header, then proposal) on purpose: identify runs in the
            # background of every new connection, and this way its request reaches the peer
            # after the application's first exchange instead of competing with it for both
            # event loops (a lazy proposal measured 0.2 ms slower for connect + 1-byte RTT).
            stream.protocol = await select_outbound(stream, [PROTOCOL_ID], timeout=timeout)
            self.host._observe_stream(stream)
            before = set(self._protocols_of(mux.remote_peer))
            info = await identify(self.host, stream, mux.remote_peer, timeout=timeout)
        except BaseException:
            stream.reset()
            raise
        await close_quietly(stream)
        if info.observed_addr is not None:
            self.observed_addrs.append(info.observed_addr)
            del self.observed_addrs[:-16]
            self.host.record_observed_addr(mux, info.observed_addr)
        self.host.events.emit(
            PeerIdentified(
                mux.remote_peer,
                info.agent_version,
                info.protocol_version,
                tuple(info.protocols),
                tuple(info.listen_addrs),
                info.observed_addr,
            )
        )
        if before and set(info.protocols) != before:
            after = set(info.protocols)
            self.host.events.emit(
                ProtocolsChanged(
                    mux.remote_peer, tuple(sorted(after - before)), tuple(sorted(before - after))
                )
            )
        return info

    def protocols_changed(self) -> None:
        """Our handlers changed: push the new list to every connected peer (coalesced)."""
        if self._push_scheduled or not self.host.connections():
            return
        self._push_scheduled = True
        asyncio.get_running_loop().call_soon(self._start_push)

    def _start_push(self) -> None:
        self._push_scheduled = False
        for mux in self.host.connections():
            self.host.spawn_for(mux, self._push(mux))

    async def _push(self, mux: Connection) -> None:
        timeout = self.host.config.negotiation_timeout
        try:
            stream = await run_with_timeout(mux.open_stream(), timeout)
        except (Libp2pError, asyncio.TimeoutError):
            return
        try:
            await select_outbound(stream, [PUSH_PROTOCOL_ID], lazy=True, timeout=timeout)
            stream.protocol = PUSH_PROTOCOL_ID
            self.host._observe_stream(stream)
            await push_identify(self.host, stream, remote_addr=mux.remote_addr)
            # Delivered only once the peer read it and closed its side (issue 19).
            await stream.close(wait=True, timeout=timeout)
        except (Libp2pError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            log.debug("identify-push to %s failed: %s", mux.remote_peer, exc)
            stream.reset()

    async def close(self) -> None:
        for fut in self._results.values():
            fut.cancel()
        self._results.clear()
        await super().close()


def _identify_done(task: asyncio.Task[Any]) -> None:
    """Marks the finished task's failure as retrieved."""
    if not task.cancelled():
        task.exception()
