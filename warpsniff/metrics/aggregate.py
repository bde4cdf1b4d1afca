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


class CallAggregator:
    def __init__(self, label_config):
        self.cfg = label_config
        self.thresholds = tuple(label_config.short_call_thresholds)
        self.no_shorts = (0,) * len(self.thresholds)
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
        # window counts of an event, packed (windows.count_unit)
        self._failed = count_unit(F_ATTEMPTS)
        self._failed_ner = count_unit(F_ATTEMPTS) + count_unit(F_NER)
        self._answered = self._failed_ner + count_unit(F_ANSWERED)   # answered: always an NER success
        self._timed = self._answered + count_unit(F_TIMED)
        self._short_units = tuple(count_unit(F_TIMED + 1 + i) for i in range(len(self.thresholds)))

    # -- events ---------------------------------------------------------------

    def _count(self, metric: str, table: dict, key: tuple, amount: float = 1) -> None:
        key = self.guard.key(metric, table, key)
        table[key] = table.get(key, 0) + amount

    def _hist(self, metric: str, table: dict, key: tuple, bounds) -> Histogram:
        key = self.guard.key(metric, table, key)
        h = table.get(key)
        if h is None:
            h = table[key] = Histogram(bounds)
        return h

    def attempt_started(self, call) -> None:
        lb = call.labels
        self._count("warp_call_attempts_total", self.attempts,
                    (lb.account, lb.trunk, lb.direction, lb.zone, lb.destination_country,
                     lb.origination_country))

    def pdd_measured(self, call) -> None:
        """PDD is observed the moment it ends (first 18x or 2xx), not at hang-up."""
        lb = call.labels
        self._hist("warp_pdd_milliseconds", self.pdd, (lb.account, lb.trunk, lb.provider, lb.zone),
                   PDD_BUCKETS_MS).observe(call.pdd_ms)

    def call_finished(self, call, media: Optional[CallMedia] = None) -> None:
        lb = call.labels
        ts = call.end_ts if call.end_ts is not None else call.last_sip_ts
        answered = call.answered
        duration = call.duration_s
        if call.reason == "interrupted":
            # still up when the input ended: no outcome to count yet beyond the answer
            if media is not None:
                self._remember_media(call, media)
            return
        short_threshold = self.thresholds[0]
        if not answered:
            status = "failed"
        elif duration is not None and duration < short_threshold:
            status = "short"
        else:
            status = "completed"
        self._hist("warp_call_duration_seconds", self.durations,
                   (lb.account, lb.trunk, lb.direction, lb.zone, status),
                   DURATION_BUCKETS).observe(duration or 0.0)
        if call.reason in TERMINATION_REASONS:
            self._count("warp_call_terminations_total", self.terminations,
                        (lb.account, lb.trunk, call.reason, sip_code_label(call.final_code)))
        ner = ner_success(call, self.cfg.ner_codes)
        seconds = duration or 0.0
        timed = 1 if answered and duration is not None else 0
        key4 = self.guard.key("warp_asr_ratio", self.outcomes, (lb.account, lb.trunk, lb.provider, lb.zone))
        row = self.outcomes.setdefault(key4, [0, 0, 0, 0.0, 0])
        row[0] += 1
        row[1] += int(answered)
        row[2] += int(ner)
        row[3] += seconds
        row[4] += timed
        if timed:
            counts = self._timed
            for i, t in enumerate(self.thresholds):
                if duration < t:
                    counts += self._short_units[i]
                    self._count("warp_short_calls_total", self.short_calls, (lb.account, lb.trunk, str(t)))
        elif answered:
            counts = self._answered
        else:
            counts = self._failed_ner if ner else self._failed
        win = self.windows.get(key4)
        if win is None:
            win = self.windows[key4] = WindowedSums(5 + len(self.thresholds), F_SECONDS)
        win.add_packed(ts, counts, seconds)
        if answered and duration is not None:
            billable = "true" if duration >= self.cfg.min_billable_seconds else "false"
            self._count("warp_minutes_used_total", self.minutes, (lb.account, lb.trunk, lb.zone, billable),
                        duration / 60.0)
        if media is not None:
            for lost, expected, jitter_ms in media.streams.values():
                self._hist("warp_rtp_jitter_seconds", self.jitter, (lb.account, lb.trunk, lb.zone),
                           JITTER_BUCKETS_S).observe(jitter_ms / 1000.0)
            if media.mos is not None:
                self._hist("warp_call_mos", self.mos, (lb.account, lb.trunk, lb.zone), MOS_BUCKETS).observe(media.mos)
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
