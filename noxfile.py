"""Developer and CI tasks. ``python3 -m nox`` runs the default sessions: the whole test suite.

Sessions: ``rust`` (fmt, clippy, cargo test on the pure crates, the stable fuzz harness for
2 s per target), ``lint`` (ruff, mypy), ``docs`` (``mkdocs build --strict``), ``tests``
(builds the release wheel once, installs it, runs pytest including the interop peers, the
docs' code blocks and the examples), ``bench`` (benchmarks), ``fuzz`` (longer fuzzing,
cargo-fuzz when a nightly toolchain has it), ``wheels`` (the release wheels for manylinux2014
and musllinux_1_2, x86_64 and aarch64, checked with auditwheel) and ``dev`` (editable build);
the last four are never part of the default run.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
from pathlib import Path

import nox

nox.options.sessions = ["rust", "lint", "docs", "tests"]
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


def _extra(name: str) -> list[str]:
    """The requirements of the ``name`` extra in pyproject.toml (one list, kept there)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # nox itself may run on 3.10, where tomllib is not in the standard library
        import tomli as tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"][name])


#: The wheel built in this nox run (lint's stubtest and tests share one build).
_BUILT: list[str] = []


def _build_wheel(session: nox.Session) -> str:
    """Builds the release wheel into dist/ (once per nox run), checks it, returns its path.

    The wheel CI tests is the one users get: manylinux2014 (glibc 2.17), linked with zig's
    cross toolchain and passed through ``auditwheel`` (no external library), not a wheel
    tied to this machine's glibc.
    """
    if _BUILT and os.path.exists(_BUILT[0]):
        return _BUILT[0]
    session.install("maturin>=1.7,<2", "ziglang", "auditwheel>=6")
    for old in glob.glob(str(DIST / "rapidp2p-*.whl")):
        os.remove(old)
    session.run(
        "maturin", "build", "--release", "--locked", "--zig", "--compatibility", "manylinux2014",
        "--out", str(DIST),
    )
    wheels = glob.glob(str(DIST / "rapidp2p-*.whl"))
    if len(wheels) != 1:
        session.error(f"expected one wheel in {DIST}, found {wheels}")
    _audit(session, wheels[0])
    _BUILT[:] = wheels
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
    # rapidp2p-fuzz's stable harness: every decoder target for a fixed 2 s (nox -s fuzz: longer).
    session.run(*args, external=True, env={"RAPIDP2P_FUZZ_SECONDS": "2"})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff and mypy (strict) over the package, tests and benches; ``mypy.stubtest`` of the
    ``_core`` stubs (one per submodule) against the built extension."""
    session.install(
        "ruff>=0.6", "mypy>=1.10", "cryptography>=42", "msgpack>=1.0", "msgpack-types>=0.3",
        "uvloop>=0.19", "pytest>=8", "hypothesis>=6.100", "h11>=0.16,<1", "ifaddr>=0.2",
        "prometheus_client>=0.20", "wsproto>=1.2",
    )
    session.run("ruff", "check", "python", "tests", "benches", "examples", "docs", "noxfile.py")
    session.run("ruff", "format", "--check", "python")
    session.run("mypy", "python/rapidp2p")
    # The stubs against the compiled module: the wheel (built once, shared with ``tests``).
    session.install(_build_wheel(session), "--force-reinstall", "--no-deps")
    session.run("python", "-m", "mypy.stubtest", "rapidp2p._core")


@nox.session
def docs(session: nox.Session) -> None:
    """Builds the documentation site with ``mkdocs build --strict`` (a warning fails it).

    Fast: the API reference is read from the sources and the ``_core`` stub by static
    analysis, so nothing is compiled. ``nox -s docs -- serve`` serves it with live reload.
    """
    session.install(*_extra("docs"))
    env = {"NO_MKDOCS_2_WARNING": "1"}  # Material's banner about its successor
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:], env=env)
    else:
        session.run("mkdocs", "build", "--strict", "--site-dir", str(ROOT / "site"), env=env)


@nox.session
def tests(session: nox.Session) -> None:
    """Build the release wheel, install it, run every test (interop peers included)."""
    wheel = _build_wheel(session)
    # [http]: rapidp2p.http needs h11, [metrics]: prometheus_client; optional extras for
    # users, tested here.
    session.install(f"{wheel}[test,http,metrics]", "--force-reinstall", "--no-deps")
    session.install(f"{wheel}[test,http,metrics]")
    session.run("pytest", "-ra", *session.posargs, env={"RAPIDP2P_WHEEL": wheel})


@nox.session
def bench(session: nox.Session) -> None:
    """Micro benchmarks (pytest-benchmark), then the end-to-end suite side by side with
    iperf3, raw TCP, go-, rust- and py-libp2p (benches/e2e): a table, bench-results/e2e.json
    and bench-results/e2e.png. Prints ratios, asserts nothing about time.

    ``nox -s bench -- --quick`` (arguments go to ``python -m benches.e2e``).
    """
    wheel = _build_wheel(session)
    session.install(f"{wheel}[test,bench,chart,metrics]")
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
    # rust-libp2p's own perf binary (crate libp2p-perf, its published release profile).
    session.run(str(ROOT / "benches" / "e2e" / "rust-perf" / "build"), external=True, env=env,
                success_codes=[0, 77])
    session.run("python", "-m", "benches.e2e", *session.posargs, env=env)


FUZZ_TARGETS_DIR = ROOT / "fuzz" / "fuzz_targets"


@nox.session(python=False)
def fuzz(session: nox.Session) -> None:
    """Fuzzes every decoder a peer can reach for longer than CI does (not a default session).

    With ``cargo +nightly fuzz`` installed (rustup toolchain nightly, ``cargo install
    cargo-fuzz``): libFuzzer, coverage-guided, ``-max_total_time`` seconds per target (corpus
    kept in fuzz/corpus). Without it: the stable harness (random and mutated inputs). Seconds
    per target: ``nox -s fuzz -- 120`` (default 60). CI runs the stable harness for 2 s per
    target inside the ``rust`` session.
    """
    import shutil
    import subprocess

    seconds = session.posargs[0] if session.posargs else "60"
    nightly = (
        shutil.which("cargo-fuzz") is not None
        and subprocess.run(
            ["cargo", "+nightly", "--version"], capture_output=True, check=False
        ).returncode
        == 0
    )
    if not nightly:
        session.log("cargo +nightly fuzz unavailable: running the stable harness")
        session.run(
            "cargo", "test", "--locked", "--release", "-p", "rapidp2p-fuzz", "--test", "stable",
            env={"RAPIDP2P_FUZZ_SECONDS": seconds}, external=True,
        )
        return
    targets = sorted(p.stem for p in FUZZ_TARGETS_DIR.glob("*.rs"))
    with session.chdir(ROOT / "fuzz"):
        for target in targets:
            session.run(
                "cargo", "+nightly", "fuzz", "run", target, "--",
                f"-max_total_time={seconds}", "-rss_limit_mb=2048", external=True,
            )


@nox.session
def dev(session: nox.Session) -> None:
    """Editable install into .nox/dev for quick iteration (``maturin develop``)."""
    session.install("maturin>=1.7,<2", "-e", ".[test,lint]")


def _audit(session: nox.Session, wheel: str) -> None:
    """``auditwheel show``, then a verdict from its JSON report.

    manylinux: the wheel must be manylinux_2_17 (glibc 2.17) with no external library.
    musllinux: auditwheel (on a glibc host) cannot tell the musl version and lists the NEEDED
    ``libc.so`` that zig's musl links as external, but musl's dynamic loader resolves that
    name to itself; so: musllinux_1_2 symbols and no external library but ``libc.so``. With
    Debian's ``musl`` package installed, the x86_64 musl wheel also goes through musl's
    loader, whose only unresolved symbols must be the Python C API.
    """
    import json
    import subprocess
    import tempfile
    import zipfile

    musl = "musllinux" in Path(wheel).name
    with tempfile.TemporaryDirectory() as empty:
        # An empty library path keeps the host's glibc linker script libc.so out of a musl
        # wheel's analysis.
        ldpaths = ["--ldpaths", empty] if musl else []
        session.run("auditwheel", "show", *ldpaths, wheel)
        tool = str(Path(session.bin) / "auditwheel")
        out = subprocess.run(
            [tool, "show", "--json", *ldpaths, wheel], capture_output=True, text=True, check=True
        ).stdout
    report = json.loads(out)
    external = set(report["external_libs"])
    arch = "aarch64" if "aarch64" in Path(wheel).name else "x86_64"
    if musl:
        ok = report["sym_tag"] == f"musllinux_1_2_{arch}" and external <= {"libc.so"}
    else:
        ok = report["overall_tag"] == f"manylinux_2_17_{arch}" and not external
    if not ok:
        session.error(f"{Path(wheel).name}: auditwheel says {report}")
    loader = Path("/lib/ld-musl-x86_64.so.1")
    if musl and arch == "x86_64" and loader.exists():
        with tempfile.TemporaryDirectory() as tmp:
            with zipfile.ZipFile(wheel) as zf:
                so = zf.extract("rapidp2p/_core.abi3.so", tmp)
            listing = subprocess.run([str(loader), "--list", so], capture_output=True, text=True)
        text = listing.stdout + listing.stderr
        missing = [
            line.rsplit(": ", 2)[-2]
            for line in text.splitlines()
            if line.endswith("symbol not found")
        ]
        foreign = [m for m in missing if not m.lstrip("_").startswith("Py")]
        if "libc.so => /lib/ld-musl-x86_64.so.1" not in text or foreign:
            session.error(f"musl's loader on {Path(wheel).name}:\n{text}")
        session.log(f"musl loader: libc.so is musl itself; {len(missing)} unresolved: Python API")
    session.log(f"{Path(wheel).name}: ok")


#: (Rust target, platform tag policy) of every release wheel. maturin's ``--zig`` links with
#: zig's cross toolchain against old glibc / musl headers, so no docker image is needed.
RELEASE_TARGETS = [
    ("x86_64-unknown-linux-gnu", "manylinux2014"),
    ("aarch64-unknown-linux-gnu", "manylinux2014"),
    ("x86_64-unknown-linux-musl", "musllinux_1_2"),
    ("aarch64-unknown-linux-musl", "musllinux_1_2"),
]


@nox.session
def wheels(session: nox.Session) -> None:
    """Release wheels for manylinux2014 (glibc 2.17) and musllinux_1_2 on x86_64 and aarch64,
    an sdist, ``auditwheel show`` on each wheel, a wheel built back from the sdist, and the
    install test (tests/unit/test_wheel.py) of the x86_64 manylinux2014 wheel.

    Slow (one fat-LTO build per target): never part of the default run. Needs the Rust
    targets (``rustup target add`` ...); ``nox -s wheels -- x86_64-unknown-linux-gnu`` builds
    only the named targets.
    """
    out = DIST / "release"
    session.install("maturin>=1.7,<2", "ziglang", "auditwheel>=6")
    session.install("pytest>=8", "pytest-asyncio>=0.23", "pytest-timeout>=2.3")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    wanted = set(session.posargs)
    targets = [t for t in RELEASE_TARGETS if not wanted or t[0] in wanted]
    installed = session.run("rustup", "target", "list", "--installed", external=True,
                            silent=True) or ""
    for target, policy in targets:
        if target not in str(installed).split():
            session.run("rustup", "target", "add", target, external=True)
        session.run(
            "maturin", "build", "--release", "--locked", "--zig", "--target", target,
            "--compatibility", policy, "--out", str(out),
        )
    built = sorted(glob.glob(str(out / "rapidp2p-*.whl")))
    if len(built) != len(targets):
        session.error(f"expected {len(targets)} wheels in {out}, found {built}")
    for wheel in built:
        _audit(session, wheel)
    # The sdist, and one wheel built back from it (proves the sdist holds everything).
    session.run("maturin", "sdist", "--out", str(out))
    sdists = glob.glob(str(out / "rapidp2p-*.tar.gz"))
    if len(sdists) != 1:
        session.error(f"expected one sdist in {out}, found {sdists}")
    from_sdist = out / "from-sdist"
    session.run("pip", "wheel", "--no-deps", "--wheel-dir", str(from_sdist), sdists[0])
    if not glob.glob(str(from_sdist / "rapidp2p-*.whl")):
        session.error("the sdist built no wheel")
    x86 = [w for w in built if "manylinux" in w and "x86_64" in w]
    if x86:
        session.run(
            "pytest", "-p", "no:cacheprovider", str(ROOT / "tests" / "unit" / "test_wheel.py"),
            env={"RAPIDP2P_WHEEL": x86[0]},
        )
    session.log("wheels: " + ", ".join(Path(w).name for w in built))
