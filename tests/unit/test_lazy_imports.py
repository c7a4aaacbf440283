"""Issue 16 (start-up cost, idle RSS): a node imports what it uses when it uses it.

Structural checks, not timings: each runs in a fresh interpreter and lists which heavy modules
ended up in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: Never loaded by ``import rapidp2p`` nor by a default host on TCP: optional extras
#: (WebSocket's wsproto/h11, Prometheus, HTTP, the simulator), ``cryptography`` (only the
#: non-Ed25519 key types need it), SQLite (the persistent peerstore) and the QUIC driver.
HEAVY = (
    "wsproto",
    "h11",
    "prometheus_client",
    "cryptography",
    "sqlite3",
    "msgpack",
    "rapidp2p.sim",
    "rapidp2p.http",
    "rapidp2p._aio.quic",
    "rapidp2p.cli",
)


def _loaded_after(code: str) -> dict[str, list[str]]:
    """Runs ``code`` (which fills ``stages``) in a fresh interpreter; for each stage, the
    modules of HEAVY then loaded."""
    script = (
        textwrap.dedent(
            """
        import json, sys
        HEAVY = {heavy!r}
        stages = {{}}
        def mark(name):
            stages[name] = [m for m in HEAVY if m in sys.modules]
        """
        ).format(heavy=HEAVY)
        + textwrap.dedent(code)
        + "\nprint(json.dumps(stages))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_and_default_host_load_no_heavy_module() -> None:
    stages = _loaded_after(
        """
        import rapidp2p
        mark("import rapidp2p")
        stages["import rapidp2p loads"] = sorted(
            m for m in sys.modules if m.startswith("rapidp2p.")
        )

        async def main():
            rapidp2p.Host()
            mark("Host()")
            host = await rapidp2p.Host.create(listen=["/ip4/127.0.0.1/tcp/0"])
            mark("listening on TCP")
            other = await rapidp2p.Host.create()
            await other.connect(host.full_addrs[0])
            await other.ping(host.peer_id, 2)
            mark("connected and pinged over TCP")
            await other.close()
            await host.close()

        rapidp2p.run(main())
        """
    )
    assert stages["import rapidp2p loads"] == []  # every export is lazy
    for stage in ("import rapidp2p", "Host()", "listening on TCP", "connected and pinged over TCP"):
        assert stages[stage] == [], stage


def test_transports_load_their_driver_on_first_use() -> None:
    stages = _loaded_after(
        """
        import rapidp2p

        async def main():
            async with rapidp2p.Host() as host:
                await host.listen("/ip4/127.0.0.1/udp/0/quic-v1")
                mark("QUIC")
                ws = await host.listen("/ip4/127.0.0.1/tcp/0/ws")
                mark("WebSocket listen")
                async with await rapidp2p.Host.create() as other:
                    await other.connect(f"{ws[0]}/p2p/{host.peer_id}")
                mark("WebSocket connection")

        rapidp2p.run(main())
        """
    )
    assert "rapidp2p._aio.quic" in stages["QUIC"] and "wsproto" not in stages["QUIC"]
    assert "wsproto" not in stages["WebSocket listen"]  # loaded by the first connection
    assert {"wsproto", "h11"} <= set(stages["WebSocket connection"])
    # Ed25519 identities and QUIC's TLS are on ring:
    assert "cryptography" not in stages["WebSocket connection"]


def test_cli_imports_only_the_invoked_subcommand() -> None:
    stages = _loaded_after(
        """
        from rapidp2p.cli.main import main
        try:
            main(["perf", "--help"])
        except SystemExit:
            pass
        mark("perf --help")
        stages["commands"] = sorted(m for m in sys.modules if m.startswith("rapidp2p.cli."))
        stages["core"] = ["rapidp2p._core"] if "rapidp2p._core" in sys.modules else []
        stages["host"] = ["rapidp2p.host"] if "rapidp2p.host" in sys.modules else []
        """
    )
    assert stages["perf --help"] == ["rapidp2p.cli"]
    commands = [m for m in stages["commands"] if m.rsplit(".", 1)[1].startswith("cmd_")]
    assert commands == [] and "rapidp2p.cli.perf" in stages["commands"]
    assert stages["core"] == [] and stages["host"] == []


def test_other_key_types_still_load_on_demand() -> None:
    from rapidp2p import crypto
    from rapidp2p.crypto import generate, rsa

    assert generate._MIN_RSA_BITS == rsa.MIN_RSA_BITS
    key = crypto.generate_keypair(crypto.KeyType.Secp256k1)
    parsed = crypto.public_key_from_protobuf(key.public_key().to_protobuf())
    assert parsed == key.public_key() and isinstance(
        crypto.EcdsaPrivateKey.generate(), crypto.PrivateKey
    )


#: Modules an idle host on TCP alone has no use for: the UDP transports (QUIC, WebRTC-direct,
#: WebTransport), /webrtc and its signalling, and the command line's argparse.
NOT_FOR_TCP = (
    "rapidp2p.transport.quic",
    "rapidp2p.transport.webrtc",
    "rapidp2p.transport.webrtc_direct",
    "rapidp2p.transport.webtransport",
    "rapidp2p._aio.webrtc",
    "rapidp2p.protocols.webrtc_signaling",
    "argparse",
)


def test_idle_tcp_noise_host_loads_no_other_transport() -> None:
    script = textwrap.dedent(
        """
        import json, sys
        import rapidp2p
        from rapidp2p.host import HostConfig
        from rapidp2p.transport.tcp import TcpTransport

        NOT_FOR_TCP = {not_for_tcp!r}
        stages = {{}}

        def mark(name):
            stages[name] = [m for m in NOT_FOR_TCP if m in sys.modules]

        async def main():
            cfg = HostConfig(security_protocols=["/noise"], enable_relay_client=False)
            host = rapidp2p.Host(config=cfg, transports=[TcpTransport()])
            await host.listen("/ip4/127.0.0.1/tcp/0")
            mark("idle")
            other = rapidp2p.Host(config=cfg, transports=[TcpTransport()])
            await other.start()
            await other.connect(host.full_addrs[0])
            await other.ping(host.peer_id, 1)
            mark("pinged")
            off = ("rapidp2p.relay", "rapidp2p.protocols.dcutr")
            stages["relay"] = sorted(m for m in sys.modules if m.startswith(off))
            await other.close()
            await host.close()
            default = rapidp2p.Host()
            stages["default transports"] = [type(t).__name__ for t in default.transports]
            await default.close()

        rapidp2p.run(main())
        print(json.dumps(stages))
        """
    ).format(not_for_tcp=NOT_FOR_TCP)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    stages = json.loads(out.stdout.strip().splitlines()[-1])
    assert stages["idle"] == [] and stages["pinged"] == []
    assert stages["relay"] == []  # the relay client and DCUtR are services: off here
    # A default host still builds every transport (they are imported then, not before).
    assert stages["default transports"] == [
        "TcpTransport",
        "QuicTransport",
        "WebSocketTransport",
        "MemoryTransport",
        "WebRtcDirectTransport",
        "WebTransportTransport",
    ]
