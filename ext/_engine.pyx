# cython: language_level=3, boundscheck=False, wraparound=False
"""Python face of the native engine.

The per-packet loop runs in C without the GIL. Python sees results in bulk:
numpy structured arrays copied out of the engine's tables (streams, RTCP
sources, ended streams, signalling records), never one call per packet.
"""

from libc.stdint cimport INT64_MIN, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memmove

from wsnative cimport *

import numpy as np


class CaptureError(Exception):
    """A capture file that cannot be read, or that ends inside a record."""

    def __init__(self, path, message, truncated=False, offset=None):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
        self.truncated = truncated
        self.offset = offset


DECODE_ERROR_NAMES = (
    "unsupported_linktype", "short_link_header", "ip_header", "ip_length",
    "udp_length", "tcp_header", "tunnel", "fragment_overlap",
    "fragment_table_full", "fragment_timeout", "snapped",
)

# The run loop's answers, as Python names.
RUN_EOF = WS_RUN_EOF
RUN_SIGNALLING = WS_RUN_SIGNALLING
RUN_ENDED = WS_RUN_ENDED
RUN_BUDGET = WS_RUN_BUDGET
RUN_TICK = WS_RUN_TICK
RUN_IDLE = WS_RUN_IDLE

PT_KINDS = {"unknown": WS_PT_UNKNOWN, "audio": WS_PT_AUDIO, "video": WS_PT_VIDEO,
            "cn": WS_PT_CN, "event": WS_PT_EVENT}


cdef object _dtype(const ws_field_desc *fields, size_t n, size_t itemsize):
    names, formats, offsets = [], [], []
    for i in range(n):
        names.append(fields[i].name.decode())
        formats.append(fields[i].format.decode())
        offsets.append(fields[i].offset)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": itemsize})


STREAM_DTYPE = _dtype(ws_stream_record_fields, ws_stream_record_nfields, sizeof(ws_stream_record))
RTCP_DTYPE = _dtype(ws_rtcp_source_fields, ws_rtcp_source_nfields, sizeof(ws_rtcp_source))
SIGNALLING_DTYPE = _dtype(ws_sig_record_fields, ws_sig_record_nfields, sizeof(ws_sig_record))


cdef class Engine:
    """Decodes frames and keeps RTP/RTCP state. One per capture job."""

    def __cinit__(self, uint32_t max_streams=200000, sip_ports=(5060,),
                  rtp_port_range=(1024, 65535), double idle_timeout=300.0,
                  bint sip_by_content=True, control_ports=(), bint adopt_unbound=False):
        self.ring_open = False
        self.e = <ws_engine *>calloc(1, sizeof(ws_engine))
        if self.e == NULL:
            raise MemoryError()
        if ws_engine_init(self.e, max_streams) != 0:
            raise MemoryError("cannot allocate the engine tables")
        self.reader_open = False
        ws_engine_set_sip_port(self.e, 5060, 0)
        for port in sip_ports:
            ws_engine_set_sip_port(self.e, port, 1)
        for port in control_ports:
            ws_engine_set_control_port(self.e, port, 1)
        self.e.rtp_port_min, self.e.rtp_port_max = rtp_port_range
        self.e.idle_ns = <int64_t>(idle_timeout * 1e9)
        self.e.sip_by_content = sip_by_content
        # several workers: media may start on one before SIP seen on another binds it
        self.e.rtp.adopt_unbound = adopt_unbound

    def __dealloc__(self):
        if self.reader_open:
            ws_reader_close(&self.reader)
        if self.ring_open:
            ws_ring_close(&self.ring)
        if self.e != NULL:
            if self.e.spool != NULL:
                ws_spool_close(self.e.spool)
                free(self.e.spool)
                self.e.spool = NULL
            ws_engine_free(self.e)
            free(self.e)

    # -- SDP media binding -------------------------------------------------

    def bind(self, bytes addr16, uint16_t port, uint32_t call_ref, payload_types=(), int64_t since_ns=0):
        """RTP sent to (addr, port) belongs to call_ref; payload_types is a
        sequence of (pt, clock_rate, kind) from SDP; since_ns the call's
        INVITE time (with adopt_unbound, an unbound stream that began earlier
        is not adopted). Returns False when the binding table is full. A port
        or payload type RTP cannot carry is a ValueError/OverflowError, never
        silently truncated."""
        cdef ws_pt_entry pts[WS_BIND_PTS]
        cdef uint32_t n = 0
        for pt, clock, kind in payload_types:
            if n == WS_BIND_PTS:
                break
            if not 0 <= pt < 128:
                raise ValueError(f"payload type {pt} outside 0..127")
            pts[n].pt = pt
            pts[n].clock_rate = clock
            pts[n].kind = PT_KINDS[kind]
            n += 1
        _check_addr16(addr16)
        cdef const char *addr = addr16
        return ws_rtp_bind(&self.e.rtp, <const ws_addr *>addr, port, call_ref, pts, n, since_ns) == 0

    def unbind(self, bytes addr16, uint16_t port, uint32_t call_ref):
        _check_addr16(addr16)
        cdef const char *addr = addr16
        ws_rtp_unbind(&self.e.rtp, <const ws_addr *>addr, port, call_ref)

    def set_payload_type(self, int pt, uint32_t clock_rate, str kind="audio"):
        """Maps a payload type engine-wide (until SDP binding narrows it)."""
        if not 0 <= pt < 128:
            raise ValueError(f"payload type {pt} outside 0..127")
        self.e.rtp.pt_map[pt].clock_rate = clock_rate
        self.e.rtp.pt_map[pt].kind = PT_KINDS[kind]

    # -- input -------------------------------------------------------------

    def open(self, path):
        """Opens a pcap or pcapng file ("-" for standard input)."""
        if self.reader_open:
            ws_reader_close(&self.reader)
            self.reader_open = False
        cdef bytes bpath = str(path).encode()
        rc = ws_reader_open(&self.reader, bpath)
        if rc != WS_READ_OK:
            ws_reader_close(&self.reader)
            raise CaptureError(str(path), self.reader.err.decode(errors="replace"),
                               truncated=rc == WS_READ_TRUNCATED)
        self.reader_open = True
        self.path = str(path)

    def close(self):
        if self.reader_open:
            ws_reader_close(&self.reader)
            self.reader_open = False

    def run(self, uint64_t budget=1 << 20, CallTracker tracker=None, correlator=None):
        """Processes frames until a batch needs draining, the budget is spent
        or the input ends. Returns one of the RUN_* values. With `tracker`, a
        batch that needs draining (an SDP body, a full batch) goes to
        tracker.feed(self, correlator) here and the run goes on: RUN_SIGNALLING
        is then never returned, and a replay's 1,000 SDP bodies cost no trip
        through Python's loop."""
        if not self.reader_open:
            raise RuntimeError("no capture open")
        cdef int rc
        cdef uint64_t start = self.e.c.frames, done = 0
        while True:
            with nogil:
                rc = ws_engine_run(self.e, &self.reader, budget - done)
            if rc < 0:
                raise CaptureError(self.path, self.reader.err.decode(errors="replace"),
                                   truncated=rc == WS_READ_TRUNCATED, offset=self.reader.pos)
            if rc != WS_RUN_SIGNALLING or tracker is None:
                return rc
            tracker._feed(self, correlator)
            done = self.e.c.frames - start
            if done >= budget:
                return WS_RUN_BUDGET

    def feed(self, const uint8_t[::1] data, int64_t ts_ns, uint32_t linktype=1, origlen=None):
        """Feeds one frame (for tests and live capture glue, not the hot path)."""
        cdef ws_frame f
        f.data = &data[0] if data.shape[0] else NULL
        f.caplen = data.shape[0]
        f.origlen = data.shape[0] if origlen is None else origlen
        f.ts_ns = ts_ns
        f.linktype = linktype
        f.iface = 0
        with nogil:
            ws_engine_frame(self.e, &f)

    # -- live capture ------------------------------------------------------

    def open_live(self, str interface, uint32_t block_size=1 << 20, uint32_t block_count=32,
                  uint32_t block_timeout_ms=50, bint promisc=True, int fanout_group=0):
        """Opens a TPACKET_V3 ring on an interface (needs CAP_NET_RAW)."""
        cdef bytes name = interface.encode()
        if ws_ring_open(&self.ring, name, block_size, block_count, block_timeout_ms, promisc,
                        fanout_group) != WS_READ_OK:
            raise CaptureError(interface, self.ring.err.decode(errors="replace"))
        self.ring_open = True
        self.path = interface

    def set_live_filter(self, program):
        """Attaches classic BPF [(code, jt, jf, k), ...] to the live ring."""
        if not self.ring_open:
            raise RuntimeError("no interface open")
        cdef bytearray raw = bytearray()
        for code, jt, jf, k in program:
            raw += (<int>code).to_bytes(2, "little") + bytes((jt, jf)) + (<unsigned int>k).to_bytes(4, "little")
        cdef const unsigned char[::1] view = raw
        if ws_ring_set_filter(&self.ring, &view[0], len(program)) != WS_READ_OK:
            raise CaptureError(self.path, self.ring.err.decode(errors="replace"))

    def run_live(self, uint64_t budget=1 << 16, int poll_ms=100):
        """Like run(), from the live ring; RUN_IDLE when nothing came within poll_ms."""
        if not self.ring_open:
            raise RuntimeError("no interface open")
        cdef int rc
        with nogil:
            rc = ws_engine_run_ring(self.e, &self.ring, budget, poll_ms)
            if rc == WS_RUN_IDLE and self.e.spool != NULL:
                ws_spool_flush(self.e.spool)  # quiet wire: what was spooled is on disk now
        if rc < 0:
            raise CaptureError(self.path, self.ring.err.decode(errors="replace"))
        return rc

    def live_stats(self):
        """Kernel counters of the ring: packets, drops, freezes (ring full)."""
        if self.ring_open:
            ws_ring_stats(&self.ring)
        return {"packets": self.ring.packets, "drops": self.ring.drops, "freezes": self.ring.freezes,
                "vlan_restored": self.ring.vlan_restored}

    def close_live(self):
        if self.ring_open:
            ws_ring_close(&self.ring)
            self.ring_open = False

    # -- spool (live --write-pcap) --------------------------------------------

    def open_spool(self, directory, uint64_t segment_bytes=64 << 20, uint64_t total_bytes=1 << 30,
                   uint32_t buffer_bytes=1 << 20):
        """Spools every frame the live ring delivers to pcap segments in
        `directory` (created; segments of an earlier run there are removed),
        rotated at segment_bytes, the oldest deleted beyond total_bytes.
        Returns how many stale segments were removed."""
        self.close_spool()
        cdef ws_spool *s = <ws_spool *>calloc(1, sizeof(ws_spool))
        if s == NULL:
            raise MemoryError()
        cdef bytes bdir = str(directory).encode()
        if ws_spool_open(s, bdir, segment_bytes, total_bytes, buffer_bytes) != 0:
            message = s.err.decode(errors="replace")
            ws_spool_close(s)
            free(s)
            raise ValueError(message)
        self.e.spool = s
        self.spool_dir = str(directory)
        return s.c.stale_removed

    def spool_flush(self):
        """Writes buffered frames out (call only from the capture thread)."""
        if self.e.spool != NULL:
            ws_spool_flush(self.e.spool)

    def spool_feed(self, const uint8_t[::1] data, int64_t ts_ns, uint32_t linktype=1):
        """Spools one frame as the live loop would (for tests, not the hot path)."""
        if self.e.spool == NULL:
            raise RuntimeError("no spool open")
        cdef ws_frame f
        f.data = &data[0] if data.shape[0] else NULL
        f.caplen = data.shape[0]
        f.origlen = data.shape[0]
        f.ts_ns = ts_ns
        f.linktype = linktype
        f.iface = 0
        with nogil:
            ws_spool_frame(self.e.spool, &f)

    def spool_stats(self):
        cdef ws_spool *s = self.e.spool
        if s == NULL:
            return None
        return {"directory": self.spool_dir, "frames": s.c.frames, "bytes": s.c.bytes,
                "segments_opened": s.c.segments_opened, "segments_deleted": s.c.segments_deleted,
                "bytes_deleted": s.c.bytes_deleted, "stale_removed": s.c.stale_removed,
                "on_disk_bytes": s.closed_bytes + s.seg_bytes, "total_max": s.total_max,
                "segment_max": s.seg_max, "write_errors": s.c.write_errors, "frames_lost": s.c.frames_lost,
                "error": s.err.decode(errors="replace") if s.failed else None}

    def close_spool(self):
        """Flushes and closes the spool; its segment files stay."""
        if self.e.spool != NULL:
            ws_spool_close(self.e.spool)
            free(self.e.spool)
            self.e.spool = NULL

    @property
    def capture_time_ns(self):
        """The latest capture timestamp seen (0 before any frame)."""
        return self.e.c.last_ns if self.e.c.frames else 0

    @property
    def position(self):
        return self.reader.pos if self.reader_open else 0

    @property
    def file_size(self):
        return self.reader.file_size if self.reader_open else 0

    # -- results -----------------------------------------------------------

    def streams(self):
        """Active RTP streams that passed validation, as a structured array."""
        out = np.zeros(self.e.rtp.active, dtype=STREAM_DTYPE)
        cdef uint8_t[::1] buf = out.view(np.uint8).reshape(-1) if out.size else np.zeros(1, np.uint8)
        cdef uint32_t n = ws_rtp_snapshot(&self.e.rtp, <ws_stream_record *>&buf[0],
                                          self.e.rtp.active, 1)
        return out[:n]

    def streams_of_calls(self, refs, bint valid_only=True):
        """Active streams bound to any of the call_refs `refs`, as streams()
        would list them (valid_only=False: also those still on probation),
        without copying the rest of the table."""
        cdef _CallRefs wanted = _CallRefs(refs)
        if wanted.n == 0:
            return np.zeros(0, dtype=STREAM_DTYPE)
        cdef uint32_t n = ws_rtp_count_calls(&self.e.rtp, wanted.p, wanted.n, valid_only)
        out = np.zeros(n, dtype=STREAM_DTYPE)
        cdef uint8_t[::1] buf
        if n:
            buf = out.view(np.uint8).reshape(-1)
            n = ws_rtp_snapshot_calls(&self.e.rtp, wanted.p, wanted.n, <ws_stream_record *>&buf[0], n, valid_only)
        return out[:n]

    def last_rtp_of_calls(self, refs):
        """call_ref -> latest packet time (s) of its valid streams in the table,
        for the refs in `refs` that have one (what streams_of_calls would give
        as each call's largest last_ns, without building the records)."""
        cdef _CallRefs wanted = _CallRefs(refs)
        if wanted.n == 0:
            return {}
        cdef int64_t few_last[_FEW_REFS]
        cdef int64_t[::1] many_last
        cdef int64_t *last = few_last
        cdef uint32_t j
        if wanted.n > _FEW_REFS:
            many_last = np.empty(wanted.n, dtype=np.int64)
            last = &many_last[0]
        ws_rtp_last_of_calls(&self.e.rtp, wanted.p, wanted.n, last)
        return {wanted.p[j]: last[j] / 1e9 for j in range(wanted.n) if last[j] >= 0}

    def round_trips(self, ssrcs):
        """SSRC -> (arrival time (ns), round-trip time (ms)) of the latest
        RTCP report block about it that carried an RTT (ws_rtcp_round_trips),
        for the SSRCs in `ssrcs` that have one."""
        cdef _CallRefs wanted = _CallRefs(ssrcs)
        if wanted.n == 0:
            return {}
        cdef int64_t[::1] arrivals = np.empty(wanted.n, dtype=np.int64)
        cdef double[::1] rtts = np.empty(wanted.n, dtype=np.float64)
        ws_rtcp_round_trips(&self.e.rtp, wanted.p, wanted.n, &arrivals[0], &rtts[0])
        return {wanted.p[j]: (arrivals[j], rtts[j]) for j in range(wanted.n) if arrivals[j] != INT64_MIN}

    def drain_ended(self):
        """Streams that left the table (idle or evicted) since the last call."""
        cdef uint32_t n = self.e.rtp.ended_count
        out = np.zeros(n, dtype=STREAM_DTYPE)
        cdef uint8_t[::1] buf
        if n:
            buf = out.view(np.uint8).reshape(-1)
            memcpy(&buf[0], self.e.rtp.ended, n * sizeof(ws_stream_record))
        self.e.rtp.ended_count = 0
        return out

    def rtcp_sources(self):
        cdef uint32_t n = self.e.rtp.rtcp_used
        out = np.zeros(n, dtype=RTCP_DTYPE)
        cdef uint8_t[::1] buf
        if n:
            buf = out.view(np.uint8).reshape(-1)
            memcpy(&buf[0], self.e.rtp.rtcp, n * sizeof(ws_rtcp_source))
        return out

    def drain_signalling(self):
        """Signalling payloads since the last call: (records, arena bytes)."""
        cdef uint32_t n = self.e.sig_count
        records = np.zeros(n, dtype=SIGNALLING_DTYPE)
        cdef uint8_t[::1] buf
        if n:
            buf = records.view(np.uint8).reshape(-1)
            memcpy(&buf[0], self.e.sig, n * sizeof(ws_sig_record))
        arena = (<char *>self.e.sig_arena)[:self.e.sig_arena_used]
        ws_engine_sig_reset(self.e)
        return records, arena

    def counters(self):
        cdef ws_engine_counters c = self.e.c
        d = self.e.decoder
        return {
            "frames": c.frames, "bytes": c.bytes,
            "rtp_packets": c.rtp_packets, "rtcp_packets": c.rtcp_packets,
            "sip_udp": c.sip_udp, "tcp_segments": c.tcp_segments, "sctp_packets": c.sctp_chunks,
            "control_udp": c.control_udp,
            "other_udp": c.other_udp, "other_tcp": c.other_tcp,
            "held_fragments": c.held_fragments, "ignored": c.ignored,
            "decode_errors": c.decode_errors, "signalling_dropped": c.sig_oversize,
            "fragments": d.fragments, "reassembled": d.reassembled,
            "streams_active": self.e.rtp.active, "stream_evictions": self.e.rtp.evictions,
            "streams_expired": self.e.rtp.expired,
            "media_bindings": self.e.rtp.bind_active, "bindings_dropped": self.e.rtp.bind_dropped,
            "bound_streams": self.e.rtp.bound_streams, "latched_bindings": self.e.rtp.latched,
            "adopted_streams": self.e.rtp.adopted,
            "rtcp_malformed": self.e.rtp.rtcp_malformed, "rtcp_dropped": self.e.rtp.rtcp_dropped,
            "first_ns": c.first_ns if c.frames else None,
            "last_ns": c.last_ns if c.frames else None,
        }

    def decode_errors(self):
        return {name: self.e.decoder.errors[i] for i, name in enumerate(DECODE_ERROR_NAMES)}


cdef enum:
    _FEW_REFS = 16   # a capture second's joins and timer probes ask for a call or two


cdef class _CallRefs:
    """call_refs (or SSRCs) ascending, each once (_sorted_refs), as a C array:
    sorted in place, without numpy, when there are at most _FEW_REFS of them."""
    cdef uint32_t few[_FEW_REFS]
    cdef uint32_t[::1] many
    cdef const uint32_t *p
    cdef uint32_t n

    def __cinit__(self, refs):
        cdef uint32_t i, v
        self.p = self.few
        if len(refs) > _FEW_REFS:
            self.many = _sorted_refs(refs)
            self.n = self.many.shape[0]
            if self.n:
                self.p = &self.many[0]
            return
        for ref in refs:   # insertion sort, duplicates dropped
            v = ref
            i = self.n
            while i > 0 and self.few[i - 1] > v:
                i -= 1
            if i > 0 and self.few[i - 1] == v:
                continue
            memmove(&self.few[i + 1], &self.few[i], (self.n - i) * sizeof(uint32_t))
            self.few[i] = v
            self.n += 1


cdef _sorted_refs(refs):
    """call_refs ascending, each once (np.unique's result, without its per-call
    overhead and its first-use import of numpy.ma)."""
    a = np.sort(np.asarray(refs, dtype=np.uint32))
    if a.shape[0] > 1:
        keep = np.empty(a.shape[0], dtype=bool)
        keep[0] = True
        np.not_equal(a[1:], a[:-1], out=keep[1:])
        a = a[keep]
    return a


cdef _check_addr16(bytes addr):
    if addr is None or len(addr) != 16:
        raise ValueError("engine addresses are 16 bytes (IPv4 v4-mapped)")


# -- SIP ------------------------------------------------------------------

SIP_METHODS = ("OTHER", "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK",
               "UPDATE", "INFO", "REFER", "NOTIFY", "SUBSCRIBE", "MESSAGE", "PUBLISH")
cdef tuple _SIP_METHODS = SIP_METHODS   # typed: read per request without a global lookup
SIP_STATUS = ("ok", "incomplete", "bad_start_line", "no_call_id", "bad_cseq", "bad_length",
              "header_too_long", "binary", "keepalive")
SIP_OK = WS_SIP_OK
SIP_INCOMPLETE = WS_SIP_INCOMPLETE
SIP_KEEPALIVE = WS_SIP_KEEPALIVE


cdef inline str _text(const uint8_t *base, ws_span sp):
    if sp.len == 0:
        return None
    return (<const char *>base)[sp.off:sp.off + sp.len].decode("utf-8", "replace")


cdef str _method_of(const uint8_t *base, const ws_sip_msg *m):
    """A request's method: the scanner's name for the ones it knows, else as written."""
    if m.method != WS_SIP_OTHER:
        return <str>_SIP_METHODS[m.method]
    return _text(base, m.method_name)


cdef class SipHeaders:
    """The fields of one SIP message that dialog correlation needs (strings
    are decoded when read)."""

    @property
    def status(self):
        return self.m.status

    @property
    def status_name(self):
        return SIP_STATUS[self.m.status]

    @property
    def is_request(self):
        return bool(self.m.is_request)

    @property
    def code(self):
        return self.m.code

    @property
    def cseq(self):
        return self.m.cseq

    @property
    def via_count(self):
        return self.m.via_count

    @property
    def header_len(self):
        return self.m.header_len

    @property
    def msg_len(self):
        return self.m.msg_len

    @property
    def body_off(self):
        return self.m.body.off

    @property
    def body_len(self):
        return self.m.body.len

    @property
    def content_length(self):
        return self.m.content_length

    cdef str _field(self, ws_span sp):
        if self.m.status == WS_SIP_KEEPALIVE or self.m.status == WS_SIP_INCOMPLETE:
            return None
        return _text(<const uint8_t *>(<const char *>self.text), sp)

    @property
    def method(self):
        if not self.m.is_request or self.m.status == WS_SIP_KEEPALIVE or self.m.status == WS_SIP_INCOMPLETE:
            return None
        return _method_of(<const uint8_t *>(<const char *>self.text), &self.m)

    @property
    def cseq_method(self):
        if self.m.status == WS_SIP_KEEPALIVE or self.m.status == WS_SIP_INCOMPLETE:
            return None
        return SIP_METHODS[self.m.cseq_method] if self.m.cseq_method else None

    @property
    def request_uri(self):
        return self._field(self.m.request_uri)

    @property
    def reason(self):
        return self._field(self.m.reason)

    @property
    def call_id(self):
        return self._field(self.m.call_id)

    @property
    def from_uri(self):
        return self._field(self.m.from_uri)

    @property
    def from_tag(self):
        return self._field(self.m.from_tag)

    @property
    def to_uri(self):
        return self._field(self.m.to_uri)

    @property
    def to_tag(self):
        return self._field(self.m.to_tag)

    @property
    def via_branch(self):
        return self._field(self.m.via_branch)

    @property
    def content_type(self):
        return self._field(self.m.content_type)

    @property
    def session_expires(self):
        return self._field(self.m.session_expires)

    @property
    def correlation(self):
        return self._field(self.m.correlation)


def parse_sip(const uint8_t[::1] data, bint datagram=True, bytes correlation_header=None):
    """Parses one SIP message at the start of data (native scan, in place;
    the fields are decoded from a copy when read)."""
    cdef SipHeaders h = SipHeaders.__new__(SipHeaders)
    cdef const uint8_t *p = &data[0] if data.shape[0] else <const uint8_t *>b""
    cdef const char *corr = NULL
    if correlation_header is not None:
        corr = correlation_header
    with nogil:
        ws_sip_parse(p, data.shape[0], datagram, corr, &h.m)
    h.text = bytes(data)
    return h


# -- SDP ------------------------------------------------------------------

SDP_DIRECTIONS = (None, "sendrecv", "sendonly", "recvonly", "inactive")


cdef inline str _ascii(const uint8_t *base, ws_span sp):
    return (<const char *>base)[sp.off:sp.off + sp.len].decode("ascii")


cdef inline object _sdp_conn_text(const ws_sdp_conn *c):
    cdef char text[WS_SDP_ADDR_TEXT]
    if c.state != WS_SDP_CONN_VALID:
        return None
    ws_sdp_conn_text(c, text)
    return (<bytes>text).decode("ascii")


def scan_sdp(const uint8_t[::1] body, session_cls, media_cls):
    """Scans an SDP body natively (ext/sip/ws_sdp.c) into the instances
    warpsniff.sip.sdp's parser would build: a `session_cls` holding
    `media_cls` objects, their attributes set directly (same fields, same
    values). None when the body is not SDP; False when it holds something the
    scan leaves to the Python parser (non-ASCII or control bytes, numbers
    int() reads in forms the scan does not). A body with more m= lines,
    formats or rtpmaps than the scan keeps gets an attribute `truncated`
    (how many were left out)."""
    cdef ws_sdp s
    cdef const uint8_t *p = &body[0] if body.shape[0] else <const uint8_t *>b""
    with nogil:
        ws_sdp_parse(p, body.shape[0], &s)
    if s.status == WS_SDP_NOT_SDP:
        return None
    if s.status != WS_SDP_OK:
        return False
    cdef ws_sdp_media *m
    cdef ws_sdp_format *f
    cdef ws_sdp_rtpmap *r
    cdef uint32_t i, k
    media = []
    for i in range(s.n_media):
        m = &s.media[i]
        formats = []
        for k in range(m.first_format, m.first_format + m.n_formats):
            f = &s.formats[k]
            formats.append(f.value if f.numeric else _ascii(p, f.token))
        rtpmap = {}
        for k in range(m.first_rtpmap, m.first_rtpmap + m.n_rtpmap):
            r = &s.rtpmap[k]
            rtpmap[r.pt] = (_ascii(p, r.encoding), r.clock)
        md = media_cls.__new__(media_cls)
        md.__dict__ = {
            "kind": _ascii(p, m.kind), "port": m.port, "proto": _ascii(p, m.proto), "formats": formats,
            "connection": _sdp_conn_text(&m.conn), "rtpmap": rtpmap,
            "ptime": m.ptime if m.has_ptime else None,
            "rtcp_port": m.rtcp_port if m.has_rtcp_port else None,
            "rtcp_mux": m.rtcp_mux != 0, "direction": SDP_DIRECTIONS[m.direction],
        }
        media.append(md)
    sd = session_cls.__new__(session_cls)
    sd.__dict__ = {"connection": _sdp_conn_text(&s.conn),
                   "direction": SDP_DIRECTIONS[s.direction] or "sendrecv", "media": media}
    cdef uint32_t dropped = s.media_dropped + s.formats_dropped + s.rtpmap_dropped
    if dropped:
        sd.truncated = dropped
    return sd


# -- extraction (--write-pcap) -----------------------------------------------

EXTRACT_STATES = ("empty", "writing", "written", "failed")


def extract_calls(inputs, calls):
    """Writes each call's frames from the capture files `inputs` (merged by
    time) into its own pcap, in one pass for all calls. `calls` is a list of
    dicts: call_id (bytes), from_ns, to_ns, media [(addr16, port)], out_path,
    max_bytes. Returns (per-call result dicts, input stats)."""
    cdef uint32_t n_in = len(inputs), n_calls = len(calls)
    keep = []  # Python bytes the C structs point into, alive until the end
    cdef const char **paths = <const char **>calloc(n_in or 1, sizeof(char *))
    cdef ws_extract_call *cc = <ws_extract_call *>calloc(n_calls or 1, sizeof(ws_extract_call))
    cdef ws_endpoint *eps
    cdef ws_extract_stats st
    cdef bytes b
    cdef int rc
    if paths == NULL or cc == NULL:
        free(paths)
        free(cc)
        raise MemoryError()
    try:
        for i, path in enumerate(inputs):
            b = str(path).encode()
            keep.append(b)
            paths[i] = b
        for i, call in enumerate(calls):
            b = bytes(call["call_id"])
            keep.append(b)
            cc[i].call_id = <const uint8_t *><const char *>b
            cc[i].call_id_len = len(b)
            cc[i].from_ns = call["from_ns"]
            cc[i].to_ns = call["to_ns"]
            b = str(call["out_path"]).encode()
            keep.append(b)
            cc[i].out_path = b
            cc[i].max_bytes = call["max_bytes"]
            media = list(call.get("media", ()))
            if media:
                eps = <ws_endpoint *>calloc(len(media), sizeof(ws_endpoint))
                if eps == NULL:
                    raise MemoryError()
                cc[i].media = eps
                for k, (addr, port) in enumerate(media):
                    b = bytes(addr)
                    _check_addr16(b)
                    memcpy(eps[k].addr.b, <const char *>b, 16)
                    eps[k].port = port
                cc[i].n_media = len(media)
        with nogil:
            rc = ws_extract(paths, n_in, cc, n_calls, &st)
        if rc != 0:
            raise MemoryError(st.err.decode(errors="replace"))
        results = []
        for i in range(n_calls):
            results.append({
                "state": EXTRACT_STATES[cc[i].state],
                "sip_frames": cc[i].sip_frames, "tcp_frames": cc[i].tcp_frames,
                "media_frames": cc[i].media_frames, "fragment_frames": cc[i].fragment_frames,
                "bytes": cc[i].bytes, "frames_cut": cc[i].frames_cut,
                "linktype_skipped": cc[i].linktype_skipped, "tcp_connections": cc[i].n_tcp,
                "first_ns": cc[i].first_ns, "last_ns": cc[i].last_ns,
                "error": cc[i].err.decode(errors="replace") or None,
            })
        stats = {"frames_read": st.frames_read, "inputs_unreadable": st.inputs_unreadable,
                 "inputs_truncated": st.inputs_truncated, "inputs_corrupt": st.inputs_corrupt,
                 "fragments_forgotten": st.fragments_forgotten,
                 "error": st.err.decode(errors="replace") or None}
        return results, stats
    finally:
        for i in range(n_calls):
            free(<void *>cc[i].media)
        free(cc)
        free(paths)


include "quality/emodel.pyx"
include "labels/labels.pyx"
include "sip/dialogs.pyx"
include "quality/call_media.pyx"
include "metrics/aggregate.pyx"
