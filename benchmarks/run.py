"""warpsniff benchmark: one run, every peer, the same capture.

    python -m benchmarks.run [--packets 1000000] [--calls 500] [--keep DIR]

1. Generates (or reuses, cached by parameters in DIR, default bench-out/) a
   deterministic capture with benchmarks.synth: 500 concurrent G.711 calls
   with SIP/SDP, 0.5 % loss, 0..5 ms jitter, about 1,000,000 packets.
2. Makes a freshly written (16 MiB writes), synced and warmed copy of it
   (see fresh_copy), compiles benchmarks/ref_loop.c with gcc -O2 into a
   temporary directory, and times on one core (every child pinned to the
   same CPU, this process on another):
     - C reference loop      the physical-limit yardstick (ref_loop.c)
     - warpsniff             replay(): engine + Python SIP layer (ws_peer.py)
     - warpsniff engine only the native Engine loop alone
     - warpsniff CLI         `python -m warpsniff replay -q`, whole process
     - Python struct loop    py_loop.py (and its dpkt variant with --dpkt)
     - tshark                `-o rtp.heuristic_rtp:TRUE -q -z rtp,streams`,
                             once, less its start-up on an empty capture
   The fast peers run in --repeat interleaved rounds (default 3) and the best
   counts. Each peer reports wall and CPU time of its measured span; speeds
   and ratios use CPU time, which other load on the machine does not
   inflate by time-slicing. Peak RSS of each child is wait4()'s ru_maxrss,
   taken by a tiny C launcher (a child forked straight from this Python
   process would inherit its RSS high-water mark across exec); peak private
   (anonymous) memory comes from sampling /proc/PID/status every millisecond.
3. Checks that warpsniff's stream count and packet total equal the C loop's
   and the generator's ground truth (exit 1 otherwise).
4. Memory bound: warpsniff on the same calls with 2x the packets and on 10x
   the streams, plus sizeof(ws_rtp_stream) from a C snippet compiled
   against ext/.

Results go to stdout (a table, or Markdown with --markdown) and to
DIR/results.json. --strict exits 3 when a speed target is missed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "benchmarks")
DEFAULT_DIR = os.path.join(REPO, "bench-out")
PY = sys.executable

TARGET_VS_C = 0.5
TARGET_VS_TSHARK = 40.0


# ---------------------------------------------------------------------------
# captures

def capture(directory: str, calls: int, packets: int, loss: float, jitter_ms: float, seed: int,
            fresh: bool = False, stagger: float = 2.0) -> tuple:
    """Path of the capture and its ground truth, generating it if needed
    (calls start within `stagger` seconds)."""
    from benchmarks import synth

    name = f"synth-v{synth.SYNTH_VERSION}-c{calls}-p{packets}-l{loss:g}-j{jitter_ms:g}-s{seed}"
    if stagger != 2.0:
        name += f"-t{stagger:g}"
    pcap = os.path.join(directory, name + ".pcap")
    truth = os.path.join(directory, name + ".json")
    if fresh or not (os.path.exists(pcap) and os.path.exists(truth)):
        specs = synth.bulk_specs(calls, packets, None, loss, stagger, seed)
        synth.generate(specs, pcap, seed, jitter_ms, 0, truth,
                       {"calls": calls, "packets": packets, "loss": loss, "stagger": stagger})
    with open(truth) as fh:
        return pcap, json.load(fh)


def warm(path: str) -> None:
    """Reads the file twice so every peer starts with it in the page cache."""
    for _ in range(2):
        with open(path, "rb", buffering=0) as fh:
            while fh.read(8 << 20):
                pass


def fresh_copy(path: str, directory: str, chunk: int = 16 << 20) -> str:
    """A just-written, synced copy of the capture, then warmed: every run
    starts from the same page-cache state. What mapping the file costs
    depends on that state, mostly on the size of the page-cache folios,
    which follows the size of the writes that created the file: for the same
    bytes the C loop took 19 ms after 16 MiB writes (the default: the best
    case), 36 ms after 64 KiB writes, 47 ms after 4 KiB writes, and up to
    57 ms for a file that had sat in the cache for an hour (BENCHMARKS.md)."""
    fd, copy = tempfile.mkstemp(prefix="run-", suffix=".pcap", dir=directory)
    with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
        shutil.copyfileobj(src, dst, chunk)
        dst.flush()
        os.fsync(dst.fileno())
    warm(copy)
    return copy


# ---------------------------------------------------------------------------
# children

@dataclass
class Run:
    argv: list
    wall: float
    user: float
    sys: float
    maxrss_kb: int
    peak_anon_kb: int
    rc: int
    stdout: str
    stderr: str
    out: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Wall time of the measured span (the peer's own clock when it has one)."""
        return float(self.out.get("seconds", self.wall))

    @property
    def cpu(self) -> float:
        """CPU time of the measured span: immune to time-slicing by other load."""
        return float(self.out.get("cpu_seconds", self.user + self.sys))


def _status_kb(pid: int) -> dict:
    vals = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("RssAnon:", "VmRSS:")):
                    k, v = line.split(":", 1)
                    vals[k] = int(v.split()[0])
    except OSError:
        pass
    return vals


LAUNCHER = None  # path of the compiled launcher, set by compile_native()

LAUNCHER_SRC = r"""
/* launch RUSAGE_FILE cmd [args...]: runs cmd and writes its rusage. Being
 * small, it gives the child a clean ru_maxrss baseline. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 3) return 125;
    pid_t pid = fork();
    if (pid < 0) return 126;
    if (pid == 0) { execvp(argv[2], argv + 2); _exit(127); }
    int st; struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0) return 126;
    FILE *f = fopen(argv[1], "w");
    if (f) {
        fprintf(f, "%ld %ld.%06ld %ld.%06ld\n", ru.ru_maxrss, (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec,
                (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec);
        fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
"""


def _child_pid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            kids = fh.read().split()
        return int(kids[0]) if kids else 0
    except (OSError, ValueError):
        return 0


def run_child(argv: list, core: Optional[int], env: Optional[dict] = None) -> Run:
    """Runs argv pinned to `core`; wall time, rusage and peak private memory."""
    out_f = tempfile.TemporaryFile(mode="w+")
    err_f = tempfile.TemporaryFile(mode="w+")
    ru_path = tempfile.mktemp(prefix="rusage-", dir=os.path.dirname(LAUNCHER))
    preexec = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    t0 = time.perf_counter()
    p = subprocess.Popen([LAUNCHER, ru_path] + argv, stdout=out_f, stderr=err_f, preexec_fn=preexec, env=env,
                         cwd=REPO)
    peak = {"anon": 0}
    stop = threading.Event()

    def sample():
        target = 0
        while not stop.is_set():
            target = target or _child_pid(p.pid)
            if target:
                v = _status_kb(target)
                if "RssAnon" in v:
                    peak["anon"] = max(peak["anon"], v["RssAnon"])
            stop.wait(0.001)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    p.wait()
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    try:
        with open(ru_path) as fh:
            maxrss, utime, stime = fh.read().split()
        os.unlink(ru_path)
    except (OSError, ValueError):
        maxrss, utime, stime = 0, 0, 0
    out_f.seek(0)
    err_f.seek(0)
    r = Run(argv, wall, float(utime), float(stime), int(maxrss), peak["anon"], p.returncode,
            out_f.read(), err_f.read())
    for line in r.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            try:
                r.out = json.loads(line)
            except ValueError:
                pass
            break
    if r.rc != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {r.rc}: {r.stderr.strip()[-500:]}")
    return r


def best_of(argv: list, n: int, core: Optional[int]) -> dict:
    """n runs; see summarize()."""
    return summarize([run_child(argv, core) for _ in range(n)])


def summarize(runs: list) -> dict:
    """Best wall and best CPU time over the runs (each its own minimum), the
    largest peak memory, and the output of the run with the least CPU."""
    best = min(runs, key=lambda r: r.cpu)
    return {"run": best, "seconds": min(r.seconds for r in runs), "cpu": best.cpu,
            "wall": min(r.wall for r in runs), "maxrss_kb": max(r.maxrss_kb for r in runs),
            "anon_kb": max(r.peak_anon_kb for r in runs), "runs": len(runs),
            "all_cpu": [round(r.cpu, 4) for r in runs], "all_seconds": [round(r.seconds, 4) for r in runs]}


# ---------------------------------------------------------------------------
# native helpers

SIZEOF_SNIPPET = r"""
#include <stdio.h>
#include "engine/ws_engine.h"
int main(void) {
    printf("{\"ws_rtp_stream\": %zu, \"ws_flow_key\": %zu, \"ws_stream_record\": %zu, "
           "\"ws_rtcp_source\": %zu, \"ws_engine\": %zu, \"ws_decoder\": %zu, \"index_slot\": %zu, "
           "\"sig_arena\": %u, \"sig_records\": %zu, \"tcp_track\": %zu}\n",
           sizeof(ws_rtp_stream), sizeof(ws_flow_key), sizeof(ws_stream_record),
           sizeof(ws_rtcp_source), sizeof(ws_engine), sizeof(ws_decoder), sizeof(uint64_t),
           WS_SIG_ARENA, WS_SIG_RECORDS * sizeof(ws_sig_record), WS_TCP_TRACK_SLOTS * sizeof(uint64_t));
    return 0;
}
"""


def pin_to_last_cpu() -> None:
    """Runs this process on the last CPU it may use (the in-process benchmarks)."""
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})


def compile_native(tmp: str) -> tuple:
    global LAUNCHER
    src = os.path.join(tmp, "launch.c")
    with open(src, "w") as fh:
        fh.write(LAUNCHER_SRC)
    LAUNCHER = os.path.join(tmp, "launch")
    subprocess.run(["gcc", "-O2", "-o", LAUNCHER, src], check=True)
    ref = os.path.join(tmp, "ref_loop")
    subprocess.run(["gcc", "-O2", "-o", ref, os.path.join(BENCH, "ref_loop.c")], check=True)
    src = os.path.join(tmp, "sizeof.c")
    with open(src, "w") as fh:
        fh.write(SIZEOF_SNIPPET)
    exe = os.path.join(tmp, "sizeof")
    subprocess.run(["gcc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-I", os.path.join(REPO, "ext"), "-o", exe, src],
                   check=True)
    sizes = json.loads(subprocess.run([exe], check=True, capture_output=True, text=True).stdout)
    return ref, sizes


def table_bytes_per_stream(sizes: dict, streams: int, max_streams: int = 200_000) -> dict:
    """What ws_rtp.c allocates for `streams` live streams: the slab doubles from
    256 (capped at max_streams), the index doubles from 1024 slots to stay at
    most a quarter full (stream_new), plus per slab slot a free-list entry, its
    call (slot_calls), when the idle scan may skip it (slot_seen_s) and its
    neighbours among the streams bound to its binding (slot_bind_next, _prev),
    4 bytes each."""
    cap = 256
    while cap < streams:
        cap = min(cap * 2, max_streams)
    idx = 1024
    while (streams + 1) * 4 > idx:
        idx *= 2
    total = cap * (sizes["ws_rtp_stream"] + 5 * 4) + idx * sizes["index_slot"]
    return {"slab_capacity": cap, "index_slots": idx, "bytes": total, "per_stream": total / max(1, streams)}


# ---------------------------------------------------------------------------
# tshark

TSHARK_ROW = re.compile(r"0x[0-9A-Fa-f]{8}\s+(.+?)\s+(\d+)\s+(-?\d+)\s+\(")


def tshark_argv(pcap: str) -> list:
    return ["tshark", "-n", "-r", pcap, "-o", "rtp.heuristic_rtp:TRUE", "-q", "-z", "rtp,streams"]


def parse_tshark(text: str) -> dict:
    streams = packets = lost = 0
    for line in text.splitlines():
        m = TSHARK_ROW.search(line)
        if m:
            streams += 1
            packets += int(m.group(2))
            lost += int(m.group(3))
    return {"streams": streams, "stream_packets": packets, "lost": lost}


def tshark_version() -> str:
    try:
        return subprocess.run(["tshark", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "unavailable"


# ---------------------------------------------------------------------------
# machine

def machine() -> dict:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as fh:
            mem = int(fh.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    import numpy

    return {"nproc": os.cpu_count(), "cpu": model, "mem_mib": mem, "kernel": platform.release(),
            "python": platform.python_version(), "numpy": numpy.__version__, "gcc": gcc,
            "tshark": tshark_version()}


# ---------------------------------------------------------------------------

def fmt_row(cols, widths):
    return "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cols, widths)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--loss", type=float, default=0.005)
    ap.add_argument("--jitter-ms", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds over the fast peers, interleaved; the best counts (default 3)")
    ap.add_argument("--keep", metavar="DIR", default=DEFAULT_DIR,
                    help="where captures are cached and results written (default bench-out/)")
    ap.add_argument("--fresh", action="store_true", help="regenerate captures even if cached")
    ap.add_argument("--core", type=int, help="CPU every peer is pinned to (default: the last one)")
    ap.add_argument("--copy-chunk", type=int, default=16 << 20, metavar="BYTES",
                    help="write size of the fresh copy that is timed (default 16 MiB; smaller writes, "
                         "smaller page-cache folios, dearer mapping)")
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--no-python", action="store_true", help="skip the pure-Python loop")
    ap.add_argument("--dpkt", action="store_true", help="also time the dpkt variant of the Python loop (once)")
    ap.add_argument("--no-memcheck", action="store_true", help="skip the 2x-packets / 10x-streams runs")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables (for BENCHMARKS.md)")
    ap.add_argument("--strict", action="store_true", help="exit 3 when a speed target is missed")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                    help="first wait up to SECONDS for the 1-minute load average to drop below 0.7")
    args = ap.parse_args(argv)
    deadline = time.monotonic() + args.wait_quiet
    while args.wait_quiet and os.getloadavg()[0] >= 0.7 and time.monotonic() < deadline:
        time.sleep(5)

    os.makedirs(args.keep, exist_ok=True)
    cpus = sorted(os.sched_getaffinity(0))
    core = args.core if args.core is not None else (cpus[-1] if len(cpus) > 1 else None)
    if core is not None and len(cpus) > 1:
        # keep this process and its memory sampler off the measured core
        os.sched_setaffinity(0, {c for c in cpus if c != core} or set(cpus))
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731

    info = machine()
    info["loadavg_before"] = os.getloadavg()
    log(f"machine: {info['nproc']} x {info['cpu']}, peers pinned to CPU {core}, "
        f"load average {info['loadavg_before'][0]:.2f}")
    cached, truth = capture(args.keep, args.calls, args.packets, args.loss, args.jitter_ms, args.seed, args.fresh)
    frames = truth["totals"]["frames"]
    log(f"capture: {cached} ({frames:,} frames, {truth['totals']['bytes'] / 1e6:.0f} MB, "
        f"{truth['totals']['streams']} streams)")

    tmp = tempfile.mkdtemp(prefix="warpsniff-bench-")
    copies: list = []
    results: dict = {}
    checks: list = []
    try:
        pcap = fresh_copy(cached, args.keep, args.copy_chunk)
        copies.append(pcap)
        ref_bin, sizes = compile_native(tmp)

        def record(name, summary, note="", seconds=None, cpu=None):
            run = summary["run"]
            secs = summary["seconds"] if seconds is None else seconds
            cpu = summary["cpu"] if cpu is None else cpu
            results[name] = {"seconds": secs, "cpu": cpu, "wall": summary["wall"], "mpps": frames / cpu / 1e6,
                             "mpps_wall": frames / secs / 1e6, "maxrss_mb": summary["maxrss_kb"] / 1024,
                             "peak_private_mb": summary["anon_kb"] / 1024, "runs": summary["runs"],
                             "all_cpu": summary["all_cpu"], "all_seconds": summary["all_seconds"],
                             "out": run.out, "note": note}
            log(f"  {name:<20} wall {secs:7.3f} s  cpu {cpu:7.3f} s  {frames / cpu / 1e6:7.2f} Mpps  "
                f"RSS {summary['maxrss_kb'] / 1024:6.1f} MB  private {summary['anon_kb'] / 1024:6.1f} MB")

        fast = [
            ("C reference loop", [ref_bin, pcap], "gcc -O2; the loop's own clocks"),
            ("warpsniff", [PY, "-m", "benchmarks.ws_peer", pcap], "replay() own clocks; imports excluded"),
            ("warpsniff streams only", [PY, "-m", "benchmarks.ws_peer", "--streams-only", pcap],
             "replay() with --streams-only: RTP/RTCP streams, no SIP (as tshark -z rtp,streams)"),
            ("warpsniff engine only", [PY, "-m", "benchmarks.ws_peer", "--engine-only", pcap],
             "native Engine loop, SIP batches discarded"),
            ("warpsniff CLI", [PY, "-m", "warpsniff", "replay", "-q", pcap], "whole process incl. start-up"),
        ]
        if not args.no_python:
            fast.append(("Python struct loop", [PY, "-m", "benchmarks.py_loop", pcap], "own clocks"))
        log(f"timing: {args.repeat} interleaved rounds")
        runs = {name: [] for name, _, _ in fast}
        for _ in range(args.repeat):
            for name, cmd, _ in fast:
                runs[name].append(run_child(cmd, core))
        for name, _, note in fast:
            summary = summarize(runs[name])
            if name == "warpsniff CLI":  # no inner clock: the whole process is the measurement
                record(name, summary, note, seconds=summary["wall"])
            else:
                record(name, summary, note)
        results["warpsniff"]["import_seconds"] = results["warpsniff"]["out"].get("import_seconds")
        if args.dpkt:
            record("Python dpkt loop", best_of([PY, "-m", "benchmarks.py_loop", "--parser", "dpkt", pcap], 1, core),
                   "own clocks, one run")
        if not args.no_tshark and shutil.which("tshark"):
            empty = os.path.join(tmp, "empty.pcap")
            with open(pcap, "rb") as src, open(empty, "wb") as dst:
                dst.write(src.read(24))
            startup = best_of(tshark_argv(empty), 3, core)
            full = best_of(tshark_argv(pcap), 1, core)
            full["run"].out = parse_tshark(full["run"].stdout)
            record("tshark", full, f"one run; whole process less start-up ({startup['wall']:.2f} s wall, "
                   f"{startup['cpu']:.2f} s CPU on an empty capture)",
                   seconds=full["wall"] - startup["wall"], cpu=full["cpu"] - startup["cpu"])
            results["tshark"]["startup_wall"] = startup["wall"]
            results["tshark"]["startup_cpu"] = startup["cpu"]

        # correctness: warpsniff against the C loop and the ground truth
        ws, ref = results["warpsniff"]["out"], results["C reference loop"]["out"]
        eng = results["warpsniff engine only"]["out"]
        tt = truth["totals"]
        for what, a, b in [
            ("streams: warpsniff == C loop", ws["streams"], ref["streams"]),
            ("stream packets: warpsniff == C loop", ws["stream_packets"], ref["stream_packets"]),
            ("streams: warpsniff engine only == C loop", eng["streams"], ref["streams"]),
            ("stream packets: warpsniff streams only == ground truth",
             results["warpsniff streams only"]["out"]["stream_packets"], tt["rtp_packets"]),
            ("lost: warpsniff streams only == ground truth",
             results["warpsniff streams only"]["out"]["lost"], tt["rtp_lost"]),
            ("stream packets: warpsniff engine only == C loop", eng["stream_packets"], ref["stream_packets"]),
            ("streams: warpsniff == ground truth", ws["streams"], tt["streams"]),
            ("stream packets: warpsniff == ground truth", ws["stream_packets"], tt["rtp_packets"]),
            ("lost: warpsniff == ground truth", ws["lost"], tt["rtp_lost"]),
            ("frames: warpsniff == ground truth", ws["frames"], frames),
        ]:
            checks.append({"check": what, "ok": a == b, "values": [a, b]})
        if "tshark" in results:
            ts = results["tshark"]["out"]
            for what, a, b in [("streams: tshark == ground truth", ts["streams"], tt["streams"]),
                               ("stream packets: tshark == ground truth", ts["stream_packets"], tt["rtp_packets"])]:
                checks.append({"check": what + " (informational)", "ok": a == b, "values": [a, b],
                               "informational": True})

        # memory bound
        memory = {"sizes": sizes, "table": table_bytes_per_stream(sizes, tt["streams"])}
        if not args.no_memcheck:
            log("memory bound:")
            rows = [("1x packets", pcap, truth)]
            rows.append(("2x packets, same streams",) +
                        capture(args.keep, args.calls, 2 * args.packets, args.loss, args.jitter_ms, args.seed, args.fresh))
            rows.append(("1x packets, 10x streams",) +
                        capture(args.keep, 10 * args.calls, args.packets, args.loss, args.jitter_ms, args.seed, args.fresh))
            memory["runs"] = []
            for label, path, tr in rows:
                if path != pcap:
                    path = fresh_copy(path, args.keep, args.copy_chunk)
                    copies.append(path)
                sm = best_of([PY, "-m", "benchmarks.ws_peer", path], args.repeat, core)
                out = sm["run"].out
                memory["runs"].append({
                    "label": label, "frames": tr["totals"]["frames"], "streams": tr["totals"]["streams"],
                    "calls": tr["totals"]["calls"], "bytes": tr["totals"]["bytes"], "seconds": sm["seconds"],
                    "cpu": sm["cpu"], "maxrss_mb": sm["maxrss_kb"] / 1024, "peak_private_mb": sm["anon_kb"] / 1024,
                    "ws_streams": out["streams"], "table": table_bytes_per_stream(sizes, tr["totals"]["streams"])})
                log(f"  {label:<26} {tr['totals']['frames']:>10,} frames {tr['totals']['streams']:>6} streams  "
                    f"RSS {sm['maxrss_kb'] / 1024:6.1f} MB  private {sm['anon_kb'] / 1024:6.1f} MB  cpu {sm['cpu']:.3f} s")
                checks.append({"check": f"streams: warpsniff == ground truth ({label})",
                               "ok": out["streams"] == tr["totals"]["streams"],
                               "values": [out["streams"], tr["totals"]["streams"]]})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for c in copies:
            try:
                os.unlink(c)
            except OSError:
                pass

    info["loadavg_after"] = os.getloadavg()
    ws_cpu = results["warpsniff"]["cpu"]
    ratios = {"vs_c": results["C reference loop"]["cpu"] / ws_cpu,
              "vs_c_wall": results["C reference loop"]["seconds"] / results["warpsniff"]["seconds"],
              "engine_vs_c": results["C reference loop"]["cpu"] / results["warpsniff engine only"]["cpu"],
              "streams_only_vs_c": results["C reference loop"]["cpu"] / results["warpsniff streams only"]["cpu"]}
    if "tshark" in results:
        ratios["vs_tshark"] = results["tshark"]["cpu"] / ws_cpu
        ratios["streams_only_vs_tshark"] = results["tshark"]["cpu"] / results["warpsniff streams only"]["cpu"]
        ratios["vs_tshark_whole"] = (results["tshark"]["cpu"] + results["tshark"]["startup_cpu"]) / \
            results["warpsniff CLI"]["cpu"]
    if "Python struct loop" in results:
        ratios["vs_python"] = results["Python struct loop"]["cpu"] / ws_cpu
    if "Python dpkt loop" in results:
        ratios["vs_dpkt"] = results["Python dpkt loop"]["cpu"] / ws_cpu

    doc = {"machine": info, "core": core, "copy_chunk": args.copy_chunk,
           "command": "python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None else argv),
           "capture": {"path": cached, **truth["totals"], "params": truth["params"]}, "results": results,
           "ratios": ratios, "checks": checks, "memory": memory}
    with open(os.path.join(args.keep, "results.json"), "w") as fh:
        json.dump(doc, fh, indent=1)

    print_report(doc, args.markdown)
    failed = [c for c in checks if not c["ok"] and not c.get("informational")]
    for c in failed:
        print(f"MISMATCH: {c['check']}: {c['values'][0]} != {c['values'][1]}", file=sys.stderr)
    if failed:
        return 1
    if args.strict and (ratios["vs_c"] < TARGET_VS_C or ratios.get("vs_tshark", TARGET_VS_TSHARK) < TARGET_VS_TSHARK):
        return 3
    return 0


def print_table(head: list, rows: list, markdown: bool) -> None:
    """A table on stdout: aligned columns, or Markdown (for BENCHMARKS.md)."""
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|---|" + "---:|" * (len(head) - 1))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        print(fmt_row(head, widths))
        for r in rows:
            print(fmt_row(r, widths))


def print_report(doc: dict, markdown: bool) -> None:
    res, ratios, m = doc["results"], doc["ratios"], doc["machine"]
    ws = res["warpsniff"]["cpu"]
    cap = doc["capture"]
    print(f"machine: {m['nproc']} CPUs, {m['cpu']}, {m['mem_mib']} MiB; peers pinned to CPU {doc['core']}; "
          f"load average {m['loadavg_before'][0]:.2f} before, {m['loadavg_after'][0]:.2f} after")
    print(f"capture: {cap['frames']:,} frames ({cap['rtp_packets']:,} RTP in {cap['streams']} streams, "
          f"{cap['sip_messages']} SIP), {cap['bytes'] / 1e6:.1f} MB")
    print()
    head = ["tool", "wall s", "CPU s", "Mpps (CPU)", "peak RSS MB", "peak private MB", "CPU / warpsniff"]
    rows = [[name, f"{r['seconds']:.3f}", f"{r['cpu']:.3f}", f"{r['mpps']:.2f}", f"{r['maxrss_mb']:.1f}",
             f"{r['peak_private_mb']:.1f}", f"{r['cpu'] / ws:.2f}x"] for name, r in res.items()]
    print_table(head, rows, markdown)
    print()
    print(f"warpsniff vs C loop : {ratios['vs_c']:.2f}x the C loop's speed on CPU time, "
          f"{ratios['vs_c_wall']:.2f}x on wall time (target >= {TARGET_VS_C}); "
          f"replay --streams-only: {ratios['streams_only_vs_c']:.2f}x; "
          f"the native engine alone: {ratios['engine_vs_c']:.2f}x")
    if "vs_tshark" in ratios:
        print(f"warpsniff vs tshark : {ratios['vs_tshark']:.0f}x faster (target >= {TARGET_VS_TSHARK:.0f}); "
              f"replay --streams-only: {ratios['streams_only_vs_tshark']:.0f}x; "
              f"whole processes (CLI vs tshark, start-up included): {ratios['vs_tshark_whole']:.0f}x")
    if "vs_python" in ratios:
        print(f"warpsniff vs Python : {ratios['vs_python']:.0f}x faster than the struct loop")
    if "vs_dpkt" in ratios:
        print(f"warpsniff vs dpkt   : {ratios['vs_dpkt']:.0f}x faster")
    mem = doc["memory"]
    s = mem["sizes"]
    print()
    print(f"native state per stream: sizeof(ws_rtp_stream) = {s['ws_rtp_stream']} bytes (limit 256); the stream "
          f"table allocates {mem['table']['per_stream']:.0f} bytes/stream at {cap['streams']} streams "
          f"(slab of {mem['table']['slab_capacity']}, 20 bytes a slot of free list, calls, idle seconds "
          f"and bound-stream links, "
          f"{mem['table']['index_slots']} x 8-byte index)")
    if "runs" in mem:
        head = ["warpsniff on", "frames", "streams", "CPU s", "peak RSS MB", "peak private MB", "stream table KiB"]
        rows = [[r["label"], f"{r['frames']:,}", str(r["streams"]), f"{r['cpu']:.3f}", f"{r['maxrss_mb']:.1f}",
                 f"{r['peak_private_mb']:.1f}", f"{r['table']['bytes'] / 1024:.0f}"] for r in mem["runs"]]
        print_table(head, rows, markdown)
    print()
    for c in doc["checks"]:
        mark = "ok  " if c["ok"] else ("info" if c.get("informational") else "FAIL")
        print(f"[{mark}] {c['check']}: {c['values'][0]} vs {c['values'][1]}")


def _main() -> int:
    try:
        return main()
    except RuntimeError as exc:  # a peer failed: say which, with its stderr tail
        print(f"benchmarks.run: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_main())
