# Included by _engine.pyx. Calls' media figures from their stream records in
# one typed pass (state in quality/call_media.pxd), for a media join's
# finishing calls (CallTables.calls_finished takes the pass as it is) and for
# the calls up in live_media (by_call: Python views), stream by stream as
# QualityContext.default_mos scores and docs/metrics.md directs them
# (tests/test_batch_media.py).

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.list cimport PyList_GET_ITEM
from cpython.object cimport Py_EQ, Py_TYPE, PyObject, PyObject_RichCompareBool
from libc.math cimport NAN
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memset

# SDP encoding names come off the wire: at most this many are remembered
MAX_NAMED_CODECS = 4096

cdef str _INBOUND = "inbound"
cdef str _OUTBOUND = "outbound"
cdef str _NO_CODEC = "unknown"


cdef extern from *:
    """
    #define ws_prefetch(p) __builtin_prefetch((const void *)(p))
    """
    void ws_prefetch(const void *p) noexcept nogil

cdef extern from *:
    """
    #define ws_generic_getattr(t) (((PyTypeObject *)(t))->tp_getattro == PyObject_GenericGetAttr)
    """
    bint ws_generic_getattr(object type_) noexcept   # getattr of its objects is the generic one


cdef class CallFields:
    """Reads an object's attributes by name, through the data descriptors its
    type holds for those names (what getattr finds first for them: a cdef
    class's fields, properties), looked up once per type rather than at every
    read (getattr's type lookup is most of a read of a call's field). For
    another type, a type whose getattr is its own, or a name without a data
    descriptor: getattr."""

    def __init__(self, names):
        self.names = tuple(names)
        self.owner = None
        self.descriptors = []

    cdef inline object get(self, object obj, Py_ssize_t i):
        cdef PyObject *d
        if type(obj) is self.owner:
            d = PyList_GET_ITEM(self.descriptors, i)
            if d != <PyObject *>None:
                return Py_TYPE(<object>d).tp_descr_get(<object>d, obj, self.owner)
            return getattr(obj, self.names[i])
        return self._learn(obj, i)

    cdef object _learn(self, object obj, Py_ssize_t i):
        self.owner = type(obj)
        self.descriptors = [None] * len(self.names)
        if ws_generic_getattr(self.owner):
            for k, name in enumerate(self.names):
                for base in self.owner.__mro__:
                    d = base.__dict__.get(name)
                    if d is not None:
                        if Py_TYPE(d).tp_descr_get != NULL and Py_TYPE(d).tp_descr_set != NULL:
                            self.descriptors[k] = d
                        break
        return self.get(obj, i)


# the fields of a Call that the aggregator reads (warpsniff.sip.calls.Call, or any object with them)
cdef CallFields _CALL = CallFields(("call_ref", "labels", "reason", "end_ts",
                                    "last_sip_ts", "duration_s", "answered", "final_code", "ringing", "call_id",
                                    "pdd_ms"))


def call_fields_for_tests(obj, str name):
    """getattr(obj, name) as the joins and the aggregator read a Call's field
    (one of _CALL's names)."""
    return _CALL.get(obj, _CALL.names.index(name))


cdef enum:
    _CALL_REF = 0
    _LABELS = 1
    _REASON = 2
    _END_TS = 3
    _LAST_SIP_TS = 4
    _DURATION_S = 5
    _ANSWERED = 6
    _FINAL_CODE = 7
    _RINGING = 8
    _CALL_ID = 9
    _PDD_MS = 10


cdef class _Codec:
    pass


cdef class StreamScorer:
    """Each payload type's codec label and E-model impairment, looked up in
    the codec table once and kept (CodecTable.lookup: by SDP encoding name,
    else by static payload type): the impairment with packet-loss
    concealment, or without it when `plc` is off and the codec has one."""

    def __init__(self, codecs, bint plc=True):
        self.codecs = codecs
        self.plc = plc
        self.static_codecs = [None] * 128
        self.named_codecs = {}

    cdef _Codec codec(self, uint32_t pt, object encoding):
        cdef _Codec c = None
        if encoding:
            c = self.named_codecs.get(encoding)
        elif pt < 128:
            c = self.static_codecs[pt]
        if c is not None:
            return c
        found = self.codecs.lookup(pt, encoding)
        c = _Codec.__new__(_Codec)
        c.label = _NO_CODEC
        if found is not None:
            c.label = found.name or _NO_CODEC
            imp = found.plc if self.plc or found.no_plc is None else found.no_plc
            if imp is not None:
                c.scored = True
                c.ie = imp.ie
                c.bpl = imp.bpl
        if encoding:
            if len(self.named_codecs) >= MAX_NAMED_CODECS:
                self.named_codecs.clear()   # a pass holds the labels it uses (CallMediaPass.keep)
            self.named_codecs[encoding] = c
        elif pt < 128:
            self.static_codecs[pt] = c
        return c


cdef inline void _prefetch_object(PyObject *o) noexcept:
    cdef Py_ssize_t k, size = Py_TYPE(<object>o).tp_basicsize
    for k in range(0, size if size < 512 else 512, 64):
        ws_prefetch(<const char *>o + k)


cdef void _sort_u32(uint32_t *a, Py_ssize_t n) noexcept nogil:
    """Sorts a[:n] ascending (heap sort: no allocation, n log n)."""
    cdef Py_ssize_t start, end, root, child
    cdef uint32_t t
    if n < 2:
        return
    start = n // 2
    end = n
    while end > 1:
        if start > 0:           # heapify: sift down each parent
            start -= 1
        else:                   # move the largest to the end, restore the heap
            end -= 1
            t = a[end]
            a[end] = a[0]
            a[0] = t
        root = start
        while 2 * root + 1 < end:
            child = 2 * root + 1
            if child + 1 < end and a[child] < a[child + 1]:
                child += 1
            if a[root] < a[child]:
                t = a[root]
                a[root] = a[child]
                a[child] = t
                root = child
            else:
                break


cdef uint32_t _index_of(uint32_t v, const uint32_t *sorted_, uint32_t n) noexcept nogil:
    cdef uint32_t lo = 0, hi = n, mid
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if sorted_[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef class CallMediaPass:
    """The media figures of a batch of calls from stream records, in one pass:
    per call and (direction, codec) of its streams, the lost and expected
    packets summed and the worst jitter; as the call's MOS, the worst of its
    streams' E-model scores with playout buffer `jb_mode` (an index of the
    records' jb_* arrays), with the RTT the RTCP senders reported about each
    stream's SSRC (`round_trips`: an Engine, read in place; an object with
    round_trips(ssrcs) -> {ssrc: (arrival_ns, rtt_ms)}, an EngineGroup; or
    None). Rows of calls not in the batch are left alone; when calls share
    a call_ref, the last one takes its rows, as a dict by call_ref would.

    A stream's direction is from the platform's view when the call's
    direction label is inbound or outbound, else from the caller's (its own
    media is outbound); its sender is the party whose SDP address it did not
    go to (or, failing that, came from), the caller when neither is known."""

    def __cinit__(self, list calls, rows, round_trips, StreamScorer scorer, int jb_mode):
        if rows.dtype.names != STREAM_DTYPE.names:
            raise TypeError("stream records expected")
        if not 0 <= jb_mode < WS_JB_MODES:
            raise ValueError(f"no playout buffer {jb_mode}")
        self.calls = calls
        self.keep = []
        self.ncalls = len(calls)
        cdef Py_ssize_t i, n = self.ncalls
        self.first = <uint32_t *>calloc(n + 1, sizeof(uint32_t))
        self.count = <uint32_t *>calloc(n + 1, sizeof(uint32_t))
        self.has_mos = <uint8_t *>calloc(n + 1, sizeof(uint8_t))
        self.mos = <double *>calloc(n + 1, sizeof(double))
        self.refs = <uint32_t *>calloc(n + 1, sizeof(uint32_t))
        if (self.first == NULL or self.count == NULL or self.has_mos == NULL or self.mos == NULL
                or self.refs == NULL):
            raise MemoryError()
        self.labels = [None] * n
        cdef Call call
        for i in range(n):   # the calls' own lines and bindings, asked of memory all at once: a
            call = <Call?>calls[i]   # finishing call was last touched at its SDP, seconds of packets ago
            _prefetch_object(<PyObject *>call)
        for i in range(n):
            call = <Call>calls[i]
            ws_prefetch(call.media_entries)
            self.refs[i] = call.call_ref
            self.labels[i] = call.labels
        cdef Py_ssize_t nrows = len(rows)
        if nrows == 0 or n == 0:
            return
        if rows.dtype != STREAM_DTYPE:
            rows = rows.astype(STREAM_DTYPE)   # np.concatenate repacks the fields in name order
        cdef Py_buffer raw                     # the records as they lie (numpy's buffer, no view made)
        try:
            PyObject_GetBuffer(rows, &raw, PyBUF_SIMPLE)
        except (BufferError, ValueError):      # not contiguous
            rows = np.ascontiguousarray(rows)
            PyObject_GetBuffer(rows, &raw, PyBUF_SIMPLE)
        cdef const ws_stream_record *recs = <const ws_stream_record *>raw.buf
        cdef ws_u64_map by_ref
        cdef int32_t *row_call = NULL
        cdef uint32_t *order = NULL
        cdef uint32_t *starts = NULL
        cdef _ScoredRow *scored = NULL   # rows to score, call by call
        cdef uint32_t *ssrcs = NULL
        cdef int64_t *arrivals = NULL
        cdef double *rtts = NULL
        memset(&by_ref, 0, sizeof(by_ref))
        try:
            self._group(calls, recs, nrows, &by_ref, &row_call, &order, &starts)
            scored = <_ScoredRow *>malloc(nrows * sizeof(_ScoredRow))
            self.sums = <_MediaSums *>malloc(nrows * sizeof(_MediaSums))
            if scored == NULL or self.sums == NULL:
                raise MemoryError()
            nscored = self._sum(recs, order, starts, scored, scorer)
            if nscored:
                ssrcs = <uint32_t *>malloc(nscored * sizeof(uint32_t))
                arrivals = <int64_t *>malloc(nscored * sizeof(int64_t))
                rtts = <double *>malloc(nscored * sizeof(double))
                if ssrcs == NULL or arrivals == NULL or rtts == NULL:
                    raise MemoryError()
                nssrcs = self._round_trips(recs, scored, nscored, ssrcs, arrivals, rtts, round_trips)
                self._score(recs, scored, nscored, ssrcs, nssrcs, rtts, jb_mode)
        finally:
            PyBuffer_Release(&raw)
            ws_u64_map_free(&by_ref)
            free(row_call)
            free(order)
            free(starts)
            free(scored)
            free(ssrcs)
            free(arrivals)
            free(rtts)

    def __dealloc__(self):
        free(self.first)
        free(self.count)
        free(self.has_mos)
        free(self.mos)
        free(self.refs)
        free(self.sums)

    cdef int _group(self, list calls, const ws_stream_record *recs, Py_ssize_t nrows, ws_u64_map *by_ref,
                    int32_t **row_call, uint32_t **order, uint32_t **starts) except -1:
        """Each row's call (-1: not in the batch) and the batch's rows grouped
        by call, each call's in their order: order[starts[c]:starts[c + 1]]."""
        cdef Py_ssize_t i, n = self.ncalls
        cdef int64_t c
        for i in range(n):
            if ws_u64_map_put(by_ref, self.refs[i], i) != 0:
                raise MemoryError()
        row_call[0] = <int32_t *>malloc(nrows * sizeof(int32_t))
        order[0] = <uint32_t *>malloc(nrows * sizeof(uint32_t))
        starts[0] = <uint32_t *>calloc(n + 2, sizeof(uint32_t))
        if row_call[0] == NULL or order[0] == NULL or starts[0] == NULL:
            raise MemoryError()
        cdef uint32_t *st = starts[0]
        for i in range(nrows):
            c = ws_u64_map_get(by_ref, recs[i].call_ref)
            row_call[0][i] = <int32_t>c
            if c >= 0:
                st[c + 2] += 1
        for i in range(2, n + 2):
            st[i] += st[i - 1]
        for i in range(nrows):   # st[c + 1]: where call c's next row goes
            c = row_call[0][i]
            if c >= 0:
                order[0][st[c + 1]] = <uint32_t>i
                st[c + 1] += 1
        return 0

    cdef Py_ssize_t _sum(self, const ws_stream_record *recs, const uint32_t *order, const uint32_t *starts,
                         _ScoredRow *scored, StreamScorer scorer) except -1:
        """Each call's (direction, codec) sums; the rows to score, into
        `scored`, call by call; returns how many. A stream's payload type
        is named by its call's SDP (Call.encoding_of), its sender the party
        whose SDP address it did not go to, or failing that came from
        (Call.side_at), the caller when neither is known."""
        cdef Py_ssize_t ci, k, e, nscored = 0
        cdef const ws_stream_record *r
        cdef _Codec codec
        cdef PyObject *label
        cdef PyObject *direction
        cdef bint platform_inbound, sender_is_caller
        cdef _MediaSums *m
        cdef uint32_t last_pt
        cdef Call call
        cdef int at
        last_labels = None
        platform_inbound = False
        for ci in range(self.ncalls):
            self.first[ci] = self.nsums
            if starts[ci] == starts[ci + 1]:
                continue
            call = <Call>self.calls[ci]
            lb = self.labels[ci]
            if lb is not last_labels or last_labels is None:   # calls mostly share a labels object
                platform_inbound = (lb.direction if lb is not None else None) == _INBOUND
                last_labels = lb
            codec = None
            for k in range(starts[ci], starts[ci + 1]):
                r = &recs[order[k]]
                if codec is None or r.payload_type != last_pt:   # a call's streams mostly share one
                    last_pt = r.payload_type
                    codec = scorer.codec(last_pt, call.encoding_of(<uint8_t>last_pt))
                at = call.side_at(r.dst, r.dport)
                if at >= 0:
                    sender_is_caller = at != SIDE_CALLER
                else:
                    at = call.side_at(r.src, r.sport)
                    sender_is_caller = at < 0 or at == SIDE_CALLER
                direction = <PyObject *>(_INBOUND if platform_inbound == sender_is_caller else _OUTBOUND)
                label = <PyObject *>codec.label
                m = NULL
                for e in range(self.first[ci], self.nsums):
                    if self.sums[e].direction == direction and (
                            self.sums[e].codec == label
                            or PyObject_RichCompareBool(<object>self.sums[e].codec, <object>label, Py_EQ) == 1):
                        m = &self.sums[e]
                        break
                if m == NULL:
                    m = &self.sums[self.nsums]
                    self.nsums += 1
                    self.keep.append(codec.label)
                    m.direction = direction
                    m.codec = label
                    m.lost = m.expected = 0
                    m.max_jitter_ms = 0.0
                m.lost += r.lost if r.lost > 0 else 0
                m.expected += r.expected if r.expected > 0 else 0
                if r.max_jitter_ms > m.max_jitter_ms:
                    m.max_jitter_ms = r.max_jitter_ms
                if codec.scored and r.expected > 0:
                    scored[nscored].row = order[k]
                    scored[nscored].call = <int32_t>ci
                    scored[nscored].ie = codec.ie
                    scored[nscored].bpl = codec.bpl
                    nscored += 1
            self.count[ci] = self.nsums - self.first[ci]
        self.first[self.ncalls] = self.nsums
        return nscored

    cdef uint32_t _round_trips(self, const ws_stream_record *recs, const _ScoredRow *scored, Py_ssize_t nscored,
                               uint32_t *ssrcs, int64_t *arrivals, double *rtts, round_trips) except? 0:
        """The scored rows' SSRCs, ascending, each once, and the RTT (ms, NAN:
        none) reported about each; returns how many SSRCs (0: no RTT at all)."""
        cdef Py_ssize_t k
        cdef uint32_t j, n = 0
        if round_trips is None or isinstance(round_trips, Engine) and not (<Engine>round_trips).e.rtp.rtcp_used:
            return 0   # no RTCP: no RTT
        for k in range(nscored):
            ssrcs[k] = recs[scored[k].row].ssrc
        _sort_u32(ssrcs, nscored)
        for k in range(nscored):
            if n == 0 or ssrcs[n - 1] != ssrcs[k]:
                ssrcs[n] = ssrcs[k]
                n += 1
        for j in range(n):
            rtts[j] = NAN
        if isinstance(round_trips, Engine):
            ws_rtcp_round_trips(&(<Engine>round_trips).e.rtp, ssrcs, n, arrivals, rtts)
        else:
            found = round_trips.round_trips([ssrcs[j] for j in range(n)])
            for j in range(n):
                got = found.get(ssrcs[j])
                if got is not None:
                    rtts[j] = got[1]
        return n

    cdef int _score(self, const ws_stream_record *recs, const _ScoredRow *scored, Py_ssize_t nscored,
                    const uint32_t *ssrcs, uint32_t nssrcs, const double *rtts, int jb_mode) except -1:
        """Each call's worst stream MOS."""
        cdef Py_ssize_t k
        cdef const ws_stream_record *r
        cdef int64_t counted
        cdef int32_t ci
        cdef ws_emodel_score s
        for k in range(nscored):
            r = &recs[scored[k].row]
            ci = scored[k].call
            counted = (r.lost if r.lost > 0 else 0) + r.jb_late[jb_mode]
            s = ws_emodel(scored[k].ie, scored[k].bpl, r.expected, r.expected if r.expected < counted else counted,
                          r.jb_loss_runs[jb_mode], rtts[_index_of(r.ssrc, ssrcs, nssrcs)] / 2.0 if nssrcs else NAN)
            if not self.has_mos[ci] or s.mos < self.mos[ci]:
                self.has_mos[ci] = True
                self.mos[ci] = s.mos
        return 0

    def by_call(self):
        """call_ref -> (streams, MOS or None) of each call of the batch, its
        streams as CallMedia.streams has them: (direction, codec) -> [lost,
        expected, worst jitter (ms)]."""
        out = {}
        cdef Py_ssize_t ci
        cdef uint32_t e
        cdef _MediaSums *m
        for ci in range(self.ncalls):
            streams = {}
            for e in range(self.first[ci], self.first[ci] + self.count[ci]):
                m = &self.sums[e]
                streams[(<object>m.direction, <object>m.codec)] = [m.lost, m.expected, m.max_jitter_ms]
            out[self.refs[ci]] = (streams, self.mos[ci] if self.has_mos[ci] else None)
        return out
