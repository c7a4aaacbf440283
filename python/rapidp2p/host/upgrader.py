"""Raw connection -> secured, multiplexed connection.

multistream-select picks the security protocol (``/noise``; ``/plaintext/2.0.0`` only when
enabled), the handshake proves the remote's identity, then the muxer: taken from the Noise
early-negotiation extension when both sides list ``/yamux/1.0.0``, else negotiated with
multistream-select inside the secured channel. The whole upgrade runs under one timeout.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rapidp2p import _core
from rapidp2p._aio.connection import MuxedConnection
from rapidp2p.exceptions import (
    ConnectionClosedError,
    HandshakeError,
    Libp2pError,
    NegotiationError,
    UpgradeError,
)
from rapidp2p.security.noise import NOISE_PROTOCOL_ID, SecureSession, noise_inbound, noise_outbound
from rapidp2p.security.plaintext import PLAINTEXT_PROTOCOL_ID, plaintext_handshake

if TYPE_CHECKING:
    from rapidp2p.crypto import PrivateKey
    from rapidp2p.peer import PeerId

__all__ = ["YAMUX_PROTOCOL_ID", "MuxerOptions", "Upgrader"]

YAMUX_PROTOCOL_ID = "/yamux/1.0.0"


@dataclass
class MuxerOptions:
    """Arguments of ``_core.Connection`` (yamux limits and windows)."""

    max_streams: int = 512
    initial_window: int = 256 * 1024
    max_window: int = 16 * 1024 * 1024
    ack_backlog: int = 256
    keepalive_interval: float | None = 10.0


class Upgrader:
    """Secures and multiplexes raw connections for one local identity."""

    def __init__(
        self,
        key: PrivateKey,
        *,
        enable_plaintext: bool = False,
        timeout: float = 15.0,
        muxer_options: MuxerOptions | None = None,
        security_protocols: list[str] | None = None,
        early_muxer: bool = True,
    ) -> None:
        self.key = key
        self.timeout = timeout
        self.muxer_options = muxer_options or MuxerOptions()
        self.security_protocols = [NOISE_PROTOCOL_ID]
        if enable_plaintext:
            self.security_protocols.append(PLAINTEXT_PROTOCOL_ID)
        if security_protocols is not None:
            if PLAINTEXT_PROTOCOL_ID in security_protocols and not enable_plaintext:
                raise ValueError("plaintext security needs enable_plaintext=True")
            self.security_protocols = list(security_protocols)
        self.muxers = [YAMUX_PROTOCOL_ID]
        #: List our muxers in the Noise handshake (saves a round trip when both sides do).
        self.early_muxer = early_muxer

    async def upgrade_outbound(
        self, mux: MuxedConnection, expected_peer: PeerId | None = None
    ) -> None:
        await self._run(mux, True, expected_peer)

    async def upgrade_inbound(self, mux: MuxedConnection) -> None:
        await self._run(mux, False, None)

    async def _run(self, mux: MuxedConnection, initiator: bool, expected: PeerId | None) -> None:
        try:
            await asyncio.wait_for(self._upgrade(mux, initiator, expected), self.timeout)
        except asyncio.TimeoutError:
            err = UpgradeError(f"upgrade did not finish within {self.timeout} s")
            mux.abort(err)
            raise err from None
        except (Libp2pError, asyncio.IncompleteReadError, OSError) as exc:
            mux.abort(exc)
            if isinstance(exc, (HandshakeError, UpgradeError)):
                raise
            raise UpgradeError(f"upgrade failed: {exc}") from exc
        except BaseException:
            mux.abort()
            raise

    async def _upgrade(
        self, mux: MuxedConnection, initiator: bool, expected: PeerId | None
    ) -> None:
        from rapidp2p.protocols.multistream import select_inbound, select_outbound

        raw = mux.raw_stream()
        if mux.transport is None:
            raise ConnectionClosedError("connection closed before the upgrade")
        if initiator:
            security = await select_outbound(raw, self.security_protocols)
        else:
            security = await select_inbound(raw, self.security_protocols)
        session: SecureSession
        if security == NOISE_PROTOCOL_ID:
            early = self.muxers if self.early_muxer else []
            if initiator:
                session = await noise_outbound(raw, self.key, expected, early)
            else:
                session = await noise_inbound(raw, self.key, early)
        elif security == PLAINTEXT_PROTOCOL_ID:
            session = await plaintext_handshake(raw, self.key, expected)
        else:  # pragma: no cover - select_* only returns what we offered
            raise NegotiationError(f"unexpected security protocol {security!r}")
        mux.remote_peer = session.remote_peer
        mux.remote_key = session.remote_key  # type: ignore[attr-defined]
        mux.local_peer = _peer_id_of(self.key)
        mux.security = session.protocol
        opts = self.muxer_options
        kwargs: dict[str, Any] = {
            "initiator": initiator,
            "max_streams": opts.max_streams,
            "initial_window": opts.initial_window,
            "max_window": opts.max_window,
            "ack_backlog": opts.ack_backlog,
            "keepalive_interval": opts.keepalive_interval,
        }
        if session.early_muxer == YAMUX_PROTOCOL_ID:
            mux.muxer = YAMUX_PROTOCOL_ID
            mux.start_muxer(_core.Connection(session.handshake, **kwargs))
            return
        if session.handshake is None:
            # Plaintext: the muxer is negotiated on the raw bytes.
            if initiator:
                muxer = await select_outbound(raw, self.muxers)
            else:
                muxer = await select_inbound(raw, self.muxers)
            mux.muxer = muxer
            mux.start_muxer(_core.Connection(None, **kwargs))
            return
        await self._negotiate_muxer_secured(mux, session, initiator, kwargs)

    async def _negotiate_muxer_secured(
        self, mux: MuxedConnection, session: SecureSession, initiator: bool, kwargs: dict[str, Any]
    ) -> None:
        """multistream-select for the muxer inside Noise (peers without early negotiation)."""
        from rapidp2p.protocols.multistream import select_inbound, select_outbound

        conn = _core.Connection(session.handshake, **kwargs)
        mux.start_preamble(conn)
        pre = mux.preamble_stream()
        if initiator:
            muxer = await select_outbound(pre, self.muxers)
        else:
            muxer = await select_inbound(pre, self.muxers)
        mux.muxer = muxer
        mux.end_preamble()


def _peer_id_of(key: PrivateKey) -> PeerId:
    from rapidp2p.peer import PeerId

    return PeerId.from_public_key(key.public_key())
