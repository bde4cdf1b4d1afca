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



from cpython.ref cimport PyObject


# A call's transaction keys (64-bit hashes of a message's transaction fields),
# one generation of them: open addressing, 0 marks an empty slot. The table is
# allocated at the ninth key; until then the keys sit in `few`.
cdef enum:
    FEW_KEYS = 8

cdef struct KeySet:
    uint64_t few[FEW_KEYS]
    uint64_t *slots                        # NULL while count <= FEW_KEYS
    uint32_t cap                           # slots' size, a power of two
    uint32_t count
    bint has_zero                          # the key 0 itself (it would read as empty)


# Bytes of a call's own, copied off the wire into Call.wire: where they are
# (a text field absent from the message, which Python reads as None, is not
# present).
cdef enum:
    FORKS_KEPT = 64                        # early dialogs and answered legs kept per call (MAX_FORKS)
    CID_HEAD = 48                          # a Call-ID's first bytes kept in the Call itself

cdef struct WireSpan:
    uint32_t off
    uint32_t len
    bint present


# A payload type's encoding name from a=rtpmap: an index of the names seen
# (interned once per process: dialogs.pyx, _encoding_index).
cdef enum:
    FEW_PT_NAMES = 4                       # kept in the Call itself; more in a block of their own

cdef struct PtName:
    uint32_t name
    uint8_t pt


# An SDP destination bound to the call, and whose SDP announced it.
cdef enum MediaSide:
    SIDE_CALLER = 0
    SIDE_CALLEE = 1

cdef struct MediaEntry:
    uint8_t addr[16]
    uint16_t port
    uint8_t side                           # MediaSide


# The open calls by Call-ID bytes: open addressing (linear probing, deletion
# by backward shift); each slot holds one reference to its Call.
cdef enum:
    MIN_CALL_SLOTS = 1024                  # the table's first size; it doubles at half full
    NO_ENTRY = 0xFFFFFFFF                  # no recency entry

cdef struct CallSlot:
    uint64_t hash                          # 0: empty (hashes are made odd)
    PyObject *call


# Timers: a binary heap on (due, seq); each entry holds one reference to its
# Call. An entry is current while its seq is the call's timer_seq.
cdef struct TimerEntry:
    double due
    uint64_t seq
    PyObject *call


cdef class Call:
    # identity
    cdef public uint32_t call_ref          # the engine's key for this call's media bindings
    cdef public object call_id
    cdef uint8_t *wire                     # its bytes off the wire (WireSpan), in one growing block
    cdef uint32_t wire_used, wire_cap
    cdef WireSpan w_call_id                # the table's key (cid_hash its hash; its first
    cdef uint64_t cid_hash                 # CID_HEAD bytes also here, so a look-up compares
    cdef uint8_t cid_head[CID_HEAD]        # them in the Call, not in its cold wire block)
    cdef WireSpan w_from_uri, w_to_uri, w_from_tag   # from_uri, to_uri, from_tag: decoded when read
    cdef object _from_uri, _to_uri, _from_tag        # (or as set from Python, when not present)
    cdef uint8_t caller_addr[16]           # caller: (addr16, port) the first INVITE came from,
    cdef uint16_t caller_port              # made when read (or as set from Python: _caller)
    cdef bint caller_from_wire
    cdef object _caller
    cdef public object correlation_id      # B2BUA: the legs' shared id, or None
    cdef public int leg
    # attempt
    cdef public double invite_ts
    cdef public long long invite_cseq
    cdef public object pdd_ms, pdd_end     # None until the first 18x or 2xx
    cdef public bint ringing, proceeding   # proceeding: any 1xx came, Timer B no longer applies
    cdef WireSpan *early_tags              # To-tags of the early dialogs (forks), MAX_FORKS at most
    cdef uint32_t n_early
    cdef set _early_view                   # early_dialogs: made when read, dropped on change (or as set)
    cdef public object final_code
    cdef public bint challenged, cancelled
    cdef public object challenge_ts
    # answer and end
    cdef public object answer_ts
    cdef WireSpan *answer_branches         # top Via branch -> To-tag of its first 2xx (answer_tags),
    cdef WireSpan *answer_to_tags          # MAX_FORKS at most; the first is the answer's (answer_to_tag)
    cdef uint32_t n_answers
    cdef dict _answer_view                 # answer_tags: made when read, dropped on change (or as set)
    cdef WireSpan w_answer_to_tag          # answer_to_tag: the To-tag of the first 2xx,
    cdef object _answer_to_tag             # or as set from Python
    cdef bint answer_to_tag_set
    cdef public object end_ts, ended_by, reason, bye_code, bye_ts
    cdef public object session_expires, refreshed_ts
    # activity, for the timers
    cdef public double last_sip_ts
    cdef public object last_rtp_ts, media_asked_ts
    cdef public long long timer_rank       # recency order in CallTracker.calls
    cdef uint64_t timer_seq                # seq of its current heap entry (0: none)
    cdef double timer_due                  # that entry's due time (inf: none)
    cdef bint dirty                        # changed since the last tick: its timer is looked at then
    # the tracker's table of open calls
    cdef bint in_table
    cdef uint32_t order_index              # its entry in the tracker's recency arrays
    # media and counters
    cdef public int holds, retransmissions
    cdef public object labels              # warpsniff.labels.CallLabels; None until labelled
    cdef MediaEntry *media_entries         # the destinations bound to it (media), in binding order
    cdef uint32_t n_media, media_cap
    cdef dict _media_view                  # media as a dict, made when read, dropped on change
    cdef PtName pt_few[FEW_PT_NAMES]       # payload_names (pt -> encoding, from a=rtpmap), in the
    cdef PtName *pt_names                  # order first named: pt_few, or a block when more
    cdef uint32_t n_pt_names, pt_names_cap
    cdef dict _payload_extra               # names not interned (or as set from Python): pt -> encoding
    cdef dict _payload_view                # payload_names: made when read, dropped on change
    cdef KeySet keys                       # transaction keys (seen), KEYS_PER_GENERATION at most
    cdef KeySet keys_before                # the previous generation
    cdef list _vq_reports                  # RFC 6035 PUBLISH reports about this call (vq_reports); None until one
    cdef public bint done, evicted

    cdef bint remember(self, uint64_t key) except -1
    cdef int add_media(self, const uint8_t *a16, uint16_t port, uint8_t side) except -1
    cdef int side_at(self, const uint8_t *a16, uint16_t port) noexcept
    cdef WireSpan keep(self, const uint8_t *p, uint32_t n) except *
    cdef str wire_text(self, WireSpan sp)
    cdef bint wire_equal(self, WireSpan sp, const uint8_t *p, uint32_t n) except -1
    cdef int add_early_dialog(self, const uint8_t *p, uint32_t n) except -1
    cdef int add_answer(self, const uint8_t *branch, uint32_t nb, const uint8_t *tag, uint32_t nt,
                        bint first) except -1
    cdef bint answered_by(self, const uint8_t *tag, uint32_t n) except -1
    cdef int name_payload(self, uint8_t pt, uint32_t name) except -1
    cdef int name_payload_text(self, uint8_t pt, str text) except -1
    cdef str encoding_of(self, uint8_t pt)


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
    # the open calls (calls: a CallTable view), least recently active first
    cdef CallSlot *slots                   # by Call-ID
    cdef uint32_t slot_mask                # slots' size - 1 (a power of two)
    cdef Py_ssize_t n_open
    # recency: a doubly linked list over compact arrays (a call's neighbours are
    # looked up there, not in two more cold Call objects per message)
    cdef uint32_t *order_prev
    cdef uint32_t *order_next              # also threads the free entries
    cdef PyObject **order_call             # entry -> its Call (borrowed: the table holds them)
    cdef uint32_t order_cap, order_used, order_free
    cdef uint32_t oldest, newest           # NO_ENTRY when empty
    cdef public dict open_by_ref           # call_ref -> Call, the same calls (tracks, media_activity)
    cdef public object seen_other          # OrderedDict of transaction keys outside any call
    cdef public object legs                # OrderedDict correlation id -> legs seen
    cdef public object recent              # OrderedDict of finished calls, for stragglers
    cdef public long long next_ref
    cdef public double now
    # timers (tick): a heap of TimerEntry, never later than the first capture time its
    # call can time out at; calls changed since the last tick are looked at then
    cdef TimerEntry *timers
    cdef uint32_t n_timers, timers_cap
    cdef list _dirty                       # calls with Call.dirty set, in the order they were marked
    cdef uint64_t _seq
    cdef public object media_probe
    cdef public uint64_t records_fed       # signalling records taken from engines (feed)
    cdef object _engine
    cdef Engine _native                    # _engine when it is one native Engine: binds without Python
    cdef object _stats
    cdef uint64_t n_by_method[WS_SIP_METHOD_COUNT]   # requests by the scan's method (stats.by_method)
    cdef dict _other_methods               # requests by name, for methods the scan does not know
    cdef list _method_order                # method names in the order first seen (by_method's order)
    cdef uint64_t n_messages, n_requests, n_responses, n_retransmissions
    cdef object _call_id_re
    cdef readonly bytes corr_name          # the correlation header, lower case, for the scan
    cdef _Message _msg                     # reused for every message
    cdef ws_sdp *_sdp                      # one body's scan

    cdef uint32_t _feed(self, Engine engine, object correlator) except? 0xFFFFFFFF
    cdef Call _lookup(self, const uint8_t *cid, uint32_t n, uint64_t h)
    cdef int _insert(self, Call call) except -1
    cdef int _remove(self, Call call) except -1
    cdef void _to_newest(self, Call call) noexcept
    cdef void _unlink(self, uint32_t i) noexcept
    cdef int _grow_slots(self) except -1
    cdef int _push_timer(self, Call call, double due) except -1
    cdef Call _pop_timer(self, double *due, uint64_t *seq)
    cdef int _mark_dirty(self, Call call) except -1
    cdef int _count_method(self, _Message x) except -1
    cdef int _take(self, _Message x) except -1
    cdef void _touch(self, Call call, double ts) except *
    cdef bint _retransmitted(self, _Message x, Call open_call, uint64_t key, bint remember_outside) except -1
    cdef void _count_retransmission(self, Call open_call) noexcept
    cdef int _request(self, _Message x, Call call) except -1
    cdef int _initial_invite(self, Call call, _Message x) except -1
    cdef int _correlate(self, Call call, _Message x) except -1
    cdef int _response(self, _Message x, Call call) except -1
    cdef int _invite_response(self, Call call, _Message x) except -1
    cdef int _offer_answer(self, Call call, _Message x) except -1
    cdef int _bind(self, Call call, const uint8_t *base, uint8_t side, bint in_dialog) except -1
    cdef bint _bind_one(self, Call call, const uint8_t *a16, uint16_t port, uint8_t side, list pts,
                        const ws_pt_entry *cpts, uint32_t npts, int64_t since_ns) except -1
    cdef int _finish(self, Call call, bint pop=*) except -1
    cdef int _schedule(self, Call call, bint reschedule) except -1
    cdef void _sift_up(self, uint32_t i) noexcept
    cdef double _deadline(self, Call call) except? -1
    cdef bint _expired(self, Call call, double now) except -1
