"""Figures of both runs computed the same way, the agreement checks, and the report.

Tolerances (stated before any run, checked by :func:`kad_checks` / :func:`gossip_checks`):

- success and delivery ratios: within 2 percentage points;
- latency medians: within 15% of the simulator's figure plus the router's overhead on the
  operation's path: ``crossings x o``, where ``o`` is the router's one-way overhead measured
  under the scenario's load (median of half the zero-delay echo round trips) and
  ``crossings`` the one-way trips the operation makes (its simulated latency over the
  median one-way delay of the model's node pairs, at least 1);
- latency p99 (GossipSub): within 25% plus the same router term (tails are made of a few
  samples);
- mean Kademlia hops: within 0.5 hops; GossipSub copies received per accepted message
  (duplicates): within 15%.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

__all__ = ["gossip_checks", "gossip_figures", "kad_checks", "kad_figures", "render_report"]

KAD_OPS = ("get_closest_peers", "find_peer", "provide", "find_providers")
RATIO_TOL = 0.02
MEDIAN_REL = 0.15
TAIL_REL = 0.25
HOPS_TOL = 0.5
DUP_REL = 0.15


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, as the simulator's reports compute it."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


def kad_figures(ops: list[dict[str, Any]]) -> dict[str, Any]:
    """Per operation kind: count, success rate, latency percentiles, hops."""
    out: dict[str, Any] = {}
    for kind in KAD_OPS:
        ms = [o for o in ops if o["op"] == kind]
        lat = [o["latency"] for o in ms]
        hops = [o["hops"] for o in ms if o["hops"] is not None]
        out[kind] = {
            "count": len(ms),
            "success_rate": sum(bool(o["ok"]) for o in ms) / len(ms) if ms else None,
            "latency_p50": pct(lat, 50),
            "latency_p90": pct(lat, 90),
            "latency_p99": pct(lat, 99),
            "hops_mean": statistics.fmean(hops) if hops else None,
            "hops_max": max(hops) if hops else None,
        }
    return out


def gossip_figures(
    received: list[dict[int, float]], counters: list[dict[str, int]], nodes: int
) -> dict[str, Any]:
    """Delivery ratio (every node but the publisher expected), latency percentiles,
    copies per accepted message, final mesh degrees."""
    expected = len(received) * (nodes - 1)
    lat = [t for m in received for t in m.values()]
    unfiltered = sum(c["unfiltered"] for c in counters)
    accepted = sum(c["accepted"] for c in counters)
    mesh = [c["mesh"] for c in counters]
    return {
        "messages": len(received),
        "expected": expected,
        "delivered": len(lat),
        "delivery_ratio": len(lat) / expected if expected else None,
        "latency_p50": pct(lat, 50),
        "latency_p90": pct(lat, 90),
        "latency_p99": pct(lat, 99),
        "latency_max": pct(lat, 100),
        "copies_per_accepted": unfiltered / accepted if accepted else None,
        # Copies scale with the mesh degree: this ratio separates the two.
        "copies_per_accepted_per_mesh_peer": (
            unfiltered / accepted / statistics.fmean(mesh) if accepted and mesh else None
        ),
        "duplicates": sum(c["duplicate"] for c in counters),
        "mesh_degree_mean": statistics.fmean(mesh) if mesh else None,
        "mesh_degree_min": min(mesh) if mesh else None,
        "mesh_degree_max": max(mesh) if mesh else None,
    }


def _check(
    name: str, sim: float | None, real: float | None, tol: float, what: str
) -> dict[str, Any]:
    ok = sim is not None and real is not None and abs(real - sim) <= tol
    return {"figure": name, "sim": sim, "real": real, "tolerance": tol, "rule": what, "ok": ok}


def _crossings(sim_latency: float, median_one_way: float) -> float:
    return max(1.0, sim_latency / median_one_way) if median_one_way > 0 else 1.0


def kad_checks(
    sim: dict[str, Any], real: dict[str, Any], overhead: float, median_one_way: float
) -> list[dict[str, Any]]:
    """The Kademlia agreement checks (see the module docstring)."""
    out = []
    for kind in KAD_OPS:
        s, r = sim[kind], real[kind]
        out.append(
            _check(f"{kind} success rate", s["success_rate"], r["success_rate"], RATIO_TOL, "±2 pt")
        )
        p50 = s["latency_p50"] or 0.0
        n = _crossings(p50, median_one_way)
        out.append(
            _check(
                f"{kind} latency p50 (s)",
                s["latency_p50"],
                r["latency_p50"],
                MEDIAN_REL * p50 + n * overhead,
                f"±15% + {n:.1f} x router overhead",
            )
        )
        # Hops are recorded when a lookup completes; find_providers stops at the first
        # provider, so whether its lookup completed first is a race: compared when both have.
        if s["hops_mean"] is not None and r["hops_mean"] is not None:
            out.append(
                _check(f"{kind} hops mean", s["hops_mean"], r["hops_mean"], HOPS_TOL, "±0.5")
            )
    return out


def gossip_checks(
    sim: dict[str, Any], real: dict[str, Any], overhead: float, median_one_way: float
) -> list[dict[str, Any]]:
    """The GossipSub agreement checks (see the module docstring)."""
    out = [
        _check("delivery ratio", sim["delivery_ratio"], real["delivery_ratio"], RATIO_TOL, "±2 pt")
    ]
    for key, rel, label in (("latency_p50", MEDIAN_REL, "15%"), ("latency_p99", TAIL_REL, "25%")):
        v = sim[key] or 0.0
        n = _crossings(v, median_one_way)
        out.append(
            _check(
                f"latency {key[-3:]} (s)",
                sim[key],
                real[key],
                rel * v + n * overhead,
                f"±{label} + {n:.1f} x router overhead",
            )
        )
    cpa = sim["copies_per_accepted"] or 0.0
    out.append(
        _check(
            "copies received per accepted message",
            sim["copies_per_accepted"],
            real["copies_per_accepted"],
            DUP_REL * cpa,
            "±15%",
        )
    )
    return out


def _f(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "**NO**"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _ms(v: Any) -> str:
    return "-" if v is None else f"{v * 1000:.1f} ms"


def _table(checks: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| figure | simulator | real processes | difference | tolerance | rule | agree |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        sec = "(s)" in c["figure"]
        fmt = _ms if sec else _f
        diff = None if c["sim"] is None or c["real"] is None else c["real"] - c["sim"]
        lines.append(
            f"| {c['figure'].replace(' (s)', '')} | {fmt(c['sim'])} | {fmt(c['real'])} | "
            f"{fmt(diff)} | {fmt(c['tolerance'])} | {c['rule']} | {_f(c['ok'])} |"
        )
    return lines


def _overhead_lines(title: str, o: dict[str, Any]) -> list[str]:
    rtt, ow = o["rtt_s"], o["one_way_s"]
    return [
        f"| {title} | {rtt['count']} | {_ms(rtt.get('p50'))} | {_ms(rtt.get('p90'))} | "
        f"{_ms(rtt.get('p99'))} | {_ms(ow.get('p50'))} |"
    ]


def render_report(res: dict[str, Any]) -> str:
    """The Markdown report of a cross-check run (``res`` is its ``results.json``)."""
    n = res["nodes"]
    lines = [
        f"# Simulator cross-check: {n} real processes against the simulator, seed {res['seed']}",
        "",
        "The same scenario, the same nodes (keys, hence peer IDs; places in the geographic "
        "latency model; access bandwidths) and the same operations in the same order, run "
        f"twice: once by the simulator on its virtual clock, once by {n} real OS processes, "
        "each a production `Host` over TCP on the ordinary asyncio loop in a network "
        "namespace of its own, with the model's one-way delays applied by a userspace TUN "
        "router between the namespaces (see `rapidp2p.sim.crosscheck`).",
        "",
        f"**Verdict: {res['agree']} of {res['checks']} figures agree within the stated "
        f"tolerances.**",
        "",
        "## Commands and wall time",
        "",
        "<!-- docs-test: compile-only (needs root, and minutes at 100 nodes) -->",
        "```sh",
        *res["commands"],
        "```",
        "",
        "| phase | wall time |",
        "|---|---|",
    ]
    for k, v in res["wall_s"].items():
        lines.append(f"| {k} | {v:.1f} s |")
    lines += [
        "",
        f"Machine: {res['machine']['cpus']} CPUs, load average {res['machine']['load_before']} "
        f"before the run (the machine is shared); Python {res['machine']['python']}. "
        f"Node processes at nice {res.get('node_nice', 0)}.",
        "",
        "## The router and its own latency",
        "",
        "A TUN device in each namespace, all owned by one router process (not a delaying TCP "
        "relay: a relay would terminate every connection and split it in two, so TCP's "
        "handshake and ACK clocking would not cross the modelled path). Each packet is "
        "written into the destination namespace when the simulator's link model says it "
        "arrives: one-way base delay of the two regions + both last-mile delays, uniform "
        "jitter up to 10% of it, uplink and downlink serialisation, FIFO per node pair.",
        "",
        "Its own cost: a TCP echo between two extra namespaces with zero configured delay "
        "(the round trip crosses the router twice; half of it is the one-way overhead that "
        "every crossing adds), before the nodes start and again during each scenario:",
        "",
        "| measured | echoes | RTT p50 | RTT p90 | RTT p99 | one-way overhead p50 |",
        "|---|---|---|---|---|---|",
        *_overhead_lines("idle (before the nodes)", res["router_idle"]),
    ]
    for sc in ("kad", "gossipsub"):
        if sc in res:
            lines += _overhead_lines(f"during {sc}", res[sc]["router_under_load"])
    lines += [
        "",
        "Router scheduling lateness (packet written minus when the model said, all packets "
        "of the run):",
        "",
        "| scenario | packets | bytes | lateness p50 | p99 | max | router CPU | scheduling |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for sc in ("kad", "gossipsub"):
        if sc in res:
            r = res[sc]["router"]
            la = r["lateness_s"]
            lines.append(
                f"| {sc} | {r['packets']} | {r['bytes']} | {_ms(la.get('p50'))} | "
                f"{_ms(la.get('p99'))} | {_ms(la.get('max'))} | "
                f"{r.get('cpu_s', 0.0):.1f} s of {r.get('wall_s', 0.0):.0f} s | "
                f"{r.get('scheduling', '-')} |"
            )
    lines += [
        "",
        "CPU the node processes used (all of them, whole run) against the run's wall time "
        f"on {res['machine']['cpus']} CPUs:",
        "",
    ]
    for sc in ("kad", "gossipsub"):
        if sc in res:
            cpu, wall = res[sc]["real_node_cpu_s"], res[sc]["real_wall_s"]
            la = res[sc].get("real_load_average")
            load = f"; load average {la['mean']:.1f} (max {la['max']:.1f})" if la else ""
            lines.append(
                f"- {sc}: {cpu:.0f} CPU s in {wall:.0f} s "
                f"({cpu / wall / (res['machine']['cpus'] or 1):.0%} of the machine){load}"
            )
    lines += [
        "",
        f"Median one-way delay of the model's node pairs: {_ms(res['median_one_way_s'])} "
        "(divides an operation's latency into the one-way crossings that the router "
        "overhead term of its tolerance counts).",
    ]
    if "kad" in res:
        k = res["kad"]
        lines += [
            "",
            "## Kademlia",
            "",
            f"Bootstrap as in the simulator ({k['config']['seeds']} seeds, one join every "
            f"{k['config']['join_interval']} s, own-ID lookup + {k['config']['refresh_lookups']} "
            f"random lookup), then {k['config']['queries']} operations of each kind, "
            f"{k['config']['op_interval']} s apart, the simulator's sources and keys. "
            f"Joins that got peers: {k['real_joins_ok']}/{n}"
            + (
                f" (errors: {'; '.join(k['real_join_errors'])})"
                if k.get("real_join_errors")
                else ""
            )
            + ". Routing table size mean: "
            f"simulator {_f(k['sim_routing_mean'], 1)}, real {_f(k['real_routing_mean'], 1)}.",
            "",
            *_table(k["checks"]),
            "",
            "All figures side by side (latency p90/p99 too):",
            "",
            "| operation | run | count | success | p50 | p90 | p99 | hops mean | hops max |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for kind in KAD_OPS:
            for who in ("sim", "real"):
                f = k[who][kind]
                lines.append(
                    f"| {kind} | {who} | {f['count']} | {_f(f['success_rate'])} | "
                    f"{_ms(f['latency_p50'])} | {_ms(f['latency_p90'])} | "
                    f"{_ms(f['latency_p99'])} | {_f(f['hops_mean'], 2)} | {_f(f['hops_max'])} |"
                )
        lines += [
            "",
            "Pairwise (the same operation in both runs): median of real / simulated latency "
            "per kind: "
            + ", ".join(f"{kind} {_f(v, 2)}" for kind, v in k["paired_ratio_median"].items())
            + ".",
        ]
    if "gossipsub" in res:
        g = res["gossipsub"]
        c = g["config"]
        lines += [
            "",
            "## GossipSub",
            "",
            f"One topic, each node dials {c['connect']} nodes (the simulator's draws), "
            f"{c['warmup']:g} s warm-up, {c['rate']:g} msg/s of {c['msg_size']} bytes for "
            f"{c['duration']:g} s from the simulator's publishers, {c['drain']:g} s drain; "
            f"D={c['d']}, IDONTWANT {'on' if c['idontwant'] else 'off'}. "
            f"Publish errors (real): {g['real_publish_errors']}.",
            "",
            *_table(g["checks"]),
            "",
            "| figure | simulator | real processes |",
            "|---|---|---|",
        ]
        for key in (
            "messages",
            "expected",
            "delivered",
            "delivery_ratio",
            "latency_p50",
            "latency_p90",
            "latency_p99",
            "latency_max",
            "copies_per_accepted",
            "copies_per_accepted_per_mesh_peer",
            "duplicates",
            "mesh_degree_mean",
            "mesh_degree_min",
            "mesh_degree_max",
        ):
            fmt = _ms if key.startswith("latency") else _f
            lines.append(f"| {key} | {fmt(g['sim'][key])} | {fmt(g['real'][key])} |")
    lines += [
        "",
        "## What differs between the two runs, by construction",
        "",
        "- The simulator charges no CPU time: a Noise handshake or a protobuf decode takes "
        "zero virtual seconds. The real processes share this machine's CPUs (with each other "
        "and with whatever else runs), so every step adds its processing and scheduling "
        "delay; the router overhead term covers the router and the kernel, not this.",
        "- The simulator delays each write; the router delays each packet (headers and ACKs "
        "included) and real TCP adds slow start, delayed ACKs and Nagle-free small segments.",
        "- Jitter is drawn from different generators (the same distribution).",
        "- Bootstrap refresh lookups use keys of the harness's own (the simulator draws "
        "them interleaved with its join timing); everything measured uses the simulator's.",
        "",
    ]
    return "\n".join(lines)
