"""Another build of rapidp2p as a column of the GossipSub and Kademlia rows (issue 16):
``--stacks rapidp2p@PYTHON`` runs that interpreter's rapidp2p in the mesh and Kademlia
workers, so before/after figures come from one run."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benches import kad_mixed, pubsub_mesh  # noqa: E402
from benches.e2e import rows, run  # noqa: E402
from benches.e2e.stacks import other_build  # noqa: E402


def test_workers_of_another_build_run_its_interpreter() -> None:
    other = "/opt/before/bin/python"
    assert pubsub_mesh.worker_argv(f"rapidp2p@{other}")[0] == other
    assert kad_mixed.kad_worker_argv(f"rapidp2p@{other}")[0] == other
    assert pubsub_mesh.worker_argv("rapidp2p")[0] == sys.executable
    assert pubsub_mesh.rapidp2p_python("go-libp2p") is None


def test_another_build_gets_the_mesh_and_kad_rows() -> None:
    build = other_build(sys.executable)
    by_id = {r.id: r for r in rows.ROWS}
    for row_id in ("pubsub_1kib", "pubsub_64kib", "kad_lookups", "kad_latency_p50"):
        assert run.runs_row(by_id[row_id], build)
    rows.RAPIDP2P_BUILDS[build.name] = sys.executable
    try:
        assert rows._impl(build) == f"rapidp2p@{sys.executable}"
    finally:
        del rows.RAPIDP2P_BUILDS[build.name]
