"""Per-call aggregation into the platform's metric families.

Updated once per call event (attempt start, call end) and once per quality
interval, never per packet; the collectors read these tables at scrape time.
Every table is keyed by label values that come from the label configuration
or from closed sets, and a guard caps the label sets per metric.
"""
from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

from warpsniff.metrics.windows import WINDOWS, WindowedSums, count_unit

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
