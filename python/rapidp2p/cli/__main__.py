"""``python -m rapidp2p.cli``: the same as the ``rapidp2p`` console script."""

from __future__ import annotations

from rapidp2p.cli.main import main

raise SystemExit(main())
