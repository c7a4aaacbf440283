"""DCUtR hole-punch success rate and time from relayed to direct, behind real NATs.

    sudo .venv/bin/python benches/e2e/holepunch_rate.py [--rounds 20] [--transport tcp quic]
        [--symmetric] [--peer go-peer|rust-peer --side a|b]

Builds the topology of ``tests/nat/test_dcutr_netns.py`` (a relay on the public network, two
LANs behind port-keeping masquerading routers that drop unsolicited packets) and runs
``--rounds`` rounds per transport, each with a fresh relay, a fresh B (``rapidp2p listen
--relay``) and a fresh A (``tests/nat/punch_dialer.py``) whose relayed connection DCUtR
upgrades. Prints one
JSON line per round and a summary per transport: successes, and the seconds from the relayed
connection being up at A to A's ``HolePunchSucceeded`` (median, p90, max). ``--peer`` runs the
go or rust interop peer on one side instead. Needs root (network namespaces).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests" / "nat"), str(ROOT / "tests" / "interop")]

from nat_topology import Topology, repo_python, unavailable  # noqa: E402
from test_dcutr_netns import DIALER, LISTEN, Lines, _first  # noqa: E402


def _round(
    t: dict[str, Any], transport: str, relay_addr: str, args: argparse.Namespace
) -> dict[str, Any]:
    topo: Topology = t["topo"]
    listen = LISTEN[transport]
    peer_run = None
    if args.peer:
        from peers import build_peer

        peer_run = str(build_peer(args.peer) / "run")
    if peer_run and args.side == "b":
        b_argv = [peer_run, "holepunch", "--listen", listen, "--relay", relay_addr]
    else:
        b_argv = [*repo_python(), "listen", "--listen", listen, "--relay", relay_addr, "--json"]
    b = Lines(topo.popen(t["b"], b_argv, stderr=subprocess.DEVNULL))
    try:
        ready = b.wait_for("addrs", 60)
        if peer_run and args.side == "b":  # rust-libp2p lists a loopback circuit first
            circuit = f"{relay_addr}/p2p-circuit/p2p/{ready['peer_id']}"
        else:
            circuit = _first(ready["addrs"], "/p2p-circuit/")
        if peer_run and args.side == "a":
            a_argv = [peer_run, "holepunch", "--listen", listen, "--relay", relay_addr,
                      "--dial", circuit]  # fmt: skip
        else:
            a_argv = [sys.executable, DIALER, "--listen", listen, "--relay", relay_addr,
                      "--target", circuit, "--wait", "40"]  # fmt: skip
        a = Lines(topo.popen(t["a"], a_argv, stderr=subprocess.DEVNULL))
        try:
            a.wait_for("relayed", 60)
            outcome = a.wait_for("hole_punch", 60)
            while outcome["hole_punch"] == "failed" and peer_run and args.side == "a":
                outcome = a.wait_for("hole_punch", 60)  # go reports each attempt
        except AssertionError as exc:
            outcome = {"hole_punch": "error", "error": str(exc)}
        finally:
            a.proc.terminate()
            a.proc.wait(20)
    finally:
        b.proc.terminate()
        b.proc.wait(20)
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--transport", nargs="+", default=["tcp", "quic"], choices=LISTEN)
    parser.add_argument("--symmetric", action="store_true")
    parser.add_argument("--peer", choices=["go-peer", "rust-peer"])
    parser.add_argument("--side", choices=["a", "b"], default="a")
    args = parser.parse_args()
    reason = unavailable()
    if reason is not None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    with Topology() as topo:
        relay_ns, relay_ip = topo.public_host("relay")
        a_ns, _, _ = topo.natted_host("a", symmetric=args.symmetric, stealth=True)
        b_ns, _, _ = topo.natted_host("b", symmetric=args.symmetric, stealth=True)
        t = {"topo": topo, "a": a_ns, "b": b_ns}
        for transport in args.transport:
            times: list[float] = []
            ok = 0
            for i in range(args.rounds):
                # A fresh relay per round: a killed QUIC node's reservation outlives it until
                # its connection times out, and the relay allows 8 per IP (the routers' one).
                relay = Lines(
                    topo.popen(relay_ns, [*repo_python(), "listen", "--listen",
                                          LISTEN[transport], "--relay-service",
                                          "--no-hole-punching", "--json"],
                               stderr=subprocess.DEVNULL)
                )  # fmt: skip
                relay_addr = _first(relay.wait_for("addrs")["addrs"], f"/{relay_ip}/")
                try:
                    outcome = _round(t, transport, relay_addr, args)
                finally:
                    relay.proc.terminate()
                    relay.proc.wait(20)
                print(json.dumps({"transport": transport, "round": i + 1, **outcome}), flush=True)
                if outcome["hole_punch"] == "succeeded":
                    ok += 1
                    times.append(float(outcome["seconds"]))
            times.sort()
            summary: dict[str, Any] = {
                "transport": transport,
                "symmetric": args.symmetric,
                "peer": args.peer,
                "side": args.side if args.peer else None,
                "succeeded": ok,
                "rounds": args.rounds,
                "load_average": os.getloadavg()[0],
            }
            if times:
                summary |= {
                    "seconds_median": round(statistics.median(times), 4),
                    "seconds_p90": round(times[min(len(times) - 1, int(len(times) * 0.9))], 4),
                    "seconds_max": round(times[-1], 4),
                }
            print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
