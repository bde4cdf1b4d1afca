"""Builds a test-only C program from a tree's sources with gcc: the
equivalence harnesses of tests/native (scan_diff.c, rtp_diff.c), as the
extension's flags build the engine, and under the sanitizers."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RELEASE = ["-O3"]   # setup.py's optimisation for the extension
SANITIZED = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def require_gcc() -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: cannot build the native test harness")


def build(tree: Path, sources: list, includes: list, out: Path, flags: list) -> Path:
    """gcc `flags` over tree/sources (paths relative to tree), -I tree/includes."""
    cmd = ["gcc", *flags, "-std=c11", "-fno-strict-aliasing", "-D_GNU_SOURCE",
           *(f"-I{tree / i}" for i in includes), "-o", str(out), *(str(tree / s) for s in sources), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"build failed:\n{' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return out


def build_each(tree: Path, sources: list, includes: list, out_dir: Path, name: str, builds: dict) -> dict:
    """One build per entry of `builds` ({label: flags}): {label: executable}."""
    return {label: build(tree, sources, includes, out_dir / f"{name}_{label}", flags) for label, flags in builds.items()}


def broken_copy(repo: Path, dest: Path, path: str, find: str, replace: str) -> Path:
    """A copy of repo's ext/ and tests/native/ in dest with `find` (once in
    `path`) replaced: a breakage a harness must notice. Returns dest."""
    for part in ("ext", "tests/native"):
        shutil.copytree(repo / part, dest / part)
    target = dest / path
    text = target.read_text()
    assert text.count(find) == 1, f"breakage no longer applies to {path}: update the test's BREAKAGES"
    target.write_text(text.replace(find, replace))
    return dest
