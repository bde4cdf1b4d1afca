/* The RTP table (ext/rtp/ws_rtp.c) held against its reference
 * (rtp_reference.c): seeded random scenarios drive both builds alike, and
 * after every step each must report the same stream records (active and
 * ended, byte for byte), counters and return codes.
 *
 * A scenario is a few endpoints and flows between them (some the reverse of
 * others, so media latches) and a few thousand steps: RTP packets (in order,
 * lost, repeated, late, jumping, restarting; voice, telephone-event, comfort
 * noise and other payload types; through ws_rtp_packet or ws_rtp_packet_v4),
 * RTCP, SDP bindings made, re-made for the same or another call, released
 * (by the right call or not), latched bindings swept, idle streams expired,
 * the payload type map changed; with a table large or small enough to evict,
 * adoption on or off.
 *
 * Usage: rtp_diff [--scenarios N] [--steps K] [--seed S]
 * Prints one JSON line of counts; the first difference with its scenario,
 * step and what differs. Exit 0: none differ; 1: some do. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ext/rtp/ws_rtp.h"
#include "rtp_table_api.h"
#include "seeded.h"

#define ENDPOINTS 8
#define FLOWS 24
#define MAX_RECORDS 4096


typedef struct endpoint {
    ws_addr addr;
    uint16_t port;
    int v4;
} endpoint;

typedef struct flow {
    int src, dst; /* endpoints */
    uint32_t ssrc;
    uint16_t seq;
    uint32_t ts;
    uint8_t voice_pt;
} flow;

static struct {
    unsigned long scenarios, steps, packets, rtcp, binds, unbinds, sweeps, expiries, pt_changes;
    unsigned long ended, ended_rebound, unbound_by_release, bound_seen, differences;
} count;

static ws_stream_record ref_recs[MAX_RECORDS], new_recs[MAX_RECORDS];

static int report(unsigned long scenario, unsigned long step, const char *op, const char *what)
{
    count.differences++;
    if (count.differences <= 5)
        printf("DIFFERENCE scenario %lu step %lu after %s: %s\n", scenario, step, op, what);
    return 1;
}

static int same_records(uint32_t n_ref, uint32_t n_new, char *why, size_t cap)
{
    if (n_ref != n_new) {
        snprintf(why, cap, "%u records, reference %u", n_new, n_ref);
        return 0;
    }
    for (uint32_t i = 0; i < n_ref; i++) {
        if (memcmp(&ref_recs[i], &new_recs[i], sizeof ref_recs[i])) {
            for (size_t f = 0; f < ws_stream_record_nfields; f++) {
                const ws_field_desc *d = &ws_stream_record_fields[f];
                size_t next = f + 1 < ws_stream_record_nfields ? ws_stream_record_fields[f + 1].offset : sizeof(ws_stream_record);
                if (memcmp((const uint8_t *)&ref_recs[i] + d->offset, (const uint8_t *)&new_recs[i] + d->offset, next - d->offset)) {
                    snprintf(why, cap, "record %u (ssrc %u): field %s", i, ref_recs[i].ssrc, d->name);
                    return 0;
                }
            }
            snprintf(why, cap, "record %u: padding", i);
            return 0;
        }
    }
    return 1;
}

/* the key of src -> dst, its SSRC left for the table to read from the packet */
static ws_flow_key flow_key(const endpoint *src, const endpoint *dst)
{
    ws_flow_key k;
    memset(&k, 0, sizeof k);
    k.src = src->addr, k.dst = dst->addr, k.sport = src->port, k.dport = dst->port;
    return k;
}

static void make_rtp(uint8_t *p, uint8_t pt, int marker, uint16_t seq, uint32_t ts, uint32_t ssrc)
{
    p[0] = 0x80;
    p[1] = (uint8_t)(pt | (marker ? 0x80 : 0));
    p[2] = (uint8_t)(seq >> 8), p[3] = (uint8_t)seq;
    p[4] = (uint8_t)(ts >> 24), p[5] = (uint8_t)(ts >> 16), p[6] = (uint8_t)(ts >> 8), p[7] = (uint8_t)ts;
    p[8] = (uint8_t)(ssrc >> 24), p[9] = (uint8_t)(ssrc >> 16), p[10] = (uint8_t)(ssrc >> 8), p[11] = (uint8_t)ssrc;
}

static uint8_t random_pt(const flow *f)
{
    static const uint8_t others[] = {0, 8, 9, 13, 18, 19, 96, 97, 100, 101, 110, 127};
    uint32_t r = below(100);
    if (r < 82) return f->voice_pt;
    if (r < 90) return 101;
    if (r < 94) return 13;
    return others[below(sizeof others)];
}

static int run_scenario(unsigned long scenario, unsigned long steps)
{
    endpoint ep[ENDPOINTS];
    flow fl[FLOWS];
    for (int i = 0; i < ENDPOINTS; i++) {
        memset(&ep[i].addr, 0, sizeof ep[i].addr);
        ep[i].v4 = i < ENDPOINTS - 1; /* the last one IPv6 */
        if (ep[i].v4) {
            uint8_t v4[4] = {192, 0, 2, (uint8_t)(1 + below(4))}; /* few hosts: ports tell endpoints apart */
            ws_addr_set_v4(&ep[i].addr, v4);
        } else {
            ep[i].addr.b[0] = 0x20, ep[i].addr.b[1] = 0x01, ep[i].addr.b[2] = 0x0d, ep[i].addr.b[3] = 0xb8;
            ep[i].addr.b[15] = 1;
        }
        ep[i].port = (uint16_t)(4000 + 2 * below(6));
    }
    for (int i = 0; i < FLOWS; i++) {
        if (i % 3 == 1) { /* the reverse of the flow before */
            fl[i].src = fl[i - 1].dst;
            fl[i].dst = fl[i - 1].src;
        } else {
            fl[i].src = (int)below(ENDPOINTS);
            fl[i].dst = (int)below(ENDPOINTS);
        }
        fl[i].ssrc = below(4) ? (uint32_t)rnd() : (uint32_t)below(3); /* some SSRCs shared */
        fl[i].seq = (uint16_t)rnd();
        fl[i].ts = (uint32_t)rnd();
        fl[i].voice_pt = (uint8_t[]){0, 8, 96, 18}[below(4)];
    }
    static const uint32_t MAX_STREAMS[] = {3, 8, 16, 1u << 16};
    uint32_t max_streams = MAX_STREAMS[below(4)];
    int adopt = (int)below(2);
    void *ref = ws_ref_table_new(max_streams, max_streams, adopt), *cur = ws_new_table_new(max_streams, max_streams, adopt);
    static const ws_pt_entry PTS[] = {
        {0, WS_PT_AUDIO, 0, 8000}, {8, WS_PT_AUDIO, 0, 8000},  {96, WS_PT_AUDIO, 0, 16000}, {101, WS_PT_EVENT, 0, 8000},
        {13, WS_PT_CN, 0, 8000},   {96, WS_PT_VIDEO, 0, 90000}, {18, WS_PT_AUDIO, 0, 0},    {97, WS_PT_UNKNOWN, 0, 48000},
    };
    int64_t now = 1700000000000000000ll + (int64_t)below(1000) * 1000000;
    int failed = 0;
    rtp_counts cr, cn;
    uint8_t pkt[256] = {0};
    for (unsigned long step = 0; step < steps && !failed; step++) {
        char op[160];
        int rr = 0, rn = 0;
        uint32_t r = below(1000);
        now += below(20) ? (int64_t)below(25000000) : (int64_t)below(4000000000u);
        if (r < 800) { /* an RTP packet */
            flow *f = &fl[below(FLOWS)];
            uint32_t kind = below(100);
            if (kind < 80) f->seq++;
            else if (kind < 86) f->seq = (uint16_t)(f->seq + 2 + below(40));
            else if (kind < 90) ; /* repeated */
            else if (kind < 95) f->seq = (uint16_t)(f->seq - 1 - below(6));
            else if (kind < 98) f->seq = (uint16_t)(f->seq + 3000 + below(60000));
            else f->seq = (uint16_t)rnd();
            f->ts += below(10) ? 160 : (uint32_t)rnd() % 100000;
            uint8_t pt = random_pt(f);
            uint32_t n = 12 + below(200);
            make_rtp(pkt, pt, below(50) == 0, f->seq, f->ts, f->ssrc);
            const endpoint *s = &ep[f->src], *d = &ep[f->dst];
            if (s->v4 && d->v4 && below(2)) {
                rr = ws_ref_packet_v4(ref, ws_load32(s->addr.b + 12), ws_load32(d->addr.b + 12), s->port, d->port, now, pkt, n);
                rn = ws_new_packet_v4(cur, ws_load32(s->addr.b + 12), ws_load32(d->addr.b + 12), s->port, d->port, now, pkt, n);
            } else {
                ws_flow_key k = flow_key(s, d);
                rr = ws_ref_packet(ref, &k, now, pkt, n);
                rn = ws_new_packet(cur, &k, now, pkt, n);
            }
            snprintf(op, sizeof op, "packet pt %u seq %u of flow %ld", pt, f->seq, (long)(f - fl));
            count.packets++;
        } else if (r < 810) { /* RTCP: a receiver report */
            flow *f = &fl[below(FLOWS)];
            uint8_t rtcp[32] = {0x81, 201, 0, 7};
            memcpy(rtcp + 4, pkt + 8, 4);
            for (int i = 8; i < 32; i++) rtcp[i] = (uint8_t)rnd();
            ws_flow_key k = flow_key(&ep[f->src], &ep[f->dst]);
            rr = ws_ref_rtcp(ref, &k, now, rtcp, 32);
            rn = ws_new_rtcp(cur, &k, now, rtcp, 32);
            snprintf(op, sizeof op, "rtcp");
            count.rtcp++;
        } else if (r < 900) { /* an SDP binding, new or made again */
            const endpoint *d = below(4) ? &ep[fl[below(FLOWS)].dst] : &ep[below(ENDPOINTS)];
            uint32_t call = 1 + below(6), npts = below(5);
            ws_pt_entry pts[8];
            for (uint32_t i = 0; i < npts; i++) pts[i] = PTS[below(8)];
            int64_t since = now - (int64_t)below(3) * 1000000000ll + (below(8) ? 0 : 2000000000ll);
            rr = ws_ref_bind(ref, &d->addr, d->port, call, pts, npts, since);
            rn = ws_new_bind(cur, &d->addr, d->port, call, pts, npts, since);
            snprintf(op, sizeof op, "bind port %u to call %u (%u payload types)", d->port, call, npts);
            count.binds++;
        } else if (r < 960) { /* released, by its call or another */
            const endpoint *d = &ep[below(ENDPOINTS)];
            uint32_t call = 1 + below(6);
            ws_ref_unbind(ref, &d->addr, d->port, call);
            ws_new_unbind(cur, &d->addr, d->port, call);
            snprintf(op, sizeof op, "unbind port %u of call %u", d->port, call);
            count.unbinds++;
        } else if (r < 975) {
            ws_ref_sweep(ref);
            ws_new_sweep(cur);
            snprintf(op, sizeof op, "sweep");
            count.sweeps++;
        } else if (r < 990) {
            int64_t idle = (int64_t)(1 + below(4)) * 500000000ll;
            ws_ref_expire(ref, now, idle);
            ws_new_expire(cur, now, idle);
            snprintf(op, sizeof op, "expire");
            count.expiries++;
        } else {
            uint8_t pt = (uint8_t)(below(2) ? 96 + below(8) : below(128));
            uint32_t clock = (uint32_t[]){0, 8000, 16000, 48000}[below(4)];
            uint8_t kind = (uint8_t)below(5);
            ws_ref_set_payload_type(ref, pt, clock, kind);
            ws_new_set_payload_type(cur, pt, clock, kind);
            snprintf(op, sizeof op, "payload type %u -> %u", pt, clock);
            count.pt_changes++;
        }
        count.steps++;
        char why[200];
        if (rr != rn) {
            snprintf(why, sizeof why, "returned %d, reference %d", rn, rr);
            failed = report(scenario, step, op, why);
            break;
        }
        ws_ref_counts(ref, &cr);
        ws_new_counts(cur, &cn);
        if (memcmp(&cr, &cn, sizeof cr)) {
            const uint64_t *a = (const uint64_t *)&cr, *b = (const uint64_t *)&cn;
            size_t i = 0;
            while (a[i] == b[i]) i++;
            snprintf(why, sizeof why, "counter %zu is %llu, reference %llu", i, (unsigned long long)b[i],
                     (unsigned long long)a[i]);
            failed = report(scenario, step, op, why);
            break;
        }
        uint32_t er = ws_ref_take_ended(ref, ref_recs, MAX_RECORDS), en = ws_new_take_ended(cur, new_recs, MAX_RECORDS);
        if (!same_records(er, en, why, sizeof why)) {
            failed = report(scenario, step, op, "ended streams differ");
            printf("  %s\n", why);
            break;
        }
        for (uint32_t i = 0; i < en; i++) {
            count.ended++;
            count.ended_rebound += new_recs[i].end_reason == WS_END_REBOUND;
        }
        uint32_t sr = ws_ref_snapshot(ref, ref_recs, MAX_RECORDS), sn = ws_new_snapshot(cur, new_recs, MAX_RECORDS);
        if (!same_records(sr, sn, why, sizeof why)) {
            failed = report(scenario, step, op, "streams differ");
            printf("  %s\n", why);
            break;
        }
        for (uint32_t i = 0; i < sn; i++) {
            count.bound_seen += (new_recs[i].flags & WS_STREAM_BOUND) != 0;
            count.unbound_by_release += new_recs[i].call_ref && !(new_recs[i].flags & WS_STREAM_BOUND);
        }
    }
    ws_ref_table_free(ref);
    ws_new_table_free(cur);
    count.scenarios++;
    return failed;
}

int main(int argc, char **argv)
{
    unsigned long scenarios = 300, steps = 3000;
    uint64_t seed = 20251128;
    for (int a = 1; a + 1 < argc; a += 2) {
        if (!strcmp(argv[a], "--scenarios")) scenarios = strtoul(argv[a + 1], NULL, 10);
        else if (!strcmp(argv[a], "--steps")) steps = strtoul(argv[a + 1], NULL, 10);
        else if (!strcmp(argv[a], "--seed")) seed = strtoull(argv[a + 1], NULL, 10);
    }
    for (unsigned long s = 0; s < scenarios; s++) {
        rng_seed(seed + s);
        run_scenario(s, steps);
    }
    printf("{\"scenarios\": %lu, \"steps\": %lu, \"packets\": %lu, \"rtcp\": %lu, \"binds\": %lu, \"unbinds\": %lu, "
           "\"sweeps\": %lu, \"expiries\": %lu, \"pt_changes\": %lu, \"ended\": %lu, \"ended_rebound\": %lu, "
           "\"bound_seen\": %lu, \"unbound_by_release\": %lu, \"differences\": %lu}\n",
           count.scenarios, count.steps, count.packets, count.rtcp, count.binds, count.unbinds, count.sweeps,
           count.expiries, count.pt_changes, count.ended, count.ended_rebound, count.bound_seen,
           count.unbound_by_release, count.differences);
    return count.differences ? 1 : 0;
}
