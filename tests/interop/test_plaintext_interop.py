"""rapidp2p over ``/plaintext/2.0.0`` + yamux against go-libp2p (its ``insecure`` transport),
both ways.

go-peer runs with ``--security plaintext`` (the only security protocol it offers), so a
connection that works proves the Exchange message (encoded and decoded by the Rust ``proto``
crate, framed by ``rapidp2p.protocols.framing``), the peer-ID check on each side, the muxer
negotiated in the clear, then ping, identify and an echo stream carrying pseudo-random bytes
intact. rust-, js- and py-libp2p's interop peers offer no plaintext option.
"""

from __future__ import annotations

import pytest
from test_tls_interop import check_peer_dials_rapidp2p, check_rapidp2p_dials

from rapidp2p.host import HostConfig

PLAINTEXT = "/plaintext/2.0.0"
PEERS = ["go-peer"]
SECURITY_PLAINTEXT = ["--security", "plaintext"]
ECHO_SIZE = 4 << 20

pytestmark = [pytest.mark.interop, pytest.mark.peers(*PEERS), pytest.mark.timeout(240)]


def _config() -> HostConfig:
    return HostConfig(enable_plaintext=True, security_protocols=[PLAINTEXT])


@pytest.mark.parametrize("name", PEERS)
async def test_rapidp2p_dials_peer_over_plaintext(name: str) -> None:
    await check_rapidp2p_dials(name, _config(), SECURITY_PLAINTEXT, PLAINTEXT, ECHO_SIZE)


@pytest.mark.parametrize("name", PEERS)
async def test_peer_dials_rapidp2p_over_plaintext(name: str) -> None:
    await check_peer_dials_rapidp2p(name, _config(), SECURITY_PLAINTEXT, PLAINTEXT, ECHO_SIZE)
