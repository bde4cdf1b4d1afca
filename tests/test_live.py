"""`warpsniff live` on a real interface: two network namespaces joined by a
veth pair, the bundled sample sent into one end with tcpreplay, warpsniff
capturing on the other through its TPACKET_V3 ring. The expected values are
the sample's ground truth (pcaps/sample-calls.json, written by its generator).
Needs root (namespaces, CAP_NET_RAW), as CI runs; only our own namespaces
carry traffic."""
from __future__ import annotations

import contextlib
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

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "pcaps" / "sample-calls.pcap"
LABELS = ROOT / "pcaps" / "sample-calls.yml"
TRUTH = json.loads((ROOT / "pcaps" / "sample-calls.json").read_text())
PORT = 10780  # inside the test namespace: nothing else listens there


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed: run scripts/setup.sh (it installs it)")
    return path


def sh(*argv, check=True, **kw):
    return subprocess.run([str(a) for a in argv], check=check, capture_output=True, text=True, **kw)


@contextlib.contextmanager
def veth_pairs(count: int):
    """Namespaces A (capture side) and B (sender) joined by `count` veth pairs
    cap<k> <-> tx<k>; only our own namespaces carry traffic."""
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces (CI runs as root)")
    ip = need("ip")
    tag = uuid.uuid4().hex[:5]
    a, b = f"wsa{tag}", f"wsb{tag}"
    caps, txs = [f"cap{k}{tag}" for k in range(count)], [f"tx{k}{tag}" for k in range(count)]
    sh(ip, "netns", "add", a)
    sh(ip, "netns", "add", b)
    try:
        for cap, tx in zip(caps, txs):
            sh(ip, "link", "add", cap, "type", "veth", "peer", "name", tx)
            sh(ip, "link", "set", cap, "netns", a)
            sh(ip, "link", "set", tx, "netns", b)
            sh(ip, "-n", a, "link", "set", cap, "up")
            sh(ip, "-n", b, "link", "set", tx, "up")
        sh(ip, "-n", a, "link", "set", "lo", "up")
        yield {"a": a, "b": b, "cap": caps, "tx": txs}
    finally:
        sh(ip, "netns", "del", a, check=False)
        sh(ip, "netns", "del", b, check=False)


@pytest.fixture
def veth():
    """One veth pair: cap <-> tx."""
    with veth_pairs(1) as ns:
        yield {**ns, "cap": ns["cap"][0], "tx": ns["tx"][0]}


def start_live(ns: dict, tmp_path: Path, *extra) -> subprocess.Popen:
    argv = ["ip", "netns", "exec", ns["a"], sys.executable, "-m", "warpsniff", "live", "-i", ns["cap"],
            "--listen", f"127.0.0.1:{PORT}", *map(str, extra)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(tmp_path / "live.err", "w"), text=True)
    deadline = time.monotonic() + 20
    while "serving /metrics" not in (tmp_path / "live.err").read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"warpsniff live did not start: {(tmp_path / 'live.err').read_text()}")
        time.sleep(0.05)
    time.sleep(0.3)  # the ring is open once the exporter is up and the capture loop polls
    return proc


def scrape(ns: dict) -> dict:
    out = sh("ip", "netns", "exec", ns["a"], sys.executable, "-c",
             f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{PORT}/metrics').read().decode())")
    samples = {}
    for line in out.stdout.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def send_sample(ns: dict) -> None:
    tcpreplay = need("tcpreplay")
    sh("ip", "netns", "exec", ns["b"], tcpreplay, "-q", "-i", ns["tx"], "--topspeed", SAMPLE)


def send_invites(ns: dict, count: int) -> None:
    """Fresh INVITEs from a platform address (10.1.0.0/16) to the sample's carrier
    (10.2.0.0/16), as raw frames out of the sender's veth."""
    script = f"""
from scapy.all import Ether, IP, UDP, Raw, sendp
frames = []
for i in range({count}):
    msg = (f"INVITE sip:2999{{i}}@10.2.0.9 SIP/2.0\\r\\n"
           f"Via: SIP/2.0/UDP 10.1.0.9:5060;branch=z9hG4bKhup{{i}}\\r\\n"
           f"From: <sip:1999{{i}}@10.1.0.9>;tag=f{{i}}\\r\\nTo: <sip:2999{{i}}@10.2.0.9>\\r\\n"
           f"Call-ID: sighup-{{i}}@10.1.0.9\\r\\nCSeq: 1 INVITE\\r\\nContent-Length: 0\\r\\n\\r\\n")
    frames.append(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.1.0.9", dst="10.2.0.9")
                  / UDP(sport=5060, dport=5060) / Raw(msg.encode()))
sendp(frames, iface={ns["tx"]!r}, verbose=False)
"""
    sh("ip", "netns", "exec", ns["b"], sys.executable, "-c", script)


def total(samples: dict, prefix: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(prefix))


def wait_for(ns: dict, check, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(ns)
        if check(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


@pytest.mark.parametrize("extra", [(), ("--workers", "2"), ("-i", "nosuch-if1")])
def test_unknown_interface_is_a_usage_error(extra):
    proc = subprocess.run([sys.executable, "-m", "warpsniff", "live", "-i", "nosuch-if0", *extra,
                           "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "no network interface named 'nosuch-if0'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_without_cap_net_raw_says_which_capability(veth):
    setpriv = need("setpriv")
    proc = subprocess.run(["ip", "netns", "exec", veth["a"], setpriv, "--inh-caps=-net_raw",
                           "--bounding-set=-net_raw", sys.executable, "-m", "warpsniff", "live",
                           "-i", veth["cap"], "--listen", "127.0.0.1:0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "CAP_NET_RAW" in proc.stderr


def send_sample_and_count(ns: dict) -> dict:
    """Sends the sample; warpsniff must count exactly its calls, RTP and SIP, dropping nothing."""
    send_sample(ns)
    totals = TRUTH["totals"]
    samples = wait_for(ns, lambda s: total(s, 'warpsniff_packets_by_kind_total{kind="rtp"}')
                       >= totals["rtp_packets"] and total(s, "warp_call_attempts_total") >= totals["calls"])
    assert total(samples, "warp_call_attempts_total") == totals["calls"]
    assert samples['warpsniff_packets_by_kind_total{kind="rtp"}'] == totals["rtp_packets"]
    assert samples['warpsniff_packets_by_kind_total{kind="sip_udp"}'] == totals["sip_messages"]
    assert samples["warpsniff_capture_drops_total"] == 0
    return samples


def test_live_capture_counts_the_sample_and_writes_cdrs(veth, tmp_path):
    cdr = tmp_path / "calls.jsonl"
    proc = start_live(veth, tmp_path, "--config", LABELS, "--cdr", cdr)
    try:
        samples = send_sample_and_count(veth)
        # the sample's labels: every call goes out through demo_carrier for account acme
        attempts = [k for k in samples if k.startswith("warp_call_attempts_total{")]
        assert attempts and all('account="acme"' in k and 'trunk="demo_carrier"' in k for k in attempts)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    assert rc == 0, (tmp_path / "live.err").read_text()
    lines = [json.loads(line) for line in cdr.read_text().splitlines()]
    assert sorted(c["call_id"] for c in lines) == sorted(c["call_id"] for c in TRUTH["calls"])
    finals = {c["call_id"]: c["final"] for c in TRUTH["calls"]}
    assert {c["call_id"]: c["final_code"] for c in lines} == finals


def test_sighup_reloads_labels_for_new_calls(veth, tmp_path):
    config = tmp_path / "labels.yml"
    config.write_text(LABELS.read_text())
    proc = start_live(veth, tmp_path, "--config", config)
    try:
        send_sample(veth)
        wait_for(veth, lambda s: total(s, "warp_call_attempts_total") >= TRUTH["totals"]["calls"])
        config.write_text(LABELS.read_text().replace("name: acme", "name: acme2"))
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "reloaded" not in (tmp_path / "live.err").read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        send_invites(veth, 3)  # new calls: labelled by the new file
        samples = wait_for(veth, lambda s: total(s, 'warp_call_attempts_total{account="acme2"') >= 3)
        by_account = {acct: total(samples, f'warp_call_attempts_total{{account="{acct}"')
                      for acct in ("acme", "acme2")}
        assert by_account == {"acme": TRUTH["totals"]["calls"], "acme2": 3}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def send_junk(ns: dict, count: int) -> None:
    """Frames of an experimental ethertype (0x88B5): nothing warpsniff decodes."""
    script = f"""
from scapy.all import Ether, Raw, sendp
sendp([Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x88B5) / Raw(b"x" * 64)] * {count},
      iface={ns["tx"]!r}, verbose=False)
"""
    sh("ip", "netns", "exec", ns["b"], sys.executable, "-c", script)


@pytest.mark.parametrize("capture_filter,expected_extra", [("udp", 0), ("none", 50)])
def test_kernel_filter_drops_what_it_should(veth, tmp_path, capture_filter, expected_extra):
    proc = start_live(veth, tmp_path, "--filter", capture_filter)
    try:
        send_junk(veth, 50)
        send_sample(veth)
        frames = TRUTH["totals"]["frames"]
        samples = wait_for(veth, lambda s: s.get("warpsniff_packets_total", 0) >= frames + expected_extra)
        rtp = samples['warpsniff_packets_by_kind_total{kind="rtp"}']
        assert rtp == TRUTH["totals"]["rtp_packets"]
        if capture_filter == "udp":  # the kernel kept exactly the sample's UDP frames
            assert samples["warpsniff_packets_total"] == frames
        else:  # everything reached the engine, the junk counted as not IP
            assert samples["warpsniff_packets_total"] >= frames + 50
            assert samples['warpsniff_packets_by_kind_total{kind="ignored"}'] >= 50
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_bad_filter_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "warpsniff", "live", "-i", "lo", "--filter", "not a (filter",
                           "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--filter" in proc.stderr and "cannot compile" in proc.stderr


@pytest.mark.parametrize("option", [("--ring-timeout-ms", "0"), ("--ring-timeout-ms", "20000"),
                                    ("--workers", "0"), ("--ring-blocks", "1")])
def test_ring_settings_out_of_range_are_usage_errors(option):
    proc = subprocess.run([sys.executable, "-m", "warpsniff", "live", "-i", "lo", *option,
                           "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert option[0] in proc.stderr and "outside" in proc.stderr


def ring_lines(err: str) -> dict:
    """The exit summary: ring name -> packets the kernel put in that ring."""
    out = {}
    for line in err.splitlines():
        if line.startswith("warpsniff: ring "):
            name, _, rest = line[len("warpsniff: ring "):].partition(": ")
            out[name] = int(rest.split()[0])
    return out


def cdr_media(lines: list) -> dict:
    """call_id -> sorted (src, dst, ssrc, packets) of the streams the CDR bound to it."""
    return {c["call_id"]: sorted((s["src"], s["dst"], s["ssrc"], s["packets"]) for s in c["streams"])
            for c in lines}


def truth_media() -> dict:
    ids = {c["call"]: c["call_id"] for c in TRUTH["calls"]}
    out = {cid: [] for cid in ids.values()}
    for s in TRUTH["streams"]:
        out[ids[s["call"]]].append((s["src"], s["dst"], s["ssrc"], s["packets"]))
    return {cid: sorted(v) for cid, v in out.items()}


def test_two_workers_share_the_interface_and_still_join_sip_to_media(veth, tmp_path):
    """--workers 2: the kernel splits the flows between two rings, so a call's
    SIP and its RTP are often read by different workers; every call must still
    get exactly its streams, and nothing may be counted twice or lost."""
    cdr = tmp_path / "calls.jsonl"
    proc = start_live(veth, tmp_path, "--workers", 2, "--config", LABELS, "--cdr", cdr)
    try:
        samples = send_sample_and_count(veth)
        rings = {k: v for k, v in samples.items() if k.startswith("warpsniff_ring_packets_total{")}
        assert len(rings) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    err = (tmp_path / "live.err").read_text()
    assert rc == 0, err
    per_ring = ring_lines(err)
    assert sorted(per_ring) == [f"{veth['cap']}#0", f"{veth['cap']}#1"]
    assert all(n > 0 for n in per_ring.values()), per_ring  # the fanout did split the traffic
    lines = [json.loads(line) for line in cdr.read_text().splitlines()]
    assert {c["call_id"]: c["final_code"] for c in lines} == {c["call_id"]: c["final"] for c in TRUTH["calls"]}
    assert cdr_media(lines) == truth_media()


@pytest.fixture
def two_veths():
    """Namespace A captures on two veths (two span ports); B sends into each."""
    with veth_pairs(2) as ns:
        yield ns


def test_several_interfaces_at_once(two_veths, tmp_path):
    """-i twice: the sample on one span port, three more INVITEs on the other;
    one process reports both, each ring on its own."""
    ns = two_veths
    argv = ["ip", "netns", "exec", ns["a"], sys.executable, "-m", "warpsniff", "live",
            "-i", ns["cap"][0], "-i", ns["cap"][1], "--config", str(LABELS), "--listen", f"127.0.0.1:{PORT}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(tmp_path / "live.err", "w"), text=True)
    try:
        deadline = time.monotonic() + 20
        while "serving /metrics" not in (tmp_path / "live.err").read_text():
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "live.err").read_text()
            time.sleep(0.05)
        time.sleep(0.3)
        sh("ip", "netns", "exec", ns["b"], need("tcpreplay"), "-q", "-i", ns["tx"][0], "--topspeed", SAMPLE)
        send_invites({"b": ns["b"], "tx": ns["tx"][1]}, 3)
        calls = TRUTH["totals"]["calls"]
        samples = wait_for(ns, lambda s: total(s, "warp_call_attempts_total") >= calls + 3)
        assert total(samples, "warp_call_attempts_total") == calls + 3
        assert samples['warpsniff_packets_by_kind_total{kind="rtp"}'] == TRUTH["totals"]["rtp_packets"]
        assert samples['warpsniff_packets_by_kind_total{kind="sip_udp"}'] == TRUTH["totals"]["sip_messages"] + 3
        assert samples[f'warpsniff_ring_packets_total{{ring="{ns["cap"][1]}"}}'] >= 3
        assert samples[f'warpsniff_ring_packets_total{{ring="{ns["cap"][0]}"}}'] >= TRUTH["totals"]["frames"]
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    assert rc == 0, (tmp_path / "live.err").read_text()


def test_same_interface_twice_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "warpsniff", "live", "-i", "eth9", "-i", "eth9",
                           "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "-i eth9 given twice" in proc.stderr


def send_tagged_failed_call(ns: dict, vlan: int) -> str:
    """INVITE, 503, ACK of one call in 802.1Q VLAN `vlan`, as raw frames out of the sender's veth."""
    call_id = f"vlan-{vlan}@10.1.0.9"
    script = f"""
from scapy.all import Ether, Dot1Q, IP, UDP, Raw, sendp
head = ("Via: SIP/2.0/UDP 10.1.0.9:5060;branch=z9hG4bKvlan\\r\\nFrom: <sip:100@10.1.0.9>;tag=f1\\r\\n"
        "To: <sip:200@10.2.0.9>{{to_tag}}\\r\\nCall-ID: {call_id}\\r\\nCSeq: 1 {{method}}\\r\\n"
        "Content-Length: 0\\r\\n\\r\\n")
msgs = [("10.1.0.9", "10.2.0.9", "INVITE sip:200@10.2.0.9 SIP/2.0\\r\\n" + head.format(to_tag="", method="INVITE")),
        ("10.2.0.9", "10.1.0.9", "SIP/2.0 503 Service Unavailable\\r\\n" + head.format(to_tag=";tag=t1", method="INVITE")),
        ("10.1.0.9", "10.2.0.9", "ACK sip:200@10.2.0.9 SIP/2.0\\r\\n" + head.format(to_tag=";tag=t1", method="ACK"))]
sendp([Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan={vlan}) / IP(src=s, dst=d)
       / UDP(sport=5060, dport=5060) / Raw(m.encode()) for s, d, m in msgs], iface={ns["tx"]!r}, verbose=False)
"""
    sh("ip", "netns", "exec", ns["b"], sys.executable, "-c", script)
    return call_id


def test_vlan_tag_from_the_ring_metadata_is_kept(veth, tmp_path):
    """The kernel moves a frame's 802.1Q tag into the ring's metadata; warpsniff
    puts it back, so the pcap --write-pcap cuts for a failed call carries the
    VLAN the call was on (tshark reads it from the file)."""
    out = tmp_path / "bad"
    proc = start_live(veth, tmp_path, "--write-pcap", out, "--write-pcap-margin", "0.2")
    try:
        call_id = send_tagged_failed_call(veth, 321)
        samples = wait_for(veth, lambda s: s.get('warpsniff_write_pcap_calls_total{outcome="written"}', 0) >= 1)
        assert samples['warpsniff_write_pcap_calls_total{outcome="written"}'] == 1
        assert total(samples, 'warp_call_terminations_total') == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (tmp_path / "live.err").read_text()
    files = list(out.glob("*.pcap"))
    assert len(files) == 1
    rows = sh(need("tshark"), "-r", files[0], "-T", "fields", "-e", "vlan.id", "-e", "sip.Call-ID").stdout.split("\n")
    assert [r.split("\t") for r in rows if r] == [["321", call_id]] * 3


@pytest.mark.parametrize("workers", [1, 2])
def test_scrapes_do_not_wait_for_the_capture_loop(veth, tmp_path, workers):
    """No capture thread holds the pipeline's lock while its engine waits for
    packets, so a scrape of a quiet link answers in about one ring poll (20 ms),
    not after the capture loop's own poll timeouts (it took 200-400 ms when
    the loop held the lock through its 100 ms polls)."""
    proc = start_live(veth, tmp_path, "--workers", workers)
    script = f"""
import time, urllib.request
best = min(
    (lambda t: (urllib.request.urlopen('http://127.0.0.1:{PORT}/metrics').read(), time.monotonic() - t)[1])(
        time.monotonic()) for _ in range(5))
print(best)
"""
    try:
        best = float(sh("ip", "netns", "exec", veth["a"], sys.executable, "-c", script).stdout)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert best < 0.12, best
