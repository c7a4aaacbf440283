"""Benchmarks: run with ``python3 -m nox -s bench``. They print figures and ratios to the
baselines; none of them asserts anything about time (machines here are shared and noisy)."""
