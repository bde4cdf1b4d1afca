"""The floor under issue 3's "RTP rate drops <= 10 % with correlation on":
what correlation costs when it is all C, with no Python at all.

    python -m benchmarks.correlation_floor [--repeat 9] [--markdown]

On the two captures of benchmarks.correlation_cost, `correlation_floor.c`
(compiled here with the extension's flags) runs the engine three ways, in
interleaved children (each the best of ROUNDS_PER_RUN passes) on one pinned
core over a freshly written copy, least CPU of each mode counting:
  off        SIP not looked for (the engine of `replay --streams-only`)
  engine     SIP spotted and copied out, the batches thrown away
  correlate  plus a minimal dialog table in C: every message scanned, every
             SDP body scanned and bound (see correlation_floor.c)
The drop of `correlate` against `off` is what a correlator costs the RTP rate
before any business label, timer, media join, E-model or CDR; the product's
own drop is benchmarks.correlation_cost's. Checks (exit 1 otherwise): every
mode counts the generator's RTP packets; `correlate` finds, answers and
finishes every call of the truth, with its answered seconds, and binds its
streams.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

from benchmarks.correlation_cost import measuring_core, mix_arguments, mix_copies
from benchmarks.run import BENCH, REPO, print_table

MODES = ("off", "engine", "correlate")
ROUNDS_PER_RUN = 5   # passes per child, best counts: the modes differ by less than a child's noise
CFLAGS = ["-O3", "-std=c11", "-fno-strict-aliasing"]   # setup.py's, for the extension


def build(tmp: str) -> str:
    exe = os.path.join(tmp, "correlation_floor")
    subprocess.run(["gcc", *CFLAGS, "-I", os.path.join(REPO, "ext"), "-o", exe,
                    os.path.join(BENCH, "correlation_floor.c"), "-lm"], check=True)
    return exe


def measure(exe: str, pcap: str, repeat: int, core) -> dict:
    best: dict = {}
    for _ in range(repeat):
        for mode in MODES:
            argv = [exe, pcap, mode, str(ROUNDS_PER_RUN)]
            if core is not None:
                argv = ["taskset", "-c", str(core)] + argv
            out = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
            if mode not in best or out["best_cpu_ms"] < best[mode]["best_cpu_ms"]:
                best[mode] = out
    return best


def main(argv=None) -> int:
    args = mix_arguments(argv, "python -m benchmarks.correlation_floor", __doc__, 9)
    core = measuring_core()
    tmp = tempfile.mkdtemp(prefix="warpsniff-floor-")
    rows, failed = [], []
    try:
        exe = build(tmp)
        for name, truth, pcap in mix_copies(args.keep, args.packets):
            m = measure(exe, pcap, args.repeat, core)
            tt = truth["totals"]
            for mode in MODES:
                if m[mode]["rtp_packets"] != tt["rtp_packets"]:
                    failed.append(f"{name} {mode}: {m[mode]['rtp_packets']} RTP packets, truth {tt['rtp_packets']}")
            c = m["correlate"]
            answered = sum(1 for call in truth["calls"] if call["kind"] == "answered")
            seconds = sum((call["end_ns"] - call["answer_ns"]) / 1e9 for call in truth["calls"]
                          if call["kind"] == "answered")
            if (c["attempts"], c["answered"], c["finished"], c["bound_streams"]) != (
                    tt["calls"], answered, tt["calls"], tt["streams"]) or abs(c["duration_s_sum"] - seconds) > 1e-3:
                failed.append(f"{name} correlate: {c['attempts']} attempts, {c['answered']} answered, "
                              f"{c['finished']} finished, {c['bound_streams']} bound streams, "
                              f"{c['duration_s_sum']:.3f} s answered; truth {tt['calls']}, {answered}, "
                              f"{tt['calls']}, {tt['streams']}, {seconds:.3f} s")
            off = m["off"]["best_cpu_ms"]
            rows.append({"mix": name, "calls": tt["calls"], "sip_messages": c["sip_messages"],
                         "rtp_packets": tt["rtp_packets"],
                         **{f"{mode}_ms": m[mode]["best_cpu_ms"] for mode in MODES},
                         **{f"{mode}_drop": 1 - off / m[mode]["best_cpu_ms"] for mode in MODES[1:]},
                         "correlate_us_per_call": (c["best_cpu_ms"] - off) * 1e3 / tt["calls"]})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(args.keep, "correlation_floor.json"), "w") as fh:
        json.dump({"command": "python -m benchmarks.correlation_floor " + " ".join(argv or sys.argv[1:]),
                   "rows": rows}, fh, indent=1)
    head = ["capture", "calls", "SIP msgs", "SIP off", "SIP spotted", "C correlator", "RTP rate drop: spotted / C",
            "C extra per call"]
    table = [[r["mix"], f"{r['calls']:,}", f"{r['sip_messages']:,}", f"{r['off_ms']:.1f} ms",
              f"{r['engine_ms']:.1f} ms", f"{r['correlate_ms']:.1f} ms",
              f"{100 * r['engine_drop']:.1f} % / {100 * r['correlate_drop']:.1f} %",
              f"{r['correlate_us_per_call']:.1f} us"] for r in rows]
    print_table(head, table, args.markdown)
    for f in failed:
        print("MISMATCH: " + f, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
