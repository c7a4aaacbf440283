"""Network-scale simulation: the production host and protocols on a virtual clock.

- :mod:`rapidp2p.sim.clock`: the virtual-time asyncio loop (:func:`run`).
- :mod:`rapidp2p.sim.network`: the simulated network and its transport.
- :mod:`rapidp2p.sim.kad`: the Kademlia scenario (``python -m rapidp2p.sim kad``).
"""

from __future__ import annotations

from rapidp2p.sim.clock import VirtualEventLoop, run
from rapidp2p.sim.network import NetConfig, SimNetwork, SimNode, SimTransport

__all__ = ["NetConfig", "SimNetwork", "SimNode", "SimTransport", "VirtualEventLoop", "run"]
