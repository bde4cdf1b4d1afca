"""CallAggregator (its tables in the engine: ext/metrics/aggregate.pyx)
against two oracles fed the same random streams of call events:

- a reference model written here from the metric definitions
  (docs/metrics.md): plain dicts and lists, every event counted the obvious
  way. The stream has more label sets than `limits.max_label_sets` (so the
  guard folds into "other"), label sets given by several distinct but equal
  CallLabels objects, answered, short, failed, interrupted and timed-out
  calls, odd SIP codes, media with and without streams and MOS, and end
  times out of order (ring buckets reused). Every table is compared with ==,
  floats included (the model adds them in event order), and in insertion
  order (it is the scrape's order).
- the Python aggregator, media join and collector this one replaced
  (tests/agg_reference.py), with media joins made of random stream records
  (CallMediaPass): what a scrape shows must be the same text."""
from __future__ import annotations

import math
import random

import pytest

import warpsniff.metrics.aggregate as aggregate
from warpsniff.labels import CallLabels, LabelConfig
from warpsniff.metrics.aggregate import CallAggregator, CallMedia, WindowedSums
from warpsniff.sip.calls import Call

DURATION = (1, 3, 6, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
PDD = (100, 250, 500, 1000, 2000, 3000, 5000, 8000, 12000, 20000, 30000)
JITTER = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5)
MOS = (1.0, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.3, 4.4, 4.5)
REASONS = {"normal", "busy", "no_answer", "cancelled", "failed", "timeout"}
RINGS = {"5m": (60.0, 5), "1h": (300.0, 12), "24h": (3600.0, 24)}


class Model:
    """The reference: one method per event, following the definitions."""

    def __init__(self, limit, thresholds, ner_codes, min_billable):
        self.limit, self.thresholds = limit, thresholds
        self.ner_codes, self.min_billable = ner_codes, min_billable
        self.tables = {name: {} for name in ("attempts", "durations", "pdd", "terminations", "minutes",
                                             "outcomes", "short_calls", "jitter", "mos")}
        self.overflows = {}
        self.buckets = {}      # key4 -> window -> slot -> [epoch, [field sums]]
        self.media = []        # [call_ref, media], oldest first
        self.dropped = 0

    def key(self, metric, table, key):
        if key in self.tables[table] or len(self.tables[table]) < self.limit:
            return key
        self.overflows[metric] = self.overflows.get(metric, 0) + 1
        return tuple("other" for _ in key)

    def count(self, metric, table, key, amount=1):
        key = self.key(metric, table, key)
        self.tables[table][key] = self.tables[table].get(key, 0) + amount

    def observe(self, metric, table, key, bounds, value):
        key = self.key(metric, table, key)
        counts, total = self.tables[table].get(key, ([0] * (len(bounds) + 1), 0.0))
        bucket = len(bounds)          # +Inf
        for i, bound in enumerate(bounds):
            if value <= bound:
                bucket = i
                break
        counts = list(counts)
        counts[bucket] += 1
        self.tables[table][key] = (counts, total + value)

    def attempt(self, lb):
        self.count("warp_call_attempts_total", "attempts", (lb.account, lb.trunk, lb.direction, lb.zone,
                                                            lb.destination_country, lb.origination_country))

    def pdd(self, lb, ms):
        self.observe("warp_pdd_milliseconds", "pdd", (lb.account, lb.trunk, lb.provider, lb.zone), PDD, ms)

    def finished(self, c, media):
        lb = c["labels"]
        ended = c["end"] if c["end"] is not None else c["last_sip"]
        if c["reason"] == "interrupted":
            if media is not None:
                self.remember(c["ref"], media, ended)
            return
        answered = c["answer"] is not None
        duration = None
        if answered and c["end"] is not None:
            duration = max(0.0, c["end"] - c["answer"])
        if not answered:
            status = "failed"
        elif duration is not None and duration < self.thresholds[0]:
            status = "short"
        else:
            status = "completed"
        self.observe("warp_call_duration_seconds", "durations", (lb.account, lb.trunk, lb.direction, lb.zone, status),
                     DURATION, duration if duration is not None else 0.0)
        code = c["code"]
        if c["reason"] in REASONS:
            label = str(code) if code is not None and 100 <= code <= 699 else "unknown"
            self.count("warp_call_terminations_total", "terminations", (lb.account, lb.trunk, c["reason"], label))
        ner = answered or (code is not None and (code in self.ner_codes or (code == 487 and c["ringing"])))
        timed = duration is not None
        seconds = duration if duration is not None else 0.0
        key4 = self.key("warp_asr_ratio", "outcomes", (lb.account, lb.trunk, lb.provider, lb.zone))
        n, a, e, s, t = self.tables["outcomes"].get(key4, (0, 0, 0, 0.0, 0))
        self.tables["outcomes"][key4] = (n + 1, a + answered, e + ner, s + seconds, t + timed)
        shorts = [1 if timed and duration < th else 0 for th in self.thresholds]
        for th, short in zip(self.thresholds, shorts):
            if short:
                self.count("warp_short_calls_total", "short_calls", (lb.account, lb.trunk, str(th)))
        values = [1, int(answered), int(ner), seconds, int(timed)] + shorts
        for window, (width, slots) in RINGS.items():
            epoch = int(ended // width)
            ring = self.buckets.setdefault(key4, {}).setdefault(window, {})
            bucket = ring.get(epoch % slots)
            if bucket is None or bucket[0] != epoch:      # a bucket keeps only its latest epoch
                bucket = ring[epoch % slots] = [epoch, [0.0] * len(values)]
            for k, v in enumerate(values):
                bucket[1][k] = bucket[1][k] + v
        if timed:
            billable = "true" if duration >= self.min_billable else "false"
            self.count("warp_minutes_used_total", "minutes", (lb.account, lb.trunk, lb.zone, billable), duration / 60.0)
        if media is not None:
            for lost, expected, jitter_ms in media.streams.values():
                self.observe("warp_rtp_jitter_seconds", "jitter", (lb.account, lb.trunk, lb.zone), JITTER,
                             jitter_ms / 1000.0)
            if media.mos is not None:
                self.observe("warp_call_mos", "mos", (lb.account, lb.trunk, lb.zone), MOS, media.mos)
            self.remember(c["ref"], media, ended)

    def remember(self, ref, media, ended):
        self.media = [m for m in self.media if m[0] != ref] + [[ref, media, ended]]
        if len(self.media) > self.limit:
            self.media.pop(0)
            self.dropped += 1

    def window_total(self, key4, window, now):
        """Sum over the ring's buckets inside the window, slot by slot."""
        width, slots = RINGS[window]
        current = int(now // width)
        total = None
        for slot in range(slots):
            bucket = self.buckets.get(key4, {}).get(window, {}).get(slot)
            if bucket is not None and current - slots < bucket[0] <= current:
                total = list(bucket[1]) if total is None else [x + y for x, y in zip(total, bucket[1])]
        return total if total is not None else [0.0] * (5 + len(self.thresholds))


def _stream(seed, n_sets, n_calls):
    """(kind, call facts, media) events in time order; a call's facts are
    plain values, turned into a Call by _call()."""
    rng = random.Random(seed)
    values = [CallLabels(account=f"acc{i % 7}", trunk=f"trunk{i % 5}", provider=rng.choice(["p1", "p2", "unknown"]),
                         zone=rng.choice(["LOCAL", "INTL", "TOLLFREE"]), direction=rng.choice(["inbound", "outbound"]),
                         destination_country=rng.choice(["US", "GB", "unknown"]),
                         origination_country=rng.choice(["US", "DE"]))
              for i in range(n_sets)]
    # a few label sets handed out as several distinct objects with equal values
    # (LabelConfig makes new ones after it clears its cache)
    pool = list(values) + [CallLabels(*(getattr(v, f) for f in ("account", "trunk", "provider", "zone", "direction",
                                                                  "destination_country", "origination_country")))
                           for v in values[:4]]
    weights = [1.0 / (1 + i % 11) for i in range(len(pool))]
    events, now = [], 1_700_000_000.0 + rng.uniform(0, 3600)
    for ref in range(1, n_calls + 1):
        now += rng.expovariate(1 / 9.0)
        lb = rng.choices(pool, weights)[0]
        c = {"ref": ref, "labels": lb, "invite": now, "answer": None, "end": None, "code": None, "ringing": False,
             "pdd": None, "last_sip": now + rng.uniform(0, 5)}
        events.append(("attempt", c, None))
        kind = rng.random()
        if rng.random() < 0.8:
            c["pdd"] = rng.choice([rng.uniform(50, 40000), 100.0, 30000.0, 0.0])
            c["ringing"] = rng.random() < 0.7
            events.append(("pdd", c, None))
        if kind < 0.45:        # answered and ended: short, long, zero length
            c["answer"] = now + rng.uniform(0.1, 10)
            c["end"] = c["answer"] + rng.choice([0.0, rng.uniform(0, 12), rng.uniform(0, 4000), 6.0, 10.0])
            c["code"], c["reason"] = 200, rng.choice(["normal", "normal", "timeout"])
        elif kind < 0.5:       # answered, no end seen
            c["answer"] = now + 1.0
            c["code"], c["reason"] = 200, rng.choice(["timeout", "interrupted"])
        elif kind < 0.9:       # failed
            c["code"] = rng.choice([486, 487, 480, 408, 503, 404, 600, 603, 302, None, 99, 700, 487])
            c["reason"] = rng.choice(["busy", "no_answer", "cancelled", "failed", "timeout", "evicted"])
            c["end"] = None if rng.random() < 0.3 else now + rng.uniform(0, 30)
        else:                  # still up when the input ended
            c["answer"] = now + 2.0 if rng.random() < 0.5 else None
            c["reason"] = "interrupted"
        media = None
        if rng.random() < 0.7:
            streams = {(d, codec): [rng.randrange(5), rng.randrange(1, 500), rng.choice([0.0, rng.uniform(0, 700)])]
                       for d in ("inbound", "outbound") for codec in ("PCMU", "G729") if rng.random() < 0.6}
            media = CallMedia(account=lb.account, call_id=f"c{ref}", streams=streams,
                              mos=rng.choice([None, rng.uniform(1, 4.5), 4.5]))
        # finish a little later; sometimes before calls that started earlier
        events.append(("finish", c, media))
    finished = [e for e in events if e[0] == "finish"]
    others = [e for e in events if e[0] != "finish"]
    # keep attempts and PDDs in order, slot each finish in some way after its attempt
    order = []
    pending = []
    for e in others:
        order.append(e)
        if e[0] == "attempt":
            pending.append(next(f for f in finished if f[1] is e[1]))
        while pending and rng.random() < 0.5:
            order.append(pending.pop(rng.randrange(len(pending))))
    order.extend(pending)
    return order


def _call(c):
    call = Call(call_ref=c["ref"], call_id=f"c{c['ref']}", from_uri=None, to_uri=None, from_tag="a",
                invite_ts=c["invite"], invite_cseq=1, caller=(bytes(16), 5060))
    call.labels = c["labels"]
    call.pdd_ms = c["pdd"]
    call.ringing = c["ringing"]
    call.answer_ts, call.end_ts, call.final_code = c["answer"], c["end"], c["code"]
    call.reason = c.get("reason")
    call.last_sip_ts = c["last_sip"]
    return call


def _hists(table):
    return [(k, (h.counts, h.sum)) for k, h in table.items()]


def _run(seed, limit, thresholds, ner_codes=frozenset({200, 486, 600, 603, 480}), min_billable=0.0,
         n_sets=40, n_calls=3000):
    cfg = LabelConfig(max_label_sets=limit, short_call_thresholds=thresholds, ner_codes=ner_codes,
                      min_billable_seconds=min_billable)
    agg = CallAggregator(cfg)
    model = Model(limit, thresholds, ner_codes, min_billable)
    calls = {}
    ends = []
    for kind, c, media in _stream(seed, n_sets, n_calls):
        call = calls.get(c["ref"])
        if call is None:
            call = calls[c["ref"]] = _call(c)
        if kind == "attempt":
            agg.attempt_started(call)
            model.attempt(c["labels"])
        elif kind == "pdd":
            agg.pdd_measured(call)
            model.pdd(c["labels"], c["pdd"])
        else:
            agg.call_finished(call, media)
            model.finished(c, media)
            ends.append(c["end"] if c["end"] is not None else c["last_sip"])
    return agg, model, ends


def _compare(agg, model, ends):
    t = model.tables
    assert list(agg.attempts.items()) == list(t["attempts"].items())
    assert list(agg.terminations.items()) == list(t["terminations"].items())
    assert list(agg.short_calls.items()) == list(t["short_calls"].items())
    assert list(agg.minutes.items()) == list(t["minutes"].items())
    assert [(k, tuple(v)) for k, v in agg.outcomes.items()] == list(t["outcomes"].items())
    for name in ("durations", "pdd", "jitter", "mos"):
        assert _hists(getattr(agg, name)) == list(t[name].items()), name
    assert list(agg.overflows.items()) == list(model.overflows.items())
    nows = [min(ends) + 10, ends[len(ends) // 2], max(ends), max(ends) + 59, max(ends) + 600, max(ends) + 7200]
    for now in nows:
        ratios = agg.window_ratios(now)
        assert [key for key, _, _ in ratios] == [key for key in agg.outcomes for _ in RINGS]
        for key4, window, totals in ratios:
            assert totals == model.window_total(key4, window, now), (key4, window, now)
            assert agg.window_total(key4, window, now) == totals
    assert [(ref, m.ended_at) for ref, m in agg.media.items()] == [(ref, ended) for ref, _, ended in model.media]
    assert [(m.account, m.call_id, m.streams, m.mos) for m in agg.media.values()] == \
        [(m.account, m.call_id, m.streams, m.mos) for _, m, _ in model.media]
    assert agg.call_series_dropped == model.dropped


@pytest.mark.parametrize("seed,limit,thresholds,min_billable", [
    (1, 12, (6,), 0.0),          # 40 label sets, 12 kept per metric: most tables fold
    (2, 25, (6, 10, 30), 5.0),
    (3, 10_000, (6,), 0.0),      # nothing folds
    (4, 3, (10, 6, 30), 0.0),    # thresholds as given (status uses the first), almost everything folds
    (5, 60, (30,), 60.0),        # the attempts table (6 labels) folds, the 3-label ones do not
])
def test_aggregator_matches_reference_model(seed, limit, thresholds, min_billable):
    agg, model, ends = _run(seed, limit, thresholds, min_billable=min_billable)
    assert model.overflows or limit >= 60     # the guard did fold where meant to
    _compare(agg, model, ends)


def test_aggregator_matches_reference_model_with_a_tiny_label_cache(monkeypatch):
    """The per-label-set cache emptied every few label sets: same results."""
    monkeypatch.setattr(aggregate, "MAX_CACHED_LABEL_SETS", 3)
    agg, model, ends = _run(6, 15, (6, 10), n_calls=2000)
    _compare(agg, model, ends)
    assert agg.cached_label_objects <= 3


def test_label_cache_stays_bounded():
    """A flood of label sets (each its own object) does not grow the cache
    beyond MAX_CACHED_LABEL_SETS."""
    agg = CallAggregator(LabelConfig(max_label_sets=50))
    for i in range(aggregate.MAX_CACHED_LABEL_SETS + 500):
        call = Call(call_ref=i + 1, call_id=f"f{i}", from_uri=None, to_uri=None, from_tag="a", invite_ts=float(i),
                    invite_cseq=1, caller=(bytes(16), 5060))
        call.labels = CallLabels(account=f"a{i}")
        agg.attempt_started(call)
        assert agg.cached_label_objects <= aggregate.MAX_CACHED_LABEL_SETS
    assert len(agg.attempts) == 51
    assert agg.overflows == {"warp_call_attempts_total": aggregate.MAX_CACHED_LABEL_SETS + 450}


def test_label_objects_freed_and_their_ids_reused():
    """A label set's object may die and a different set's object be made at
    the same address (LabelConfig clears its cache): the aggregator must not
    take one for the other."""
    cfg = LabelConfig(max_label_sets=100)
    agg = CallAggregator(cfg)
    model = Model(100, (6,), cfg.ner_codes, 0.0)
    for i in range(300):
        lb = CallLabels(account=f"a{i % 9}", trunk=f"t{i % 4}", zone="LOCAL")
        c = {"ref": i + 1, "labels": lb, "invite": 1000.0 + i, "answer": 1001.0 + i, "end": 1003.0 + i * 1.5,
             "code": 200, "ringing": True, "pdd": 120.0, "last_sip": 1003.0 + i, "reason": "normal"}
        call = _call(c)
        agg.attempt_started(call)
        model.attempt(lb)
        agg.call_finished(call, None)
        model.finished(c, None)
        del call, lb, c              # free the labels (unless something holds them)
    _compare(agg, model, [1003.0 + i * 1.5 for i in range(300)])


def test_windowed_sums_add_matches_add_packed_and_float_rows():
    """WindowedSums.add (values per field) against a float row per bucket, the
    original layout, on random whole counts and measures; time stamps on and
    next to bucket bounds, far from them, huge and negative (a bucket is
    int(ts // width))."""
    rng = random.Random(7)
    fields, value_field = 7, 3
    ws = WindowedSums(fields, value_field)
    rows = {w: {} for w in RINGS}

    def stamps():
        ts = 5000.0
        for _ in range(4000):
            ts += rng.uniform(-200, 260)
            yield ts
        for base in (0.0, 60.0, 3600.0 * 24 * 365, 1_700_000_040.0, 2.0 ** 40, 2.0 ** 40 - 60, 2.0 ** 52,
                     2.0 ** 54 + 60, 1e17, -120.0):
            for _ in range(30):
                k = math.floor(base / 60) + rng.randrange(-2, 3)
                edge = k * 60.0
                yield rng.choice([edge, math.nextafter(edge, -math.inf), math.nextafter(edge, math.inf),
                                  edge + rng.uniform(0, 60), edge - 1e-9])

    for ts in stamps():
        values = [rng.randrange(3) for _ in range(fields)]
        values[value_field] = rng.choice([0.0, rng.uniform(0, 3000)])
        ws.add(ts, values)
        for w, (width, slots) in RINGS.items():
            epoch = int(ts // width)
            b = rows[w].get(epoch % slots)
            if b is None or b[0] != epoch:
                b = rows[w][epoch % slots] = [epoch, [0.0] * fields]
            b[1] = [x + v for x, v in zip(b[1], values)]
        if rng.random() < 0.1:
            now = ts + rng.choice([rng.uniform(-100, 5000), 0.0, 60.0])
            for w, (width, slots) in RINGS.items():
                cur = int(now // width)
                want = None
                for slot in range(slots):
                    b = rows[w].get(slot)
                    if b is not None and cur - slots < b[0] <= cur:
                        want = list(b[1]) if want is None else [x + y for x, y in zip(want, b[1])]
                assert ws.total(w, now) == (want or [0.0] * fields), (ts, now, w)
    with pytest.raises(ValueError):
        ws.add(ts, [0.5] + [0] * (fields - 1))


# -- the Python aggregator and media join this one replaced, as the oracle ------

import threading  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

import agg_reference as ref  # noqa: E402
from warpsniff._engine import CallMediaPass, StreamScorer  # noqa: E402
from warpsniff.metrics.collector import WarpCollector  # noqa: E402
from warpsniff.pipeline import rows_of_calls  # noqa: E402
from warpsniff.quality.codecs import CodecTable  # noqa: E402
from warpsniff.quality.streams import DEFAULT_JB_MODE, QualityContext  # noqa: E402

from test_batch_media import V4, FixedRoundTrips, random_rows  # noqa: E402

ENCODINGS = [None, "PCMU", "PCMA", "G729", "opus", "OPUS", "telephone-event", "X-no-such-codec", "G722"]


def _media_bindings(rng) -> dict:
    """An SDP's (address, port) -> side, as the tracker fills call.media."""
    out = {}
    for side in ("caller", "callee"):
        if rng.random() < 0.85:
            out[(V4 + bytes([10, 0, 0, rng.randint(1, 4)]), rng.choice([4000, 5000]))] = side
    return out


def _stream_rows(rng, calls, n_other: int) -> np.ndarray:
    """Stream records of `calls` (none to four each) and of calls outside the
    batch (test_batch_media.random_rows: every codec, loss and address case),
    SSRCs from a few hundred, jitter beyond the histogram's last bound."""
    refs = [c.call_ref for c in calls for _ in range(rng.randint(0, 4))] + \
        [rng.randint(900_000, 900_010) for _ in range(n_other)]
    rng.shuffle(refs)
    rows = random_rows(rng, [0], len(refs))
    rows["call_ref"] = refs
    rows["ssrc"] = [rng.randint(1, 400) for _ in refs]
    rows["max_jitter_ms"] = [rng.choice([0.0, rng.uniform(0.0, 800.0)]) for _ in refs]
    if len(rows) > 1 and rng.random() < 0.3:   # a join's table rows and ended rows: fields repacked
        cut = rng.randrange(len(rows))
        rows = np.concatenate([rows[:cut], rows[cut:]])
    return rows


def _reference_join(old, calls, rows, quality) -> None:
    """tests/agg_reference.py's Pipeline._join_media, its aggregation part."""
    by_ref = {c.call_ref: c for c in calls}
    theirs = rows_of_calls(rows, set(by_ref))
    medias = {r: ref.CallMedia(account=c.labels.account, call_id=c.call_id) for r, c in by_ref.items()}
    ref.add_call_media(theirs, by_ref, medias, quality, DEFAULT_JB_MODE)
    for call in calls:
        old.call_finished(call, medias[call.call_ref])


def _scrape(collector) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)


def _views(agg, cfg, now):
    p = SimpleNamespace(lock=threading.RLock(), aggregator=agg, tracker=SimpleNamespace(now=now, calls={}),
                        label_config=cfg, live_media=lambda: {})
    return p


def _assert_same(new, old, cfg, now) -> None:
    assert _scrape(WarpCollector(_views(new, cfg, now))) == _scrape(ref.WarpCollector(_views(old, cfg, now)))
    assert list(new.overflows.items()) == list(old.guard.overflows.items())
    assert new.call_series_dropped == old.call_series_dropped
    assert [(r, m.account, m.call_id, list(m.streams.items()), m.mos, m.ended_at) for r, m in new.media.items()] \
        == [(r, m.account, m.call_id, list(m.streams.items()), m.mos, m.ended_at) for r, m in old.media.items()]


@pytest.mark.parametrize("seed,limit,thresholds,min_billable,plc,rtt", [
    (11, 12, (6,), 0.0, True, "some"),        # most tables fold; some SSRCs with an RTT
    (12, 25, (6, 10, 30), 5.0, False, None),  # no RTCP at all; codecs without PLC
    (13, 10_000, (6,), 0.0, True, "many"),    # nothing folds; RTT for most SSRCs
    (14, 3, (10, 6, 30), 0.0, True, "some"),  # almost everything folds (and the call series: 3 kept)
    (15, 60, (30,), 60.0, True, "some"),
])
def test_aggregator_and_joins_match_the_python_ones(seed, limit, thresholds, min_billable, plc, rtt):
    """The same call events, media joins made of random stream records (rows
    of other calls among them), single calls finished with a CallMedia or
    none, and series expiring, through the native aggregator and the
    Python one of main: the scrape's text, the overflows, the per-call
    series are the same, at several points of the stream."""
    rng = random.Random(seed)
    cfg = LabelConfig(max_label_sets=limit, short_call_thresholds=thresholds, min_billable_seconds=min_billable,
                      call_series_retention_s=rng.choice([30.0, 300.0]))
    new, old = CallAggregator(cfg), ref.CallAggregator(cfg)
    codecs = CodecTable.load()
    scorer = StreamScorer(codecs, plc)
    rtts = {} if rtt is None else {s: rng.uniform(1.0, 700.0) for s in range(1, 401)
                                   if rtt == "many" or rng.random() < 0.3}
    round_trips = FixedRoundTrips(rtts) if rtt is not None else None
    calls, batch, now, checks = {}, [], 0.0, 0

    def join():
        rows = _stream_rows(rng, batch, n_other=rng.randint(0, 5))
        new.calls_finished(batch, CallMediaPass(batch, rows, round_trips, scorer, DEFAULT_JB_MODE))
        quality = QualityContext(codecs, None, {c.call_ref: c.payload_names for c in batch}, plc=plc)
        quality.rtt = dict(rtts)
        _reference_join(old, batch, rows, quality)
        batch.clear()

    for kind, c, media in _stream(seed, n_sets=40, n_calls=1500):
        call = calls.get(c["ref"])
        if call is None:
            call = calls[c["ref"]] = _call(c)
            call.media = _media_bindings(rng)
            call.payload_names = {pt: rng.choice(ENCODINGS) for pt in rng.sample([0, 8, 18, 96, 97, 111], 3)
                                  if rng.random() < 0.7}
            call.payload_names = {pt: enc for pt, enc in call.payload_names.items() if enc is not None}
        now = max(now, c["last_sip"])
        if kind == "attempt":
            new.attempt_started(call)
            old.attempt_started(call)
        elif kind == "pdd":
            new.pdd_measured(call)
            old.pdd_measured(call)
        else:
            way = rng.random()
            if way < 0.15:
                new.call_finished(call, None)
                old.call_finished(call, None)
            elif way < 0.3:
                new.call_finished(call, media)
                old.call_finished(call, None if media is None else
                                  ref.CallMedia(media.account, media.call_id, dict(media.streams), media.mos))
            else:
                batch.append(call)
                if len(batch) >= rng.choice([1, 2, 5, 40]):
                    join()
        if rng.random() < 0.02:
            at = now + rng.choice([0.0, 20.0, 400.0])
            new.expire_media(at)
            old.expire_media(at)
        if rng.random() < 0.01:
            _assert_same(new, old, cfg, now + rng.choice([0.0, 90.0, 4000.0]))
            checks += 1
    if batch:
        join()
    for later in (0.0, 59.0, 400.0, 3700.0, 90_000.0):
        _assert_same(new, old, cfg, now + later)
    assert checks > 5 and len(new.media)
    assert sum(sum(h.counts) for h in new.mos.values()) > 100 and sum(sum(h.counts) for h in new.jitter.values())
    if limit < 60:
        assert new.overflows
    if rtt is not None:
        assert round_trips.asked and sum(len(a) for a in round_trips.asked) > len(round_trips.asked)


def test_series_expire_after_exactly_the_retention_time():
    """A call's series stays while now - its end <= call_series_retention_s
    and goes after, the oldest kept first (one that ended later but was kept
    earlier holds back those behind it), as the Python aggregator had it; a
    call_ref kept again moves to the end."""
    cfg = LabelConfig(call_series_retention_s=30.0)
    new, old = CallAggregator(cfg), ref.CallAggregator(cfg)
    for i, (call_ref, end) in enumerate([(2, 100.0), (4, 100.5), (6, 131.0), (8, 101.0), (4, 100.25)]):
        call = _call({"ref": call_ref, "labels": CallLabels(), "invite": 0.0, "answer": 50.0, "end": end,
                      "code": 200, "ringing": True, "pdd": 1.0, "last_sip": end})
        call.reason = "normal"
        for agg, media_type in ((new, CallMedia), (old, ref.CallMedia)):
            agg.call_finished(call, media_type("a", call.call_id, {("outbound", "PCMU"): [i, 10, 1.5]}, 4.0))
    kept = {129.0: [2, 6, 8, 4], 130.0: [2, 6, 8, 4], 130.25: [6, 8, 4], 161.0: [6, 8, 4], 161.5: []}
    for now, refs in kept.items():
        new.expire_media(now)
        old.expire_media(now)
        assert list(new.media) == refs, now
        assert [(r, m.ended_at, m.streams) for r, m in new.media.items()] == \
            [(r, m.ended_at, m.streams) for r, m in old.media.items()]
