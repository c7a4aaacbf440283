"""Helpers for the kad tests: many DHT nodes on the in-memory transport in one process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from rapidp2p import _core
from rapidp2p.host import Host, HostConfig, Limits
from rapidp2p.kad import KadConfig, KadDHT, PermissiveValidator, default_validator
from rapidp2p.peer import PeerId


def fast_config() -> HostConfig:
    """Plaintext security (no Noise cost) and room for a few hundred connections."""
    return HostConfig(
        enable_plaintext=True,
        security_protocols=["/plaintext/2.0.0"],
        limits=Limits(max_connections=1024, max_pending_handshakes=512),
    )


def kad_config(**kw: object) -> KadConfig:
    base: dict[str, object] = {"mode": "server", "request_timeout": 5.0, "query_timeout": 30.0}
    base.update(kw)
    return KadConfig(**base)  # type: ignore[arg-type]


async def make_node(cfg: KadConfig | None = None, *, listen: bool = True) -> KadDHT:
    host = await Host.create(listen=["/memory/0"] if listen else [], config=fast_config())
    dht = KadDHT(
        host,
        cfg or kad_config(),
        validator=default_validator({"test": PermissiveValidator()}),
    )
    await dht.start()
    return dht


@contextlib.asynccontextmanager
async def network(n: int, *, cfg: KadConfig | None = None) -> AsyncIterator[list[KadDHT]]:
    """``n`` server nodes; each bootstraps from node 0 (in batches), then all refresh once."""
    nodes = list(await asyncio.gather(*(make_node(cfg) for _ in range(n))))
    try:
        boot = str(nodes[0].host.full_addrs[0])
        for i in range(1, n, 10):
            await asyncio.gather(*(d.bootstrap([boot]) for d in nodes[i : i + 10]))
        for i in range(0, n, 25):
            await asyncio.gather(*(d.refresh() for d in nodes[i : i + 25]))
        yield nodes
    finally:
        await close_all(nodes)


async def close_all(nodes: list[KadDHT]) -> None:
    await asyncio.gather(*(d.close() for d in nodes), return_exceptions=True)
    await asyncio.gather(*(d.host.close() for d in nodes), return_exceptions=True)


def true_closest(nodes: list[KadDHT], key: bytes, k: int = 20) -> list[PeerId]:
    """Brute force: every node sorted by XOR distance to SHA-256(key)."""
    target = _core.kad.key(key)
    ids = [d.peer_id for d in nodes]
    return sorted(ids, key=lambda p: _core.kad.distance(_core.kad.key(p.to_bytes()), target))[:k]
