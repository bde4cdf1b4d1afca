/* The engine as one translation unit, so the compiler inlines across the
 * per-packet path (reader -> decode -> classify -> RTP table) without relying
 * on link-time optimisation. Each stage keeps its own file. */
#define _GNU_SOURCE
#include "capture/ws_pcap.c"
#include "capture/ws_ring.c"
#include "capture/ws_spool.c"
#include "decode/ws_decode.c"
#include "rtp/ws_rtp.c"
#include "rtp/ws_rtp_select.c"
#include "sip/ws_sip.c"
#include "sip/ws_sdp.c"
#include "labels/ws_labels.c"
#include "capture/ws_extract.c"
#include "engine/ws_engine.c"
#include "metrics/ws_aggregate.c"
