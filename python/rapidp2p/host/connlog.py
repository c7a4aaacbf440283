"""Log lines for people: one per connection opened and closed, one per negotiated stream.

Connections log at INFO on ``rapidp2p.conn``, streams at DEBUG on ``rapidp2p.stream``. The
message reads on its own (``connection opened peer=... dir=inbound transport=tcp ...``) and
the same fields ride on the record as ``record.fields`` (plus ``record.event``) for
structured formatters (``rapidp2p listen --log-format json``). Nothing is formatted unless
the level is enabled.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["connection_closed", "connection_opened", "fields_text", "stream_opened"]

conn_log = logging.getLogger("rapidp2p.conn")
stream_log = logging.getLogger("rapidp2p.stream")


def fields_text(fields: dict[str, Any]) -> str:
    """``k=v k2=v2``; values with spaces are quoted."""
    parts = []
    for k, v in fields.items():
        text = str(v)
        if not text or " " in text or '"' in text:
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(f"{k}={text}")
    return " ".join(parts)


def _emit(logger: logging.Logger, level: int, event: str, fields: dict[str, Any]) -> None:
    logger.log(
        level,
        "%s %s",
        event.replace("_", " "),
        fields_text(fields),
        extra={"event": event, "fields": fields},
    )


def _transport(mux: Any) -> str:
    from rapidp2p.transport.base import parse_components

    if mux.remote_addr is not None:
        names = [n for n, _ in parse_components(mux.remote_addr)]
        for name in ("quic-v1", "ws", "wss", "tcp"):
            if name in names:
                return name
    return "memory" if mux.remote_addr is None else "unknown"


def connection_opened(mux: Any) -> None:
    if not conn_log.isEnabledFor(logging.INFO):
        return
    _emit(
        conn_log,
        logging.INFO,
        "connection_opened",
        {
            "peer": str(mux.remote_peer),
            "addr": str(mux.remote_addr) if mux.remote_addr is not None else "",
            "dir": mux.direction,
            "transport": _transport(mux),
            "security": mux.security or "",
            "muxer": mux.muxer or "",
        },
    )


def connection_closed(mux: Any) -> None:
    if not conn_log.isEnabledFor(logging.INFO):
        return
    reason = mux.close_reason
    _emit(
        conn_log,
        logging.INFO,
        "connection_closed",
        {
            "peer": str(mux.remote_peer),
            "addr": str(mux.remote_addr) if mux.remote_addr is not None else "",
            "dir": mux.direction,
            "transport": _transport(mux),
            "duration_s": round(mux.loop.time() - mux.opened_at, 3),
            "reason": str(reason) if reason is not None else "",
        },
    )


def stream_opened(stream: Any) -> None:
    if not stream_log.isEnabledFor(logging.DEBUG):
        return
    _emit(
        stream_log,
        logging.DEBUG,
        "stream_opened",
        {
            "peer": str(stream.remote_peer),
            "protocol": stream.protocol or "",
            "dir": "outbound" if stream.initiator else "inbound",
            "id": stream.stream_id,
        },
    )
