#ifndef WS_RTP_SELECT_H
#define WS_RTP_SELECT_H
#include "ws_rtp.h"

/* Streams bound to one of `refs` (sorted ascending), as records, in table
 * order (the order ws_rtp_snapshot gives); at most `max`; with valid_only,
 * only streams that passed probation (as ws_rtp_snapshot's valid_only). */
uint32_t ws_rtp_snapshot_calls(const ws_rtp_table *t, const uint32_t *refs, uint32_t nrefs,
                               ws_stream_record *out, uint32_t max, int valid_only);
/* How many records ws_rtp_snapshot_calls would give. */
uint32_t ws_rtp_count_calls(const ws_rtp_table *t, const uint32_t *refs, uint32_t nrefs, int valid_only);
/* Latest packet time of the valid streams bound to each of `refs` (sorted
 * ascending) into last_ns[] (-1: none); returns how many refs have one. */
uint32_t ws_rtp_last_of_calls(const ws_rtp_table *t, const uint32_t *refs, uint32_t nrefs, int64_t *last_ns);
/* The round-trip time the RTCP senders last reported about each of `ssrcs`
 * (sorted ascending), as warpsniff.quality.streams.QualityContext reads the
 * RTCP table: of the report blocks about that SSRC that carried an RTT, the
 * latest to arrive (on a tie, the later sender in table order). rtt_ms[j] is
 * NAN and arrival_ns[j] INT64_MIN when there is none. */
void ws_rtcp_round_trips(const ws_rtp_table *t, const uint32_t *ssrcs, uint32_t nssrcs, int64_t *arrival_ns,
                         double *rtt_ms);
#endif
