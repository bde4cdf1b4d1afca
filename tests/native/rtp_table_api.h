/* One interface to two builds of the RTP table (ext/rtp/ws_rtp.c): the
 * current one (prefix ws_new_, rtp_current.c) and the reference kept in
 * rtp_reference/ (prefix ws_ref_, rtp_reference.c), whose ws_rtp_table has
 * another layout. Both are rtp_table_api.c compiled against one build, so
 * tests/native/rtp_diff.c can drive them alike and compare what each
 * reports. Include after ws_rtp.h (either one: ws_pt_entry and
 * ws_stream_record are the same in both). */
#ifndef RTP_TABLE_API_H
#define RTP_TABLE_API_H

#include <stdint.h>

/* Every counter a table keeps, and the sizes of its tables. */
typedef struct rtp_counts {
    uint64_t active, used, index_count, evictions, expired;
    uint64_t bind_active, bind_used, bind_index_count, bind_dropped, bound_streams, latched, adopted;
    uint64_t rtcp_used, rtcp_packets, rtcp_malformed, rtcp_dropped, ended_count;
} rtp_counts;

#define RTP_TABLE_API(P)                                                                                           \
    void *P##table_new(uint32_t max_streams, uint32_t max_rtcp, int adopt_unbound);                               \
    void P##table_free(void *t);                                                                                   \
    int P##packet(void *t, const ws_flow_key *k5, int64_t ts_ns, const uint8_t *p, uint32_t n);                    \
    int P##packet_v4(void *t, uint32_t src_raw, uint32_t dst_raw, uint16_t sport, uint16_t dport, int64_t ts_ns, \
                     const uint8_t *p, uint32_t n);                                                                \
    int P##rtcp(void *t, const ws_flow_key *k5, int64_t ts_ns, const uint8_t *p, uint32_t n);                      \
    int P##bind(void *t, const ws_addr *addr, uint16_t port, uint32_t call_ref, const ws_pt_entry *pts,           \
                uint32_t npts, int64_t since_ns);                                                                  \
    void P##unbind(void *t, const ws_addr *addr, uint16_t port, uint32_t call_ref);                               \
    void P##sweep(void *t);                                                                                        \
    void P##expire(void *t, int64_t now_ns, int64_t idle_ns);                                                     \
    void P##set_payload_type(void *t, uint8_t pt, uint32_t clock_rate, uint8_t kind);                             \
    uint32_t P##snapshot(void *t, ws_stream_record *out, uint32_t max);                                           \
    uint32_t P##take_ended(void *t, ws_stream_record *out, uint32_t max);                                         \
    void P##counts(void *t, rtp_counts *c);

RTP_TABLE_API(ws_new_)
RTP_TABLE_API(ws_ref_)

#endif
