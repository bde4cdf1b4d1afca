# Calls' media figures from their stream records (quality/call_media.pyx):
# per call, per (direction, codec), the lost and expected packets and the
# worst jitter, and the call's MOS, made in one typed pass over the records.

from cpython.object cimport PyObject


cdef struct _MediaSums:            # one (direction, codec) of one call
    PyObject *direction            # "inbound" | "outbound" (the module's interned str)
    PyObject *codec                # the codec's name, or "unknown"
    int64_t lost, expected
    double max_jitter_ms


cdef struct _ScoredRow:            # a stream whose MOS counts: its row, call, codec impairment
    uint32_t row
    int32_t call
    double ie, bpl


cdef class CallFields:
    # reads named attributes through the data descriptors of one type (see .pyx)
    cdef tuple names
    cdef object owner                  # the type `descriptors` are of; None until the first read
    cdef list descriptors              # per name, its data descriptor on `owner`, or None: getattr

    cdef object get(self, object obj, Py_ssize_t i)
    cdef object _learn(self, object obj, Py_ssize_t i)


cdef class _Codec:
    # what a stream's payload type gives its figures: the label, and the
    # E-model impairment when the codec has one
    cdef object label              # codec name, "unknown" when none
    cdef bint scored
    cdef double ie, bpl


cdef class StreamScorer:
    cdef readonly object codecs    # CodecTable
    cdef readonly bint plc
    cdef list static_codecs        # payload type (no SDP name) -> _Codec, None until looked up
    cdef dict named_codecs         # SDP encoding name -> _Codec

    cdef _Codec codec(self, uint32_t pt, object encoding)


cdef class CallMediaPass:
    cdef list calls                # of Call (their SDP read in C: side_at, encoding_of)
    cdef Py_ssize_t ncalls
    cdef list labels               # [call] its labels, read once for whoever counts the calls
    cdef uint32_t *refs            # [call] its call_ref
    cdef uint32_t *first           # [call] its first _MediaSums
    cdef uint32_t *count           # [call] how many
    cdef uint8_t *has_mos          # [call] any stream scored
    cdef double *mos               # [call] worst stream MOS
    cdef _MediaSums *sums          # every call's, call after call
    cdef uint32_t nsums
    cdef list keep                 # the codec labels `sums` points to

    cdef int _group(self, list calls, const ws_stream_record *recs, Py_ssize_t nrows, ws_u64_map *by_ref,
                    int32_t **row_call, uint32_t **order, uint32_t **starts) except -1
    cdef Py_ssize_t _sum(self, const ws_stream_record *recs, const uint32_t *order, const uint32_t *starts,
                         _ScoredRow *scored, StreamScorer scorer) except -1
    cdef uint32_t _round_trips(self, const ws_stream_record *recs, const _ScoredRow *scored, Py_ssize_t nscored,
                               uint32_t *ssrcs, int64_t *arrivals, double *rtts, round_trips) except? 0
    cdef int _score(self, const ws_stream_record *recs, const _ScoredRow *scored, Py_ssize_t nscored,
                    const uint32_t *ssrcs, uint32_t nssrcs, const double *rtts, int jb_mode) except -1
