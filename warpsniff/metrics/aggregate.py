"""Per-call aggregation into the platform's metric families.

Updated once per call event (attempt start, PDD, call end: a media join
hands its finishing calls over in one batch), never per packet; the
collectors read these tables at scrape time. Every table is keyed by label
values that come from the label configuration or from closed sets, and
each holds at most `limits.max_label_sets` label sets, the rest folded
into "other".

The tables live in the engine (ext/metrics/aggregate.pyx, `CallTables`: C
rows per label set, windows, the ended calls' per-call series as compact
records); this module is their Python face.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from warpsniff._engine import (  # noqa: F401 (the collectors' and tests' names for them)
    F_ANSWERED,
    F_ATTEMPTS,
    F_NER,
    F_SECONDS,
    F_TIMED,
    CallTables,
    Histogram,
    WindowedSums,
)

MAX_CACHED_LABEL_SETS = 8192   # CallLabels objects whose table places CallAggregator keeps at hand


@dataclass
class CallMedia:
    """What the per-call media series show for one call."""
    account: str
    call_id: str
    streams: dict = field(default_factory=dict)   # (direction, codec) -> [lost, expected, max jitter ms]
    mos: Optional[float] = None
    ended_at: Optional[float] = None


class CallAggregator(CallTables):
    """The call metric tables (CallTables) for one label configuration.

    Events: attempt_started(call), pdd_measured(call), call_finished(call,
    media=None) and, for a media join, calls_finished(calls, media_pass);
    expire_media(now) lets ended calls' series go. The tables (attempts,
    durations, pdd, terminations, minutes, outcomes, short_calls, jitter,
    mos) read like dicts of label tuple -> value in first-use order;
    `overflows` counts the updates folded into "other", per metric."""

    def __init__(self, label_config):
        super().__init__(label_config, MAX_CACHED_LABEL_SETS)
        self.cfg = label_config

    @property
    def media(self) -> dict:
        """call_ref -> CallMedia of the ended calls keeping per-call series
        (call_series_retention_s after they ended, at most max_label_sets of
        them), oldest first: made from the compact records when asked."""
        return {ref: CallMedia(account, call_id, streams, mos, ended_at)
                for ref, account, call_id, streams, mos, ended_at in self.kept_series()}
