/* Writes the frames of chosen calls out of capture files (a replay's input,
 * or a live spool's segments) into one pcap per call, in one pass over the
 * inputs for all the calls asked. A frame belongs to a call when, within the
 * call's time window, it is
 *   - a UDP SIP message whose Call-ID is the call's (native SIP scan),
 *   - a TCP segment of a connection that carried the call's Call-ID (found in
 *     a first pass; TCP cannot be split by message, so the whole connection
 *     within the window is written),
 *   - a UDP datagram to or from one of the call's media endpoints, at its
 *     port (RTP, or RTCP with rtcp-mux) or port + 1 (RTCP),
 * and the fragments a matching datagram was reassembled from go with it.
 * Several inputs are merged by capture time (one spool per capture thread). */
#ifndef WS_EXTRACT_H
#define WS_EXTRACT_H

#include "../ws_common.h"

#define WS_EXTRACT_MAX_TCP 8               /* connections remembered per call */
#define WS_EXTRACT_REORDER_NS 1000000000ll /* frames this late still join their window */

typedef struct ws_endpoint {
    ws_addr addr;
    uint16_t port;
} ws_endpoint;

typedef enum ws_extract_state {
    WS_EXTRACT_WAITING = 0, /* no frame of the call seen yet */
    WS_EXTRACT_WRITING = 1,
    WS_EXTRACT_DONE = 2,
    WS_EXTRACT_FAILED = 3,  /* output could not be created or written: err says why */
} ws_extract_state;

/* One call to extract: inputs filled by the caller, results by ws_extract. */
typedef struct ws_extract_call {
    const uint8_t *call_id;
    uint32_t call_id_len;
    int64_t from_ns, to_ns;      /* the window, margins included */
    const ws_endpoint *media;
    uint32_t n_media;
    const char *out_path;
    uint64_t max_bytes;          /* the file stops growing here (frames counted as cut) */
    /* results */
    uint8_t state;
    uint64_t sip_frames, tcp_frames, media_frames, fragment_frames;
    uint64_t bytes;
    uint64_t frames_cut;         /* matched but over max_bytes */
    uint64_t linktype_skipped;   /* matched but of another link type than the file's first frame */
    int64_t first_ns, last_ns;
    char err[160];
    /* private */
    void *out;                   /* FILE * */
    uint32_t linktype;
    uint32_t n_tcp;
    ws_endpoint tcp[WS_EXTRACT_MAX_TCP][2];
} ws_extract_call;

typedef struct ws_extract_stats {
    uint64_t frames_read;
    uint64_t inputs_unreadable;  /* could not be opened (a spool segment deleted meanwhile) */
    uint64_t inputs_truncated;   /* ended inside a record (the segment being written) */
    uint64_t inputs_corrupt;
    uint64_t fragments_forgotten; /* more datagrams in reassembly than the pool holds */
    char err[256];               /* the first input problem */
} ws_extract_stats;

/* Runs over the inputs (merged by time) and writes each call's frames to its
 * out_path. Returns 0, or -1 when nothing could be done (out of memory). */
int ws_extract(const char *const *inputs, uint32_t n_inputs, ws_extract_call *calls, uint32_t n_calls,
               ws_extract_stats *stats);

#endif
