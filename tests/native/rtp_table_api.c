/* rtp_table_api.h over the ws_rtp.c the including file compiled (see
 * rtp_current.c, rtp_reference.c), its functions named with RTP_API_PREFIX. */
#include <stdlib.h>

#include "rtp_table_api.h"

#define RTP_API_CAT2(a, b) a##b
#define RTP_API_CAT(a, b) RTP_API_CAT2(a, b)
#define API(name) RTP_API_CAT(RTP_API_PREFIX, name)

void *API(table_new)(uint32_t max_streams, uint32_t max_rtcp, int adopt_unbound)
{
    ws_rtp_table *t = calloc(1, sizeof *t);
    if (!t || ws_rtp_table_init(t, max_streams, max_rtcp)) abort();
    t->adopt_unbound = (uint8_t)adopt_unbound;
    return t;
}

void API(table_free)(void *t)
{
    ws_rtp_table_free(t);
    free(t);
}

int API(packet)(void *t, const ws_flow_key *k5, int64_t ts_ns, const uint8_t *p, uint32_t n)
{
    return ws_rtp_packet(t, k5, ts_ns, p, n);
}

int API(packet_v4)(void *t, uint32_t src_raw, uint32_t dst_raw, uint16_t sport, uint16_t dport, int64_t ts_ns,
                   const uint8_t *p, uint32_t n)
{
    return ws_rtp_packet_v4(t, src_raw, dst_raw, sport, dport, ts_ns, p, n);
}

int API(rtcp)(void *t, const ws_flow_key *k5, int64_t ts_ns, const uint8_t *p, uint32_t n)
{
    return ws_rtcp_packet(t, k5, ts_ns, p, n);
}

int API(bind)(void *t, const ws_addr *addr, uint16_t port, uint32_t call_ref, const ws_pt_entry *pts, uint32_t npts,
              int64_t since_ns)
{
    return ws_rtp_bind(t, addr, port, call_ref, pts, npts, since_ns);
}

void API(unbind)(void *t, const ws_addr *addr, uint16_t port, uint32_t call_ref)
{
    ws_rtp_unbind(t, addr, port, call_ref);
}

void API(sweep)(void *t) { ws_rtp_sweep_bindings(t); }

void API(expire)(void *t, int64_t now_ns, int64_t idle_ns) { ws_rtp_expire(t, now_ns, idle_ns); }

/* as Engine.set_payload_type writes it */
void API(set_payload_type)(void *t, uint8_t pt, uint32_t clock_rate, uint8_t kind)
{
    ws_rtp_table *tab = t;
    tab->pt_map[pt & 127].clock_rate = clock_rate;
    tab->pt_map[pt & 127].kind = kind;
}

uint32_t API(snapshot)(void *t, ws_stream_record *out, uint32_t max) { return ws_rtp_snapshot(t, out, max, 0); }

uint32_t API(take_ended)(void *t, ws_stream_record *out, uint32_t max)
{
    ws_rtp_table *tab = t;
    uint32_t n = tab->ended_count < max ? tab->ended_count : max;
    if (n) memcpy(out, tab->ended, (size_t)n * sizeof *out);
    tab->ended_count = 0;
    return n;
}

void API(counts)(void *t, rtp_counts *c)
{
    const ws_rtp_table *tab = t;
    rtp_counts x = {tab->active, tab->used, tab->index.count, tab->evictions, tab->expired,
                    tab->bind_active, tab->bind_used, tab->bind_index.count, tab->bind_dropped, tab->bound_streams,
                    tab->latched, tab->adopted, tab->rtcp_used, tab->rtcp_packets, tab->rtcp_malformed,
                    tab->rtcp_dropped, tab->ended_count};
    *c = x;
}
