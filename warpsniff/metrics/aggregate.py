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
        if key in table or len(table) < self.limit:
            return key
        self.overflows[metric] = self.overflows.get(metric, 0) + 1
        return (OTHER,) * len(key)


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
    """One label set's places in the tables, found (and checked by the guard)
    the first time an event of that kind uses them.  Each is (target, folded):
    target is a table key (counters) or the Histogram / outcome row itself;
    folded is the metric's name when the guard folded the label set into
    "other", so later events count in overflows as the guard would, else None.
    Tables never shrink: a key in one stays in it, a key folded because the
    table was full stays folded, so a resolution holds for good."""

    __slots__ = ("labels", "attempt", "pdd", "durations", "terminations", "outcome", "shorts", "minutes",
                 "jitter", "mos")

    def __init__(self, labels, thresholds: int):
        self.labels = labels              # keeps the object alive: its id() stays its own while cached
        self.attempt = None
        self.pdd = None
        self.durations = [None, None, None]   # by _STATUS index
        self.terminations: dict = {}      # reason -> {final_code (int 100-699 or None) -> (key, folded)}
        self.outcome = None               # (row, WindowedSums, folded)
        self.shorts = [None] * thresholds
        self.minutes = [None, None]       # billable "false", "true"
        self.jitter = None
        self.mos = None


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
        cache = self._resolved
        if len(cache) >= MAX_CACHED_LABEL_SETS:
            cache.clear()
        r = cache[id(lb)] = _Resolved(lb, len(self.thresholds))
        return r

    def _folded(self, metric: str) -> None:
        overflows = self.guard.overflows
        overflows[metric] = overflows.get(metric, 0) + 1

    def _key_slot(self, metric: str, table: dict, key: tuple):
        """(key the guard gives, folded) for a first use; counts the overflow."""
        got = self.guard.key(metric, table, key)
        return got, (metric if got != key else None)

    def _hist_slot(self, metric: str, table: dict, key: tuple, bounds):
        got = self.guard.key(metric, table, key)
        h = table.get(got)
        if h is None:
            h = table[got] = Histogram(bounds)
        return h, (metric if got != key else None)

    def attempt_started(self, call) -> None:
        lb = call.labels
        r = self._resolved.get(id(lb))
        if r is None:
            r = self._resolved_for(lb)
        slot = r.attempt
        if slot is None:
            slot = r.attempt = self._key_slot(
                "warp_call_attempts_total", self.attempts,
                (lb.account, lb.trunk, lb.direction, lb.zone, lb.destination_country, lb.origination_country))
            key = slot[0]
        else:
            key, folded = slot
            if folded is not None:
                self._folded(folded)
        attempts = self.attempts
        attempts[key] = attempts.get(key, 0) + 1

    def pdd_measured(self, call) -> None:
        """PDD is observed the moment it ends (first 18x or 2xx), not at hang-up."""
        lb = call.labels
        r = self._resolved.get(id(lb))
        if r is None:
            r = self._resolved_for(lb)
        slot = r.pdd
        if slot is None:
            slot = r.pdd = self._hist_slot("warp_pdd_milliseconds", self.pdd,
                                           (lb.account, lb.trunk, lb.provider, lb.zone), PDD_BUCKETS_MS)
        elif slot[1] is not None:
            self._folded(slot[1])
        h, v = slot[0], call.pdd_ms
        h.counts[bisect_left(h.bounds, v) if v == v else len(h.bounds)] += 1   # h.observe(v), inlined
        h.sum += v

    def call_finished(self, call, media: Optional[CallMedia] = None) -> None:
        reason = call.reason
        if reason == "interrupted":
            # still up when the input ended: no outcome to count yet beyond the answer
            if media is not None:
                self._remember_media(call, media)
            return
        lb = call.labels
        r = self._resolved.get(id(lb))
        if r is None:
            r = self._resolved_for(lb)
        ts = call.end_ts
        if ts is None:
            ts = call.last_sip_ts
        answered = call.answered
        duration = call.duration_s
        if not answered:
            status = 0
        elif duration is not None and duration < self.thresholds[0]:
            status = 1
        else:
            status = 2
        seconds = duration or 0.0

        slot = r.durations[status]
        if slot is None:
            slot = r.durations[status] = self._hist_slot(
                "warp_call_duration_seconds", self.durations,
                (lb.account, lb.trunk, lb.direction, lb.zone, _STATUS[status]), DURATION_BUCKETS)
        elif slot[1] is not None:
            self._folded(slot[1])
        h = slot[0]
        h.counts[bisect_left(h.bounds, seconds) if seconds == seconds else len(h.bounds)] += 1   # h.observe(seconds)
        h.sum += seconds

        code = call.final_code
        if reason in TERMINATION_REASONS:
            codes = r.terminations.get(reason)
            if codes is None:
                codes = r.terminations[reason] = {}
            slot = codes.get(code)
            if slot is None:
                slot = self._key_slot("warp_call_terminations_total", self.terminations,
                                      (lb.account, lb.trunk, reason, sip_code_label(code)))
                if code is None or (type(code) is int and 100 <= code <= 699):   # a bounded set
                    codes[code] = slot
                key = slot[0]
            else:
                key, folded = slot
                if folded is not None:
                    self._folded(folded)
            terminations = self.terminations
            terminations[key] = terminations.get(key, 0) + 1

        if answered:                   # ner_success(), inlined
            ner = 1
        elif code is None:
            ner = 0
        else:
            ner = 1 if code in self.cfg.ner_codes or (code == 487 and call.ringing) else 0
        timed = 1 if answered and duration is not None else 0

        slot = r.outcome
        if slot is None:
            key4 = (lb.account, lb.trunk, lb.provider, lb.zone)
            got = self.guard.key("warp_asr_ratio", self.outcomes, key4)
            row = self.outcomes.setdefault(got, [0, 0, 0, 0.0, 0])
            win = self.windows.get(got)
            if win is None:
                win = self.windows[got] = WindowedSums(5 + len(self.thresholds), F_SECONDS)
            r.outcome = (row, win, "warp_asr_ratio" if got != key4 else None)
        else:
            row, win, folded = slot
            if folded is not None:
                self._folded(folded)
        row[0] += 1
        row[1] += answered
        row[2] += ner
        row[3] += seconds
        row[4] += timed

        if timed:
            counts = self._timed
            i = 0
            for t in self.thresholds:
                if duration < t:
                    counts += self._short_units[i]
                    slot = r.shorts[i]
                    if slot is None:
                        slot = r.shorts[i] = self._key_slot("warp_short_calls_total", self.short_calls,
                                                            (lb.account, lb.trunk, self._short_strs[i]))
                        key = slot[0]
                    else:
                        key, folded = slot
                        if folded is not None:
                            self._folded(folded)
                    short_calls = self.short_calls
                    short_calls[key] = short_calls.get(key, 0) + 1
                i += 1
        elif answered:
            counts = self._answered
        else:
            counts = self._failed_ner if ner else self._failed
        win.add_packed(ts, counts, seconds)

        if timed:
            billable = 1 if duration >= self.cfg.min_billable_seconds else 0
            slot = r.minutes[billable]
            if slot is None:
                slot = r.minutes[billable] = self._key_slot(
                    "warp_minutes_used_total", self.minutes,
                    (lb.account, lb.trunk, lb.zone, "true" if billable else "false"))
                key = slot[0]
            else:
                key, folded = slot
                if folded is not None:
                    self._folded(folded)
            minutes = self.minutes
            minutes[key] = minutes.get(key, 0) + duration / 60.0

        if media is not None:
            streams = media.streams
            if streams:
                slot = r.jitter
                for lost, expected, jitter_ms in streams.values():
                    if slot is None:
                        slot = r.jitter = self._hist_slot("warp_rtp_jitter_seconds", self.jitter,
                                                          (lb.account, lb.trunk, lb.zone), JITTER_BUCKETS_S)
                    elif slot[1] is not None:
                        self._folded(slot[1])
                    h = slot[0]
                    v = jitter_ms / 1000.0
                    h.counts[bisect_left(h.bounds, v) if v == v else len(h.bounds)] += 1   # h.observe(v), inlined
                    h.sum += v
            mos = media.mos
            if mos is not None:
                slot = r.mos
                if slot is None:
                    slot = r.mos = self._hist_slot("warp_call_mos", self.mos, (lb.account, lb.trunk, lb.zone),
                                                   MOS_BUCKETS)
                elif slot[1] is not None:
                    self._folded(slot[1])
                h = slot[0]
                h.counts[bisect_left(h.bounds, mos) if mos == mos else len(h.bounds)] += 1   # h.observe(mos)
                h.sum += mos
            # _remember_media, inlined
            media.ended_at = ts
            ref = call.call_ref
            kept = self.media
            kept[ref] = media
            kept.move_to_end(ref)
            if len(kept) > self.cfg.max_label_sets:
                kept.popitem(last=False)
                self.call_series_dropped += 1

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
