#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ws_extract.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "../decode/ws_decode.h"
#include "../sip/ws_sip.h"
#include "ws_pcap.h"

#define EXTRACT_SNAPLEN 262144u
#define FRAG_POOL 64u /* fragments held back until their datagram is whole */

typedef struct extract_input {
    ws_reader r;
    ws_frame f;
    int live; /* f holds this input's next frame */
} extract_input;

/* A fragment frame, copied: it is written only if the datagram it helps
 * build turns out to belong to a call. */
typedef struct held_fragment {
    int used;
    ws_addr src, dst;
    ws_frame f;
    uint8_t *copy;
} held_fragment;

/* Calls by media endpoint and by Call-ID, so a frame is checked against the
 * calls it can belong to, not against every open window (an outage can open
 * thousands at once). Several entries may share a key; colliding keys are
 * re-checked exactly. */
typedef struct index_entry {
    uint64_t key; /* 0 = empty; endpoint keys are odd, Call-ID keys even */
    uint32_t call;
} index_entry;

#define MAX_MATCHES 64 /* calls one frame can go to */
#define EXPIRE_STEP_NS 100000000ll

typedef struct extract_run {
    index_entry *index;
    uint32_t index_mask;
    extract_input *in;
    uint32_t n_in;
    ws_decoder *dec;
    held_fragment frags[FRAG_POOL];
    uint32_t frag_next; /* the slot to reuse when the pool is full (oldest) */
    ws_extract_call *calls;
    uint32_t n_calls;
    uint32_t *order;  /* calls by window start */
    uint32_t *active; /* calls whose window is open at the current frame */
    uint32_t n_active, next_start;
    int64_t expire_at;
    ws_extract_stats *st;
} extract_run;

static uint64_t endpoint_key(const ws_addr *a, uint16_t port)
{
    uint64_t h = ws_load64(a->b) * 0x9e3779b97f4a7c15ULL ^ ws_load64(a->b + 8) * 0xc2b2ae3d27d4eb4fULL ^
                 (uint64_t)port * 0x165667b19e3779f9ULL;
    return ws_mix64(h) | 1;
}

static uint64_t call_id_key(const uint8_t *p, uint32_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (uint32_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return (ws_mix64(h) & ~1ULL) | 2;
}

static void index_add(extract_run *x, uint64_t key, uint32_t call)
{
    uint32_t pos = (uint32_t)key & x->index_mask;
    while (x->index[pos].key) pos = (pos + 1) & x->index_mask;
    x->index[pos].key = key;
    x->index[pos].call = call;
}

static int build_index(extract_run *x)
{
    uint64_t entries = x->n_calls;
    for (uint32_t i = 0; i < x->n_calls; i++) entries += x->calls[i].n_media;
    uint64_t cap = 16;
    while (cap < 2 * entries) cap *= 2;
    if (cap > (1ull << 31)) return -1;
    x->index = calloc(cap, sizeof(index_entry));
    if (!x->index) return -1;
    x->index_mask = (uint32_t)(cap - 1);
    for (uint32_t i = 0; i < x->n_calls; i++) {
        const ws_extract_call *c = &x->calls[i];
        if (c->call_id_len) index_add(x, call_id_key(c->call_id, c->call_id_len), i);
        for (uint32_t k = 0; k < c->n_media; k++) {
            /* a call listing the same endpoint twice would be found twice: the
             * matched list drops duplicates */
            index_add(x, endpoint_key(&c->media[k].addr, c->media[k].port), i);
        }
    }
    return 0;
}

/* Adds call c to the frame's matches once. */
static uint32_t add_match(ws_extract_call **matched, uint8_t *kind, uint32_t n, ws_extract_call *c, uint8_t hit)
{
    for (uint32_t i = 0; i < n; i++)
        if (matched[i] == c) return n;
    if (n == MAX_MATCHES) return n;
    matched[n] = c;
    kind[n] = hit;
    return n + 1;
}

static void note_input_problem(extract_run *x, const extract_input *in, int rc)
{
    if (rc == WS_READ_TRUNCATED) x->st->inputs_truncated++;
    else x->st->inputs_corrupt++;
    if (!x->st->err[0]) snprintf(x->st->err, sizeof x->st->err, "%s", in->r.err);
}

static void input_advance(extract_run *x, extract_input *in)
{
    int rc = ws_reader_next(&in->r, &in->f);
    in->live = rc == WS_READ_OK;
    /* a segment still being written ends inside its last record: that is its end */
    if (rc != WS_READ_OK && rc != WS_READ_EOF) note_input_problem(x, in, rc);
}

static void open_inputs(extract_run *x, const char *const *paths)
{
    for (uint32_t i = 0; i < x->n_in; i++) {
        extract_input *in = &x->in[i];
        int rc = ws_reader_open(&in->r, paths[i]);
        if (rc != WS_READ_OK) {
            if (rc == WS_READ_IO) {
                x->st->inputs_unreadable++;
                if (!x->st->err[0]) snprintf(x->st->err, sizeof x->st->err, "%.120s: %.120s", paths[i], in->r.err);
            } else {
                note_input_problem(x, in, rc);
            }
            ws_reader_close(&in->r);
            in->live = 0;
            continue;
        }
        input_advance(x, in);
    }
}

static void close_inputs(extract_run *x)
{
    for (uint32_t i = 0; i < x->n_in; i++) {
        if (x->in[i].r.fd >= 0 || x->in[i].r.map || x->in[i].r.buf) ws_reader_close(&x->in[i].r);
        x->in[i].live = 0;
    }
}

/* The input whose next frame is the earliest, or -1 when all are done. */
static int earliest_input(const extract_run *x)
{
    int best = -1;
    for (uint32_t i = 0; i < x->n_in; i++) {
        if (x->in[i].live && (best < 0 || x->in[i].f.ts_ns < x->in[best].f.ts_ns)) best = (int)i;
    }
    return best;
}

static int endpoint_eq(const ws_endpoint *e, const ws_addr *a, uint16_t port)
{
    return e->port == port && !memcmp(e->addr.b, a->b, 16);
}

/* RTP at the SDP port, RTCP at port + 1 or the same port (rtcp-mux). */
static int media_match(const ws_extract_call *c, const ws_l4 *l)
{
    for (uint32_t i = 0; i < c->n_media; i++) {
        const ws_endpoint *e = &c->media[i];
        if (!memcmp(e->addr.b, l->dst.b, 16) && (l->dport == e->port || l->dport == e->port + 1)) return 1;
        if (!memcmp(e->addr.b, l->src.b, 16) && (l->sport == e->port || l->sport == e->port + 1)) return 1;
    }
    return 0;
}

static int tcp_known(const ws_extract_call *c, const ws_l4 *l)
{
    for (uint32_t i = 0; i < c->n_tcp; i++) {
        const ws_endpoint *a = &c->tcp[i][0], *b = &c->tcp[i][1];
        if ((endpoint_eq(a, &l->src, l->sport) && endpoint_eq(b, &l->dst, l->dport)) ||
            (endpoint_eq(b, &l->src, l->sport) && endpoint_eq(a, &l->dst, l->dport)))
            return 1;
    }
    return 0;
}

/* The Call-ID as a whole header value: after ':' or blanks, before the line
 * end or blanks (not inside Replaces: or some other header's value). */
static int carries_call_id(const uint8_t *p, uint32_t n, const ws_extract_call *c)
{
    if (!c->call_id_len || n < c->call_id_len) return 0;
    const uint8_t *q = p, *end = p + n;
    while ((q = memmem(q, (size_t)(end - q), c->call_id, c->call_id_len))) {
        uint8_t before = q == p ? 0 : q[-1];
        uint8_t after = q + c->call_id_len < end ? q[c->call_id_len] : '\r';
        if ((before == ' ' || before == '\t' || before == ':') &&
            (after == '\r' || after == '\n' || after == ' ' || after == '\t'))
            return 1;
        q++;
    }
    return 0;
}

static void call_fail(ws_extract_call *c, const char *what, int e)
{
    snprintf(c->err, sizeof c->err, "%s: %s: %s", c->out_path, what, strerror(e));
    if (c->out) fclose((FILE *)c->out);
    c->out = NULL;
    c->state = WS_EXTRACT_FAILED;
}

static void call_finish(ws_extract_call *c)
{
    if (c->state != WS_EXTRACT_WRITING) return;
    FILE *fp = (FILE *)c->out;
    c->out = NULL;
    if (fclose(fp)) {
        call_fail(c, "close", errno);
        return;
    }
    c->state = WS_EXTRACT_DONE;
}

/* Returns 1 when the frame went into the call's file. */
static int write_frame(ws_extract_call *c, const ws_frame *f)
{
    if (c->state == WS_EXTRACT_FAILED || c->state == WS_EXTRACT_DONE) return 0;
    uint32_t caplen = f->caplen < EXTRACT_SNAPLEN ? f->caplen : EXTRACT_SNAPLEN;
    if (c->state == WS_EXTRACT_WAITING) {
        FILE *fp = fopen(c->out_path, "wbe");
        if (!fp) {
            call_fail(c, "cannot create", errno);
            return 0;
        }
        c->out = fp;
        c->state = WS_EXTRACT_WRITING;
        c->linktype = f->linktype;
        /* nanosecond pcap, native byte order, the frames' own link type */
        uint32_t hdr[6] = {0xa1b23c4du, 2u | (4u << 16), 0, 0, EXTRACT_SNAPLEN, f->linktype};
        if (fwrite(hdr, sizeof hdr, 1, fp) != 1) {
            call_fail(c, "write", errno);
            return 0;
        }
        c->bytes = sizeof hdr;
        c->first_ns = f->ts_ns;
    }
    if (f->linktype != c->linktype) {
        c->linktype_skipped++;
        return 0;
    }
    if (c->bytes + 16 + caplen > c->max_bytes) {
        c->frames_cut++;
        return 0;
    }
    int64_t ts = f->ts_ns < 0 ? 0 : f->ts_ns;
    uint32_t h[4] = {(uint32_t)(ts / 1000000000), (uint32_t)(ts % 1000000000), caplen, f->origlen};
    FILE *fp = (FILE *)c->out;
    if (fwrite(h, sizeof h, 1, fp) != 1 || (caplen && fwrite(f->data, caplen, 1, fp) != 1)) {
        call_fail(c, "write", errno);
        return 0;
    }
    c->bytes += 16 + caplen;
    if (ts > c->last_ns) c->last_ns = ts;
    return 1;
}

static void hold_fragment(extract_run *x, const ws_frame *f, const ws_l4 *l)
{
    held_fragment *h = &x->frags[x->frag_next];
    x->frag_next = (x->frag_next + 1) % FRAG_POOL;
    if (h->used) x->st->fragments_forgotten++; /* its datagram, if a call's, will lack it */
    h->used = 0;
    uint8_t *copy = realloc(h->copy, f->caplen ? f->caplen : 1);
    if (!copy) return;
    memcpy(copy, f->data, f->caplen);
    h->copy = copy;
    h->f = *f;
    h->f.data = copy;
    h->src = l->src;
    h->dst = l->dst;
    h->used = 1;
}

/* The datagram of l is whole: its held fragments go to the calls it matched
 * (in arrival order: the pool is a ring), then leave the pool. */
static void release_fragments(extract_run *x, const ws_l4 *l, ws_extract_call **matched, uint32_t n_matched)
{
    for (uint32_t k = 0; k < FRAG_POOL; k++) {
        held_fragment *h = &x->frags[(x->frag_next + k) % FRAG_POOL];
        if (!h->used || memcmp(h->src.b, l->src.b, 16) || memcmp(h->dst.b, l->dst.b, 16)) continue;
        for (uint32_t m = 0; m < n_matched; m++) {
            if (write_frame(matched[m], &h->f)) matched[m]->fragment_frames++;
        }
        h->used = 0;
    }
}

/* Moves the set of open windows to time ts. Closed windows are looked for
 * every EXPIRE_STEP_NS of capture time, not at every frame. */
static void update_active(extract_run *x, int64_t ts, int writing)
{
    while (x->next_start < x->n_calls && x->calls[x->order[x->next_start]].from_ns <= ts)
        x->active[x->n_active++] = x->order[x->next_start++];
    if (ts < x->expire_at) return;
    x->expire_at = ts + EXPIRE_STEP_NS;
    for (uint32_t i = 0; i < x->n_active;) {
        ws_extract_call *c = &x->calls[x->active[i]];
        if (c->to_ns < ts - WS_EXTRACT_REORDER_NS) {
            if (writing) call_finish(c);
            x->active[i] = x->active[--x->n_active];
        } else {
            i++;
        }
    }
}

static int cmp_start(const void *a, const void *b, void *calls)
{
    const ws_extract_call *c = calls;
    int64_t x = c[*(const uint32_t *)a].from_ns, y = c[*(const uint32_t *)b].from_ns;
    return x < y ? -1 : x > y;
}

/* Pass 0 finds the TCP connections that carried each call's Call-ID; pass 1
 * writes. */
static void run_pass(extract_run *x, const char *const *paths, int writing)
{
    ws_decoder_init(x->dec);
    x->n_active = 0;
    x->next_start = 0;
    x->expire_at = INT64_MIN;
    open_inputs(x, paths);
    ws_extract_call *matched[MAX_MATCHES];
    uint8_t kind[MAX_MATCHES];
    for (;;) {
        int i = earliest_input(x);
        if (i < 0) break;
        extract_input *in = &x->in[i];
        const ws_frame *f = &in->f;
        if (writing) x->st->frames_read++;
        update_active(x, f->ts_ns, writing);
        if (!x->n_active) {
            if (x->next_start == x->n_calls) break; /* every window has closed */
            input_advance(x, in);
            continue;
        }
        ws_l4 l;
        int rc = ws_decode(x->dec, f, &l);
        if (rc == WS_DEC_HELD && writing) hold_fragment(x, f, &l);
        if (rc == WS_DEC_L4) {
            uint32_t n_matched = 0;
            ws_sip_msg m;
            int sip = 0;
            if (l.proto == 17 && writing && l.payload_len && l.payload[0] >= 'A' && l.payload[0] <= 'Z')
                sip = ws_sip_parse(l.payload, l.payload_len, 1, NULL, &m) == WS_SIP_OK;
            int64_t ts = f->ts_ns;
            if (l.proto == 17 && sip && writing) {
                uint64_t key = call_id_key(l.payload + m.call_id.off, m.call_id.len);
                for (uint32_t pos = (uint32_t)key & x->index_mask; x->index[pos].key; pos = (pos + 1) & x->index_mask) {
                    ws_extract_call *c = &x->calls[x->index[pos].call];
                    if (x->index[pos].key == key && ts >= c->from_ns && ts <= c->to_ns &&
                        m.call_id.len == c->call_id_len && !memcmp(l.payload + m.call_id.off, c->call_id, c->call_id_len))
                        n_matched = add_match(matched, kind, n_matched, c, 1);
                }
            } else if (l.proto == 17 && writing) {
                /* RTP at the endpoint's port, RTCP at port + 1, either direction */
                const ws_addr *addrs[4] = {&l.dst, &l.dst, &l.src, &l.src};
                uint16_t ports[4] = {l.dport, (uint16_t)(l.dport - 1), l.sport, (uint16_t)(l.sport - 1)};
                for (int q = 0; q < 4; q++) {
                    uint64_t key = endpoint_key(addrs[q], ports[q]);
                    for (uint32_t pos = (uint32_t)key & x->index_mask; x->index[pos].key;
                         pos = (pos + 1) & x->index_mask) {
                        ws_extract_call *c = &x->calls[x->index[pos].call];
                        if (x->index[pos].key == key && ts >= c->from_ns && ts <= c->to_ns && media_match(c, &l))
                            n_matched = add_match(matched, kind, n_matched, c, 2);
                    }
                }
            } else if (l.proto == 6) {
                /* TCP signalling is rare next to media: the open windows are checked one by one */
                for (uint32_t a = 0; a < x->n_active; a++) {
                    ws_extract_call *c = &x->calls[x->active[a]];
                    if (ts < c->from_ns || ts > c->to_ns) continue;
                    if (!writing) {
                        if (c->n_tcp < WS_EXTRACT_MAX_TCP && !tcp_known(c, &l) &&
                            carries_call_id(l.payload, l.payload_len, c)) {
                            c->tcp[c->n_tcp][0] = (ws_endpoint){l.src, l.sport};
                            c->tcp[c->n_tcp][1] = (ws_endpoint){l.dst, l.dport};
                            c->n_tcp++;
                        }
                    } else if (tcp_known(c, &l)) {
                        n_matched = add_match(matched, kind, n_matched, c, 3);
                    }
                }
            }
            /* a reassembled datagram: its earlier fragments first, in capture order */
            if (l.reassembled && writing) release_fragments(x, &l, matched, n_matched);
            for (uint32_t k = 0; k < n_matched; k++) {
                ws_extract_call *c = matched[k];
                if (!write_frame(c, f)) continue;
                if (kind[k] == 1) c->sip_frames++;
                else if (kind[k] == 2) c->media_frames++;
                else c->tcp_frames++;
            }
        }
        input_advance(x, in);
    }
    close_inputs(x);
    ws_decoder_free(x->dec);
}

int ws_extract(const char *const *inputs, uint32_t n_inputs, ws_extract_call *calls, uint32_t n_calls,
               ws_extract_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    for (uint32_t i = 0; i < n_calls; i++) {
        ws_extract_call *c = &calls[i];
        c->state = WS_EXTRACT_WAITING;
        c->sip_frames = c->tcp_frames = c->media_frames = c->fragment_frames = 0;
        c->bytes = c->frames_cut = c->linktype_skipped = 0;
        c->first_ns = c->last_ns = 0;
        c->err[0] = 0;
        c->out = NULL;
        c->n_tcp = 0;
    }
    extract_run x;
    memset(&x, 0, sizeof x);
    x.n_in = n_inputs;
    x.calls = calls;
    x.n_calls = n_calls;
    x.st = stats;
    x.in = calloc(n_inputs ? n_inputs : 1, sizeof(extract_input));
    x.dec = malloc(sizeof(ws_decoder));
    x.order = malloc((n_calls ? n_calls : 1) * sizeof(uint32_t));
    x.active = malloc((n_calls ? n_calls : 1) * sizeof(uint32_t));
    int rc = -1;
    if (x.in && x.dec && x.order && x.active && !build_index(&x)) {
        for (uint32_t i = 0; i < n_inputs; i++) x.in[i].r.fd = -1;
        for (uint32_t i = 0; i < n_calls; i++) x.order[i] = i;
        qsort_r(x.order, n_calls, sizeof(uint32_t), cmp_start, calls);
        run_pass(&x, inputs, 0);
        run_pass(&x, inputs, 1);
        for (uint32_t i = 0; i < n_calls; i++) call_finish(&calls[i]);
        rc = 0;
    } else {
        snprintf(stats->err, sizeof stats->err, "out of memory");
    }
    for (uint32_t k = 0; k < FRAG_POOL; k++) free(x.frags[k].copy);
    free(x.in);
    free(x.dec);
    free(x.order);
    free(x.active);
    free(x.index);
    return rc;
}
