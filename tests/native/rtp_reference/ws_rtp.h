/* RTP stream table and RTCP report store (RFC 3550).
 *
 * One ws_rtp_stream per (source, destination, SSRC), updated in place per
 * packet: appendix A.1 sequence tracking with probation, A.3 expected/lost,
 * A.8 interarrival jitter. Streams live in a slab indexed by an open-addressing
 * hash; nothing here allocates per packet. */
#ifndef WS_RTP_H
#define WS_RTP_H

#include "../ws_common.h"

/* RFC 3550 appendix A.1 constants */
#define WS_RTP_MAX_DROPOUT 3000
#define WS_RTP_MAX_MISORDER 100
#define WS_RTP_MIN_SEQUENTIAL 2
#define WS_RTP_SEQ_MOD (1u << 16)

/* What a payload type carries, which decides whether it feeds voice jitter. */
typedef enum ws_pt_kind {
    WS_PT_UNKNOWN = 0, /* dynamic type without a known mapping: no jitter */
    WS_PT_AUDIO = 1,
    WS_PT_VIDEO = 2,
    WS_PT_CN = 3,      /* comfort noise, RFC 3389 */
    WS_PT_EVENT = 4,   /* telephone-event, RFC 4733 */
} ws_pt_kind;

typedef struct ws_pt_info {
    uint32_t clock_rate; /* 0 = unknown */
    uint8_t kind;        /* ws_pt_kind */
} ws_pt_info;

/* A payload type as SDP's a=rtpmap declared it for one media destination. */
typedef struct ws_pt_entry {
    uint8_t pt;
    uint8_t kind;        /* ws_pt_kind */
    uint16_t _pad;
    uint32_t clock_rate;
} ws_pt_entry;

#define WS_BIND_PTS 8
#define WS_BIND_EPOCHS 1024   /* adoption: destinations hashed into this many epochs */

/* Media destination (address, port) announced in SDP, owned by one call.
 * A stream whose destination matches is bound to the call at creation. */
typedef struct ws_media_binding {
    ws_flow_key key;     /* dst and dport only; the rest zero */
    uint32_t call_ref;   /* its generation (unique per (re)binding) is bind_gens[slot] */
    uint8_t npts;
    uint8_t latched;     /* learnt from media (NAT), not from SDP */
    uint8_t _pad[2];
    uint32_t parent;     /* latched: the SDP binding it was learnt through */
    uint32_t parent_gen; /* ... valid while that binding keeps this generation */
    int64_t since_ns;    /* the call's INVITE: an older unbound stream is not adopted */
    ws_pt_entry pts[WS_BIND_PTS];
} ws_media_binding;

/* Stream state flags */
enum {
    WS_STREAM_VALID = 1 << 0,     /* passed probation: a real RTP source */
    WS_STREAM_HAVE_PREV = 1 << 1, /* jitter has a previous packet to compare to */
    WS_STREAM_BOUND = 1 << 2,     /* attached to a call through SDP */
};

/* Why a stream left the table */
typedef enum ws_end_reason {
    WS_END_ACTIVE = 0,
    WS_END_IDLE = 1,    /* no packet for the idle timeout */
    WS_END_EVICTED = 2, /* table full: oldest made room */
    WS_END_REBOUND = 3, /* its destination now belongs to another call */
} ws_end_reason;

/* Receiver playout-buffer simulation, three buffers side by side: a packet
 * that arrives after its playout point is lost to that buffer. */
enum { WS_JB_FIXED50 = 0, WS_JB_FIXED200 = 1, WS_JB_ADAPTIVE = 2, WS_JB_MODES = 3 };
#define WS_JB_ADAPTIVE_MAX_MS 500.0f
#define WS_JB_ADAPTIVE_MIN_MS 20.0f

typedef struct ws_jb_sim {
    float transit;      /* relative transit of the last in-order voice packet (timestamp units) */
    float min_transit;  /* the fastest packet so far: the playout reference */
    float delay_avg;    /* adaptive: smoothed delay above the reference */
    float delay_dev;    /* adaptive: smoothed deviation of that delay */
    uint8_t in_run;     /* bit m: the previous sequence position was lost or late for mode m */
    uint8_t _pad[3];
    uint32_t late[WS_JB_MODES];      /* packets past their playout point */
    uint32_t loss_runs[WS_JB_MODES]; /* runs of consecutive lost-or-late packets (rarely written) */
} ws_jb_sim;

/* Per-stream native state, at most 256 bytes: four cache lines of a 64-byte
 * aligned slab. Ordered by use: an ordinary packet (in order, voice) reads
 * and writes only the first three lines; the fourth holds what sequence
 * resets, loss, duplicates and reports need. */
typedef struct ws_rtp_stream {
    /* line 0: the key the lookup compares, A.1 progress, counters */
    ws_flow_key key;
    uint16_t max_seq;        /* RFC 3550 A.1 source state */
    uint16_t probation;
    uint8_t flags;
    uint8_t last_pt;
    uint16_t dtmf_last_ts;   /* low bits of the last RFC 4733 event's timestamp */
    uint32_t cycles;         /* shifted count of sequence wraps */
    uint32_t received;       /* valid packets since the last (re)initialisation */
    uint32_t packets;        /* every packet attributed to the stream */
    uint32_t markers;
    /* line 1: duplicate window, A.8 jitter (timestamp units) */
    uint64_t seen_window[2]; /* bit i: max_seq - i arrived (duplicate detection) */
    uint64_t bytes;          /* RTP bytes (header + payload) */
    int64_t last_ns;
    int64_t prev_arrival_ns; /* last in-time-order packet used for jitter */
    double jitter;
    double jitter_sum;       /* for the mean of the running estimate */
    uint32_t prev_rtp_ts;
    uint32_t clock_rate;
    /* line 2: jitter extremes, the binding check, the playout buffers */
    float max_jitter;
    uint32_t jitter_samples;
    uint32_t max_delta_us;
    uint32_t bind_gen;       /* the binding's gen when we bound (unbound: its bucket's epoch last checked) */
    uint32_t binding;        /* slot in the binding table while bound */
    uint32_t call_ref;       /* set by SDP binding; 0 = unbound */
    ws_pt_entry cached_pt;   /* last payload type resolved through the binding */
    ws_jb_sim jb;            /* its loss_runs start line 3 */
    /* line 3: the rest of A.1/A.3, rare counters, reporting */
    uint32_t base_seq;
    union {
        uint32_t bad_seq;    /* once valid: last 'bad' sequence number + 1 */
        struct {
            uint16_t probe_first; /* on probation: first sequence number of the run */
            uint16_t probe_count; /* ... and its packets so far */
        };
    };
    uint32_t dup_since_init; /* duplicates among `received` */
    int32_t lost_before;     /* loss accumulated before sequence resets */
    uint32_t expected_before;/* packets expected before sequence resets */
    uint32_t loss_runs;      /* runs of consecutive missing sequence numbers */
    uint32_t duplicates;
    uint32_t reordered;      /* arrived after a higher sequence number */
    uint32_t seq_resets;     /* re-initialisations after a repeated big jump */
    uint16_t dtmf_events;    /* RFC 4733 events (distinct timestamps) */
    uint8_t payload_type;    /* first payload type seen */
    uint8_t end_reason;
    int64_t first_ns;
} ws_rtp_stream;

_Static_assert(sizeof(ws_rtp_stream) <= 256, "stream state must stay within 256 bytes");
_Static_assert(offsetof(ws_rtp_stream, seen_window) == 64 && offsetof(ws_rtp_stream, max_jitter) == 128 &&
                   offsetof(ws_rtp_stream, jb.loss_runs) >= 192 && offsetof(ws_rtp_stream, base_seq) >= 192,
               "an ordinary packet touches the first three cache lines only");

/* What Python sees of a stream: computed values, stable layout. */
typedef struct ws_stream_record {
    uint8_t src[16];
    uint8_t dst[16];
    uint16_t sport;
    uint16_t dport;
    uint32_t ssrc;
    uint32_t packets;
    uint32_t payload_type;
    int64_t lost;
    int64_t expected;
    uint32_t duplicates;
    uint32_t reordered;
    uint32_t seq_resets;
    uint32_t markers;
    uint32_t clock_rate;
    uint32_t call_ref;
    double max_jitter_ms;
    double mean_jitter_ms;
    double max_delta_ms;
    uint32_t loss_runs;
    uint32_t dtmf_events;
    uint32_t jb_late[WS_JB_MODES];
    uint32_t jb_loss_runs[WS_JB_MODES];
    int64_t first_ns;
    int64_t last_ns;
    uint64_t bytes;
    uint32_t flags;
    uint32_t end_reason;
} ws_stream_record;

/* RTCP: the latest reports a sender made, keyed by (src, dst, sender SSRC). */
typedef struct ws_rtcp_source {
    ws_flow_key key;
    uint32_t sr_count, rr_count, sdes_count, bye_count, app_count, xr_count, fb_count;
    uint32_t malformed;
    /* last sender report */
    uint64_t sr_ntp;
    uint32_t sr_rtp_ts, sr_packets, sr_octets;
    int64_t sr_arrival_ns;
    /* last report block */
    uint32_t rb_ssrc;          /* the source it reports on */
    uint8_t rb_fraction_lost;  /* fixed point, /256 */
    uint8_t has_report_block;
    uint8_t _pad[2];
    int32_t rb_cumulative_lost;/* 24-bit signed, sign-extended */
    uint32_t rb_ext_high_seq;
    uint32_t rb_jitter;        /* timestamp units */
    uint32_t rb_lsr, rb_dlsr;  /* 1/65536 s */
    int64_t rb_arrival_ns;
    int64_t first_ns, last_ns;
    /* round-trip time from this sender's report blocks (RFC 3550 6.4.1): the
     * time from the SR they refer to (LSR) to this report, both on the
     * capture clock, less the reporter's DLSR */
    double rtt_ms;
    double rtt_max_ms;
    uint32_t rtt_samples;
    /* RTCP XR VoIP Metrics report block (RFC 3611 section 4.7), the last one */
    uint32_t xr_ssrc;
    uint8_t has_xr_voip;
    uint8_t xr_loss_rate, xr_discard_rate;       /* fraction, /256 */
    uint8_t xr_burst_density, xr_gap_density;    /* fraction, /256 */
    uint8_t xr_r_factor, xr_ext_r_factor;        /* 127 = unavailable */
    uint8_t xr_mos_lq, xr_mos_cq;                /* MOS x 10, 127 = unavailable */
    int8_t xr_signal_level, xr_noise_level;      /* dBm, 127 = unavailable */
    uint8_t xr_rerl, xr_gmin, xr_rx_config;
    uint16_t xr_burst_duration, xr_gap_duration; /* ms */
    uint16_t xr_round_trip_delay, xr_end_system_delay; /* ms */
    uint16_t xr_jb_nominal, xr_jb_maximum, xr_jb_abs_max; /* ms */
} ws_rtcp_source;

/* Open-addressing index from a flow key to a slot in a slab. */
typedef struct ws_flow_index {
    uint64_t *slots;  /* hash32 << 32 | (slot + 1); 0 = empty */
    uint32_t mask;
    uint32_t count;
} ws_flow_index;

typedef struct ws_rtp_table {
    ws_flow_index index;
    ws_rtp_stream *streams;
    uint32_t capacity;   /* slab size allocated */
    uint32_t max_streams;
    uint32_t used;       /* high-water mark in the slab */
    uint32_t *free_list;
    uint32_t free_count;
    uint32_t active;
    /* each slot's call_ref, 0 when free or unbound: selecting the streams of a
     * few calls (a media join, a timer's RTP probe) walks these 4 bytes a slot,
     * not two lines of every stream (60,000 streams: 240 KB, not 7.7 MB) */
    uint32_t *slot_calls;
    /* per slot, 1 + the second of the stream's last packet when the idle scan
     * last looked at it (0: look): last_ns only grows, so until that second
     * plus the idle timeout the scan skips the slot without reading it */
    uint32_t *slot_seen_s;
    uint32_t evict_cursor;
    uint64_t evictions, expired;
    /* RTCP */
    ws_flow_index rtcp_index;
    ws_rtcp_source *rtcp;
    uint32_t rtcp_used, rtcp_capacity, rtcp_max;
    uint64_t rtcp_packets, rtcp_malformed, rtcp_dropped;
    /* payload type map for dynamic types until SDP binds a stream */
    ws_pt_info pt_map[128];
    /* SDP media bindings */
    ws_flow_index bind_index;
    ws_media_binding *bindings;
    /* each binding's generation, 0 when its slot is free: a bound stream compares
     * it on every packet, so it lives apart, 4 bytes a binding, not in a
     * binding's few hundred bytes (1,000 calls: 8 KB that stay in L1) */
    uint32_t *bind_gens;
    uint32_t *bind_free;
    uint32_t bind_used, bind_capacity, bind_max, bind_free_count, bind_active;
    uint32_t bind_gen_next;
    /* Media that starts before the SIP that binds it has been read (seen
     * first by the tap, or by another capture worker): with adopt_unbound
     * set, a bind moves the epoch of its destination's bucket, and an
     * unbound stream whose bucket moved since it last looked checks once
     * whether it is now bound (and adopts the binding unless it began
     * before that call's INVITE). Buckets, not one epoch: on a busy link
     * binds come every millisecond, and unbound streams must not look up
     * the binding table on every packet. */
    uint8_t adopt_unbound;
    uint32_t bind_epochs[WS_BIND_EPOCHS];
    uint64_t bind_dropped, bound_streams, latched, adopted;
    /* streams that left the table, waiting for Python */
    ws_stream_record *ended;
    uint32_t ended_count, ended_cap;
} ws_rtp_table;

int ws_rtp_table_init(ws_rtp_table *t, uint32_t max_streams, uint32_t max_rtcp);
void ws_rtp_table_free(ws_rtp_table *t);

/* Is this UDP payload plausibly RTP / RTCP? (cheap header checks) */
int ws_rtp_looks_like_rtp(const uint8_t *p, uint32_t n);
int ws_rtp_looks_like_rtcp(const uint8_t *p, uint32_t n);

/* Feeds one RTP packet. Returns 0, or -1 when the ended buffer is full and
 * must be drained before more streams can be evicted. */
int ws_rtp_packet(ws_rtp_table *t, const ws_flow_key *k5, int64_t ts_ns, const uint8_t *p, uint32_t n);
#if WS_LITTLE_ENDIAN
/* The same for IPv4: addresses as loaded from the packet (network order in
 * memory), ports in host order; no key is built in memory. */
int ws_rtp_packet_v4(ws_rtp_table *t, uint32_t src_raw, uint32_t dst_raw, uint16_t sport, uint16_t dport,
                     int64_t ts_ns, const uint8_t *p, uint32_t n);
#endif
/* Feeds one RTCP compound packet. Returns the number of packets parsed. */
int ws_rtcp_packet(ws_rtp_table *t, const ws_flow_key *k5, int64_t ts_ns, const uint8_t *p, uint32_t n);

/* Binds media sent to (addr, port) to call_ref with SDP's payload types;
 * replaces another call's binding there. since_ns: the call's INVITE time
 * (unbound streams older than that are not adopted). Returns 0, or -1 when
 * full. */
int ws_rtp_bind(ws_rtp_table *t, const ws_addr *addr, uint16_t port, uint32_t call_ref,
                const ws_pt_entry *pts, uint32_t npts, int64_t since_ns);
/* Removes the binding at (addr, port) if call_ref still owns it. */
void ws_rtp_unbind(ws_rtp_table *t, const ws_addr *addr, uint16_t port, uint32_t call_ref);

/* Frees latched bindings whose SDP binding is gone (housekeeping). */
void ws_rtp_sweep_bindings(ws_rtp_table *t);

/* Moves streams idle for longer than idle_ns to the ended buffer. */
void ws_rtp_expire(ws_rtp_table *t, int64_t now_ns, int64_t idle_ns);

/* Fills rec from a stream; returns records written for the active set. */
void ws_rtp_record(const ws_rtp_stream *s, ws_stream_record *rec);
uint32_t ws_rtp_snapshot(const ws_rtp_table *t, ws_stream_record *out, uint32_t max, int valid_only);

/* Field layouts for numpy dtypes */
extern const ws_field_desc ws_stream_record_fields[];
extern const size_t ws_stream_record_nfields;
extern const ws_field_desc ws_rtcp_source_fields[];
extern const size_t ws_rtcp_source_nfields;

#endif
