"""The bounds every HTTP exchange over libp2p is held to (every peer is untrusted)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HttpLimits"]


@dataclass(frozen=True)
class HttpLimits:
    """Size and time limits of one HTTP exchange, on the serving and the calling side.

    The defaults follow go's ``net/http`` where it has one (1 MiB of request head) but are
    tighter for heads (64 KiB: libp2p protocols carry their data in bodies) and bound bodies,
    which ``net/http`` leaves to the handler.
    """

    max_header_bytes: int = 64 * 1024
    """Request or status line plus headers; over it:
    :class:`~rapidp2p.exceptions.HeadersTooLarge`."""
    max_body_bytes: int = 16 * 1024 * 1024
    """A request body (server) or response body (client); over it:
    :class:`~rapidp2p.exceptions.BodyTooLarge`, checked against ``Content-Length`` before any
    body byte is read, and against the bytes received for chunked bodies."""
    head_timeout: float | None = 30.0
    """Seconds to receive a whole message head."""
    read_timeout: float | None = 60.0
    """Seconds of silence allowed between two body reads."""
    read_chunk: int = 64 * 1024
    """Bytes asked of the stream per read."""
