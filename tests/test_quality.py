"""Media quality (docs/quality.md): E-model scores, playout buffers, RTCP and
RTCP-XR figures, RFC 6035 reports, DTMF and comfort noise.

Every expected value comes from outside warpsniff:

- `G107` below is an E-model written here from ITU-T G.107's formulas as
  ../shared/reference/voip-kpis.md states them (R = 93.2 - Id - Ie_eff, the
  Ie_eff loss term with BurstR, the MOS polynomial, the simplified Id), with
  the G.113 codec values that page lists. It never calls warpsniff.quality.
- `playout()` is an independent loop over the arrival times and RTP
  timestamps a test wrote, following the buffer rules of docs/quality.md.
- Loss patterns, loss runs and p/q are counted from the packets the test
  dropped or delayed; RTCP and XR fields are the ones the test packed; the
  RFC 6035 report is the body of RFC 6035 section 4.7.3 (message F13).
- On the third-party captures, loss is rtpproxy's own analyser output
  (rtpproxy_expected/*.output) and loss runs are counted here from the
  capture's bytes, read by a small pcap reader in this file.

Where warpsniff disagrees with docs/quality.md the test is marked
xfail(strict=True) with the case, the expected and the observed value.
"""
from __future__ import annotations

import json
import math
import random
import struct
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

import capgen as cg
from capgen import MS, NS, T0_NS, ReportBlock
from oracle import SHARED_PCAPS, require_shared_pcaps
from sipgen import ALICE, BOB, Capture, Dialog, Msg, response, sdp
from warpsniff import cli
from warpsniff.quality import emodel as ws_emodel
from warpsniff.replay import replay

REPO = Path(__file__).resolve().parent.parent
RTPPROXY_EXPECTED = SHARED_PCAPS / "rtpproxy_expected"

# ==========================================================================
# An independent E-model (ITU-T G.107 as voip-kpis.md states it)

# (Ie, Bpl) from G.113 Appendix I, as listed in voip-kpis.md
G711_PLC = (0.0, 25.1)
G711_NO_PLC = (0.0, 4.3)
G729A = (11.0, 19.0)


class G107:
    """R = 93.2 - Id - Ie_eff; MOS from R; Id from a one-way delay."""

    R0 = 93.2  # all other G.107 parameters at their defaults

    @staticmethod
    def ie_eff(ie: float, bpl: float, ppl_percent: float, burst_r: float) -> float:
        return ie + (95.0 - ie) * ppl_percent / (ppl_percent / burst_r + bpl)

    @staticmethod
    def id_delay(one_way_ms: float) -> float:
        excess = one_way_ms - 177.3
        return 0.024 * one_way_ms + (0.11 * excess if excess > 0 else 0.0)

    @staticmethod
    def mos(r: float) -> float:
        if r < 0:
            return 1.0
        if r > 100:
            return 4.5
        return 1.0 + 0.035 * r + 7.0e-6 * r * (r - 60.0) * (100.0 - r)

    @classmethod
    def r(cls, ie: float, bpl: float, ppl_percent: float = 0.0, burst_r: float = 1.0,
          one_way_ms: float | None = None) -> float:
        r = cls.R0 - cls.ie_eff(ie, bpl, ppl_percent, burst_r)
        if one_way_ms is not None:
            r -= cls.id_delay(one_way_ms)
        return r


def count_runs(lost_flags) -> int:
    """Runs of consecutive lost positions."""
    runs, prev = 0, False
    for lost in lost_flags:
        if lost and not prev:
            runs += 1
        prev = lost
    return runs


@dataclass(frozen=True)
class Expect:
    """What the independent model predicts for one loss pattern."""
    expected: int
    lost: int
    runs: int
    burst_r: float
    r: float
    mos: float


def burst_r_of(expected: int, lost: int, runs: int) -> float:
    """BurstR = 1 / (p + q), p = runs / received, q = runs / lost; 1 without loss."""
    if lost == 0:
        return 1.0
    p = runs / (expected - lost)
    q = runs / lost
    return 1.0 / (p + q)


def predict_counts(imp, expected: int, lost: int, runs: int, one_way_ms=None) -> Expect:
    ppl = 100.0 * lost / expected
    b = burst_r_of(expected, lost, runs)
    r = G107.r(imp[0], imp[1], ppl, b, one_way_ms)
    return Expect(expected, lost, runs, b, r, G107.mos(r))


def predict(imp, lost_flags, one_way_ms=None) -> Expect:
    """From the loss pattern itself: one flag per sequence position."""
    flags = list(lost_flags)
    return predict_counts(imp, len(flags), sum(flags), count_runs(flags), one_way_ms)


# warpsniff's JSON rounds mos to 4 decimals, r_factor to 3, burst_ratio to 4
def close(got, want: float, decimals: int) -> bool:
    return got is not None and abs(got - want) <= 0.5 * 10.0 ** -decimals + 1e-9


def check_score(s: dict, e: Expect, *, mos_key: str = "mos", full: bool = True) -> None:
    bad = []
    if not close(s[mos_key], e.mos, 4):
        bad.append(f"{mos_key} {s[mos_key]} != {e.mos:.6f}")
    if full:
        if not close(s["r_factor"], e.r, 3):
            bad.append(f"r_factor {s['r_factor']} != {e.r:.6f}")
        if not close(s["burst_ratio"], e.burst_r, 4):
            bad.append(f"burst_ratio {s['burst_ratio']} != {e.burst_r:.6f}")
    assert not bad, "; ".join(bad)


# ==========================================================================
# An independent playout-buffer loop (docs/quality.md, "Playout buffers")

MODES = ("jb50", "jb200", "adaptive")


def playout(packets, clock: int):
    """packets: [(position, arrival_ns, rtp_ts_unwrapped)] of voice packets in
    arrival order. Each packet's delay is its arrival minus its timestamp,
    taken relative to the fastest packet so far (this one included); it is
    late to a buffer when that exceeds the buffer's playout delay: 50 ms,
    200 ms, or avg + 4 * dev of the delays before it (gain 1/16), clamped to
    20..500 ms. Returns ({mode: late positions}, smallest |delay - limit|)."""
    late = {m: set() for m in MODES}
    avg = dev = 0.0
    fastest = math.inf
    margin = math.inf
    a0, t0 = packets[0][1], packets[0][2]
    for pos, arrival_ns, ts in packets:
        delay = (arrival_ns - a0) / 1e6 - (ts - t0) * 1000.0 / clock
        fastest = min(fastest, delay)
        over = delay - fastest
        adaptive = min(max(avg + 4.0 * dev, 20.0), 500.0)
        for mode, limit in zip(MODES, (50.0, 200.0, adaptive)):
            if over > limit:
                late[mode].add(pos)
            margin = min(margin, abs(over - limit))
        dev += (abs(over - avg) - dev) / 16.0
        avg += (over - avg) / 16.0
    return late, margin


def buffer_flags(positions, received, late) -> list[bool]:
    """Lost to a buffer: never arrived, or arrived late."""
    return [p not in received or p in late for p in positions]


# ==========================================================================
# Running warpsniff


def run_cli(tmp_path: Path, pcap: Path, *extra: str, tag: str = "out") -> tuple[list, list]:
    """`warpsniff replay PCAP --streams-json F --cdr F -q`: (streams, cdr lines)."""
    streams_path, cdr_path = tmp_path / f"{tag}.streams.json", tmp_path / f"{tag}.cdr.jsonl"
    rc = cli.main(["replay", str(pcap), "--streams-json", str(streams_path), "--cdr", str(cdr_path),
                   "-q", *extra])
    assert rc == 0
    streams = json.loads(streams_path.read_text())
    cdrs = [json.loads(line) for line in cdr_path.read_text().splitlines() if line.strip()]
    return streams, cdrs


def by_ssrc(streams: list) -> dict:
    out = {}
    for s in streams:
        assert s["ssrc"] not in out, f"two streams with SSRC {s['ssrc']:#x}"
        out[s["ssrc"]] = s
    return out


def write_frames(path: Path, *frame_lists) -> Path:
    frames = sorted((f for fl in frame_lists for f in fl), key=lambda f: f[0])
    return cg.write_pcap(path, frames)


def rtp_packet(seq: int, ts: int, ssrc: int, pt: int, payload: bytes = b"\xd5" * 160,
               marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF,
                       ssrc) + payload


# ==========================================================================
# 1. The E-model itself


# (impairment, loss %, R, MOS) exactly as voip-kpis.md's worked table prints them
WORKED = [
    ("G.711+PLC", G711_PLC, 0, 93.2, 4.41),
    ("G.711+PLC", G711_PLC, 1, 89.6, 4.33),
    ("G.711+PLC", G711_PLC, 2, 86.2, 4.24),
    ("G.711+PLC", G711_PLC, 5, 77.4, 3.92),
    ("G.711 no PLC", G711_NO_PLC, 1, 75.3, 3.83),
    ("G.711 no PLC", G711_NO_PLC, 5, 42.1, 2.17),
    ("G.729A", G729A, 0, 82.2, 4.10),
    ("G.729A", G729A, 1, 78.0, 3.95),
    ("G.729A", G729A, 5, 64.7, 3.34),
]


def worked_params():
    out = []
    for name, imp, ppl, r, mos in WORKED:
        marks = ()
        if (name, ppl) == ("G.711+PLC", 2):
            marks = pytest.mark.xfail(strict=True, reason=(
                "reference table, not warpsniff: voip-kpis.md prints MOS 4.24 for G.711+PLC at 2 % "
                "random loss, but its own formula gives R 86.189 -> MOS 4.2348, i.e. 4.23"))
        out.append(pytest.param(imp, ppl, r, mos, id=f"{name}-{ppl}%", marks=marks))
    return out


@pytest.mark.parametrize("imp,ppl,r_table,mos_table", worked_params())
def test_independent_model_reproduces_the_worked_table(imp, ppl, r_table, mos_table):
    r = G107.r(imp[0], imp[1], ppl, 1.0)
    assert abs(r - r_table) <= 0.05 + 1e-9, r
    assert abs(G107.mos(r) - mos_table) <= 0.005 + 1e-9, G107.mos(r)


@pytest.mark.parametrize("name,imp,ppl,r_table,mos_table", WORKED, ids=[f"{w[0]}-{w[2]}%" for w in WORKED])
def test_warpsniff_emodel_matches_independent_model_on_the_table(name, imp, ppl, r_table, mos_table):
    # Ppl = ppl % of 10000 packets; random loss = BurstR 1 in the table
    want_r = G107.r(imp[0], imp[1], float(ppl), 1.0)
    assert ws_emodel.effective_ie(imp[0], imp[1], float(ppl), 1.0) == pytest.approx(
        G107.ie_eff(imp[0], imp[1], float(ppl), 1.0), abs=1e-9)
    assert ws_emodel.mos_from_r(want_r) == pytest.approx(G107.mos(want_r), abs=1e-12)
    s = ws_emodel.score(imp[0], imp[1], 10_000, 100 * ppl, 0)  # no runs given: BurstR 1
    assert s.ppl == pytest.approx(float(ppl))
    assert s.r == pytest.approx(want_r, abs=1e-9)
    assert s.mos == pytest.approx(G107.mos(want_r), abs=1e-12)
    # and both agree with the printed table within its rounding (bar the 2 % MOS, above)
    assert abs(s.r - r_table) <= 0.05 + 1e-9


# (expected, lost, runs): random isolated loss, bursts, a single long burst
LOSS_CASES = [(1000, 20, 20), (1000, 20, 5), (1000, 50, 2), (500, 7, 3), (200, 1, 1), (300, 0, 0)]


@pytest.mark.parametrize("expected,lost,runs", LOSS_CASES)
@pytest.mark.parametrize("imp", [G711_PLC, G711_NO_PLC, G729A], ids=["g711plc", "g711noplc", "g729a"])
def test_warpsniff_emodel_matches_independent_model_with_bursts(imp, expected, lost, runs):
    want = predict_counts(imp, expected, lost, runs)
    assert ws_emodel.burst_ratio(expected, lost, runs) == pytest.approx(want.burst_r, abs=1e-12)
    s = ws_emodel.score(imp[0], imp[1], expected, lost, runs)
    assert (s.r, s.mos, s.burst_r) == pytest.approx((want.r, want.mos, want.burst_r), abs=1e-9)
    if lost and runs < lost:
        assert want.burst_r > 1.0  # bursts: BurstR above 1
        assert want.mos < predict_counts(imp, expected, lost, lost).mos  # worse than isolated loss


@pytest.mark.parametrize("one_way_ms", [0.0, 50.0, 150.0, 177.3, 177.4, 200.0, 400.0])
def test_delay_impairment_below_and_above_177_3_ms(one_way_ms):
    want_id = G107.id_delay(one_way_ms)
    assert ws_emodel.delay_impairment(one_way_ms) == pytest.approx(want_id, abs=1e-12)
    if one_way_ms <= 177.3:
        assert want_id == pytest.approx(0.024 * one_way_ms)
    else:
        assert want_id > 0.024 * one_way_ms
    for imp, (expected, lost, runs) in [(G711_PLC, (1000, 20, 5)), (G729A, (500, 0, 0))]:
        want = predict_counts(imp, expected, lost, runs, one_way_ms)
        s = ws_emodel.score(imp[0], imp[1], expected, lost, runs, one_way_ms)
        assert (s.r, s.mos) == pytest.approx((want.r, want.mos), abs=1e-9)


def test_mos_clamps_outside_0_100():
    for r in (-30.0, -0.001, 0.0, 50.0, 100.0, 100.5, 130.0):
        assert ws_emodel.mos_from_r(r) == pytest.approx(G107.mos(r), abs=1e-12)
    assert G107.mos(93.2) == pytest.approx(4.41, abs=0.005)  # voip-kpis.md: R 93.2 -> 4.41


# ==========================================================================
# 2. Captures the test writes: loss patterns


SRC, DST = cg.SRC4, cg.DST4


def stream_frames(pkts, sport, dport):
    return cg.rtp_frames(pkts, sport=sport, dport=dport)


def positions_and_flags(n: int, dropped_idx) -> list[bool]:
    return [i in dropped_idx for i in range(n)]


def test_random_versus_bursty_loss_at_the_same_rate(tmp_path):
    """2 % loss either as isolated packets (random) or as runs of 4: the same
    Ppl, BurstR > 1 and a lower MOS for the bursts, each exactly G.107 with p
    and q counted from the pattern written."""
    n = 1000
    rng = random.Random(6035)
    random_idx = set(rng.sample(range(10, n - 10), 20))
    bursty_idx = {start + k for start in (100, 300, 500, 700, 900) for k in range(4)}
    assert len(bursty_idx) == len(random_idx) == 20
    plans = {0x1000_0001: random_idx, 0x1000_0002: bursty_idx}
    frames = []
    for port, (ssrc, idx) in enumerate(plans.items()):
        pkts = cg.voice(n, ssrc=ssrc, seq0=5000)
        kept = [p for i, p in enumerate(pkts) if i not in idx]
        frames.append(stream_frames(kept, 40000 + 2 * port, 50000 + 2 * port))
    streams, _ = run_cli(tmp_path, write_frames(tmp_path / "loss.pcap", *frames))
    got = by_ssrc(streams)
    want = {ssrc: predict(G711_PLC, positions_and_flags(n, idx)) for ssrc, idx in plans.items()}
    for ssrc, e in want.items():
        s = got[ssrc]
        assert (s["codec"], s["mos_kind"], s["expected"], s["lost"]) == ("PCMU", "listening", n, 20)
        check_score(s, e)  # mos / r_factor / burst_ratio are the adaptive buffer's: no late packets here
        for key in ("mos_network", "mos_jb50", "mos_jb200", "mos_adaptive"):
            check_score(s, e, mos_key=key, full=False)
    rnd, bur = got[0x1000_0001], got[0x1000_0002]
    assert want[0x1000_0002].runs == 5 and want[0x1000_0002].burst_r > 1.0
    assert rnd["burst_ratio"] <= 1.0 < bur["burst_ratio"]
    assert bur["mos"] < rnd["mos"]


def edge_loss_stream(tmp_path, idx, n=300):
    pkts = [p for i, p in enumerate(cg.voice(n, ssrc=0x2000_0001, pt=8)) if i not in idx]
    streams, _ = run_cli(tmp_path, write_frames(tmp_path / "edge.pcap", stream_frames(pkts, 40000, 50000)))
    (s,) = streams
    assert (s["codec"], s["expected"], s["lost"]) == ("PCMA", n, len(idx))
    return s, predict(G711_PLC, positions_and_flags(n, idx))


def test_loss_burst_just_before_the_last_packet(tmp_path):
    s, want = edge_loss_stream(tmp_path, {150, 296, 297, 298})
    assert want.runs == 2
    check_score(s, want)


def test_loss_right_after_the_first_packet_is_a_loss_run(tmp_path):
    s, want = edge_loss_stream(tmp_path, {1, 2, 3, 150})
    assert want.runs == 2
    check_score(s, want)


def test_g729_static_payload_type(tmp_path):
    n = 400
    idx = {50, 51, 52, 200, 333}
    pkts = [p for i, p in enumerate(cg.voice(n, ssrc=0x2000_0002, pt=18, payload_len=20)) if i not in idx]
    streams, _ = run_cli(tmp_path, write_frames(tmp_path / "g729.pcap", stream_frames(pkts, 40000, 50000)))
    (s,) = streams
    assert s["codec"] == "G729"
    check_score(s, predict(G729A, positions_and_flags(n, idx)))


# ==========================================================================
# 3. Playout buffers


def late_packet_capture(tmp_path, n: int, late_idx: int, late_ms: int, ptime_ms: int, ssrc: int):
    ts_step = 8 * ptime_ms
    pkts = cg.voice(n, ssrc=ssrc, ptime_ns=ptime_ms * MS, ts_step=ts_step)
    pkts = cg.delayed(pkts, pkts[late_idx].seq, late_ms * MS)
    path = write_frames(tmp_path / f"late{ptime_ms}.pcap", stream_frames(pkts, 40000, 50000))
    arrivals = [(p.seq - 1000, p.arrival_ns, p.ts) for p in pkts]  # voice() starts at seq 1000
    return path, pkts, arrivals


def expected_late_scores(n: int, packets) -> dict:
    late, margin = playout(packets, 8000)
    assert margin > 0.01  # no packet sits on a buffer's edge
    received = {p[0] for p in packets}
    return {m: predict(G711_PLC, buffer_flags(range(n), received, late[m])) for m in MODES}, late


def check_late_packet(tmp_path, ptime_ms: int):
    n, k = 200, 100
    path, pkts, arrivals = late_packet_capture(tmp_path, n, k, 60, ptime_ms, 0x3000_0000 + ptime_ms)
    want, late = expected_late_scores(n, arrivals)
    assert late["jb50"] == {k} and late["jb200"] == set() and late["adaptive"] == {k}
    streams, _ = run_cli(tmp_path, path)
    (s,) = streams
    network = predict(G711_PLC, [False] * n)
    assert (s["expected"], s["lost"]) == (n, 0)
    check_score(s, network, mos_key="mos_network", full=False)
    check_score(s, want["jb200"], mos_key="mos_jb200", full=False)
    check_score(s, want["jb50"], mos_key="mos_jb50", full=False)
    check_score(s, want["adaptive"])  # mos / r_factor / burst_ratio: the adaptive buffer
    assert s["mos_jb50"] < s["mos_jb200"] == s["mos_network"]


def test_packet_60_ms_late_without_overtaking(tmp_path):
    """ptime 100 ms: the late packet still arrives before the next one, so
    nothing is reordered; lost to the 50 ms buffer (and the adaptive one, at
    its 20 ms floor), kept by the 200 ms one."""
    check_late_packet(tmp_path, 100)


def test_packet_60_ms_late_overtaken_by_the_next_ones(tmp_path):
    """ptime 20 ms: the packet 60 ms late arrives after the three that follow
    it. One lost position for the 50 ms and adaptive buffers, one run."""
    check_late_packet(tmp_path, 20)


def adaptive_delays(n: int) -> list[int]:
    """Network delay (ms) per packet, ptime 20 ms, never dropping by 20 ms or
    more from one packet to the next (so arrival order = sequence order)."""
    d = [10] * n
    d[50], d[51] = 35, 20                       # a 25 ms bump: over the 20 ms floor only
    for i in range(100, 140):                   # a saw of 35 ms: late at first, then the buffer grows
        d[i] = (10, 45, 31, 17)[i % 4]
    for i in range(200, 250):                   # a faster path: the reference moves down by 10 ms
        d[i] = 0
    for i, v in enumerate((130, 115, 100, 85, 70, 55, 40, 25)):
        d[300 + i] = v                          # a spike: late for 50 ms, not for 200 ms
    for i, v in enumerate((60, 45, 30, 15)):
        d[321 + i] = v                          # after a network loss at 320: extends its run
    for i, v in enumerate((262, 247, 232, 217, 202, 187, 172, 157, 142, 127, 112, 97, 82, 67, 52, 37, 22)):
        d[350 + i] = v                          # late even for 200 ms
    for i in range(420, 520):                   # steady jitter 5/19 ms
        d[i] = 19 if i % 3 == 0 else 5
    return d


def test_adaptive_buffer_on_a_constructed_delay_pattern(tmp_path):
    n = 600
    delays = adaptive_delays(n)
    assert all(a - b < 20 for a, b in zip(delays, delays[1:]))
    pkts = cg.jittered(cg.voice(n, ssrc=0x3100_0001, seq0=65000), [d * MS for d in delays])
    lost_idx = {320}
    seq0 = pkts[0].seq
    kept = [p for p in pkts if (p.seq - seq0) % 65536 not in lost_idx]
    positions = [(p.seq - seq0) % 65536 for p in kept]
    assert positions == sorted(positions)
    arrivals = [(pos, p.arrival_ns, (p.ts - kept[0].ts) % (1 << 32)) for pos, p in zip(positions, kept)]
    want, late = expected_late_scores(n, arrivals)
    # the pattern separates the three buffers
    assert late["jb200"] < late["jb50"]
    assert late["adaptive"] not in (set(), late["jb50"], late["jb200"])
    assert 50 in late["adaptive"] and 50 not in late["jb50"]
    saw = sorted(i for i in late["adaptive"] if 100 <= i < 140)
    assert saw and saw[-1] < 125  # the adaptive buffer caught up with the saw
    assert any(i in late["adaptive"] for i in range(300, 308)) and 307 not in late["adaptive"]
    assert 321 in late["jb50"]  # next to the network loss: one run with it
    path = write_frames(tmp_path / "adaptive.pcap", stream_frames(kept, 40000, 50000))
    r = replay([str(path)])
    (rec,) = r.streams
    network_flags = [i in lost_idx for i in range(n)]
    runs = {m: count_runs(buffer_flags(range(n), set(positions), late[m])) for m in MODES}
    assert [int(x) for x in rec["jb_late"]] == [len(late[m]) for m in MODES]
    assert [int(x) for x in rec["jb_loss_runs"]] == [runs[m] for m in MODES]
    streams, _ = run_cli(tmp_path, path)
    (s,) = streams
    assert (s["expected"], s["lost"]) == (n, 1)
    check_score(s, predict(G711_PLC, network_flags), mos_key="mos_network", full=False)
    for m in MODES:
        check_score(s, want[m], mos_key=f"mos_{m}", full=False)
    check_score(s, want["adaptive"])


def test_reordered_packet_is_no_loss_run(tmp_path):
    """One packet lost for good, another swapped with its successor (30 ms
    late: inside the fixed buffers, past the adaptive one's 20 ms floor)."""
    n = 300
    pkts = cg.voice(n, ssrc=0x3200_0001)
    pkts = cg.delayed(pkts, 1000 + 200, 30 * MS)      # arrives 10 ms after packet 201
    pkts = cg.dropped(pkts, 1000 + 100)
    arrivals = [(p.seq - 1000, p.arrival_ns, p.ts) for p in pkts]
    want, late = expected_late_scores(n, arrivals)
    assert late == {"jb50": set(), "jb200": set(), "adaptive": {200}}
    streams, _ = run_cli(tmp_path, write_frames(tmp_path / "reorder.pcap", stream_frames(pkts, 40000, 50000)))
    (s,) = streams
    assert (s["expected"], s["lost"], s["reordered"]) == (n, 1, 1)
    network = predict(G711_PLC, [i == 100 for i in range(n)])
    assert network.runs == 1 and want["adaptive"].runs == 2
    bad = []
    for key, e in (("mos_network", network), ("mos_jb50", want["jb50"]), ("mos_jb200", want["jb200"]),
                   ("mos_adaptive", want["adaptive"]), ("mos", want["adaptive"])):
        if not close(s[key], e.mos, 4):
            bad.append(f"{key} {s[key]} != {e.mos:.4f}")
    assert not bad, bad
    check_score(s, want["adaptive"])


# ==========================================================================
# 4. RTCP: report blocks, round-trip time, XR VoIP metrics


NTP_A = 0xE8A1_B2C3_D4E5_F607
NTP_B = 0xE8A1_C000_1234_5678


def lsr_of(ntp: int) -> int:
    return (ntp >> 16) & 0xFFFF_FFFF


def rtcp_frames(t_ns: int, payload: bytes, src, dst, sport, dport):
    return [(t_ns, cg.ether_ipv4_udp_fast(payload, sport=sport, dport=dport, src=src, dst=dst))]


def test_rtt_from_sr_then_rr_gives_conversational_mos(tmp_path):
    """SR from the sender, RR back on the same ports naming it (LSR) with a
    known DLSR: RTT = (RR arrival - SR arrival) - DLSR/65536 s; Id from RTT/2."""
    x1, x2, x3 = 0x4000_0001, 0x4000_0002, 0x4000_0003
    y = 0x4000_00F0
    n = 250
    frames = []
    cases = {  # ssrc: (ports, SR ntp, DLSR, RR arrival after SR, lsr matches)
        x1: ((40000, 50000), NTP_A, 0x0000_8000, 620 * MS, True),      # RTT 120 ms: d 60 < 177.3
        x2: ((40010, 50010), NTP_B, 0x0001_4000, 1650 * MS, True),     # RTT 400 ms: d 200 > 177.3
        x3: ((40020, 50020), NTP_A, 0x0000_8000, 620 * MS, False),     # LSR names no SR: no RTT
    }
    loss = {x1: set(), x2: {40, 41, 42, 43, 120}, x3: set()}
    for ssrc, ((sp, dp), ntp, dlsr, after, match) in cases.items():
        pkts = [p for i, p in enumerate(cg.voice(n, ssrc=ssrc)) if i not in loss[ssrc]]
        frames.append(stream_frames(pkts, sp, dp))
        t_sr = T0_NS + 1 * NS
        frames.append(rtcp_frames(t_sr, cg.rtcp_sr(ssrc, ntp, 123456, 50, 8000), SRC, DST, sp + 1, dp + 1))
        block = ReportBlock(ssrc=ssrc, fraction_lost=64, cumulative_lost=5, ext_high_seq=1200, jitter=80,
                            lsr=lsr_of(ntp) if match else lsr_of(ntp) ^ 0x10, dlsr=dlsr)
        frames.append(rtcp_frames(t_sr + after, cg.rtcp_rr(y, [block]), DST, SRC, dp + 1, sp + 1))
    pcap = write_frames(tmp_path / "rtt.pcap", *frames)
    streams, _ = run_cli(tmp_path, pcap)
    got = by_ssrc(streams)
    for ssrc, ((sp, dp), ntp, dlsr, after, match) in cases.items():
        s = got[ssrc]
        # endpoint figures, from the block as packed
        assert (s["rtcp_fraction_lost"], s["rtcp_cumulative_lost"]) == (64 / 256, 5)
        assert s["rtcp_jitter_ms"] == pytest.approx(80 / 8000 * 1000)
        if not match:
            assert (s["mos_kind"], s["rtt_ms"]) == ("listening", None)
            check_score(s, predict(G711_PLC, [False] * n))
            continue
        rtt_ms = after / MS - dlsr / 65536 * 1000
        assert s["mos_kind"] == "conversational"
        assert s["rtt_ms"] == pytest.approx(rtt_ms, abs=0.0005)
        want = predict(G711_PLC, [i in loss[ssrc] for i in range(n)], one_way_ms=rtt_ms / 2)
        check_score(s, want)
        check_score(s, want, mos_key="mos_network", full=False)
    assert got[x1]["rtt_ms"] == pytest.approx(120.0) and got[x2]["rtt_ms"] == pytest.approx(400.0)


def xr_voip_metrics(ssrc: int, sub_ssrc: int, f: dict) -> bytes:
    """RTCP XR (RFC 3611) with a DLRR block (BT=5) then a VoIP Metrics block
    (BT=7, section 4.7: block length 8 words)."""
    dlrr = struct.pack("!BBH", 5, 0, 3) + struct.pack("!III", 0x5555_5555, 0x1111_2222, 0x0000_3333)
    vm = struct.pack("!BBH", 7, 0, 8) + struct.pack(
        "!IBBBBHHHHbbBBBBBBBBHHH", sub_ssrc,
        f["loss_rate"], f["discard_rate"], f["burst_density"], f["gap_density"],
        f["burst_duration"], f["gap_duration"], f["round_trip_delay"], f["end_system_delay"],
        f["signal_level"], f["noise_level"], f["rerl"], f["gmin"],
        f["r_factor"], f["ext_r_factor"], f["mos_lq"], f["mos_cq"],
        f["rx_config"], 0, f["jb_nominal"], f["jb_maximum"], f["jb_abs_max"])
    assert len(vm) == 36
    body = struct.pack("!I", ssrc) + dlrr + vm
    return struct.pack("!BBH", 0x80, 207, (len(body) + 4) // 4 - 1) + body


XR_FIELDS = dict(loss_rate=12, discard_rate=3, burst_density=40, gap_density=2, burst_duration=120,
                 gap_duration=5000, round_trip_delay=150, end_system_delay=40, signal_level=-20,
                 noise_level=-61, rerl=127, gmin=16, r_factor=85, ext_r_factor=127, mos_lq=41, mos_cq=39,
                 rx_config=0xA8, jb_nominal=60, jb_maximum=120, jb_abs_max=240)
XR_UNAVAILABLE = dict(XR_FIELDS, r_factor=127, mos_lq=127, mos_cq=127, signal_level=127)


def test_rtcp_xr_voip_metrics_block(tmp_path):
    x, y = 0x5000_0001, 0x5000_0002
    n = 100
    fwd = stream_frames(cg.voice(n, ssrc=x), 40000, 50000)
    rev = stream_frames(cg.voice(n, ssrc=y, t0_ns=T0_NS + 5 * MS), 50000, 40000)
    rr = cg.rtcp_rr(y)  # a compound: RR without blocks, then the XR
    xr_b = rtcp_frames(T0_NS + 1500 * MS, rr + xr_voip_metrics(y, x, XR_FIELDS), DST, SRC, 50001, 40001)
    xr_a = rtcp_frames(T0_NS + 1600 * MS, xr_voip_metrics(x, y, XR_UNAVAILABLE), SRC, DST, 40001, 50001)
    pcap = write_frames(tmp_path / "xr.pcap", fwd, rev, xr_b, xr_a)
    r = replay([str(pcap)])
    rows = {int(row["ssrc"]): row for row in r.rtcp}
    assert set(rows) == {x, y}
    for sender, about, fields in ((y, x, XR_FIELDS), (x, y, XR_UNAVAILABLE)):
        row = rows[sender]
        assert int(row["has_xr_voip"]) == 1 and int(row["xr_ssrc"]) == about
        got = {k: int(row["xr_" + k]) for k in fields}
        assert got == fields
    assert int(rows[y]["xr_count"]) == 1 and int(rows[y]["rr_count"]) == 1
    streams, _ = run_cli(tmp_path, pcap)
    got = by_ssrc(streams)
    assert (got[x]["xr_mos_lq"], got[x]["xr_mos_cq"], got[x]["xr_r_factor"]) == (4.1, 3.9, 85)
    assert (got[y]["xr_mos_lq"], got[y]["xr_mos_cq"], got[y]["xr_r_factor"]) == (None, None, None)
    # endpoint figures never replace ours
    for s in got.values():
        check_score(s, predict(G711_PLC, [False] * n))
        assert s["mos_kind"] == "listening"


# ==========================================================================
# 5. SIP calls: SDP codecs, DTMF, RFC 6035 reports, call MOS

A_IP, B_IP = ALICE[0], BOB[0]
A_PORT, B_PORT = 40000, 50000


def open_call(cap: Capture, call_id: str, offer_pts, answer_pts=None, t0: float = 0.0,
              ports=(A_PORT, B_PORT)) -> Dialog:
    d = Dialog(call_id)
    inv = d.invite(1, body=sdp(A_IP, ports[0], offer_pts))
    cap.udp(t0, d.caller, d.callee, inv)
    cap.udp(t0 + 0.1, d.callee, d.caller, response(inv, 180, to_tag="bob-tag"))
    cap.udp(t0 + 0.5, d.callee, d.caller,
            response(inv, 200, to_tag="bob-tag", body=sdp(B_IP, ports[1], answer_pts or offer_pts)))
    cap.udp(t0 + 0.51, d.caller, d.callee, d.request("ACK", 1, to_tag="bob-tag"))
    d.to_tag = "bob-tag"
    return d


def close_call(cap: Capture, d: Dialog, t: float) -> None:
    bye = d.request("BYE", 2, to_tag=d.to_tag)
    cap.udp(t, d.caller, d.callee, bye)
    cap.udp(t + 0.05, d.callee, d.caller, response(bye, 200))


def media(cap: Capture, src, dst, ssrc: int, start: float, n: int, *, pt: int = 0, ts_step: int = 160,
          drop=(), payload: bytes = b"\xd5" * 160, override=None) -> None:
    """n packets every 20 ms; `override(i)` may return (pt, ts, payload) for packet i."""
    for i in range(n):
        if i in drop:
            continue
        p, ts, body = (pt, i * ts_step, payload)
        if override is not None:
            p, ts, body = override(i) or (p, ts, body)
        cap.udp(start + 0.02 * i, src, dst, rtp_packet(1000 + i, ts, ssrc, p, body))


def dtmf_payload(event: int, end: bool, duration: int) -> bytes:
    """RFC 4733 section 2.3: event, E|R|volume, duration."""
    return struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)


def test_dtmf_events_are_counted_and_leave_mos_and_jitter_alone(tmp_path):
    """Two digits sent as telephone-event (PT 101 from SDP) in place of voice
    packets: every packet of an event repeats the event's timestamp, so were
    they voice they would add jitter and late packets."""
    cap = Capture()
    pts = ((0, "PCMU", 8000), (101, "telephone-event", 8000))
    d = open_call(cap, "dtmf-call@192.0.2.10", pts)
    n = 250
    events = {range(60, 70): 5, range(150, 162): 9}

    def dtmf(i):
        for r, digit in events.items():
            if i in r:
                return 101, r.start * 160, dtmf_payload(digit, i >= r.stop - 3, (i - r.start + 1) * 160)
        return None

    # a control for the test itself: fed to the buffers as voice, the events would be late packets
    as_voice = [(i, round((1.0 + 0.02 * i) * 1e6) * 1000, (dtmf(i) or (0, i * 160))[1]) for i in range(n)]
    assert playout(as_voice, 8000)[0]["jb50"]
    fwd, rev = 0x6000_0001, 0x6000_0002
    media(cap, (A_IP, A_PORT), (B_IP, B_PORT), fwd, 1.0, n, override=dtmf)
    media(cap, (B_IP, B_PORT), (A_IP, A_PORT), rev, 1.01, n, drop={30, 31, 32, 90})  # the worse direction
    close_call(cap, d, 1.0 + 0.02 * n + 0.5)
    streams, cdrs = run_cli(tmp_path, cap.write(tmp_path / "dtmf.pcap"))
    (call,) = cdrs
    got = by_ssrc(call["streams"])
    s = got[fwd]
    assert (s["codec"], s["dtmf_events"], s["expected"], s["lost"]) == ("PCMU", 2, n, 0)
    assert (s["max_jitter_ms"], s["mean_jitter_ms"]) == (0.0, 0.0)
    clean = predict(G711_PLC, [False] * n)
    check_score(s, clean)
    for key in ("mos_network", "mos_jb50", "mos_jb200", "mos_adaptive"):
        check_score(s, clean, mos_key=key, full=False)
    assert call["dtmf_events"] == 2
    worse = predict(G711_PLC, [i in {30, 31, 32, 90} for i in range(n)])
    check_score(got[rev], worse)
    assert close(call["mos"], worse.mos, 4)  # a call's MOS is its worse direction


def test_comfort_noise_is_neither_loss_nor_jitter(tmp_path):
    """PT 13 SID packets during a silence: their timestamps do not follow the
    arrival clock (as voice they would be 20 to 300 ms late); the voice that
    resumes after the silence is on time."""
    n_voice, cn_at = 200, 100
    ssrc = 0x7000_0001
    pkts = []
    seq = 3000
    for i in range(n_voice):
        if i < cn_at:
            t_ms, ts = 20 * i, 160 * i
        else:
            t_ms, ts = 20 * (i + 60), 160 * (i + 60)  # 1.2 s of silence before packet cn_at
        if i == cn_at:
            for k in range(5):  # SID every 240 ms, timestamp frozen at the silence start
                pkts.append(cg.Rtp(seq=seq, ts=160 * cn_at, arrival_ns=T0_NS + (20 * cn_at + 240 * k) * MS,
                                   ssrc=ssrc, pt=13, payload_len=1))
                seq += 1
        pkts.append(cg.Rtp(seq=seq, ts=ts, arrival_ns=T0_NS + t_ms * MS, ssrc=ssrc,
                           marker=(i == cn_at)))
        seq += 1
    pkts = cg.by_arrival(pkts)
    # what a buffer fed with the SID packets would see: a control for the test itself
    fed = playout([(q.seq - 3000, q.arrival_ns, q.ts) for q in pkts], 8000)[0]
    assert fed["jb50"] and fed["adaptive"]
    streams, _ = run_cli(tmp_path, write_frames(tmp_path / "cn.pcap", stream_frames(pkts, 40000, 50000)))
    (s,) = streams
    total = n_voice + 5
    assert (s["expected"], s["lost"], s["packets"]) == (total, 0, total)
    assert (s["max_jitter_ms"], s["mean_jitter_ms"]) == (0.0, 0.0)
    clean = predict(G711_PLC, [False] * total)
    check_score(s, clean)
    for key in ("mos_network", "mos_jb50", "mos_jb200", "mos_adaptive"):
        check_score(s, clean, mos_key=key, full=False)


def test_codec_from_sdp_rtpmap_of_a_dynamic_payload_type(tmp_path):
    """PT 97 means G729 here because the SDP says so."""
    cap = Capture()
    d = open_call(cap, "g729-dyn@192.0.2.10", ((97, "G729", 8000),))
    n, drop = 300, {10, 11, 200}
    media(cap, (A_IP, A_PORT), (B_IP, B_PORT), 0x7100_0001, 1.0, n, pt=97, payload=b"\x11" * 20, drop=drop)
    close_call(cap, d, 1.0 + 0.02 * n + 0.5)
    streams, cdrs = run_cli(tmp_path, cap.write(tmp_path / "g729dyn.pcap"))
    (s,) = cdrs[0]["streams"]
    assert (s["codec"], s["payload_type"]) == ("G729", 97)
    check_score(s, predict(G729A, [i in drop for i in range(n)]))


def test_codecs_without_a_g113_value_get_no_mos(tmp_path):
    """G.722 (static PT 9) and Opus (SDP): no narrowband Ie/Bpl, so no MOS."""
    cap = Capture()
    d = open_call(cap, "opus@192.0.2.10", ((111, "opus", 48000),))
    n = 150
    media(cap, (A_IP, A_PORT), (B_IP, B_PORT), 0x7200_0001, 1.0, n, pt=111, ts_step=960, payload=b"\x22" * 60,
          drop={20, 21})
    close_call(cap, d, 1.0 + 0.02 * n + 0.5)
    media(cap, ("192.0.2.30", 41000), ("198.51.100.40", 51000), 0x7200_0002, 1.0, n, pt=9, drop={40})
    streams, _ = run_cli(tmp_path, cap.write(tmp_path / "nomos.pcap"))
    got = by_ssrc(streams)
    for ssrc, codec in ((0x7200_0001, "opus"), (0x7200_0002, "G722")):
        s = got[ssrc]
        assert s["codec"] == codec and s["lost"] > 0
        assert all(s[k] is None for k in ("mos", "r_factor", "burst_ratio", "mos_network", "mos_jb50",
                                          "mos_jb200", "mos_adaptive")), s


# -- RFC 6035 section 4.7.3 (message F13): the end-of-session report, line for
# line, with documentation addresses in place of the RFC's (and its folded
# continuation lines kept folded)
RFC6035_CALL_ID = "6dg37f1890463"
RFC6035_REPORT = "\r\n".join([
    "VQSessionReport: CallTerm",
    f"CallID: {RFC6035_CALL_ID}",
    "LocalID: Alice <sip:alice@example.org>",
    "RemoteID: Bill <sip:bill@example.net>",
    "OrigID: Alice <sip:alice@example.org>",
    "LocalGroup: example-phone-55671",
    "RemoteGroup: example-gateway-09871",
    "LocalAddr: IP=192.0.2.100 PORT=5000 SSRC=1a3b5c7d",
    "LocalMAC: 00:00:5e:00:53:01",
    "RemoteAddr:IP=198.51.100.150 PORT=5002 SSRC=0x2468abcd",
    "RemoteMAC: 00:00:5e:00:53:02",
    "LocalMetrics:",
    "Timestamps:START=2004-10-10T18:23:43Z STOP=2004-10-01T18:26:02Z",
    "SessionDesc:PT=18 PD=G729 SR=8000 FD=20 FO=20 FPP=2 PPS=50",
    "                FMTP=\"annexb=no\" PLC=3 SSUP=on",
    "JitterBuffer:JBA=3 JBR=2 JBN=40 JBM=80 JBX=120",
    "PacketLoss:NLR=5.0 JDR=2.0",
    "BurstGapLoss:BLD=0 BD=0 GLD=2.0 GD=500 GMIN=16",
    "Delay:RTD=200 ESD=140 SOWD=200 IAJ=2 MAJ=10",
    "Signal:SL=-21 NL=-50 RERL=55",
    "QualityEst:RLQ=90 RCQ=85 EXTRI=90 MOSLQ=4.2 MOSCQ=4.3",
    "  QoEEstAlg=P.564",
    "RemoteMetrics:",
    "Timestamps:START=2004-10-10T18:23:43Z STOP=2004-10-01T18:26:02Z",
    "SessionDesc:PT=18 PD=G729 SR=8000 FD=20 FO=20 FPP=2 PPS=50",
    "                FMTP=\"annexb=no\" PLC=3 SSUP=on",
    "JitterBuffer:JBA=3 JBR=2 JBN=40 JBM=80 JBX=120",
    "PacketLoss:NLR=5.0 JDR=2.0",
    "BurstGapLoss:BLD=0 BD=0 GLD=2.0 GD=500 GMIN=16",
    "Delay:RTD=200 ESD=140 SOWD=200 IAJ=2 MAJ=10",
    "Signal:SL=-21 NL=-45 RERL=55",
    "QualityEst:RLQ=90 RCQ=85 MOSLQ=4.3 MOSCQ=4.2 QoEEstAlg=P.564",
    "DialogID:1890463548@alice.example.org;to-tag=8472761;",
    "   from-tag=9123dh311",
]) + "\r\n"

# The LocalMetrics section: the reporter's own measurement of the stream it received
RFC6035_LOCAL = {
    "loss_rate_percent": 5.0, "discard_rate_percent": 2.0,
    "burst_density_percent": 0.0, "burst_duration_ms": 0.0, "gap_density_percent": 2.0,
    "gap_duration_ms": 500.0, "gmin": 16.0,
    "round_trip_delay_ms": 200.0, "end_system_delay_ms": 140.0, "interarrival_jitter_ms": 2.0,
    "r_factor_lq": 90.0, "r_factor_cq": 85.0, "mos_lq": 4.2, "mos_cq": 4.3,
}
SAME_IN_BOTH_SECTIONS = [k for k in RFC6035_LOCAL if k not in ("mos_lq", "mos_cq")]


def publish(call_id_in_body: str, publish_call_id: str, report: str = RFC6035_REPORT) -> Msg:
    body = report.replace(f"CallID: {RFC6035_CALL_ID}", f"CallID: {call_id_in_body}").encode()
    headers = [
        ("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-vq-" + publish_call_id[:6]),
        ("Max-Forwards", "70"),
        ("To", "<sip:collector@example.org>"),
        ("From", "Alice <sip:alice@example.org>;tag=a3343df32"),
        ("Call-ID", publish_call_id),
        ("CSeq", "4321 PUBLISH"),
        ("Event", "vq-rtcpxr"),
        ("Expires", "3600"),
        ("Content-Type", "application/vq-rtcpxr"),
    ]
    return Msg("PUBLISH sip:collector@example.org SIP/2.0", headers, body)


COLLECTOR = ("203.0.113.5", 5060)


@pytest.fixture(scope="module")
def vq_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vq")
    cap = Capture()
    d = open_call(cap, RFC6035_CALL_ID, ((18, "G729", 8000),))
    media(cap, (A_IP, A_PORT), (B_IP, B_PORT), 0x8000_0001, 1.0, 100, pt=18, payload=b"\x11" * 20)
    close_call(cap, d, 3.5)
    other = open_call(cap, "other-call@192.0.2.10", ((0, "PCMU", 8000),), t0=0.2, ports=(42000, 52000))
    close_call(cap, other, 3.6)
    cap.udp(3.8, ALICE, COLLECTOR, publish(RFC6035_CALL_ID, "1890463548@alice.example.org"))
    cap.udp(3.9, ALICE, COLLECTOR, publish("no-such-call@nowhere", "77@alice.example.org"))
    return run_cli(tmp, cap.write(tmp / "vq.pcap"))


def test_rfc6035_publish_lands_in_its_calls_cdr(vq_run):
    streams, cdrs = vq_run
    calls = {c["call_id"]: c for c in cdrs}
    assert set(calls) == {RFC6035_CALL_ID, "other-call@192.0.2.10"}  # PUBLISH is no call attempt
    assert calls["other-call@192.0.2.10"]["vq_reports"] == []
    (rep,) = calls[RFC6035_CALL_ID]["vq_reports"]
    assert (rep["event"], rep["call_id"]) == ("CallTerm", RFC6035_CALL_ID)
    assert rep["local"] == {"IP": "192.0.2.100", "PORT": "5000", "SSRC": "1a3b5c7d"}
    assert rep["remote"] == {"IP": "198.51.100.150", "PORT": "5002", "SSRC": "0x2468abcd"}
    assert {k: rep.get(k) for k in SAME_IN_BOTH_SECTIONS} == {k: RFC6035_LOCAL[k] for k in SAME_IN_BOTH_SECTIONS}
    # endpoint-reported: our own score of the call stays ours
    (s,) = calls[RFC6035_CALL_ID]["streams"]
    assert s["codec"] == "G729"
    check_score(s, predict(G729A, [False] * 100))


def test_rfc6035_report_keeps_the_local_metrics(vq_run):
    _, cdrs = vq_run
    (rep,) = [c for c in cdrs if c["call_id"] == RFC6035_CALL_ID][0]["vq_reports"]
    assert (rep.get("mos_lq"), rep.get("mos_cq")) == (4.2, 4.3)


# ==========================================================================
# 6. Codec table override and --no-plc


def lossy_capture(tmp_path: Path, name: str) -> tuple[Path, dict]:
    """PCMU (PT 0), G.722 (PT 9) and G.729 (PT 18) streams, each with the same
    2 % loss in runs of 2."""
    n = 500
    idx = {50, 51, 150, 151, 250, 251, 350, 351, 450, 451}
    plan = {0x9000_0000: 0, 0x9000_0009: 9, 0x9000_0012: 18}
    frames = []
    for k, (ssrc, pt) in enumerate(plan.items()):
        pkts = [p for i, p in enumerate(cg.voice(n, ssrc=ssrc, pt=pt)) if i not in idx]
        frames.append(stream_frames(pkts, 40000 + 2 * k, 50000 + 2 * k))
    return write_frames(tmp_path / name, *frames), {ssrc: [i in idx for i in range(n)] for ssrc in plan}


def test_codec_table_override_changes_ie_and_bpl(tmp_path):
    pcap, flags = lossy_capture(tmp_path, "override.pcap")
    table = {
        "PCMU": {"static_pt": 0, "clock": 8000, "plc": {"ie": 7, "bpl": 12.5}, "no_plc": {"ie": 7, "bpl": 3.0}},
        "G722": {"static_pt": 9, "clock": 8000, "plc": {"ie": 13, "bpl": 21.0}},
    }
    table_path = tmp_path / "codecs.json"
    table_path.write_text(json.dumps(table))
    # through the real command line, streams to stdout
    out = subprocess.run([sys.executable, "-m", "warpsniff", "replay", str(pcap), "--streams-json", "-",
                          "--codec-table", str(table_path)], capture_output=True, text=True, cwd=REPO,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    got = by_ssrc(json.loads(out.stdout))
    check_score(got[0x9000_0000], predict((7.0, 12.5), flags[0x9000_0000]))
    check_score(got[0x9000_0009], predict((13.0, 21.0), flags[0x9000_0009]))
    check_score(got[0x9000_0012], predict(G729A, flags[0x9000_0012]))  # untouched entry
    # and the default table again, for contrast
    default = by_ssrc(run_cli(tmp_path, pcap)[0])
    check_score(default[0x9000_0000], predict(G711_PLC, flags[0x9000_0000]))
    assert default[0x9000_0009]["mos"] is None
    assert got[0x9000_0000]["mos"] != default[0x9000_0000]["mos"]


def test_no_plc_scores_g711_with_bpl_4_3(tmp_path):
    pcap, flags = lossy_capture(tmp_path, "noplc.pcap")
    plc = by_ssrc(run_cli(tmp_path, pcap, tag="plc")[0])
    no_plc = by_ssrc(run_cli(tmp_path, pcap, "--no-plc", tag="noplc")[0])
    check_score(plc[0x9000_0000], predict(G711_PLC, flags[0x9000_0000]))
    check_score(no_plc[0x9000_0000], predict(G711_NO_PLC, flags[0x9000_0000]))
    assert no_plc[0x9000_0000]["mos"] < plc[0x9000_0000]["mos"]
    # G.729 has no 'without concealment' value: --no-plc leaves it as it is
    check_score(no_plc[0x9000_0012], predict(G729A, flags[0x9000_0012]))


# ==========================================================================
# 7. Third-party captures with rtpproxy's own loss figures


def read_rtp_pcap(path: Path) -> dict:
    """A classic-pcap, Ethernet/IPv4/UDP reader: SSRC -> [(arrival_ns, seq, ts, pt)]
    for datagrams that look like RTP (version 2, payload type outside 72-76)."""
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    bo = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    magic = struct.unpack(bo + "I", data[:4])[0]
    frac = 1 if magic == 0xA1B23C4D else 1000
    assert struct.unpack(bo + "I", data[20:24])[0] == 1, "Ethernet only"
    out = defaultdict(list)
    off = 24
    while off + 16 <= len(data):
        sec, sub, incl, _ = struct.unpack(bo + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        etype, p = struct.unpack("!H", frame[12:14])[0], 14
        while etype == 0x8100:
            etype, p = struct.unpack("!H", frame[p + 2:p + 4])[0], p + 4
        if etype != 0x0800 or frame[p + 9] != 17:
            continue
        u = p + (frame[p] & 0x0F) * 4
        rtp = frame[u + 8:]
        if len(rtp) < 12 or rtp[0] >> 6 != 2 or 72 <= rtp[1] & 0x7F <= 76:
            continue
        seq, ts, ssrc = struct.unpack("!HII", rtp[2:12])
        out[ssrc].append((sec * NS + sub * frac, seq, ts, rtp[1] & 0x7F))
    return out




def rtpproxy_lossy_blocks() -> list:
    """(output, capture, block) for every SSRC rtpproxy reports loss for."""
    if not RTPPROXY_EXPECTED.is_dir():
        return [pytest.param(None, None, None, id="shared-captures-absent")]
    import re
    field = re.compile(r"(\w+)=([0-9A-Fa-fx.]+)")
    out = []
    for output in sorted(RTPPROXY_EXPECTED.glob("rtp_analyze__*.output")):
        if (RTPPROXY_EXPECTED / (output.stem + ".args")).exists():
            continue  # SRTP pairs: the payload needs keys
        blocks = []
        for line in output.read_text().splitlines():
            f = {k: (int(v, 16) if v.startswith("0x") else float(v) if "." in v else int(v))
                 for k, v in field.findall(line)}
            if "pcount" in f:
                blocks.append(f)
            elif blocks:
                blocks[-1].update(f)
        stem = output.stem.split("__", 1)[1]
        for side, block in zip(("a", "o"), blocks):
            if block["plost"] > 0:
                out.append(pytest.param(output.name, f"rtpproxy__rtp_analyze__{stem}.{side}.pcap", block,
                                        id=f"{stem}.{side}"))
    return out


@pytest.mark.parametrize("output,capture,block", rtpproxy_lossy_blocks())
def test_public_lossy_streams_score_from_rtpproxy_loss(output, capture, block, tmp_path):
    require_shared_pcaps()
    path = SHARED_PCAPS / capture
    pkts = read_rtp_pcap(path)[block["ssrc"]]
    # this model covers plain streams: sequence and timestamp only move forward
    seqs = [p[1] for p in pkts]
    assert all(0 < (b - a) % 65536 < 3000 for a, b in zip(seqs, seqs[1:]))
    assert all((b[2] - a[2]) % (1 << 32) < 1 << 31 for a, b in zip(pkts, pkts[1:]))
    assert {p[3] for p in pkts} == {18}  # G.729 voice only
    positions = [0]
    for a, b in zip(seqs, seqs[1:]):
        positions.append(positions[-1] + (b - a) % 65536)
    expected = positions[-1] + 1
    received = set(positions)
    assert (expected, expected - len(received)) == (block["psent"], block["plost"])  # reader vs rtpproxy
    streams, _ = run_cli(tmp_path, path)
    (s,) = [s for s in streams if s["ssrc"] == block["ssrc"]]
    assert (s["expected"], s["lost"]) == (block["psent"], block["plost"])
    assert s["codec"] == "G729"
    network_flags = [p not in received for p in range(expected)]
    check_score(s, predict(G729A, network_flags), mos_key="mos_network", full=False)
    ts0 = pkts[0][2]
    late, margin = playout([(pos, p[0], (p[2] - ts0) % (1 << 32)) for pos, p in zip(positions, pkts)], 8000)
    assert margin > 0.01
    for m in MODES:
        check_score(s, predict(G729A, buffer_flags(range(expected), received, late[m])), mos_key=f"mos_{m}",
                    full=False)
    check_score(s, predict(G729A, buffer_flags(range(expected), received, late["adaptive"])))
