# Included by _engine.pyx. Calls from SIP dialogs: attempts, PDD, final
# codes, durations, media (state declared in sip/dialogs.pxd).
#
# One Call per INVITE attempt (RFC 3261 sections 13-15 for the dialog rules;
# the KPI definitions follow docs/calls.md). The tracker sees every SIP
# message once, in capture order, and tells the engine which media
# destinations belong to which call (SDP binding), so RTP statistics are per
# call without any per-packet Python. SIP over UDP goes from the engine's
# signalling batch into the state machine without a Python object per
# message (CallTracker.feed); messages framed in Python (TCP, WebSocket,
# SCTP) come through CallTracker.message.

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_XDECREF, PyObject
from libc.math cimport isnan, llrint
from libc.stdlib cimport malloc, realloc
from libc.string cimport memcmp, memset

cdef extern from *:
    """
    #ifndef WS_EXACT_COPIES
    #define WS_EXACT_COPIES 0
    #endif
    """
    const int WS_EXACT_COPIES   # set by the sanitizer build (setup.py, WARPSNIFF_SANITIZE)

import socket
from collections import OrderedDict

V4_MAPPED = bytes(10) + b"\xff\xff"
UNSPECIFIED_V4 = V4_MAPPED + bytes(4)   # 0.0.0.0: hold (RFC 2543)
OTHER_TRANSACTIONS = 8192   # remembered keys of messages outside any call
RECENT_CALLS = 1024         # finished calls kept for stragglers (retransmissions, PUBLISH reports)
# A flood into one open call (requests with new branches, responses with new
# To-tags) must not grow it without bound: transaction keys are kept in two
# generations of at most this many (a retransmission comes within 32 s of its
# original, long before its generation is dropped), forks up to MAX_FORKS.
KEYS_PER_GENERATION = 2048
MAX_FORKS = FORKS_KEPT
PROVISIONAL_PDD = {180: "ringing", 181: "ringing", 182: "ringing", 183: "progress"}
CHALLENGES = (401, 407)
# Final codes -> termination reason. Anything else 3xx-6xx is "failed".
REASON_BY_CODE = {486: "busy", 600: "busy", 603: "busy", 480: "no_answer", 408: "no_answer", 487: "cancelled"}
# A call's timer wakes this much before its computed deadline: the deadline is
# `start + limit`, the test in tick is `now - start > limit`, and the two can
# round apart by an ulp; waking early only costs one re-check.
TIMER_SLACK_S = 1e-3
cdef double _TIMER_SLACK_S = TIMER_SLACK_S

# SIG_* record kinds (ws_engine.h)
SIG_UDP, SIG_TCP, SIG_SCTP, SIG_CONTROL = WS_SIG_UDP, WS_SIG_TCP, WS_SIG_SCTP, WS_SIG_CONTROL

cdef bytes _V4_MAPPED = V4_MAPPED
cdef bytes _UNSPECIFIED_V4 = UNSPECIFIED_V4
cdef double _INF = float("inf")

# Python modules the tracker calls into, imported when the first tracker is
# made (they import this module)
cdef object _parse_vq_report = None, _VQ_CONTENT_TYPE = None
cdef object _parse_sdp_text = None, _CallConfig = None, _CallStats = None


cdef _load_python_side():
    global _parse_vq_report, _VQ_CONTENT_TYPE
    global _parse_sdp_text, _CallConfig, _CallStats
    if _CallStats is not None:
        return
    from warpsniff.quality.vq import CONTENT_TYPE, parse_vq_report
    from warpsniff.sip.calls import CallConfig, CallStats
    from warpsniff.sip.sdp import parse_sdp_text
    _parse_vq_report, _VQ_CONTENT_TYPE = parse_vq_report, CONTENT_TYPE
    _parse_sdp_text, _CallConfig, _CallStats = parse_sdp_text, CallConfig, CallStats


def termination_reason(code):
    return _termination_reason(code)


cdef dict _REASON_BY_CODE = REASON_BY_CODE


cdef str _termination_reason(object code):
    if code is None:
        return "timeout"
    if 200 <= code < 300:
        return "normal"
    return _REASON_BY_CODE.get(code, "failed")


def addr16(str text):
    """IP text -> engine address (16 bytes, IPv4 v4-mapped); ValueError if not an IP."""
    try:
        return _V4_MAPPED + socket.inet_pton(socket.AF_INET, text)
    except OSError:
        pass
    try:
        return socket.inet_pton(socket.AF_INET6, text)
    except OSError:
        raise ValueError(f"not an IP address: {text!r}") from None


cdef extern from "<arpa/inet.h>":
    int AF_INET, AF_INET6
    const char *inet_ntop(int af, const void *src, char *dst, unsigned int size) nogil


def ip_text(bytes a16):
    """Engine address (16 bytes, IPv4 v4-mapped) -> text (as socket.inet_ntop
    prints it, without its argument parsing)."""
    cdef char out[64]
    cdef const char *p
    if len(a16) != 16:
        return socket.inet_ntop(socket.AF_INET6, a16)   # its error for a wrong length
    p = <const char *>a16
    if memcmp(p, <const char *>_V4_MAPPED, 12) == 0:
        inet_ntop(AF_INET, p + 12, out, sizeof(out))
    else:
        inet_ntop(AF_INET6, p, out, sizeof(out))
    return out.decode("ascii")


def _session_expires(value):
    if not value:
        return None
    head = value.split(";")[0].strip()
    return float(head) if head.isdigit() else None


# -- transaction keys -------------------------------------------------------
# A message's transaction key is a 64-bit FNV-1a hash of its fields (a
# request's top Via branch, CSeq, method and From-tag; a response's branch,
# CSeq, CSeq method, code and To-tag), each field length-prefixed.

cdef uint64_t FNV_OFFSET = 14695981039346656037ULL
cdef uint64_t FNV_PRIME = 1099511628211ULL


cdef inline uint64_t _fnv_bytes(uint64_t h, const uint8_t *p, uint32_t n) noexcept nogil:
    cdef uint32_t i
    h = (h ^ n) * FNV_PRIME
    for i in range(n):
        h = (h ^ p[i]) * FNV_PRIME
    return h


cdef inline uint64_t _fnv_int(uint64_t h, uint64_t v) noexcept nogil:
    cdef int i
    for i in range(8):
        h = (h ^ (v & 0xFF)) * FNV_PRIME
        v >>= 8
    return h


cdef inline uint64_t _fnv_span(uint64_t h, const uint8_t *base, ws_span sp) noexcept nogil:
    return _fnv_bytes(h, base + sp.off, sp.len)


cdef uint64_t _request_key(_Message x) noexcept:
    cdef ws_sip_msg *m = &x.m
    cdef uint64_t h = _fnv_int(FNV_OFFSET, 1)
    h = _fnv_span(h, x.base, m.via_branch)
    h = _fnv_int(h, m.cseq)
    if m.method != WS_SIP_OTHER:
        h = _fnv_int(h, 0x100 + m.method)
    else:
        h = _fnv_span(h, x.base, m.method_name)
    return _fnv_span(h, x.base, m.from_tag)


cdef uint64_t _response_key(_Message x) noexcept:
    cdef ws_sip_msg *m = &x.m
    cdef uint64_t h = _fnv_int(FNV_OFFSET, 2)
    h = _fnv_span(h, x.base, m.via_branch)
    h = _fnv_int(h, m.cseq)
    h = _fnv_int(h, m.cseq_method)
    h = _fnv_int(h, m.code)
    return _fnv_span(h, x.base, m.to_tag)


cdef inline uint8_t _lower(uint8_t c) noexcept:
    return c + 32 if 65 <= c <= 90 else c   # A-Z only, as str.lower() does on ASCII


cdef inline bint _has_ci(const uint8_t *p, uint32_t n, const char *lit, uint32_t k) noexcept:
    """An ASCII case-insensitive substring test (lit in lower case)."""
    cdef uint32_t i, j
    if n < k:
        return False
    for i in range(n - k + 1):
        for j in range(k):
            if _lower(p[i + j]) != <uint8_t>lit[j]:
                break
        else:
            return True
    return False


cdef inline bint _is_ci(const uint8_t *p, uint32_t n, const char *lit, uint32_t k) noexcept:
    return n == k and _has_ci(p, n, lit, k)


cdef inline bint _is(const uint8_t *p, uint32_t n, const char *lit, uint32_t k) noexcept:
    return n == k and memcmp(p, lit, k) == 0


# -- a call's transaction keys (KeySet, dialogs.pxd) -------------------------

cdef bint _keys_has(const KeySet *s, uint64_t k) noexcept:
    cdef uint32_t i, mask
    if k == 0:
        return s.has_zero
    if s.slots == NULL:
        for i in range(s.count - s.has_zero):
            if s.few[i] == k:
                return True
        return False
    mask = s.cap - 1
    i = <uint32_t>(k ^ (k >> 32)) & mask
    while s.slots[i] != 0:
        if s.slots[i] == k:
            return True
        i = (i + 1) & mask
    return False


cdef inline void _keys_put(uint64_t *slots, uint32_t mask, uint64_t k) noexcept:
    cdef uint32_t i = <uint32_t>(k ^ (k >> 32)) & mask
    while slots[i] != 0:
        i = (i + 1) & mask
    slots[i] = k


cdef int _keys_resize(KeySet *s, uint32_t cap) except -1:
    cdef uint64_t *slots = <uint64_t *>calloc(cap, sizeof(uint64_t))
    cdef uint32_t i
    if slots == NULL:
        raise MemoryError()
    if s.slots == NULL:
        for i in range(s.count - s.has_zero):
            _keys_put(slots, cap - 1, s.few[i])
    else:
        for i in range(s.cap):
            if s.slots[i] != 0:
                _keys_put(slots, cap - 1, s.slots[i])
        free(s.slots)
    s.slots = slots
    s.cap = cap
    return 0


cdef int _keys_add(KeySet *s, uint64_t k) except -1:
    """Adds k (not in s)."""
    cdef uint32_t n = s.count - s.has_zero   # keys other than 0
    if k == 0:
        s.has_zero = True
    elif s.slots == NULL and n < FEW_KEYS:
        s.few[n] = k
    else:
        if s.slots == NULL:
            _keys_resize(s, 4 * FEW_KEYS)
        elif 2 * (n + 1) > s.cap:
            _keys_resize(s, 2 * s.cap)
        _keys_put(s.slots, s.cap - 1, k)
    s.count += 1
    return 0


cdef void _keys_clear(KeySet *s) noexcept:
    free(s.slots)
    memset(s, 0, sizeof(KeySet))


cdef list _keys_list(const KeySet *s):
    cdef uint32_t i
    out = [0] if s.has_zero else []
    if s.slots == NULL:
        for i in range(s.count - s.has_zero):
            out.append(s.few[i])
    else:
        for i in range(s.cap):
            if s.slots[i] != 0:
                out.append(s.slots[i])
    return out


# Encoding names from a=rtpmap, interned: a handful recur in every SDP, and a
# call keeps each as an index (PtName). Past MAX_ENCODING_NAMES distinct names
# (junk), a name is kept per call instead (Call's payload view).
MAX_ENCODING_NAMES = 4096
cdef list _ENCODING_NAMES = []     # index -> str
cdef list _ENCODING_BYTES = []     # index -> the name's bytes
cdef uint64_t *_encoding_hashes = NULL   # open addressing: hash (0: empty) and index, side by side
cdef uint32_t *_encoding_slots = NULL
cdef uint32_t _ENCODING_SLOTS = 2 * 4096   # twice MAX_ENCODING_NAMES: at most half full
cdef uint32_t NOT_INTERNED = 0xFFFFFFFF


cdef uint32_t _encoding_index(const uint8_t *p, uint32_t n) except? 0xFFFFFFFE:
    """The interned index of an encoding name (NOT_INTERNED when the table is full)."""
    global _encoding_hashes, _encoding_slots
    cdef uint64_t h = _cid_hash(p, n)
    cdef uint32_t i, mask = _ENCODING_SLOTS - 1, index
    cdef bytes known
    if _encoding_hashes == NULL:
        _encoding_hashes = <uint64_t *>calloc(_ENCODING_SLOTS, sizeof(uint64_t))
        _encoding_slots = <uint32_t *>calloc(_ENCODING_SLOTS, sizeof(uint32_t))
        if _encoding_hashes == NULL or _encoding_slots == NULL:
            raise MemoryError()
    i = <uint32_t>h & mask
    while _encoding_hashes[i]:
        if _encoding_hashes[i] == h:
            known = <bytes>_ENCODING_BYTES[_encoding_slots[i]]
            if <uint32_t>len(known) == n and memcmp(<const char *>known, p, n) == 0:
                return _encoding_slots[i]
        i = (i + 1) & mask
    if len(_ENCODING_NAMES) >= MAX_ENCODING_NAMES:
        return NOT_INTERNED
    raw = PyBytes_FromStringAndSize(<const char *>p, n)
    index = len(_ENCODING_NAMES)
    _ENCODING_NAMES.append(raw.decode("utf-8", "replace"))
    _ENCODING_BYTES.append(raw)
    _encoding_hashes[i] = h
    _encoding_slots[i] = index
    return index


cdef str _side_name(uint8_t side):
    return "caller" if side == SIDE_CALLER else "callee"


cdef class Call:
    """One INVITE attempt (state in sip/dialogs.pxd)."""

    def __init__(self, call_ref, call_id, from_uri, to_uri, from_tag, double invite_ts, invite_cseq, caller,
                 **fields):
        _start_call(self, call_ref, call_id, from_uri, to_uri, from_tag, invite_ts, invite_cseq, caller)
        for name, value in fields.items():
            setattr(self, name, value)

    def __dealloc__(self):
        _keys_clear(&self.keys)
        _keys_clear(&self.keys_before)
        free(self.media_entries)
        free(self.wire)
        free(self.early_tags)
        free(self.answer_branches)
        free(self.answer_to_tags)
        if self.pt_names != self.pt_few:
            free(self.pt_names)

    # -- payload names ----------------------------------------------------------------

    cdef int name_payload(self, uint8_t pt, uint32_t name) except -1:
        """pt's encoding, an interned name (a dict's assignment: a named pt keeps its place)."""
        cdef uint32_t i
        cdef PtName *grown
        if self.pt_names == NULL:
            self.pt_names = self.pt_few
            self.pt_names_cap = FEW_PT_NAMES
        if self._payload_extra is not None and self._payload_extra.pop(pt, None) is not None:
            self._payload_view = None
        for i in range(self.n_pt_names):
            if self.pt_names[i].pt == pt:
                if self.pt_names[i].name != name:
                    self.pt_names[i].name = name
                    self._payload_view = None
                return 0
        if self.n_pt_names == self.pt_names_cap:
            grown = <PtName *>malloc(2 * self.pt_names_cap * sizeof(PtName))
            if grown == NULL:
                raise MemoryError()
            memcpy(grown, self.pt_names, self.n_pt_names * sizeof(PtName))
            if self.pt_names != self.pt_few:
                free(self.pt_names)
            self.pt_names = grown
            self.pt_names_cap *= 2
        self.pt_names[self.n_pt_names].pt = pt
        self.pt_names[self.n_pt_names].name = name
        self.n_pt_names += 1
        self._payload_view = None
        return 0

    cdef int name_payload_text(self, uint8_t pt, str text) except -1:
        """pt's encoding, a name not interned (or one set from Python)."""
        cdef uint32_t i
        for i in range(self.n_pt_names):
            if self.pt_names[i].pt == pt:
                self.n_pt_names -= 1
                memmove(&self.pt_names[i], &self.pt_names[i + 1], (self.n_pt_names - i) * sizeof(PtName))
                break
        if self._payload_extra is None:
            self._payload_extra = {}
        self._payload_extra[pt] = text
        self._payload_view = None
        return 0

    cdef str encoding_of(self, uint8_t pt):
        """pt's encoding name from the call's SDP, or None."""
        cdef uint32_t i
        for i in range(self.n_pt_names):
            if self.pt_names[i].pt == pt:
                return <str>_ENCODING_NAMES[self.pt_names[i].name]
        if self._payload_extra is not None:
            return self._payload_extra.get(pt)
        return None

    @property
    def payload_names(self):
        """pt -> encoding name, from the call's SDP (a=rtpmap); a copy's changes
        are not the call's."""
        cdef uint32_t i
        if self._payload_view is None:
            view = {self.pt_names[i].pt: _ENCODING_NAMES[self.pt_names[i].name] for i in range(self.n_pt_names)}
            if self._payload_extra:
                view.update(self._payload_extra)
            self._payload_view = view
        return self._payload_view

    @payload_names.setter
    def payload_names(self, value):
        self.n_pt_names = 0
        self._payload_extra = dict(value)
        self._payload_view = None

    # -- bytes off the wire -------------------------------------------------------

    cdef WireSpan keep(self, const uint8_t *p, uint32_t n) except *:
        """Copies n bytes into the call's wire block; no bytes read as None."""
        cdef WireSpan sp
        cdef uint8_t *grown
        cdef uint32_t cap
        sp.off = self.wire_used
        sp.len = n
        sp.present = n > 0
        if n == 0:
            return sp
        if self.wire_used + n > self.wire_cap:
            cap = max(2 * self.wire_cap, self.wire_used + n, 128)
            grown = <uint8_t *>realloc(self.wire, cap)
            if grown == NULL:
                raise MemoryError()
            self.wire = grown
            self.wire_cap = cap
        memcpy(self.wire + self.wire_used, p, n)
        self.wire_used += n
        return sp

    cdef str wire_text(self, WireSpan sp):
        """The span as the message's text read it (_text): None when absent."""
        if not sp.present:
            return None
        return (<const char *>self.wire)[sp.off:sp.off + sp.len].decode("utf-8", "replace")

    cdef bint wire_equal(self, WireSpan sp, const uint8_t *p, uint32_t n) except -1:
        """The span and p[:n] are the same text (as _text reads both)."""
        if not sp.present or n == 0:
            return not sp.present and n == 0
        if sp.len == n and memcmp(self.wire + sp.off, p, n) == 0:
            return True
        if _is_ascii(self.wire + sp.off, sp.len) and _is_ascii(p, n):
            return False
        return self.wire_text(sp) == (<const char *>p)[:n].decode("utf-8", "replace")

    cdef int add_early_dialog(self, const uint8_t *p, uint32_t n) except -1:
        """A To-tag of an early dialog (a set of at most MAX_FORKS)."""
        cdef uint32_t i
        for i in range(self.n_early):
            if self.wire_equal(self.early_tags[i], p, n):
                return 0
        if self.n_early >= FORKS_KEPT:
            return 0
        if self.early_tags == NULL:
            self.early_tags = <WireSpan *>malloc(FORKS_KEPT * sizeof(WireSpan))
            if self.early_tags == NULL:
                raise MemoryError()
        self.early_tags[self.n_early] = self.keep(p, n)
        self.n_early += 1
        self._early_view = None
        return 0

    cdef int add_answer(self, const uint8_t *branch, uint32_t nb, const uint8_t *tag, uint32_t nt,
                        bint first) except -1:
        """A 2xx's leg (top Via branch) and To-tag: the first answer's always (a
        dict's assignment), a later one's if its leg is new and fewer than
        MAX_FORKS are kept."""
        cdef uint32_t i
        for i in range(self.n_answers):
            if self.wire_equal(self.answer_branches[i], branch, nb):
                if first:
                    self.answer_to_tags[i] = self.w_answer_to_tag = self.keep(tag, nt)
                    self._answer_view = None
                return 0
        if self.n_answers >= FORKS_KEPT:
            return 0
        if self.answer_branches == NULL:
            self.answer_branches = <WireSpan *>malloc(FORKS_KEPT * sizeof(WireSpan))
            self.answer_to_tags = <WireSpan *>malloc(FORKS_KEPT * sizeof(WireSpan))
            if self.answer_branches == NULL or self.answer_to_tags == NULL:
                raise MemoryError()
        self.answer_branches[self.n_answers] = self.keep(branch, nb)
        self.answer_to_tags[self.n_answers] = self.keep(tag, nt)
        if first:
            self.w_answer_to_tag = self.answer_to_tags[self.n_answers]
        self.n_answers += 1
        self._answer_view = None
        return 0

    cdef bint answered_by(self, const uint8_t *tag, uint32_t n) except -1:
        """The To-tag is one of the answered legs' (answer_tags' values)."""
        cdef uint32_t i
        for i in range(self.n_answers):
            if self.wire_equal(self.answer_to_tags[i], tag, n):
                return True
        return False

    @property
    def from_uri(self):
        if self._from_uri is None and self.w_from_uri.present:
            self._from_uri = self.wire_text(self.w_from_uri)
        return self._from_uri

    @from_uri.setter
    def from_uri(self, value):
        self._from_uri = value
        self.w_from_uri.present = False

    @property
    def to_uri(self):
        if self._to_uri is None and self.w_to_uri.present:
            self._to_uri = self.wire_text(self.w_to_uri)
        return self._to_uri

    @to_uri.setter
    def to_uri(self, value):
        self._to_uri = value
        self.w_to_uri.present = False

    @property
    def from_tag(self):
        if self._from_tag is None and self.w_from_tag.present:
            self._from_tag = self.wire_text(self.w_from_tag)
        return self._from_tag

    @from_tag.setter
    def from_tag(self, value):
        self._from_tag = value
        self.w_from_tag.present = False

    @property
    def caller(self):
        """(addr16, port) the first INVITE came from."""
        if self._caller is None and self.caller_from_wire:
            self._caller = (PyBytes_FromStringAndSize(<const char *>self.caller_addr, 16), self.caller_port)
        return self._caller

    @caller.setter
    def caller(self, value):
        self._caller = value
        self.caller_from_wire = False

    @property
    def answer_to_tag(self):
        """The To-tag of the first 2xx."""
        if self.answer_to_tag_set:
            return self._answer_to_tag
        return self.wire_text(self.w_answer_to_tag)

    @answer_to_tag.setter
    def answer_to_tag(self, value):
        self._answer_to_tag = value
        self.answer_to_tag_set = True

    cdef bint remember(self, uint64_t key) except -1:
        """Was this transaction key seen before? If not, it is now (the older
        generation of keys is dropped when the current one is full)."""
        if _keys_has(&self.keys, key) or _keys_has(&self.keys_before, key):
            return True
        if self.keys.count >= KEYS_PER_GENERATION:
            _keys_clear(&self.keys_before)
            self.keys_before = self.keys
            memset(&self.keys, 0, sizeof(KeySet))
        _keys_add(&self.keys, key)
        return False

    cdef int add_media(self, const uint8_t *a16, uint16_t port, uint8_t side) except -1:
        """A destination bound to the call (a dict's semantics: a known one
        keeps its place and takes the new side)."""
        cdef uint32_t i
        cdef MediaEntry *e
        self._media_view = None
        for i in range(self.n_media):
            e = &self.media_entries[i]
            if e.port == port and memcmp(e.addr, a16, 16) == 0:
                e.side = side
                return 0
        if self.n_media == self.media_cap:
            e = <MediaEntry *>realloc(self.media_entries, (2 * self.media_cap + 2) * sizeof(MediaEntry))
            if e == NULL:
                raise MemoryError()
            self.media_entries = e
            self.media_cap = 2 * self.media_cap + 2
        e = &self.media_entries[self.n_media]
        memcpy(e.addr, a16, 16)
        e.port = port
        e.side = side
        self.n_media += 1
        return 0

    cdef int side_at(self, const uint8_t *a16, uint16_t port) noexcept:
        """Whose SDP named (a16, port): SIDE_CALLER or SIDE_CALLEE, -1 when none
        did (media.get((a16, port)), read in C)."""
        cdef uint32_t i
        cdef MediaEntry *e
        for i in range(self.n_media):
            e = &self.media_entries[i]
            if e.port == port and memcmp(e.addr, a16, 16) == 0:
                return e.side
        return -1

    @property
    def media(self):
        """(addr16, port) -> "caller" | "callee": the SDP destinations bound to
        the call, and whose SDP announced each."""
        cdef uint32_t i
        cdef MediaEntry *e
        if self._media_view is None:
            view = {}
            for i in range(self.n_media):
                e = &self.media_entries[i]
                view[(PyBytes_FromStringAndSize(<const char *>e.addr, 16), e.port)] = _side_name(e.side)
            self._media_view = view
        return self._media_view

    @media.setter
    def media(self, value):
        self.n_media = 0
        view = dict(value)
        for (a16, port), side in view.items():   # a side is "caller" or "callee" (None: no side)
            if isinstance(a16, bytes) and len(a16) == 16 and side is not None:
                self.add_media(a16, port, SIDE_CALLER if side == "caller" else SIDE_CALLEE)
        self._media_view = view

    @property
    def seen(self):
        """The transaction keys of the current generation."""
        return set(_keys_list(&self.keys))

    @property
    def early_dialogs(self):
        """To-tags of the early dialogs (forks)."""
        cdef uint32_t i
        if self._early_view is None:
            self._early_view = {self.wire_text(self.early_tags[i]) for i in range(self.n_early)}
        return self._early_view

    @early_dialogs.setter
    def early_dialogs(self, value):
        self.n_early = 0
        for tag in value:
            raw = tag.encode("utf-8", "surrogateescape")
            self.add_early_dialog(raw, len(raw))
        self._early_view = None

    @property
    def answer_tags(self):
        """Top Via branch -> To-tag of its first 2xx."""
        cdef uint32_t i
        if self._answer_view is None:
            self._answer_view = {self.wire_text(self.answer_branches[i]): self.wire_text(self.answer_to_tags[i])
                                 for i in range(self.n_answers)}
        return self._answer_view

    @answer_tags.setter
    def answer_tags(self, value):
        self.n_answers = 0
        for branch, tag in dict(value).items():
            b = (branch or "").encode("utf-8", "surrogateescape")
            t = (tag or "").encode("utf-8", "surrogateescape")
            self.add_answer(b, len(b), t, len(t), False)
        self._answer_view = None

    @property
    def vq_reports(self):
        """RFC 6035 quality reports about this call."""
        if self._vq_reports is None:
            self._vq_reports = []
        return self._vq_reports

    @vq_reports.setter
    def vq_reports(self, value):
        self._vq_reports = value

    @property
    def answered(self):
        return self.answer_ts is not None

    @property
    def duration_s(self):
        cdef double d
        if self.answer_ts is None or self.end_ts is None:
            return None
        if type(self.answer_ts) is float and type(self.end_ts) is float:
            d = <double>self.end_ts - <double>self.answer_ts
            return d if d > 0.0 else 0.0   # max(0.0, d), NaN included
        return max(0.0, self.end_ts - self.answer_ts)

    def __repr__(self):
        return (f"Call(call_ref={self.call_ref}, call_id={self.call_id!r}, invite_ts={self.invite_ts}, "
                f"final_code={self.final_code}, reason={self.reason!r}, answer_ts={self.answer_ts}, "
                f"end_ts={self.end_ts}, ended_by={self.ended_by!r})")


cdef Call _start_call(Call c, uint32_t call_ref, object call_id, object from_uri, object to_uri, object from_tag,
                      double invite_ts, long long invite_cseq, object caller):
    """A call's identity (Call() and the tracker's new calls; its tables start empty)."""
    c.call_ref = call_ref
    c.call_id = call_id
    c._from_uri = from_uri
    c._to_uri = to_uri
    c._from_tag = from_tag
    c.invite_ts = invite_ts
    c.invite_cseq = invite_cseq
    c._caller = caller
    c.leg = 1
    c.timer_due = _INF
    return c


cdef inline bint _is_ascii(const uint8_t *p, uint32_t n) noexcept:
    cdef uint32_t i
    cdef uint8_t seen = 0
    for i in range(n):
        seen |= p[i]
    return seen < 0x80


cdef class _Message:

    cdef void reset(self, double ts) noexcept:
        self.ts = ts
        # most messages make none of these: test before storing
        if self.keep is not None:
            self.keep = None
        if self._payload is not None:
            self._payload = None
        if self._src is not None:
            self._src = None
        if self._dst is not None:
            self._dst = None
        if self._headers is not None:
            self._headers = None
        if self._call_id is not None:
            self._call_id = None

    cdef str text(self, ws_span sp):
        return _text(self.base, sp)

    cdef str call_id(self):
        if self._call_id is None:
            self._call_id = _text(self.base, self.m.call_id)
        return self._call_id

    cdef str method(self):
        return _method_of(self.base, &self.m)

    cdef bytes payload(self):
        if self._payload is None:
            self._payload = PyBytes_FromStringAndSize(<const char *>self.data, self.n)
        return self._payload

    cdef tuple src_t(self):
        if self._src is None:
            self._src = (PyBytes_FromStringAndSize(<const char *>self.src, 16), self.sport)
        return self._src

    cdef tuple dst_t(self):
        if self._dst is None:
            self._dst = (PyBytes_FromStringAndSize(<const char *>self.dst, 16), self.dport)
        return self._dst

    cdef object headers(self):
        """The message as observers and taps see it: a SipHeaders."""
        cdef SipHeaders h
        if self._headers is None:
            h = SipHeaders.__new__(SipHeaders)
            h.m = self.m
            h.text = self.payload()
            self._headers = h
        return self._headers

    cdef bint from_caller(self, Call call) except -1:
        """The message's From-tag is the caller's (as text: raw bytes that differ
        only where UTF-8 decoding replaced them compare as the text does)."""
        cdef ws_span sp = self.m.from_tag
        if call.w_from_tag.present or (call._from_tag is None and call.w_call_id.present):
            return call.wire_equal(call.w_from_tag, self.base + sp.off, sp.len)   # the call's own bytes
        return self.text(sp) == call.from_tag


PT_KIND_NAMES = {kind: name for name, kind in PT_KINDS.items()}


cdef _Message _message_of(_Message x, object h, object payload, double ts, object src, object dst):
    """Points x at a message handed in by Python: `h` a SipHeaders, or any
    object with its fields (tests build those by hand)."""
    cdef SipHeaders sh = h if isinstance(h, SipHeaders) else _headers_of(h)
    x.reset(ts)
    x.m = sh.m
    x.keep = sh.text
    x.base = <const uint8_t *>(<const char *>sh.text)
    x._payload = payload if isinstance(payload, bytes) else bytes(payload)
    x.data = <const uint8_t *>(<const char *>x._payload)
    x.n = len(x._payload)
    x._headers = h
    _copy_addr(x.src, src[0])
    _copy_addr(x.dst, dst[0])
    x.sport, x.dport = src[1], dst[1]
    x._src, x._dst = src, dst
    return x


cdef void _copy_addr(uint8_t *out, object a16):
    cdef bytes b = bytes(a16)
    cdef Py_ssize_t n = min(len(b), 16)
    memset(out, 0, 16)
    memcpy(out, <const char *>b, n)


cdef SipHeaders _headers_of(object h):
    """A SipHeaders holding the fields of a header object made by hand: its
    strings laid end to end, the scan's spans pointing at them."""
    cdef SipHeaders out = SipHeaders.__new__(SipHeaders)
    cdef ws_sip_msg *m = &out.m
    memset(m, 0, sizeof(ws_sip_msg))
    cdef bytearray buf = bytearray()
    m.status = SIP_STATUS.index(getattr(h, "status_name", "ok"))
    m.is_request = bool(h.is_request)
    m.code = h.code or 0
    m.cseq = h.cseq or 0
    m.via_count = getattr(h, "via_count", 1) or 0
    method = getattr(h, "method", None)
    if m.is_request and method:
        if method in SIP_METHODS[1:]:
            m.method = SIP_METHODS.index(method)
        m.method_name = _span_into(buf, method)
    cseq_method = getattr(h, "cseq_method", None)
    if cseq_method in SIP_METHODS[1:]:
        m.cseq_method = SIP_METHODS.index(cseq_method)
    m.request_uri = _span_into(buf, getattr(h, "request_uri", None))
    m.call_id = _span_into(buf, h.call_id)
    m.from_uri = _span_into(buf, getattr(h, "from_uri", None))
    m.from_tag = _span_into(buf, h.from_tag)
    m.to_uri = _span_into(buf, getattr(h, "to_uri", None))
    m.to_tag = _span_into(buf, getattr(h, "to_tag", None))
    m.via_branch = _span_into(buf, h.via_branch)
    m.content_type = _span_into(buf, getattr(h, "content_type", None))
    m.session_expires = _span_into(buf, getattr(h, "session_expires", None))
    m.correlation = _span_into(buf, getattr(h, "correlation", None))
    m.header_len = getattr(h, "header_len", 0) or 0
    m.body.off = getattr(h, "body_off", 0) or 0
    m.body.len = getattr(h, "body_len", 0) or 0
    m.msg_len = m.header_len + m.body.len
    m.content_length = WS_SIP_NO_LENGTH
    out.text = bytes(buf)
    return out


cdef ws_span _span_into(bytearray buf, object value):
    """value (str or None) appended to buf: its span there."""
    cdef ws_span sp
    sp.off = len(buf)
    sp.len = 0
    if value:
        raw = value.encode("utf-8", "surrogateescape")
        buf.extend(raw)
        sp.len = len(raw)
    return sp


cdef dict _DIRECTION_IDS = {name: i for i, name in enumerate(SDP_DIRECTIONS) if name}


cdef void _conn_from_text(ws_sdp_conn *c, object text) except *:
    c.state = WS_SDP_CONN_ABSENT
    if text is None:
        return
    try:
        a16 = addr16(text)
    except ValueError:
        c.state = WS_SDP_CONN_INVALID
        return
    c.state = WS_SDP_CONN_VALID
    c.is_v4 = a16[:12] == _V4_MAPPED
    memcpy(c.addr.b, <const char *>a16, 16)


cdef object _sdp_from_description(object sd, ws_sdp *s):
    """A SessionDescription the Python parser read (a body the native scan
    leaves alone) laid out in `s` as the scan lays a body out, so one bind
    loop serves both; returns the buffer its spans point into (None when not
    SDP). Past the scan's limits (WS_SDP_MAX_*), which no real body reaches,
    the first entries are kept."""
    cdef ws_sdp_media *m
    cdef ws_sdp_format *f
    cdef ws_sdp_rtpmap *r
    cdef bytearray buf = bytearray()
    if sd is None:
        return None
    memset(s, 0, sizeof(ws_sdp))
    s.status = WS_SDP_OK
    s.direction = _DIRECTION_IDS.get(sd.direction, WS_SDP_DIR_NONE)
    _conn_from_text(&s.conn, sd.connection)
    for md in sd.media[:WS_SDP_MAX_MEDIA]:
        m = &s.media[s.n_media]
        s.n_media += 1
        m.kind = _span_into(buf, md.kind)
        m.proto = _span_into(buf, md.proto)
        m.port = md.port if 0 <= md.port <= 0xFFFFFFFF else 0
        m.direction = _DIRECTION_IDS.get(md.direction, WS_SDP_DIR_NONE)
        _conn_from_text(&m.conn, md.connection)
        m.first_format = s.n_formats
        for fmt in md.formats:
            if s.n_formats == WS_SDP_MAX_FORMATS:
                break
            f = &s.formats[s.n_formats]
            s.n_formats += 1
            m.n_formats += 1
            if isinstance(fmt, int) and 0 <= fmt <= 0xFFFFFFFF:
                f.numeric = 1
                f.value = fmt
        m.first_rtpmap = s.n_rtpmap
        for pt, (enc, clock) in md.rtpmap.items():
            if s.n_rtpmap == WS_SDP_MAX_RTPMAP:
                break
            if not 0 <= pt <= 0xFFFFFFFF:
                continue   # matches no format RTP can carry
            r = &s.rtpmap[s.n_rtpmap]
            s.n_rtpmap += 1
            m.n_rtpmap += 1
            r.pt = pt
            r.clock = clock if 0 < clock <= 0xFFFFFFFF else 0
            r.encoding = _span_into(buf, enc)
    return bytes(buf)


cdef inline bint _timer_before(const TimerEntry *a, const TimerEntry *b) noexcept:
    return a.due < b.due or (a.due == b.due and a.seq < b.seq)


# Keyed per process, so Call-IDs cannot be chosen to collide in the table.
cdef uint64_t _CID_SEED = int.from_bytes(__import__("os").urandom(8), "little")


cdef inline uint64_t _cid_hash(const uint8_t *cid, uint32_t n) noexcept:
    """The table's hash of a Call-ID: eight bytes at a time (multiply and fold),
    odd, since 0 marks an empty CallSlot."""
    cdef uint64_t h = _CID_SEED ^ n, w
    while n >= 8:
        memcpy(&w, cid, 8)
        h = (h ^ w) * 0xff51afd7ed558ccdULL
        h ^= h >> 32
        cid += 8
        n -= 8
    if n:
        w = 0
        memcpy(&w, cid, n)
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL
        h ^= h >> 29
    return h | 1


cdef class CallTable:
    """CallTracker.calls: the open calls, Call-ID -> Call, least recently
    active first. A read-only view of the tracker's table; keys(), values()
    and items() are lists (snapshots)."""
    cdef CallTracker tracker

    def __len__(self):
        return self.tracker.n_open

    def __iter__(self):
        return iter(self.keys())

    def __contains__(self, call_id):
        return self.get(call_id) is not None

    def __getitem__(self, call_id):
        call = self.get(call_id)
        if call is None:
            raise KeyError(call_id)
        return call

    def get(self, call_id, default=None):
        cdef bytes raw
        if isinstance(call_id, str):
            raw = call_id.encode("utf-8", "surrogateescape")
            call = self.tracker._lookup(<const uint8_t *>(<const char *>raw), <uint32_t>len(raw),
                                        _cid_hash(<const uint8_t *>(<const char *>raw), <uint32_t>len(raw)))
            if call is not None and call.call_id == call_id:
                return call
        for call in self.values():   # a Call-ID whose bytes did not decode as UTF-8
            if call.call_id == call_id:
                return call
        return default

    def values(self):
        cdef list out = []
        cdef CallTracker t = self.tracker
        cdef uint32_t i = t.oldest
        while i != NO_ENTRY:
            out.append(<Call>t.order_call[i])
            i = t.order_next[i]
        return out

    def keys(self):
        return [call.call_id for call in self.values()]

    def items(self):
        return [(call.call_id, call) for call in self.values()]

    def __repr__(self):
        return f"CallTable({len(self)} open calls)"


cdef class CallTracker:
    """Consumes SIP messages in capture order; hands finished calls to `on_call`."""

    def __cinit__(self):
        self._sdp = <ws_sdp *>calloc(1, sizeof(ws_sdp))
        self.slots = <CallSlot *>calloc(MIN_CALL_SLOTS, sizeof(CallSlot))
        if self._sdp == NULL or self.slots == NULL:
            raise MemoryError()
        self.slot_mask = MIN_CALL_SLOTS - 1
        self.oldest = self.newest = self.order_free = NO_ENTRY

    def __dealloc__(self):
        cdef uint32_t i
        free(self._sdp)
        if self.slots != NULL:
            for i in range(self.slot_mask + 1):
                if self.slots[i].hash:
                    Py_XDECREF(self.slots[i].call)
            free(self.slots)
        for i in range(self.n_timers):
            Py_XDECREF(self.timers[i].call)
        free(self.timers)
        free(self.order_prev)
        free(self.order_next)
        free(self.order_call)

    def __init__(self, engine, config=None, on_call=None, on_attempt=None, label_config=None, on_pdd=None):
        _load_python_side()
        self.engine = engine
        self.config = config or _CallConfig()   # the property below keeps its limits as C numbers
        self.on_call = on_call or (lambda call: None)
        self.on_attempt = on_attempt or (lambda call: None)
        self.on_pdd = on_pdd or (lambda call: None)
        self.label_config = label_config   # warpsniff.labels.LabelConfig, or None: all "unknown"
        self.observers = []
        self.taps = []
        self.open_by_ref = {}
        self._stats = _CallStats()
        self._other_methods = {}
        self._method_order = []
        # transaction keys of messages that belong to no call (REGISTER, OPTIONS,
        # stragglers); a call's own keys live and die with the call
        self.seen_other = OrderedDict()
        self.legs = OrderedDict()
        self.recent = OrderedDict()
        self.next_ref = 1
        self.now = 0.0
        # Timers (tick): a heap whose entries are due never later than the first
        # capture time their call can time out at, so a tick looks only at the calls
        # whose entry is due instead of at every open call; an entry whose seq is not
        # its call's timer_seq is stale. Every message for a call and every new call
        # moves it to the newest end of `calls` and takes the next _seq as its
        # Call.timer_rank, so sorting by rank gives `calls`' order.
        self._dirty = []
        self._seq = 0
        # RTP activity, asked for only when a timer is due: f(call_refs) -> {call_ref:
        # latest RTP time (s)} (Pipeline: from the engine's stream table). None: the
        # owner reports activity through media_activity instead.
        self.media_probe = None
        import re
        pattern = self.config.call_id_pattern
        self._call_id_re = re.compile(pattern) if pattern else None
        header = self.config.correlation_header
        self.corr_name = header.lower().encode() if header else None
        self._msg = _Message.__new__(_Message)

    @property
    def calls(self):
        """The open calls: Call-ID -> Call, least recently active first (a CallTable;
        a new view each time: one kept here would make a reference cycle)."""
        cdef CallTable view = CallTable.__new__(CallTable)
        view.tracker = self
        return view

    # -- the table of open calls --------------------------------------------------

    cdef Call _lookup(self, const uint8_t *cid, uint32_t n, uint64_t h):
        cdef uint32_t i = <uint32_t>h & self.slot_mask
        cdef CallSlot *slot
        cdef Call call
        while True:
            slot = &self.slots[i]
            if slot.hash == 0:
                return None
            if slot.hash == h:
                call = <Call>slot.call
                if call.w_call_id.len == n and memcmp(call.cid_head, cid, n if n < CID_HEAD else CID_HEAD) == 0 and (
                        n <= CID_HEAD or memcmp(call.wire + call.w_call_id.off + CID_HEAD, cid + CID_HEAD,
                                                n - CID_HEAD) == 0):
                    return call
            i = (i + 1) & self.slot_mask

    cdef int _grow_slots(self) except -1:
        cdef uint32_t i, j, size = self.slot_mask + 1
        cdef uint32_t mask = 2 * size - 1
        cdef CallSlot *slots = <CallSlot *>calloc(2 * size, sizeof(CallSlot))
        if slots == NULL:
            raise MemoryError()
        for i in range(size):
            if self.slots[i].hash:
                j = <uint32_t>self.slots[i].hash & mask
                while slots[j].hash:
                    j = (j + 1) & mask
                slots[j] = self.slots[i]
        free(self.slots)
        self.slots = slots
        self.slot_mask = mask
        return 0

    cdef int _insert(self, Call call) except -1:
        """Adds a call (its Call-ID not in the table) as the newest."""
        cdef uint32_t i
        if 2 * (self.n_open + 1) > self.slot_mask + 1:
            self._grow_slots()
        i = <uint32_t>call.cid_hash & self.slot_mask
        while self.slots[i].hash:
            i = (i + 1) & self.slot_mask
        cdef uint32_t e, cap
        cdef void *grown
        if self.order_free == NO_ENTRY and self.order_used == self.order_cap:
            cap = 2 * self.order_cap + 1024
            grown = realloc(self.order_prev, cap * sizeof(uint32_t))
            if grown == NULL:
                raise MemoryError()
            self.order_prev = <uint32_t *>grown
            grown = realloc(self.order_next, cap * sizeof(uint32_t))
            if grown == NULL:
                raise MemoryError()
            self.order_next = <uint32_t *>grown
            grown = realloc(self.order_call, cap * sizeof(PyObject *))
            if grown == NULL:
                raise MemoryError()
            self.order_call = <PyObject **>grown
            self.order_cap = cap
        self.slots[i].hash = call.cid_hash
        self.slots[i].call = <PyObject *>call
        Py_INCREF(call)
        call.in_table = True
        if self.order_free != NO_ENTRY:
            e = self.order_free
            self.order_free = self.order_next[e]
        else:
            e = self.order_used
            self.order_used += 1
        call.order_index = e
        self.order_call[e] = <PyObject *>call
        self.order_prev[e] = self.newest
        self.order_next[e] = NO_ENTRY
        if self.newest != NO_ENTRY:
            self.order_next[self.newest] = e
        else:
            self.oldest = e
        self.newest = e
        self.n_open += 1
        self.open_by_ref[call.call_ref] = call
        return 0

    cdef int _remove(self, Call call) except -1:
        """Takes a call out of the table (the caller holds a reference to it)."""
        cdef uint32_t i = <uint32_t>call.cid_hash & self.slot_mask, j, home, mask = self.slot_mask
        if not call.in_table:
            return 0
        while self.slots[i].call != <PyObject *>call:
            i = (i + 1) & mask
        j = i
        while True:   # backward shift: no entry may sit before its home slot with a gap between
            j = (j + 1) & mask
            if self.slots[j].hash == 0:
                break
            home = <uint32_t>self.slots[j].hash & mask
            if (i <= j and (home <= i or home > j)) or (i > j and home <= i and home > j):
                self.slots[i] = self.slots[j]
                i = j
        self.slots[i].hash = 0
        self.slots[i].call = NULL
        self._unlink(call.order_index)
        self.order_call[call.order_index] = NULL
        self.order_next[call.order_index] = self.order_free
        self.order_free = call.order_index
        call.order_index = NO_ENTRY
        call.in_table = False
        self.n_open -= 1
        del self.open_by_ref[call.call_ref]
        Py_DECREF(call)
        return 0

    cdef void _unlink(self, uint32_t i) noexcept:
        cdef uint32_t before = self.order_prev[i], after = self.order_next[i]
        if before != NO_ENTRY:
            self.order_next[before] = after
        else:
            self.oldest = after
        if after != NO_ENTRY:
            self.order_prev[after] = before
        else:
            self.newest = before

    cdef void _to_newest(self, Call call) noexcept:
        cdef uint32_t i = call.order_index
        if not call.in_table or i == self.newest:
            return
        self._unlink(i)
        self.order_prev[i] = self.newest
        self.order_next[i] = NO_ENTRY
        self.order_next[self.newest] = i
        self.newest = i

    # -- the timer heap -------------------------------------------------------------

    cdef int _push_timer(self, Call call, double due) except -1:
        cdef uint32_t i, parent
        cdef TimerEntry *grown
        cdef TimerEntry entry
        if self.n_timers == self.timers_cap:
            grown = <TimerEntry *>realloc(self.timers, (2 * self.timers_cap + 64) * sizeof(TimerEntry))
            if grown == NULL:
                raise MemoryError()
            self.timers = grown
            self.timers_cap = 2 * self.timers_cap + 64
        self._seq += 1
        call.timer_seq = self._seq
        call.timer_due = due
        entry.due = due
        entry.seq = self._seq
        entry.call = <PyObject *>call
        Py_INCREF(call)
        i = self.n_timers
        self.n_timers += 1
        while i > 0:
            parent = (i - 1) >> 1
            if not _timer_before(&entry, &self.timers[parent]):
                break
            self.timers[i] = self.timers[parent]
            i = parent
        self.timers[i] = entry
        return 0

    cdef Call _pop_timer(self, double *due, uint64_t *seq):
        """The earliest entry, out of the heap: its call (the heap's reference
        handed over), due time and seq."""
        cdef TimerEntry top = self.timers[0], last
        cdef uint32_t i = 0, child, n
        self.n_timers -= 1
        n = self.n_timers
        if n:
            last = self.timers[n]
            while True:
                child = 2 * i + 1
                if child >= n:
                    break
                if child + 1 < n and _timer_before(&self.timers[child + 1], &self.timers[child]):
                    child += 1
                if not _timer_before(&self.timers[child], &last):
                    break
                self.timers[i] = self.timers[child]
                i = child
            self.timers[i] = last
        due[0] = top.due
        seq[0] = top.seq
        call = <Call>top.call
        Py_DECREF(call)
        return call

    cdef int _mark_dirty(self, Call call) except -1:
        if not call.dirty:
            call.dirty = True
            self._dirty.append(call)
        return 0

    @property
    def config(self):
        """CallConfig; its limits are read when it is set (assign a new one to change them)."""
        return self._config

    @config.setter
    def config(self, config):
        self._config = config
        self._bye_linger, self._invite_timeout = config.bye_linger, config.invite_timeout
        self._ring_timeout, self._rtp_timeout = config.ring_timeout, config.rtp_timeout
        self._sip_only_timeout, self._max_duration = config.sip_only_timeout, config.max_duration
        self._max_calls = config.max_calls

    @property
    def engine(self):
        return self._engine

    @engine.setter
    def engine(self, engine):
        self._engine = engine
        self._native = engine if isinstance(engine, Engine) else None

    @property
    def stats(self):
        """CallStats, as of now."""
        s = self._stats
        s.messages = self.n_messages
        s.requests = self.n_requests
        s.responses = self.n_responses
        s.retransmissions = self.n_retransmissions
        by_method = s.by_method
        by_method.clear()
        for name in self._method_order:
            n = self._other_methods.get(name)
            by_method[name] = n if n is not None else self.n_by_method[_SIP_METHODS.index(name)]
        return s

    cdef int _count_method(self, _Message x) except -1:
        cdef int method = x.m.method
        if method != WS_SIP_OTHER:
            if self.n_by_method[method] == 0:
                self._method_order.append(_SIP_METHODS[method])
            self.n_by_method[method] += 1
            return 0
        name = x.method()
        n = self._other_methods.get(name)
        if n is None:
            self._method_order.append(name)
            n = 0
        self._other_methods[name] = n + 1
        return 0

    # -- input ---------------------------------------------------------------

    def feed(self, Engine engine, correlator=None):
        """Takes `engine`'s signalling batch and empties it: SIP over UDP goes
        from the engine's arena into the state machine (no Python object per
        message); TCP, SCTP and control-port records go to
        `correlator.record(...)` in their place in capture order. Returns the
        number of records."""
        return self._feed(engine, correlator)

    cdef uint32_t _feed(self, Engine engine, object correlator) except? 0xFFFFFFFF:
        """feed(), called by Engine.run straight from C."""
        cdef ws_engine *e = engine.e
        cdef uint32_t i, n = e.sig_count
        self.records_fed += n
        cdef ws_sig_record *r
        cdef const uint8_t *arena = <const uint8_t *>e.sig_arena
        cdef const char *corr = NULL
        cdef _Message x = self._msg
        cdef uint8_t *exact = NULL
        if self.corr_name is not None:
            corr = self.corr_name
        try:
            for i in range(n):
                r = &e.sig[i]
                if r.kind == WS_SIG_UDP:
                    x.reset((<double>r.ts_ns) / 1e9)
                    x.base = x.data = arena + r.offset
                    x.n = r.length
                    if WS_EXACT_COPIES:
                        # sanitizer builds: the message alone in a block of its size, so a
                        # read past it is reported (inside the arena it would not be)
                        exact = <uint8_t *>malloc(x.n if x.n else 1)
                        memcpy(exact, x.data, x.n)
                        x.base = x.data = exact
                    memcpy(x.src, r.src, 16)
                    memcpy(x.dst, r.dst, 16)
                    x.sport, x.dport = r.sport, r.dport
                    ws_sip_parse(x.data, x.n, 1, corr, &x.m)
                    self._take(x)
                    if self.taps:
                        for tap in self.taps:
                            tap(x.headers(), x.ts, x.src_t(), x.dst_t())
                    x.reset(0.0)
                    if WS_EXACT_COPIES:
                        free(exact)
                        exact = NULL
                elif correlator is not None:
                    correlator.record((<double>r.ts_ns) / 1e9, (<const char *>r.src)[:16],
                                      (<const char *>r.dst)[:16], r.sport, r.dport, r.kind, r.tcp_flags,
                                      r.tcp_seq, (<const char *>arena)[r.offset:r.offset + r.length])
        finally:
            free(exact)
            ws_engine_sig_reset(e)
        return n

    def message(self, h, payload, double ts, src, dst):
        """One SIP message: `h` its native-parsed headers (parse_sip; or any
        object with those fields), `payload` the whole message, src and dst
        (addr16, port)."""
        cdef _Message x = _message_of(_Message.__new__(_Message), h, payload, ts, src, dst)
        self._take(x)
        for tap in self.taps:
            tap(h, ts, src, dst)

    cdef int _take(self, _Message x) except -1:
        cdef ws_sip_msg *m = &x.m
        cdef uint64_t key, h
        cdef bint starts_call
        cdef const uint8_t *cid
        if x.ts > self.now:
            self.now = x.ts
        self.n_messages += 1
        if m.status != WS_SIP_OK:
            if m.status == WS_SIP_KEEPALIVE:
                self._stats.keepalives += 1
            else:
                self._stats.parse_errors += 1
            return 0
        if self.observers:
            for observe in self.observers:
                observe(x.headers(), x.ts, x.src_t(), x.dst_t())
        cid = x.base + m.call_id.off
        h = _cid_hash(cid, m.call_id.len)
        cdef Call call = self._lookup(cid, m.call_id.len, h)
        if m.is_request:
            self.n_requests += 1
            self._count_method(x)
            starts_call = m.method == WS_SIP_INVITE and m.to_tag.len == 0  # the new call will hold its key
            key = _request_key(x)
            if self._retransmitted(x, call, key, not starts_call):
                self._count_retransmission(call)
                return 0
            self._request(x, call)
            if starts_call:
                call = self._lookup(cid, m.call_id.len, h)
                if call is not None:
                    call.remember(key)
        else:
            self.n_responses += 1
            key = _response_key(x)
            if self._retransmitted(x, call, key, True):
                self._count_retransmission(call)
                return 0
            self._response(x, call)
        return 0

    cdef bint _retransmitted(self, _Message x, Call open_call, uint64_t key, bint remember_outside) except -1:
        """Seen before? Keys are kept per call (freed with it), else in a small LRU
        (keyed with the Call-ID too)."""
        call = open_call if open_call is not None else self.recent.get(x.call_id())
        if call is not None:
            return (<Call>call).remember(key)
        other_key = _fnv_span(key, x.base, x.m.call_id)
        seen_other = self.seen_other
        if other_key in seen_other:
            return True
        if not remember_outside:
            return False
        seen_other[other_key] = None
        if len(seen_other) > OTHER_TRANSACTIONS:
            seen_other.popitem(last=False)
        return False

    cdef void _count_retransmission(self, Call open_call) noexcept:
        self.n_retransmissions += 1
        if open_call is not None:
            open_call.retransmissions += 1

    # -- requests -------------------------------------------------------------

    def _publish(self, _Message x):
        """RFC 6035 quality report: attach it to the call it names."""
        cdef ws_sip_msg *m = &x.m
        if not m.body.len or _VQ_CONTENT_TYPE not in (x.text(m.content_type) or "").lower():
            return
        payload = x.payload()
        report = _parse_vq_report(payload[m.body.off:m.body.off + m.body.len])
        if report is None:
            return
        self._stats.vq_reports += 1
        cid = report.get("call_id") or ""
        call = self.calls.get(cid) or self.recent.get(cid)  # CallTerm reports follow the BYE
        if call is not None and len(call.vq_reports) < 16:
            call.vq_reports.append(report)

    cdef void _touch(self, Call call, double ts) except *:
        call.last_sip_ts = ts
        self._to_newest(call)
        self._seq += 1
        call.timer_rank = self._seq
        self._mark_dirty(call)

    cdef int _request(self, _Message x, Call call) except -1:
        cdef ws_sip_msg *m = &x.m
        cdef bint from_caller
        if m.method == WS_SIP_PUBLISH:
            self._publish(x)
            return 0
        if call is not None:
            self._touch(call, x.ts)
        method = m.method
        if method == WS_SIP_INVITE:
            if m.to_tag.len == 0:
                self._initial_invite(call, x)
            elif call is not None:
                self._stats.reinvites += 1
                self._refresh(call, x)
                self._offer_answer(call, x)
        elif call is None:
            return 0
        elif method == WS_SIP_CANCEL:
            if call.answer_ts is None:
                call.cancelled = True
        elif method == WS_SIP_BYE:
            from_caller = x.from_caller(call)
            if call.n_answers:
                callee_tag = m.to_tag if from_caller else m.from_tag
                if not call.answered_by(x.base + callee_tag.off, callee_tag.len):
                    return 0  # ends a fork that lost the race, not the call
            if call.end_ts is None or call.reason == "timeout":
                call.end_ts = x.ts
                call.bye_ts = x.ts
                call.ended_by = "caller" if from_caller else "callee"
                if call.reason is None:
                    call.reason = _termination_reason(call.final_code) if call.answer_ts is not None else "cancelled"
        elif method == WS_SIP_UPDATE:
            self._refresh(call, x)
            self._offer_answer(call, x)
        elif method == WS_SIP_ACK or method == WS_SIP_PRACK:
            self._offer_answer(call, x)
        return 0

    cdef int _initial_invite(self, Call call, _Message x) except -1:
        cdef ws_sip_msg *m = &x.m
        if call is not None and not call.done:
            if call.challenged and m.cseq > call.invite_cseq:
                # the same attempt, retried with credentials
                call.challenged = False
                call.final_code = None
                call.invite_cseq = m.cseq
                self._offer_answer(call, x)
                return 0
            if call.final_code is None and call.answer_ts is None:
                # a new branch of the same INVITE (forking proxy upstream): same attempt
                self._offer_answer(call, x)
                return 0
            self._finish(call)
        call = _start_call(Call.__new__(Call), self.next_ref, x.call_id(), None, None, None, x.ts, m.cseq, None)
        # its identity stays bytes until read (Call's properties)
        call.w_call_id = call.keep(x.base + m.call_id.off, m.call_id.len)
        call.cid_hash = _cid_hash(x.base + m.call_id.off, m.call_id.len)
        memcpy(call.cid_head, x.base + m.call_id.off, m.call_id.len if m.call_id.len < CID_HEAD else CID_HEAD)
        call.w_from_uri = call.keep(x.base + m.from_uri.off, m.from_uri.len)
        call.w_to_uri = call.keep(x.base + m.to_uri.off, m.to_uri.len)
        call.w_from_tag = call.keep(x.base + m.from_tag.off, m.from_tag.len)
        memcpy(call.caller_addr, x.src, 16)
        call.caller_port = x.sport
        call.caller_from_wire = True
        call.last_sip_ts = x.ts
        self.next_ref += 1
        if m.session_expires.len:
            call.session_expires = _session_expires(x.text(m.session_expires))
        if self.corr_name is not None or self._call_id_re is not None:
            self._correlate(call, x)
        if self.label_config is not None:
            call.labels = native_labels(self.label_config).labels_of(x.base, &x.m, x.data, x.n, x.src, x.sport,
                                                                     x.dst, x.dport)
        self._insert(call)
        self._seq += 1
        call.timer_rank = self._seq
        self._mark_dirty(call)   # no heap entry until the next tick
        cdef Call oldest
        if self.n_open > self._max_calls:
            oldest = <Call>self.order_call[self.oldest]
            self._remove(oldest)
            oldest.evicted = True
            self._stats.evicted += 1
            if oldest.end_ts is None:
                oldest.end_ts = oldest.last_sip_ts
                oldest.reason = "timeout"
                oldest.ended_by = "timeout"
            self._finish(oldest, pop=False)
        self.on_attempt(call)
        self._offer_answer(call, x)
        return 0

    cdef int _correlate(self, Call call, _Message x) except -1:
        key = None
        if self.corr_name is not None and x.m.correlation.len:
            key = x.text(x.m.correlation).strip()
        elif self._call_id_re is not None:
            found = self._call_id_re.search(call.call_id)
            if found:
                key = found.group(1)
        if key is None:
            return 0
        call.correlation_id = key
        call.leg = self.legs.get(key, 0) + 1
        self.legs[key] = call.leg
        self.legs.move_to_end(key)
        if len(self.legs) > self._max_calls:
            self.legs.popitem(last=False)
        return 0

    def _refresh(self, Call call, _Message x):
        call.refreshed_ts = x.ts
        if x.m.session_expires.len:
            se = _session_expires(x.text(x.m.session_expires))
            if se:
                call.session_expires = se

    # -- responses ------------------------------------------------------------

    cdef int _response(self, _Message x, Call call) except -1:
        cdef ws_sip_msg *m = &x.m
        if call is None:
            self._stats.orphan_responses += 1
            return 0
        self._touch(call, x.ts)
        cdef int code = m.code
        cdef int cseq_method = m.cseq_method
        if cseq_method == WS_SIP_BYE:
            if code >= 200 and call.bye_code is None and call.bye_ts is not None:
                call.bye_code = code
                self._finish(call)
            return 0
        if cseq_method != WS_SIP_INVITE and cseq_method != WS_SIP_UPDATE and cseq_method != WS_SIP_PRACK:
            return 0
        if cseq_method == WS_SIP_INVITE and m.cseq == call.invite_cseq:
            if call.answer_ts is None:
                self._invite_response(call, x)
            elif 200 <= code < 300:
                # the answer as another leg of the same Call-ID saw it (a B2BUA or
                # a proxy on both sides of the tap): its dialog is the call too
                call.add_answer(x.base + m.via_branch.off, m.via_branch.len, x.base + m.to_tag.off, m.to_tag.len,
                                False)
            # else: a 2xx from another fork of the same leg after the first won
        elif 200 <= code < 300:
            if cseq_method == WS_SIP_INVITE and m.session_expires.len:
                call.session_expires = _session_expires(x.text(m.session_expires))
            self._offer_answer(call, x)  # re-INVITE/UPDATE answer
        elif cseq_method == WS_SIP_PRACK or code < 200:
            self._offer_answer(call, x)
        return 0

    cdef int _invite_response(self, Call call, _Message x) except -1:
        cdef ws_sip_msg *m = &x.m
        cdef int code = m.code
        if code < 200:
            call.proceeding = True
            pdd_end = PROVISIONAL_PDD.get(code)
            if pdd_end is not None:
                if call.pdd_ms is None:
                    call.pdd_ms = (x.ts - call.invite_ts) * 1000.0
                    call.pdd_end = pdd_end
                    self.on_pdd(call)
                call.ringing = call.ringing or code != 183
                if m.to_tag.len:
                    call.add_early_dialog(x.base + m.to_tag.off, m.to_tag.len)
            self._offer_answer(call, x)
            return 0
        if code < 300:
            call.answer_ts = x.ts
            call.answer_to_tag_set = False
            call.add_answer(x.base + m.via_branch.off, m.via_branch.len, x.base + m.to_tag.off, m.to_tag.len, True)
            call.final_code = code
            call.challenged = False
            if call.pdd_ms is None:
                call.pdd_ms = (x.ts - call.invite_ts) * 1000.0
                call.pdd_end = "answer"
                self.on_pdd(call)
            if m.session_expires.len:
                se = _session_expires(x.text(m.session_expires))
                if se:
                    call.session_expires = se
            call.refreshed_ts = x.ts
            self._offer_answer(call, x)
            return 0
        if code == 401 or code == 407:
            call.challenged = True
            call.challenge_ts = x.ts
            call.final_code = code
            return 0
        call.final_code = code
        call.end_ts = x.ts
        call.reason = _termination_reason(code)
        if code == 487 or call.cancelled:
            call.ended_by = "caller"
        self._finish(call)
        return 0

    # -- media ----------------------------------------------------------------

    cdef int _offer_answer(self, Call call, _Message x) except -1:
        """Binds the media an SDP body in this message announces."""
        cdef ws_sip_msg *m = &x.m
        cdef ws_sdp *s = self._sdp
        cdef const uint8_t *base
        if not m.body.len:
            return 0
        if m.content_type.len and not _has_ci(x.base + m.content_type.off, m.content_type.len, b"sdp", 3):
            return 0
        cdef uint32_t body_len = m.body.len
        if m.body.off >= x.n:
            return 0   # (a header object given by hand) the body is not in the payload
        if body_len > x.n - m.body.off:
            body_len = x.n - m.body.off
        base = x.data + m.body.off
        ws_sdp_parse(base, body_len, s)
        if s.status == WS_SDP_NOT_SDP:
            return 0
        keep = None
        if s.status == WS_SDP_UNUSUAL:
            keep = _sdp_from_description(_parse_sdp_text(x.payload()[m.body.off:m.body.off + body_len]), s)
            if keep is None:
                return 0
            base = <const uint8_t *>(<const char *>keep)
        if s.media_dropped or s.formats_dropped or s.rtpmap_dropped:
            self._stats.sdp_truncated += 1
        # a request from the caller, or a response to one, says whose address this is
        self._bind(call, base, SIDE_CALLER if m.is_request == x.from_caller(call) else SIDE_CALLEE,
                   m.to_tag.len != 0 and call.answer_ts is not None)
        return 0

    cdef int _bind(self, Call call, const uint8_t *base, uint8_t side, bint in_dialog) except -1:
        """Binds each RTP m= line's destination to the call (self._sdp, spans into base)."""
        cdef ws_sdp *s = self._sdp
        cdef ws_sdp_media *md
        cdef ws_sdp_conn *conn
        cdef ws_sdp_format *f
        cdef ws_sdp_rtpmap *entry
        cdef ws_pt_entry cpts[WS_BIND_PTS]
        cdef uint32_t npts, i, k, j, name
        cdef int direction
        cdef uint8_t kind
        cdef bint video
        aliases = self.config.nat_aliases
        cdef int64_t since_ns = llrint(call.invite_ts * 1e9)   # media older than the call is not adopted by it
        for i in range(s.n_media):
            md = &s.media[i]
            conn = &md.conn if md.conn.state == WS_SDP_CONN_VALID else (
                &s.conn if s.conn.state == WS_SDP_CONN_VALID else NULL)
            if in_dialog and _is(base + md.kind.off, md.kind.len, b"audio", 5):
                direction = md.direction if md.direction != WS_SDP_DIR_NONE else s.direction
                if direction == WS_SDP_SENDONLY or direction == WS_SDP_INACTIVE or (
                        conn != NULL and conn.is_v4 and memcmp(conn.addr.b, <const char *>_UNSPECIFIED_V4, 16) == 0):
                    call.holds += 1  # a re-INVITE/UPDATE putting the call on hold
            if conn == NULL or not 0 < md.port <= 0xFFFF or not _has_ci(base + md.proto.off, md.proto.len, b"rtp", 3):
                continue  # no port, or none a datagram can carry: binding it truncated would be someone else's
            pts = None if self._native is not None else []
            npts = 0
            if md.n_rtpmap:
                video = _is(base + md.kind.off, md.kind.len, b"video", 5)
                for k in range(md.first_format, md.first_format + md.n_formats):
                    f = &s.formats[k]
                    if not f.numeric or f.value > 0x7F:
                        continue   # RTP's 7-bit PT; a non-numeric format names no rtpmap
                    entry = NULL
                    for j in range(md.first_rtpmap, md.first_rtpmap + md.n_rtpmap):
                        if s.rtpmap[j].pt == f.value:
                            entry = &s.rtpmap[j]
                    if entry == NULL or entry.clock == 0:
                        continue
                    name = _encoding_index(base + entry.encoding.off, entry.encoding.len)
                    kind = _payload_kind(base + entry.encoding.off, entry.encoding.len, video)
                    if npts < WS_BIND_PTS:
                        cpts[npts].pt = <uint8_t>f.value
                        cpts[npts].clock_rate = entry.clock
                        cpts[npts].kind = kind
                        npts += 1
                    if pts is not None:
                        pts.append((f.value, entry.clock, PT_KIND_NAMES[kind]))
                    if name != NOT_INTERNED:
                        call.name_payload(<uint8_t>f.value, name)
                    else:   # past the interned names: this call keeps it as text
                        call.name_payload_text(<uint8_t>f.value, (<const char *>base)[
                            entry.encoding.off:entry.encoding.off + entry.encoding.len].decode("utf-8", "replace"))
            port = md.port
            if memcmp(conn.addr.b, <const char *>_UNSPECIFIED_V4, 16) != 0:
                self._bind_one(call, conn.addr.b, port, side, pts, cpts, npts, since_ns)
            if aliases:
                alias = aliases.get(_sdp_conn_text(conn))
                if alias:
                    try:
                        a16 = addr16(alias)
                    except ValueError:
                        continue
                    if a16 != _UNSPECIFIED_V4:
                        self._bind_one(call, a16, port, side, pts, cpts, npts, since_ns)
        return 0

    cdef bint _bind_one(self, Call call, const uint8_t *a16, uint16_t port, uint8_t side, list pts,
                        const ws_pt_entry *cpts, uint32_t npts, int64_t since_ns) except -1:
        cdef bint ok
        if self._native is not None:
            ok = ws_rtp_bind(&self._native.e.rtp, <const ws_addr *>a16, port, call.call_ref,
                             cpts, npts, since_ns) == 0
        else:
            ok = self._engine.bind(PyBytes_FromStringAndSize(<const char *>a16, 16), port, call.call_ref, pts,
                                   since_ns)
        if ok:
            call.add_media(a16, port, side)
        return ok

    def media_activity(self, last_rtp_by_ref):
        """Latest RTP time per call_ref (of open calls; others are ignored)."""
        cdef Call call
        open_by_ref = self.open_by_ref
        for ref, t in last_rtp_by_ref.items():
            call = open_by_ref.get(ref)
            if call is None:
                continue
            if call.last_rtp_ts is None or t > call.last_rtp_ts:
                call.last_rtp_ts = t
                self._mark_dirty(call)   # the first RTP shortens the idle limit

    def tracks(self, call_ref):
        """The call is open (not finished, not evicted)."""
        return call_ref in self.open_by_ref

    # -- time -----------------------------------------------------------------

    def tick(self, double now):
        """Ends calls whose end was never seen, by capture time. Only the calls
        whose timer is due are examined (_schedule); each by the same test a
        scan of every open call would apply, and finished in `calls`' order."""
        cdef Call call
        cdef double due_at
        cdef uint64_t seq
        cdef uint32_t i, kept
        if now > self.now:
            self.now = now
        dirty, self._dirty = self._dirty, []
        for call in dirty:
            call.dirty = False
            self._schedule(call, False)
        due = []
        while self.n_timers and self.timers[0].due < now:
            call = self._pop_timer(&due_at, &seq)
            if seq != call.timer_seq or call.done or not call.in_table:
                continue   # stale: the call finished, or has an earlier entry
            due.append(call)
        if due and self.media_probe is not None:
            # only an answered call still up waits on its media: ask the engine now
            idle = [c for c in due if c.answer_ts is not None and c.end_ts is None]
            if idle:
                for call in idle:
                    call.media_asked_ts = now
                self.media_activity(self.media_probe([c.call_ref for c in idle]))
        expired, again = [], []
        for call in due:
            if self._expired(call, now):
                expired.append(call)
            else:
                again.append(call)   # woke early (slack, or activity since): after this tick's pops
        for call in again:
            self._schedule(call, True)
        if len(expired) > 1:
            expired.sort(key=_timer_rank)   # the order a scan of `calls` would meet them in
        for call in expired:
            self._finish(call)
        if self.n_timers > 2 * self.n_open + 1024:   # stale entries: rebuild with the valid ones
            kept = 0
            for i in range(self.n_timers):
                call = <Call>self.timers[i].call
                if self.timers[i].seq == call.timer_seq and call.in_table and not call.done:
                    self.timers[kept] = self.timers[i]
                    kept += 1
                else:
                    Py_DECREF(call)
            self.n_timers = kept
            for i in range(kept):   # heap order: re-push in place (sift up each)
                self._sift_up(i)

    cdef void _sift_up(self, uint32_t i) noexcept:
        cdef TimerEntry entry = self.timers[i]
        cdef uint32_t parent
        while i > 0:
            parent = (i - 1) >> 1
            if not _timer_before(&entry, &self.timers[parent]):
                break
            self.timers[i] = self.timers[parent]
            i = parent
        self.timers[i] = entry

    cdef int _schedule(self, Call call, bint reschedule) except -1:
        """Pushes the call's timer when it is due earlier than its current entry
        (a later deadline keeps the entry: it wakes, finds nothing, reschedules);
        `reschedule`: its entry was just popped, push whatever the deadline."""
        if not call.in_table or call.done:
            return 0
        cdef double due = self._deadline(call) - _TIMER_SLACK_S
        if not reschedule and due >= call.timer_due:
            return 0
        self._push_timer(call, due)
        return 0

    cdef double _deadline(self, Call call) except? -1:
        """The capture time after which _expired(call) holds if nothing else
        happens to the call; with media_probe, the first time it may hold given
        RTP the tracker has not been told of yet. (C arithmetic on what
        _expired reads; max and min compare as Python's do, so a NaN stays
        where Python's would leave it.)"""
        cdef double limit, answer, since_media, renewed, activity, due, asked
        if call.end_ts is not None:
            return <double>call.end_ts + self._bye_linger
        if call.answer_ts is None:
            limit = self._ring_timeout if (call.proceeding or call.challenged) else self._invite_timeout
            if call.cancelled and not call.proceeding:
                limit = self._invite_timeout
            return call.invite_ts + limit
        answer = call.answer_ts
        since_media = <double>call.last_rtp_ts if call.last_rtp_ts is not None else answer
        renewed = <double>call.refreshed_ts if call.refreshed_ts else answer   # `refreshed_ts or answer_ts`
        activity = _larger(_larger(since_media, renewed), call.last_sip_ts)
        due = _smaller(activity + (self._rtp_timeout if call.last_rtp_ts is not None else self._sip_only_timeout),
                       answer + self._max_duration)
        if self.media_probe is not None:
            # RTP is learnt only when asked: wake when media first seen after the last
            # answer (which saw every packet until then) could have gone idle
            asked = activity if call.media_asked_ts is None or call.media_asked_ts < activity \
                else <double>call.media_asked_ts
            due = _smaller(due, asked + self._rtp_timeout)
        if call.session_expires:
            due = _smaller(due, renewed + <double>call.session_expires)
        return due if not isnan(due) else -_INF   # never skip a call whose test cannot be bounded

    cdef bint _expired(self, Call call, double now) except -1:
        """The timer test for one open call at capture time `now`; a call that
        timed out gets its end time and reason here."""
        if call.end_ts is not None:
            return now - call.end_ts > self._bye_linger
        if call.answer_ts is None:
            waited = now - call.invite_ts
            # Timer B until any provisional; then Timer C. A challenged
            # attempt waits as long for its retry with credentials.
            limit = self._ring_timeout if (call.proceeding or call.challenged) else self._invite_timeout
            if call.cancelled and not call.proceeding:
                limit = self._invite_timeout
            if waited > limit:
                call.end_ts = call.challenge_ts if call.challenged else call.invite_ts + limit
                if call.challenged:
                    call.reason = "failed"  # challenged and never retried
                else:
                    call.reason = "cancelled" if call.cancelled else "timeout"
                    call.ended_by = "caller" if call.cancelled else "timeout"
                return True
            return False
        since_media = call.last_rtp_ts if call.last_rtp_ts is not None else call.answer_ts
        activity = max(since_media, call.refreshed_ts or call.answer_ts, call.last_sip_ts)
        # without any RTP the tap may simply not see the media: wait longer
        idle_limit = self._rtp_timeout if call.last_rtp_ts is not None else self._sip_only_timeout
        if now - activity > idle_limit:
            _time_out(call, max(since_media, call.answer_ts))
            return True
        if call.session_expires and now - (call.refreshed_ts or call.answer_ts) > call.session_expires:
            _time_out(call, (call.refreshed_ts or call.answer_ts) + call.session_expires)
            return True
        if now - call.answer_ts > self._max_duration:
            _time_out(call, call.answer_ts + self._max_duration)
            return True
        return False

    def close(self):
        """End of input: calls still open are reported as interrupted."""
        cdef Call call
        for call in list(self.calls.values()):
            if call.end_ts is None and call.final_code not in (None, *CHALLENGES) and call.answer_ts is None:
                pass  # failed attempts already carry their reason
            elif call.end_ts is None:
                call.reason = "interrupted"
            self._finish(call)

    # -- output ---------------------------------------------------------------

    cdef int _finish(self, Call call, bint pop=True) except -1:
        if call.done:
            return 0
        call.done = True
        if call.reason is None:
            if call.final_code is not None and call.answer_ts is None and call.final_code not in CHALLENGES:
                call.reason = _termination_reason(call.final_code)
            elif call.challenged:
                call.reason = "failed"
        cdef uint32_t i
        for i in range(call.n_media):
            if self._native is not None:
                ws_rtp_unbind(&self._native.e.rtp, <const ws_addr *>call.media_entries[i].addr,
                              call.media_entries[i].port, call.call_ref)
            else:
                self._engine.unbind(PyBytes_FromStringAndSize(<const char *>call.media_entries[i].addr, 16),
                                    call.media_entries[i].port, call.call_ref)
        self._remove(call)   # if not done already (an eviction takes it out first)
        self.recent[call.call_id] = call
        if len(self.recent) > RECENT_CALLS:
            self.recent.popitem(last=False)
        self.on_call(call)
        return 0


cdef inline double _larger(double a, double b) noexcept:
    return b if b > a else a   # max(a, b): the first unless the second is larger


cdef inline double _smaller(double a, double b) noexcept:
    return b if b < a else a   # min(a, b)


def _timer_rank(Call call):
    return call.timer_rank


cdef void _time_out(Call call, end_ts):
    call.end_ts = end_ts
    call.reason = "timeout"
    call.ended_by = "timeout"


cdef uint8_t _payload_kind(const uint8_t *enc, uint32_t n, bint video) noexcept:
    """How the engine treats a payload type's packets for jitter."""
    if _is_ci(enc, n, b"telephone-event", 15):
        return WS_PT_EVENT
    if _is_ci(enc, n, b"cn", 2):
        return WS_PT_CN
    return WS_PT_VIDEO if video else WS_PT_AUDIO
