"""Live capture rate: tcpreplay sends a capture at top speed into one end of
a veth pair (its own network namespace), `warpsniff live` captures the other
end; reports packets sent, seen, dropped by the kernel, and the rates.
Needs root (namespaces) and tcpreplay.

    python -m benchmarks.live_rate [--capture bench-out/<capture>.pcap] [--loops N] [--workers N]
                                   [--sender tcpreplay|blast]

`--sender blast` sends with benchmarks/blast.c (sendmmsg batches, compiled
at run time) instead of tcpreplay, which tops out near 0.45 Mpps here.
Frames a sender pushes faster than the receiving veth's backlog takes are
dropped before any capture socket sees them (`rx_dropped` of the capture
veth, and the kernel's softnet drop counter): both are reported, so a gap
between sent and seen is never blamed on the wrong party.

Besides what was seen, it reports the CPU time warpsniff spent (all its
threads, /proc/<pid>/stat) from just before the send until the ring drained:
packets per CPU second is the capture capacity per core even when the sender,
not warpsniff, limits the offered rate.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "bench-out"
PORT = 10780


def sh(*argv, check=True):
    return subprocess.run([str(a) for a in argv], check=check, capture_output=True, text=True)


def scrape(ns: str) -> dict:
    out = sh("ip", "netns", "exec", ns, sys.executable, "-c",
             f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{PORT}/metrics').read().decode())")
    samples = {}
    for line in out.stdout.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


WATCH = """
import time, urllib.request
print("ready", flush=True)
while True:
    text = urllib.request.urlopen("http://127.0.0.1:{port}/metrics").read().decode()
    line = next(l for l in text.splitlines() if l.startswith("warpsniff_packets_total "))
    if float(line.split()[1]) >= {target}:
        print(time.monotonic(), flush=True)
        break
    time.sleep(0.02)
"""


def softnet_drops() -> int:
    """Frames the kernel dropped because a CPU's input backlog was full (all CPUs)."""
    return sum(int(line.split()[1], 16) for line in Path("/proc/net/softnet_stat").read_text().splitlines())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capture", type=Path, default=OUT / "synth-v1-c500-p1000000-l0.005-j5-s1.pcap")
    ap.add_argument("--loops", type=int, default=1)
    ap.add_argument("--ring-blocks", type=int, default=64)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--sender", choices=("tcpreplay", "blast"), default="tcpreplay")
    ap.add_argument("--prefill", action="store_true",
                    help="stop warpsniff (SIGSTOP) while the sender fills its ring, then let it drain the ring"
                         " alone: the capture core's own rate, with no sender on the machine (needs --ring-blocks"
                         " large enough for the whole capture)")
    ap.add_argument("--prefix", default="lr", help="namespace and interface name prefix (default lr)")
    ap.add_argument("--write-pcap", metavar="DIR", help="run warpsniff with --write-pcap DIR (the spool on)")
    args = ap.parse_args()
    tag = uuid.uuid4().hex[:6]
    p = args.prefix
    a, b, cap, tx = f"{p}a{tag}", f"{p}b{tag}", f"{p}c{tag}", f"{p}t{tag}"
    extra = ["--write-pcap", str(args.write_pcap)] if args.write_pcap else []
    sh("ip", "netns", "add", a)
    sh("ip", "netns", "add", b)
    live = None
    try:
        sh("ip", "link", "add", cap, "type", "veth", "peer", "name", tx)
        sh("ip", "link", "set", cap, "netns", a)
        sh("ip", "link", "set", tx, "netns", b)
        for ns, dev in ((a, "lo"), (a, cap), (b, tx)):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        err = OUT / "live_rate.err"
        live = subprocess.Popen(["ip", "netns", "exec", a, sys.executable, "-m", "warpsniff", "live", "-i", cap,
                                 "--listen", f"127.0.0.1:{PORT}", "--ring-blocks", str(args.ring_blocks),
                                 "--workers", str(args.workers), *extra],
                                stdout=subprocess.DEVNULL, stderr=open(err, "w"))
        while "serving" not in err.read_text():
            time.sleep(0.05)
        time.sleep(0.5)
        before = scrape(a)
        softnet0 = softnet_drops()
        if args.prefill:
            os.kill(live.pid, signal.SIGSTOP)
        cpu0 = cpu_seconds(live.pid)
        if args.sender == "blast":
            blast = OUT / "blast"
            sh("gcc", "-O2", "-o", blast, Path(__file__).with_name("blast.c"))
            sent = sh("ip", "netns", "exec", b, blast, tx, args.capture, args.loops).stdout
            m = re.search(r"sent (\d+) packets in ([\d.]+) seconds", sent)
        else:
            sent = sh("ip", "netns", "exec", b, "tcpreplay", "-i", tx, "--topspeed", f"--loop={args.loops}",
                      args.capture).stdout
            m = re.search(r"Actual: (\d+) packets .* in ([\d.]+) seconds", sent)
        n_sent, seconds = int(m.group(1)), float(m.group(2))
        watcher = None
        if args.prefill:  # one process in the namespace notes when the last frame was counted
            target = before.get("warpsniff_packets_total", 0) + n_sent
            watcher = subprocess.Popen(["ip", "netns", "exec", a, sys.executable, "-c", WATCH.format(
                port=PORT, target=target)], stdout=subprocess.PIPE, text=True)
            assert watcher.stdout.readline().strip() == "ready"
        drain_start = time.monotonic()
        if args.prefill:
            os.kill(live.pid, signal.SIGCONT)
        deadline = time.monotonic() + 60
        while True:  # let the capture drain its ring
            now = scrape(a)
            seen = now["warpsniff_packets_total"] - before.get("warpsniff_packets_total", 0)
            if seen >= n_sent or time.monotonic() > deadline:
                break
            time.sleep(0.05 if args.prefill else 0.5)
            if scrape(a)["warpsniff_packets_total"] == now["warpsniff_packets_total"]:
                break
        drain_wall = time.monotonic() - drain_start
        if watcher is not None:  # CLOCK_MONOTONIC is the same in every namespace
            done_at = watcher.communicate(timeout=60)[0].strip()
            drain_wall = float(done_at) - drain_start if done_at else drain_wall
        cpu = cpu_seconds(live.pid) - cpu0
        veth_dropped = int(sh("ip", "netns", "exec", a, "cat", f"/sys/class/net/{cap}/statistics/rx_dropped").stdout)
        softnet = softnet_drops() - softnet0
        drops = now["warpsniff_capture_drops_total"]
        rings = {k.split('"')[1]: int(v) for k, v in now.items() if k.startswith("warpsniff_ring_packets_total{")}
        rtp = int(now['warpsniff_packets_by_kind_total{kind="rtp"}'])
        print(f"capture: {args.capture.name} x{args.loops}, sender {args.sender}")
        print(f"{args.sender} sent {n_sent:,} packets in {seconds:.3f} s ({n_sent / seconds / 1e6:.2f} Mpps offered)")
        print(f"warpsniff live saw {int(seen):,} ({100 * seen / n_sent:.2f} %), kernel drops {int(drops):,}, "
              f"RTP packets {rtp:,}")
        print(f"dropped before capture: capture veth rx_dropped {veth_dropped:,}, softnet backlog {softnet:,}")
        print(f"rings (workers {args.workers}): " + ", ".join(f"{r} {n:,}" for r, n in rings.items()))
        print(f"warpsniff CPU {cpu:.2f} s (all threads, send + drain): {seen / cpu / 1e6:.2f} M packets per CPU s")
        if args.prefill:
            print(f"prefilled ring drained in {drain_wall:.3f} s wall (to within the 20 ms scrape interval):"
                  f" {seen / drain_wall / 1e6:.2f} Mpps from the ring by {args.workers} capture thread(s), no sender running")
    finally:
        if live is not None:
            live.terminate()
            live.wait(timeout=30)
        sh("ip", "netns", "del", a, check=False)
        sh("ip", "netns", "del", b, check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
