"""End-to-end benchmark suite: rapidp2p beside iperf3, raw TCP, go-, rust- and py-libp2p.

``python -m benches.e2e`` (or ``nox -s bench``); see ``run.py``.
"""
