"""Ping (``/ipfs/ping/1.0.0``): liveness and round-trip time."""

from rapidp2p.protocols.ping._proto import PING_SIZE, PROTOCOL_ID
from rapidp2p.protocols.ping.service import handle_ping, ping

__all__ = ["PING_SIZE", "PROTOCOL_ID", "handle_ping", "ping"]
