#!/usr/bin/env python3
"""Writes the recording rules and their promtool unit tests.

    python3 deploy/prometheus/gen_recording.py          # rewrite the files
    python3 deploy/prometheus/gen_recording.py --check  # exit 1 if they are stale

The same rules exist for three windows (5m, 1h, 1d: the seed's aggregate
tiers), so they are generated rather than copied by hand, and so are the
unit tests that check every recorded series' value:

- rules/warp-recording.yml
- tests/recording.test.yml        5m and 1h rules, input every minute
- tests/recording-daily.test.yml  1d rules, input every hour

Every rule first collapses the replicas of an HA sniffer pair
(`max without (replica)`: the two sniffers of a pair see the same traffic)
and then sums across sniffers. Ratios are recomputed from summed counters,
never averaged: see docs/deploy.md.

The expected values in the tests come from the plain arithmetic below on
exact integers (or rates that are whole numbers per second), so they are
bit-for-bit what Prometheus computes; histogram quantiles follow Prometheus'
bucketQuantile step by step for the same reason.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # deploy/, for generated.py
from generated import write_or_check  # noqa: E402

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules" / "warp-recording.yml"
TESTS = HERE / "tests" / "recording.test.yml"
TESTS_DAILY = HERE / "tests" / "recording-daily.test.yml"

WINDOWS = ("5m", "1h", "1d")
MINUTES = {"5m": 5, "1h": 60, "1d": 1440}
DEDUP = "max without (replica)"
CALL = "account, trunk, provider, zone"
CALL_LEVEL = "account_trunk_provider_zone"


def rules_for(w: str) -> list:
    """(record, expr, comment) for one window."""
    out = []

    def add(record, expr, comment=None):
        out.append((record, expr, comment))

    def inc(metric, by, matchers=""):
        return f"sum by ({by}) ({DEDUP} (increase({metric}{matchers}[{w}])))"

    def rate(metric, by, matchers=""):
        return f"sum by ({by}) ({DEDUP} (rate({metric}{matchers}[{w}])))"

    L = CALL_LEVEL
    add(f"{L}:warp_call_finished:increase{w}", inc("warp_call_finished_total", CALL),
        "Call outcomes (ASR/NER/ACD inputs) per account, trunk, provider, zone.")
    add(f"{L}:warp_call_answered:increase{w}", inc("warp_call_answered_total", CALL))
    add(f"{L}:warp_call_ner_success:increase{w}", inc("warp_call_ner_attempts_total", CALL))
    add(f"{L}:warp_call_answered_duration_seconds:increase{w}",
        inc("warp_call_answered_duration_seconds_total", CALL))
    add(f"{L}:warp_asr:ratio{w}",
        f"{L}:warp_call_answered:increase{w}\n  / ({L}:warp_call_finished:increase{w} > 0)",
        "Ratios from the summed counters; absent (not NaN) when nothing finished.")
    add(f"{L}:warp_ner:ratio{w}",
        f"{L}:warp_call_ner_success:increase{w}\n  / ({L}:warp_call_finished:increase{w} > 0)")
    add(f"{L}:warp_acd_seconds:mean{w}",
        f"{L}:warp_call_answered_duration_seconds:increase{w}\n  / ({L}:warp_call_answered:increase{w} > 0)")
    add(f"account:warp_call_finished:increase{w}", f"sum by (account) ({L}:warp_call_finished:increase{w})",
        "Per account.")
    add(f"account:warp_call_answered:increase{w}", f"sum by (account) ({L}:warp_call_answered:increase{w})")
    add(f"account:warp_call_ner_success:increase{w}", f"sum by (account) ({L}:warp_call_ner_success:increase{w})")
    add(f"account:warp_call_answered_duration_seconds:increase{w}",
        f"sum by (account) ({L}:warp_call_answered_duration_seconds:increase{w})")
    add(f"account:warp_asr:ratio{w}",
        f"account:warp_call_answered:increase{w} / (account:warp_call_finished:increase{w} > 0)")
    add(f"account:warp_ner:ratio{w}",
        f"account:warp_call_ner_success:increase{w} / (account:warp_call_finished:increase{w} > 0)")
    add(f"account:warp_acd_seconds:mean{w}",
        f"account:warp_call_answered_duration_seconds:increase{w} / (account:warp_call_answered:increase{w} > 0)")
    add(f"account_trunk_direction_zone:warp_call_attempts:increase{w}",
        inc("warp_call_attempts_total", "account, trunk, direction, zone"), "Call attempts (volume).")
    add(f"account_trunk:warp_call_ended_answered:increase{w}",
        inc("warp_call_duration_seconds_count", "account, trunk", '{status=~"completed|short"}'),
        "Short-call ratio: answered calls under each threshold / answered calls that ended.")
    add(f"account_trunk_threshold_seconds:warp_short_calls:increase{w}",
        inc("warp_short_calls_total", "account, trunk, threshold_seconds"))
    add(f"account_trunk_threshold_seconds:warp_short_call:ratio{w}",
        f"account_trunk_threshold_seconds:warp_short_calls:increase{w}\n"
        f"  / on (account, trunk) group_left ()\n"
        f"  (account_trunk:warp_call_ended_answered:increase{w} > 0)")
    add(f"account_trunk_reason:warp_call_terminations:increase{w}",
        inc("warp_call_terminations_total", "account, trunk, reason"), "Terminations by reason and by SIP class.")
    add(f"account_trunk_sip_class:warp_call_terminations:increase{w}",
        f"sum by (account, trunk, sip_class) (\n"
        f"  label_replace({DEDUP} (increase(warp_call_terminations_total[{w}])),\n"
        f"                \"sip_class\", \"${{1}}xx\", \"sip_code\", \"([1-6])[0-9][0-9]\"))")
    add(f"{L}:warp_pdd_milliseconds_bucket:rate{w}", rate("warp_pdd_milliseconds_bucket", CALL + ", le"),
        "Post-dial delay: bucket rates (re-aggregatable) and quantiles; NaN quantiles dropped.")
    for q in ("50", "95", "99"):
        add(f"{L}:warp_pdd_milliseconds:p{q}_{w}",
            f"histogram_quantile(0.{q}, {L}:warp_pdd_milliseconds_bucket:rate{w}) >= 0")
    add(f"{L}:warp_pdd_milliseconds:mean{w}",
        f"{rate('warp_pdd_milliseconds_sum', CALL)}\n  / ({rate('warp_pdd_milliseconds_count', CALL)} > 0)")
    if w == "5m":
        add("account_trunk_direction:warp_active_calls:sum",
            f"sum by (account, trunk, direction) ({DEDUP} (warp_active_calls))",
            "Active calls now (the window rules below take the peak of this series).")
        add("account:warp_active_calls:sum", "sum by (account) (account_trunk_direction:warp_active_calls:sum)")
    add(f"account_trunk_direction:warp_active_calls:max{w}",
        f"max_over_time(account_trunk_direction:warp_active_calls:sum[{w}])",
        "Peak concurrent calls in the window.")
    add(f"account:warp_active_calls:max{w}", f"max_over_time(account:warp_active_calls:sum[{w}])")
    add(f"account_trunk_zone:warp_call_mos_count:increase{w}", inc("warp_call_mos_count", "account, trunk, zone"),
        "Media quality of finished calls.")
    add(f"account_trunk_zone:warp_call_mos:mean{w}",
        f"{inc('warp_call_mos_sum', 'account, trunk, zone')}\n"
        f"  / (account_trunk_zone:warp_call_mos_count:increase{w} > 0)")
    add(f"account_trunk_zone:warp_rtp_jitter_seconds:p95_{w}",
        f"histogram_quantile(0.95, {rate('warp_rtp_jitter_seconds_bucket', 'account, trunk, zone, le')}) >= 0")
    add(f"account_trunk_zone_billable:warp_minutes_used:increase{w}",
        inc("warp_minutes_used_total", "account, trunk, zone, billable"), "Usage.")
    add(f"account_service_zone:warp_spend_cents:rate{w}",
        f"sum by (account, service, zone) (rate(warp_spend_cents_total[{w}]))",
        "Spend (exported by the billing system, not by warpsniff): cents per second.")
    add(f"account:warp_spend_cents:rate{w}", f"sum by (account) (account_service_zone:warp_spend_cents:rate{w})")
    add(f"account:warp_spend_cents:increase{w}", f"sum by (account) (increase(warp_spend_cents_total[{w}]))")
    return out


HEADER = """\
# GENERATED by deploy/prometheus/gen_recording.py: edit that script, then run it.
#
# Pre-aggregated versions of the seed's common queries (ASR, ACD, NER, short-call ratio,
# PDD quantiles, spend rate, active calls, volume, MOS, minutes) per account, trunk,
# provider and zone, over three windows: the seed's aggregate tiers (5m kept 30d, 1h kept
# 90d, 1d kept 365d; the long-term store routes each series by its name's suffix, see
# deploy/longterm/). Names follow level:metric:operation.
#
# Every rule first collapses the two sniffers of an HA pair, which see the same traffic
# (`max without (replica)`; the scrape config gives both the same `instance`), then sums
# across sniffers. Ratios are recomputed from the summed counters: ratios of different
# sniffers cannot be averaged (docs/deploy.md).
"""


def render_rules() -> str:
    lines = [HEADER, "groups:"]
    for w in WINDOWS:
        lines.append(f"  - name: warp-recording-{w}")
        if w == "1d":
            lines.append("    # daily aggregates change slowly: evaluated hourly")
            lines.append("    interval: 1h")
        lines.append("    rules:")
        for record, expr, comment in rules_for(w):
            if comment:
                lines.append(f"      # {comment}")
            lines.append(f"      - record: {record}")
            lines.append("        expr: |-")
            for el in expr.split("\n"):
                lines.append(f"          {el}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# unit tests

SPAN1 = [{"job": "warpsniff", "instance": "span1", "sniffer": "span1", "replica": r} for r in ("a", "b")]
SPAN2 = [{"job": "warpsniff", "instance": "span2:10780", "sniffer": "span2:10780"}]
BILLING = [{"job": "billing", "instance": "billing:9400"}]

ACME = {"account": "acme", "trunk": "t1", "provider": "p1", "zone": "INTL"}
ACME3 = {"account": "acme", "trunk": "t3", "provider": "p2", "zone": "LOCAL"}
BETA = {"account": "beta", "trunk": "t2", "provider": "p2", "zone": "LOCAL"}

# (metric, labels, {span: increment per minute}); span1 applies to both replicas
COUNTERS = [
    ("warp_call_finished_total", ACME, {"span1": 8, "span2": 8}),
    ("warp_call_answered_total", ACME, {"span1": 4, "span2": 4}),
    ("warp_call_ner_attempts_total", ACME, {"span1": 6, "span2": 4}),
    ("warp_call_answered_duration_seconds_total", ACME, {"span1": 240, "span2": 120}),
    ("warp_call_finished_total", ACME3, {"span2": 8}),
    ("warp_call_answered_total", ACME3, {"span2": 0}),
    ("warp_call_ner_attempts_total", ACME3, {"span2": 8}),
    ("warp_call_answered_duration_seconds_total", ACME3, {"span2": 0}),
    ("warp_call_finished_total", BETA, {"span1": 4}),
    ("warp_call_answered_total", BETA, {"span1": 4}),
    ("warp_call_ner_attempts_total", BETA, {"span1": 4}),
    ("warp_call_answered_duration_seconds_total", BETA, {"span1": 480}),
]
ATTEMPT_BASE = {"account": "acme", "trunk": "t1", "direction": "outbound", "zone": "INTL", "origination_country": "US"}
COUNTERS += [
    ("warp_call_attempts_total", {**ATTEMPT_BASE, "destination_country": "GB"}, {"span1": 10, "span2": 10}),
    ("warp_call_attempts_total", {**ATTEMPT_BASE, "destination_country": "FR"}, {"span2": 5}),
]
DUR = {"account": "acme", "trunk": "t1", "direction": "outbound", "zone": "INTL"}
COUNTERS += [
    ("warp_call_duration_seconds_count", {**DUR, "status": "short"}, {"span1": 1, "span2": 1}),
    ("warp_call_duration_seconds_count", {**DUR, "status": "completed"}, {"span1": 3, "span2": 3}),
    ("warp_call_duration_seconds_count", {**DUR, "status": "failed"}, {"span1": 4, "span2": 4}),
    ("warp_short_calls_total", {"account": "acme", "trunk": "t1", "threshold_seconds": "6"}, {"span1": 1, "span2": 1}),
    ("warp_short_calls_total", {"account": "acme", "trunk": "t1", "threshold_seconds": "30"}, {"span1": 2, "span2": 4}),
]
TERM = {"account": "acme", "trunk": "t1"}
COUNTERS += [
    ("warp_call_terminations_total", {**TERM, "reason": "normal", "sip_code": "200"}, {"span1": 4, "span2": 4}),
    ("warp_call_terminations_total", {**TERM, "reason": "busy", "sip_code": "486"}, {"span1": 2}),
    ("warp_call_terminations_total", {**TERM, "reason": "failed", "sip_code": "503"}, {"span1": 2, "span2": 4}),
    ("warp_call_terminations_total", {"account": "acme", "trunk": "t3", "reason": "busy", "sip_code": "486"},
     {"span2": 8}),
]
# rate-based families: increments are multiples of 60 per minute (whole numbers per second)
PDD_LE = [("500", 60), ("1000", 180), ("2000", 240), ("5000", 300), ("+Inf", 300)]
COUNTERS += [("warp_pdd_milliseconds_bucket", {**ACME, "le": le}, {"span1": n, "span2": n}) for le, n in PDD_LE]
COUNTERS += [
    ("warp_pdd_milliseconds_sum", ACME, {"span1": 300 * 900, "span2": 300 * 900}),
    ("warp_pdd_milliseconds_count", ACME, {"span1": 300, "span2": 300}),
]
MEDIA = {"account": "acme", "trunk": "t1", "zone": "INTL"}
JIT_LE = [("0.005", 120), ("0.01", 240), ("0.02", 300), ("+Inf", 300)]
COUNTERS += [("warp_rtp_jitter_seconds_bucket", {**MEDIA, "le": le}, {"span1": n, "span2": n}) for le, n in JIT_LE]
COUNTERS += [
    ("warp_call_mos_sum", MEDIA, {"span1": 16, "span2": 12}),
    ("warp_call_mos_count", MEDIA, {"span1": 4, "span2": 4}),
    ("warp_minutes_used_total", {**MEDIA, "billable": "true"}, {"span1": 4, "span2": 2}),
    ("warp_minutes_used_total", {**MEDIA, "billable": "false"}, {"span2": 1}),
    ("warp_spend_cents_total", {"account": "acme", "service": "voice", "zone": "INTL"}, {"billing": 120}),
    ("warp_spend_cents_total", {"account": "acme", "service": "sms", "zone": "INTL"}, {"billing": 60}),
]


def _fmt_labels(labels: dict) -> str:
    return ",".join(f'{k}="{v}"' for k, v in labels.items())


def _sel(name: str, labels: dict) -> str:
    return f"{name}{{{_fmt_labels(labels)}}}"


def _sources(span: str) -> list:
    return {"span1": SPAN1, "span2": SPAN2, "billing": BILLING}[span]


def input_series(step_minutes: int, steps: int) -> list:
    """(series, values) for promtool; one sample per step."""
    out = []
    for metric, labels, per_span in COUNTERS:
        for span, per_min in per_span.items():
            for i, target in enumerate(_sources(span)):
                inc = per_min * step_minutes
                out.append((_sel(metric, {**target, **labels}), f"0+{inc}x{steps}"))
    # active calls: replica a of span1 one above replica b (max wins), rising to a peak at
    # step `peak` then falling; span2 flat at 10. The peak lies strictly inside every window
    # checked, so the peak rules never depend on the order promtool evaluates groups in
    # (max_over_time reads the :sum series another group records).
    g = {"account": "acme", "trunk": "t1", "direction": "outbound"}
    peak = PEAK[step_minutes]
    out.append((_sel("warp_active_calls", {**SPAN1[0], **g}), f"1+1x{peak} {peak}-1x{steps - peak}"))
    out.append((_sel("warp_active_calls", {**SPAN1[1], **g}), f"0+1x{peak} {peak - 1}-1x{steps - peak}"))
    out.append((_sel("warp_active_calls", {**SPAN2[0], **g}), f"10+0x{steps}"))
    return out


PEAK = {1: 73, 60: 25}   # step of the active-calls peak: minute file, hourly file


def active_calls(step: int, peak: int) -> int:
    """Deduplicated active calls at a step: replica a's profile plus span2's 10."""
    a = 1 + step if step <= peak else 2 * peak + 1 - step
    return a + 10


def total(metric: str, labels: dict) -> int:
    """Summed per-minute increment over sniffers (span1 once: replicas collapsed)."""
    n = 0
    for m, lb, per_span in COUNTERS:
        if m == metric and all(lb.get(k) == v for k, v in labels.items()):
            n += sum(per_span.values())
    return n


def bucket_quantile(q: float, buckets: list) -> float:
    """Prometheus' bucketQuantile (promql/quantile.go), same float operations."""
    buckets = sorted(buckets, key=lambda b: b[0])
    rank = q * buckets[-1][1]
    b = next(i for i in range(len(buckets) - 1) if buckets[i][1] >= rank) \
        if any(buckets[i][1] >= rank for i in range(len(buckets) - 1)) else len(buckets) - 1
    if b == len(buckets) - 1:
        return buckets[-2][0]
    bucket_start, bucket_end, count = 0.0, buckets[b][0], buckets[b][1]
    if b > 0:
        bucket_start = buckets[b - 1][0]
        count -= buckets[b - 1][1]
        rank -= buckets[b - 1][1]
    return bucket_start + (bucket_end - bucket_start) * (rank / count)


def expectations(w: str, eval_minutes: int) -> list:
    """(expr, [(labels, value)]) for every record of window w."""
    m = MINUTES[w]
    secs = m * 60.0
    L = CALL_LEVEL
    exp = {}

    def rec(name, rows):
        exp[name] = rows

    def fine(metric):
        return [(ACME, total(metric, ACME) * m), (ACME3, total(metric, ACME3) * m), (BETA, total(metric, BETA) * m)]

    fin, ans = fine("warp_call_finished_total"), fine("warp_call_answered_total")
    ner, dur = fine("warp_call_ner_attempts_total"), fine("warp_call_answered_duration_seconds_total")
    rec(f"{L}:warp_call_finished:increase{w}", fin)
    rec(f"{L}:warp_call_answered:increase{w}", ans)
    rec(f"{L}:warp_call_ner_success:increase{w}", ner)
    rec(f"{L}:warp_call_answered_duration_seconds:increase{w}", dur)
    rec(f"{L}:warp_asr:ratio{w}", [(lb, a / f) for (lb, f), (_, a) in zip(fin, ans) if f > 0])
    rec(f"{L}:warp_ner:ratio{w}", [(lb, n / f) for (lb, f), (_, n) in zip(fin, ner) if f > 0])
    rec(f"{L}:warp_acd_seconds:mean{w}", [(lb, d / a) for (lb, a), (_, d) in zip(ans, dur) if a > 0])

    def per_account(rows):
        acc = {}
        for lb, v in rows:
            acc[lb["account"]] = acc.get(lb["account"], 0) + v
        return acc

    fa, aa, na, da = per_account(fin), per_account(ans), per_account(ner), per_account(dur)
    rec(f"account:warp_call_finished:increase{w}", [({"account": k}, v) for k, v in fa.items()])
    rec(f"account:warp_call_answered:increase{w}", [({"account": k}, v) for k, v in aa.items()])
    rec(f"account:warp_call_ner_success:increase{w}", [({"account": k}, v) for k, v in na.items()])
    rec(f"account:warp_call_answered_duration_seconds:increase{w}", [({"account": k}, v) for k, v in da.items()])
    rec(f"account:warp_asr:ratio{w}", [({"account": k}, aa[k] / fa[k]) for k in fa if fa[k] > 0])
    rec(f"account:warp_ner:ratio{w}", [({"account": k}, na[k] / fa[k]) for k in fa if fa[k] > 0])
    rec(f"account:warp_acd_seconds:mean{w}", [({"account": k}, da[k] / aa[k]) for k in aa if aa[k] > 0])

    att = {"account": "acme", "trunk": "t1", "direction": "outbound", "zone": "INTL"}
    rec(f"account_trunk_direction_zone:warp_call_attempts:increase{w}",
        [(att, total("warp_call_attempts_total", att) * m)])
    ended = (total("warp_call_duration_seconds_count", {**DUR, "status": "short"})
             + total("warp_call_duration_seconds_count", {**DUR, "status": "completed"})) * m
    at = {"account": "acme", "trunk": "t1"}
    rec(f"account_trunk:warp_call_ended_answered:increase{w}", [(at, ended)])
    shorts = [({**at, "threshold_seconds": t}, total("warp_short_calls_total", {**at, "threshold_seconds": t}) * m)
              for t in ("6", "30")]
    rec(f"account_trunk_threshold_seconds:warp_short_calls:increase{w}", shorts)
    rec(f"account_trunk_threshold_seconds:warp_short_call:ratio{w}", [(lb, v / ended) for lb, v in shorts])
    reasons = []
    for acct, trunk in (("acme", "t1"), ("acme", "t3")):
        for reason in ("normal", "busy", "failed"):
            n = total("warp_call_terminations_total", {"account": acct, "trunk": trunk, "reason": reason})
            if any(mm == "warp_call_terminations_total" and lb["trunk"] == trunk and lb["reason"] == reason
                   for mm, lb, _ in COUNTERS):
                reasons.append(({"account": acct, "trunk": trunk, "reason": reason}, n * m))
    rec(f"account_trunk_reason:warp_call_terminations:increase{w}", reasons)
    classes = []
    for acct, trunk in (("acme", "t1"), ("acme", "t3")):
        by_class = {}
        for mm, lb, per_span in COUNTERS:
            if mm == "warp_call_terminations_total" and lb["trunk"] == trunk:
                cls = lb["sip_code"][0] + "xx"
                by_class[cls] = by_class.get(cls, 0) + sum(per_span.values()) * m
        classes += [({"account": acct, "trunk": trunk, "sip_class": c}, v) for c, v in by_class.items()]
    rec(f"account_trunk_sip_class:warp_call_terminations:increase{w}", classes)

    pdd_rates = [(le, total("warp_pdd_milliseconds_bucket", {**ACME, "le": le}) * m / secs) for le, _ in PDD_LE]
    rec(f"{L}:warp_pdd_milliseconds_bucket:rate{w}", [({**ACME, "le": le}, r) for le, r in pdd_rates])
    buckets = [(float(le), r) for le, r in pdd_rates]
    for q in ("50", "95", "99"):
        rec(f"{L}:warp_pdd_milliseconds:p{q}_{w}", [(ACME, bucket_quantile(float("0." + q), buckets))])
    s = total("warp_pdd_milliseconds_sum", ACME) * m / secs
    c = total("warp_pdd_milliseconds_count", ACME) * m / secs
    rec(f"{L}:warp_pdd_milliseconds:mean{w}", [(ACME, s / c)])

    # active calls now, and their peak over the window
    step_minutes = 60 if w == "1d" else 1
    peak = PEAK[step_minutes]
    e, width = eval_minutes // step_minutes, m // step_minutes
    assert e - width < peak < e, "the peak must lie strictly inside the window"
    now = active_calls(e, peak)
    top = max(active_calls(i, peak) for i in range(e - width, e + 1))
    g = {"account": "acme", "trunk": "t1", "direction": "outbound"}
    if w == "5m":
        rec("account_trunk_direction:warp_active_calls:sum", [(g, now)])
        rec("account:warp_active_calls:sum", [({"account": "acme"}, now)])
    rec(f"account_trunk_direction:warp_active_calls:max{w}", [(g, top)])
    rec(f"account:warp_active_calls:max{w}", [({"account": "acme"}, top)])

    mos_n = total("warp_call_mos_count", MEDIA) * m
    rec(f"account_trunk_zone:warp_call_mos_count:increase{w}", [(MEDIA, mos_n)])
    rec(f"account_trunk_zone:warp_call_mos:mean{w}", [(MEDIA, total("warp_call_mos_sum", MEDIA) * m / mos_n)])
    jit = [(float(le), total("warp_rtp_jitter_seconds_bucket", {**MEDIA, "le": le}) * m / secs)
           for le, _ in JIT_LE]
    rec(f"account_trunk_zone:warp_rtp_jitter_seconds:p95_{w}", [(MEDIA, bucket_quantile(0.95, jit))])
    rec(f"account_trunk_zone_billable:warp_minutes_used:increase{w}",
        [({**MEDIA, "billable": b}, total("warp_minutes_used_total", {**MEDIA, "billable": b}) * m)
         for b in ("true", "false")])
    spend = [({"account": "acme", "service": sv, "zone": "INTL"},
              total("warp_spend_cents_total", {"account": "acme", "service": sv}) * m / secs)
             for sv in ("voice", "sms")]
    rec(f"account_service_zone:warp_spend_cents:rate{w}", spend)
    rec(f"account:warp_spend_cents:rate{w}", [({"account": "acme"}, sum(v for _, v in spend))])
    rec(f"account:warp_spend_cents:increase{w}",
        [({"account": "acme"}, total("warp_spend_cents_total", {"account": "acme"}) * m)])
    names = [r for r, _, _ in rules_for(w)]
    missing = set(names) ^ set(exp)
    if missing:
        raise SystemExit(f"expectations and rules differ for {w}: {sorted(missing)}")
    return [(name, exp[name]) for name in names]


def _value(v) -> str:
    if isinstance(v, int) or float(v).is_integer():
        return str(int(v))
    return repr(float(v))


def render_tests(windows, step_minutes: int, steps: int, eval_minutes: int, title: str) -> str:
    lines = [
        "# GENERATED by deploy/prometheus/gen_recording.py: edit that script, then run it.",
        f"# {title}",
        "# Input: an HA pair of sniffers (span1, replicas a and b, identical) and a second sniffer",
        "# (span2) seeing other calls; a billing exporter for spend. Every recorded series is",
        "# checked: span1 must count once (deduplicated), span2 added to it.",
        "rule_files:",
        "  - ../rules/warp-recording.yml",
        f"evaluation_interval: {step_minutes}m",
        "tests:",
        f"  - interval: {step_minutes}m",
        "    input_series:",
    ]
    for series, values in input_series(step_minutes, steps):
        lines.append(f"      - series: '{series}'")
        lines.append(f"        values: '{values}'")
    lines.append("    promql_expr_test:")
    for w in windows:
        for name, rows in expectations(w, eval_minutes):
            lines.append(f"      - expr: {name}")
            lines.append(f"        eval_time: {eval_minutes}m")
            lines.append("        exp_samples:")
            for labels, value in sorted(rows, key=lambda r: sorted(r[0].items())):
                lines.append(f"          - labels: '{_sel(name, labels)}'")
                lines.append(f"            value: {_value(value)}")
    return "\n".join(lines) + "\n"


def outputs() -> dict:
    return {
        RULES: render_rules(),
        TESTS: render_tests(("5m", "1h"), 1, 90, 75, "5m and 1h windows, one sample a minute, checked at 75m."),
        TESTS_DAILY: render_tests(("1d",), 60, 30, 27 * 60, "1d window, one sample an hour, checked at 27h."),
    }


def main(argv=None) -> int:
    return write_or_check(outputs(), __doc__.splitlines()[0], "deploy/prometheus/gen_recording.py", argv)


if __name__ == "__main__":
    sys.exit(main())
