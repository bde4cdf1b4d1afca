# Calls from SIP dialogs: the state one INVITE attempt carries, and the
# tracker's tables. Implemented in sip/dialogs.pyx (included by _engine.pyx);
# the rules are RFC 3261 sections 13-15 and docs/calls.md.
#
# A call's life (each arrow is a message or a timer, see CallTracker):
#
#   INVITE ---> [trying] --1xx--> [proceeding] --2xx--> [answered] --BYE--> [ending] --BYE 2xx / linger--> done
#                  |                  |   \--401/407--> [challenged] --INVITE, higher CSeq--> [trying]
#                  |                  \--3xx-6xx, CANCEL+487--> done
#                  \--Timer B / C, eviction, end of input--> done
#
# The state is not one enum: the fields below are the state, as the KPIs read
# them (answered = answer_ts set; ending = end_ts set; challenged; cancelled).


cdef class Call:
    # identity
    cdef public uint32_t call_ref          # the engine's key for this call's media bindings
    cdef public object call_id, from_uri, to_uri, from_tag
    cdef public object caller              # (addr16, port) the first INVITE came from
    cdef public object correlation_id      # B2BUA: the legs' shared id, or None
    cdef public int leg
    # attempt
    cdef public double invite_ts
    cdef public long long invite_cseq
    cdef public object pdd_ms, pdd_end     # None until the first 18x or 2xx
    cdef public bint ringing, proceeding   # proceeding: any 1xx came, Timer B no longer applies
    cdef public set early_dialogs          # To-tags of forks
    cdef public object final_code
    cdef public bint challenged, cancelled
    cdef public object challenge_ts
    # answer and end
    cdef public object answer_ts, answer_to_tag
    cdef public dict answer_tags           # top Via branch -> To-tag of its first 2xx
    cdef public object end_ts, ended_by, reason, bye_code, bye_ts
    cdef public object session_expires, refreshed_ts
    # activity, for the timers
    cdef public double last_sip_ts
    cdef public object last_rtp_ts, media_asked_ts
    cdef public long long timer_rank       # recency order in CallTracker.calls
    # media and counters
    cdef public int holds, retransmissions
    cdef public object labels              # warpsniff.labels.CallLabels; None until labelled
    cdef public dict media                 # (addr16, port) -> "caller" | "callee" side
    cdef public dict payload_names         # pt -> encoding, from a=rtpmap
    cdef public set seen                   # transaction keys (64-bit hashes), for retransmissions
    cdef set seen_before                   # the previous generation of keys (KEYS_PER_GENERATION); None until then
    cdef public list vq_reports            # RFC 6035 PUBLISH reports about this call
    cdef public bint done, evicted

    cdef bint remember(self, uint64_t key) except -1


cdef class _Message:
    # One SIP message on its way through the tracker: the native scan and
    # where its bytes are; Python views of it are made only when asked for.
    cdef ws_sip_msg m
    cdef const uint8_t *base               # the scan's field spans are offsets into this
    cdef const uint8_t *data               # the message; body and header_len count in it
    cdef uint32_t n
    cdef double ts
    cdef uint8_t src[16]
    cdef uint8_t dst[16]
    cdef uint16_t sport, dport
    cdef object keep                       # holds the buffers above when Python owns them
    cdef object _payload, _src, _dst, _headers, _call_id

    cdef void reset(self, double ts) noexcept
    cdef str text(self, ws_span sp)
    cdef str call_id(self)
    cdef str method(self)
    cdef bytes payload(self)
    cdef tuple src_t(self)
    cdef tuple dst_t(self)
    cdef object headers(self)
    cdef bint from_caller(self, Call call) except -1


cdef class CallTracker:
    cdef public object on_call, on_attempt, on_pdd, label_config
    cdef object _config                    # CallConfig (the config property), its limits as C numbers:
    cdef double _bye_linger, _invite_timeout, _ring_timeout, _rtp_timeout, _sip_only_timeout, _max_duration
    cdef Py_ssize_t _max_calls
    cdef public list observers             # f(h, ts, src, dst) per parsed message (proxy health)
    cdef public list taps                  # f(h, ts, src, dst) per message handed in, any status
    cdef public object calls               # OrderedDict call_id -> Call, least recently active first
    cdef public object seen_other          # OrderedDict of transaction keys outside any call
    cdef public object legs                # OrderedDict correlation id -> legs seen
    cdef public object recent              # OrderedDict of finished calls, for stragglers
    cdef public long long next_ref
    cdef public double now
    cdef public list _timers               # heap of (due, seq, call_ref)
    cdef public dict _timed                # call_ref -> [call, seq of its valid heap entry, due]
    cdef public dict _dirty                # call_ref -> call changed since the last tick
    cdef public long long _seq
    cdef public object media_probe
    cdef public uint64_t records_fed       # signalling records taken from engines (feed)
    cdef object _engine
    cdef Engine _native                    # _engine when it is one native Engine: binds without Python
    cdef object _stats
    cdef dict _by_method                   # _stats.by_method, updated per request
    cdef uint64_t n_messages, n_requests, n_responses, n_retransmissions
    cdef object _call_id_re
    cdef readonly bytes corr_name          # the correlation header, lower case, for the scan
    cdef _Message _msg                     # reused for every message
    cdef ws_sdp *_sdp                      # one body's scan

    cdef int _take(self, _Message x) except -1
    cdef void _touch(self, Call call, str cid, double ts) except *
    cdef bint _retransmitted(self, _Message x, Call open_call, str cid, uint64_t key,
                             bint remember_outside) except -1
    cdef void _count_retransmission(self, Call open_call) noexcept
    cdef int _request(self, _Message x, str cid, Call call) except -1
    cdef int _initial_invite(self, Call call, _Message x, str cid) except -1
    cdef int _correlate(self, Call call, _Message x) except -1
    cdef int _response(self, _Message x, str cid, Call call) except -1
    cdef int _invite_response(self, Call call, _Message x) except -1
    cdef int _offer_answer(self, Call call, _Message x) except -1
    cdef int _bind(self, Call call, const uint8_t *base, str side, bint in_dialog) except -1
    cdef bint _bind_one(self, Call call, bytes a16, uint16_t port, str side, list pts, const ws_pt_entry *cpts,
                        uint32_t npts, int64_t since_ns) except -1
    cdef int _finish(self, Call call, bint pop=*) except -1
    cdef int _schedule(self, Call call, bint reschedule) except -1
    cdef double _deadline(self, Call call) except? -1
    cdef bint _expired(self, Call call, double now) except -1
