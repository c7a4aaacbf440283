"""Circuit Relay v2 (``/libp2p/circuit/relay/0.2.0/hop`` and ``/stop``).

- :class:`RelayService`: serve as a relay (``await host.add_service(RelayService(host))``).
- :class:`RelayClient`: on every host by default; ``host.listen(".../p2p/<relay>/p2p-circuit")``
  reserves on a relay, ``host.connect(".../p2p/<relay>/p2p-circuit/p2p/<peer>")`` dials
  through one. Relayed connections have ``conn.limited`` set.
- :class:`AutoRelay`: keep reservations on a few relays (given, or found among the peers).
"""

from typing import TYPE_CHECKING, Any

from rapidp2p.relay._proto import (
    HOP_PROTOCOL,
    STOP_PROTOCOL,
    Limit,
    MalformedRelayMessage,
    RelayError,
    RelayRefused,
    Status,
    Voucher,
)
from rapidp2p.relay.client import RelayClient, ReservationInfo

if TYPE_CHECKING:
    from rapidp2p.relay.autorelay import AutoRelay
    from rapidp2p.relay.book import RelayLimits, ReservationBook
    from rapidp2p.relay.hop import RelayService
    from rapidp2p.relay.transport import CircuitListener, CircuitTransport, split_circuit

#: Imported on first use: every host runs the client; the relay side and AutoRelay are opt-in.
_LAZY = {
    "AutoRelay": "autorelay",
    "CircuitListener": "transport",
    "CircuitTransport": "transport",
    "RelayLimits": "book",
    "RelayService": "hop",
    "ReservationBook": "book",
    "split_circuit": "transport",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "HOP_PROTOCOL",
    "STOP_PROTOCOL",
    "AutoRelay",
    "CircuitListener",
    "CircuitTransport",
    "Limit",
    "MalformedRelayMessage",
    "RelayClient",
    "RelayError",
    "RelayLimits",
    "RelayRefused",
    "RelayService",
    "ReservationBook",
    "ReservationInfo",
    "Status",
    "Voucher",
    "split_circuit",
]
