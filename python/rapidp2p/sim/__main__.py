"""``python -m rapidp2p.sim kad|gossipsub --nodes N --seed S --out report.md``."""

from __future__ import annotations

import sys

from rapidp2p.sim.cli import main, pin_hash_seed

if __name__ == "__main__":
    pin_hash_seed(sys.argv[1:])
    sys.exit(main())
