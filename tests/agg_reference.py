"""The aggregation and media join as they were in Python (main at a17f81c),
kept as the oracle of the native ones (ext/metrics/aggregate.pyx,
ext/quality/call_media.pyx): warpsniff/metrics/windows.py, aggregate.py and
collector.py verbatim but for their imports, the join's Pipeline methods
(ReferenceMedia) and add_call_media, the Cython pass the joins used then,
written out line for line in Python. Tests run the same events or captures
through both and compare what a scrape shows."""
from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from warpsniff._engine import STREAM_DTYPE, emodel_score
from warpsniff.quality.streams import DEFAULT_JB_MODE, JB_MODES, QualityContext
from warpsniff.quality.emodel import score

# -- warpsniff/metrics/windows.py ---------------------------------------------

WINDOWS = (("5m", 60.0, 5), ("1h", 300.0, 12), ("24h", 3600.0, 24))

COUNT_BITS = 64
COUNT_MASK = (1 << COUNT_BITS) - 1

# The buckets a time stamp falls in, remembered for the last minute asked
# about (events come in time order, many a minute): (lo, hi, ((epoch, slot)
# per window)) holds for every ts with lo <= ts < hi.  Every width is a whole
# number of the first one's, so one bucket of the first window lies inside one
# bucket of each other; and for 0 <= ts < 2**40, ts // width is the exact
# floor of ts / width (ts - fmod(ts, width) is a whole multiple of width that
# floats hold exactly), so the bounds lo = epoch * width are exact too.
# Replaced whole (one assignment), so threads never see half of one.
_BASE = WINDOWS[0][1]
assert all(w % _BASE == 0 for _, w, _ in WINDOWS)   # the memo's bounds hold for every window
_MEMO_LIMIT = 2.0 ** 40
_memo = (1.0, 0.0, None)        # matches nothing


def _places(ts) -> tuple:
    """((epoch, slot) per window) for ts, remembered for its minute when exact."""
    global _memo
    places = tuple((int(ts // width), int(ts // width) % slots) for _, width, slots in WINDOWS)
    if 0.0 <= ts < _MEMO_LIMIT:
        epoch = places[0][0]
        _memo = (epoch * _BASE, (epoch + 1) * _BASE, places)
    return places


def count_unit(field: int) -> int:
    """What adds one to count field `field` in a packed count."""
    return 1 << (COUNT_BITS * field)


class Ring:
    __slots__ = ("width", "slots", "epochs", "counts", "sums")

    def __init__(self, width: float, slots: int):
        self.width = width
        self.slots = slots
        self.epochs = [-1] * slots
        self.counts = [0] * slots      # packed counts per bucket
        self.sums = [0.0] * slots      # the measure per bucket

    def total(self, now: float) -> Optional[tuple]:
        """(packed counts, measure) over the buckets in the window, None if none is."""
        current = int(now // self.width)
        counts, value = 0, None
        for epoch, c, s in zip(self.epochs, self.counts, self.sums):
            if current - self.slots < epoch <= current:
                counts += c
                value = s if value is None else value + s
        return None if value is None else (counts, value)


class WindowedSums:
    """Field sums over the last 5 minutes, hour and day."""

    __slots__ = ("fields", "value_field", "rings", "_rings")

    def __init__(self, fields: int, value_field: Optional[int] = None):
        self.fields = fields
        self.value_field = value_field
        self.rings = {name: Ring(width, slots) for name, width, slots in WINDOWS}
        self._rings = tuple((r.epochs, r.counts, r.sums) for r in self.rings.values())

    def add(self, ts: float, values: Sequence[float]) -> None:
        """Adds values[k] to field k; count fields take whole numbers >= 0."""
        counts, value = 0, 0.0
        for k, v in enumerate(values):
            if k == self.value_field:
                value = v
            elif v:
                if v < 0 or v != int(v):
                    raise ValueError(f"field {k} counts events: {v!r} is not a whole number >= 0")
                counts += int(v) << (COUNT_BITS * k)
        self.add_packed(ts, counts, value)

    def add_packed(self, ts: float, counts: int, value: float = 0.0) -> None:
        """add() with the counts already packed (sums of count_unit(k))."""
        memo = _memo
        places = memo[2] if memo[0] <= ts < memo[1] else _places(ts)
        for (epoch, i), (epochs, bucket_counts, sums) in zip(places, self._rings):
            if epochs[i] != epoch:   # the bucket's previous epoch has left every window
                epochs[i] = epoch
                bucket_counts[i] = counts
                sums[i] = 0.0 + value
            else:
                bucket_counts[i] += counts
                sums[i] += value

    def total(self, window: str, now: float) -> list:
        t = self.rings[window].total(now)
        if t is None:
            return [0.0] * self.fields
        counts, value = t
        out = [float((counts >> (COUNT_BITS * k)) & COUNT_MASK) for k in range(self.fields)]
        if self.value_field is not None:
            out[self.value_field] = value
        return out


# -- warpsniff/metrics/aggregate.py -------------------------------------------

UNKNOWN = "unknown"
OTHER = "other"

DURATION_BUCKETS = (1, 3, 6, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
PDD_BUCKETS_MS = (100, 250, 500, 1000, 2000, 3000, 5000, 8000, 12000, 20000, 30000)
JITTER_BUCKETS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5)
MOS_BUCKETS = (1.0, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.3, 4.4, 4.5)
TERMINATION_REASONS = frozenset({"normal", "busy", "no_answer", "cancelled", "failed", "timeout"})

# window fields: finished attempts, answered, NER successes, answered seconds,
# answered calls with a known duration, then one short-call count per threshold
F_ATTEMPTS, F_ANSWERED, F_NER, F_SECONDS, F_TIMED = range(5)


class Histogram:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # the first bucket whose upper bound is >= value (NaN: the +Inf bucket)
        i = bisect_left(self.bounds, value) if value == value else len(self.bounds)
        self.counts[i] += 1
        self.sum += value

    def cumulative(self):
        """[(le, cumulative count)...] ending with +Inf, for HistogramMetricFamily."""
        out, total = [], 0
        for b, c in zip(self.bounds, self.counts):
            total += c
            out.append((str(float(b)), total))
        total += self.counts[-1]
        out.append(("+Inf", total))
        return out


class LabelGuard:
    """At most `limit` label sets per metric; the rest fold into "other"."""

    def __init__(self, limit: int):
        self.limit = limit
        self.overflows: dict = {}

    def key(self, metric: str, table: dict, key: tuple) -> tuple:
        placed = self.place(table, key)
        if placed is not key:
            self.overflowed(metric)
        return placed

    def place(self, table: dict, key: tuple) -> tuple:
        """The key itself while the table has it or has room, else "other"s."""
        return key if key in table or len(table) < self.limit else (OTHER,) * len(key)

    def overflowed(self, metric: str) -> None:
        self.overflows[metric] = self.overflows.get(metric, 0) + 1


@dataclass
class CallMedia:
    """What the per-call media series show for one call."""
    account: str
    call_id: str
    streams: dict = field(default_factory=dict)   # (direction, codec) -> [lost, expected, max jitter ms]
    mos: Optional[float] = None
    ended_at: Optional[float] = None


def sip_code_label(code: Optional[int]) -> str:
    return str(code) if code is not None and 100 <= code <= 699 else UNKNOWN


def ner_success(call, ner_codes: frozenset) -> bool:
    """E.425 NER numerator: answered, busy, no-answer or terminal rejection;
    487 counts when the caller gave up after ringing."""
    code = call.final_code
    if call.answered:
        return True
    if code is None:
        return False
    return code in ner_codes or (code == 487 and call.ringing)


MAX_CACHED_LABEL_SETS = 8192   # label sets whose resolved table entries CallAggregator keeps at hand

_STATUS = ("failed", "short", "completed")


class _Resolved:
    """One label set's places in the tables, found the first time an event of
    that kind needs them. A place is (target, folded): the table key (a
    counter) or the Histogram, and the metric's name when the guard folded
    the label set into "other" (every event then counts an overflow, as the
    guard would count it), else None. Tables never shrink: a key in one stays
    there, a key folded because its table was full stays folded, so a place
    holds for good."""

    __slots__ = ("labels", "attempt", "pdd", "durations", "terminations", "outcome", "shorts", "minutes",
                 "jitter", "mos")

    def __init__(self, labels, thresholds: int):
        self.labels = labels              # keeps the object alive: its id() stays its own while cached
        self.attempt = self.pdd = self.outcome = self.jitter = self.mos = None   # outcome: (row, window, folded)
        self.durations = [None, None, None]   # by _STATUS index
        self.terminations: dict = {}      # (reason, final_code (None or an int 100-699)) -> place
        self.shorts = [None] * thresholds
        self.minutes = [None, None]       # billable "false", "true"


class CallAggregator:
    def __init__(self, label_config):
        self.cfg = label_config
        self.thresholds = tuple(label_config.short_call_thresholds)
        self.guard = LabelGuard(label_config.max_label_sets)
        self.attempts: dict = {}       # (account, trunk, direction, zone, dest_cc, orig_cc) -> n
        self.durations: dict = {}      # (account, trunk, direction, zone, status) -> Histogram
        self.pdd: dict = {}            # (account, trunk, provider, zone) -> Histogram
        self.terminations: dict = {}   # (account, trunk, reason, sip_code) -> n
        self.minutes: dict = {}        # (account, trunk, zone, billable) -> minutes
        self.outcomes: dict = {}       # (account, trunk, provider, zone) -> [finished, answered, ner, seconds]
        self.short_calls: dict = {}    # (account, trunk, threshold) -> n
        self.windows: dict = {}        # (account, trunk, provider, zone) -> WindowedSums
        self.jitter: dict = {}         # (account, trunk, zone) -> Histogram of stream max jitter (s)
        self.mos: dict = {}            # (account, trunk, zone) -> Histogram of call MOS
        self.media: "OrderedDict[int, CallMedia]" = OrderedDict()  # call_ref -> ended calls' media
        self.call_series_dropped = 0   # ended calls' series let go early (max_label_sets)
        # id(CallLabels) -> _Resolved: labels are shared objects (one per label set), so an
        # event finds its table entries without building key tuples or asking the guard.
        # Each entry holds its CallLabels, so no other object can have that id while the
        # entry is here; equal label sets in distinct objects get an entry each (they
        # resolve to the same keys).  Emptied when it holds MAX_CACHED_LABEL_SETS.
        self._resolved: dict = {}
        self._short_strs = tuple(str(t) for t in self.thresholds)
        # window counts of an event, packed (windows.count_unit)
        self._failed = count_unit(F_ATTEMPTS)
        self._failed_ner = count_unit(F_ATTEMPTS) + count_unit(F_NER)
        self._answered = self._failed_ner + count_unit(F_ANSWERED)   # answered: always an NER success
        self._timed = self._answered + count_unit(F_TIMED)
        self._short_units = tuple(count_unit(F_TIMED + 1 + i) for i in range(len(self.thresholds)))

    # -- events ---------------------------------------------------------------

    def _resolved_for(self, lb) -> _Resolved:
        r = self._resolved.get(id(lb))
        if r is None:
            if len(self._resolved) >= MAX_CACHED_LABEL_SETS:
                self._resolved.clear()
            r = self._resolved[id(lb)] = _Resolved(lb, len(self.thresholds))
        return r

    def _place(self, metric: str, table: dict, key: tuple, bounds=None) -> tuple:
        """A label set's place in one table (see _Resolved), its Histogram made
        when `bounds` is given; the event itself counts any overflow."""
        placed = self.guard.place(table, key)
        target = placed
        if bounds is not None:
            target = table.get(placed)
            if target is None:
                target = table[placed] = Histogram(bounds)
        return target, (metric if placed is not key else None)

    def _count(self, place: tuple, table: dict, amount=1) -> None:
        key, folded = place
        if folded is not None:
            self.guard.overflowed(folded)
        table[key] = table.get(key, 0) + amount

    def _observe(self, place: tuple, value: float) -> None:
        histogram, folded = place
        if folded is not None:
            self.guard.overflowed(folded)
        histogram.observe(value)

    def attempt_started(self, call) -> None:
        lb = call.labels
        r = self._resolved_for(lb)
        if r.attempt is None:
            r.attempt = self._place("warp_call_attempts_total", self.attempts,
                                    (lb.account, lb.trunk, lb.direction, lb.zone, lb.destination_country,
                                     lb.origination_country))
        self._count(r.attempt, self.attempts)

    def pdd_measured(self, call) -> None:
        """PDD is observed the moment it ends (first 18x or 2xx), not at hang-up."""
        lb = call.labels
        r = self._resolved_for(lb)
        if r.pdd is None:
            r.pdd = self._place("warp_pdd_milliseconds", self.pdd, (lb.account, lb.trunk, lb.provider, lb.zone),
                                PDD_BUCKETS_MS)
        self._observe(r.pdd, call.pdd_ms)

    def call_finished(self, call, media: Optional[CallMedia] = None) -> None:
        reason = call.reason
        if reason == "interrupted":
            # still up when the input ended: no outcome to count yet beyond the answer
            if media is not None:
                self._remember_media(call, media)
            return
        lb = call.labels
        r = self._resolved_for(lb)
        ts = call.end_ts if call.end_ts is not None else call.last_sip_ts
        answered = call.answered
        duration = call.duration_s
        seconds = duration or 0.0
        status = 0 if not answered else 1 if duration is not None and duration < self.thresholds[0] else 2
        place = r.durations[status]
        if place is None:
            place = r.durations[status] = self._place(
                "warp_call_duration_seconds", self.durations,
                (lb.account, lb.trunk, lb.direction, lb.zone, _STATUS[status]), DURATION_BUCKETS)
        self._observe(place, seconds)

        code = call.final_code
        if reason in TERMINATION_REASONS:
            place = r.terminations.get((reason, code))
            if place is None:
                place = self._place("warp_call_terminations_total", self.terminations,
                                    (lb.account, lb.trunk, reason, sip_code_label(code)))
                if code is None or (type(code) is int and 100 <= code <= 699):   # a bounded set to keep
                    r.terminations[(reason, code)] = place
            self._count(place, self.terminations)

        ner = ner_success(call, self.cfg.ner_codes)
        timed = answered and duration is not None
        if r.outcome is None:
            key4 = (lb.account, lb.trunk, lb.provider, lb.zone)
            placed = self.guard.place(self.outcomes, key4)
            window = self.windows.get(placed)
            if window is None:
                window = self.windows[placed] = WindowedSums(5 + len(self.thresholds), F_SECONDS)
            r.outcome = (self.outcomes.setdefault(placed, [0, 0, 0, 0.0, 0]), window,
                         "warp_asr_ratio" if placed is not key4 else None)
        row, window, folded = r.outcome
        if folded is not None:
            self.guard.overflowed(folded)
        row[0] += 1
        row[1] += answered
        row[2] += ner
        row[3] += seconds
        row[4] += timed

        # the window fields of this event, packed (windows.count_unit)
        if timed:
            counts = self._timed
            for i, threshold in enumerate(self.thresholds):
                if duration < threshold:
                    counts += self._short_units[i]
                    place = r.shorts[i]
                    if place is None:
                        place = r.shorts[i] = self._place("warp_short_calls_total", self.short_calls,
                                                          (lb.account, lb.trunk, self._short_strs[i]))
                    self._count(place, self.short_calls)
            billable = duration >= self.cfg.min_billable_seconds
            place = r.minutes[billable]
            if place is None:
                place = r.minutes[billable] = self._place("warp_minutes_used_total", self.minutes,
                                                          (lb.account, lb.trunk, lb.zone, str(billable).lower()))
            self._count(place, self.minutes, duration / 60.0)
        else:
            counts = self._answered if answered else self._failed_ner if ner else self._failed
        window.add_packed(ts, counts, seconds)

        if media is not None:
            for lost, expected, jitter_ms in media.streams.values():
                if r.jitter is None:
                    r.jitter = self._place("warp_rtp_jitter_seconds", self.jitter, (lb.account, lb.trunk, lb.zone),
                                           JITTER_BUCKETS_S)
                self._observe(r.jitter, jitter_ms / 1000.0)
            if media.mos is not None:
                if r.mos is None:
                    r.mos = self._place("warp_call_mos", self.mos, (lb.account, lb.trunk, lb.zone), MOS_BUCKETS)
                self._observe(r.mos, media.mos)
            self._remember_media(call, media)

    def _remember_media(self, call, media: CallMedia) -> None:
        """Keeps an ended call's per-call series for the retention time; at most
        `limits.max_label_sets` of them (a burst of short calls must not make a
        scrape of hundreds of thousands of series): the oldest go first, counted."""
        media.ended_at = call.end_ts if call.end_ts is not None else call.last_sip_ts
        self.media[call.call_ref] = media
        self.media.move_to_end(call.call_ref)
        if len(self.media) > self.cfg.max_label_sets:
            self.media.popitem(last=False)
            self.call_series_dropped += 1

    def expire_media(self, now: float) -> None:
        """Per-call series go away `call_series_retention_s` after the call ended."""
        keep = self.cfg.call_series_retention_s
        while self.media:
            ref, m = next(iter(self.media.items()))
            if m.ended_at is not None and now - m.ended_at <= keep:
                break
            self.media.popitem(last=False)

    # -- scrape-time views --------------------------------------------------

    def window_ratios(self, now: float):
        """(key4, window, totals) for every label set and window."""
        for key, win in self.windows.items():
            for name, _, _ in WINDOWS:
                yield key, name, win.total(name, now)


# -- warpsniff/metrics/collector.py -------------------------------------------

NER_WINDOW = "1h"          # the seed's NER and short-call gauges carry no window label
SHORT_WINDOW = "1h"


def _histograms(name, doc, labels, table):
    fam = HistogramMetricFamily(name, doc, labels=labels)
    for key, h in table.items():
        fam.add_metric(list(key), h.cumulative(), sum_value=h.sum)
    return fam


def _counters(name, doc, labels, table):
    fam = CounterMetricFamily(name, doc, labels=labels)
    for key, v in table.items():
        fam.add_metric(list(key), v)
    return fam


class WarpCollector:
    """The platform's call, quality and media families."""

    def __init__(self, pipeline):
        self.p = pipeline
        self.active_keys: set = set()   # label sets of warp_active_calls seen so far: 0, not absent

    def collect(self):
        p = self.p
        with p.lock:
            agg = p.aggregator
            now = p.tracker.now
            yield from self._calls(agg)
            yield from self._ratios(agg, now)
            yield self._active_calls(p)
            yield from self._media(agg, p.live_media())
            yield from self._usage(agg)

    def _calls(self, agg):
        yield _counters("warp_call_attempts", "Initial INVITEs (attempts), counted when they start.",
                        ["account", "trunk", "direction", "zone", "destination_country", "origination_country"],
                        agg.attempts)
        yield _histograms("warp_call_duration_seconds", "Answer to end of finished attempts; 0 when not answered.",
                          ["account", "trunk", "direction", "zone", "status"], agg.durations)
        yield _histograms("warp_pdd_milliseconds", "INVITE to first 180/181/182/183, else to the 2xx.",
                          ["account", "trunk", "provider", "zone"], agg.pdd)
        yield _counters("warp_call_terminations", "Finished attempts by termination reason and final code.",
                        ["account", "trunk", "reason", "sip_code"], agg.terminations)
        labels4 = ["account", "trunk", "provider", "zone"]
        finished = CounterMetricFamily("warp_call_finished", "Attempts whose outcome is known.", labels=labels4)
        answered = CounterMetricFamily("warp_call_answered", "Attempts answered with a 2xx.", labels=labels4)
        ner = CounterMetricFamily("warp_call_ner_attempts", "Attempts counted as NER successes (E.425).",
                                  labels=labels4)
        seconds = CounterMetricFamily("warp_call_answered_duration_seconds",
                                      "Summed duration of answered calls that ended.", labels=labels4)
        for key, (n, a, e, s, _timed) in agg.outcomes.items():
            finished.add_metric(list(key), n)
            answered.add_metric(list(key), a)
            ner.add_metric(list(key), e)
            seconds.add_metric(list(key), s)
        yield from (finished, answered, ner, seconds)
        yield _counters("warp_short_calls", "Answered calls shorter than threshold_seconds.",
                        ["account", "trunk", "threshold_seconds"], agg.short_calls)

    def _ratios(self, agg, now):
        asr = GaugeMetricFamily("warp_asr_ratio", "Answered / finished attempts in the window.",
                                labels=["account", "trunk", "provider", "zone", "window"])
        acd = GaugeMetricFamily("warp_acd_seconds", "Mean duration of answered calls that ended in the window.",
                                labels=["account", "trunk", "provider", "zone", "window"])
        ner = GaugeMetricFamily("warp_ner_ratio", f"NER successes / finished attempts over the last {NER_WINDOW}.",
                                labels=["account", "trunk", "provider"])
        short = GaugeMetricFamily("warp_short_call_ratio",
                                  f"Answered calls under threshold_seconds / answered calls, last {SHORT_WINDOW}.",
                                  labels=["account", "trunk", "threshold_seconds"])
        ner_rows: dict = {}
        short_rows: dict = {}
        for key, window, t in agg.window_ratios(now):
            account, trunk, provider, zone = key
            if t[F_ATTEMPTS]:
                asr.add_metric([account, trunk, provider, zone, window], t[F_ANSWERED] / t[F_ATTEMPTS])
            if t[F_TIMED]:
                acd.add_metric([account, trunk, provider, zone, window], t[F_SECONDS] / t[F_TIMED])
            if window == NER_WINDOW:
                row = ner_rows.setdefault((account, trunk, provider), [0.0, 0.0])
                row[0] += t[F_NER]
                row[1] += t[F_ATTEMPTS]
            if window == SHORT_WINDOW:
                for i, threshold in enumerate(agg.thresholds):
                    row = short_rows.setdefault((account, trunk, str(threshold)), [0.0, 0.0])
                    row[0] += t[F_TIMED + 1 + i]
                    row[1] += t[F_TIMED]
        for key, (num, den) in ner_rows.items():
            if den:
                ner.add_metric(list(key), num / den)
        for key, (num, den) in short_rows.items():
            if den:
                short.add_metric(list(key), num / den)
        yield from (asr, acd, ner, short)

    def _active_calls(self, p):
        fam = GaugeMetricFamily("warp_active_calls", "Calls answered and not yet ended.",
                                labels=["account", "trunk", "direction"])
        counts: dict = {}
        for call in p.tracker.calls.values():
            if call.answered and call.end_ts is None:
                lb = call.labels
                key = (lb.account, lb.trunk, lb.direction)
                counts[key] = counts.get(key, 0) + 1
        if len(self.active_keys) < p.label_config.max_label_sets:
            self.active_keys.update(counts)
        for key in self.active_keys | set(counts):
            fam.add_metric(list(key), counts.get(key, 0))
        return fam

    def _media(self, agg, live_media):
        loss = GaugeMetricFamily("warp_rtp_packet_loss_ratio", "Lost / expected RTP packets of the call so far.",
                                 labels=["account", "call_id", "direction", "codec"])
        jitter = GaugeMetricFamily("warp_rtp_jitter_ms", "Largest RFC 3550 jitter of the call's streams (ms).",
                                   labels=["account", "call_id", "direction"])
        mos = GaugeMetricFamily("warp_mos_score", "E-model MOS: last interval while up, whole call once ended.",
                                labels=["account", "call_id"])
        merged = dict(live_media)
        merged.update(agg.media)  # a call that ended shows its whole-call figures
        for media in merged.values():
            worst_jitter: dict = {}
            for (direction, codec), (lost, expected, jitter_ms) in media.streams.items():
                if expected > 0:
                    loss.add_metric([media.account, media.call_id, direction, codec], lost / expected)
                worst_jitter[direction] = max(worst_jitter.get(direction, 0.0), jitter_ms)
            for direction, j in worst_jitter.items():
                jitter.add_metric([media.account, media.call_id, direction], j)
            if media.mos is not None:
                mos.add_metric([media.account, media.call_id], media.mos)
        yield from (loss, jitter, mos)
        yield _histograms("warp_rtp_jitter_seconds", "Largest jitter of each finished call's streams.",
                          ["account", "trunk", "zone"], agg.jitter)
        yield _histograms("warp_call_mos", "MOS of finished calls (worse direction).",
                          ["account", "trunk", "zone"], agg.mos)

    def _usage(self, agg):
        yield _counters("warp_minutes_used", "Minutes of answered calls, by whether they bill.",
                        ["account", "trunk", "zone", "billable"], agg.minutes)


class SnifferCollector:
    """warpsniff's own health: what it saw, dropped, and could not decode."""

    def __init__(self, pipeline):
        self.p = pipeline

    def collect(self):
        p = self.p
        with p.lock:
            c = p.engine.counters()
            errors = p.engine.decode_errors()
            sip = p.tracker.stats
            tcp = p.correlator.tcp.stats
            overflows = dict(p.aggregator.guard.overflows)
            dialogs = len(p.tracker.calls)
            call_media_dropped = p.ended_rows_dropped
            call_series_dropped = p.aggregator.call_series_dropped
            sctp_dropped = p.correlator.sctp.dropped
            rings = p.capture_stats()
        yield CounterMetricFamily("warpsniff_packets", "Frames seen.", value=c["frames"])
        yield CounterMetricFamily("warpsniff_bytes", "Bytes on the wire of frames seen.", value=c["bytes"])
        by_kind = CounterMetricFamily("warpsniff_packets_by_kind", "Packets by what they carried.", labels=["kind"])
        for kind in ("rtp_packets", "rtcp_packets", "sip_udp", "tcp_segments", "sctp_packets", "other_udp",
                     "other_tcp", "ignored"):
            by_kind.add_metric([kind.replace("_packets", "")], c[kind])
        yield by_kind
        yield _counters("warpsniff_decode_errors", "Frames that could not be decoded, by reason.", ["kind"],
                        {(kind,): n for kind, n in errors.items()})
        yield CounterMetricFamily("warpsniff_sip_parse_errors", "SIP messages the scanner refused.",
                                  value=sip.parse_errors)
        yield CounterMetricFamily("warpsniff_sip_messages", "SIP messages seen.", value=sip.messages)
        yield CounterMetricFamily("warpsniff_sip_retransmissions", "SIP retransmissions seen.",
                                  value=sip.retransmissions)
        yield GaugeMetricFamily("warpsniff_active_dialogs", "Call attempts being tracked.", value=dialogs)
        yield GaugeMetricFamily("warpsniff_active_streams", "RTP streams in the engine table.",
                                value=c["streams_active"])
        bound = CounterMetricFamily("warpsniff_streams_bound", "RTP streams bound to a call, by when: at_start "
                                    "(an SDP or a latch covered their destination when they began) or adopted "
                                    "(the binding came after their first packet).", labels=["how"])
        bound.add_metric(["at_start"], c["bound_streams"] - c["adopted_streams"])
        bound.add_metric(["adopted"], c["adopted_streams"])
        yield bound
        yield CounterMetricFamily("warpsniff_latched_addresses", "Media source addresses no SDP announced, bound "
                                  "to a call because its media came from them (NAT latching).",
                                  value=c["latched_bindings"])
        ev = CounterMetricFamily("warpsniff_table_evictions", "Entries pushed out of a full table.",
                                 labels=["table"])
        ev.add_metric(["streams"], c["stream_evictions"])
        ev.add_metric(["calls"], sip.evicted)
        ev.add_metric(["media_bindings"], c["bindings_dropped"])
        ev.add_metric(["tcp_streams"], tcp.streams_evicted)
        ev.add_metric(["call_media"], call_media_dropped)
        ev.add_metric(["call_series"], call_series_dropped)
        yield ev
        drops = CounterMetricFamily("warpsniff_reassembly_drops", "Data lost by fragment or TCP reassembly.",
                                    labels=["kind"])
        drops.add_metric(["fragment_timeout"], errors.get("fragment_timeout", 0))
        drops.add_metric(["fragment_table_full"], errors.get("fragment_table_full", 0))
        drops.add_metric(["tcp_gap"], tcp.gaps_skipped)
        drops.add_metric(["tcp_buffer_overflow"], tcp.buffer_overflows)
        drops.add_metric(["signalling_batch"], c["signalling_dropped"])
        drops.add_metric(["sctp_message"], sctp_dropped)
        yield drops
        yield _counters("warpsniff_websocket", "SIP over WebSocket (RFC 7118) on TCP connections, by event.",
                        ["event"], {(event,): getattr(tcp, f"websocket_{event}") for event in
                                    ("upgrades", "joined", "not_sip", "messages", "control_frames", "errors",
                                     "oversize")})
        yield _counters("warpsniff_label_overflows", "Label sets folded into \"other\" by the guard.", ["metric"],
                        {(metric,): n for metric, n in overflows.items()})
        yield CounterMetricFamily("warpsniff_capture_drops", "Packets the kernel dropped before capture.",
                                  value=sum(r["drops"] for r in rings.values()))
        if rings:  # live: each ring (interface, or interface#worker) on its own
            for name, key, text in (("packets", "packets", "Packets the kernel put in the ring."),
                                    ("drops", "drops", "Packets the kernel dropped because the ring was full."),
                                    ("full", "freezes", "Times the ring was full (the kernel froze the queue).")):
                yield _counters(f"warpsniff_ring_{name}", text, ["ring"],
                                {(ring,): stats[key] for ring, stats in rings.items()})
        yield GaugeMetricFamily("warpsniff_replay_lag_seconds",
                                "How far a paced replay is behind capture time.", value=p.replay_lag_s)


# -- ext/quality/call_media.pyx's add_call_media, in Python --------------------

def add_call_media(rows, by_ref: dict, medias: dict, quality, jb_mode: int) -> None:
    """Adds each stream record in `rows` (all of calls in `by_ref`: call_ref
    -> Call) to its call's CallMedia in `medias` (call_ref -> CallMedia): per
    (direction, codec) the lost and expected packets and the worst jitter,
    and as the call's MOS the worst of its streams' scores with playout
    buffer `jb_mode` (an index of the records' jb_* arrays)."""
    if rows.dtype.names != STREAM_DTYPE.names:
        raise TypeError("stream records expected")
    if not 0 <= jb_mode < len(JB_MODES):
        raise ValueError(f"no playout buffer {jb_mode}")
    if len(rows) == 0:
        return
    plc, payload_names, rtt_of = quality.plc, quality.payload_names, quality.rtt
    scored, directions, worst = {}, {}, {}
    lookup = quality.codecs.lookup
    for r in rows:
        ref = int(r["call_ref"])
        call = by_ref[ref]
        media = medias[ref]
        pt = int(r["payload_type"])
        found = scored.get((ref, pt))
        if found is None:
            codec = lookup(pt, payload_names.get(ref, {}).get(pt))
            imp = None
            if codec is not None:
                imp = codec.plc if plc or codec.no_plc is None else codec.no_plc
            found = scored[(ref, pt)] = (codec.name if codec is not None else None, imp)
        name, imp = found
        expected, lost = int(r["expected"]), int(r["lost"])
        if imp is not None and expected > 0:
            counted = (lost if lost > 0 else 0) + int(r["jb_late"][jb_mode])
            rtt = rtt_of.get(int(r["ssrc"]))
            one_way = None if rtt is None else float(rtt) / 2.0
            mos = emodel_score(imp.ie, imp.bpl, expected, expected if expected < counted else counted,
                               int(r["jb_loss_runs"][jb_mode]), one_way)[1]
            low = worst.get(ref)
            if low is None or mos < low:
                worst[ref] = mos
        side = call.media.get((bytes(r["dst"]), int(r["dport"])))
        if side is not None:
            sender_is_caller = side != "caller"
        else:
            side = call.media.get((bytes(r["src"]), int(r["sport"])))
            sender_is_caller = not side or side == "caller"
        call_dir = directions.get(ref)
        if call_dir is None:
            call_dir = call.labels.direction if call.labels is not None else "unknown"
            if call_dir != "inbound" and call_dir != "outbound":
                call_dir = "outbound"   # unknown: from the caller's view, its own media is outbound
            directions[ref] = call_dir
        if not sender_is_caller:
            call_dir = "inbound" if call_dir == "outbound" else "outbound"
        row = media.streams.get((call_dir, name or "unknown"))
        if row is None:
            row = media.streams[(call_dir, name or "unknown")] = [0, 0, 0.0]
        row[0] += lost if lost > 0 else 0
        row[1] += expected if expected > 0 else 0
        jitter = float(r["max_jitter_ms"])
        if jitter > row[2]:
            row[2] = jitter
    for ref, low in worst.items():
        medias[ref].mos = low


# -- warpsniff/pipeline.py's media methods ---------------------------------------

class ReferenceMedia:
    """Pipeline's quality_context, _media_of_calls, _join_media and
    live_media as they were; mixed into a Pipeline subclass before it, with
    the reference CallAggregator (use_reference_aggregation)."""

    def use_reference_aggregation(self) -> None:
        self.aggregator = CallAggregator(self.label_config)
        self.tracker.on_attempt = self.aggregator.attempt_started
        self.tracker.on_pdd = self.aggregator.pdd_measured

    def quality_context(self, calls=(), payload_names: Optional[dict] = None, rows=None) -> QualityContext:
        names = dict(payload_names) if payload_names else {}
        names.update((c.call_ref, c.payload_names) for c in calls)
        ssrcs = set(rows["ssrc"].tolist()) if rows is not None else None
        return QualityContext(self.codecs, self.engine.rtcp_sources(), names, plc=self.plc, ssrcs=ssrcs)

    def _media_of_calls(self, calls: list, streams: np.ndarray, quality: QualityContext,
                        only_theirs: bool = False) -> dict:
        from warpsniff.pipeline import rows_of_calls
        by_ref = {c.call_ref: c for c in calls}
        rows = streams if only_theirs else rows_of_calls(streams, by_ref)
        medias = {ref: CallMedia(account=c.labels.account, call_id=c.call_id) for ref, c in by_ref.items()}
        add_call_media(rows, by_ref, medias, quality, DEFAULT_JB_MODE)
        return medias

    def _join_media(self, streams: np.ndarray, only_theirs: bool = False) -> None:
        from warpsniff.capture.workers import claim_unbound_media
        from warpsniff.pipeline import rows_of_calls, streams_by_call
        calls, self.pending[:] = list(self.pending), []
        if not calls:
            return
        ended = [rows for c in calls for rows in self.ended_by_call.pop(c.call_ref, ())]
        if ended:
            streams = np.concatenate([streams] + ended)
        if self._claims_media():
            streams = claim_unbound_media(streams, calls)
        refs = {c.call_ref for c in calls}
        if not only_theirs:
            streams = rows_of_calls(streams, refs)   # `streams` may be the whole table
        quality = self.quality_context(calls, rows=streams)
        by_call = streams_by_call(streams, refs) if self.on_call is not None else {}
        medias = self._media_of_calls(calls, streams, quality, only_theirs=True)
        empty = streams[:0]
        for call in calls:
            mine = by_call.get(call.call_ref, empty)
            media = medias[call.call_ref]
            self.aggregator.call_finished(call, media)
            if self.call_sink is not None:
                self.call_sink.add(call)
            elif self.keep_calls:
                self.calls.append(call)
            if self.on_call is not None:
                self.on_call(call, mine, quality)

    def live_media(self) -> dict:
        if self._live_cache is not None:
            return self._live_cache
        active = {c.call_ref: c for c in self.tracker.calls.values() if c.answered and c.end_ts is None}
        last = self.interval_last
        if not active or last is None:
            self._live_cache = {}
            return self._live_cache
        refs = np.fromiter(active, dtype=np.uint32, count=len(active))
        bound = last[np.isin(last["call_ref"], refs)]
        prev_counts = {}
        if self.interval_prev is not None:
            for rec in self.interval_prev[np.isin(self.interval_prev["call_ref"], refs)]:
                prev_counts[_ident(rec)] = _counts(rec)
        quality = self.quality_context(active.values())
        m = DEFAULT_JB_MODE
        zero = (0, 0, (0,) * len(JB_MODES), (0,) * len(JB_MODES))
        by_call: dict = {}
        for rec in bound:
            now_counts = _counts(rec)
            prev = prev_counts.get(_ident(rec), zero)
            codec = quality.codec_of(rec)
            imp = codec.plc if codec is not None else None
            expected = now_counts[0] - prev[0]
            if imp is None or expected <= 0:
                continue
            lost = (now_counts[1] - prev[1]) + (now_counts[2][m] - prev[2][m])
            runs = now_counts[3][m] - prev[3][m]
            s = score(imp.ie, imp.bpl, expected, max(0, min(lost, expected)), max(runs, 0))
            ref = int(rec["call_ref"])
            by_call[ref] = min(by_call.get(ref, 5.0), s.mos)
        medias = self._media_of_calls(list(active.values()), bound, quality, only_theirs=True)
        for ref, mos in by_call.items():
            medias[ref].mos = mos   # the last interval's, not the whole call's so far
        self._live_cache = medias
        return self._live_cache


def _ident(rec) -> tuple:
    return (bytes(rec["src"]), int(rec["sport"]), bytes(rec["dst"]), int(rec["dport"]), int(rec["ssrc"]))


def _counts(rec) -> tuple:
    return (int(rec["expected"]), max(int(rec["lost"]), 0),
            tuple(int(x) for x in rec["jb_late"]), tuple(int(x) for x in rec["jb_loss_runs"]))
