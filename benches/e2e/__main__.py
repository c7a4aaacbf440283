"""``python -m benches.e2e``: the end-to-end suite (see run.py)."""

from benches.e2e.run import main

raise SystemExit(main())
