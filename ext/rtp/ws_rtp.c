#include "ws_rtp.h"

#include <math.h>
#include <stdlib.h>

#define INDEX_INITIAL 1024u
#define SLAB_INITIAL 256u
#define EVICT_SAMPLE 16u
#define NOT_FOUND UINT32_MAX

/* ------------------------------------------------------------------------ */
/* Payload types with a static mapping (RFC 3551 section 6). */

static void pt_map_init(ws_pt_info *map)
{
    memset(map, 0, sizeof(ws_pt_info) * 128);
    static const struct { uint8_t pt; uint32_t clock; uint8_t kind; } table[] = {
        {0, 8000, WS_PT_AUDIO},   {3, 8000, WS_PT_AUDIO},   {4, 8000, WS_PT_AUDIO},
        {5, 8000, WS_PT_AUDIO},   {6, 16000, WS_PT_AUDIO},  {7, 8000, WS_PT_AUDIO},
        {8, 8000, WS_PT_AUDIO},   {9, 8000, WS_PT_AUDIO},   {10, 44100, WS_PT_AUDIO},
        {11, 44100, WS_PT_AUDIO}, {12, 8000, WS_PT_AUDIO},  {13, 8000, WS_PT_CN},
        {14, 90000, WS_PT_AUDIO}, {15, 8000, WS_PT_AUDIO},  {16, 11025, WS_PT_AUDIO},
        {17, 22050, WS_PT_AUDIO}, {18, 8000, WS_PT_AUDIO},  {19, 8000, WS_PT_CN},
        {25, 90000, WS_PT_VIDEO}, {26, 90000, WS_PT_VIDEO}, {28, 90000, WS_PT_VIDEO},
        {31, 90000, WS_PT_VIDEO}, {32, 90000, WS_PT_VIDEO}, {33, 90000, WS_PT_VIDEO},
        {34, 90000, WS_PT_VIDEO},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        map[table[i].pt].clock_rate = table[i].clock;
        map[table[i].pt].kind = table[i].kind;
    }
}

/* ------------------------------------------------------------------------ */
/* Flow index: entries are (hash32 << 32 | slot + 1); 0 is empty. Linear
 * probing with backward-shift deletion, so no tombstones accumulate. */

static int ix_init(ws_flow_index *ix, uint32_t size)
{
    ix->slots = calloc(size, sizeof(uint64_t));
    ix->mask = size - 1;
    ix->count = 0;
    return ix->slots ? 0 : -1;
}

#define IX_E(ix) ((ix)->slots)

WS_INLINE uint32_t ix_find_words(const ws_flow_index *ix, const uint8_t *slab, size_t stride,
                                 const ws_key_words *kw, uint32_t h, uint32_t *pos_out)
{
    uint64_t *e = IX_E(ix);
    uint32_t pos = h & ix->mask;
    for (;;) {
        uint64_t v = e[pos];
        if (!v) break;
        if ((uint32_t)(v >> 32) == h) {
            uint32_t slot = (uint32_t)v - 1;
            if (ws_key_words_eq((const ws_flow_key *)(slab + (size_t)slot * stride), kw)) {
                *pos_out = pos;
                return slot;
            }
        }
        pos = (pos + 1) & ix->mask;
    }
    *pos_out = pos;
    return NOT_FOUND;
}

static uint32_t ix_find(const ws_flow_index *ix, const uint8_t *slab, size_t stride, const ws_flow_key *k,
                        uint32_t h, uint32_t *pos_out)
{
    ws_key_words kw = ws_key_words_of(k);
    return ix_find_words(ix, slab, stride, &kw, h, pos_out);
}

static int ix_grow(ws_flow_index *ix)
{
    uint32_t old_size = ix->mask + 1;
    uint64_t *old = IX_E(ix);
    uint32_t size = old_size * 2;
    uint64_t *e = calloc(size, sizeof(uint64_t));
    if (!e) return -1;
    for (uint32_t i = 0; i < old_size; i++) {
        uint64_t v = old[i];
        if (!v) continue;
        uint32_t pos = (uint32_t)(v >> 32) & (size - 1);
        while (e[pos]) pos = (pos + 1) & (size - 1);
        e[pos] = v;
    }
    free(old);
    ix->slots = e;
    ix->mask = size - 1;
    return 0;
}

static void ix_remove(ws_flow_index *ix, uint32_t pos)
{
    uint64_t *e = IX_E(ix);
    uint32_t mask = ix->mask;
    uint32_t hole = pos;
    for (uint32_t i = (pos + 1) & mask;; i = (i + 1) & mask) {
        uint64_t v = e[i];
        if (!v) break;
        uint32_t home = (uint32_t)(v >> 32) & mask;
        /* move v into the hole if its home is not between hole and i */
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            e[hole] = v;
            hole = i;
        }
    }
    e[hole] = 0;
    ix->count--;
}

/* ------------------------------------------------------------------------ */

int ws_rtp_table_init(ws_rtp_table *t, uint32_t max_streams, uint32_t max_rtcp)
{
    memset(t, 0, sizeof *t);
    t->max_streams = max_streams ? max_streams : 1;
    t->rtcp_max = max_rtcp ? max_rtcp : 1;
    t->bind_max = t->max_streams;
    t->bind_gen_next = 1;
    pt_map_init(t->pt_map);
    if (ix_init(&t->index, INDEX_INITIAL) || ix_init(&t->rtcp_index, INDEX_INITIAL) ||
        ix_init(&t->bind_index, INDEX_INITIAL))
        return -1;
    return 0;
}

void ws_rtp_table_free(ws_rtp_table *t)
{
    free(t->index.slots);
    free(t->rtcp_index.slots);
    free(t->bind_index.slots);
    free(t->bindings);
    free(t->bind_gens);
    free(t->bind_streams);
    free(t->bind_free);
    free(t->streams);
    free(t->free_list);
    free(t->slot_calls);
    free(t->slot_seen_s);
    free(t->slot_bind_next);
    free(t->slot_bind_prev);
    free(t->rtcp);
    free(t->ended);
    memset(t, 0, sizeof *t);
}

int ws_rtp_looks_like_rtp(const uint8_t *p, uint32_t n)
{
    if (n < 12 || (p[0] & 0xc0) != 0x80) return 0;
    uint32_t pt = p[1] & 0x7f;
    if (pt >= 72 && pt <= 76) return 0; /* RTCP's range, RFC 5761 section 4 */
    uint32_t hl = 12 + 4u * (p[0] & 15);
    if (hl > n) return 0;
    if (p[0] & 0x10) {
        if (hl + 4 > n) return 0;
        hl += 4 + 4u * ws_be16(p + hl + 2);
        if (hl > n) return 0;
    }
    return 1;
}

int ws_rtp_looks_like_rtcp(const uint8_t *p, uint32_t n)
{
    if (n < 8 || (p[0] & 0xc0) != 0x80) return 0;
    if (p[1] < 200 || p[1] > 207) return 0;
    return (ws_be16(p + 2) + 1u) * 4 <= n;
}

/* ------------------------------------------------------------------------ */

void ws_rtp_record(const ws_rtp_stream *s, ws_stream_record *r)
{
    memset(r, 0, sizeof *r);
    memcpy(r->src, s->key.src.b, 16);
    memcpy(r->dst, s->key.dst.b, 16);
    r->sport = s->key.sport;
    r->dport = s->key.dport;
    r->ssrc = s->key.ssrc;
    r->packets = s->packets;
    r->payload_type = s->payload_type;
    int64_t expected = s->expected_before, lost = s->lost_before;
    if (s->flags & WS_STREAM_VALID) {
        int64_t run = (int64_t)s->cycles + s->max_seq - (int64_t)s->base_seq + 1;
        expected += run;
        lost += run - ((int64_t)s->received - s->dup_since_init);
    }
    r->expected = expected;
    r->lost = lost;
    r->duplicates = s->duplicates;
    r->reordered = s->reordered;
    r->seq_resets = s->seq_resets;
    r->markers = s->markers;
    r->clock_rate = s->clock_rate;
    r->call_ref = s->call_ref;
    if (s->clock_rate) {
        double ms = 1000.0 / s->clock_rate;
        r->max_jitter_ms = s->max_jitter * ms;
        r->mean_jitter_ms = s->jitter_samples ? s->jitter_sum / s->jitter_samples * ms : 0.0;
    }
    r->max_delta_ms = s->max_delta_us / 1e3;
    r->loss_runs = s->loss_runs;
    r->dtmf_events = s->dtmf_events;
    for (int m = 0; m < WS_JB_MODES; m++) {
        r->jb_late[m] = s->jb.late[m];
        r->jb_loss_runs[m] = s->jb.loss_runs[m];
    }
    r->first_ns = s->first_ns;
    r->last_ns = s->last_ns;
    r->bytes = s->bytes;
    r->flags = s->flags & WS_STREAM_RECORD_FLAGS;
    r->end_reason = s->end_reason;
}

static int ended_push(ws_rtp_table *t, const ws_rtp_stream *s)
{
    if (t->ended_count == t->ended_cap) {
        uint32_t cap = t->ended_cap ? t->ended_cap * 2 : 256;
        ws_stream_record *n = realloc(t->ended, (size_t)cap * sizeof *n);
        if (!n) return -1;
        t->ended = n;
        t->ended_cap = cap;
    }
    ws_rtp_record(s, &t->ended[t->ended_count++]);
    return 0;
}

/* The streams bound to each binding, a list through slot_bind_next/prev:
 * a stream is on its binding's list exactly while WS_STREAM_BOUND is set. */
static void bound_link(ws_rtp_table *t, uint32_t slot, uint32_t binding)
{
    uint32_t first = t->bind_streams[binding];
    t->slot_bind_prev[slot] = 0;
    t->slot_bind_next[slot] = first;
    if (first) t->slot_bind_prev[first - 1] = slot + 1;
    t->bind_streams[binding] = slot + 1;
}

static void bound_unlink(ws_rtp_table *t, uint32_t slot, uint32_t binding)
{
    uint32_t next = t->slot_bind_next[slot], prev = t->slot_bind_prev[slot];
    if (prev) t->slot_bind_next[prev - 1] = next;
    else t->bind_streams[binding] = next;
    if (next) t->slot_bind_prev[next - 1] = prev;
}

/* A binding's generation changed: its streams look again on their next packet. */
static void bound_mark_rebind(ws_rtp_table *t, uint32_t binding)
{
    for (uint32_t i = t->bind_streams[binding]; i; i = t->slot_bind_next[i - 1])
        t->streams[i - 1].flags |= WS_STREAM_REBIND;
}

/* Takes a stream out of the table; valid streams are kept for reporting. */
static void stream_remove(ws_rtp_table *t, uint32_t slot, uint8_t reason)
{
    ws_rtp_stream *s = &t->streams[slot];
    if (s->flags & WS_STREAM_BOUND) bound_unlink(t, slot, s->binding);
    uint32_t h = (uint32_t)ws_flow_hash(&s->key), pos;
    if (ix_find(&t->index, (const uint8_t *)t->streams, sizeof *s, &s->key, h, &pos) == slot)
        ix_remove(&t->index, pos);
    if (s->flags & WS_STREAM_VALID) {
        s->end_reason = reason;
        ended_push(t, s);
    }
    s->packets = 0; /* marks the slot free */
    t->slot_calls[slot] = 0;
    t->free_list[t->free_count++] = slot;
    t->active--;
}

void ws_rtp_expire(ws_rtp_table *t, int64_t now_ns, int64_t idle_ns)
{
    const int64_t ns_per_s = 1000000000;
    for (uint32_t i = 0; i < t->used && t->active; i++) {
        uint32_t seen = t->slot_seen_s[i];
        if (seen && now_ns - idle_ns < (int64_t)(seen - 1) * ns_per_s) continue; /* cannot be idle yet */
        ws_rtp_stream *s = &t->streams[i];
        if (!s->packets) continue;
        if (now_ns - s->last_ns > idle_ns) {
            stream_remove(t, i, WS_END_IDLE);
            t->expired++;
        } else {
            int64_t last_s = s->last_ns / ns_per_s;
            t->slot_seen_s[i] = last_s >= 0 && last_s < UINT32_MAX ? (uint32_t)last_s + 1 : 0;
        }
    }
}

static void evict_one(ws_rtp_table *t)
{
    /* approximate LRU over a sample; never-validated candidates go first */
    uint32_t best = NOT_FOUND;
    int64_t best_score = INT64_MAX;
    for (uint32_t n = 0, tries = 0; n < EVICT_SAMPLE && tries < t->used; tries++) {
        uint32_t i = t->evict_cursor++ % t->used;
        ws_rtp_stream *s = &t->streams[i];
        if (!s->packets) continue;
        n++;
        int64_t score = (s->flags & WS_STREAM_VALID) ? s->last_ns : s->last_ns - ((int64_t)1 << 62);
        if (score < best_score) {
            best_score = score;
            best = i;
        }
    }
    if (best != NOT_FOUND) {
        stream_remove(t, best, WS_END_EVICTED);
        t->evictions++;
    }
}

static ws_rtp_stream *stream_new(ws_rtp_table *t, const ws_flow_key *k, uint32_t h, uint32_t pos)
{
    if (t->active >= t->max_streams) {
        evict_one(t);
        ix_find(&t->index, (const uint8_t *)t->streams, sizeof(ws_rtp_stream), k, h, &pos);
    }
    uint32_t slot;
    if (t->free_count) {
        slot = t->free_list[--t->free_count];
    } else {
        if (t->used == t->capacity) {
            uint32_t cap = t->capacity ? t->capacity * 2 : SLAB_INITIAL;
            if (cap > t->max_streams) cap = t->max_streams;
            /* cache-line aligned: the hot part of a stream is three lines */
            ws_rtp_stream *ns = aligned_alloc(64, (size_t)cap * sizeof *ns);
            uint32_t *fl = realloc(t->free_list, (size_t)cap * sizeof *fl);
            if (fl) t->free_list = fl;
            uint32_t *sc = realloc(t->slot_calls, (size_t)cap * sizeof *sc);
            if (sc) t->slot_calls = sc;
            uint32_t *ss = realloc(t->slot_seen_s, (size_t)cap * sizeof *ss);
            if (ss) t->slot_seen_s = ss;
            uint32_t *bn = realloc(t->slot_bind_next, (size_t)cap * sizeof *bn);
            if (bn) t->slot_bind_next = bn;
            uint32_t *bp = realloc(t->slot_bind_prev, (size_t)cap * sizeof *bp);
            if (bp) t->slot_bind_prev = bp;
            if (!ns || !fl || !sc || !ss || !bn || !bp) {
                free(ns);
                return NULL;
            }
            if (t->used) memcpy(ns, t->streams, (size_t)t->used * sizeof *ns);
            free(t->streams);
            t->streams = ns;
            t->free_list = fl;
            t->capacity = cap;
        }
        slot = t->used++;
    }
    if ((t->index.count + 1) * 4 > t->index.mask + 1) { /* 25 % load: short probes */
        if (ix_grow(&t->index)) return NULL;
        ix_find(&t->index, (const uint8_t *)t->streams, sizeof(ws_rtp_stream), k, h, &pos);
    }
    IX_E(&t->index)[pos] = ((uint64_t)h << 32) | (slot + 1);
    t->index.count++;
    t->active++;
    ws_rtp_stream *s = &t->streams[slot];
    memset(s, 0, sizeof *s);
    s->key = *k;
    t->slot_calls[slot] = 0;
    t->slot_seen_s[slot] = 0;
    return s;
}

/* RFC 3550 A.1 with changes a passive observer needs: packets seen during
 * probation (and a forward gap inside it) and the packet that announced a
 * restart are counted, not dropped, so loss starts at the first packet seen;
 * and a 128-entry window tells duplicates from late packets. */
enum { SEQ_PROBATION, SEQ_BAD, SEQ_NEXT, SEQ_RESTART, SEQ_DUPLICATE, SEQ_LATE };

/* Starts a counted run ending at seq that spans `span` sequence numbers of
 * which `received` arrived; the seen window is the caller's. */
static void seq_start(ws_rtp_stream *s, uint16_t seq, uint32_t received, uint32_t span)
{
    s->max_seq = seq;
    /* when the run began before a wrap, count that wrap so expected == span */
    s->cycles = seq < span - 1 ? WS_RTP_SEQ_MOD : 0;
    s->base_seq = (uint32_t)seq + s->cycles - (span - 1);
    s->bad_seq = WS_RTP_SEQ_MOD + 1;
    s->received = received;
    s->dup_since_init = 0;
}

static void window_shift(ws_rtp_stream *s, uint32_t d)
{
    if (d >= 128) {
        s->seen_window[0] = s->seen_window[1] = 0;
    } else if (d >= 64) {
        s->seen_window[1] = s->seen_window[0] << (d - 64);
        s->seen_window[0] = 0;
    } else if (d) {
        s->seen_window[1] = (s->seen_window[1] << d) | (s->seen_window[0] >> (64 - d));
        s->seen_window[0] <<= d;
    }
    s->seen_window[0] |= 1;
}

/* Missing sequence numbers before this packet: one loss run, which the
 * playout buffers see too (it may extend a run of late packets). */
static void loss_gap(ws_rtp_stream *s)
{
    s->loss_runs++;
    for (int m = 0; m < WS_JB_MODES; m++) {
        if (!(s->jb.in_run & (1u << m))) s->jb.loss_runs[m]++;
    }
    s->jb.in_run = (1u << WS_JB_MODES) - 1;
}

/* One voice packet through the three playout buffers. d is its transit
 * change against the reference packet of A.8, in timestamp units; the buffers
 * play out relative to the fastest packet seen. Everything stays in timestamp
 * units (the buffer sizes are scaled once), so no division per packet. */
WS_INLINE void jb_packet(ws_jb_sim *jb, float d, float clock, int in_time, int reordered, int fill)
{
    float t = jb->transit + d;
    if (t < jb->min_transit) jb->min_transit = t;
    float over = t - jb->min_transit; /* delay beyond the fastest packet */
    float ms = clock * 0.001f;        /* timestamp units per millisecond */
    float adaptive = jb->delay_avg + 4.0f * jb->delay_dev;
    if (adaptive < WS_JB_ADAPTIVE_MIN_MS * ms) adaptive = WS_JB_ADAPTIVE_MIN_MS * ms;
    if (adaptive > WS_JB_ADAPTIVE_MAX_MS * ms) adaptive = WS_JB_ADAPTIVE_MAX_MS * ms;
    /* bit m: past the playout point of mode m (WS_JB_FIXED50, FIXED200, ADAPTIVE) */
    uint32_t late = (uint32_t)(over > 50.0f * ms) | (uint32_t)(over > 200.0f * ms) << 1 |
                    (uint32_t)(over > adaptive) << 2;
    if (WS_UNLIKELY(late))
        for (int m = 0; m < WS_JB_MODES; m++) jb->late[m] += (late >> m) & 1;
    if (WS_LIKELY(!reordered)) {
        /* a late packet starts a run unless the previous position was lost or
         * late already; the run state is now exactly "this one was late" */
        uint32_t starts = late & ~(uint32_t)jb->in_run;
        if (WS_UNLIKELY(starts))
            for (int m = 0; m < WS_JB_MODES; m++) jb->loss_runs[m] += (starts >> m) & 1;
        jb->in_run = (uint8_t)late;
    } else {
        /* its position was counted lost by the gap: in time, it leaves the
         * run as the network's does; late, the position stays lost */
        for (int m = 0; m < WS_JB_MODES; m++) {
            if (!((late >> m) & 1) && (fill > 0 || jb->loss_runs[m])) jb->loss_runs[m] += (uint32_t)fill;
        }
    }
    /* the adaptive buffer follows the delay, as RFC 3550's jitter does: gain 1/16;
     * |over - avg| as fabsf (a - b is exactly -(b - a)), not a branch on which
     * side of the average the delay fell, a coin flip the predictor loses */
    float dev = fabsf(over - jb->delay_avg);
    jb->delay_dev += (dev - jb->delay_dev) * 0.0625f;
    jb->delay_avg += (over - jb->delay_avg) * 0.0625f;
    if (in_time) jb->transit = t;
}

static int window_has(const ws_rtp_stream *s, uint32_t back)
{
    return back < 128 && ((s->seen_window[back >> 6] >> (back & 63)) & 1);
}

/* A late packet fills a position a gap had counted lost: the loss run it sat
 * in vanishes (-1), splits in two (+1), or just shrinks (0). */
static int run_change_on_fill(const ws_rtp_stream *s, uint32_t back)
{
    uint32_t span = s->cycles + s->max_seq - s->base_seq; /* positions after the first */
    int newer = window_has(s, back - 1);
    int older = back + 1 > span || back + 1 >= 128 || window_has(s, back + 1);
    return (newer && older) ? -1 : (!newer && !older) ? 1 : 0;
}

static int update_seq(ws_rtp_stream *s, uint16_t seq, int *fill)
{
    uint16_t udelta = (uint16_t)(seq - s->max_seq);
    if (WS_UNLIKELY(s->probation)) {
        /* the seen window runs during probation too, so a packet that
         * arrives late inside the run (or just before its first packet)
         * is counted, not mistaken for a new run that forgets the others */
        uint16_t back = (uint16_t)(s->max_seq - seq);
        if (s->probe_count && back < WS_RTP_MAX_MISORDER) {
            if (window_has(s, back)) {
                s->duplicates++; /* a repeat does not break probation */
                return SEQ_DUPLICATE;
            }
            s->seen_window[back >> 6] |= 1ull << (back & 63);
            if (back > (uint16_t)(s->max_seq - s->probe_first)) s->probe_first = seq;
            if (s->probe_count < UINT16_MAX) s->probe_count++;
            s->reordered++;
            return SEQ_LATE;
        }
        if (udelta == 0 || udelta >= WS_RTP_MAX_DROPOUT) {
            /* further back or a big jump: probe again from here */
            s->probe_first = seq;
            s->probe_count = 1;
            s->probation = WS_RTP_MIN_SEQUENTIAL - 1;
            s->max_seq = seq;
            s->seen_window[0] = 1;
            s->seen_window[1] = 0;
            return SEQ_PROBATION;
        }
        if (s->probe_count < UINT16_MAX) s->probe_count++;
        window_shift(s, udelta);
        s->max_seq = seq;
        if (udelta != 1) {
            s->probation = WS_RTP_MIN_SEQUENTIAL - 1; /* a gap: still the same run */
            loss_gap(s);
            return SEQ_PROBATION;
        }
        if (--s->probation) return SEQ_PROBATION;
        seq_start(s, seq, s->probe_count, (uint16_t)(seq - s->probe_first) + 1u);
        s->flags |= WS_STREAM_VALID;
        return SEQ_NEXT;
    }
    if (WS_LIKELY(udelta && udelta < WS_RTP_MAX_DROPOUT)) {
        if (seq < s->max_seq) s->cycles += WS_RTP_SEQ_MOD;
        s->max_seq = seq;
        window_shift(s, udelta);
        s->received++;
        if (WS_UNLIKELY(udelta > 1)) loss_gap(s);
        return SEQ_NEXT;
    }
    if (udelta && udelta <= WS_RTP_SEQ_MOD - WS_RTP_MAX_MISORDER) {
        if (seq == s->bad_seq) {
            /* two in a row after a big jump: the sender restarted (A.1) */
            int64_t expected = (int64_t)s->cycles + s->max_seq - (int64_t)s->base_seq + 1;
            s->lost_before += (int32_t)(expected - ((int64_t)s->received - s->dup_since_init));
            s->expected_before += (uint32_t)expected;
            s->seq_resets++;
            seq_start(s, seq, 2, 2);
            s->seen_window[0] = 3; /* the jump and this packet */
            s->seen_window[1] = 0;
            return SEQ_RESTART;
        }
        s->bad_seq = (seq + 1) & (WS_RTP_SEQ_MOD - 1);
        return SEQ_BAD;
    }
    /* at or behind max_seq within MAX_MISORDER: duplicate or late */
    uint16_t back = (uint16_t)(s->max_seq - seq);
    s->received++;
    uint64_t *w = &s->seen_window[back >> 6];
    uint64_t bit = 1ull << (back & 63);
    if (back < 128 && (*w & bit)) {
        s->duplicates++;
        s->dup_since_init++;
        return SEQ_DUPLICATE;
    }
    if (back < 128) *w |= bit;
    s->reordered++;
    *fill = run_change_on_fill(s, back);
    if (*fill < 0 && !s->loss_runs) *fill = 0;
    s->loss_runs += (uint32_t)*fill;
    return SEQ_LATE;
}

/* ------------------------------------------------------------------------ */
/* SDP media bindings */

static void bind_key(ws_flow_key *k, const ws_addr *addr, uint16_t port)
{
    memset(k, 0, sizeof *k);
    k->dst = *addr;
    k->dport = port;
}

static uint32_t bind_lookup(const ws_rtp_table *t, const ws_addr *addr, uint16_t port, uint32_t *pos)
{
    ws_flow_key k;
    bind_key(&k, addr, port);
    return ix_find(&t->bind_index, (const uint8_t *)t->bindings, sizeof(ws_media_binding), &k,
                   (uint32_t)ws_flow_hash(&k), pos);
}

static void bind_free_slot(ws_rtp_table *t, uint32_t slot, uint32_t pos)
{
    ix_remove(&t->bind_index, pos);
    t->bind_gens[slot] = 0;
    bound_mark_rebind(t, slot);
    t->bindings[slot].call_ref = 0;
    t->bind_free[t->bind_free_count++] = slot;
    t->bind_active--;
}

static int bind_stale(const ws_rtp_table *t, const ws_media_binding *b)
{
    return b->latched && t->bind_gens[b->parent] != b->parent_gen;
}

/* A live binding at (addr, port); a stale latched one is freed on the way. */
static uint32_t bind_find(ws_rtp_table *t, const ws_addr *addr, uint16_t port, uint32_t *pos)
{
    uint32_t slot = bind_lookup(t, addr, port, pos);
    if (slot != NOT_FOUND && bind_stale(t, &t->bindings[slot])) {
        bind_free_slot(t, slot, *pos);
        slot = bind_lookup(t, addr, port, pos);
    }
    return slot;
}

void ws_rtp_sweep_bindings(ws_rtp_table *t)
{
    for (uint32_t i = 0; i < t->bind_used && t->latched; i++) {
        ws_media_binding *b = &t->bindings[i];
        if (t->bind_gens[i] && bind_stale(t, b)) {
            uint32_t pos;
            if (bind_lookup(t, &b->key.dst, b->key.dport, &pos) == i) bind_free_slot(t, i, pos);
        }
    }
}

/* The adoption epoch bucket of a destination: from its last address word and port. */
WS_INLINE uint32_t epoch_bucket(uint64_t dst_low, uint16_t dport)
{
    return (uint32_t)(((dst_low ^ dport) * 0x9e3779b97f4a7c15ULL) >> 54) & (WS_BIND_EPOCHS - 1);
}

/* ... of a flow key given as words (ws_key_words: dst in w[2..3], ports in w[4]) */
WS_INLINE uint32_t epoch_bucket_kw(const ws_key_words *kw)
{
#if WS_LITTLE_ENDIAN
    uint16_t dport = (uint16_t)(kw->w[4] >> 16);
#else
    uint16_t dport = (uint16_t)(kw->w[4] >> 32);
#endif
    return epoch_bucket(kw->w[3], dport);
}

static ws_media_binding *bind_set(ws_rtp_table *t, const ws_addr *addr, uint16_t port, uint32_t call_ref,
                                  const ws_pt_entry *pts, uint32_t npts, int latched, int64_t since_ns)
{
    uint32_t pos, slot = bind_find(t, addr, port, &pos);
    if (slot == NOT_FOUND) {
        if (t->bind_active >= t->bind_max) {
            t->bind_dropped++;
            return NULL;
        }
        if (t->bind_free_count) {
            slot = t->bind_free[--t->bind_free_count];
        } else {
            if (t->bind_used == t->bind_capacity) {
                uint32_t cap = t->bind_capacity ? t->bind_capacity * 2 : 64;
                if (cap > t->bind_max) cap = t->bind_max;
                ws_media_binding *nb = realloc(t->bindings, (size_t)cap * sizeof *nb);
                if (!nb) return NULL;
                t->bindings = nb;
                uint32_t *ng = realloc(t->bind_gens, (size_t)cap * sizeof *ng);
                if (!ng) return NULL;
                t->bind_gens = ng;
                uint32_t *ns = realloc(t->bind_streams, (size_t)cap * sizeof *ns);
                if (!ns) return NULL;
                t->bind_streams = ns;
                uint32_t *nf = realloc(t->bind_free, (size_t)cap * sizeof *nf);
                if (!nf) return NULL;
                t->bind_free = nf;
                t->bind_capacity = cap;
            }
            slot = t->bind_used++;
            /* a new slot's list starts empty; a reused one keeps its list (its
             * streams were marked when it was freed, and leave on their next packet) */
            t->bind_streams[slot] = 0;
        }
        if ((t->bind_index.count + 1) * 2 > t->bind_index.mask + 1) {
            if (ix_grow(&t->bind_index)) return NULL;
            bind_find(t, addr, port, &pos);
        }
        ws_media_binding *b = &t->bindings[slot];
        memset(b, 0, sizeof *b);
        bind_key(&b->key, addr, port);
        IX_E(&t->bind_index)[pos] = ((uint64_t)(uint32_t)ws_flow_hash(&b->key) << 32) | (slot + 1);
        t->bind_index.count++;
        t->bind_active++;
    }
    if (t->adopt_unbound) {   /* unbound streams to this destination look again */
        uint32_t *ep = &t->bind_epochs[epoch_bucket(ws_load64(addr->b + 8), port)];
        if (!++*ep) *ep = 1; /* 0: never checked */
    }
    ws_media_binding *b = &t->bindings[slot];
    b->call_ref = call_ref;
    t->bind_gens[slot] = t->bind_gen_next++;
    bound_mark_rebind(t, slot);
    b->latched = (uint8_t)latched;
    b->since_ns = since_ns;
    b->npts = (uint8_t)(npts < WS_BIND_PTS ? npts : WS_BIND_PTS);
    memcpy(b->pts, pts, b->npts * sizeof *pts);
    return b;
}

int ws_rtp_bind(ws_rtp_table *t, const ws_addr *addr, uint16_t port, uint32_t call_ref,
                const ws_pt_entry *pts, uint32_t npts, int64_t since_ns)
{
    return bind_set(t, addr, port, call_ref, pts, npts, 0, since_ns) ? 0 : -1;
}

void ws_rtp_unbind(ws_rtp_table *t, const ws_addr *addr, uint16_t port, uint32_t call_ref)
{
    uint32_t pos, slot = bind_find(t, addr, port, &pos);
    if (slot == NOT_FOUND || t->bindings[slot].call_ref != call_ref) return;
    bind_free_slot(t, slot, pos);
}

/* Binds a stream through its destination (a new one, or with `adopting` an
 * unbound one that began before the binding, unless it began before the
 * call's INVITE: someone else's); media from an address no SDP announced
 * (NAT) is latched so the reverse direction binds too. */
static void stream_bind(ws_rtp_table *t, ws_rtp_stream *s, int adopting)
{
    uint32_t pos, slot = bind_find(t, &s->key.dst, s->key.dport, &pos);
    if (slot == NOT_FOUND) return;
    ws_media_binding *b = &t->bindings[slot];
    if (adopting && s->first_ns < b->since_ns) return;
    s->flags |= WS_STREAM_BOUND;
    s->call_ref = b->call_ref;
    t->slot_calls[s - t->streams] = b->call_ref;
    s->binding = slot;
    s->cached_pt.pt = 0xff;
    bound_link(t, (uint32_t)(s - t->streams), slot);
    t->bound_streams++;
    uint32_t rpos;
    if (bind_find(t, &s->key.src, s->key.sport, &rpos) == NOT_FOUND) {
        ws_pt_entry pts[WS_BIND_PTS];
        uint32_t npts = b->npts, parent_gen = t->bind_gens[slot];
        int64_t since_ns = b->since_ns;
        memcpy(pts, b->pts, npts * sizeof *pts); /* b may move when the table grows */
        ws_media_binding *l = bind_set(t, &s->key.src, s->key.sport, s->call_ref, pts, npts, 1, since_ns);
        if (l) {
            l->parent = b->latched ? b->parent : slot;
            l->parent_gen = b->latched ? b->parent_gen : parent_gen;
            t->latched++;
        }
    }
}

/* A bound stream's payload type not in its cache: the entry of the binding
 * (the SDP's a=rtpmap), cached whatever its clock (the binding's types cannot
 * change under the stream: a new binding marks it WS_STREAM_REBIND, which
 * empties the cache); else the table's answer, cached while its clock is
 * known (until then it is looked up again). */
static __attribute__((noinline)) ws_pt_info stream_pt_lookup(const ws_rtp_table *t, ws_rtp_stream *s, uint8_t pt)
{
    ws_pt_info info = t->pt_map[pt];
    const ws_media_binding *b = &t->bindings[s->binding];
    for (uint32_t i = 0; i < b->npts; i++) {
        if (b->pts[i].pt == pt) {
            s->cached_pt = b->pts[i];
            info.clock_rate = b->pts[i].clock_rate;
            info.kind = b->pts[i].kind;
            return info;
        }
    }
    /* not in the SDP's rtpmap (a static type offered without one): the
     * table's answer, cached too, or every packet would search again */
    if (info.clock_rate) {
        s->cached_pt.pt = pt;
        s->cached_pt.kind = info.kind;
        s->cached_pt.clock_rate = info.clock_rate;
    }
    return info;
}

/* The payload type's clock and kind: the table's, or for a bound stream as
 * its call's SDP declared it, from the stream's cache of the last one looked
 * up (cached_pt.pt 0xff, never a payload type: nothing cached), so the usual
 * packet compares one byte. */
WS_INLINE ws_pt_info stream_pt_info(const ws_rtp_table *t, ws_rtp_stream *s, uint8_t pt)
{
    if (!(s->flags & WS_STREAM_BOUND)) return t->pt_map[pt];
    if (WS_LIKELY(s->cached_pt.pt == pt)) {
        ws_pt_info info = {s->cached_pt.clock_rate, s->cached_pt.kind};
        return info;
    }
    return stream_pt_lookup(t, s, pt);
}

/* A bound stream whose binding changed (WS_STREAM_REBIND): its destination
 * was re-bound (re-INVITE) or released (call over). Returns 0, or 1 when the
 * destination now belongs to another call: the stream has ended, and its
 * next packet starts a new one. Out of line (taking nothing by address), so
 * the packet path around it stays as small as it was. */
static __attribute__((noinline)) int stream_rebind(ws_rtp_table *t, uint32_t slot)
{
    ws_rtp_stream *s = &t->streams[slot];
    uint32_t bpos, b = bind_find(t, &s->key.dst, s->key.dport, &bpos);
    if (b == NOT_FOUND) {
        bound_unlink(t, slot, s->binding);
        s->flags &= (uint8_t)~(WS_STREAM_BOUND | WS_STREAM_REBIND); /* keeps its call */
    } else if (t->bindings[b].call_ref == s->call_ref) {
        if (b != s->binding) {
            bound_unlink(t, slot, s->binding);
            bound_link(t, slot, b);
            s->binding = b;
        }
        s->flags &= (uint8_t)~WS_STREAM_REBIND;
        s->cached_pt.pt = 0xff;
    } else {
        stream_remove(t, slot, WS_END_REBOUND);
        return 1;
    }
    return 0;
}

_Static_assert(WS_PT_EVENT == WS_PT_CN + 1, "comfort noise and events are told apart from voice in one test");

/* One RTP packet, its key (SSRC included) given as words: the decoder's
 * values go from registers into the hash and the compare, and the key is
 * only written out when a stream starts or its binding changes. */
WS_INLINE int rtp_packet_kw(ws_rtp_table *t, const ws_key_words *kw, int64_t ts_ns, const uint8_t *p, uint32_t n)
{
    uint32_t h = (uint32_t)ws_key_words_hash(kw), pos;
    uint32_t slot = ix_find_words(&t->index, (const uint8_t *)t->streams, sizeof(ws_rtp_stream), kw, h, &pos);
    ws_flow_key k;
    ws_rtp_stream *s;
    uint16_t seq = ws_be16(p + 2);
    uint32_t rtp_ts = ws_be32(p + 4);
    uint8_t pt = p[1] & 0x7f;
    int marker = p[1] >> 7;
    if (WS_LIKELY(slot != NOT_FOUND)) {
        s = &t->streams[slot];
        if (WS_UNLIKELY(!(s->flags & WS_STREAM_BOUND))) {
            /* an unbound stream's bind_epoch is its bucket's epoch when it last checked;
             * with no binding at all (RTP only) there is nothing to look at */
            if (t->adopt_unbound && t->bind_active && !s->call_ref) {
                uint32_t ep = t->bind_epochs[epoch_bucket_kw(kw)];
                if (WS_UNLIKELY(s->bind_epoch != ep)) {
                    s->bind_epoch = ep;
                    stream_bind(t, s, 1);
                    t->adopted += (s->flags & WS_STREAM_BOUND) != 0;
                }
            }
        } else if (WS_UNLIKELY(s->flags & WS_STREAM_REBIND) && stream_rebind(t, slot)) {
            slot = NOT_FOUND;
            ws_key_from_words(&k, kw);
            ix_find(&t->index, (const uint8_t *)t->streams, sizeof(ws_rtp_stream), &k, h, &pos);
        }
    }
    if (WS_UNLIKELY(slot == NOT_FOUND)) {
        ws_key_from_words(&k, kw);
        s = stream_new(t, &k, h, pos);
        if (!s) return -1;
        s->max_seq = (uint16_t)(seq - 1);
        s->probation = WS_RTP_MIN_SEQUENTIAL;
        s->probe_first = seq;
        s->first_ns = ts_ns;
        s->payload_type = pt;
        if (t->bind_active) stream_bind(t, s, 0);
        if (!(s->flags & WS_STREAM_BOUND) && t->adopt_unbound)
            s->bind_epoch = t->bind_epochs[epoch_bucket_kw(kw)];
    }
    s->packets++;
    s->bytes += n;
    s->last_ns = ts_ns;
    s->markers += (uint32_t)marker;
    s->last_pt = pt;
    /* duplicates still arrive, so A.8 timing sees them, as Wireshark's does;
     * a packet the sequence rules set aside does not */
    int fill = 0, st;
    if (WS_LIKELY(seq == (uint16_t)(s->max_seq + 1) && !s->probation)) {
        /* update_seq's commonest case, the next packet in order, inline */
        if (!seq) s->cycles += WS_RTP_SEQ_MOD;
        s->max_seq = seq;
        s->seen_window[1] = (s->seen_window[1] << 1) | (s->seen_window[0] >> 63);
        s->seen_window[0] = (s->seen_window[0] << 1) | 1;
        s->received++;
        st = SEQ_NEXT;
    } else {
        st = update_seq(s, seq, &fill);
    }
    if (WS_UNLIKELY(st == SEQ_BAD)) return 0;

    ws_pt_info info = stream_pt_info(t, s, pt);
    if (WS_UNLIKELY((uint8_t)(info.kind - WS_PT_CN) <= WS_PT_EVENT - WS_PT_CN)) { /* one test for both */
        if (info.kind == WS_PT_EVENT) {
            /* every packet of one RFC 4733 event repeats the event's timestamp */
            if (!s->dtmf_events || (uint16_t)rtp_ts != s->dtmf_last_ts) {
                s->dtmf_events++;
                s->dtmf_last_ts = (uint16_t)rtp_ts;
            }
        }
        return 0; /* comfort noise and events: never voice timing */
    }
    /* a payload type of unknown clock inside a voice stream (unmapped DTMF,
     * say) must not move the voice reference either */
    if (!info.clock_rate && s->clock_rate) return 0;
    int32_t dts = (int32_t)(rtp_ts - s->prev_rtp_ts);
    /* (Re-)anchor without a sample: first packet, a sender restart, or a
     * timestamp that steps back while the sequence moves on (a sender clock
     * reset, not network delay). */
    if (!(s->flags & WS_STREAM_HAVE_PREV) || st == SEQ_RESTART || (dts < 0 && st == SEQ_NEXT)) {
        s->flags |= WS_STREAM_HAVE_PREV;
        s->prev_arrival_ns = ts_ns;
        s->prev_rtp_ts = rtp_ts;
        if (info.clock_rate && !s->clock_rate) s->clock_rate = info.clock_rate;
        return 0;
    }
    int64_t darr = ts_ns - s->prev_arrival_ns;
    int in_time = dts >= 0;
    int regular = in_time && !marker;
    if (info.clock_rate) {
        if (WS_UNLIKELY(info.clock_rate != s->clock_rate)) {
            if (s->clock_rate) {
                double scale = (double)info.clock_rate / s->clock_rate;
                s->max_jitter *= (float)scale;
                s->jitter_sum *= scale;
                s->jitter *= scale;
                s->jb.transit *= (float)scale; /* the buffers count in timestamp units too */
                s->jb.min_transit *= (float)scale;
                s->jb.delay_avg *= (float)scale;
                s->jb.delay_dev *= (float)scale;
            }
            s->clock_rate = info.clock_rate;
        }
        /* A.8: D = (Rj - Ri) - (Sj - Si), J += (|D| - J) / 16 */
        double d = (double)darr * 1e-9 * info.clock_rate - (double)dts;
        s->jitter += (fabs(d) - s->jitter) * 0.0625;
        if (regular) {
            if (s->jitter > s->max_jitter) s->max_jitter = (float)s->jitter;
            s->jitter_sum += s->jitter;
            s->jitter_samples++;
        }
#ifndef WS_NO_JB_SIM /* benchmarks build without it to measure its cost */
        if (st != SEQ_DUPLICATE) /* a copy is no new position for a playout buffer */
            jb_packet(&s->jb, (float)d, (float)info.clock_rate, in_time, st == SEQ_LATE, fill);
#endif
    }
    /* darr / 1000 > max_delta_us, without dividing for every packet */
    if (regular && darr >= ((int64_t)s->max_delta_us + 1) * 1000) s->max_delta_us = (uint32_t)(darr / 1000);
    if (in_time) {
        s->prev_arrival_ns = ts_ns;
        s->prev_rtp_ts = rtp_ts;
    }
    return 0;
}

int ws_rtp_packet(ws_rtp_table *t, const ws_flow_key *k5, int64_t ts_ns, const uint8_t *p, uint32_t n)
{
    ws_flow_key k = *k5;
    k.ssrc = ws_be32(p + 8);
    ws_key_words kw = ws_key_words_of(&k);
    return rtp_packet_kw(t, &kw, ts_ns, p, n);
}

#if WS_LITTLE_ENDIAN
/* inlined into the engine's fast path (one translation unit) */
inline __attribute__((always_inline)) int ws_rtp_packet_v4(ws_rtp_table *t, uint32_t src_raw, uint32_t dst_raw,
                                                           uint16_t sport, uint16_t dport, int64_t ts_ns,
                                                           const uint8_t *p, uint32_t n)
{
    ws_key_words kw = {{0, ws_v4_mapped_word(src_raw), 0, ws_v4_mapped_word(dst_raw),
                        sport | (uint64_t)dport << 16 | (uint64_t)ws_be32(p + 8) << 32}};
    return rtp_packet_kw(t, &kw, ts_ns, p, n);
}
#endif

/* ------------------------------------------------------------------------ */

static ws_rtcp_source *rtcp_source(ws_rtp_table *t, const ws_flow_key *k)
{
    uint32_t h = (uint32_t)ws_flow_hash(k), pos;
    uint32_t slot = ix_find(&t->rtcp_index, (const uint8_t *)t->rtcp, sizeof(ws_rtcp_source), k, h, &pos);
    if (slot != NOT_FOUND) return &t->rtcp[slot];
    if (t->rtcp_used >= t->rtcp_max) {
        t->rtcp_dropped++;
        return NULL;
    }
    if (t->rtcp_used == t->rtcp_capacity) {
        uint32_t cap = t->rtcp_capacity ? t->rtcp_capacity * 2 : 64;
        if (cap > t->rtcp_max) cap = t->rtcp_max;
        ws_rtcp_source *n = realloc(t->rtcp, (size_t)cap * sizeof *n);
        if (!n) return NULL;
        t->rtcp = n;
        t->rtcp_capacity = cap;
    }
    if ((t->rtcp_index.count + 1) * 2 > t->rtcp_index.mask + 1) {
        if (ix_grow(&t->rtcp_index)) return NULL;
        ix_find(&t->rtcp_index, (const uint8_t *)t->rtcp, sizeof(ws_rtcp_source), k, h, &pos);
    }
    slot = t->rtcp_used++;
    IX_E(&t->rtcp_index)[pos] = ((uint64_t)h << 32) | (slot + 1);
    t->rtcp_index.count++;
    ws_rtcp_source *s = &t->rtcp[slot];
    memset(s, 0, sizeof *s);
    s->key = *k;
    return s;
}

/* RTT: the SR this block's LSR names went the other way on the same ports. */
static void report_rtt(ws_rtp_table *t, ws_rtcp_source *s, const ws_flow_key *k5)
{
    if (!s->rb_lsr) return;
    ws_flow_key k;
    k.src = k5->dst;
    k.dst = k5->src;
    k.sport = k5->dport;
    k.dport = k5->sport;
    k.ssrc = s->rb_ssrc;
    uint32_t pos, slot = ix_find(&t->rtcp_index, (const uint8_t *)t->rtcp, sizeof(ws_rtcp_source), &k,
                                 (uint32_t)ws_flow_hash(&k), &pos);
    if (slot == NOT_FOUND) return;
    const ws_rtcp_source *sr = &t->rtcp[slot];
    if (!sr->sr_count || (uint32_t)(sr->sr_ntp >> 16) != s->rb_lsr) return;
    double rtt = (double)(s->rb_arrival_ns - sr->sr_arrival_ns) / 1e6 - s->rb_dlsr * (1000.0 / 65536.0);
    if (rtt < 0) rtt = 0; /* the tap sits between the two: DLSR rounding can cross zero */
    s->rtt_ms = rtt;
    if (rtt > s->rtt_max_ms) s->rtt_max_ms = rtt;
    s->rtt_samples++;
}

static void xr_blocks(ws_rtcp_source *s, const uint8_t *q, uint32_t len)
{
    uint32_t off = 8;
    while (off + 4 <= len) {
        uint8_t bt = q[off];
        uint32_t blen = 4 + 4u * ws_be16(q + off + 2);
        if (off + blen > len) return;
        if (bt == 7 && blen >= 36) { /* VoIP Metrics */
            const uint8_t *b = q + off + 4;
            s->has_xr_voip = 1;
            s->xr_ssrc = ws_be32(b);
            s->xr_loss_rate = b[4];
            s->xr_discard_rate = b[5];
            s->xr_burst_density = b[6];
            s->xr_gap_density = b[7];
            s->xr_burst_duration = ws_be16(b + 8);
            s->xr_gap_duration = ws_be16(b + 10);
            s->xr_round_trip_delay = ws_be16(b + 12);
            s->xr_end_system_delay = ws_be16(b + 14);
            s->xr_signal_level = (int8_t)b[16];
            s->xr_noise_level = (int8_t)b[17];
            s->xr_rerl = b[18];
            s->xr_gmin = b[19];
            s->xr_r_factor = b[20];
            s->xr_ext_r_factor = b[21];
            s->xr_mos_lq = b[22];
            s->xr_mos_cq = b[23];
            s->xr_rx_config = b[24];
            s->xr_jb_nominal = ws_be16(b + 26);
            s->xr_jb_maximum = ws_be16(b + 28);
            s->xr_jb_abs_max = ws_be16(b + 30);
        }
        off += blen;
    }
}

static void report_block(ws_rtcp_source *s, const uint8_t *b, int64_t ts_ns)
{
    s->has_report_block = 1;
    s->rb_ssrc = ws_be32(b);
    s->rb_fraction_lost = b[4];
    int32_t cum = (int32_t)(((uint32_t)b[5] << 16) | ((uint32_t)b[6] << 8) | b[7]);
    if (cum & 0x800000) cum -= 0x1000000; /* 24-bit two's complement */
    s->rb_cumulative_lost = cum;
    s->rb_ext_high_seq = ws_be32(b + 8);
    s->rb_jitter = ws_be32(b + 12);
    s->rb_lsr = ws_be32(b + 16);
    s->rb_dlsr = ws_be32(b + 20);
    s->rb_arrival_ns = ts_ns;
}

int ws_rtcp_packet(ws_rtp_table *t, const ws_flow_key *k5, int64_t ts_ns, const uint8_t *p, uint32_t n)
{
    t->rtcp_packets++;
    ws_rtcp_source *s = NULL;
    uint32_t off = 0;
    int parsed = 0;
    while (off + 4 <= n) {
        const uint8_t *q = p + off;
        uint32_t len = (ws_be16(q + 2) + 1u) * 4;
        if ((q[0] & 0xc0) != 0x80 || off + len > n) {
            t->rtcp_malformed++;
            if (s) s->malformed++;
            break;
        }
        uint8_t type = q[1];
        uint32_t count = q[0] & 31;
        if (!s) {
            ws_flow_key k = *k5;
            k.ssrc = len >= 8 ? ws_be32(q + 4) : 0;
            s = rtcp_source(t, &k);
            if (!s) return parsed;
            if (!s->first_ns) s->first_ns = ts_ns;
        }
        s->last_ns = ts_ns;
        switch (type) {
        case 200: /* SR */
            s->sr_count++;
            if (len >= 28) {
                s->sr_ntp = ((uint64_t)ws_be32(q + 8) << 32) | ws_be32(q + 12);
                s->sr_rtp_ts = ws_be32(q + 16);
                s->sr_packets = ws_be32(q + 20);
                s->sr_octets = ws_be32(q + 24);
                s->sr_arrival_ns = ts_ns;
                if (count && len >= 28 + 24) {
                    report_block(s, q + 28, ts_ns);
                    report_rtt(t, s, k5);
                }
            }
            break;
        case 201: /* RR */
            s->rr_count++;
            if (count && len >= 8 + 24) {
                report_block(s, q + 8, ts_ns);
                report_rtt(t, s, k5);
            }
            break;
        case 202: s->sdes_count++; break;
        case 203: s->bye_count++; break;
        case 204: s->app_count++; break;
        case 205:
        case 206: s->fb_count++; break;
        case 207:
            s->xr_count++;
            xr_blocks(s, q, len);
            break;
        default: break;
        }
        parsed++;
        off += len;
    }
    return parsed;
}

/* ------------------------------------------------------------------------ */

uint32_t ws_rtp_snapshot(const ws_rtp_table *t, ws_stream_record *out, uint32_t max, int valid_only)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->used && n < max; i++) {
        const ws_rtp_stream *s = &t->streams[i];
        if (!s->packets) continue;
        if (valid_only && !(s->flags & WS_STREAM_VALID)) continue;
        ws_rtp_record(s, &out[n++]);
    }
    return n;
}

#define F(type, name, fmt) {#name, fmt, offsetof(type, name)}
const ws_field_desc ws_stream_record_fields[] = {
    F(ws_stream_record, src, "V16"),          F(ws_stream_record, dst, "V16"),
    F(ws_stream_record, sport, "u2"),         F(ws_stream_record, dport, "u2"),
    F(ws_stream_record, ssrc, "u4"),          F(ws_stream_record, packets, "u4"),
    F(ws_stream_record, payload_type, "u4"),  F(ws_stream_record, lost, "i8"),
    F(ws_stream_record, expected, "i8"),      F(ws_stream_record, duplicates, "u4"),
    F(ws_stream_record, reordered, "u4"),     F(ws_stream_record, seq_resets, "u4"),
    F(ws_stream_record, markers, "u4"),       F(ws_stream_record, clock_rate, "u4"),
    F(ws_stream_record, call_ref, "u4"),      F(ws_stream_record, max_jitter_ms, "f8"),
    F(ws_stream_record, mean_jitter_ms, "f8"),F(ws_stream_record, max_delta_ms, "f8"),
    F(ws_stream_record, first_ns, "i8"),      F(ws_stream_record, last_ns, "i8"),
    F(ws_stream_record, bytes, "u8"),         F(ws_stream_record, flags, "u4"),
    F(ws_stream_record, loss_runs, "u4"),     F(ws_stream_record, dtmf_events, "u4"),
    {"jb_late", "(3,)u4", offsetof(ws_stream_record, jb_late)},
    {"jb_loss_runs", "(3,)u4", offsetof(ws_stream_record, jb_loss_runs)},
    F(ws_stream_record, end_reason, "u4"),
};
const size_t ws_stream_record_nfields = sizeof ws_stream_record_fields / sizeof ws_stream_record_fields[0];

const ws_field_desc ws_rtcp_source_fields[] = {
    {"src", "V16", offsetof(ws_rtcp_source, key.src)},
    {"dst", "V16", offsetof(ws_rtcp_source, key.dst)},
    {"sport", "u2", offsetof(ws_rtcp_source, key.sport)},
    {"dport", "u2", offsetof(ws_rtcp_source, key.dport)},
    {"ssrc", "u4", offsetof(ws_rtcp_source, key.ssrc)},
    F(ws_rtcp_source, sr_count, "u4"),   F(ws_rtcp_source, rr_count, "u4"),
    F(ws_rtcp_source, sdes_count, "u4"), F(ws_rtcp_source, bye_count, "u4"),
    F(ws_rtcp_source, app_count, "u4"),  F(ws_rtcp_source, xr_count, "u4"),
    F(ws_rtcp_source, fb_count, "u4"),   F(ws_rtcp_source, malformed, "u4"),
    F(ws_rtcp_source, sr_ntp, "u8"),     F(ws_rtcp_source, sr_rtp_ts, "u4"),
    F(ws_rtcp_source, sr_packets, "u4"), F(ws_rtcp_source, sr_octets, "u4"),
    F(ws_rtcp_source, sr_arrival_ns, "i8"),
    F(ws_rtcp_source, rb_ssrc, "u4"),    F(ws_rtcp_source, rb_fraction_lost, "u1"),
    F(ws_rtcp_source, has_report_block, "u1"),
    F(ws_rtcp_source, rb_cumulative_lost, "i4"), F(ws_rtcp_source, rb_ext_high_seq, "u4"),
    F(ws_rtcp_source, rb_jitter, "u4"),  F(ws_rtcp_source, rb_lsr, "u4"),
    F(ws_rtcp_source, rb_dlsr, "u4"),    F(ws_rtcp_source, rb_arrival_ns, "i8"),
    F(ws_rtcp_source, first_ns, "i8"),   F(ws_rtcp_source, last_ns, "i8"),
    F(ws_rtcp_source, rtt_ms, "f8"),     F(ws_rtcp_source, rtt_max_ms, "f8"),
    F(ws_rtcp_source, rtt_samples, "u4"),
    F(ws_rtcp_source, xr_ssrc, "u4"),    F(ws_rtcp_source, has_xr_voip, "u1"),
    F(ws_rtcp_source, xr_loss_rate, "u1"), F(ws_rtcp_source, xr_discard_rate, "u1"),
    F(ws_rtcp_source, xr_burst_density, "u1"), F(ws_rtcp_source, xr_gap_density, "u1"),
    F(ws_rtcp_source, xr_r_factor, "u1"), F(ws_rtcp_source, xr_ext_r_factor, "u1"),
    F(ws_rtcp_source, xr_mos_lq, "u1"),  F(ws_rtcp_source, xr_mos_cq, "u1"),
    F(ws_rtcp_source, xr_signal_level, "i1"), F(ws_rtcp_source, xr_noise_level, "i1"),
    F(ws_rtcp_source, xr_rerl, "u1"),    F(ws_rtcp_source, xr_gmin, "u1"),
    F(ws_rtcp_source, xr_rx_config, "u1"),
    F(ws_rtcp_source, xr_burst_duration, "u2"), F(ws_rtcp_source, xr_gap_duration, "u2"),
    F(ws_rtcp_source, xr_round_trip_delay, "u2"), F(ws_rtcp_source, xr_end_system_delay, "u2"),
    F(ws_rtcp_source, xr_jb_nominal, "u2"), F(ws_rtcp_source, xr_jb_maximum, "u2"),
    F(ws_rtcp_source, xr_jb_abs_max, "u2"),
};
const size_t ws_rtcp_source_nfields = sizeof ws_rtcp_source_fields / sizeof ws_rtcp_source_fields[0];
#undef F
