"""Live capture rate: tcpreplay sends a capture at top speed into one end of
a veth pair (its own network namespace), `warpsniff live` captures the other
end; reports packets sent, seen, dropped by the kernel, and the rates.
Needs root (namespaces) and tcpreplay.

    python -m benchmarks.live_rate [--capture bench-out/<capture>.pcap] [--loops N]
"""
from __future__ import annotations

import argparse
import re
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capture", type=Path, default=OUT / "synth-v1-c500-p1000000-l0.005-j5-s1.pcap")
    ap.add_argument("--loops", type=int, default=1)
    ap.add_argument("--ring-blocks", type=int, default=64)
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
                                 "--listen", f"127.0.0.1:{PORT}", "--ring-blocks", str(args.ring_blocks), *extra],
                                stdout=subprocess.DEVNULL, stderr=open(err, "w"))
        while "serving" not in err.read_text():
            time.sleep(0.05)
        time.sleep(0.5)
        before = scrape(a)
        sent = sh("ip", "netns", "exec", b, "tcpreplay", "-i", tx, "--topspeed", f"--loop={args.loops}",
                  args.capture).stdout
        m = re.search(r"Actual: (\d+) packets .* in ([\d.]+) seconds", sent)
        n_sent, seconds = int(m.group(1)), float(m.group(2))
        deadline = time.monotonic() + 60
        while True:  # let the capture drain its ring
            now = scrape(a)
            seen = now["warpsniff_packets_total"] - before.get("warpsniff_packets_total", 0)
            if seen >= n_sent or time.monotonic() > deadline:
                break
            time.sleep(0.5)
            if scrape(a)["warpsniff_packets_total"] == now["warpsniff_packets_total"]:
                break
        drops = now["warpsniff_capture_drops_total"]
        rtp = int(now['warpsniff_packets_by_kind_total{kind="rtp"}'])
        print(f"capture: {args.capture.name} x{args.loops}")
        print(f"tcpreplay sent {n_sent:,} packets in {seconds:.3f} s ({n_sent / seconds / 1e6:.2f} Mpps offered)")
        print(f"warpsniff live saw {int(seen):,} ({100 * seen / n_sent:.2f} %), kernel drops {int(drops):,}, "
              f"RTP packets {rtp:,}")
    finally:
        if live is not None:
            live.terminate()
            live.wait(timeout=30)
        sh("ip", "netns", "del", a, check=False)
        sh("ip", "netns", "del", b, check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
