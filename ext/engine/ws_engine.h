/* The per-packet loop: frame -> decode -> classify -> RTP/RTCP table, or the
 * signalling batch that Python drains (SIP over UDP whole, TCP segments for
 * reassembly). The loop runs without the GIL and returns to Python only when
 * a batch is full, streams have ended, the budget is spent, or input ends. */
#ifndef WS_ENGINE_H
#define WS_ENGINE_H

#include "../capture/ws_pcap.h"
#include "../capture/ws_ring.h"
#include "../capture/ws_spool.h"
#include "../decode/ws_decode.h"
#include "../rtp/ws_rtp.h"
#include "../sip/ws_sip.h"

typedef enum ws_run_status {
    WS_RUN_EOF = 0,
    WS_RUN_SIGNALLING = 1, /* signalling batch full: drain it */
    WS_RUN_ENDED = 2,      /* ended streams waiting: drain them */
    WS_RUN_BUDGET = 3,     /* frame budget spent */
    WS_RUN_TICK = 4,       /* a second of capture time passed: time for timers */
    WS_RUN_IDLE = 5,       /* live: nothing arrived within the poll timeout */
    /* negative values are ws_read_status errors from the reader */
} ws_run_status;

typedef enum ws_sig_kind {
    WS_SIG_UDP = 1,  /* one whole UDP datagram on a SIP port or that starts like SIP */
    WS_SIG_TCP = 2,  /* one TCP segment of a connection that carries SIP */
    WS_SIG_SCTP = 3,
    WS_SIG_CONTROL = 4, /* a UDP datagram on a configured control port (rtpengine ng, ...) */
} ws_sig_kind;

/* One signalling payload handed to Python; bytes live in the batch arena. */
typedef struct ws_sig_record {
    int64_t ts_ns;
    uint8_t src[16];
    uint8_t dst[16];
    uint16_t sport;
    uint16_t dport;
    uint8_t kind;
    uint8_t tcp_flags;
    uint8_t reassembled;
    uint8_t family;
    uint32_t tcp_seq;
    uint32_t offset; /* into the arena */
    uint32_t length;
} ws_sig_record;

extern const ws_field_desc ws_sig_record_fields[];
extern const size_t ws_sig_record_nfields;

#define WS_SIG_ARENA (4u << 20)
#define WS_SIG_RECORDS 8192u
#define WS_TCP_TRACK_SLOTS (1u << 16)

typedef struct ws_engine_counters {
    uint64_t frames, bytes;
    uint64_t rtp_packets, rtcp_packets, sip_udp, tcp_segments, sctp_chunks, control_udp;
    uint64_t other_udp, other_tcp;
    uint64_t held_fragments, ignored, decode_errors;
    uint64_t sig_oversize; /* payloads larger than the arena can take */
    int64_t first_ns, last_ns;
} ws_engine_counters;

typedef struct ws_engine {
    ws_decoder decoder;
    ws_rtp_table rtp;
    ws_engine_counters c;
    /* classification */
    uint8_t sip_ports[65536 / 8];
    uint8_t control_ports[65536 / 8];
    int any_control_port;
    uint16_t rtp_port_min, rtp_port_max;
    int sip_by_content;
    /* TCP connections seen carrying SIP: hashes only, collisions are harmless */
    uint64_t *tcp_track;
    uint32_t tcp_tracked;
    /* signalling batch */
    uint8_t *sig_arena;
    uint32_t sig_arena_used;
    ws_sig_record *sig;
    uint32_t sig_count;
    int sig_urgent; /* an SDP body arrived: Python must bind media before more RTP */
    /* housekeeping by capture time */
    int64_t idle_ns;
    int64_t next_sweep_ns;
    int tick;
    uint32_t ended_drain_at;
    /* live only: every frame the ring delivers is also spooled to disk (NULL = off) */
    ws_spool *spool;
} ws_engine;

int ws_engine_init(ws_engine *e, uint32_t max_streams);
void ws_engine_free(ws_engine *e);
void ws_engine_set_sip_port(ws_engine *e, uint16_t port, int on);
void ws_engine_set_control_port(ws_engine *e, uint16_t port, int on);

/* One frame through the whole pipeline. */
void ws_engine_frame(ws_engine *e, const ws_frame *f);
/* Runs frames from the reader until a status other than "keep going". */
int ws_engine_run(ws_engine *e, ws_reader *r, uint64_t budget);
/* The same from a live ring; WS_RUN_IDLE when nothing came within poll_ms. */
int ws_engine_run_ring(ws_engine *e, ws_ring *ring, uint64_t budget, int poll_ms);
void ws_engine_sig_reset(ws_engine *e);

#endif
