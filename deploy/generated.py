"""Shared by the deploy generators: write their files, or with --check report
which committed files are stale (the tests run --check)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def write_or_check(outputs: dict, description: str, script: str, argv=None) -> int:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--check", action="store_true", help="exit 1 if a generated file is stale")
    args = ap.parse_args(argv)
    stale = []
    for path, text in outputs.items():
        if args.check:
            if not Path(path).exists() or Path(path).read_text() != text:
                stale.append(str(path))
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
    if stale:
        print(f"stale (run {script}):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    return 0
