"""Running the rapidp2p CLI and short library programs as separate, short-lived processes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    code: int
    out: str
    err: str


async def run_python(*args: str, timeout: float = 120.0) -> Run:
    """``python ARGS...`` in a fresh process (the CLI is ``-m rapidp2p.cli``)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return Run(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))


async def run_cli(*args: str, timeout: float = 120.0) -> Run:
    return await run_python("-m", "rapidp2p.cli", *args, timeout=timeout)


def raw_cid(data: bytes) -> str:
    """CIDv1, codec raw, sha2-256 of ``data``, in base32 (the form kubo prints)."""
    body = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(body).decode().lower().rstrip("=")
