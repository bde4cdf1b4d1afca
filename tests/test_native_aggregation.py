"""Captures through the native aggregation and media join (CallAggregator's
tables in the engine, CallMediaPass) and through the Python ones they
replaced (tests/agg_reference.py: main's aggregator, collector and
Pipeline media methods), side by side: the exporter's exposition after
every capture second (windows, retention, live media included), the
per-call series, the live media of calls still up, and the CDRs must be
the same, byte for byte.

Captures: every one in /work/shared/pcaps/public/ (skipped when absent),
pcaps/, the engine benchmark's when it was generated, and built here:
calls with every outcome (answered short and long, busy, cancelled after
ringing, rejected, unanswered, timed out by our timers, still up at the
end), codecs static, dynamic, unknown and none, loss, RTCP sender and
receiver reports giving RTTs, streams that go idle before their call
ends, and label sets folded into "other".
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

import agg_reference as ref
import capgen as cg
from sipgen import Capture, Dialog, response, rtp, sdp
from test_calls import ack, hangup, send
from warpsniff.exporter import registry_for
from warpsniff.labels import LabelConfig
from warpsniff.pipeline import Pipeline
from warpsniff.replay import CallOutput, EngineOptions, replay
from warpsniff.report import call_record
from warpsniff.sip.calls import CallConfig

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = Path("/work/shared/pcaps/public")
BENCHMARK = Path("/work/main/bench-out/synth-v1-c500-p1000000-l0.005-j5-s1.pcap")


class ReferencePipeline(ref.ReferenceMedia, Pipeline):
    """A Pipeline with main's Python aggregator and media methods."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.use_reference_aggregation()


def reference_registry(p) -> CollectorRegistry:
    p.serving = True
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ref.WarpCollector(p))
    registry.register(ref.SnifferCollector(p))
    return registry


class ScrapeEverySecond:
    """A call sink that scrapes the registry after each capture second's
    joins, and at the end."""

    def __init__(self):
        self.registry = None
        self.scrapes: list = []
        self.calls: list = []

    def add(self, call) -> None:
        self.calls.append(call)

    def tick(self, p) -> None:
        self.scrapes.append(generate_latest(self.registry))

    def finish(self, p) -> None:
        self.scrapes.append(generate_latest(self.registry))


def media_figures(medias: dict) -> list:
    return [(r, m.account, m.call_id, list(m.streams.items()), m.mos, m.ended_at) for r, m in medias.items()]


def run_both(paths, close_calls: bool, label_config=None, call_config=None, options=None) -> tuple:
    """(native, reference) results of one replay each: scrapes, per-call
    series, live media, call records."""
    out = []
    for cls, registry_of in ((Pipeline, registry_for), (ReferencePipeline, reference_registry)):
        p = cls(options or EngineOptions(), call_config, label_config)
        sink = ScrapeEverySecond()
        sink.registry = registry_of(p)
        replay([str(x) for x in paths], pipeline=p, output=sink, close_calls=close_calls)
        out.append({"scrapes": sink.scrapes, "series": media_figures(p.aggregator.media),
                    "live": media_figures(p.live_media()), "calls": [call_record(c) for c in sink.calls],
                    "dropped": p.aggregator.call_series_dropped,
                    "expired": p.engine.counters()["streams_expired"]})
    return tuple(out)


def cdrs_of_both(paths, label_config=None, call_config=None, options=None) -> tuple:
    out = []
    for cls in (Pipeline, ReferencePipeline):
        lines: list = []
        p = cls(options or EngineOptions(), call_config, label_config)
        replay([str(x) for x in paths], pipeline=p, output=CallOutput(write_cdr=lines.append))
        out.append(lines)
    return tuple(out)


def assert_same(native: dict, reference: dict) -> None:
    assert len(native["scrapes"]) == len(reference["scrapes"])
    for i, (a, b) in enumerate(zip(native["scrapes"], reference["scrapes"])):
        assert a == b, f"scrape {i} of {len(native['scrapes'])} differs"
    for key in ("series", "live", "calls", "dropped"):
        assert native[key] == reference[key], key


def captures(where: str = "both") -> list:
    public = sorted(p for p in PUBLIC.glob("*") if p.suffix in (".pcap", ".pcapng")) if PUBLIC.is_dir() else []
    ours = sorted((ROOT / "pcaps").glob("*.pcap"))
    return {"public": public, "pcaps": ours, "both": public + ours}[where]


@pytest.mark.parametrize("where", ["public", "pcaps"])
@pytest.mark.parametrize("close_calls", [True, False])
def test_every_capture_scrapes_the_same(where, close_calls):
    paths = captures(where)
    if not paths:
        pytest.skip(f"{PUBLIC} is absent")
    seen_media = 0
    for path in paths:
        native, reference = run_both([path], close_calls)
        assert native["scrapes"], path
        try:
            assert_same(native, reference)
        except AssertionError as exc:
            raise AssertionError(f"{path.name}: {exc}") from None
        seen_media += sum(1 for s in native["series"] + native["live"] if s[3])
    assert seen_media >= 15   # calls with stream figures among them


@pytest.mark.parametrize("where", ["public", "pcaps"])
def test_every_capture_writes_the_same_cdrs(where):
    paths = captures(where)
    if not paths:
        pytest.skip(f"{PUBLIC} is absent")
    for path in paths:
        native, reference = cdrs_of_both([path])
        assert native == reference, path.name


def test_the_engine_benchmark_capture_scrapes_the_same():
    if not BENCHMARK.exists():
        pytest.skip(f"{BENCHMARK} not generated (benchmarks/correlation_cost.py makes it)")
    native, reference = run_both([BENCHMARK], close_calls=True)
    assert len(native["calls"]) == 500 and len(native["series"]) == 500
    assert_same(native, reference)
    native, reference = cdrs_of_both([BENCHMARK])
    assert len(native) == 500 and native == reference


# -- a capture of every kind of call ------------------------------------------

CODECS = [((0, "PCMU", 8000),), ((8, "PCMA", 8000),), ((18, "G729", 8000),), ((96, "opus", 48000),),
          ((97, "X-unknown", 8000),), ((0, "PCMU", 8000), (101, "telephone-event", 8000)), ((9, "G722", 8000),),
          ((3, "GSM", 8000),)]
KINDS = ["answered"] * 6 + ["busy", "cancelled", "rejected", "unanswered", "no_bye", "still_up", "no_sdp_answer"]
LABELS = """\
default_country: US
platform:
  addresses: [10.2.0.0/16]
trunks:
  - {name: trunk_a, match: {cidr: [10.1.0.0/24]}}
  - {name: trunk_b, match: {cidr: [10.1.1.0/24]}}
  - {name: trunk_c, match: {cidr: [10.2.0.0/16]}}
accounts:
  - {name: acct_a, match: {trunk: trunk_a}}
  - {name: acct_b, match: {trunk: [trunk_b, trunk_c]}}
providers:
  - {name: prov_1, match: {cidr: [10.2.0.0/24]}}
metrics: {short_call_thresholds: [6, 10], call_series_retention_seconds: 20}
limits: {max_label_sets: %d}
billing: {min_billable_seconds: 3}
"""
FAST_TIMERS = CallConfig(invite_timeout=8.0, ring_timeout=12.0, rtp_timeout=6.0, bye_linger=2.0)
NTP0 = 0xE8A1_0000_0000_0000


def _udp(cap: Capture, t: float, src, dst, payload: bytes) -> None:
    cap.add(t, cg.ether_ipv4_udp_fast(payload, sport=src[1], dport=dst[1], src=src[0], dst=dst[0]))


def _media(cap, rng, t0, t1, src, dst, ssrc, pt, clock):
    """RTP from t0 to t1 (50 ms packets), some lost, some late; an SR on the
    next port up in the middle. Returns the SR's (time, NTP)."""
    step = clock // 20
    n = max(0, int((t1 - t0) / 0.05))
    loss = rng.choice([0.0, 0.0, 0.02, 0.2])
    for i in range(n):
        if rng.random() < loss:
            continue
        t = t0 + i * 0.05 + rng.choice([0.0, 0.0, rng.uniform(0, 0.04)])
        _udp(cap, t, src, dst, rtp(1000 + i, i * step, ssrc, pt))
    t_sr = t0 + (t1 - t0) / 2
    ntp = NTP0 + (int(t_sr * 1000) << 32)
    _udp(cap, t_sr, (src[0], src[1] + 1), (dst[0], dst[1] + 1), cg.rtcp_sr(ssrc, ntp, 1234, n, n * 160))
    return t_sr, ntp


def _receiver_report(cap, rng, t_sr, ntp, reporter, sender, about):
    """An RR about `about` from `reporter`: RTT (arrival gap - DLSR) 20-500 ms,
    or (sometimes) naming no SR, so no RTT."""
    gap = rng.uniform(0.3, 0.9)
    dlsr = int((gap - rng.uniform(0.02, 0.5)) * 65536)
    lsr = (ntp >> 16) & 0xFFFF_FFFF
    if rng.random() < 0.2:
        lsr ^= 0x10
    block = cg.ReportBlock(ssrc=about, fraction_lost=rng.randint(0, 40), cumulative_lost=rng.randint(0, 9),
                           ext_high_seq=1100, jitter=rng.randint(0, 400), lsr=lsr, dlsr=max(dlsr, 0))
    _udp(cap, t_sr + gap, (reporter[0], reporter[1] + 1), (sender[0], sender[1] + 1),
         cg.rtcp_rr(0x7000_0000 | about, [block]))


def mixed_capture(path: Path, seed: int, n_calls: int = 70) -> Path:
    rng = random.Random(seed)
    cap = Capture()
    end = 0.0
    up = []   # calls whose media flows to the end of the capture
    for i in range(n_calls):
        t = i * rng.uniform(0.3, 1.6)
        caller = (f"10.1.{rng.choice([0, 1, 5])}.{10 + i % 200}", 5060)
        callee = (f"10.2.{rng.choice([0, 3])}.{20 + i % 200}", 5060)
        if rng.random() < 0.2:   # the other way: from the platform out
            caller, callee = callee, caller
        d = Dialog(f"mix-{seed}-{i}@test", caller, callee)
        kind = rng.choice(KINDS)
        pts = rng.choice(CODECS)
        a_media = (f"10.5.{i % 250}.1", 20000 + 2 * i)
        b_media = (f"10.6.{i % 250}.1", 30000 + 2 * i)
        offer = sdp(a_media[0], a_media[1], pts) if rng.random() < 0.95 else b""
        inv = d.invite(1, body=offer)
        send(cap, t, caller, callee, inv)
        if rng.random() < 0.7:
            send(cap, t + 0.05, callee, caller, response(inv, 100))
        ring = t + rng.uniform(0.1, 2.5)
        if kind != "unanswered" or rng.random() < 0.5:
            send(cap, ring, callee, caller, response(inv, rng.choice([180, 183]), to_tag="callee-tag"))
        d.to_tag = "callee-tag"
        if kind in ("busy", "rejected", "cancelled"):
            code = {"busy": rng.choice([486, 600]), "rejected": rng.choice([404, 503, 403, 480]),
                    "cancelled": 487}[kind]
            send(cap, ring + rng.uniform(0.5, 5), callee, caller, response(inv, code, to_tag="callee-tag"))
            end = max(end, ring + 6)
            continue
        if kind == "unanswered":
            end = max(end, ring + 15)
            continue
        answer_t = ring + rng.uniform(0.2, 3)
        answer = b"" if kind == "no_sdp_answer" else sdp(b_media[0], b_media[1], pts[:1])
        send(cap, answer_t, callee, caller, response(inv, 200, to_tag="callee-tag", body=answer))
        send(cap, answer_t + 0.01, caller, callee, ack(d, 1, "callee-tag"))
        duration = rng.choice([0.5, 2.0, 4.0, 7.0, 12.0, 35.0])
        stop = answer_t + duration
        pt, _, clock = pts[0]
        clock = 8000 if clock == 48000 else clock
        if kind == "still_up":
            up.append((answer_t + 0.05, a_media, b_media, i, pt, clock))
        elif rng.random() < 0.9:
            a_sr = _media(cap, rng, answer_t + 0.05, stop, a_media, b_media, 0x1000_0000 + i, pt, clock)
            b_sr = _media(cap, rng, answer_t + 0.06, stop if rng.random() < 0.8 else answer_t + duration / 3,
                          b_media, a_media, 0x2000_0000 + i, pt, clock)
            if rng.random() < 0.6:
                _receiver_report(cap, rng, *a_sr, b_media, a_media, 0x1000_0000 + i)
            if rng.random() < 0.4:
                _receiver_report(cap, rng, *b_sr, a_media, b_media, 0x2000_0000 + i)
        if kind == "answered":
            hangup(cap, d, stop, from_callee=rng.random() < 0.5)
        end = max(end, stop + 10)
    for start, a_media, b_media, i, pt, clock in up:
        _media(cap, rng, start, end + 8.0, a_media, b_media, 0x1000_0000 + i, pt, clock)
        _media(cap, rng, start, end + 8.0, b_media, a_media, 0x2000_0000 + i, pt, clock)
    cap.fillers(1.0, end + 8.0, step=1.0)
    return cap.write(path)


@pytest.mark.parametrize("seed,max_label_sets,close_calls", [
    (1, 10_000, True),
    (2, 3, True),      # most label sets fold into "other"
    (3, 4, False),     # calls still up stay up: their live media is scraped too
])
def test_calls_of_every_kind_scrape_the_same(tmp_path, seed, max_label_sets, close_calls):
    path = mixed_capture(tmp_path / "mixed.pcap", seed)
    labels = LabelConfig.from_dict(__import__("yaml").safe_load(LABELS % max_label_sets))
    options = EngineOptions(idle_timeout=4.0)   # streams of long calls end before the call does
    native, reference = run_both([path], close_calls, labels, FAST_TIMERS, options)
    assert_same(native, reference)
    assert (len(native["calls"]) == 70) == close_calls   # else calls still up stay up
    assert native["scrapes"][-1].count(b"warp_call_terminations_total{") > 3
    assert b"warp_call_mos_count{" in native["scrapes"][-1] and b"warp_rtp_jitter_seconds_count{" in \
        native["scrapes"][-1]
    assert any(b"warp_mos_score{" in s and b"warp_rtp_packet_loss_ratio{" in s for s in native["scrapes"])
    if max_label_sets < 10:
        assert b'warpsniff_label_overflows_total{metric="warp_call_attempts_total"}' in native["scrapes"][-1]
    if not close_calls:
        assert native["live"]
    assert native["expired"]   # streams that left the table before their call's join
    native_cdrs, reference_cdrs = cdrs_of_both([path], labels, FAST_TIMERS, options)
    assert native_cdrs == reference_cdrs
    assert any(line["streams"] and line["streams"][0].get("rtt_ms") for line in native_cdrs)


def tied_reports_capture(path: Path) -> Path:
    """Senders B1, B2, B3 each report on A's SSRC (RTTs of 100, 200 and 300
    ms): B1 and B2 last at the same nanosecond, after B3; before that, B3 at
    the same time as an earlier B1 report. The table keeps senders in the
    order they first came (B1, B2, B3); of the latest reports the later
    sender's wins, as a stable sort by arrival leaves it."""
    a, ssrc = ("10.9.0.1", 7000), 0xA0A0_0001
    t0 = 1_700_000_000 * cg.NS
    ntp = NTP0 + (5 << 32)
    frames = [(t0, cg.ether_ipv4_udp_fast(cg.rtcp_sr(ssrc, ntp, 0, 1, 160), sport=a[1] + 1,
                                          dport=9000 + 2 * reporter + 1, src=a[0], dst=f"10.9.1.{reporter}"))
              for reporter in (1, 2, 3)]   # each reporter's RTT is from the SR it got

    def report(t_ns, reporter, rtt_ms):
        dlsr = int(((t_ns - t0) / 1e9 - rtt_ms / 1000) * 65536)
        block = cg.ReportBlock(ssrc=ssrc, fraction_lost=0, cumulative_lost=0, ext_high_seq=1, jitter=0,
                               lsr=(ntp >> 16) & 0xFFFF_FFFF, dlsr=dlsr)
        frames.append((t_ns, cg.ether_ipv4_udp_fast(cg.rtcp_rr(0xB000_0000 + reporter, [block]),
                                                    sport=9000 + 2 * reporter + 1, dport=a[1] + 1,
                                                    src=f"10.9.1.{reporter}", dst=a[0])))

    report(t0 + 1 * cg.NS, 1, 100.0)
    report(t0 + 2 * cg.NS, 2, 200.0)
    report(t0 + 3 * cg.NS, 3, 300.0)
    report(t0 + 4 * cg.NS, 1, 101.0)
    report(t0 + 4 * cg.NS, 3, 301.0)   # tie with B1, B3 later in the table: 301
    report(t0 + 5 * cg.NS, 1, 102.0)
    report(t0 + 5 * cg.NS, 2, 202.0)   # the latest, tied with B1, B2 later in the table: 202
    return cg.write_pcap(path, frames, nsec=True)


def test_round_trips_read_in_place_are_quality_contexts(tmp_path):
    """Engine.round_trips (the C scan a media join uses) against
    QualityContext's RTT from the whole RTCP table, on the mixed capture
    (RTTs, reports naming no SR), reports tied in time, and every capture
    with RTCP."""
    from warpsniff.quality.codecs import CodecTable
    from warpsniff.quality.streams import QualityContext
    tied = tied_reports_capture(tmp_path / "tied.pcap")
    r = replay([str(tied)])
    assert [(int(x["rb_arrival_ns"]) - 1_700_000_000 * cg.NS, round(float(x["rtt_ms"]))) for x in r.rtcp
            if x["rtt_samples"]] == [(5 * cg.NS, 102), (5 * cg.NS, 202), (4 * cg.NS, 301)]
    assert round(QualityContext(CodecTable.load(), r.rtcp, {}).rtt[0xA0A0_0001]) == 202
    paths = [tied, mixed_capture(tmp_path / "m.pcap", 4)] + \
        [p for p in captures() if "rtcp" in p.name or "tcp" in p.name]
    with_rtt = 0
    for path in paths:
        p = Pipeline(EngineOptions())
        r = replay([str(path)], pipeline=p)
        ssrcs = sorted(set(r.streams["ssrc"].tolist()) | set(r.rtcp["rb_ssrc"].tolist()) | {0, 0xFFFF_FFFF})
        want = QualityContext(CodecTable.load(), r.rtcp, {}).rtt
        got = p.engine.round_trips(ssrcs)
        assert {s: rtt for s, (_, rtt) in got.items()} == want, path.name
        with_rtt += len(want)
    assert with_rtt > 20
