"""rapidp2p: libp2p for Python, with the data plane in Rust."""

from __future__ import annotations

from rapidp2p._core import __version__

__all__ = ["__version__"]
