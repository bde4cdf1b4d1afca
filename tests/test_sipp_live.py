"""Real SIP traffic: SIPp (Debian's sip-tester) as UAC in one network namespace
and two UAS in another (one answers with RTP both ways, one says 486 Busy),
`warpsniff live` on the UAC's side of the veth. warpsniff's metrics and CDRs
must match what SIPp itself counted (its -trace_stat CSV). Scenarios:
tests/sipp/*.xml (ours). Root only (namespaces), as CI runs."""
from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from test_live import scrape, total

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "sipp"
PORT = 10780
UAC_IP, UAS_IP = "10.201.0.1", "10.201.0.2"  # inside this test's own namespaces only


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed: run scripts/setup.sh (apt package sip-tester)")
    return path


def sh(*argv, check=True, cwd=None):
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd)
    if check and proc.returncode:
        raise AssertionError(f"{argv[:6]}... exited {proc.returncode}: {proc.stderr[-2000:]}{proc.stdout[-2000:]}")
    return proc


def sipp_counts(stat_csv: Path) -> dict:
    """SIPp's own totals from the last line of its -trace_stat file."""
    rows = list(csv.reader(stat_csv.read_text().splitlines(), delimiter=";"))
    header, last = rows[0], rows[-1]
    return {"successful": int(last[header.index("SuccessfulCall(C)")]),
            "failed": int(last[header.index("FailedCall(C)")])}


@contextlib.contextmanager
def sipp_lab(tmp_path: Path, prefix: str, uas: tuple):
    """Namespaces <prefix>a* (the UAC and the capture) and <prefix>b* (SIPp UAS
    scenarios, each (file, SIP port, media port)) joined by a veth; ours only."""
    sipp = need("sipp")
    tag = uuid.uuid4().hex[:6]
    a, b, cap, peer = f"{prefix}a{tag}", f"{prefix}b{tag}", f"{prefix}c{tag}", f"{prefix}t{tag}"
    procs = []
    sh("ip", "netns", "add", a)
    sh("ip", "netns", "add", b)
    try:
        sh("ip", "link", "add", cap, "type", "veth", "peer", "name", peer)
        sh("ip", "link", "set", cap, "netns", a)
        sh("ip", "link", "set", peer, "netns", b)
        sh("ip", "-n", a, "addr", "add", f"{UAC_IP}/24", "dev", cap)
        sh("ip", "-n", b, "addr", "add", f"{UAS_IP}/24", "dev", peer)
        for ns, dev in ((a, "lo"), (a, cap), (b, "lo"), (b, peer)):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        media = tmp_path / "silence.raw"
        media.write_bytes(bytes([0xD5]) * 16000)  # 2 s of A-law silence for rtp_stream
        for scenario, port, media_port in uas:
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", b, sipp, "-sf", SCENARIOS / scenario, "-i", UAS_IP, "-p", str(port),
                 "-mi", UAS_IP, "-mp", str(media_port), "-nostdin"],
                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)  # the UAS sockets are open well before the first INVITE
        yield {"a": a, "b": b, "cap": cap, "sipp": sipp, "dir": tmp_path, "procs": procs}
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        sh("ip", "netns", "del", a, check=False)
        sh("ip", "netns", "del", b, check=False)


@pytest.fixture
def lab(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces (CI runs as root)")
    with sipp_lab(tmp_path, "sp", (("uas.xml", 5060, 7000), ("busy.xml", 5070, 7100))) as ns:
        yield ns


def start_live(lab, cdr: Path, err: Path, workers: int = 1) -> subprocess.Popen:
    """warpsniff live on the UAC's side of the veth, once its exporter is up."""
    live = subprocess.Popen(["ip", "netns", "exec", lab["a"], sys.executable, "-m", "warpsniff", "live",
                             "-i", lab["cap"], "--listen", f"127.0.0.1:{PORT}", "--cdr", cdr,
                             "--workers", str(workers)],
                            stdout=subprocess.DEVNULL, stderr=open(err, "w"))
    deadline = time.monotonic() + 20
    while "serving /metrics" not in err.read_text():
        assert live.poll() is None and time.monotonic() < deadline, err.read_text()
        time.sleep(0.05)
    time.sleep(0.3)
    return live


def run_uac(lab, target_port: int, local_port: int, calls: int, name: str) -> dict:
    stat = lab["dir"] / f"{name}.csv"
    sh("ip", "netns", "exec", lab["a"], lab["sipp"], "-sf", SCENARIOS / "uac.xml", f"{UAS_IP}:{target_port}",
       "-i", UAC_IP, "-p", local_port, "-mi", UAC_IP, "-mp", 6000 + local_port % 100 * 10,
       # one call at a time: SIPp gives every concurrent call the same media port
       "-m", calls, "-r", 5, "-l", 1, "-nostdin", "-trace_stat", "-stf", stat, "-timeout", "60s",
       cwd=lab["dir"])  # rtp_stream reads silence.raw from there
    return sipp_counts(stat)


@pytest.mark.parametrize("workers", [1, 2])
def test_sipp_calls_match_warpsniff(lab, workers):
    """With two workers the kernel splits SIP and each RTP flow between two
    rings: the counts and every call's media must not change."""
    cdr = lab["dir"] / "calls.jsonl"
    err = lab["dir"] / "live.err"
    live = start_live(lab, cdr, err, workers)
    try:
        answered = run_uac(lab, 5060, 5061, 5, "answered")
        busy = run_uac(lab, 5070, 5062, 3, "busy")
        assert answered == {"successful": 5, "failed": 0} and busy == {"successful": 3, "failed": 0}
        ns = {"a": lab["a"]}
        deadline = time.monotonic() + 15
        while True:
            samples = scrape(ns)
            if total(samples, "warp_call_terminations_total") >= 8 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert total(samples, "warp_call_attempts_total") == answered["successful"] + busy["successful"]
        assert total(samples, "warp_call_answered_total") == answered["successful"]
        assert total(samples, 'warp_call_terminations_total{account="unknown",reason="normal",sip_code="200"') == 5
        assert total(samples, 'warp_call_terminations_total{account="unknown",reason="busy",sip_code="486"') == 3
        # media both ways for every answered call, bound to it through SDP
        assert samples['warpsniff_packets_by_kind_total{kind="rtp"}'] > 0
        assert samples["warpsniff_capture_drops_total"] == 0
    finally:
        live.send_signal(signal.SIGTERM)
        assert live.wait(timeout=30) == 0, err.read_text()
    lines = [json.loads(line) for line in cdr.read_text().splitlines()]
    assert sorted(c["final_code"] for c in lines) == [200] * 5 + [486] * 3
    for call in lines:
        if call["final_code"] == 200:
            assert call["reason"] == "normal" and call["ended_by"] == "caller" and call["bye_code"] == 200
            directions = {(s["src"], s["dst"]) for s in call["streams"]}
            assert len(directions) == 2, call  # caller->callee and back, both bound to the call
            assert all(s["call_id"] == call["call_id"] for s in call["streams"])
        else:
            assert call["reason"] == "busy" and call["streams"] == []


def test_injected_loss_is_measured(lab):
    """5 % of the callee's RTP dropped by an NFQUEUE program in its namespace,
    which records every dropped sequence number: warpsniff's loss per stream is
    exactly the dropped packets that a later packet revealed."""
    pytest.importorskip("netfilterqueue", reason="pip package NetfilterQueue (the [test] extra installs it)")
    need("iptables")
    results = lab["dir"] / "dropped.json"
    sh("ip", "netns", "exec", lab["b"], "iptables", "-A", "OUTPUT", "-p", "udp", "--sport", "7000",
       "-j", "NFQUEUE", "--queue-num", "7")
    dropper = subprocess.Popen(["ip", "netns", "exec", lab["b"], sys.executable, str(HERE / "nfq_dropper.py"),
                                "7", "0.05", "20261127", str(results)], stdout=subprocess.PIPE, text=True)
    assert dropper.stdout.readline().strip() == "ready"
    cdr = lab["dir"] / "calls.jsonl"
    err = lab["dir"] / "live.err"
    live = start_live(lab, cdr, err)
    try:
        answered = run_uac(lab, 5060, 5061, 4, "answered")
        assert answered["successful"] == 4
        time.sleep(1.5)
    finally:
        live.send_signal(signal.SIGTERM)
        assert live.wait(timeout=30) == 0, err.read_text()
        dropper.send_signal(signal.SIGTERM)
        dropper.wait(timeout=30)
    truth = json.loads(results.read_text())
    streams = {}
    for line in cdr.read_text().splitlines():
        for s in json.loads(line)["streams"]:
            if s["src"].endswith(":7000"):
                streams[str(s["ssrc"])] = s
    assert set(streams) == set(truth)
    total_dropped = total_sent = 0
    for ssrc, seqs in truth.items():
        first, last = min(seqs["passed"]), max(seqs["passed"])
        # only a drop between two packets that arrived can be seen (no sequence wraps in 2 s)
        revealed = [q for q in seqs["dropped"] if first < q < last]
        assert streams[ssrc]["lost"] == len(revealed), (ssrc, streams[ssrc], len(revealed))
        assert streams[ssrc]["packets"] == len(seqs["passed"])
        total_dropped += len(seqs["dropped"])
        total_sent += len(seqs["dropped"]) + len(seqs["passed"])
    # and the injected rate itself, within binomial tolerance (4 sigma)
    rate = total_dropped / total_sent
    sigma = (0.05 * 0.95 / total_sent) ** 0.5
    assert abs(rate - 0.05) < 4 * sigma, (rate, total_sent)
