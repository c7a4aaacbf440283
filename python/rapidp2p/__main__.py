"""``python -m rapidp2p``: the ``rapidp2p`` command line, for when the console script is not
on ``PATH`` (a venv that is not activated, ``pip install --user``, Windows)."""

from __future__ import annotations

from rapidp2p.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
