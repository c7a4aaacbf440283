"""The Python side of one Noise or TLS upgrade that Rust runs inside the connection.

Kept apart from the driver (``_aio/connection.py``), whose per-read path only moves bytes
into Rust and dispatches events: while a ``_core.conn.Connection.upgrading(...)`` negotiates
security, handshakes and negotiates the muxer, the reads it takes raise three kinds of
event (EV_SECURITY, EV_VERIFY, EV_SECURED) that the upgrade policy
(``host/upgrader.py``) must answer synchronously, plus the first read itself, which moves
the upgrade's stage watchdog on. :class:`RustUpgrade` turns those into calls on the
policy's :class:`UpgradeHooks` and tells the driver once, through a callback, that the
channel is secured; the driver then drops it, so a muxed connection's reads pay nothing
for it (one ``None`` test per read, as before the split).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from rapidp2p import _core

__all__ = ["RustUpgrade", "UpgradeHooks"]

EV_SECURITY: int = _core.conn.EV_SECURITY
EV_VERIFY: int = _core.conn.EV_VERIFY


class UpgradeHooks(Protocol):
    """What the upgrade policy (``host/upgrader.py``) answers while the ``_core.conn.Connection``
    runs the upgrade itself (see :meth:`MuxedConnection.start_upgrade`); called synchronously
    from the read that carried the event, so the connection's identity is set before any
    muxed byte that followed the handshake in the same read is dispatched."""

    def first_byte(self) -> None:
        """The remote sent its first byte (the stage watchdog moves on)."""

    def security(self, protocol: str) -> None:
        """multistream-select agreed on ``protocol``."""

    def verify(self, key: bytes, signature: bytes, static_key: bytes) -> str | None:
        """The Noise payload's signature check: None when it verified, else why not."""

    def secured(self, protocol: str, peer: bytes, key: bytes, muxer: str | None) -> None:
        """The handshake is done (raise a ``Libp2pError`` to fail the connection)."""


class RustUpgrade:
    """One running upgrade: forwards its events to ``hooks`` until the channel is secured.

    ``first_byte_pending`` is public so that the driver's per-read path tests it without a
    call. ``dispatch`` takes the events that answering a signature check released (the
    driver's event loop); ``secured`` is called with the agreed muxer (None while it is
    still being negotiated) after the hooks accepted the remote's identity. After that,
    or after the hooks refused it, every further event is ignored.
    """

    __slots__ = ("_clock", "_conn", "_dispatch", "_hooks", "_secured", "first_byte_pending")

    def __init__(
        self,
        conn: Any,
        hooks: UpgradeHooks,
        *,
        clock: Callable[[], float],
        dispatch: Callable[[list[tuple[int, int, Any]]], None],
        secured: Callable[[str | None], None],
    ) -> None:
        self._conn = conn
        self._hooks: UpgradeHooks | None = hooks
        self._clock = clock
        self._dispatch = dispatch
        self._secured = secured
        self.first_byte_pending = True

    def first_byte(self) -> None:
        """The first read of the upgrade (before Rust sees it)."""
        self.first_byte_pending = False
        hooks = self._hooks
        if hooks is not None:
            hooks.first_byte()

    def event(self, kind: int, value: Any) -> None:
        """EV_SECURITY, EV_VERIFY or EV_SECURED (see :class:`UpgradeHooks`)."""
        hooks = self._hooks
        if hooks is None:
            return
        if kind == EV_SECURITY:
            hooks.security(str(value))
        elif kind == EV_VERIFY:
            error = hooks.verify(*value)
            more = self._conn.verified(error, self._clock())
            if more:
                self._dispatch(more)
        else:
            self._hooks = None
            protocol, peer, key, muxer = value
            hooks.secured(protocol, peer, key, muxer)
            self._secured(muxer)
