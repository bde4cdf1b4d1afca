/* Stream records of chosen calls only: what the per-second media join needs,
 * without copying the whole table (ws_rtp_snapshot) once per capture second.
 * Kept apart from ws_rtp.c (the per-packet path); reads the table through
 * the same fields and record conversion ws_rtp_snapshot uses. */
#include <stdlib.h>
#include <string.h>

#include "ws_rtp_select.h"

#include <math.h>

/* Where ref is, or would be, in refs (sorted ascending). */
static uint32_t ref_index(uint32_t ref, const uint32_t *refs, uint32_t nrefs)
{
    uint32_t lo = 0, hi = nrefs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (refs[mid] < ref) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The refs asked for, as a bit per call_ref over [lo, lo + span): a join asks
 * for the calls finishing in one capture second, whose refs lie close
 * together, and every slot of the table is tested against them. A span too
 * wide for the bits falls back to a binary search of refs. */
#define REF_SET_FEW_WORDS 64          /* 4,096 refs' span on the stack */
#define REF_SET_MAX_SPAN (1u << 24)   /* 2 MiB of bits at most */

typedef struct ref_set {
    const uint32_t *refs;
    uint32_t nrefs, lo, span;
    uint64_t *bits;                   /* NULL: binary search */
    uint64_t few[REF_SET_FEW_WORDS];
} ref_set;

static void ref_set_init(ref_set *s, const uint32_t *refs, uint32_t nrefs)
{
    s->refs = refs;
    s->nrefs = nrefs;
    s->bits = NULL;
    s->lo = refs[0];
    s->span = refs[nrefs - 1] - refs[0] + 1;
    if (s->span <= 64u * REF_SET_FEW_WORDS) {
        s->bits = s->few;
        memset(s->few, 0, ((s->span + 63) / 64) * sizeof(uint64_t));
    } else if (s->span <= REF_SET_MAX_SPAN) {
        s->bits = calloc((s->span + 63) / 64, sizeof(uint64_t));
    }
    if (!s->bits) return;
    for (uint32_t i = 0; i < nrefs; i++) {
        uint32_t d = refs[i] - s->lo;
        s->bits[d >> 6] |= 1ull << (d & 63);
    }
}

static void ref_set_free(ref_set *s)
{
    if (s->bits && s->bits != s->few) free(s->bits);
}

static int ref_set_has(const ref_set *s, uint32_t ref)
{
    if (s->bits) {
        uint32_t d = ref - s->lo;   /* below lo wraps to a large d */
        return d < s->span && ((s->bits[d >> 6] >> (d & 63)) & 1);
    }
    uint32_t i = ref_index(ref, s->refs, s->nrefs);
    return i < s->nrefs && s->refs[i] == ref;
}

/* Slot i holds a live stream of one of the refs: the compact slot_calls
 * array says which call a slot's stream is bound to (0: free or unbound), so
 * the stream itself is read only for the calls asked for. */
static int selected(const ws_rtp_table *t, uint32_t i, const ref_set *want, int valid_only)
{
    uint32_t ref = t->slot_calls[i];
    if (!ref || !ref_set_has(want, ref)) return 0;
    return !valid_only || (t->streams[i].flags & WS_STREAM_VALID);
}

uint32_t ws_rtp_snapshot_calls(const ws_rtp_table *t, const uint32_t *refs, uint32_t nrefs,
                               ws_stream_record *out, uint32_t max, int valid_only)
{
    uint32_t n = 0;
    if (!nrefs) return 0;
    ref_set want;
    ref_set_init(&want, refs, nrefs);
    for (uint32_t i = 0; i < t->used && n < max; i++)
        if (selected(t, i, &want, valid_only)) ws_rtp_record(&t->streams[i], &out[n++]);
    ref_set_free(&want);
    return n;
}

uint32_t ws_rtp_count_calls(const ws_rtp_table *t, const uint32_t *refs, uint32_t nrefs, int valid_only)
{
    uint32_t n = 0;
    if (!nrefs) return 0;
    ref_set want;
    ref_set_init(&want, refs, nrefs);
    for (uint32_t i = 0; i < t->used; i++)
        n += (uint32_t)selected(t, i, &want, valid_only);
    ref_set_free(&want);
    return n;
}

uint32_t ws_rtp_last_of_calls(const ws_rtp_table *t, const uint32_t *refs, uint32_t nrefs, int64_t *last_ns)
{
    uint32_t found = 0;
    for (uint32_t j = 0; j < nrefs; j++) last_ns[j] = -1;
    if (!nrefs) return 0;
    ref_set want;
    ref_set_init(&want, refs, nrefs);
    for (uint32_t i = 0; i < t->used; i++) {
        if (!selected(t, i, &want, 1)) continue;
        const ws_rtp_stream *s = &t->streams[i];
        uint32_t j = ref_index(s->call_ref, refs, nrefs);
        if (last_ns[j] < 0) found++;
        if (s->last_ns > last_ns[j]) last_ns[j] = s->last_ns;
    }
    ref_set_free(&want);
    return found;
}

void ws_rtcp_round_trips(const ws_rtp_table *t, const uint32_t *ssrcs, uint32_t nssrcs, int64_t *arrival_ns,
                         double *rtt_ms)
{
    for (uint32_t j = 0; j < nssrcs; j++) {
        arrival_ns[j] = INT64_MIN;
        rtt_ms[j] = NAN;
    }
    if (!nssrcs) return;
    for (uint32_t i = 0; i < t->rtcp_used; i++) {
        const ws_rtcp_source *r = &t->rtcp[i];
        if (!r->has_report_block || !r->rtt_samples) continue;
        uint32_t j = ref_index(r->rb_ssrc, ssrcs, nssrcs);
        if (j == nssrcs || ssrcs[j] != r->rb_ssrc) continue;
        if (r->rb_arrival_ns >= arrival_ns[j]) {   /* on a tie, the later sender in table order */
            arrival_ns[j] = r->rb_arrival_ns;
            rtt_ms[j] = r->rtt_ms;
        }
    }
}
