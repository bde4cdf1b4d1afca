"""SIP correlation rate: SIP messages per CPU second through warpsniff's whole
replay (native scan, dialogs, SDP binding, labels, aggregation), beside
`tshark -q -z sip,stat` on the same capture in the same run, and the memory
an active dialog costs.

    python -m benchmarks.sip_rate                 # 100,000 calls, ~700,000 SIP messages
    python -m benchmarks.sip_rate --calls 20000   # smaller
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
import tracemalloc
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


def time_warpsniff(path: Path) -> dict:
    code = (
        "import json, time, resource\n"
        "from warpsniff.replay import replay\n"
        "t = time.process_time(); w = time.perf_counter()\n"
        f"r = replay([{str(path)!r}])\n"
        "cpu = time.process_time() - t; wall = time.perf_counter() - w\n"
        "print(json.dumps(dict(cpu=cpu, wall=wall, messages=r.sip['messages'], calls=len(r.calls),\n"
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


def dialog_memory(path: Path) -> dict:
    """Python heap per tracked dialog: peak traced memory over peak dialogs."""
    from warpsniff.pipeline import Pipeline
    from warpsniff.replay import EngineOptions

    p = Pipeline(EngineOptions())
    peak_calls = 0
    track = p.tracker.message

    def counting(*args, **kw):
        nonlocal peak_calls
        track(*args, **kw)
        peak_calls = max(peak_calls, len(p.tracker.calls))

    p.tracker.message = counting
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    p.run_reader(str(path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return dict(peak_dialogs=peak_calls, bytes_per_dialog=(peak - base) / max(peak_calls, 1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=2)
    args = ap.parse_args()
    path = capture(args.calls, args.seed)
    ws = time_warpsniff(path)
    ts = time_tshark(path)
    mem = dialog_memory(path)
    rate = ws["messages"] / ws["cpu"]
    print(f"capture: {path.name}: {ws['calls']} calls, {ws['messages']} SIP messages")
    print(f"warpsniff replay : cpu {ws['cpu']:.2f} s  wall {ws['wall']:.2f} s  {rate:,.0f} msg/s (CPU)  "
          f"peak RSS {ws['rss_mb']:.0f} MB")
    if ts:
        print(f"tshark sip,stat  : cpu {ts['cpu']:.2f} s  wall {ts['wall']:.2f} s  "
              f"{ws['messages'] / ts['cpu']:,.0f} msg/s (CPU)  -> warpsniff/tshark {ts['cpu'] / ws['cpu']:.2f}x")
    print(f"dialogs: peak {mem['peak_dialogs']} tracked at once, "
          f"{mem['bytes_per_dialog']:,.0f} bytes of Python heap per dialog at the peak (upper bound)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
