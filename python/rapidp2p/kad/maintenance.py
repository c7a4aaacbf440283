"""Periodic DHT work (go-libp2p-kad-dht's ``rt_refresh_manager`` and republisher): refresh
the routing table when due, expire the stores, republish the records we originated and the
keys we provide.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from rapidp2p.kad.store import StoredRecord

if TYPE_CHECKING:
    from rapidp2p.kad.dht import KadDHT

__all__ = ["Maintenance"]

log = logging.getLogger("rapidp2p.kad")


class Maintenance:
    """The maintenance loop of one DHT node."""

    def __init__(self, dht: KadDHT) -> None:
        self._dht = dht

    async def run(self) -> None:
        cfg = self._dht.config
        while True:
            await asyncio.sleep(min(cfg.maintenance_interval, cfg.refresh_interval))
            try:
                await self.once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("kad maintenance failed")

    async def once(self) -> None:
        """Refresh when due, expire stores, republish what we originated when due."""
        dht = self._dht
        ops = dht.operations
        cfg = dht.config
        if dht._loop_clock() - dht._last_refresh >= cfg.refresh_interval and len(dht.routing):
            await ops.refresh()
        now = dht._now()
        dht.records.expire(now)
        dht.providers.expire(now)
        for rec in dht.records.originated():
            if now - rec.received >= cfg.record_republish_interval:
                fresh = StoredRecord(rec.key, rec.value, now, now + cfg.record_ttl, True)
                dht.records.put(fresh, now)
                await ops.put_to_closest(rec.key, rec.value)
        for key, last in list(dht._provided.items()):
            if now - last >= cfg.provider_republish_interval:
                await ops.provide(key)
