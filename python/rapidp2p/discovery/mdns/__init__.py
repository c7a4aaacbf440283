"""mDNS peer discovery on the local network (libp2p/specs discovery/mdns.md)."""

from rapidp2p.discovery.mdns._proto import SERVICE_NAME, MdnsCore, MdnsError
from rapidp2p.discovery.mdns.service import MdnsService

__all__ = ["SERVICE_NAME", "MdnsCore", "MdnsError", "MdnsService"]
