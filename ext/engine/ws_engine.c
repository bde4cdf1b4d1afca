#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ws_engine.h"

#include <stdlib.h>
#include <strings.h>

#define SWEEP_INTERVAL_NS 1000000000ll
#define SIG_HEADROOM (65536u + 1024u) /* one largest payload must always fit */

int ws_engine_init(ws_engine *e, uint32_t max_streams)
{
    memset(e, 0, sizeof *e);
    ws_decoder_init(&e->decoder);
    if (ws_rtp_table_init(&e->rtp, max_streams, max_streams)) return -1;
    e->sig_arena = malloc(WS_SIG_ARENA);
    e->sig = malloc(WS_SIG_RECORDS * sizeof(ws_sig_record));
    e->tcp_track = calloc(WS_TCP_TRACK_SLOTS, sizeof(uint64_t));
    if (!e->sig_arena || !e->sig || !e->tcp_track) return -1;
    ws_engine_set_sip_port(e, 5060, 1);
    e->sip_by_content = 1;
    e->rtp_port_min = 1024;
    e->rtp_port_max = 65535;
    e->idle_ns = 300ll * 1000000000;
    e->ended_drain_at = 4096;
    e->c.first_ns = INT64_MAX;
    e->c.last_ns = INT64_MIN;
    return 0;
}

void ws_engine_free(ws_engine *e)
{
    ws_decoder_free(&e->decoder);
    ws_rtp_table_free(&e->rtp);
    free(e->sig_arena);
    free(e->sig);
    free(e->tcp_track);
    e->sig_arena = NULL;
    e->sig = NULL;
    e->tcp_track = NULL;
}

void ws_engine_set_sip_port(ws_engine *e, uint16_t port, int on)
{
    if (on) e->sip_ports[port >> 3] |= (uint8_t)(1u << (port & 7));
    else e->sip_ports[port >> 3] &= (uint8_t)~(1u << (port & 7));
}

void ws_engine_set_control_port(ws_engine *e, uint16_t port, int on)
{
    if (on) e->control_ports[port >> 3] |= (uint8_t)(1u << (port & 7));
    else e->control_ports[port >> 3] &= (uint8_t)~(1u << (port & 7));
    e->any_control_port = 0;
    for (size_t i = 0; i < sizeof e->control_ports; i++) e->any_control_port |= e->control_ports[i] != 0;
}

void ws_engine_sig_reset(ws_engine *e)
{
    e->sig_count = 0;
    e->sig_arena_used = 0;
    e->sig_urgent = 0;
}

WS_INLINE int is_sip_port(const ws_engine *e, uint16_t port)
{
    return (e->sip_ports[port >> 3] >> (port & 7)) & 1;
}

/* A SIP start line: "SIP/2.0 " or "METHOD uri SIP/2.0" within the first line. */
static int looks_like_sip(const uint8_t *p, uint32_t n)
{
    if (n < 12) return 0;
    if (!memcmp(p, "SIP/2.0 ", 8)) return 1;
    uint32_t i = 0;
    while (i < n && i < 32 && ((p[i] >= 'A' && p[i] <= 'Z') || p[i] == '-')) i++;
    if (i == 0 || i >= n || p[i] != ' ') return 0;
    uint32_t lim = n < 2048 ? n : 2048;
    for (uint32_t j = i + 1; j + 1 < lim; j++) {
        if (p[j] == '\r' || p[j] == '\n') return j >= 8 && !memcmp(p + j - 8, " SIP/2.0", 8);
    }
    return 0;
}

/* Does header `name` (colon included, any case) hold `token` (any case) in
 * its comma/space-separated value? Only lines within p[0..n) are read. */
static int header_has_token(const uint8_t *p, uint32_t n, const char *name, const char *token)
{
    size_t nl = strlen(name), tl = strlen(token);
    for (uint32_t i = 1; i + nl <= n; i++) {
        if (p[i - 1] != '\n' || strncasecmp((const char *)p + i, name, nl)) continue;
        uint32_t j = i + (uint32_t)nl;
        while (j < n && p[j] != '\r' && p[j] != '\n') {
            while (j < n && (p[j] == ' ' || p[j] == '\t' || p[j] == ',')) j++;
            uint32_t s = j;
            while (j < n && p[j] != ' ' && p[j] != '\t' && p[j] != ',' && p[j] != '\r' && p[j] != '\n') j++;
            if (j - s == tl && !strncasecmp((const char *)p + s, token, tl)) return 1;
        }
    }
    return 0;
}

/* A WebSocket opening handshake (RFC 6455 section 4.1) that may carry SIP:
 * "GET " with Upgrade: websocket and, when the whole head is in this segment,
 * the "sip" subprotocol (RFC 7118 section 4.1). A head cut by the segment
 * boundary is taken on trust (browsers put the subprotocol after long
 * cookies); Python reads the whole head and ignores a WebSocket without SIP. */
static int looks_like_sip_websocket(const uint8_t *p, uint32_t n)
{
    if (n < 16 || memcmp(p, "GET ", 4)) return 0;
    uint32_t lim = n < 8192 ? n : 8192;
    if (!header_has_token(p, lim, "upgrade:", "websocket")) return 0;
    const uint8_t *end = memmem(p, lim, "\r\n\r\n", 4);
    return !end || header_has_token(p, (uint32_t)(end - p) + 2, "sec-websocket-protocol:", "sip");
}

/* A WebSocket text or binary frame (RFC 6455 section 5.2) whose payload,
 * unmasked, starts like SIP: how a connection upgraded before the capture
 * began (or before the table below was emptied) announces itself. */
static int looks_like_sip_in_websocket(const uint8_t *p, uint32_t n)
{
    if (n < 16 || ((p[0] & 0x7f) != 0x01 && (p[0] & 0x7f) != 0x02)) return 0;
    uint32_t len = p[1] & 0x7fu, off = len == 127 ? 10 : len == 126 ? 4 : 2;
    uint8_t key[4] = {0, 0, 0, 0}, head[256];
    if (p[1] & 0x80) {
        if (n < off + 4) return 0;
        memcpy(key, p + off, 4);
        off += 4;
    }
    if (n <= off) return 0;
    uint32_t m = n - off < sizeof head ? n - off : (uint32_t)sizeof head;
    for (uint32_t i = 0; i < m; i++) head[i] = p[off + i] ^ key[i & 3];
    return head[0] >= 'A' && head[0] <= 'Z' && looks_like_sip(head, m);
}

/* Text as SIP writes it: no byte outside printable ASCII, CR, LF and TAB
 * among the first 16. WebSocket frames fail it (the header's first byte, or
 * a masked payload). */
static int looks_like_text(const uint8_t *p, uint32_t n)
{
    uint32_t lim = n < 16 ? n : 16;
    for (uint32_t i = 0; i < lim; i++)
        if (p[i] >= 0x7f || (p[i] < 0x20 && p[i] != '\r' && p[i] != '\n' && p[i] != '\t')) return 0;
    return 1;
}

/* Connection hash, the same for both directions. */
static uint64_t tcp_conn_hash(const ws_l4 *l)
{
    uint64_t a = ws_load64(l->src.b) ^ ws_load64(l->src.b + 8) * 3 ^ ((uint64_t)l->sport << 48);
    uint64_t b = ws_load64(l->dst.b) ^ ws_load64(l->dst.b + 8) * 3 ^ ((uint64_t)l->dport << 48);
    uint64_t h = ws_mix64(a) + ws_mix64(b); /* commutative */
    return h ? h : 1;
}

static int tcp_tracked(ws_engine *e, uint64_t h, int add)
{
    uint32_t mask = WS_TCP_TRACK_SLOTS - 1;
    uint32_t pos = (uint32_t)h & mask;
    for (uint32_t probe = 0; probe < 32; probe++, pos = (pos + 1) & mask) {
        if (e->tcp_track[pos] == h) return 1;
        if (!e->tcp_track[pos]) {
            if (!add) return 0;
            if (e->tcp_tracked * 2 > WS_TCP_TRACK_SLOTS) {
                /* forget all: live connections re-announce with their next message */
                memset(e->tcp_track, 0, WS_TCP_TRACK_SLOTS * sizeof(uint64_t));
                e->tcp_tracked = 0;
                pos = (uint32_t)h & mask;
            }
            e->tcp_track[pos] = h;
            e->tcp_tracked++;
            return 1;
        }
    }
    return 0;
}

/* memmem(p, n, "\nv=0", 4): an SDP body starts in p. Line ends are few, and
 * memchr finds them faster than a general substring search sets itself up. */
static int has_sdp_start(const uint8_t *p, uint32_t n)
{
    const uint8_t *e = p + n, *q = p;
    while ((q = memchr(q, '\n', (size_t)(e - q))) != NULL) {
        if (e - q >= 4 && q[1] == 'v' && q[2] == '=' && q[3] == '0') return 1;
        q++;
    }
    return 0;
}

static void sig_push(ws_engine *e, const ws_l4 *l, int64_t ts_ns, uint8_t kind)
{
    if (l->payload_len > WS_SIG_ARENA - e->sig_arena_used || e->sig_count >= WS_SIG_RECORDS) {
        e->c.sig_oversize++;
        return;
    }
    ws_sig_record *r = &e->sig[e->sig_count++];
    r->ts_ns = ts_ns;
    memcpy(r->src, l->src.b, 16);
    memcpy(r->dst, l->dst.b, 16);
    r->sport = l->sport;
    r->dport = l->dport;
    r->kind = kind;
    r->tcp_flags = l->tcp_flags;
    r->reassembled = l->reassembled;
    r->family = l->family;
    r->tcp_seq = l->tcp_seq;
    r->offset = e->sig_arena_used;
    r->length = l->payload_len;
    memcpy(e->sig_arena + e->sig_arena_used, l->payload, l->payload_len);
    e->sig_arena_used += l->payload_len;
    /* SDP decides how the RTP that follows is bound: hand it over now */
    if (has_sdp_start(l->payload, l->payload_len)) e->sig_urgent = 1;
}

static void housekeeping(ws_engine *e, int64_t now)
{
    ws_decoder_expire(&e->decoder, now);
    if (e->idle_ns > 0) ws_rtp_expire(&e->rtp, now, e->idle_ns);
    ws_rtp_sweep_bindings(&e->rtp);
    e->tick = 1;
    e->next_sweep_ns = now + SWEEP_INTERVAL_NS;
}

void ws_engine_frame(ws_engine *e, const ws_frame *f)
{
    ws_engine_counters *c = &e->c;
    c->frames++;
    c->bytes += f->origlen;
    /* sources clamp; frames fed from elsewhere are clamped here too */
    int64_t ts = f->ts_ns < 0 ? 0 : f->ts_ns > WS_TS_MAX ? WS_TS_MAX : f->ts_ns;
    if (WS_UNLIKELY(ts > c->last_ns)) {
        c->last_ns = ts;
        if (WS_UNLIKELY(ts >= e->next_sweep_ns)) {
            if (e->next_sweep_ns) housekeeping(e, ts);
            else e->next_sweep_ns = ts + SWEEP_INTERVAL_NS;
        }
    }
    if (WS_UNLIKELY(ts < c->first_ns)) c->first_ns = ts;

#if WS_LITTLE_ENDIAN
    /* What a media mirror mostly carries, settled without building a ws_l4:
     * Ethernet, IPv4 without options or fragments, UDP with honest lengths,
     * RTP between two media ports. The tests are ws_decode's fast path and
     * the UDP classification below, in the same order; anything else (or a
     * fragment buffer still to release) takes the general path. */
    const uint8_t *fd = f->data;
    uint32_t fn = f->caplen;
    if (WS_LIKELY(f->linktype == WS_LINK_ETHERNET && fn >= 42 && fd[12] == 0x08 && fd[13] == 0x00 &&
                  fd[14] == 0x45 && fd[23] == 17 && (ws_be16(fd + 20) & 0x3fff) == 0 &&
                  e->decoder.frag_release < 0)) {
        uint32_t tot = ws_be16(fd + 16), ulen = ws_be16(fd + 38);
        uint16_t sport = ws_be16(fd + 34), dport = ws_be16(fd + 36);
        const uint8_t *rp = fd + 42;
        uint32_t rn = ulen - 8;
        if (WS_LIKELY(tot >= 28 && tot <= fn - 14 && ulen >= 8 && ulen <= tot - 20 &&
                      dport != e->decoder.vxlan_port && !is_sip_port(e, sport) && !is_sip_port(e, dport) &&
                      !e->any_control_port && sport >= e->rtp_port_min && dport >= e->rtp_port_min &&
                      sport <= e->rtp_port_max && dport <= e->rtp_port_max &&
                      !ws_rtp_looks_like_rtcp(rp, rn) && ws_rtp_looks_like_rtp(rp, rn))) {
            /* an RTP first byte (10xxxxxx) never starts like SIP */
            e->decoder.frames++;
            e->decoder.ip_packets++;
            e->decoder.udp++;
            c->rtp_packets++;
            ws_rtp_packet_v4(&e->rtp, ws_load32(fd + 26), ws_load32(fd + 30), sport, dport, ts, rp, rn);
            return;
        }
    }
#endif

    ws_l4 l;
    int rc = ws_decode(&e->decoder, f, &l);
    if (WS_UNLIKELY(rc != WS_DEC_L4)) {
        if (rc == WS_DEC_HELD) c->held_fragments++;
        else if (rc == WS_DEC_ERROR) c->decode_errors++;
        else c->ignored++;
        return;
    }
    const uint8_t *p = l.payload;
    uint32_t n = l.payload_len;
    if (WS_LIKELY(l.proto == 17)) {
        if (WS_UNLIKELY(is_sip_port(e, l.sport) || is_sip_port(e, l.dport) ||
                        (e->sip_by_content && n && p[0] >= 'A' && p[0] <= 'Z' && looks_like_sip(p, n)))) {
            c->sip_udp++;
            sig_push(e, &l, ts, WS_SIG_UDP);
            return;
        }
        if (WS_UNLIKELY(e->any_control_port && ((e->control_ports[l.sport >> 3] >> (l.sport & 7)) & 1 ||
                                                 (e->control_ports[l.dport >> 3] >> (l.dport & 7)) & 1))) {
            c->control_udp++;
            sig_push(e, &l, ts, WS_SIG_CONTROL);
            return;
        }
        if (l.sport < e->rtp_port_min || l.dport < e->rtp_port_min || l.sport > e->rtp_port_max ||
            l.dport > e->rtp_port_max) {
            c->other_udp++;
            return;
        }
        /* the five words of the key, SSRC filled in by the table */
        ws_flow_key k;
        k.src = l.src;
        k.dst = l.dst;
        k.sport = l.sport;
        k.dport = l.dport;
        k.ssrc = 0;
        if (WS_UNLIKELY(ws_rtp_looks_like_rtcp(p, n))) {
            c->rtcp_packets++;
            ws_rtcp_packet(&e->rtp, &k, ts, p, n);
        } else if (WS_LIKELY(ws_rtp_looks_like_rtp(p, n))) {
            c->rtp_packets++;
            ws_rtp_packet(&e->rtp, &k, ts, p, n);
        } else if (n >= 16 && (p[0] & 0xc0) == 0x40 && ws_be16(p + 2) + 4u <= n &&
                   ws_rtp_looks_like_rtp(p + 4, ws_be16(p + 2))) {
            /* TURN ChannelData (RFC 8656 section 12.4) relaying RTP */
            c->rtp_packets++;
            ws_rtp_packet(&e->rtp, &k, ts, p + 4, ws_be16(p + 2));
        } else {
            c->other_udp++;
        }
        return;
    }
    if (l.proto == 6) {
        int sip_port = is_sip_port(e, l.sport) || is_sip_port(e, l.dport);
        uint64_t h = tcp_conn_hash(&l);
        /* SIP, a WebSocket upgrade for SIP, or SIP in a WebSocket frame: follow it */
        int starts = n && e->sip_by_content &&
                     ((p[0] >= 'A' && p[0] <= 'Z' &&
                       (looks_like_sip(p, n) || (p[0] == 'G' && looks_like_sip_websocket(p, n)))) ||
                      ((p[0] & 0x7c) == 0 && looks_like_sip_in_websocket(p, n)));
        if (sip_port || tcp_tracked(e, h, starts)) {
            c->tcp_segments++;
            sig_push(e, &l, ts, WS_SIG_TCP);
            /* the client's mask hides an SDP from sig_push: hand WebSocket bytes over at once */
            if (n && !looks_like_text(p, n)) e->sig_urgent = 1;
        } else {
            c->other_tcp++;
        }
        return;
    }
    if (l.proto == 132) {
        c->sctp_chunks++;
        sig_push(e, &l, ts, WS_SIG_SCTP);
    }
}

/* Why the loop must hand control to Python before the next frame, or 0. */
WS_INLINE int must_return(ws_engine *e)
{
    if (WS_UNLIKELY(e->sig_urgent || e->sig_count >= WS_SIG_RECORDS ||
                    WS_SIG_ARENA - e->sig_arena_used < SIG_HEADROOM))
        return WS_RUN_SIGNALLING;
    if (WS_UNLIKELY(e->rtp.ended_count >= e->ended_drain_at)) return WS_RUN_ENDED;
    if (WS_UNLIKELY(e->tick)) {
        e->tick = 0;
        return WS_RUN_TICK;
    }
    return 0;
}

int ws_engine_run(ws_engine *e, ws_reader *r, uint64_t budget)
{
    ws_frame f;
    for (uint64_t i = 0; i < budget; i++) {
        int why = must_return(e);
        if (WS_UNLIKELY(why)) return why;
        int rc = ws_reader_next(r, &f);
        if (WS_UNLIKELY(rc != WS_READ_OK)) return rc == WS_READ_EOF ? WS_RUN_EOF : rc;
        ws_engine_frame(e, &f);
    }
    return WS_RUN_BUDGET;
}

int ws_engine_run_ring(ws_engine *e, ws_ring *ring, uint64_t budget, int poll_ms)
{
    ws_frame f;
    for (uint64_t i = 0; i < budget; i++) {
        int why = must_return(e);
        if (WS_UNLIKELY(why)) return why;
        int rc = ws_ring_next(ring, &f, poll_ms);
        if (WS_UNLIKELY(rc != WS_READ_OK)) return rc == WS_RING_TIMEOUT ? WS_RUN_IDLE : rc;
        if (e->spool) ws_spool_frame(e->spool, &f);
        ws_engine_frame(e, &f);
    }
    return WS_RUN_BUDGET;
}

#define F(name, fmt) {#name, fmt, offsetof(ws_sig_record, name)}
const ws_field_desc ws_sig_record_fields[] = {
    F(ts_ns, "i8"),     F(src, "V16"),         F(dst, "V16"),    F(sport, "u2"),
    F(dport, "u2"),     F(kind, "u1"),         F(tcp_flags, "u1"), F(reassembled, "u1"),
    F(family, "u1"),    F(tcp_seq, "u4"),      F(offset, "u4"),  F(length, "u4"),
};
const size_t ws_sig_record_nfields = sizeof ws_sig_record_fields / sizeof ws_sig_record_fields[0];
#undef F
