/* The oracle of tests/test_scan_equivalence.py: the SIP and SDP scans as they
 * were before their rewrite (commit a17f81c, byte for byte in
 * scan_reference/), compiled here under other names so that one program can
 * run both. They fill the same structs (ext/sip/ws_sip.h, ws_sdp.h), which
 * the rewrite left unchanged. */
#define ws_sip_parse ws_ref_sip_parse
#define ws_sip_msg_fields ws_ref_sip_msg_fields
#define ws_sip_msg_nfields ws_ref_sip_msg_nfields
#define ws_sdp_parse ws_ref_sdp_parse
#define ws_sdp_conn_text ws_ref_sdp_conn_text

#include "scan_reference/ws_sip.c"
#include "scan_reference/ws_sdp.c"
