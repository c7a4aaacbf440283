"""Log output of long-running commands: one readable line, or one JSON object, per event.

``text``: ``2026-12-04T15:04:47.123Z INFO  conn  connection opened peer=12D3... dir=inbound``.
``json``: ``{"ts": "...", "level": "info", "logger": "rapidp2p.conn", "event":
"connection_opened", "msg": "...", "peer": "12D3...", ...}`` (the record's ``fields`` merged
in, so machines need not parse the message). Logs go to stderr; stdout stays for results.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any, TextIO

__all__ = ["JsonFormatter", "TextFormatter", "add_arguments", "configure_logging"]

_LEVELS = [logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--log-format text|json``, ``-v`` (DEBUG) and ``-q`` (WARNING, ``-qq``: ERROR)."""
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="log lines on stderr: readable text (default) or one JSON object per line",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (DEBUG)"
    )
    parser.add_argument(
        "-q", "--quiet", action="count", default=0, help="less log output (-q WARNING, -qq ERROR)"
    )


def _utc(created: float) -> str:
    ms = int(created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{ms:03d}Z"


class TextFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> <short logger> <message>`` on one line (tracebacks indented)."""

    def format(self, record: logging.LogRecord) -> str:
        name = record.name.removeprefix("rapidp2p.") if record.name != "rapidp2p" else "rapidp2p"
        line = f"{_utc(record.created)} {record.levelname:<5} {name:<6} {record.getMessage()}"
        if record.exc_info:
            line += "\n  " + self.formatException(record.exc_info).replace("\n", "\n  ")
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, event and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        event = getattr(record, "event", None)
        if event is not None:
            out["event"] = event
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for k, v in fields.items():
                out.setdefault(k, v)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(args: argparse.Namespace, stream: TextIO | None = None) -> None:
    """Installs one handler on the ``rapidp2p`` logger per the command's flags."""
    verbosity = 2 + getattr(args, "verbose", 0) - getattr(args, "quiet", 0)
    level = _LEVELS[max(0, min(verbosity, len(_LEVELS) - 1))]
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    fmt = getattr(args, "log_format", "text")
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger = logging.getLogger("rapidp2p")
    for old in list(logger.handlers):
        if getattr(old, "_rapidp2p_cli", False):
            logger.removeHandler(old)
    handler._rapidp2p_cli = True  # type: ignore[attr-defined]  # marks our own handler
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
