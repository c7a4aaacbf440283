"""Developer and CI tasks. ``python3 -m nox`` runs the default sessions: the whole test suite.

Sessions: ``rust`` (fmt, clippy, cargo test on the pure crates), ``lint`` (ruff, mypy),
``tests`` (builds the release wheel once, installs it, runs pytest including the interop
peers), ``bench`` (benchmarks, never part of the default run), ``dev`` (editable build).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import nox

nox.options.sessions = ["rust", "lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
DIST = ROOT / "dist"


def _pure_crates() -> list[str]:
    """Every workspace crate except the PyO3 glue (which links libpython)."""
    names = []
    for manifest in sorted(ROOT.glob("rust/*/Cargo.toml")):
        for line in manifest.read_text().splitlines():
            if line.startswith("name = "):
                name = line.split("=", 1)[1].strip().strip('"')
                if name != "rapidp2p-py":
                    names.append(name)
                break
    return names


def _build_wheel(session: nox.Session) -> str:
    """Builds the release wheel into dist/ and returns its path."""
    session.install("maturin>=1.7,<2")
    for old in glob.glob(str(DIST / "rapidp2p-*.whl")):
        os.remove(old)
    session.run("maturin", "build", "--release", "--locked", "--out", str(DIST))
    wheels = glob.glob(str(DIST / "rapidp2p-*.whl"))
    if len(wheels) != 1:
        session.error(f"expected one wheel in {DIST}, found {wheels}")
    return wheels[0]


@nox.session
def rust(session: nox.Session) -> None:
    """cargo fmt --check, clippy -D warnings, cargo test on the pure crates."""
    session.run("cargo", "fmt", "--all", "--check", external=True)
    session.run(
        "cargo", "clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings",
        external=True,
    )
    args = ["cargo", "test", "--locked"]
    for crate in _pure_crates():
        args += ["-p", crate]
    session.run(*args, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff and mypy (strict) over the package, tests and benches."""
    session.install(
        "ruff>=0.6", "mypy>=1.10", "cryptography>=42", "msgpack>=1.0", "msgpack-types>=0.3",
        "uvloop>=0.19", "pytest>=8", "hypothesis>=6.100", "h11>=0.16,<1",
    )
    session.run("ruff", "check", "python", "tests", "benches", "noxfile.py")
    session.run("ruff", "format", "--check", "python")
    session.run("mypy", "python/rapidp2p")


@nox.session
def tests(session: nox.Session) -> None:
    """Build the release wheel, install it, run every test (interop peers included)."""
    wheel = _build_wheel(session)
    # [http]: rapidp2p.http needs h11, an optional extra for users, tested here.
    session.install(f"{wheel}[test,http]", "--force-reinstall", "--no-deps")
    session.install(f"{wheel}[test,http]")
    session.run("pytest", "-ra", *session.posargs, env={"RAPIDP2P_WHEEL": wheel})


@nox.session
def bench(session: nox.Session) -> None:
    """Micro benchmarks (pytest-benchmark), then the end-to-end suite side by side with
    iperf3, raw TCP, go-, rust- and py-libp2p (benches/e2e): a table, bench-results/e2e.json
    and bench-results/e2e.png. Prints ratios, asserts nothing about time.

    ``nox -s bench -- --quick`` (arguments go to ``python -m benches.e2e``).
    """
    import shutil

    wheel = _build_wheel(session)
    session.install(f"{wheel}[test,bench,chart]")
    if shutil.which("iperf3") is None:
        if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
            session.run("apt-get", "install", "-y", "-q", "iperf3", external=True,
                        success_codes=[0, 100])
        else:
            session.log("iperf3 missing (Debian: apt-get install -y iperf3); its column is n/a")
    session.run("pytest", "benches", "--benchmark-columns=min,median,ops")
    # The interop peers are built for fast CI compiles (rust-peer at opt-level 1); for a fair
    # race the suite builds its own fully optimised copies in a separate cache.
    bench_cache = Path.home() / ".cache" / "rapidp2p-bench-peers"
    env = {"RAPIDP2P_INTEROP_CACHE": str(bench_cache), "CARGO_PROFILE_RELEASE_OPT_LEVEL": "3"}
    for peer in ("go-peer", "rust-peer", "py-peer"):
        session.run(str(ROOT / "tests" / "interop" / peer / "build"), external=True, env=env,
                    success_codes=[0, 77])
    session.run("python", "-m", "benches.e2e", *session.posargs, env=env)


@nox.session
def dev(session: nox.Session) -> None:
    """Editable install into .nox/dev for quick iteration (``maturin develop``)."""
    session.install("maturin>=1.7,<2", "-e", ".[test,lint]")
