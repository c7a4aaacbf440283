"""Host settings: timeouts, limits, feature switches (:class:`HostConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rapidp2p.host.connmgr import ConnManagerConfig
from rapidp2p.host.gater import ConnectionGater
from rapidp2p.host.limits import Limits
from rapidp2p.host.peer_gc import PeerGCConfig
from rapidp2p.host.upgrader import MuxerOptions, StageTimeouts
from rapidp2p.pnet import PskSource
from rapidp2p.resources.allowlist import DEFAULT_ALLOWLIST
from rapidp2p.resources.limits import ResourceLimits

if TYPE_CHECKING:
    from rapidp2p.metrics import Metrics
    from rapidp2p.nat import PortMapConfig

__all__ = ["HostConfig"]


def _version() -> str:
    from rapidp2p import __version__

    return str(__version__)


@dataclass
class HostConfig:
    """Timeouts (seconds), limits and feature switches, with safe defaults."""

    dial_timeout: float = 15.0
    upgrade_timeout: float = 15.0
    negotiation_timeout: float = 10.0
    #: Delay between starting dials to a peer's successive addresses (happy eyeballs).
    dial_stagger: float = 0.25
    #: A stream's ``drain`` raises StreamTimeout after this long without progress (None: never).
    stream_write_timeout: float | None = 60.0
    limits: Limits = field(default_factory=Limits)
    muxer: MuxerOptions = field(default_factory=MuxerOptions)
    #: ``/plaintext/2.0.0`` (NO encryption) is offered only when this is True.
    enable_plaintext: bool = False
    #: Offer yamux inside the Noise handshake (else multistream-select runs inside Noise).
    early_muxer_negotiation: bool = True
    #: Security protocols, in order (``/noise``, ``/tls/1.0.0``, ``/plaintext/2.0.0``). Default:
    #: accept ``/noise`` and ``/tls/1.0.0`` (and plaintext if enabled), dial ``/noise`` alone
    #: (zero round trips); a list given here is both accepted and proposed in its order.
    security_protocols: list[str] | None = None
    enable_ping: bool = True
    enable_identify: bool = True
    #: The Circuit Relay v2 client (:class:`rapidp2p.relay.RelayClient`): dial and listen on
    #: ``/p2p-circuit`` addresses, accept circuits from relays we reserved on.
    enable_relay_client: bool = True
    #: DCUtR hole punching (:class:`rapidp2p.protocols.dcutr.HolePunchService`), run with the
    #: relay client (go-libp2p's ``EnableHolePunching``): a relayed connection is upgraded
    #: to a direct one when both NATs let it.
    enable_hole_punching: bool = True
    agent_version: str = field(default_factory=lambda: f"rapidp2p/{_version()}")
    protocol_version: str = "ipfs/0.1.0"
    #: Unread bytes per connection before the socket stops being read.
    max_unread_per_connection: int = 32 * 1024 * 1024
    #: Seconds :meth:`Host.close` waits for remote peers to consume what was written (their
    #: side of each stream closed or reset) before the sockets close; 0 closes at once.
    close_linger: float = 2.0
    #: Networks (CIDRs, IPs or ``/ip4|ip6/../ipcidr/..`` multiaddrs) exempt from the per-IP
    #: cap and rate, with their own totals (``Limits.allowlist_*``); loopback by default.
    allowlist: list[str] = field(default_factory=lambda: list(DEFAULT_ALLOWLIST))
    #: Deadlines of each upgrade stage (first byte, multistream, security, muxer).
    stage_timeouts: StageTimeouts = field(default_factory=StageTimeouts)
    #: Scoped resource limits (None: computed from this machine's memory and fd limit, see
    #: :func:`rapidp2p.resources.autoscale`), then ``limits_file`` (JSON, or TOML on 3.11+)
    #: applied over them; never below the flat caps of ``limits``.
    resource_limits: ResourceLimits | None = None
    limits_file: str | None = None
    #: Seconds between maintenance rounds (connection trimming, peer GC).
    maintenance_interval: float = 1.0
    #: Connection manager watermarks and grace period (``host.connmgr``).
    connmgr: ConnManagerConfig = field(default_factory=ConnManagerConfig)
    #: Vetoes dials and connections at each step (:mod:`rapidp2p.host.gater`).
    gater: ConnectionGater | None = None
    #: When the peer store forgets peers that left (:mod:`rapidp2p.host.peer_gc`).
    peer_gc: PeerGCConfig = field(default_factory=PeerGCConfig)
    #: Prometheus metrics sink (:class:`rapidp2p.metrics.Metrics`); None: metrics off.
    metrics: Metrics | None = None
    #: Private network (libp2p pnet): a :class:`rapidp2p.pnet.PreSharedKey`, its 32 bytes, a
    #: ``/key/swarm/psk/1.0.0/`` file's contents or path. Only peers with the same key connect.
    psk: PskSource | None = None
    #: Map the listen ports on the LAN's gateway (UPnP IGD, PCP, NAT-PMP) and advertise the
    #: mapped addresses (:class:`rapidp2p.nat.PortMapper`): True, or a
    #: :class:`rapidp2p.nat.PortMapConfig`. Off by default, as go-libp2p's ``NATPortMap()``.
    port_mapping: bool | PortMapConfig = False
