"""The yamux defaults have one source, ``rapidp2p_yamux::Config::default()``, exported as
``_core.conn.YAMUX_DEFAULTS``; every Python or glue restatement must agree with it."""

from __future__ import annotations

import dataclasses
import inspect

from rapidp2p._core import conn
from rapidp2p.host import MuxerOptions


def test_exported_defaults_are_the_yamux_crates() -> None:
    d = conn.YAMUX_DEFAULTS
    assert set(d) == {
        "max_streams",
        "initial_window",
        "max_window",
        "ack_backlog",
        "keepalive_interval",
        "min_autotune_rtt",
    }
    assert d["initial_window"] == 256 * 1024  # the spec's window: the crate may not go below it
    assert isinstance(d["max_window"], int) and d["max_window"] >= d["initial_window"]


def test_muxer_options_defaults_match() -> None:
    opts = MuxerOptions()
    for field in dataclasses.fields(MuxerOptions):
        if field.name == "mplex":
            assert opts.mplex is True  # offered after yamux by default
        elif field.name.startswith("mplex_"):
            want = conn.MPLEX_DEFAULTS[field.name.removeprefix("mplex_")]  # type: ignore[literal-required]
            assert getattr(opts, field.name) == want, field.name
        else:
            assert getattr(opts, field.name) == conn.YAMUX_DEFAULTS[field.name], field.name  # type: ignore[literal-required]


def test_connection_signature_defaults_match() -> None:
    params = inspect.signature(conn.Connection).parameters
    checked = 0
    for name, value in conn.YAMUX_DEFAULTS.items():
        default = params[name].default
        if default is not Ellipsis:  # PyO3 shows non-literal defaults as ``...``
            assert default == value, name
            checked += 1
    assert checked >= 4
    default = params["mplex_max_buffered"].default
    assert default in (Ellipsis, conn.MPLEX_DEFAULTS["max_buffered"])
