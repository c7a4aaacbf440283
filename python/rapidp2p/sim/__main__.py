"""``python -m rapidp2p.sim kad --nodes N --seed S --out report.md``."""

from __future__ import annotations

import sys

from rapidp2p.sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
