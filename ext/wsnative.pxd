# cython: language_level=3
# The native engine's C state and enums, declared from its headers: reader,
# decoder, RTP/RTCP table and the per-packet loop. Read this file to see the
# whole state machine; _engine.pyx only wraps it.

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t


cdef extern from "ws_common.h":
    ctypedef struct ws_addr:
        uint8_t b[16]

    ctypedef struct ws_flow_key:
        ws_addr src
        ws_addr dst
        uint16_t sport
        uint16_t dport
        uint32_t ssrc

    ctypedef struct ws_field_desc:
        const char *name
        const char *format
        size_t offset

    ctypedef struct ws_frame:
        const uint8_t *data
        uint32_t caplen
        uint32_t origlen
        int64_t ts_ns
        uint32_t linktype
        uint32_t iface


cdef extern from "capture/ws_pcap.h":
    ctypedef enum ws_read_status:
        WS_READ_OK
        WS_READ_EOF
        WS_READ_TRUNCATED
        WS_READ_CORRUPT
        WS_READ_IO

    ctypedef struct ws_reader:
        int fd
        int format
        const uint8_t *map
        uint64_t pos
        uint64_t file_size
        uint64_t frames
        char err[256]

    int ws_reader_open(ws_reader *r, const char *path) nogil
    int ws_reader_next(ws_reader *r, ws_frame *f) nogil
    void ws_reader_close(ws_reader *r) nogil


cdef extern from "capture/ws_ring.h":
    enum:
        WS_RING_TIMEOUT

    ctypedef struct ws_ring:
        int fd
        uint32_t linktype
        uint64_t packets
        uint64_t drops
        uint64_t freezes
        uint64_t vlan_restored
        char err[256]

    int ws_ring_open(ws_ring *r, const char *ifname, uint32_t block_size, uint32_t block_count,
                     uint32_t block_timeout_ms, int promisc, int fanout_group) nogil
    int ws_ring_set_filter(ws_ring *r, const void *insns, uint16_t count) nogil
    void ws_ring_stats(ws_ring *r) nogil
    void ws_ring_close(ws_ring *r) nogil


cdef extern from "capture/ws_spool.h":
    ctypedef struct ws_spool_counters:
        uint64_t frames, bytes
        uint64_t segments_opened, segments_deleted, bytes_deleted
        uint64_t stale_removed
        uint64_t write_errors
        uint64_t frames_lost

    ctypedef struct ws_spool:
        uint64_t seg_max, total_max
        uint64_t closed_bytes, seg_bytes
        uint32_t closed_count
        int failed
        ws_spool_counters c
        char err[256]

    int ws_spool_open(ws_spool *s, const char *dir, uint64_t seg_max, uint64_t total_max, uint32_t buf_cap) nogil
    void ws_spool_frame(ws_spool *s, const ws_frame *f) nogil
    int ws_spool_flush(ws_spool *s) nogil
    void ws_spool_close(ws_spool *s) nogil


cdef extern from "capture/ws_extract.h":
    ctypedef struct ws_endpoint:
        ws_addr addr
        uint16_t port

    ctypedef enum ws_extract_state:
        WS_EXTRACT_WAITING
        WS_EXTRACT_WRITING
        WS_EXTRACT_DONE
        WS_EXTRACT_FAILED

    ctypedef struct ws_extract_call:
        const uint8_t *call_id
        uint32_t call_id_len
        int64_t from_ns, to_ns
        const ws_endpoint *media
        uint32_t n_media
        const char *out_path
        uint64_t max_bytes
        uint8_t state
        uint64_t sip_frames, tcp_frames, media_frames, fragment_frames
        uint64_t bytes
        uint64_t frames_cut
        uint64_t linktype_skipped
        int64_t first_ns, last_ns
        char err[160]
        uint32_t n_tcp

    ctypedef struct ws_extract_stats:
        uint64_t frames_read
        uint64_t inputs_unreadable
        uint64_t inputs_truncated
        uint64_t inputs_corrupt
        uint64_t fragments_forgotten
        char err[256]

    int ws_extract(const char *const *inputs, uint32_t n_inputs, ws_extract_call *calls, uint32_t n_calls,
                   ws_extract_stats *stats) nogil


cdef extern from "decode/ws_decode.h":
    ctypedef enum ws_decode_error:
        WS_ERR_LINKTYPE
        WS_ERR_SHORT_LINK
        WS_ERR_IP_HEADER
        WS_ERR_IP_LENGTH
        WS_ERR_UDP_LENGTH
        WS_ERR_TCP_HEADER
        WS_ERR_TUNNEL
        WS_ERR_FRAG_OVERLAP
        WS_ERR_FRAG_TABLE_FULL
        WS_ERR_FRAG_TIMEOUT
        WS_ERR_SNAPPED
        WS_ERR__COUNT

    ctypedef struct ws_decoder:
        uint64_t errors[<int>WS_ERR__COUNT]
        uint64_t frames, ip_packets, udp, tcp, other_ip, non_ip
        uint64_t fragments, reassembled
        int64_t frag_timeout_ns
        uint32_t frag_in_use
        uint16_t vxlan_port


cdef extern from "rtp/ws_rtp.h":
    ctypedef enum ws_pt_kind:
        WS_PT_UNKNOWN
        WS_PT_AUDIO
        WS_PT_VIDEO
        WS_PT_CN
        WS_PT_EVENT

    ctypedef struct ws_pt_info:
        uint32_t clock_rate
        uint8_t kind

    ctypedef enum ws_end_reason:
        WS_END_ACTIVE
        WS_END_IDLE
        WS_END_EVICTED
        WS_END_REBOUND

    ctypedef struct ws_pt_entry:
        uint8_t pt
        uint8_t kind
        uint32_t clock_rate

    enum:
        WS_BIND_PTS
        WS_JB_MODES

    ctypedef struct ws_stream_record:   # the fields the media join reads (quality/call_media.pyx)
        uint8_t src[16]
        uint8_t dst[16]
        uint16_t sport, dport
        uint32_t ssrc, payload_type, call_ref
        int64_t lost, expected
        double max_jitter_ms
        uint32_t jb_late[WS_JB_MODES]
        uint32_t jb_loss_runs[WS_JB_MODES]

    ctypedef struct ws_rtcp_source:
        pass

    ctypedef struct ws_rtp_table:
        uint32_t max_streams
        uint32_t active
        uint64_t evictions, expired
        ws_rtcp_source *rtcp
        uint32_t rtcp_used
        uint64_t rtcp_packets, rtcp_malformed, rtcp_dropped
        ws_pt_info pt_map[128]
        ws_stream_record *ended
        uint32_t ended_count
        uint32_t bind_active
        uint8_t adopt_unbound
        uint64_t bind_dropped, bound_streams, latched, adopted

    const ws_field_desc ws_stream_record_fields[]
    const size_t ws_stream_record_nfields
    const ws_field_desc ws_rtcp_source_fields[]
    const size_t ws_rtcp_source_nfields

    int ws_rtp_bind(ws_rtp_table *t, const ws_addr *addr, uint16_t port, uint32_t call_ref,
                    const ws_pt_entry *pts, uint32_t npts, int64_t since_ns) nogil
    void ws_rtp_unbind(ws_rtp_table *t, const ws_addr *addr, uint16_t port, uint32_t call_ref) nogil
    uint32_t ws_rtp_snapshot(const ws_rtp_table *t, ws_stream_record *out, uint32_t max, int valid_only) nogil


cdef extern from "rtp/ws_rtp_select.h":
    uint32_t ws_rtp_snapshot_calls(const ws_rtp_table *t, const uint32_t *refs, uint32_t nrefs,
                                   ws_stream_record *out, uint32_t max, int valid_only) nogil
    uint32_t ws_rtp_count_calls(const ws_rtp_table *t, const uint32_t *refs, uint32_t nrefs, int valid_only) nogil
    uint32_t ws_rtp_last_of_calls(const ws_rtp_table *t, const uint32_t *refs, uint32_t nrefs,
                                  int64_t *last_ns) nogil
    void ws_rtcp_round_trips(const ws_rtp_table *t, const uint32_t *ssrcs, uint32_t nssrcs, int64_t *arrival_ns,
                             double *rtt_ms) nogil


cdef extern from "sip/ws_sip.h":
    ctypedef enum ws_sip_method:
        WS_SIP_OTHER
        WS_SIP_INVITE
        WS_SIP_ACK
        WS_SIP_BYE
        WS_SIP_CANCEL
        WS_SIP_OPTIONS
        WS_SIP_REGISTER
        WS_SIP_PRACK
        WS_SIP_UPDATE
        WS_SIP_INFO
        WS_SIP_REFER
        WS_SIP_NOTIFY
        WS_SIP_SUBSCRIBE
        WS_SIP_MESSAGE
        WS_SIP_PUBLISH
        WS_SIP_METHOD_COUNT

    ctypedef enum ws_sip_status:
        WS_SIP_OK
        WS_SIP_INCOMPLETE
        WS_SIP_BAD_START_LINE
        WS_SIP_NO_CALL_ID
        WS_SIP_BAD_CSEQ
        WS_SIP_BAD_LENGTH
        WS_SIP_HEADER_TOO_LONG
        WS_SIP_BINARY
        WS_SIP_KEEPALIVE

    enum:
        WS_SIP_NO_LENGTH

    ctypedef struct ws_span:
        uint32_t off
        uint32_t len

    ctypedef struct ws_sip_msg:
        uint8_t status
        uint8_t is_request
        uint8_t method
        uint8_t cseq_method
        uint16_t code
        uint16_t via_count
        uint32_t cseq
        uint32_t content_length
        uint32_t header_len
        uint32_t msg_len
        ws_span method_name
        ws_span request_uri
        ws_span reason
        ws_span call_id
        ws_span from_uri
        ws_span from_tag
        ws_span to_uri
        ws_span to_tag
        ws_span via_branch
        ws_span content_type
        ws_span session_expires
        ws_span correlation
        ws_span body

    int ws_sip_parse(const uint8_t *p, uint32_t n, int datagram, const char *corr_name, ws_sip_msg *m) nogil


cdef extern from "sip/ws_sdp.h":
    enum:
        WS_SDP_MAX_MEDIA
        WS_SDP_MAX_FORMATS
        WS_SDP_MAX_RTPMAP
        WS_SDP_ADDR_TEXT

    ctypedef enum ws_sdp_status:
        WS_SDP_OK
        WS_SDP_NOT_SDP
        WS_SDP_UNUSUAL

    ctypedef enum ws_sdp_direction:
        WS_SDP_DIR_NONE
        WS_SDP_SENDRECV
        WS_SDP_SENDONLY
        WS_SDP_RECVONLY
        WS_SDP_INACTIVE

    ctypedef enum ws_sdp_conn_state:
        WS_SDP_CONN_ABSENT
        WS_SDP_CONN_INVALID
        WS_SDP_CONN_VALID

    ctypedef struct ws_sdp_conn:
        uint8_t state
        uint8_t is_v4
        ws_addr addr

    ctypedef struct ws_sdp_format:
        ws_span token
        uint32_t value
        uint8_t numeric

    ctypedef struct ws_sdp_rtpmap:
        uint32_t pt
        uint32_t clock
        ws_span encoding

    ctypedef struct ws_sdp_media:
        ws_span kind
        ws_span proto
        uint32_t port
        uint32_t ptime
        uint32_t rtcp_port
        uint16_t first_format, n_formats
        uint16_t first_rtpmap, n_rtpmap
        uint8_t has_ptime, has_rtcp_port, rtcp_mux
        uint8_t direction
        ws_sdp_conn conn

    ctypedef struct ws_sdp:
        uint8_t status
        uint8_t direction
        uint16_t n_media
        uint16_t n_formats, n_rtpmap
        uint32_t media_dropped, formats_dropped, rtpmap_dropped
        ws_sdp_conn conn
        ws_sdp_media media[WS_SDP_MAX_MEDIA]
        ws_sdp_format formats[WS_SDP_MAX_FORMATS]
        ws_sdp_rtpmap rtpmap[WS_SDP_MAX_RTPMAP]

    int ws_sdp_parse(const uint8_t *p, uint32_t n, ws_sdp *s) nogil
    void ws_sdp_conn_text(const ws_sdp_conn *c, char *out) nogil


cdef extern from "quality/ws_emodel.h":
    ctypedef struct ws_emodel_score:
        double r, mos, ppl, burst_r

    double ws_emodel_delay_impairment(double one_way_ms) nogil
    double ws_emodel_effective_ie(double ie, double bpl, double ppl_percent, double burst_r) nogil
    double ws_emodel_mos_from_r(double r) nogil
    double ws_emodel_burst_ratio(int64_t expected, int64_t lost, int64_t loss_runs) nogil
    ws_emodel_score ws_emodel(double ie, double bpl, int64_t expected, int64_t lost, int64_t loss_runs,
                              double one_way_delay_ms) nogil


cdef extern from "metrics/ws_aggregate.h":
    ctypedef struct ws_agg_rows:
        uint32_t ncounts, nsums, n
        int64_t *counts
        double *sums

    void ws_agg_rows_init(ws_agg_rows *r, uint32_t ncounts, uint32_t nsums) nogil
    int64_t ws_agg_rows_add(ws_agg_rows *r) nogil
    void ws_agg_rows_free(ws_agg_rows *r) nogil
    uint32_t ws_bucket_of(const double *bounds, uint32_t n, double v) nogil
    void ws_agg_observe(ws_agg_rows *r, uint32_t row, const double *bounds, uint32_t nbounds, double v) nogil

    enum:
        WS_WINDOWS
        WS_WINDOW_BUCKETS

    ctypedef struct ws_window_def:
        const char *name
        double width
        uint32_t slots

    const ws_window_def ws_window_defs[]

    ctypedef struct ws_windows:
        uint32_t fields, value_field, n

    void ws_windows_init(ws_windows *w, uint32_t fields, uint32_t value_field) nogil
    int64_t ws_windows_add_set(ws_windows *w) nogil
    int ws_windows_add(ws_windows *w, uint32_t set, double ts, const int64_t *counts, double value) nogil
    int ws_windows_total(const ws_windows *w, uint32_t set, uint32_t k, double now, double *out) nogil
    void ws_windows_free(ws_windows *w) nogil

    ctypedef struct ws_u64_map:
        uint32_t count

    int64_t ws_u64_map_get(const ws_u64_map *m, uint64_t key) nogil
    int ws_u64_map_put(ws_u64_map *m, uint64_t key, int64_t value) nogil
    void ws_u64_map_remove(ws_u64_map *m, uint64_t key) nogil
    void ws_u64_map_clear(ws_u64_map *m) nogil
    void ws_u64_map_free(ws_u64_map *m) nogil


cdef extern from "engine/ws_engine.h":
    ctypedef enum ws_run_status:
        WS_RUN_EOF
        WS_RUN_SIGNALLING
        WS_RUN_ENDED
        WS_RUN_BUDGET
        WS_RUN_TICK
        WS_RUN_IDLE

    enum:
        WS_SIG_UDP
        WS_SIG_TCP
        WS_SIG_SCTP
        WS_SIG_CONTROL

    ctypedef struct ws_sig_record:
        int64_t ts_ns
        uint8_t src[16]
        uint8_t dst[16]
        uint16_t sport
        uint16_t dport
        uint8_t kind
        uint8_t tcp_flags
        uint8_t reassembled
        uint8_t family
        uint32_t tcp_seq
        uint32_t offset
        uint32_t length

    ctypedef struct ws_engine_counters:
        uint64_t frames, bytes
        uint64_t rtp_packets, rtcp_packets, sip_udp, tcp_segments, sctp_chunks, control_udp
        uint64_t other_udp, other_tcp
        uint64_t held_fragments, ignored, decode_errors
        uint64_t sig_oversize
        int64_t first_ns, last_ns

    ctypedef struct ws_engine:
        ws_decoder decoder
        ws_rtp_table rtp
        ws_engine_counters c
        uint16_t rtp_port_min, rtp_port_max
        int sip_by_content
        uint8_t *sig_arena
        uint32_t sig_arena_used
        ws_sig_record *sig
        uint32_t sig_count
        int64_t idle_ns
        ws_spool *spool

    const ws_field_desc ws_sig_record_fields[]
    const size_t ws_sig_record_nfields

    int ws_engine_init(ws_engine *e, uint32_t max_streams) nogil
    void ws_engine_free(ws_engine *e) nogil
    void ws_engine_set_sip_port(ws_engine *e, uint16_t port, int on) nogil
    void ws_engine_set_control_port(ws_engine *e, uint16_t port, int on) nogil
    void ws_engine_frame(ws_engine *e, const ws_frame *f) nogil
    int ws_engine_run(ws_engine *e, ws_reader *r, uint64_t budget) nogil
    int ws_engine_run_ring(ws_engine *e, ws_ring *ring, uint64_t budget, int poll_ms) nogil
    void ws_engine_sig_reset(ws_engine *e) nogil



cdef extern from "labels/ws_labels.h":
    enum:
        WS_LBL_OK
        WS_LBL_NONE
        WS_LBL_PYTHON
        WS_LBL_NEED_CC
        WS_LBL_DIAL_MAX
        WS_LBL_NSN_MAX
        WS_LBL_MAX_VALUES
        WS_LBL_CC_COUNT
        WS_LBL_ALWAYS
        WS_LBL_MATCH_NOW
        WS_LBL_MATCH_NOW_GROUP
        WS_LBL_MATCH_AT_END
        WS_LBL_MATCH_AT_END_GROUP
        WS_LBL_TRANSFORM_NONE
        WS_LBL_TRANSFORM_WHOLE
        WS_LBL_TRANSFORM_OTHER
        WS_COND_NETS
        WS_COND_PORTS
        WS_COND_HEADER
        WS_COND_TRUNKS
        WS_COND_DOMAINS
        WS_COND_PREFIXES
        WS_ZONE_UNKNOWN
        WS_ZONE_INTERSTATE
        WS_ZONE_INTRASTATE
        WS_ZONE_LOCAL
        WS_ZONE_INTL
        WS_ZONE_TOLLFREE
        WS_DIR_UNKNOWN
        WS_DIR_INBOUND
        WS_DIR_OUTBOUND

    ctypedef struct ws_num_plan:
        int32_t idd
        int32_t national_prefix
        int32_t general
        uint32_t possible
        uint16_t cc
        uint8_t longest
        uint8_t cc_len
        char cc_text[4]
        uint8_t transform
        uint8_t transform_prefix_len
        char transform_prefix[8]

    ctypedef struct ws_num_candidate:
        int32_t leading
        int32_t kinds
        uint16_t region
        uint8_t possible
        uint8_t toll_free

    ctypedef struct ws_cc_entry:
        uint8_t known
        uint8_t built
        uint8_t has_plan
        uint8_t python
        ws_num_plan plan
        uint32_t first[19]

    ctypedef struct ws_num_tables:
        const int32_t *trans
        const uint16_t *tags
        const ws_num_candidate *candidates
        const ws_cc_entry *ccs
        uint8_t min_nsn, max_nsn

    ctypedef struct ws_number:
        uint8_t present
        uint8_t toll_free
        uint8_t nsn_len
        uint16_t cc
        uint16_t region
        char nsn[24]

    int ws_number_of_dial(const ws_num_tables *t, const ws_num_plan *region_plan, uint16_t default_cc,
                          const char *dial, uint32_t len, ws_number *out, uint16_t *need) nogil

    int ws_lbl_dial_of_uri(const uint8_t *p, uint32_t n, char *dial, uint32_t *len) nogil
    int ws_lbl_uri_host(const uint8_t *p, uint32_t n, uint8_t *host, uint32_t *len) nogil
    int ws_lbl_split_addresses(const uint8_t *p, uint32_t n, ws_span *out, int max) nogil

    ctypedef struct ws_lbl_values:
        uint32_t count
        uint8_t name[64]
        ws_span value[64]

    ctypedef struct ws_lbl_names:
        uint32_t count
        const uint8_t *text
        const ws_span *name
        uint8_t first_chars[256]

    int ws_lbl_header_values(const ws_lbl_names *names, const uint8_t *p, uint32_t n, uint8_t *text,
                             uint32_t cap, ws_lbl_values *out) nogil

    ctypedef struct ws_lbl_list:
        uint32_t first, count

    ctypedef struct ws_lbl_net:
        uint8_t v6
        uint8_t bits
        uint8_t addr[16]

    ctypedef struct ws_lbl_cond:
        uint32_t keys
        uint32_t header
        ws_lbl_list nets, ports, values, trunks, domains, prefixes

    ctypedef struct ws_lbl_rules:
        const ws_lbl_net *platform
        uint32_t n_platform
        const ws_lbl_list *trunks
        const ws_lbl_list *providers
        const ws_lbl_list *accounts
        uint32_t n_trunks, n_providers, n_accounts
        const ws_lbl_cond *conds
        const ws_lbl_net *nets
        const int64_t *ports
        const uint32_t *trunk_ids
        const ws_span *strings
        const uint8_t *text
        uint8_t need_remotes, need_addresses, need_pai_domain
        uint8_t values_non_ascii

    ctypedef struct ws_lbl_addr:
        uint8_t family
        uint8_t addr[16]
        int64_t port

    ctypedef struct ws_lbl_match:
        uint32_t direction, trunk, provider, account

    int ws_lbl_match_rules(const ws_lbl_rules *r, const ws_lbl_addr *src, const ws_lbl_addr *dst,
                           const ws_lbl_values *v, const uint8_t *vtext, const uint8_t *pai_host,
                           uint32_t pai_host_len, const ws_number *orig, ws_lbl_match *out) nogil

    int ws_lbl_zone(const ws_number *dest, const ws_number *orig, const uint8_t *states, uint16_t us,
                    uint16_t ca, uint32_t *zone, uint32_t *npanxx) nogil

    ctypedef struct ws_lbl_sets:
        uint64_t *keys
        uint32_t *slots
        uint32_t cap, count

    int ws_lbl_sets_get(const ws_lbl_sets *s, uint64_t key, uint32_t *slot) nogil
    int ws_lbl_sets_put(ws_lbl_sets *s, uint64_t key, uint32_t slot) nogil
    void ws_lbl_sets_clear(ws_lbl_sets *s) nogil
    void ws_lbl_sets_free(ws_lbl_sets *s) nogil
