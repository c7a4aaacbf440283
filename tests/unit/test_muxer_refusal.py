"""Issue 13 point 8: a peer that offers only ``/mplex/6.7.0`` (py-libp2p's demos) to a host
with mplex turned off (``MuxerOptions(mplex=False)``; it is on by default, see
``test_mplex.py``) is refused visibly on both sides: the listener logs what the peer offered,
the dialer's error names the muxer it lacks."""

from __future__ import annotations

import asyncio
import logging

import pytest

from rapidp2p import Host
from rapidp2p.exceptions import DialError, NegotiationError, UpgradeError
from rapidp2p.host import HostConfig, MuxerOptions
from rapidp2p.protocols.memory import memory_stream_pair
from rapidp2p.protocols.multistream import select_inbound
from rapidp2p.protocols.multistream._proto import encode_messages

MPLEX = "/mplex/6.7.0"
NO_MPLEX = HostConfig(muxer=MuxerOptions(mplex=False))


async def test_raw_exchange_records_the_refused_proposal() -> None:
    listener, dialer = memory_stream_pair()
    dialer.write(encode_messages("/multistream/1.0.0", MPLEX))
    dialer.close()  # what py-libp2p does after its only proposal got "na"
    refused: list[str] = []
    with pytest.raises(NegotiationError):
        await select_inbound(listener, ["/yamux/1.0.0"], timeout=10, refused=refused)
    assert refused == [MPLEX]
    # The dialer got the header and "na".
    assert await dialer.read(1 << 16) == encode_messages("/multistream/1.0.0", "na")


def _mplex_only(host: Host) -> None:
    host.upgrader.muxers = [MPLEX]
    host.upgrader.early_muxer = False  # multistream-select inside Noise, as py-libp2p does


async def test_mplex_only_dialer_is_logged_by_us(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rapidp2p.upgrader")
    async with (
        await Host.create(listen=["/ip4/127.0.0.1/tcp/0"], config=NO_MPLEX) as server,
        Host() as client,
    ):
        _mplex_only(client)
        with pytest.raises(DialError) as info:
            await client.connect(server.full_addrs[0])
        # The (mplex-only) dialer was answered "na": its error says its muxer was refused.
        assert "does not speak /mplex/6.7.0" in str(info.value)
        for _ in range(500):
            if any("peer offered only" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.01)
        (msg,) = [r.getMessage() for r in caplog.records if "peer offered only" in r.getMessage()]
        assert msg == f"peer offered only {MPLEX} (rapidp2p speaks /yamux/1.0.0)"
        assert not server.connections()


async def test_dialing_an_mplex_only_listener_says_why() -> None:
    async with (
        await Host.create(listen=["/ip4/127.0.0.1/tcp/0"]) as server,
        Host(config=NO_MPLEX) as client,
    ):
        _mplex_only(server)
        with pytest.raises(DialError) as info:
            await client.connect(server.full_addrs[0])
        (err,) = info.value.errors.values()
        assert isinstance(err, UpgradeError)
        assert "does not speak /yamux/1.0.0" in str(err) and "mplex=False" in str(err)
