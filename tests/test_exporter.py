"""The exporter end to end, with real components: `warpsniff replay --listen
--keep-serving` as a subprocess, a real Prometheus scraping it, PromQL over
Prometheus' HTTP API, `promtool check metrics` on the exposition.

Every expected value below is computed from what the test wrote into the
capture (docs/metrics.md and docs/labels.md give the definitions), not read
back from warpsniff's code; the one exception is a lower bound on one MOS,
computed with the E-model of docs/quality.md. Only loopback addresses are used.
"""
from __future__ import annotations

import gzip
import random
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import phonenumbers
import pytest

from promutil import (
    LOOPBACK,
    fetch,
    family_types,
    need_binary,
    parse_exposition,
    start_prometheus,
    start_warpsniff,
    udp_frame,
)
from sipgen import Capture, Dialog, Msg, response, rtp, sdp
from warpsniff.quality.emodel import score   # the E-model of docs/quality.md, for one MOS bound

# addresses (documentation ranges): the carrier's trunk sends to our platform
TRUNK_SIG = ("198.51.100.20", 5060)
PLATFORM_SIG = ("192.0.2.10", 5060)
TRUNK_MEDIA_IP = "198.51.100.20"
PLATFORM_MEDIA_IP = "192.0.2.10"

CALLER = "+13125550100"      # Chicago; account "777" by number_prefix +1312
CALLEE = "+13125550199"      # same NPA: zone LOCAL, both countries US

LABELS_ATTEMPT = dict(account="777", trunk="carrier_a", direction="inbound", zone="LOCAL",
                      destination_country="US", origination_country="US")
LABELS4 = dict(account="777", trunk="carrier_a", provider="prov1", zone="LOCAL")

KPI_CONFIG = """\
default_country: US
platform:
  addresses: [192.0.2.0/24]
trunks:
  - name: carrier_a
    match: {cidr: [198.51.100.0/24]}
accounts:
  - {name: "777", match: {number_prefix: "+1312"}}
providers:
  - {name: prov1, match: {cidr: [198.51.100.0/24]}}
metrics:
  short_call_thresholds: [6, 10]
billing:
  min_billable_seconds: 3
"""
MIN_BILLABLE_S = 3.0
SHORT_THRESHOLDS = (6, 10)
NER_CODES = {200, 486, 600, 603, 480}     # the default metrics.ner_codes
DURATION_BUCKETS = (1, 3, 6, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
CAPTURE_END = 60.0

# the seed's names that promtool's unit lint flags; the seed wins (docs/metrics.md)
SEED_FAMILIES = {
    "warp_call_attempts_total", "warp_call_duration_seconds", "warp_pdd_milliseconds", "warp_active_calls",
    "warp_call_terminations_total", "warp_asr_ratio", "warp_acd_seconds", "warp_ner_ratio",
    "warp_short_call_ratio", "warp_rtp_packet_loss_ratio", "warp_rtp_jitter_ms", "warp_mos_score",
    "warp_minutes_used_total",
}


# --------------------------------------------------------------------------
# building captures


def msg_frame(cap: Capture, t: float, src, dst, msg) -> None:
    cap.add(t, udp_frame(src, dst, bytes(msg)))
    cap.sip_messages = getattr(cap, "sip_messages", 0) + 1


def rtp_frames(cap: Capture, src, dst, ssrc: int, start: float, stop: float, *, drop=frozenset(),
               seq0: int = 1000) -> dict:
    """20 ms PCMU packets from `start` while t < stop (perfect timing, so
    jitter 0); packet indexes in `drop` are not written. Returns counts."""
    n = int(round((stop - start) / 0.02))
    sent = 0
    for i in range(n):
        if i in drop:
            continue
        cap.add(start + i * 0.02, udp_frame(src, dst, rtp(seq0 + i, i * 160, ssrc)))
        sent += 1
    return {"span": n, "sent": sent, "lost": n - sent}


def ack_for(d: Dialog, cseq: int, to_tag: str, invite: Optional[Msg] = None) -> Msg:
    """ACK of a 2xx (new branch) or, given the INVITE, of a non-2xx (same branch)."""
    branch = invite.get("Via").split("branch=")[1] if invite is not None else None
    return d.request("ACK", cseq, to_tag=to_tag, branch=branch)


@dataclass
class Plan:
    """One attempt and its truth."""
    call_id: str
    t_invite: float
    provisional: list = field(default_factory=list)   # [(delay, code)]
    final: Optional[tuple] = None                      # (delay, code)
    duration: Optional[float] = None                   # answered: BYE this long after the 200
    cancel_at: Optional[float] = None                  # delay of the CANCEL (then 487)
    challenge: bool = False                            # 401 then the INVITE again with CSeq 2
    invite_retransmit: Optional[float] = None          # delay of a retransmitted INVITE
    reinvite_at: Optional[float] = None                # delay after the answer of a re-INVITE
    rtp_until: Optional[float] = None                  # open call: RTP up to here, no BYE
    drop: frozenset = frozenset()                      # RTP packets of the caller's stream not sent
    media_port: int = 0

    @property
    def final_code(self) -> Optional[int]:
        if self.cancel_at is not None:
            return 487
        return self.final[1] if self.final else None

    @property
    def answered(self) -> bool:
        return self.final_code is not None and 200 <= self.final_code < 300

    @property
    def finished(self) -> bool:
        return self.rtp_until is None

    @property
    def pdd_ms(self) -> Optional[float]:
        """First INVITE to the first 180/181/182/183, else to the 2xx (never 100)."""
        rings = [d for d, c in self.provisional if c in (180, 181, 182, 183)]
        if rings:
            return min(rings) * 1000.0
        if self.answered:
            return self.final[0] * 1000.0
        return None

    @property
    def ringing(self) -> bool:
        return any(c in (180, 181, 182) for _, c in self.provisional)

    @property
    def reason(self) -> str:
        code = self.final_code
        if 200 <= code < 300:
            return "normal"
        if code in (486, 600, 603):
            return "busy"
        if code in (480, 408):
            return "no_answer"
        if code == 487:
            return "cancelled"
        return "failed"

    @property
    def ner_success(self) -> bool:
        return self.answered or self.final_code in NER_CODES or (self.final_code == 487 and self.ringing)


def kpi_plans() -> list:
    """10 finished attempts through carrier_a + 2 calls still up at the end."""
    P = Plan
    plans = [
        P("a1-answered@trunk", 1.0, [(0.8, 180)], (3.0, 200), duration=2.5),
        P("a2-answered@trunk", 2.0, [(0.3, 183)], (2.0, 200), duration=4.0),
        P("a3-answered@trunk", 3.0, [], (1.5, 200), duration=5.5),
        P("a4-answered@trunk", 5.0, [(2.2, 180)], (6.0, 200), duration=8.0),
        # challenged (401), retried with CSeq 2: the same attempt; PDD from the first INVITE
        P("a5-answered@trunk", 7.0, [(0.09, 180)], (1.0, 200), duration=12.0, challenge=True),
        # a re-INVITE mid-call is not an attempt
        P("a6-answered@trunk", 9.0, [(4.5, 180)], (7.0, 200), duration=20.0, reinvite_at=5.0),
        P("b1-busy@trunk", 11.0, [(1.2, 180)], (5.0, 486)),
        # retransmitted INVITE: not a new attempt
        P("b2-busy@trunk", 13.0, [], (0.4, 486), invite_retransmit=0.2),
        P("c1-cancel@trunk", 15.0, [(0.6, 180)], None, cancel_at=8.0),
        P("d1-unavail@trunk", 17.0, [], (0.2, 503)),
        # still up when the capture ends: answered, RTP flowing, no BYE
        P("o1-open@trunk", 40.0, [(1.0, 180)], (3.0, 200), rtp_until=CAPTURE_END,
          drop=frozenset(range(200, 210)) | {500, 777}),
        P("o2-open@trunk", 42.0, [(0.25, 183)], (1.0, 200), rtp_until=CAPTURE_END),
    ]
    for i, p in enumerate(plans):
        p.media_port = 20000 + 10 * i
    return plans


def write_attempt(cap: Capture, p: Plan, truth: dict) -> None:
    d = Dialog(p.call_id, caller=TRUNK_SIG, callee=PLATFORM_SIG, from_tag=f"ft-{p.call_id[:2]}",
               from_user=CALLER, to_user=CALLEE)
    caller_media = (TRUNK_MEDIA_IP, p.media_port)
    callee_media = (PLATFORM_MEDIA_IP, p.media_port + 1000)
    offer = sdp(*caller_media)
    answer = sdp(*callee_media)
    t0 = p.t_invite
    up = (TRUNK_SIG, PLATFORM_SIG)
    down = (PLATFORM_SIG, TRUNK_SIG)
    to_tag = f"tt-{p.call_id[:2]}"
    inv = d.invite(1, body=offer)
    msg_frame(cap, t0, *up, inv)
    cseq = 1
    if p.challenge:
        msg_frame(cap, t0 + 0.03, *down, response(inv, 401, to_tag="chal-tag",
                                                   extra=[("WWW-Authenticate", 'Digest realm="x", nonce="n"')]))
        msg_frame(cap, t0 + 0.04, *up, ack_for(d, 1, "chal-tag", invite=inv))
        inv = d.invite(2, body=offer, extra=[("Authorization", 'Digest username="u", realm="x"')])
        msg_frame(cap, t0 + 0.05, *up, inv)
        cseq = 2
    if p.invite_retransmit is not None:
        msg_frame(cap, t0 + p.invite_retransmit, *up, inv)
    msg_frame(cap, t0 + 0.06, *down, response(inv, 100))
    for delay, code in p.provisional:
        msg_frame(cap, t0 + delay, *down, response(inv, code, to_tag=to_tag))
    if p.cancel_at is not None:
        branch = inv.get("Via").split("branch=")[1]
        cancel = d.request("CANCEL", cseq, branch=branch)
        msg_frame(cap, t0 + p.cancel_at, *up, cancel)
        msg_frame(cap, t0 + p.cancel_at + 0.02, *down, response(cancel, 200, to_tag=to_tag))
        msg_frame(cap, t0 + p.cancel_at + 0.03, *down, response(inv, 487, to_tag=to_tag))
        msg_frame(cap, t0 + p.cancel_at + 0.04, *up, ack_for(d, cseq, to_tag, invite=inv))
        return
    delay, code = p.final
    t_final = t0 + delay
    if code >= 300:
        msg_frame(cap, t_final, *down, response(inv, code, to_tag=to_tag))
        msg_frame(cap, t_final + 0.01, *up, ack_for(d, cseq, to_tag, invite=inv))
        return
    msg_frame(cap, t_final, *down, response(inv, 200, to_tag=to_tag, body=answer))
    msg_frame(cap, t_final + 0.01, *up, ack_for(d, cseq, to_tag))
    stop = p.rtp_until if p.rtp_until is not None else t_final + p.duration
    ssrc = 0x1000 + p.media_port
    rtp_start = t_final + 0.03
    truth["rtp"][p.call_id] = {
        "inbound": rtp_frames(cap, caller_media, callee_media, ssrc, rtp_start, stop - 0.05, drop=p.drop),
        "outbound": rtp_frames(cap, callee_media, caller_media, ssrc + 1, rtp_start + 0.005, stop - 0.05),
    }
    if p.reinvite_at is not None:
        re = d.invite(cseq + 1, body=sdp(*caller_media, version=2), to_tag=to_tag)
        msg_frame(cap, t_final + p.reinvite_at, *up, re)
        msg_frame(cap, t_final + p.reinvite_at + 0.02, *down, response(re, 200, to_tag=to_tag, body=answer))
        msg_frame(cap, t_final + p.reinvite_at + 0.03, *up, ack_for(d, cseq + 1, to_tag))
        cseq += 1
    if p.rtp_until is None:
        d.to_tag = to_tag
        bye = d.request("BYE", cseq + 1, to_tag=to_tag)
        msg_frame(cap, t_final + p.duration, *up, bye)
        msg_frame(cap, t_final + p.duration + 0.02, *down, response(bye, 200))


def fillers(cap: Capture, start: float, stop: float) -> None:
    """Non-SIP, non-RTP packets every second: capture time moves on."""
    t = start
    while t <= stop + 1e-9:
        cap.add(t, udp_frame(("192.0.2.250", 53), ("192.0.2.251", 53), b"tick"))
        t += 1.0


def build_kpi_capture(path: Path) -> dict:
    plans = kpi_plans()
    truth = {"plans": plans, "rtp": {}}
    cap = Capture()
    for p in plans:
        write_attempt(cap, p, truth)
    fillers(cap, 0.0, CAPTURE_END)
    cap.write(path)
    truth.update(frames=len(cap.frames), sip_messages=cap.sip_messages,
                 retransmissions=sum(p.invite_retransmit is not None for p in plans))
    return truth


# --------------------------------------------------------------------------
# running it


@pytest.fixture(scope="module")
def kpi(tmp_path_factory):
    """The KPI capture replayed by a warpsniff that keeps serving the final state."""
    work = tmp_path_factory.mktemp("kpi")
    truth = build_kpi_capture(work / "kpi.pcap")
    cfg = work / "warpsniff.yml"
    cfg.write_text(KPI_CONFIG)
    w = start_warpsniff(work / "kpi.pcap", cfg, work, "warpsniff-kpi")
    truth.update(work=work, warpsniff=w, pcap=work / "kpi.pcap", config=cfg)
    yield truth
    w.stop()


@pytest.fixture(scope="module")
def prom(kpi):
    """A real Prometheus scraping the KPI warpsniff; tests ask for it with
    `prometheus_for(request)`, so that a missing binary fails the test itself."""
    p = start_prometheus(f"{LOOPBACK}:{kpi['warpsniff'].port}", kpi["work"])
    yield p
    p.stop()


def prometheus_for(request):
    need_binary("prometheus")
    return request.getfixturevalue("prom")


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def by_labels(result: list, *keys) -> dict:
    """Query result -> {tuple of label values: value}."""
    return {tuple(lbl.get(k, "") for k in keys): v for lbl, v in result}


def sel(labels: dict, **more) -> str:
    items = {**labels, **more}
    return "{" + ",".join(f'{k}="{v}"' for k, v in items.items()) + "}"


# --------------------------------------------------------------------------
# 1. KPIs through a real Prometheus


def test_kpis_through_prometheus(kpi, request):
    prom = prometheus_for(request)
    plans = kpi["plans"]
    finished = [p for p in plans if p.finished]
    answered = [p for p in finished if p.answered]
    open_calls = [p for p in plans if not p.finished]
    durations = [p.duration for p in answered]
    assert len(finished) == 10 and len(open_calls) == 2 and len(answered) == 6
    problems = []

    def expect(what, got, want):
        ok = close(got, want) if isinstance(want, float) and isinstance(got, float) else got == want
        if not ok:
            problems.append(f"{what}: expected {want!r}, got {got!r}")

    def single(promql):
        r = prom.query(promql)
        return r[0][1] if len(r) == 1 else (None if not r else f"{len(r)} samples: {r}")

    # attempts: every initial INVITE, counted when it arrives (open calls included)
    attempts = prom.query("warp_call_attempts_total")
    expect("attempt label sets", [{k: v for k, v in lbl.items() if k not in ("job", "instance")}
                                  for lbl, _ in attempts], [LABELS_ATTEMPT])
    expect("sum(warp_call_attempts_total)", single("sum(warp_call_attempts_total)"), float(len(plans)))

    # outcomes: only finished attempts
    s4 = sel(LABELS4)
    expect("warp_call_finished_total", single(f"warp_call_finished_total{s4}"), float(len(finished)))
    expect("warp_call_answered_total", single(f"warp_call_answered_total{s4}"), float(len(answered)))
    expect("warp_call_ner_attempts_total", single(f"warp_call_ner_attempts_total{s4}"),
           float(sum(p.ner_success for p in finished)))
    expect("warp_call_answered_duration_seconds_total",
           single(f"warp_call_answered_duration_seconds_total{s4}"), float(sum(durations)))

    # windowed ratios: the whole capture lies inside every window
    asr = float(len(answered)) / len(finished)
    acd = sum(durations) / len(durations)
    for window in ("5m", "1h", "24h"):
        expect(f"warp_asr_ratio{{window={window}}}", single(f'warp_asr_ratio{sel(LABELS4, window=window)}'), asr)
        expect(f"warp_acd_seconds{{window={window}}}", single(f'warp_acd_seconds{sel(LABELS4, window=window)}'), acd)
    expect("warp_asr_ratio series", len(prom.query("warp_asr_ratio")), 3)
    ner3 = dict(account="777", trunk="carrier_a", provider="prov1")
    expect("warp_ner_ratio", single(f"warp_ner_ratio{sel(ner3)}"),
           sum(p.ner_success for p in finished) / len(finished))
    expect("warp_ner_ratio series", len(prom.query("warp_ner_ratio")), 1)
    for thr in SHORT_THRESHOLDS:
        shorts = sum(d < thr for d in durations)
        lbl = sel(dict(account="777", trunk="carrier_a"), threshold_seconds=str(thr))
        expect(f"warp_short_call_ratio{{threshold_seconds={thr}}}", single(f"warp_short_call_ratio{lbl}"),
               shorts / len(durations))
        expect(f"warp_short_calls_total{{threshold_seconds={thr}}}", single(f"warp_short_calls_total{lbl}"),
               float(shorts))

    # PDD histogram: every attempt that had a ringing/progress/answer response, observed when its
    # PDD ended (docs/metrics.md), so the two calls still up count too
    pdds = [p.pdd_ms for p in plans if p.pdd_ms is not None]
    assert len(pdds) == 10
    buckets = by_labels(prom.query(f"warp_pdd_milliseconds_bucket{s4}"), "le")
    les = sorted((float(le) for (le,) in buckets), key=float)
    expect("PDD bucket bounds: first, last", (les[0], les[-2], les[-1]), (100.0, 30000.0, float("inf")))
    for (le,), v in sorted(buckets.items(), key=lambda kv: float(kv[0][0])):
        expect(f"warp_pdd_milliseconds_bucket{{le={le}}}", v, float(sum(x <= float(le) for x in pdds)))
    expect("warp_pdd_milliseconds_count", single(f"warp_pdd_milliseconds_count{s4}"), float(len(pdds)))
    got_sum = single(f"warp_pdd_milliseconds_sum{s4}")
    if not isinstance(got_sum, float) or abs(got_sum - sum(pdds)) > 1e-3 * len(pdds):
        problems.append(f"warp_pdd_milliseconds_sum: expected {sum(pdds)} (+-1 us each), got {got_sum}")

    # duration histogram by status
    statuses = {
        "completed": [p.duration for p in answered if p.duration >= SHORT_THRESHOLDS[0]],
        "short": [p.duration for p in answered if p.duration < SHORT_THRESHOLDS[0]],
        "failed": [0.0 for p in finished if not p.answered],
    }
    dur = prom.query("warp_call_duration_seconds_bucket")
    expect("duration statuses", sorted({lbl["status"] for lbl, _ in dur}), sorted(statuses))
    for status, values in statuses.items():
        lbl = dict(account="777", trunk="carrier_a", direction="inbound", zone="LOCAL", status=status)
        b = by_labels(prom.query(f"warp_call_duration_seconds_bucket{sel(lbl)}"), "le")
        expect(f"duration buckets ({status})", sorted(float(le) for (le,) in b),
               [float(x) for x in DURATION_BUCKETS] + [float("inf")])
        for (le,), v in b.items():
            expect(f"warp_call_duration_seconds_bucket{{status={status},le={le}}}", v,
                   float(sum(x <= float(le) for x in values)))
        expect(f"warp_call_duration_seconds_sum{{status={status}}}",
               single(f"warp_call_duration_seconds_sum{sel(lbl)}"), float(sum(values)))

    # terminations: finished attempts by reason and final code
    want_terms: dict = {}
    for p in finished:
        key = (p.reason, str(p.final_code))
        want_terms[key] = want_terms.get(key, 0.0) + 1.0
    terms = prom.query('warp_call_terminations_total{account="777",trunk="carrier_a"}')
    expect("warp_call_terminations_total", by_labels(terms, "reason", "sip_code"), want_terms)
    expect("terminations sum", single("sum(warp_call_terminations_total)"), float(len(finished)))

    # the calls still up
    expect("warp_active_calls", by_labels(prom.query("warp_active_calls"), "account", "trunk", "direction"),
           {("777", "carrier_a", "inbound"): float(len(open_calls))})
    expect("warpsniff_active_dialogs", single("warpsniff_active_dialogs"), float(len(open_calls)))
    expect("warpsniff_packets_total", single("warpsniff_packets_total"), float(kpi["frames"]))
    expect("warpsniff_sip_messages_total", single("warpsniff_sip_messages_total"), float(kpi["sip_messages"]))
    expect("warpsniff_sip_retransmissions_total", single("warpsniff_sip_retransmissions_total"),
           float(kpi["retransmissions"]))
    expect("warpsniff_sip_parse_errors_total", single("warpsniff_sip_parse_errors_total"), 0.0)

    # minutes: answered calls that ended, billable when at least billing.min_billable_seconds
    minutes = by_labels(prom.query("warp_minutes_used_total"), "account", "trunk", "zone", "billable")
    want_minutes = {
        ("777", "carrier_a", "LOCAL", "true"): sum(d for d in durations if d >= MIN_BILLABLE_S) / 60.0,
        ("777", "carrier_a", "LOCAL", "false"): sum(d for d in durations if d < MIN_BILLABLE_S) / 60.0,
    }
    expect("warp_minutes_used_total keys", sorted(minutes), sorted(want_minutes))
    for k, v in want_minutes.items():
        expect(f"warp_minutes_used_total{k}", minutes.get(k), v)

    # per-call media series: answered calls (up, or ended within the retention)
    mos = by_labels(prom.query("warp_mos_score"), "account", "call_id")
    expect("warp_mos_score call_ids", sorted(c for _, c in mos), sorted(p.call_id for p in plans if p.answered))
    for p in open_calls:
        v = mos.get(("777", p.call_id))
        if v is None or not 1.0 <= v <= 5.0:
            problems.append(f"warp_mos_score{{call_id={p.call_id}}}: expected a MOS in 1-5, got {v}")
    # while up, MOS covers the last quality interval (10 s): o1's burst (packets 200-209, ~47 s) is
    # older than that, its single losses (~53 s, ~58.6 s) are not; o2 lost nothing, like the ended calls
    o1, o2 = (mos.get(("777", p.call_id)) for p in open_calls)
    ended = {mos.get(("777", p.call_id)) for p in answered}
    r1 = kpi["rtp"][open_calls[0].call_id]["inbound"]
    whole_call = score(0.0, 25.1, r1["span"], r1["lost"], 3).mos   # PCMU with PLC: Ie 0, Bpl 25.1
    if None not in (o1, o2) and not whole_call < o1 < o2:
        problems.append(f"warp_mos_score: expected whole-call MOS {whole_call:.4f} < o1 {o1} < o2 {o2} "
                        "(o1 scored on its last interval only)")
    # (ended calls' MOS is rounded to 4 decimals, the interval MOS is not)
    if o2 is None or not all(v is not None and abs(v - o2) <= 1e-4 for v in ended):
        problems.append(f"warp_mos_score: lossless ended calls {ended} should score as lossless o2 {o2}")
    loss = by_labels(prom.query("warp_rtp_packet_loss_ratio"), "call_id", "direction", "codec")
    for p in open_calls:
        for direction in ("inbound", "outbound"):
            r = kpi["rtp"][p.call_id][direction]
            expect(f"warp_rtp_packet_loss_ratio{{call_id={p.call_id},direction={direction}}}",
                   loss.get((p.call_id, direction, "PCMU")), r["lost"] / r["span"])
    jitter = by_labels(prom.query("warp_rtp_jitter_ms"), "call_id", "direction")
    for p in open_calls:
        for direction in ("inbound", "outbound"):
            expect(f"warp_rtp_jitter_ms{{call_id={p.call_id},direction={direction}}}",
                   jitter.get((p.call_id, direction)), 0.0)

    # finished calls' media histograms: one MOS per answered call, one jitter per stream
    expect("warp_call_mos_count", single("sum(warp_call_mos_count)"), float(len(answered)))
    expect("warp_rtp_jitter_seconds_count", single("sum(warp_rtp_jitter_seconds_count)"),
           float(2 * len(answered)))
    expect("warp_rtp_jitter_seconds_sum", single("sum(warp_rtp_jitter_seconds_sum)"), 0.0)

    assert not problems, "PromQL results differ from the capture's truth:\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------
# 2. promtool


def test_promtool_check_metrics(kpi):
    promtool = need_binary("promtool")
    r = fetch(kpi["warpsniff"].base + "/metrics")
    assert r.status == 200
    proc = subprocess.run([promtool, "check", "metrics"], input=r.body, capture_output=True, timeout=30)
    report = (proc.stdout + proc.stderr).decode()
    flagged = {}
    for line in report.splitlines():
        line = line.strip()
        if not line:
            continue
        # "<metric name> <problem>", e.g. 'warp_pdd_milliseconds use base unit "seconds" ...'
        name, _, problem = line.partition(" ")
        assert problem, f"unexpected promtool output line: {line!r}\n{report}"
        flagged.setdefault(name.rstrip(":"), []).append(problem.strip())
    # only unit lints, only on the seed's names. docs/metrics.md names warp_pdd_milliseconds and
    # warp_rtp_jitter_ms; promtool also flags the seed's warp_minutes_used_total ("minutes")
    for name, problems in flagged.items():
        for problem in problems:
            assert "unit" in problem, f"promtool: {name}: {problem}\n{report}"
        assert name in SEED_FAMILIES, f"promtool flags {name}, which is not a seed name: {problems}"
    assert set(flagged) == {"warp_pdd_milliseconds", "warp_rtp_jitter_ms", "warp_minutes_used_total"}, report


# --------------------------------------------------------------------------
# 3. HTTP: negotiation, compression, health, auth, TLS


def test_openmetrics_negotiation(kpi):
    base = kpi["warpsniff"].base
    om = fetch(base + "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.status == 200
    assert om.headers["content-type"].startswith("application/openmetrics-text"), om.headers
    assert om.text.endswith("# EOF\n")
    assert "warp_call_attempts_total{" in om.text
    plain = fetch(base + "/metrics")
    assert plain.status == 200
    assert plain.headers["content-type"].startswith("text/plain"), plain.headers
    assert "# EOF" not in plain.text
    assert "warp_call_attempts_total{" in plain.text


def test_gzip(kpi):
    r = fetch(kpi["warpsniff"].base + "/metrics", headers={"Accept-Encoding": "gzip"})
    assert r.status == 200
    assert r.headers.get("content-encoding") == "gzip", r.headers
    assert r.body[:2] == b"\x1f\x8b"
    text = gzip.decompress(r.body).decode()
    assert "warp_call_attempts_total{" in text


def test_healthz(kpi):
    r = fetch(kpi["warpsniff"].base + "/healthz")
    assert r.status == 200
    assert r.text.strip() == "ok"


def test_basic_auth(kpi, tmp_path):
    w = start_warpsniff(kpi["pcap"], kpi["config"], tmp_path, "warpsniff-auth",
                        extra=["--basic-auth", "scraper:s3cret"])
    try:
        r = fetch(w.base + "/metrics")
        assert r.status == 401, r.status
        assert "warp_" not in r.text
        assert r.headers.get("www-authenticate", "").lower().startswith("basic"), r.headers
        assert fetch(w.base + "/metrics", auth=("scraper", "wrong")).status == 401
        assert fetch(w.base + "/metrics", auth=("other", "s3cret")).status == 401
        ok = fetch(w.base + "/metrics", auth=("scraper", "s3cret"))
        assert ok.status == 200 and "warp_call_attempts_total{" in ok.text
        assert fetch(w.base + "/healthz", auth=("scraper", "s3cret")).text.strip() == "ok"
    finally:
        w.stop()


def self_signed(tmp_path: Path) -> tuple:
    """(cert, key) for 127.0.0.1: openssl CLI, else the cryptography package."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    openssl = shutil.which("openssl")
    if openssl:
        subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                        "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
        return cert, key
    try:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID
    except ImportError:
        pytest.skip("neither the openssl CLI nor the cryptography package is available to make a certificate")
    pk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    c = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(pk.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                        critical=False)
         .sign(pk, hashes.SHA256()))
    cert.write_bytes(c.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(pk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption()))
    return cert, key


def test_tls(kpi, tmp_path):
    cert, key = self_signed(tmp_path)
    w = start_warpsniff(kpi["pcap"], kpi["config"], tmp_path, "warpsniff-tls",
                        extra=["--tls-cert", cert, "--tls-key", key], scheme="https")
    try:
        r = fetch(w.base + "/metrics", cafile=str(cert))
        assert r.status == 200 and "warp_call_attempts_total{" in r.text
        assert fetch(w.base + "/healthz", cafile=str(cert)).text.strip() == "ok"
        # plain HTTP on the TLS port gets no metrics
        try:
            plain = fetch(f"http://{LOOPBACK}:{w.port}/metrics", timeout=5)
        except OSError:
            plain = None
        assert plain is None or plain.status != 200
    finally:
        w.stop()


# --------------------------------------------------------------------------
# 4. cardinality: random wire values never become labels; the guard folds


CARD_CALLS = 3000
CARD_LIMIT = 50
CARD_RETENTION_S = 5
CARD_DEST = "+18005550100"          # toll-free: zone TOLLFREE whatever the caller
CARD_PREFIXES = {"+44": "acct_uk", "+33": "acct_fr", "+49": "acct_de", "+1": "acct_nanp"}
CARD_CONFIG = f"""\
default_country: US
platform:
  addresses: [192.0.2.0/24]
trunks:
  - name: carrier_a
    match: {{cidr: [198.51.100.0/24]}}
accounts:
{''.join(f'  - {{name: {name}, match: {{number_prefix: "{prefix}"}}}}{chr(10)}' for prefix, name in CARD_PREFIXES.items())}\
providers:
  - {{name: prov1, match: {{cidr: [198.51.100.0/24]}}}}
metrics:
  call_series_retention_seconds: {CARD_RETENTION_S}
limits:
  max_label_sets: {CARD_LIMIT}
"""
# families whose series follow calls (one label is the Call-ID), bounded by retention instead
PER_CALL_FAMILIES = {"warp_rtp_packet_loss_ratio", "warp_rtp_jitter_ms", "warp_mos_score"}


def country_of(number: str) -> str:
    """docs/labels.md: the ISO region of a valid number (number_type not UNKNOWN), else unknown."""
    try:
        n = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return "unknown"
    if phonenumbers.number_type(n) == phonenumbers.PhoneNumberType.UNKNOWN:
        return "unknown"
    region = phonenumbers.region_code_for_number(n)
    return region if region in phonenumbers.SUPPORTED_REGIONS else "unknown"


def account_of(number: str) -> str:
    for prefix, name in CARD_PREFIXES.items():   # first match wins (file order)
        if number.startswith(prefix):
            return name
    return "unknown"


def random_callers(rng: random.Random, n: int) -> list:
    """`n` distinct caller numbers from every region phonenumbers knows (its
    example numbers with random last digits), a tenth with an unassigned
    country code (+999: no number at all)."""
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    out, seen = [], set()
    while len(out) < n:
        if rng.random() < 0.1:
            number = "+999" + "".join(rng.choice("0123456789") for _ in range(9))
        else:
            region = rng.choice(regions)
            ex = (phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
                  or phonenumbers.example_number(region))
            nsn = phonenumbers.national_significant_number(ex)
            k = max(1, min(4, len(nsn) - 3))
            number = f"+{ex.country_code}{nsn[:-k]}" + "".join(rng.choice("0123456789") for _ in range(k))
        if number not in seen:
            seen.add(number)
            out.append(number)
    return out


def build_cardinality_capture(path: Path) -> dict:
    rng = random.Random(20240611)
    callers = random_callers(rng, CARD_CALLS)
    agents = [f"RandUA-{rng.getrandbits(64):016x}/{rng.randint(1, 99)}.{rng.randint(0, 9)}" for _ in callers]
    call_ids = [f"{rng.getrandbits(128):032x}@{rng.getrandbits(32):08x}.example" for _ in callers]
    cap = Capture()
    up, down = (TRUNK_SIG, PLATFORM_SIG), (PLATFORM_SIG, TRUNK_SIG)
    for i, (number, agent, call_id) in enumerate(zip(callers, agents, call_ids)):
        t0 = 1.0 + i * 0.01
        d = Dialog(call_id, caller=TRUNK_SIG, callee=PLATFORM_SIG, from_tag=f"f{i}", from_user=number,
                   to_user=CARD_DEST)
        a_media = (TRUNK_MEDIA_IP, 10000 + 2 * i)
        b_media = (PLATFORM_MEDIA_IP, 20000 + 2 * i)
        ua = [("User-Agent", agent)]
        inv = d.invite(1, body=sdp(*a_media), extra=ua)
        msg_frame(cap, t0, *up, inv)
        msg_frame(cap, t0 + 0.05, *down, response(inv, 180, to_tag=f"t{i}"))
        msg_frame(cap, t0 + 0.1, *down, response(inv, 200, to_tag=f"t{i}", body=sdp(*b_media)))
        msg_frame(cap, t0 + 0.11, *up, d.request("ACK", 1, to_tag=f"t{i}", extra=ua))
        for k in range(10):
            cap.add(t0 + 0.12 + k * 0.02, udp_frame(a_media, b_media, rtp(100 + k, k * 160, 0x5000 + i)))
        bye = d.request("BYE", 2, to_tag=f"t{i}", extra=ua)
        msg_frame(cap, t0 + 0.4, *up, bye)
        msg_frame(cap, t0 + 0.42, *down, response(bye, 200))
    last_end = 1.0 + (CARD_CALLS - 1) * 0.01 + 0.42
    # the capture goes on well past the retention after the last call ended
    fillers(cap, 0.0, last_end + 4 * CARD_RETENTION_S)
    cap.write(path)
    return {"callers": callers, "agents": agents, "call_ids": call_ids}


def test_cardinality_is_bounded(tmp_path):
    truth = build_cardinality_capture(tmp_path / "card.pcap")
    cfg = tmp_path / "card.yml"
    cfg.write_text(CARD_CONFIG)
    w = start_warpsniff(tmp_path / "card.pcap", cfg, tmp_path, "warpsniff-card")
    try:
        r = fetch(w.base + "/metrics")
    finally:
        w.stop()
    assert r.status == 200
    text = r.text
    samples = parse_exposition(text)
    types = family_types(text)

    # label sets per family (a histogram's buckets, _sum and _count are one set; windows are views of one set)
    def family_of(name: str) -> str:
        if name in types:
            return name
        for suffix in ("_bucket", "_sum", "_count", "_created"):
            if name.endswith(suffix) and name[: -len(suffix)] in types:
                return name[: -len(suffix)]
        raise AssertionError(f"sample {name} belongs to no # TYPE'd family")

    sets: dict = {}
    for name, labels, _ in samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k not in ("le", "window")))
        sets.setdefault(family_of(name), set()).add(key)
    too_many = {f: len(s) for f, s in sets.items() if f not in PER_CALL_FAMILIES and len(s) > CARD_LIMIT + 1}
    assert not too_many, f"families over {CARD_LIMIT} + 1 label sets: {too_many}"
    per_call = {f: len(sets.get(f, ())) for f in PER_CALL_FAMILIES}
    assert per_call == dict.fromkeys(PER_CALL_FAMILIES, 0), \
        f"per-call series left {4 * CARD_RETENTION_S} s after every call ended (retention {CARD_RETENTION_S} s): {per_call}"

    # the exact folding of warp_call_attempts_total: the first 50 label sets in arrival order are kept
    keys = [(account_of(n), "carrier_a", "inbound", "TOLLFREE", country_of(CARD_DEST), country_of(n))
            for n in truth["callers"]]
    assert country_of(CARD_DEST) == "US"
    kept: list = []
    want: dict = {}
    folded = 0
    for k in keys:
        if k in want or len(kept) < CARD_LIMIT:
            if k not in want:
                kept.append(k)
            want[k] = want.get(k, 0) + 1
        else:
            folded += 1
    assert len(set(keys)) > CARD_LIMIT + 20, "the capture should need folding"
    other = ("other",) * 6
    want[other] = folded
    names = ("account", "trunk", "direction", "zone", "destination_country", "origination_country")
    got = {tuple(lbl[n] for n in names): v for name, lbl, v in samples if name == "warp_call_attempts_total"}
    assert sum(got.values()) == CARD_CALLS
    assert got == {k: float(v) for k, v in want.items()}, "warp_call_attempts_total differs from the expected folding"
    overflows = {lbl["metric"]: v for name, lbl, v in samples if name == "warpsniff_label_overflows_total"}
    assert overflows == {"warp_call_attempts_total": float(folded)}, overflows

    # outcomes stay exact (their label sets fit the limit)
    finished = sum(v for name, _, v in samples if name == "warp_call_finished_total")
    answered = sum(v for name, _, v in samples if name == "warp_call_answered_total")
    assert (finished, answered) == (CARD_CALLS, CARD_CALLS)

    # nothing read off the wire (numbers, user agents, Call-IDs) is a label value
    values = {v for _, lbl, _ in samples for v in lbl.values()}
    needles = set(truth["callers"]) | {n.lstrip("+") for n in truth["callers"]} | set(truth["agents"]) \
        | set(truth["call_ids"]) | {a.split("/")[0] for a in truth["agents"]}
    leaked = sorted((v, n) for v in values for n in needles if n in v)
    assert not leaked, f"wire values in label values: {leaked[:10]}"
    for agent in truth["agents"][:50]:
        assert agent not in text
    for number in truth["callers"][:200]:
        assert number not in text


# --------------------------------------------------------------------------
# 5. per-call series go away after the retention


EXPIRY_CONFIG = KPI_CONFIG.replace("metrics:\n", "metrics:\n  call_series_retention_seconds: 5\n")


def test_per_call_series_expire(tmp_path):
    early = Plan("early-ended@trunk", 1.0, [(0.5, 180)], (1.0, 200), duration=8.0, media_port=24000)  # ends 10 s
    late = Plan("late-ended@trunk", 20.0, [(0.5, 180)], (1.0, 200), duration=17.0, media_port=24100)  # ends 38 s
    end = 40.0
    cap = Capture()
    truth = {"rtp": {}}
    for p in (early, late):
        write_attempt(cap, p, truth)
    fillers(cap, 0.0, end)
    cap.write(tmp_path / "expiry.pcap")
    assert end - (early.t_invite + early.final[0] + early.duration) == 30.0
    assert end - (late.t_invite + late.final[0] + late.duration) == 2.0
    cfg = tmp_path / "expiry.yml"
    cfg.write_text(EXPIRY_CONFIG)
    w = start_warpsniff(tmp_path / "expiry.pcap", cfg, tmp_path, "warpsniff-expiry")
    try:
        r = fetch(w.base + "/metrics")
    finally:
        w.stop()
    assert r.status == 200
    samples = parse_exposition(r.text)

    def call_ids(family):
        return {lbl.get("call_id") for name, lbl, _ in samples if name == family}

    assert call_ids("warp_mos_score") == {late.call_id}
    assert call_ids("warp_rtp_jitter_ms") == {late.call_id}
    assert call_ids("warp_rtp_packet_loss_ratio") == {late.call_id}
    # the counters still hold both calls
    assert sum(v for name, _, v in samples if name == "warp_call_answered_total") == 2
    assert not [s for s in samples if s[0] == "warp_active_calls" and s[2]]


# --------------------------------------------------------------------------
# windows: attempts enter when they finish; the 5m window slides by whole minutes


def _window_capture(path: Path, end: float) -> dict:
    """Capture-relative times; T0 sits 20 s into a minute, so minute buckets
    start at relative 40, 100, ..., 340 s."""
    from sipgen import T0_NS

    assert (T0_NS // 10**9) % 60 == 20
    plans = [
        Plan("w-busy-early@trunk", 5.0, [(0.3, 180)], (1.0, 486)),              # finishes at 6 s (minute 0)
        Plan("w-answered@trunk", 35.0, [(0.3, 180)], (1.0, 200), duration=9.0),  # starts in minute 0, ends at 45 s
        Plan("w-busy-late@trunk", 41.0, [(0.3, 180)], (1.0, 486)),              # finishes at 42 s (minute 1)
    ]
    for i, p in enumerate(plans):
        p.media_port = 26000 + 10 * i
    cap = Capture()
    for p in plans:
        write_attempt(cap, p, {"rtp": {}})
    fillers(cap, 0.0, end)
    cap.add(end, udp_frame(("192.0.2.250", 53), ("192.0.2.251", 53), b"last"))
    cap.write(path)
    return {"plans": plans}


@pytest.mark.parametrize("end, asr_5m", [(338.5, 0.5), (341.5, None)], ids=["before-5m-edge", "after-5m-edge"])
def test_windows_slide_by_finish_time(tmp_path, end, asr_5m):
    """Minute 1 (relative 40-100 s) leaves the 5m window when minute 6 begins
    (relative 340 s); minute 0 left it a minute earlier. The answered call
    started in minute 0 but finished in minute 1, so it counts there."""
    _window_capture(tmp_path / "w.pcap", end)
    cfg = tmp_path / "w.yml"
    cfg.write_text(KPI_CONFIG)
    w = start_warpsniff(tmp_path / "w.pcap", cfg, tmp_path, "warpsniff-windows")
    try:
        r = fetch(w.base + "/metrics")
    finally:
        w.stop()
    samples = parse_exposition(r.text)
    asr = {lbl["window"]: v for name, lbl, v in samples if name == "warp_asr_ratio"}
    acd = {lbl["window"]: v for name, lbl, v in samples if name == "warp_acd_seconds"}
    want = {"1h": 1 / 3, "24h": 1 / 3}
    want_acd = {"1h": 9.0, "24h": 9.0}
    if asr_5m is not None:
        want["5m"] = asr_5m
        want_acd["5m"] = 9.0
    assert asr.keys() == want.keys() and all(close(asr[k], want[k]) for k in want), asr
    assert acd.keys() == want_acd.keys() and all(close(acd[k], want_acd[k]) for k in want_acd), acd
    ner = [v for name, _, v in samples if name == "warp_ner_ratio"]
    assert len(ner) == 1 and close(ner[0], 1.0)          # answered, 486 x2: all NER successes
    # the counters are not windowed
    assert [v for name, _, v in samples if name == "warp_call_finished_total"] == [3.0]


def test_ended_calls_keep_at_most_max_label_sets_per_call_series():
    """A burst of short calls: within their retention, at most
    limits.max_label_sets ended calls keep per-call series, the newest; the
    rest are let go early and counted."""
    from warpsniff.labels import CallLabels, LabelConfig
    from warpsniff.metrics.aggregate import CallAggregator, CallMedia
    from warpsniff.sip.calls import Call

    agg = CallAggregator(LabelConfig(max_label_sets=100))
    for ref in range(1, 501):
        call = Call(call_ref=ref, call_id=f"burst-{ref}", from_uri=None, to_uri=None, from_tag="a",
                    invite_ts=float(ref), invite_cseq=1, caller=(bytes(16), 5060))
        call.labels = CallLabels()
        call.answer_ts, call.end_ts, call.final_code, call.reason = ref + 1.0, ref + 3.0, 200, "normal"
        media = CallMedia(account="unknown", call_id=call.call_id, streams={("outbound", "PCMU"): [1, 100, 4.0]},
                          mos=4.1)
        agg.call_finished(call, media)
    agg.expire_media(504.0)   # every call ended within the 300 s retention
    assert list(agg.media) == list(range(401, 501))
    assert agg.call_series_dropped == 400
