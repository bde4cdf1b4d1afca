"""The native SIP scan alone: CPU per message of ext/sip/ws_sip.c over a
capture's SIP messages, beside the least a scan of the same header sections
must do (finding their line ends with memchr), in the same run.

    python -m benchmarks.sip_scan [capture ...] [--source OLD_ws_sip.c] [--rounds 20]

Default captures: the engine benchmark's (3,500 messages) and the first
200,000 messages of benchmarks.sip_rate's (bench-out/; run those first to
generate them). `--source` also times another version of ws_sip.c (e.g.
`git show REV:ext/sip/ws_sip.c > old.c`) compiled the same way, for an A/B
in one run. Pinned to the last CPU; best of --rounds.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from benchmarks.run import DEFAULT_DIR, pin_to_last_cpu

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPTURES = ["synth-v1-c500-p1000000-l0.005-j5-s1.pcap", "sip-c100000-s2.pcap"]


def build(source: str, out: str) -> str:
    """The harness compiled against `source` (a ws_sip.c), as setup.py compiles the engine."""
    source = os.path.abspath(source)
    with open(source) as fh:
        text = fh.read()
    if '#include "ws_sip.h"' in text:   # a copy outside ext/sip: point it at the header
        patched = os.path.join(os.path.dirname(out), os.path.basename(out) + "_ws_sip.c")
        with open(patched, "w") as fh:
            fh.write(text.replace('#include "ws_sip.h"', '#include "sip/ws_sip.h"'))
        source = patched
    subprocess.run(["gcc", "-O3", "-std=c11", "-fno-strict-aliasing", "-D_GNU_SOURCE", "-I", os.path.join(REPO, "ext"),
                    f'-DWS_SIP_SOURCE="{source}"', "-o", out, os.path.join(REPO, "benchmarks", "sip_scan.c")],
                   check=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.sip_scan", description=__doc__.split("\n\n")[0])
    ap.add_argument("captures", nargs="*")
    ap.add_argument("--source", help="another ws_sip.c to time beside this tree's")
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args(argv)
    pin_to_last_cpu()
    paths = args.captures or [os.path.join(DEFAULT_DIR, name) for name in CAPTURES]
    with tempfile.TemporaryDirectory() as tmp:
        builds = [("this tree", build(os.path.join(REPO, "ext", "sip", "ws_sip.c"), os.path.join(tmp, "scan")))]
        if args.source:
            builds.append((args.source, build(args.source, os.path.join(tmp, "scan_other"))))
        for path in paths:
            if not os.path.exists(path):
                print(f"{path}: missing (benchmarks.run / benchmarks.sip_rate generate it)", file=sys.stderr)
                return 2
            for name, exe in builds:
                out = json.loads(subprocess.run([exe, path, "200000", str(args.rounds)], check=True,
                                                capture_output=True, text=True).stdout)
                print(f"{os.path.basename(path)}: {name}: {out['messages']:,} messages ({out['parsed_ok']:,} parsed,"
                      f" {out['mean_bytes']:.0f} B mean): scan {out['scan_ns']:.0f} ns/message, line ends alone"
                      f" {out['line_ends_ns']:.0f} ns ({out['scan_ns'] / out['line_ends_ns']:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
