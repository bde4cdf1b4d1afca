"""--push-gateway: the replay's metrics reach a real Pushgateway (Debian's
prometheus-pushgateway, on loopback), with the values the sample implies."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from promutil import free_port

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "pcaps" / "sample-calls.pcap"
TRUTH = json.loads((ROOT / "pcaps" / "sample-calls.json").read_text())


def test_replay_pushes_to_a_real_pushgateway(tmp_path):
    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if binary is None:
        pytest.fail("prometheus-pushgateway is not installed: run scripts/setup.sh (apt package prometheus-pushgateway)")
    port = free_port()
    gw = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}",
                           f"--persistence.file={tmp_path / 'pgw.db'}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("pushgateway did not come up")
                time.sleep(0.1)
        proc = subprocess.run([sys.executable, "-m", "warpsniff", "replay", str(SAMPLE), "-q",
                               "--push-gateway", url], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        body = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
        attempts = [line for line in body.splitlines()
                    if line.startswith("warp_call_attempts_total{") and 'job="warpsniff"' in line]
        assert attempts, body[:2000]
        assert sum(float(line.rsplit(" ", 1)[1]) for line in attempts) == TRUTH["totals"]["calls"]
        packets = [line for line in body.splitlines()
                   if line.startswith("warpsniff_packets_total{") and 'job="warpsniff"' in line]
        assert [float(line.rsplit(" ", 1)[1]) for line in packets] == [TRUTH["totals"]["frames"]]
    finally:
        gw.terminate()
        gw.wait(timeout=10)
