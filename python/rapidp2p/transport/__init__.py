"""Transports: TCP (``/ip4``, ``/ip6``, ``/dns*``), WebSocket (``.../tcp/N/ws``) and in-process
``/memory/<n>``."""

from __future__ import annotations

from rapidp2p.transport.base import Listener, Transport
from rapidp2p.transport.memory import MemoryTransport
from rapidp2p.transport.tcp import TcpTransport
from rapidp2p.transport.websocket import WebSocketTransport

__all__ = ["Listener", "MemoryTransport", "TcpTransport", "Transport", "WebSocketTransport"]
