"""Transports: TCP (``/ip4``, ``/ip6``, ``/dns*``) and in-process ``/memory/<n>``."""

from __future__ import annotations

from rapidp2p.transport.base import Listener, Transport
from rapidp2p.transport.memory import MemoryTransport
from rapidp2p.transport.tcp import TcpTransport

__all__ = ["Listener", "MemoryTransport", "TcpTransport", "Transport"]
