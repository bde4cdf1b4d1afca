/* What SIP correlation costs the RTP rate when no Python is involved at all:
 * the floor under issue 3's "RTP rate drops <= 10 % with correlation on".
 *
 *     gcc -O3 -std=c11 -fno-strict-aliasing -Iext -o correlation_floor \
 *         benchmarks/correlation_floor.c -lm
 *     ./correlation_floor capture.pcap MODE [rounds]
 *
 * MODE
 *   off        SIP not looked for: the engine as `replay --streams-only` runs it
 *   engine     SIP spotted and copied out by the engine, the batches thrown away
 *   correlate  every UDP SIP message scanned (ws_sip_parse) and fed to a minimal
 *              dialog table in C; every SDP body scanned (ws_sdp_parse) and its
 *              RTP m= lines bound to the call (ws_rtp_bind), as the Cython
 *              tracker binds them
 *
 * The minimal correlator is the least any correlator must do for issue 3's
 * KPIs and binding: a Call-ID hash table (open addressing, the Call-ID kept
 * for comparison), transaction keys for retransmissions (a few per dialog),
 * INVITE -> 18x (PDD) -> 2xx (answer) -> BYE -> BYE 2xx (finished) and
 * 3xx-6xx (failed), per-call sums in one label set. No number analysis, no
 * business labels, no timers, no media join or E-model per call, no CDR: the
 * product's per-call work on top of this is what benchmarks.correlation_parts
 * takes apart. Prints one JSON line: the best round's CPU and what was seen
 * (calls finished, bindings made), so the modes can be checked against each
 * other and against the generator's truth. Run by python -m
 * benchmarks.correlation_floor, which alternates the modes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <string.h>

#include "ws_engine_all.c"
#include "cpu_clock.h"

#define DIALOG_SLOTS (1u << 16) /* power of two, > twice the open dialogs of any benchmark capture */
#define CALL_ID_MAX 128
#define KEYS_PER_DIALOG 8

typedef enum { SLOT_EMPTY = 0, SLOT_USED, SLOT_DELETED } slot_state;

typedef struct dialog {
    uint8_t state; /* slot_state */
    uint8_t cid_len;
    uint8_t answered, ended, nkeys;
    uint32_t call_ref;
    uint64_t hash;
    int64_t invite_ns, pdd_ns, answer_ns, end_ns;
    uint32_t invite_cseq;
    uint64_t keys[KEYS_PER_DIALOG];
    char cid[CALL_ID_MAX];
} dialog;

typedef struct correlator {
    dialog *slots;
    uint32_t open, next_ref;
    uint64_t messages, parse_errors, retransmissions, attempts, answered, failed, finished, binds;
    double pdd_ms_sum, duration_s_sum;
} correlator;

static ws_sdp sdp_scan; /* one body's scan */

static uint64_t fnv(uint64_t h, const uint8_t *p, uint32_t n)
{
    h = (h ^ n) * 1099511628211ULL;
    for (uint32_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static dialog *find(correlator *c, const uint8_t *cid, uint32_t n, uint64_t h, int create)
{
    uint32_t i = (uint32_t)h & (DIALOG_SLOTS - 1);
    dialog *tomb = NULL;
    for (;;) {
        dialog *d = &c->slots[i];
        if (d->state == SLOT_EMPTY) {
            if (!create) return NULL;
            d = tomb ? tomb : d;
            memset(d, 0, offsetof(dialog, cid));
            d->state = SLOT_USED;
            d->hash = h;
            d->cid_len = (uint8_t)n;
            memcpy(d->cid, cid, n);
            d->call_ref = c->next_ref++;
            c->open++;
            return d;
        }
        if (d->state == SLOT_DELETED) {
            if (!tomb) tomb = d;
        } else if (d->hash == h && d->cid_len == n && memcmp(d->cid, cid, n) == 0) {
            return d;
        }
        i = (i + 1) & (DIALOG_SLOTS - 1);
    }
}

static void finish(correlator *c, dialog *d)
{
    c->finished++;
    if (d->answered && d->end_ns) c->duration_s_sum += (d->end_ns - d->answer_ns) / 1e9;
    d->state = SLOT_DELETED;
    c->open--;
}

/* was this transaction seen in this dialog? (remembers it if not) */
static int seen(dialog *d, uint64_t key)
{
    for (uint32_t i = 0; i < d->nkeys; i++)
        if (d->keys[i] == key) return 1;
    d->keys[d->nkeys++ % KEYS_PER_DIALOG] = key;
    if (d->nkeys > KEYS_PER_DIALOG) d->nkeys = KEYS_PER_DIALOG;
    return 0;
}

static void bind_sdp(correlator *c, ws_engine *e, dialog *d, const uint8_t *body, uint32_t n)
{
    ws_sdp *s = &sdp_scan;
    if (ws_sdp_parse(body, n, s) != WS_SDP_OK) return;
    for (uint32_t i = 0; i < s->n_media; i++) {
        ws_sdp_media *md = &s->media[i];
        ws_sdp_conn *conn = md->conn.state == WS_SDP_CONN_VALID ? &md->conn
                            : s->conn.state == WS_SDP_CONN_VALID ? &s->conn : NULL;
        if (!conn || md->port == 0 || md->port > 0xFFFF) continue;
        ws_pt_entry pts[WS_BIND_PTS];
        uint32_t npts = 0;
        for (uint32_t k = md->first_format; k < md->first_format + md->n_formats; k++) {
            ws_sdp_format *f = &s->formats[k];
            if (!f->numeric || f->value > 0x7F) continue;
            for (uint32_t j = md->first_rtpmap; j < md->first_rtpmap + md->n_rtpmap; j++) {
                ws_sdp_rtpmap *r = &s->rtpmap[j];
                if (r->pt != f->value || !r->clock || npts == WS_BIND_PTS) continue;
                int event = r->encoding.len == 15 && memcmp(body + r->encoding.off, "telephone-event", 15) == 0;
                pts[npts++] = (ws_pt_entry){(uint8_t)f->value, event ? WS_PT_EVENT : WS_PT_AUDIO, 0, r->clock};
            }
        }
        if (ws_rtp_bind(&e->rtp, &conn->addr, (uint16_t)md->port, d->call_ref, pts, npts, d->invite_ns) == 0)
            c->binds++;
    }
}

static void message(correlator *c, ws_engine *e, const ws_sig_record *r, const uint8_t *p)
{
    ws_sip_msg m;
    c->messages++;
    if (ws_sip_parse(p, r->length, 1, NULL, &m) != WS_SIP_OK) {
        c->parse_errors++;
        return;
    }
    const uint8_t *cid = p + m.call_id.off;
    uint32_t cid_len = m.call_id.len < CALL_ID_MAX ? m.call_id.len : CALL_ID_MAX - 1;
    uint64_t h = fnv(14695981039346656037ULL, cid, cid_len);
    int initial = m.is_request && m.method == WS_SIP_INVITE && m.to_tag.len == 0;
    dialog *d = find(c, cid, cid_len, h, initial);
    if (!d) return;
    uint64_t key = fnv(fnv(h, p + m.via_branch.off, m.via_branch.len), (const uint8_t *)&m.cseq, 4);
    key = m.is_request ? fnv(key, &m.method, 1) : fnv(fnv(key, &m.cseq_method, 1), (const uint8_t *)&m.code, 2);
    if (seen(d, key)) {
        c->retransmissions++;
        return;
    }
    int sdp = m.body.len && m.body.off + m.body.len <= r->length;
    if (m.is_request) {
        if (initial && !d->invite_ns) {
            d->invite_ns = r->ts_ns;
            d->invite_cseq = m.cseq;
            c->attempts++;
        } else if (m.method == WS_SIP_BYE && !d->ended) {
            d->ended = 1;
            d->end_ns = r->ts_ns;
        }
    } else if (m.cseq_method == WS_SIP_INVITE && m.cseq == d->invite_cseq && !d->answered) {
        if (m.code >= 180 && m.code <= 183 && !d->pdd_ns) {
            d->pdd_ns = r->ts_ns;
            c->pdd_ms_sum += (r->ts_ns - d->invite_ns) / 1e6;
        } else if (m.code >= 200 && m.code < 300) {
            d->answered = 1;
            d->answer_ns = r->ts_ns;
            c->answered++;
            if (!d->pdd_ns) {
                d->pdd_ns = r->ts_ns;
                c->pdd_ms_sum += (r->ts_ns - d->invite_ns) / 1e6;
            }
        } else if (m.code >= 300 && m.code != 401 && m.code != 407) {
            c->failed++;
            finish(c, d);
            return;
        }
    } else if (m.cseq_method == WS_SIP_BYE && m.code >= 200 && d->ended) {
        finish(c, d);
        return;
    }
    if (sdp) bind_sdp(c, e, d, p + m.body.off, m.body.len);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: correlation_floor capture.pcap off|engine|correlate [rounds]\n");
        return 2;
    }
    const char *mode = argv[2];
    int sip = strcmp(mode, "off") != 0, correlate = strcmp(mode, "correlate") == 0;
    if (!sip + !strcmp(mode, "engine") + correlate != 1) {
        fprintf(stderr, "correlation_floor: unknown mode %s\n", mode);
        return 2;
    }
    int rounds = argc > 3 ? atoi(argv[3]) : 1;
    static ws_engine e;
    correlator c;
    dialog *slots = calloc(DIALOG_SLOTS, sizeof(dialog));
    if (!slots) return 1;
    double best = 1e9;
    for (int round = 0; round < rounds; round++) {
        ws_reader r;
        if (ws_engine_init(&e, 200000)) return 1;
        if (!sip) {
            ws_engine_set_sip_port(&e, 5060, 0);
            e.sip_by_content = 0;
        }
        memset(slots, 0, DIALOG_SLOTS * sizeof(dialog));
        memset(&c, 0, sizeof c);
        c.slots = slots;
        c.next_ref = 1;
        double t0 = cpu_seconds();
        if (ws_reader_open(&r, argv[1]) != WS_READ_OK) {
            fprintf(stderr, "%s: %s\n", argv[1], r.err);
            return 1;
        }
        for (;;) {
            int rc = ws_engine_run(&e, &r, 1u << 20);
            if (rc == WS_RUN_BUDGET) continue;
            if (rc == WS_RUN_SIGNALLING || rc == WS_RUN_TICK || rc == WS_RUN_EOF) {
                if (correlate)
                    for (uint32_t i = 0; i < e.sig_count; i++)
                        if (e.sig[i].kind == WS_SIG_UDP) message(&c, &e, &e.sig[i], e.sig_arena + e.sig[i].offset);
                ws_engine_sig_reset(&e);
                if (rc == WS_RUN_EOF) break;
            } else if (rc == WS_RUN_ENDED) {
                e.rtp.ended_count = 0;
            } else if (rc < 0) {
                fprintf(stderr, "%s: %s\n", argv[1], r.err);
                return 1;
            }
        }
        ws_reader_close(&r);
        double t = cpu_seconds() - t0;
        if (t < best) best = t;
        if (round == rounds - 1)
            printf("{\"mode\": \"%s\", \"best_cpu_ms\": %.3f, \"rounds\": %d, \"frames\": %llu, \"rtp_packets\": %llu, "
                   "\"sip_messages\": %llu, \"parse_errors\": %llu, \"retransmissions\": %llu, \"attempts\": %llu, "
                   "\"answered\": %llu, \"failed\": %llu, \"finished\": %llu, \"binds\": %llu, "
                   "\"bound_streams\": %llu, \"pdd_ms_sum\": %.3f, \"duration_s_sum\": %.3f}\n",
                   mode, best * 1e3, rounds, (unsigned long long)e.c.frames,
                   (unsigned long long)e.c.rtp_packets, (unsigned long long)c.messages,
                   (unsigned long long)c.parse_errors, (unsigned long long)c.retransmissions,
                   (unsigned long long)c.attempts, (unsigned long long)c.answered, (unsigned long long)c.failed,
                   (unsigned long long)c.finished, (unsigned long long)c.binds,
                   (unsigned long long)e.rtp.bound_streams, c.pdd_ms_sum, c.duration_s_sum);
        ws_engine_free(&e);
    }
    return 0;
}
