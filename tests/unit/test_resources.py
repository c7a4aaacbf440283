"""The resource manager's scopes, limits and limits file (issue 10), without sockets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rapidp2p.exceptions import Libp2pError, ResourceLimitExceeded
from rapidp2p.resources.limits import (
    UNLIMITED,
    GiB,
    KiB,
    MiB,
    ResourceLimits,
    ScopeLimit,
    autoscale,
    load_limits,
)
from rapidp2p.resources.manager import ResourceManager


def small_limits(**peer: int) -> ResourceLimits:
    base = autoscale(memory=1 * GiB, fd_limit=1024)
    return base.apply(
        {
            "system": {"conns_inbound": 4, "streams_inbound": 10, "memory": "8 MiB"},
            "peer": {"conns_inbound": 2, "streams_inbound": 3, **peer},
            "conn": {"memory": "4 MiB"},
        }
    )


def test_autoscale_grows_with_memory_and_fds() -> None:
    small = autoscale(memory=1 * GiB, fd_limit=1024)
    big = autoscale(memory=64 * GiB, fd_limit=65536)
    assert small.system.conns_inbound == 64  # 1/8 of 1 GiB is the 128 MiB base
    assert small.system.memory == 128 * MiB
    assert big.system.conns_inbound > small.system.conns_inbound
    assert big.system.memory > small.system.memory
    assert big.peer.streams > small.peer.streams
    assert small.system.fd == 512 and big.system.fd == 32768
    assert small.conn.conns == 1 and small.conn.fd == 1
    assert small.peer.conns_inbound == big.peer.conns_inbound == 8  # go's per-peer shape


def test_limits_file_json_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "limits.json"
    path.write_text(
        json.dumps(
            {
                "system": {"conns_inbound": 7, "memory": "1 GiB"},
                "protocols": {"/echo/1.0.0": {"streams_inbound": 2}},
                "peer": {"streams": "unlimited"},
            }
        )
    )
    lim = load_limits(path)
    assert lim.system.conns_inbound == 7 and lim.system.memory == GiB
    assert lim.for_protocol("/echo/1.0.0").streams_inbound == 2
    assert lim.for_protocol("/other").streams_inbound == lim.protocol.streams_inbound
    assert lim.peer.streams == UNLIMITED
    for bad in ({"sytem": {}}, {"system": {"conns_in": 1}}, {"system": {"memory": "lots"}}):
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError):
            load_limits(path)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is Python 3.11+")
def test_limits_file_toml(tmp_path: Path) -> None:
    path = tmp_path / "limits.toml"
    path.write_text('[system]\nconns_inbound = 9\n[peers."12D3Koo"]\nstreams = 5\n')
    lim = load_limits(path)
    assert lim.system.conns_inbound == 9 and lim.for_peer("12D3Koo").streams == 5


def test_refusals_name_their_scope_and_change_nothing() -> None:
    mgr = ResourceManager(small_limits())
    conns = [mgr.open_connection("inbound") for _ in range(4)]
    before = mgr.stat()
    with pytest.raises(ResourceLimitExceeded) as info:
        mgr.open_connection("inbound")
    assert (info.value.scope, info.value.limit) == ("system", "conns_inbound")
    assert isinstance(info.value, Libp2pError)
    after = mgr.stat()
    assert after["system"]["conns_inbound"] == before["system"]["conns_inbound"] == 4
    assert after["transient"]["conns_inbound"] == 4
    assert after["system"]["blocked"] == 1 and mgr.blocked == {"system/conns_inbound": 1}
    # Allowlisted connections have their own system and transient scopes.
    extra = mgr.open_connection("inbound", allowlisted=True)
    assert mgr.allowlisted_system.conns_in == 1 and mgr.system.conns_in == 4
    for c in [*conns, extra]:
        c.close()
    assert mgr.system.is_idle and mgr.transient.is_idle and mgr.allowlisted_system.is_idle


def test_peer_conn_limit_and_stream_accounting() -> None:
    mgr = ResourceManager(small_limits())
    a, b, c = (mgr.open_connection("inbound") for _ in range(3))
    a.set_peer("A")
    b.set_peer("A")
    with pytest.raises(ResourceLimitExceeded) as info:
        c.set_peer("A")
    assert (info.value.scope, info.value.limit) == ("peer:A", "conns_inbound")
    assert "peer:A scope, conns_inbound" in str(info.value)
    assert mgr.transient.conns_in == 1  # c stays in transient until closed
    c.close()
    assert mgr.transient.conns_in == 0

    streams = [a.open_stream("inbound") for _ in range(3)]
    for i, s in enumerate(streams):
        s.attach(i * 2 + 1)
    with pytest.raises(ResourceLimitExceeded) as info:
        b.open_stream("inbound")
    assert (info.value.scope, info.value.limit) == ("peer:A", "streams_inbound")
    assert mgr.blocked == {"peer/conns_inbound": 1, "peer/streams_inbound": 1}
    streams[0].set_protocol("/echo/1.0.0")
    assert mgr.stat()["protocol:/echo/1.0.0"]["streams_inbound"] == 1
    assert mgr.transient.streams_in == 2
    a.stream_ended(1)  # the muxer dropped it
    b.open_stream("outbound").done()
    a.close()  # its other streams and its slot go back
    b.close()
    stat = mgr.stat()
    for name in ("system", "transient", "protocol:/echo/1.0.0"):
        s = stat[name]
        assert s["streams_inbound"] == s["streams_outbound"] == s["conns_inbound"] == 0, name
        assert s["memory"] == 0
    assert stat["peers"]["count"] == 0  # idle peer scopes are forgotten


def test_window_growth_degrades_instead_of_failing() -> None:
    mgr = ResourceManager(small_limits())  # system 8 MiB, conn 4 MiB
    a, b, c, d = (mgr.open_connection("inbound") for _ in range(4))
    for cs, peer in ((a, "A"), (b, "B"), (c, "C"), (d, "D")):
        cs.set_peer(peer)
    assert mgr.system.memory == 0  # nothing up front
    # Growth may take half of each scope (go-yamux's priority 128, roughly): halved to fit.
    assert a.reserve_window(4 * MiB) == 2 * MiB
    assert b.reserve_window(2 * MiB) == 2 * MiB
    assert c.reserve_window(4 * MiB, floor=1 * MiB) == 0  # system's growth share full
    assert mgr.system.memory == 4 * MiB and mgr.blocked["system/memory"] == 1
    # The other half is for bytes already received (initial windows cost nothing up front).
    assert c.reserve_unread(3 * MiB) is None and d.reserve_unread(1 * MiB) is None
    assert d.reserve_unread(1) is not None  # now the system is full
    assert mgr.system.memory == 8 * MiB
    a.close()
    # Growth counts in full against the share even where c's unread bytes hold memory now.
    assert c.reserve_window(4 * MiB) == 1 * MiB
    c.release_unread(3 * MiB)
    assert c.memory == 1 * MiB and mgr.system.memory == 4 * MiB
    for cs in (b, c, d):
        cs.close()
    assert mgr.system.memory == 0


def test_scope_limit_overrides_validate() -> None:
    with pytest.raises(ValueError):
        ScopeLimit().with_overrides({"memory": -1})
    assert ScopeLimit().with_overrides({"memory": "2 KiB"}).memory == 2048


def test_connection_holds_the_larger_of_window_growth_and_unread() -> None:
    mgr = ResourceManager(small_limits())  # conn scope 4 MiB, system 8 MiB
    cs = mgr.open_connection("inbound")
    cs.set_peer("A")
    peer = mgr.peer_scope("A")
    assert cs.reserve_unread(1 * MiB) is None  # unread bytes in initial windows: charged
    assert cs.memory == peer.memory == mgr.system.memory == 1 * MiB
    assert cs.reserve_window(512 * KiB) == 512 * KiB  # growth the unread bytes cover already
    assert cs.memory == 1 * MiB and cs.grant == 512 * KiB
    assert cs.reserve_window(2 * MiB) == 1 * MiB  # halved: growth within half the conn scope
    assert cs.memory == mgr.system.memory == 1 * MiB + 512 * KiB
    cs.release_unread(1 * MiB)
    assert cs.memory == 1 * MiB + 512 * KiB  # the windows' growth is still held
    cs.release_window(1 * MiB)
    assert cs.memory == 512 * KiB
    err = cs.reserve_unread(4 * MiB + 1)  # over the conn scope: refused, nothing changed
    assert err is not None and err.scope == "conn" and cs.memory == 512 * KiB
    cs.release_window(1 * MiB)  # more than held: gives back what there is
    assert cs.memory == cs.grant == 0 and peer.memory == mgr.system.memory == 0
    assert cs.reserve_window(64 * KiB) == 64 * KiB
    cs.close()
    assert mgr.system.memory == 0 and mgr.stat()["peers"]["memory"] == 0


def test_protocol_and_service_scopes_refuse_by_name() -> None:
    lim = small_limits(streams_inbound=100).apply(
        {"protocols": {"/p": {"streams_inbound": 1}}, "services": {"svc": {"streams": 1}}}
    )
    mgr = ResourceManager(lim)
    cs = mgr.open_connection("inbound")
    cs.set_peer("A")
    first = cs.open_stream("inbound")
    first.set_protocol("/p")
    second = cs.open_stream("inbound")
    with pytest.raises(ResourceLimitExceeded) as info:
        second.set_protocol("/p")
    assert (info.value.scope, info.value.limit) == ("protocol:/p", "streams_inbound")
    assert mgr.transient.streams_in == 1  # the refused one is still in transient
    second.set_protocol("/q", service="svc")
    third = cs.open_stream("inbound")
    with pytest.raises(ResourceLimitExceeded) as info:
        third.set_protocol("/q", service="svc")
    assert info.value.scope == "service:svc"
    for s in (first, second, third):
        s.done()
    cs.close()
    stat = mgr.stat()
    assert all(v.get("streams_inbound", 0) == 0 for k, v in stat.items() if k != "peers"), stat
