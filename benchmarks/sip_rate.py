"""SIP correlation rate: SIP messages per CPU second through warpsniff's whole
replay (native scan, dialogs, SDP binding, labels, aggregation), beside
`tshark -q -z sip,stat` on the same capture in the same run, with peak RSS and
the memory an active dialog costs.

    python -m benchmarks.sip_rate                 # 100,000 calls, 700,000 SIP messages
    python -m benchmarks.sip_rate --calls 20000   # smaller
    python -m benchmarks.sip_rate --keep-calls    # replay() keeping every Call object

warpsniff is timed as `warpsniff replay` runs it: calls go out as they finish
(replay.CallOutput keeps a compact row per call for the call table; no CDR file
is written, as tshark writes nothing either). `--keep-calls` times the Python
API's default instead, which returns every Call in ReplayResult.calls.
"""
from __future__ import annotations

import argparse
import gc
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "bench-out"


def capture(calls: int, seed: int) -> Path:
    path = OUT / f"sip-c{calls}-s{seed}.pcap"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        subprocess.run([sys.executable, "-m", "benchmarks.synth", "--calls", str(calls), "--duration", "0.04",
                        "--stagger", str(max(60, calls // 100)), "--seed", str(seed), "-o", str(path), "-q"],
                       check=True)
    return path


def time_warpsniff(path: Path, keep_calls: bool) -> dict:
    """One replay in a fresh process: CPU and wall time, messages, peak RSS."""
    code = (
        "import json, time, resource\n"
        "from warpsniff.replay import CallOutput, replay\n"
        f"output = None if {keep_calls!r} else CallOutput(None, rows=True, call_ids=False)\n"
        "t = time.process_time(); w = time.perf_counter()\n"
        f"r = replay([{str(path)!r}], output=output)\n"
        "cpu = time.process_time() - t; wall = time.perf_counter() - w\n"
        "calls = len(r.calls) if output is None else len(output.rows)\n"
        "print(json.dumps(dict(cpu=cpu, wall=wall, messages=r.sip['messages'], calls=calls,\n"
        "    rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def time_tshark(path: Path) -> dict:
    tshark = shutil.which("tshark")
    if tshark is None:
        return {}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w = time.perf_counter()
    subprocess.run([tshark, "-n", "-q", "-r", str(path), "-z", "sip,stat"], capture_output=True, check=True)
    wall = time.perf_counter() - w
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return dict(cpu=cpu, wall=wall)


def deep_size(objects) -> int:
    """Bytes of Python objects reachable from `objects`, each counted once
    (so what several calls share, such as interned label values, counts once);
    types, modules and functions are not followed."""
    skip = (type, type(sys), type(deep_size), type(len))
    seen, todo, total = set(), list(objects), 0
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        todo.extend(gc.get_referents(obj))
    return total


def dialog_memory(path: Path) -> dict:
    """Memory per tracked dialog: the Python objects of every call the tracker
    holds (Call, its tags, transaction keys, media and labels), measured when
    the most dialogs are tracked at once, divided by their number (the
    engine's native media bindings come on top: two small entries per call)."""
    from warpsniff.pipeline import Pipeline
    from warpsniff.replay import CallOutput, EngineOptions, replay

    p = Pipeline(EngineOptions())
    peak = {"dialogs": 0, "bytes": 0}
    tick = p.tick

    def measuring_tick(now):
        tick(now)
        calls = p.tracker.calls
        if len(calls) > peak["dialogs"]:
            peak["dialogs"] = len(calls)
            peak["bytes"] = deep_size(list(calls.values()))

    p.tick = measuring_tick
    replay([str(path)], pipeline=p, output=CallOutput(None, rows=False, call_ids=False))
    return dict(peak_dialogs=peak["dialogs"], bytes_per_dialog=peak["bytes"] / max(peak["dialogs"], 1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="warpsniff replays; the best CPU time counts")
    ap.add_argument("--keep-calls", action="store_true", help="time replay() keeping every Call object")
    args = ap.parse_args()
    path = capture(args.calls, args.seed)
    runs = [time_warpsniff(path, args.keep_calls) for _ in range(args.repeat)]
    ws = min(runs, key=lambda r: r["cpu"])
    ts = time_tshark(path)
    mem = dialog_memory(path)
    rate = ws["messages"] / ws["cpu"]
    cpus = ", ".join(f"{r['cpu']:.2f}" for r in runs)
    print(f"capture: {path.name}: {ws['calls']} calls, {ws['messages']} SIP messages")
    print(f"warpsniff replay : cpu {ws['cpu']:.2f} s  wall {ws['wall']:.2f} s  {rate:,.0f} msg/s (CPU)  "
          f"peak RSS {max(r['rss_mb'] for r in runs):.0f} MB  "
          f"({'every Call kept' if args.keep_calls else 'calls out as they finish'}; "
          f"CPU of {len(runs)} runs: {cpus})")
    if ts:
        print(f"tshark sip,stat  : cpu {ts['cpu']:.2f} s  wall {ts['wall']:.2f} s  "
              f"{ws['messages'] / ts['cpu']:,.0f} msg/s (CPU)  -> warpsniff/tshark {ts['cpu'] / ws['cpu']:.2f}x")
    print(f"dialogs: peak {mem['peak_dialogs']} tracked at once, "
          f"{mem['bytes_per_dialog']:,.0f} bytes of Python objects per tracked dialog")
    return 0


if __name__ == "__main__":
    sys.exit(main())
