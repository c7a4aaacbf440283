"""The ``rapidp2p perf`` command line (test-plans shape plus the suite's extensions), for the
stand-in stacks run as plain scripts (raw TCP, py-libp2p): one parser, no project imports, so
it also loads in the py-libp2p virtualenv."""

from __future__ import annotations

import argparse


def parse(prog: str) -> argparse.Namespace:
    """Parses sys.argv with every flag the suite passes to a perf stack."""
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--run-server", action="store_true")
    p.add_argument("--server-address", default="127.0.0.1:4001")
    p.add_argument("--transport", default="tcp")
    p.add_argument("--upload-bytes", type=int, default=0)
    p.add_argument("--download-bytes", type=int, default=0)
    p.add_argument("--iterations", type=int, default=1)
    p.add_argument("--reuse-connection", action="store_true")
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--connect-only", action="store_true")
    return p.parse_args()
