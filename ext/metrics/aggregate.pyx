# Included by _engine.pyx, after quality/call_media.pyx. Per-call aggregation
# (state in metrics/aggregate.pxd): each call event updates C rows through
# places resolved once per CallLabels object; the collectors read the tables
# at scrape time (docs/metrics.md defines every family). Every figure is the
# one warpsniff's Python aggregator gave (tests/agg_reference.py keeps it).

from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from libc.stdint cimport uintptr_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memmove

OTHER = "other"
UNKNOWN_LABEL = "unknown"

DURATION_BUCKETS = (1, 3, 6, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
PDD_BUCKETS_MS = (100, 250, 500, 1000, 2000, 3000, 5000, 8000, 12000, 20000, 30000)
JITTER_BUCKETS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5)
MOS_BUCKETS = (1.0, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.3, 4.4, 4.5)
TERMINATION_REASONS = ("normal", "busy", "no_answer", "cancelled", "failed", "timeout")

# (name, bucket width (s), buckets) of each window, from ws_window_defs
WINDOWS = tuple((ws_window_defs[k].name.decode(), ws_window_defs[k].width, ws_window_defs[k].slots)
                for k in range(WS_WINDOWS))

# the window fields: finished attempts, answered, NER successes, answered
# seconds (the one float), answered calls with a known duration, then one
# short-call count per threshold
cpdef enum:
    F_ATTEMPTS = 0
    F_ANSWERED = 1
    F_NER = 2
    F_SECONDS = 3
    F_TIMED = 4

cdef enum:
    _TABLE_COUNT = 0       # a counter of events: an int per label set
    _TABLE_SUM = 1         # a counter of a measure: a float
    _TABLE_HISTOGRAM = 2   # bucket counts and their sum
    _TABLE_OUTCOME = 3     # finished, answered, NER successes, timed (ints); answered seconds (a float)

# a label object's places, by table
cdef enum:
    _P_ATTEMPT = 0
    _P_PDD = 1
    _P_DURATION = 2        # + status: failed, short, completed
    _P_OUTCOME = 5
    _P_JITTER = 6
    _P_MOS = 7
    _P_MINUTES = 8         # + billable
    _P_SHORT = 10          # + threshold index
    _NPLACES = 10

_STATUS = ("failed", "short", "completed")
_BILLABLE = ("false", "true")
cdef str _INTERRUPTED = "interrupted"   # still up when the input ended: no outcome yet
cdef enum:
    _INTERRUPTED_INDEX = 7              # its index in CallTables.reasons, past the termination reasons


cdef double *_c_doubles(tuple values) except NULL:
    cdef double *out = <double *>malloc((len(values) or 1) * sizeof(double))
    if out == NULL:
        raise MemoryError()
    for i, v in enumerate(values):
        out[i] = v
    return out


cdef class Histogram:
    """Bucket counts (the last one +Inf) and the sum of what was observed:
    what a histogram table holds for one label set, as the scrape reads it."""

    def __cinit__(self, bounds, counts=None, double sum=0.0):
        self.bounds = tuple(bounds)
        self.c_bounds = _c_doubles(self.bounds)
        self.counts = list(counts) if counts is not None else [0] * (len(self.bounds) + 1)
        self.sum = sum

    def __dealloc__(self):
        free(self.c_bounds)

    def observe(self, double value):
        """Counts value in the first bucket whose upper bound is >= value (NaN: +Inf)."""
        self.counts[ws_bucket_of(self.c_bounds, len(self.bounds), value)] += 1
        self.sum += value

    def cumulative(self):
        """[(le, cumulative count)...] ending with +Inf, for HistogramMetricFamily."""
        out, total = [], 0
        for b, c in zip(self.bounds, self.counts):
            total += c
            out.append((str(float(b)), total))
        total += self.counts[len(self.counts) - 1]
        out.append(("+Inf", total))
        return out

    def __repr__(self):
        return f"Histogram(counts={self.counts}, sum={self.sum})"


cdef class MetricTable:
    """One metric's label sets and their values, read like a dict (label
    tuple -> int, float, Histogram or [finished, answered, NER successes,
    answered seconds, timed]) in the order the label sets first came."""

    def __cinit__(self, str metric, int kind, Py_ssize_t limit, tuple bounds=()):
        self.metric = metric
        self.kind = kind
        self.limit = limit
        self.bounds = bounds
        self.nbounds = len(bounds)
        self.c_bounds = _c_doubles(bounds)
        self.label_sets = []
        self.rows_of = {}
        if kind == _TABLE_COUNT:
            ws_agg_rows_init(&self.rows, 1, 0)
        elif kind == _TABLE_SUM:
            ws_agg_rows_init(&self.rows, 0, 1)
        elif kind == _TABLE_HISTOGRAM:
            ws_agg_rows_init(&self.rows, self.nbounds + 1, 1)
        else:
            ws_agg_rows_init(&self.rows, 4, 1)

    def __dealloc__(self):
        ws_agg_rows_free(&self.rows)
        free(self.c_bounds)

    cdef int32_t place(self, tuple key) except -1:
        """The row of a label set, << 1, | 1 when folded: the label set itself
        while the table has it or has room, else the "other"s (made at first
        need). Tables never shrink, so a label set's place holds for good."""
        row = self.rows_of.get(key)
        if row is not None:
            return <int32_t>row << 1
        cdef bint folded = len(self.label_sets) >= self.limit
        if folded:
            key = (OTHER,) * len(key)
            row = self.rows_of.get(key)
            if row is not None:
                return <int32_t>row << 1 | 1
        cdef int64_t added = ws_agg_rows_add(&self.rows)
        if added < 0 or added >= (1 << 30):
            raise MemoryError()
        self.label_sets.append(key)
        self.rows_of[key] = added
        return <int32_t>added << 1 | folded

    cdef object value(self, uint32_t row):
        cdef const int64_t *c = &self.rows.counts[<size_t>row * self.rows.ncounts]
        cdef double s = self.rows.sums[<size_t>row * self.rows.nsums] if self.rows.nsums else 0.0
        if self.kind == _TABLE_COUNT:
            return c[0]
        if self.kind == _TABLE_SUM:
            return s
        if self.kind == _TABLE_HISTOGRAM:
            return Histogram(self.bounds, [c[k] for k in range(self.nbounds + 1)], s)
        return [c[0], c[1], c[2], s, c[3]]

    def __len__(self):
        return len(self.label_sets)

    def __iter__(self):
        return iter(list(self.label_sets))

    def __contains__(self, key):
        return key in self.rows_of

    def __getitem__(self, key):
        return self.value(self.rows_of[key])

    def get(self, key, default=None):
        row = self.rows_of.get(key)
        return default if row is None else self.value(row)

    def keys(self):
        return list(self.label_sets)

    def values(self):
        return [self.value(row) for row in range(len(self.label_sets))]

    def items(self):
        return [(key, self.value(row)) for row, key in enumerate(self.label_sets)]

    def __repr__(self):
        return f"MetricTable({self.metric!r}, {dict(self.items())!r})"


cdef class WindowedSums:
    """One label set's 5m/1h/24h rings (ws_windows), on their own: `fields`
    values per event, whole counts but for `value_field`, a float measure."""
    cdef ws_windows w

    def __cinit__(self, uint32_t fields, value_field=None):
        ws_windows_init(&self.w, fields, fields if value_field is None else <uint32_t>value_field)
        if ws_windows_add_set(&self.w) < 0:
            raise MemoryError()

    def __dealloc__(self):
        ws_windows_free(&self.w)

    def add(self, double ts, values):
        """Adds values[k] to field k; count fields take whole numbers >= 0."""
        cdef int64_t *counts = <int64_t *>calloc(self.w.fields or 1, sizeof(int64_t))
        cdef double value = 0.0
        if counts == NULL:
            raise MemoryError()
        try:
            for k, v in enumerate(values):
                if k == self.w.value_field:
                    value = v
                elif v:
                    if v < 0 or v != int(v):
                        raise ValueError(f"field {k} counts events: {v!r} is not a whole number >= 0")
                    counts[k] = int(v)
            if ws_windows_add(&self.w, 0, ts, counts, value) != 0:
                raise ValueError(f"time {ts!r} has no bucket")
        finally:
            free(counts)

    def total(self, str window, double now):
        return _window_total(&self.w, 0, _window_index(window), now)


cdef uint32_t _window_index(str window) except? 0xFFFFFFFF:
    for k in range(WS_WINDOWS):
        if WINDOWS[k][0] == window:
            return k
    raise KeyError(window)


cdef list _window_total(const ws_windows *w, uint32_t row, uint32_t k, double now):
    cdef double *out = <double *>malloc((w.fields or 1) * sizeof(double))
    if out == NULL:
        raise MemoryError()
    try:
        if ws_windows_total(w, row, k, now, out) < 0:
            raise MemoryError()
        return [out[f] for f in range(w.fields)]
    finally:
        free(out)


cdef inline _MediaSums *_sums_of(_Series *s) noexcept:
    if s.sums == NULL:
        return &s.inline_sums[0]
    return s.sums


cdef class CallTables:
    """The call metric tables, updated per call event (attempt started, PDD
    measured, call finished, a media join's batch of finished calls) and
    read at scrape time; `label_config` gives the limits and thresholds,
    read once. Each metric holds at most max_label_sets label sets, the
    rest folded into "other" (counted per update in `overflows`)."""

    def __init__(self, label_config, Py_ssize_t max_label_objects=8192):
        limit = label_config.max_label_sets
        self.attempts = MetricTable("warp_call_attempts_total", _TABLE_COUNT, limit)
        self.durations = MetricTable("warp_call_duration_seconds", _TABLE_HISTOGRAM, limit, DURATION_BUCKETS)
        self.pdd = MetricTable("warp_pdd_milliseconds", _TABLE_HISTOGRAM, limit, PDD_BUCKETS_MS)
        self.terminations = MetricTable("warp_call_terminations_total", _TABLE_COUNT, limit)
        self.minutes = MetricTable("warp_minutes_used_total", _TABLE_SUM, limit)
        self.outcomes = MetricTable("warp_asr_ratio", _TABLE_OUTCOME, limit)
        self.short_calls = MetricTable("warp_short_calls_total", _TABLE_COUNT, limit)
        self.jitter = MetricTable("warp_rtp_jitter_seconds", _TABLE_HISTOGRAM, limit, JITTER_BUCKETS_S)
        self.mos = MetricTable("warp_call_mos", _TABLE_HISTOGRAM, limit, MOS_BUCKETS)
        self.overflows = {}
        self.thresholds = tuple(label_config.short_call_thresholds)
        if not self.thresholds:
            raise ValueError("at least one short-call threshold")
        self.nthresholds = len(self.thresholds)
        self.c_thresholds = _c_doubles(self.thresholds)
        self.short_labels = tuple(str(t) for t in self.thresholds)
        self.ner_codes = frozenset(label_config.ner_codes)
        self.min_billable_s = label_config.min_billable_seconds
        self.retention_s = label_config.call_series_retention_s
        self.max_series = limit
        self.reasons = {reason: i for i, reason in enumerate(TERMINATION_REASONS)}
        self.reasons[_INTERRUPTED] = _INTERRUPTED_INDEX
        ws_windows_init(&self.windows, F_TIMED + 1 + self.nthresholds, F_SECONDS)
        self.max_label_objects = max(1, max_label_objects)
        self.nplaces = _NPLACES + self.nthresholds

    def __dealloc__(self):
        self._forget_label_objects()
        free(self.label_objects)
        free(self.label_accounts)
        free(self.places)
        ws_u64_map_free(&self.label_index)
        ws_u64_map_free(&self.termination_index)
        cdef Py_ssize_t i
        for i in range(self.series_start, self.series_end):
            if not self.series[i].replaced:
                self._drop_series(&self.series[i])
        free(self.series)
        ws_u64_map_free(&self.series_index)
        ws_windows_free(&self.windows)
        free(self.c_thresholds)

    # -- label objects -----------------------------------------------------

    cdef Py_ssize_t _label_object(self, object lb) except -1:
        """The index of a CallLabels object's places (labels are shared
        objects, one per label set, so an event finds its rows by the
        object's address, without building key tuples). Equal label sets in
        distinct objects get an index each (they resolve to the same rows).
        Emptied when it holds max_label_objects."""
        cdef uint64_t key = <uintptr_t><PyObject *>lb
        cdef int64_t found = ws_u64_map_get(&self.label_index, key)
        if found >= 0:
            return found
        if self.nlabels >= self.max_label_objects:
            self._forget_label_objects()
        cdef Py_ssize_t i = self.nlabels
        cdef PyObject **objects
        cdef int32_t *places
        if i == self.label_capacity:
            capacity = min(max(16, 2 * self.label_capacity), self.max_label_objects)
            objects = <PyObject **>realloc(self.label_objects, capacity * sizeof(PyObject *))
            if objects == NULL:
                raise MemoryError()
            self.label_objects = objects
            objects = <PyObject **>realloc(self.label_accounts, capacity * sizeof(PyObject *))
            if objects == NULL:
                raise MemoryError()
            self.label_accounts = objects
            places = <int32_t *>realloc(self.places, capacity * self.nplaces * sizeof(int32_t))
            if places == NULL:
                raise MemoryError()
            self.places = places
            self.label_capacity = capacity
        account = lb.account
        if ws_u64_map_put(&self.label_index, key, i) != 0:
            raise MemoryError()
        Py_INCREF(lb)   # no other object can have its address while it is here
        self.label_objects[i] = <PyObject *>lb
        Py_INCREF(account)
        self.label_accounts[i] = <PyObject *>account
        for k in range(self.nplaces):
            self.places[i * self.nplaces + k] = -1
        self.nlabels += 1
        return i

    @property
    def cached_label_objects(self):
        """CallLabels objects whose places are kept (at most max_label_objects)."""
        return self.nlabels

    cdef void _forget_label_objects(self) noexcept:
        cdef Py_ssize_t i
        for i in range(self.nlabels):
            Py_DECREF(<object>self.label_objects[i])
            Py_DECREF(<object>self.label_accounts[i])
        self.nlabels = 0
        ws_u64_map_clear(&self.label_index)
        ws_u64_map_clear(&self.termination_index)

    cdef int _fold(self, MetricTable table, int32_t place) except -1:
        """A folded label set's update counts as an overflow, every time."""
        if place & 1:
            self.overflows[table.metric] = self.overflows.get(table.metric, 0) + 1
        return 0

    # -- events --------------------------------------------------------------

    def attempt_started(self, call):
        lb = _CALL.get(call, _LABELS)
        cdef int32_t *p = &self.places[self._label_object(lb) * self.nplaces]
        if p[_P_ATTEMPT] < 0:
            p[_P_ATTEMPT] = self.attempts.place((lb.account, lb.trunk, lb.direction, lb.zone,
                                                 lb.destination_country, lb.origination_country))
        self._fold(self.attempts, p[_P_ATTEMPT])
        self.attempts.rows.counts[p[_P_ATTEMPT] >> 1] += 1

    def pdd_measured(self, call):
        """PDD is observed the moment it ends (first 18x or 2xx), not at hang-up."""
        lb = _CALL.get(call, _LABELS)
        cdef double pdd_ms = _CALL.get(call, _PDD_MS)
        cdef int32_t *p = &self.places[self._label_object(lb) * self.nplaces]
        if p[_P_PDD] < 0:
            p[_P_PDD] = self.pdd.place((lb.account, lb.trunk, lb.provider, lb.zone))
        self._fold(self.pdd, p[_P_PDD])
        ws_agg_observe(&self.pdd.rows, p[_P_PDD] >> 1, self.pdd.c_bounds, self.pdd.nbounds, pdd_ms)

    def call_finished(self, call, media=None):
        """One finished call, with its media figures (a CallMedia) or none.
        A call still up when the input ended (reason "interrupted") has no
        outcome to count yet; its media is kept as an ended call's."""
        if media is None:
            self._finish(call, None, -1, False, NULL, 0, False, 0.0, None)
            return
        streams = media.streams
        cdef Py_ssize_t i = 0
        cdef _MediaSums *sums = <_MediaSums *>malloc((len(streams) or 1) * sizeof(_MediaSums))
        if sums == NULL:
            raise MemoryError()
        keep = list(streams.items())   # holds the keys `sums` points to
        try:
            for (direction, codec), (lost, expected, jitter_ms) in keep:
                sums[i].direction = <PyObject *>direction
                sums[i].codec = <PyObject *>codec
                sums[i].lost = lost
                sums[i].expected = expected
                sums[i].max_jitter_ms = jitter_ms
                i += 1
            mos = media.mos
            self._finish(call, None, -1, True, sums, i, mos is not None, mos if mos is not None else 0.0,
                         media.account)
        finally:
            free(sums)

    def calls_finished(self, list calls, CallMediaPass media):
        """call_finished for each of a media join's finishing calls, in order,
        with its figures from `media` (a CallMediaPass over these calls)."""
        if media.calls is not calls:
            raise ValueError("the media pass is not of these calls")
        cdef Py_ssize_t ci
        for ci in range(len(calls)):
            self._finish(calls[ci], media.labels[ci], media.refs[ci], True,
                         &media.sums[media.first[ci]] if media.count[ci] else NULL, media.count[ci],
                         media.has_mos[ci], media.mos[ci], None)

    cdef int _finish(self, object call, object lb, int64_t ref, bint with_media, const _MediaSums *sums,
                     uint32_t nsums, bint has_mos, double mos, object account) except -1:
        """A finished call counted, with its media when `with_media` (`sums`,
        `has_mos`/`mos`, kept for the per-call series under `account`, None:
        its labels' account). `lb` its labels and `ref` its call_ref when read
        already (None, -1: not yet)."""
        reason = _CALL.get(call, _REASON)
        reason_index = self.reasons.get(reason)   # _INTERRUPTED_INDEX, a termination reason's, or None
        end_ts = _CALL.get(call, _END_TS)
        ended_at = end_ts if end_ts is not None else _CALL.get(call, _LAST_SIP_TS)
        if reason_index is not None and <int>reason_index == _INTERRUPTED_INDEX:
            # still up when the input ended: no outcome to count yet beyond the answer
            if with_media:
                if account is None:
                    account = (_CALL.get(call, _LABELS) if lb is None else lb).account
                self._remember(call, ref, ended_at, sums, nsums, has_mos, mos, account)
            return 0
        if lb is None:
            lb = _CALL.get(call, _LABELS)
        cdef Py_ssize_t obj = self._label_object(lb)
        cdef int32_t *p = &self.places[obj * self.nplaces]
        cdef double ts = ended_at
        duration_s = _CALL.get(call, _DURATION_S)
        cdef bint answered = duration_s is not None or _CALL.get(call, _ANSWERED)   # a duration is from the answer
        cdef bint timed = answered and duration_s is not None
        cdef double duration = duration_s if duration_s is not None else 0.0
        cdef double seconds = duration if duration else 0.0   # duration or 0.0
        cdef int status = 0 if not answered else 1 if duration_s is not None and duration < self.c_thresholds[0] else 2
        cdef int32_t place
        cdef uint32_t i
        cdef int64_t c
        cdef uint64_t key
        cdef bint billable

        place = p[_P_DURATION + status]
        if place < 0:
            place = p[_P_DURATION + status] = self.durations.place(
                (lb.account, lb.trunk, lb.direction, lb.zone, _STATUS[status]))
        self._fold(self.durations, place)
        ws_agg_observe(&self.durations.rows, place >> 1, self.durations.c_bounds, self.durations.nbounds, seconds)

        code = _CALL.get(call, _FINAL_CODE)
        if reason_index is not None:
            c = -1                      # the code's label, cached per label object and reason (0: unknown)
            if code is None:
                c = 0
            elif type(code) is int:
                c = code if 100 <= code <= 699 else 0
            if c >= 0:
                key = (<uint64_t>obj << 16) | (<uint64_t>reason_index << 10) | <uint64_t>c
                found = ws_u64_map_get(&self.termination_index, key)
                if found >= 0:
                    place = <int32_t>found
                else:
                    place = self.terminations.place((lb.account, lb.trunk, reason, str(c) if c else UNKNOWN_LABEL))
                    if ws_u64_map_put(&self.termination_index, key, place) != 0:
                        raise MemoryError()
            else:
                place = self.terminations.place(
                    (lb.account, lb.trunk, reason, str(code) if 100 <= code <= 699 else UNKNOWN_LABEL))
            self._fold(self.terminations, place)
            self.terminations.rows.counts[place >> 1] += 1

        # E.425 NER: answered, busy, no-answer or terminal rejection; 487 when the caller gave up after ringing
        cdef bint ner = answered or (code is not None and (
            code in self.ner_codes or (code == 487 and _CALL.get(call, _RINGING))))
        place = p[_P_OUTCOME]
        if place < 0:
            place = p[_P_OUTCOME] = self.outcomes.place((lb.account, lb.trunk, lb.provider, lb.zone))
            while self.windows.n < self.outcomes.rows.n:   # an outcome row's rings share its index
                if ws_windows_add_set(&self.windows) < 0:
                    raise MemoryError()
        self._fold(self.outcomes, place)
        cdef int64_t *row = &self.outcomes.rows.counts[(place >> 1) * 4]
        row[0] += 1
        row[1] += answered
        row[2] += ner
        row[3] += timed
        self.outcomes.rows.sums[place >> 1] += seconds
        cdef uint32_t outcome_row = place >> 1

        # the window fields of this event
        cdef int64_t counts[_NPLACES + 64]
        cdef int64_t *window_counts = counts
        if self.windows.fields > _NPLACES + 64:
            window_counts = <int64_t *>calloc(self.windows.fields, sizeof(int64_t))
            if window_counts == NULL:
                raise MemoryError()
        try:
            for i in range(self.windows.fields):
                window_counts[i] = 0
            window_counts[F_ATTEMPTS] = 1
            window_counts[F_ANSWERED] = answered
            window_counts[F_NER] = ner
            if timed:
                window_counts[F_TIMED] = 1
                for i in range(self.nthresholds):
                    if duration < self.c_thresholds[i]:
                        window_counts[F_TIMED + 1 + i] = 1
                        place = p[_P_SHORT + i]
                        if place < 0:
                            place = p[_P_SHORT + i] = self.short_calls.place(
                                (lb.account, lb.trunk, self.short_labels[i]))
                        self._fold(self.short_calls, place)
                        self.short_calls.rows.counts[place >> 1] += 1
                billable = duration >= self.min_billable_s   # (a bint)
                place = p[_P_MINUTES + billable]
                if place < 0:
                    place = p[_P_MINUTES + billable] = self.minutes.place(
                        (lb.account, lb.trunk, lb.zone, _BILLABLE[billable]))
                self._fold(self.minutes, place)
                self.minutes.rows.sums[place >> 1] += duration / 60.0
            if ws_windows_add(&self.windows, outcome_row, ts, window_counts, seconds) != 0:
                raise ValueError(f"call end {ts!r} has no window bucket")
        finally:
            if window_counts != counts:
                free(window_counts)

        if with_media:
            for i in range(nsums):
                place = p[_P_JITTER]
                if place < 0:
                    place = p[_P_JITTER] = self.jitter.place((lb.account, lb.trunk, lb.zone))
                self._fold(self.jitter, place)
                ws_agg_observe(&self.jitter.rows, place >> 1, self.jitter.c_bounds, self.jitter.nbounds,
                               sums[i].max_jitter_ms / 1000.0)
            if has_mos:
                place = p[_P_MOS]
                if place < 0:
                    place = p[_P_MOS] = self.mos.place((lb.account, lb.trunk, lb.zone))
                self._fold(self.mos, place)
                ws_agg_observe(&self.mos.rows, place >> 1, self.mos.c_bounds, self.mos.nbounds, mos)
            self._remember(call, ref, ended_at, sums, nsums, has_mos, mos,
                           <object>self.label_accounts[obj] if account is None else account)
        return 0

    # -- ended calls' per-call series --------------------------------------

    cdef int _remember(self, object call, int64_t ref, object ended_at, const _MediaSums *sums, uint32_t nsums,
                       bint has_mos, double mos, object account) except -1:
        """Keeps an ended call's per-call series for the retention time; at
        most max_label_sets of them (a burst of short calls must not make a
        scrape of hundreds of thousands of series): the oldest go first,
        counted."""
        if ref < 0:
            ref = <uint32_t>_CALL.get(call, _CALL_REF)
        call_id = _CALL.get(call, _CALL_ID)
        cdef int64_t before = ws_u64_map_get(&self.series_index, ref)
        cdef _Series *s
        cdef _MediaSums *copies = NULL
        cdef uint32_t i
        if nsums > 2:
            copies = <_MediaSums *>malloc(nsums * sizeof(_MediaSums))
            if copies == NULL:
                raise MemoryError()
        if self.series_end == self.series_capacity and self._make_series_room() != 0:
            free(copies)
            raise MemoryError()
        if ws_u64_map_put(&self.series_index, ref, <int64_t>(self.series_base + self.series_end)) != 0:
            free(copies)
            raise MemoryError()
        if before >= 0:   # the call's earlier series goes; its place is at the end now
            s = &self.series[before - <int64_t>self.series_base]
            self._drop_series(s)
            s.replaced = True
            self.nseries -= 1
        s = &self.series[self.series_end]
        self.series_end += 1
        self.nseries += 1
        s.call_ref = ref
        s.replaced = False
        s.has_end = ended_at is not None
        s.ended_at = ended_at if ended_at is not None else 0.0
        s.has_mos = has_mos
        s.mos = mos
        Py_INCREF(account)
        s.account = <PyObject *>account
        Py_INCREF(call_id)
        s.call_id = <PyObject *>call_id
        s.nsums = nsums
        s.sums = copies
        if nsums:
            memcpy(_sums_of(s), sums, nsums * sizeof(_MediaSums))
            for i in range(nsums):
                Py_INCREF(<object>sums[i].direction)
                Py_INCREF(<object>sums[i].codec)
        if self.nseries > self.max_series:
            self._pop_oldest_series()
            self.call_series_dropped += 1
        return 0

    cdef int _make_series_room(self) except -1:
        """Room for one more record at series_end: the live part moved to the
        front, or the array doubled."""
        cdef Py_ssize_t live = self.series_end - self.series_start, capacity
        cdef _Series *grown
        if self.series_start and self.series_start >= live:
            memmove(self.series, &self.series[self.series_start], live * sizeof(_Series))
            self.series_base += self.series_start
            self.series_start, self.series_end = 0, live
            return 0
        capacity = max(16, 2 * self.series_capacity)
        grown = <_Series *>realloc(self.series, capacity * sizeof(_Series))
        if grown == NULL:
            return -1
        self.series = grown
        self.series_capacity = capacity
        return 0

    cdef void _drop_series(self, _Series *s) noexcept:
        cdef uint32_t i
        cdef _MediaSums *sums = _sums_of(s)
        for i in range(s.nsums):
            Py_DECREF(<object>sums[i].direction)
            Py_DECREF(<object>sums[i].codec)
        free(s.sums)
        s.sums = NULL
        s.nsums = 0
        Py_DECREF(<object>s.account)
        Py_DECREF(<object>s.call_id)

    cdef _Series *_oldest_series(self) noexcept:
        """The oldest live record (records replaced by a later one are passed
        over and let go), NULL when none."""
        while self.series_start < self.series_end and self.series[self.series_start].replaced:
            self.series_start += 1
        if self.series_start == self.series_end:
            self.series_base += self.series_end
            self.series_start = self.series_end = 0
            return NULL
        return &self.series[self.series_start]

    cdef int _pop_oldest_series(self) except -1:
        cdef _Series *s = self._oldest_series()
        if s == NULL:
            return 0
        ws_u64_map_remove(&self.series_index, s.call_ref)
        self._drop_series(s)
        self.series_start += 1
        self.nseries -= 1
        return 0

    def expire_media(self, double now):
        """Per-call series go away call_series_retention_s after the call ended."""
        cdef _Series *s
        while self.nseries:
            s = self._oldest_series()
            if s.has_end and now - s.ended_at <= self.retention_s:
                break
            self._pop_oldest_series()

    def kept_series(self):
        """[(call_ref, account, call_id, streams, MOS or None, ended at or
        None)] of the ended calls keeping per-call series, oldest first; each
        one's streams as CallMedia.streams has them."""
        out = []
        cdef Py_ssize_t i
        cdef uint32_t e
        cdef _Series *s
        cdef _MediaSums *sums
        for i in range(self.series_start, self.series_end):
            s = &self.series[i]
            if s.replaced:
                continue
            streams = {}
            sums = _sums_of(s)
            for e in range(s.nsums):
                streams[(<object>sums[e].direction, <object>sums[e].codec)] = [
                    sums[e].lost, sums[e].expected, sums[e].max_jitter_ms]
            out.append((s.call_ref, <object>s.account, <object>s.call_id, streams,
                        s.mos if s.has_mos else None, s.ended_at if s.has_end else None))
        return out

    @property
    def series_count(self):
        return self.nseries

    # -- windows -------------------------------------------------------------

    def window_ratios(self, double now):
        """[(label set, window, totals)] for every outcome label set and window
        (totals: the window fields as floats, F_*)."""
        out = []
        cdef int k
        for row, key in enumerate(self.outcomes.label_sets):
            for k in range(WS_WINDOWS):
                out.append((key, WINDOWS[k][0], _window_total(&self.windows, row, k, now)))
        return out

    def window_total(self, tuple key, str window, double now):
        """One label set's totals over one window (window_ratios' item)."""
        return _window_total(&self.windows, self.outcomes.rows_of[key], _window_index(window), now)
