"""Every code block of the documentation runs, so none goes stale.

The blocks of ``docs/**/*.md`` (and the Python blocks of the README) are extracted by fence:

* ```` ```python ```` blocks run as a script in a fresh interpreter, in a temporary directory;
* ```` ```sh ```` blocks run with ``bash -euo pipefail`` in a temporary directory that holds a
  link to ``examples/``, with this interpreter's ``python`` and ``rapidp2p`` first on PATH;
* a block right after ``<!-- docs-test: compile-only (reason) -->`` is only checked for
  syntax (``compile`` / ``bash -n``): for commands that serve forever or install software;
* ``text`` blocks (sample output, diagrams) and ``toml``/``yaml`` snippets are not code.

A fence in any other language fails the test, so each block's fate is decided on purpose.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import rapidp2p

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
TIMEOUT = 120
RUN = {"python", "sh"}
NOT_CODE = {"text", "toml", "yaml"}
MARKER = re.compile(r"<!--\s*docs-test:\s*compile-only\s*\(([^)]+)\)\s*-->")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*$")


@dataclass
class Block:
    path: Path
    line: int
    lang: str
    code: str
    compile_only: str | None  # the reason, when only checked for syntax

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def extract(path: Path) -> list[Block]:
    """The fenced blocks of one Markdown file (indented fences too: admonitions, lists)."""
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang, start = m["indent"], m["lang"], i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        prev = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
        marker = MARKER.search(prev)
        code = "\n".join(body) + "\n"
        blocks.append(Block(path, start + 1, lang, code, marker[1] if marker else None))
    return blocks


def all_blocks() -> list[Block]:
    blocks = [b for md in sorted(DOCS.rglob("*.md")) for b in extract(md)]
    blocks += [b for b in extract(ROOT / "README.md") if b.lang == "python"]
    return blocks


BLOCKS = all_blocks()


def _env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    package_parent = str(Path(rapidp2p.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    # `python` and `rapidp2p` of the interpreter under test come first.
    bin_dir = workdir / "bin"
    bin_dir.mkdir(exist_ok=True)
    # Wrappers, not symlinks: a venv's interpreter knows its venv by the path it is run from.
    for name, args in (("python", ""), ("python3", ""), ("rapidp2p", " -m rapidp2p")):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}"{args} "$@"\n')
        script.chmod(0o755)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    return env


def test_docs_have_code_blocks() -> None:
    assert len([b for b in BLOCKS if b.lang in RUN and b.compile_only is None]) >= 20
    langs = {b.lang for b in BLOCKS}
    assert langs <= RUN | NOT_CODE, f"fences in other languages: {langs - RUN - NOT_CODE}"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang in RUN], ids=lambda b: b.id)
def test_code_block(block: Block, tmp_path: Path) -> None:
    if block.lang == "python":
        compile(block.code, block.id, "exec")
        if block.compile_only:
            return
        cmd = [sys.executable, "-c", block.code]
    else:
        check = subprocess.run(["bash", "-n", "-c", block.code], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        if block.compile_only:
            return
        (tmp_path / "examples").symlink_to(ROOT / "examples")
        cmd = ["bash", "-euo", "pipefail", "-c", block.code]
    result = subprocess.run(
        cmd,
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"{block.id} failed (exit {result.returncode})\n--- stdout\n{result.stdout}"
        f"\n--- stderr\n{result.stderr}"
    )
