# Per-call aggregation state (metrics/aggregate.pyx): the call metrics as C
# rows per label set (metrics/ws_aggregate.h), each label set's places in
# them kept per CallLabels object, and the ended calls' per-call series as
# compact records. warpsniff.metrics.aggregate.CallAggregator is its Python
# face; the collectors read it at scrape time.

from cpython.object cimport PyObject


cdef class Histogram:
    cdef readonly tuple bounds
    cdef double *c_bounds
    cdef public list counts            # per bucket, the last one +Inf
    cdef public double sum


cdef class MetricTable:
    # one metric's label sets: at most `limit`, the rest folded into "other"
    cdef readonly str metric           # the name its folded updates count under
    cdef readonly int kind             # _TABLE_*
    cdef readonly tuple bounds         # a histogram's bucket bounds
    cdef double *c_bounds
    cdef uint32_t nbounds
    cdef Py_ssize_t limit
    cdef list label_sets               # label tuples in first-use order (the scrape's order)
    cdef dict rows_of                  # label tuple -> its row in `rows`
    cdef ws_agg_rows rows

    cdef int32_t place(self, tuple key) except -1
    cdef object value(self, uint32_t row)


cdef struct _Series:                   # an ended call's per-call series (CallMedia's figures)
    uint32_t call_ref
    bint replaced                      # a later record of the same call_ref took its place
    bint has_end, has_mos
    double ended_at, mos
    PyObject *account
    PyObject *call_id
    uint32_t nsums
    _MediaSums *sums                   # NULL: they are in inline_sums; owns its references
    _MediaSums inline_sums[2]          # a call's usual (direction, codec) pairs, without a block of their own


cdef class CallTables:
    cdef readonly MetricTable attempts, durations, pdd, terminations, minutes, outcomes, short_calls, jitter, mos
    cdef readonly dict overflows       # metric -> label-set updates folded into "other"
    cdef readonly tuple thresholds     # short-call thresholds (s); the first splits short from completed
    cdef double *c_thresholds
    cdef uint32_t nthresholds
    cdef tuple short_labels            # each threshold as its label value
    cdef object ner_codes
    cdef double min_billable_s, retention_s
    cdef Py_ssize_t max_series
    cdef dict reasons                  # termination reason -> its index; "interrupted" too
    cdef ws_windows windows            # per outcome row (same index): the 5m/1h/24h rings
    # each CallLabels object's places in the tables (row << 1 | folded, -1 until
    # first needed): by the object's address, which it keeps while held here
    cdef Py_ssize_t max_label_objects
    cdef ws_u64_map label_index
    cdef PyObject **label_objects
    cdef PyObject **label_accounts     # [object] its account label
    cdef int32_t *places               # [object][_NPLACES + thresholds]
    cdef Py_ssize_t nlabels, label_capacity, nplaces
    cdef ws_u64_map termination_index  # object, reason, code -> place
    # ended calls' series, oldest first: series[series_start:series_end], call_ref -> sequence number
    cdef _Series *series
    cdef Py_ssize_t series_start, series_end, series_capacity, nseries
    cdef uint64_t series_base          # the sequence number of series[0]
    cdef ws_u64_map series_index
    cdef readonly uint64_t call_series_dropped

    cdef Py_ssize_t _label_object(self, object lb) except -1
    cdef void _forget_label_objects(self) noexcept
    cdef int _fold(self, MetricTable table, int32_t place) except -1
    cdef int _finish(self, object call, object lb, int64_t ref, bint with_media, const _MediaSums *sums,
                     uint32_t nsums, bint has_mos, double mos, object account) except -1
    cdef int _remember(self, object call, int64_t ref, object ended_at, const _MediaSums *sums, uint32_t nsums,
                       bint has_mos, double mos, object account) except -1
    cdef int _make_series_room(self) except -1
    cdef void _drop_series(self, _Series *s) noexcept
    cdef _Series *_oldest_series(self) noexcept
    cdef int _pop_oldest_series(self) except -1
