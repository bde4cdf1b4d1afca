"""What SIP correlation costs the RTP rate: replay() with and without it.

    python -m benchmarks.correlation_cost [--repeat 7] [--markdown]

Two captures of about 1,000,000 frames each (benchmarks.synth, G.711, 0.5 %
loss, 0..5 ms jitter), cached in bench-out/:
  - short calls: the engine benchmark's capture (benchmarks.run): 500 calls
    of about 20 s, all up at once, 2,000 RTP packets and 7 SIP messages each;
  - carrier mix: 56 calls of about 180 s (a carrier's average call length is
    2-4 minutes) starting over 180 s, about 17,800 RTP packets per call.
For each, `benchmarks.ws_peer` (replay(): engine, SIP dialogs, SDP binding,
timers, media joins, metrics) and `ws_peer --streams-only` (the same replay
with SIP not looked for) run in --repeat interleaved rounds on one pinned
core, on a freshly written copy of the capture; the least CPU time of each
counts. Reported: RTP packets per CPU second with and without correlation,
their ratio (the RTP rate drop), and the extra CPU per call and per SIP
message, which give the drop for any mix:
    drop = extra per call / (RTP packets per call x CPU per RTP packet).
Also the native run loop's own CPU in the same replay with SIP on and off
(`ws_peer --split`: the time inside Engine.run, which with SIP on includes
spotting and copying out SIP and checking bound streams, not the call state
machine or the per-call work): how much correlation slows the engine's RTP
path itself.
Both peers must report the generator's RTP packet total (exit 1 otherwise).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

from benchmarks.run import DEFAULT_DIR, PY, capture, compile_native, fresh_copy, print_table, run_child, summarize

MIXES = [
    # name, calls, stagger (s)
    ("short calls (engine benchmark)", 500, 2.0),
    ("carrier mix (3-minute calls)", 56, 180.0),
]


def measure(pcap: str, repeat: int, core) -> dict:
    runs = {"replay": [], "streams_only": [], "split_replay": [], "split_streams_only": []}
    for _ in range(repeat):
        runs["replay"].append(run_child([PY, "-m", "benchmarks.ws_peer", pcap], core))
        runs["streams_only"].append(run_child([PY, "-m", "benchmarks.ws_peer", "--streams-only", pcap], core))
        runs["split_replay"].append(run_child([PY, "-m", "benchmarks.ws_peer", "--split", pcap], core))
        runs["split_streams_only"].append(
            run_child([PY, "-m", "benchmarks.ws_peer", "--split", "--streams-only", pcap], core))
    out = {k: summarize(v) for k, v in runs.items()}
    for k in ("split_replay", "split_streams_only"):   # the native loop's own CPU, least of the runs
        out[k]["engine_cpu"] = min(r.out["engine_cpu_seconds"] for r in runs[k])
    return out


def measuring_core():
    """The last CPU, kept for the timed children (this process moves off it);
    None on a single CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    os.sched_setaffinity(0, set(cpus[:-1]))
    return cpus[-1]


def mix_copies(keep: str, packets: int):
    """(mix name, generator truth, freshly written copy) per mix of MIXES; the
    copy goes once the caller moves on."""
    for name, calls, stagger in MIXES:
        cached, truth = capture(keep, calls, packets, 0.005, 5.0, 1, stagger=stagger)
        pcap = fresh_copy(cached, keep)
        try:
            yield name, truth, pcap
        finally:
            os.unlink(pcap)


def mix_arguments(argv, prog: str, doc: str, repeat: int) -> argparse.Namespace:
    """The options of a benchmark over MIXES: rounds, capture size, where the
    captures are cached, Markdown output."""
    ap = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=repeat)
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--keep", default=DEFAULT_DIR)
    ap.add_argument("--markdown", action="store_true")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = mix_arguments(argv, "python -m benchmarks.correlation_cost", __doc__, 7)
    core = measuring_core()
    tmp = tempfile.mkdtemp(prefix="warpsniff-corr-")
    rows, failed = [], []
    try:
        compile_native(tmp)
        for name, truth, pcap in mix_copies(args.keep, args.packets):
            m = measure(pcap, args.repeat, core)
            tt = truth["totals"]
            rtp = tt["rtp_packets"]
            with_sip, without = m["replay"]["cpu"], m["streams_only"]["cpu"]
            sip_messages = m["replay"]["run"].out["sip_udp"]
            for peer in ("replay", "streams_only"):
                got = m[peer]["run"].out["stream_packets"]
                if got != rtp:
                    failed.append(f"{name} {peer}: {got} RTP packets, truth {rtp}")
            rows.append({
                "mix": name, "calls": tt["calls"], "frames": tt["frames"], "rtp_packets": rtp,
                "sip_messages": sip_messages,
                "cpu_streams_only": without, "cpu_replay": with_sip,
                "mpps_streams_only": rtp / without / 1e6, "mpps_replay": rtp / with_sip / 1e6,
                "rate_drop": 1.0 - without / with_sip,
                "extra_us_per_call": (with_sip - without) / tt["calls"] * 1e6,
                "extra_us_per_sip_message": (with_sip - without) / max(sip_messages, 1) * 1e6,
                "ns_per_rtp_packet": without / rtp * 1e9,
                "native_loop_streams_only": m["split_streams_only"]["engine_cpu"],
                "native_loop_with_sip": m["split_replay"]["engine_cpu"],
                "native_loop_rate_drop": 1.0 - m["split_streams_only"]["engine_cpu"] / m["split_replay"]["engine_cpu"],
                "all_cpu": {k: v["all_cpu"] for k, v in m.items()},
            })
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(args.keep, "correlation_cost.json"), "w") as fh:
        json.dump({"command": "python -m benchmarks.correlation_cost " + " ".join(argv or sys.argv[1:]),
                   "rows": rows}, fh, indent=1)
    head = ["capture", "calls", "RTP packets", "SIP msgs", "streams only", "with correlation",
            "RTP rate drop", "extra per call", "extra per SIP msg", "native loop: streams only / with SIP"]
    table = [[r["mix"], f"{r['calls']:,}", f"{r['rtp_packets']:,}", f"{r['sip_messages']:,}",
              f"{r['cpu_streams_only'] * 1e3:.1f} ms ({r['mpps_streams_only']:.1f} Mpps)",
              f"{r['cpu_replay'] * 1e3:.1f} ms ({r['mpps_replay']:.1f} Mpps)",
              f"{100 * r['rate_drop']:.0f} %", f"{r['extra_us_per_call']:.0f} us",
              f"{r['extra_us_per_sip_message']:.1f} us",
              f"{r['native_loop_streams_only'] * 1e3:.1f} / {r['native_loop_with_sip'] * 1e3:.1f} ms "
              f"({100 * r['native_loop_rate_drop']:.0f} %)"] for r in rows]
    print_table(head, table, args.markdown)
    for f in failed:
        print("MISMATCH: " + f, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
