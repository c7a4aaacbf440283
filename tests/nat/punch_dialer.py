"""The dialing side (A) of a hole punch, run in a network namespace by the DCUtR tests and
``benches/e2e/holepunch_rate.py``: listen, connect to the relay (so that it observes our
NAT's address), dial the target through the relay, report how the hole punch went, then
answer commands on stdin (``ping``: a ping and which connection carried it).

Every line on stdout is JSON: ``{"relayed": ...}`` once the relayed connection is up, then
``{"hole_punch": "succeeded"|"failed"|"timeout", "seconds": ...}`` (seconds from the relayed
connection to the event), then one line per command.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from rapidp2p.host import HolePunchFailed, HolePunchSucceeded, Host


def _say(record: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> int:
    host = await Host.create(listen=args.listen)
    async with host:
        relay = await host.connect(args.relay)
        ident = host.identify
        if ident is not None:  # our observed address comes with the relay's identify
            await asyncio.wait_for(ident.identify_peer(relay), 10)
        with host.events.subscribe(HolePunchSucceeded, HolePunchFailed) as sub:
            conn = await host.connect(args.target, timeout=30)
            start = time.monotonic()  # the relayed connection is up: the clock starts
            _say({"relayed": str(conn.remote_addr), "limited": conn.limited})
            try:
                ev = await sub.get(timeout=args.wait)
            except asyncio.TimeoutError:
                _say({"hole_punch": "timeout"})
                ev = None
            if isinstance(ev, HolePunchSucceeded):
                _say({"hole_punch": "succeeded", "seconds": time.monotonic() - start,
                      "addr": str(ev.addr), "attempt": ev.attempt})  # fmt: skip
            elif isinstance(ev, HolePunchFailed):
                _say({"hole_punch": "failed", "seconds": time.monotonic() - start,
                      "error": str(ev.error), "attempts": ev.attempts})  # fmt: skip
        peer = conn.remote_peer
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return 0
            if line.strip() == "ping":
                try:
                    rtt = (await host.ping(peer))[0]
                except Exception as exc:  # reported, not raised: the test reads it
                    _say({"ping": None, "error": f"{type(exc).__name__}: {exc}"})
                    continue
                used = host.live_connection(peer)
                _say({"ping": rtt, "limited": used.limited if used else None,
                      "addr": str(used.remote_addr) if used else None})  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", action="append", required=True)
    parser.add_argument("--relay", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--wait", type=float, default=60.0)
    sys.exit(asyncio.run(main(parser.parse_args())))
