/* The oracle of tests/test_rtp_equivalence.py: the RTP table as it was
 * before bound streams stopped reading their binding's generation on every
 * packet (commit a17f81c, byte for byte in rtp_reference/, header included:
 * its ws_rtp_table has another layout), behind rtp_table_api.h (prefix
 * ws_ref_), its own names renamed so one program holds both builds. */
#define ws_rtp_table_init ws_ref_rtp_table_init
#define ws_rtp_table_free ws_ref_rtp_table_free
#define ws_rtp_looks_like_rtp ws_ref_rtp_looks_like_rtp
#define ws_rtp_looks_like_rtcp ws_ref_rtp_looks_like_rtcp
#define ws_rtp_record ws_ref_rtp_record
#define ws_rtp_expire ws_ref_rtp_expire
#define ws_rtp_sweep_bindings ws_ref_rtp_sweep_bindings
#define ws_rtp_bind ws_ref_rtp_bind
#define ws_rtp_unbind ws_ref_rtp_unbind
#define ws_rtp_packet ws_ref_rtp_packet
#define ws_rtp_packet_v4 ws_ref_rtp_packet_v4
#define ws_rtcp_packet ws_ref_rtcp_packet
#define ws_rtp_snapshot ws_ref_rtp_snapshot
#define ws_stream_record_fields ws_ref_stream_record_fields
#define ws_stream_record_nfields ws_ref_stream_record_nfields
#define ws_rtcp_source_fields ws_ref_rtcp_source_fields
#define ws_rtcp_source_nfields ws_ref_rtcp_source_nfields

#include "rtp_reference/ws_rtp.c"

#define RTP_API_PREFIX ws_ref_
#include "rtp_table_api.c"
