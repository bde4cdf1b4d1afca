/* Rolling on-disk spool of the frames a live ring delivers, so that a call
 * which only turns out to be bad when it ends can still be written out with
 * its first packets. Frames are appended to nanosecond pcap segment files
 * (the frame's own link type) through one write buffer; a segment is closed
 * when it reaches seg_max bytes and the oldest segments are deleted so that
 * all segments together never exceed total_max. One spool per engine (per
 * capture thread): nothing here is shared or locked.
 *
 * Segment names are spool-<seq, 10 digits>-<first frame ns, 19 digits>.pcap,
 * so a reader can pick the segments of a time window from a directory
 * listing alone; seq starts at 0 on every open, so a missing seq 0 means
 * older frames were deleted. */
#ifndef WS_SPOOL_H
#define WS_SPOOL_H

#include "../ws_common.h"

#define WS_SPOOL_PREFIX "spool-"
#define WS_SPOOL_MAX_SEGMENTS 4096u   /* segments remembered for deletion, oldest first */
#define WS_SPOOL_FLUSH_NS 1000000000ll /* buffered frames reach the file within a second of capture time */
#define WS_SPOOL_PATH_MAX 4096
#define WS_SPOOL_MIN_BYTES (64u << 10) /* smallest write buffer */

typedef struct ws_spool_segment {
    uint64_t seq;
    uint64_t bytes;
    int64_t first_ns;
} ws_spool_segment;

typedef struct ws_spool_counters {
    uint64_t frames, bytes;        /* appended (record headers included) */
    uint64_t segments_opened, segments_deleted, bytes_deleted;
    uint64_t stale_removed;        /* segments of an earlier run removed at open */
    uint64_t write_errors;         /* the spool stops at the first one (err says why) */
    uint64_t frames_lost;          /* frames not spooled because it stopped */
} ws_spool_counters;

typedef struct ws_spool {
    char dir[WS_SPOOL_PATH_MAX];
    uint64_t seg_max, total_max;
    int fd;                       /* current segment, -1 between segments */
    uint32_t linktype;            /* of the current segment */
    uint64_t seg_bytes;           /* current segment, buffered bytes included */
    int64_t current_first_ns;     /* first frame of the current segment (its name) */
    uint64_t next_seq;
    int64_t last_flush_ns;
    uint8_t *buf;
    uint32_t buf_used, buf_cap;
    /* closed segments still on disk, oldest first (a ring) */
    ws_spool_segment *closed;
    uint32_t closed_head, closed_count;
    uint64_t closed_bytes;
    int failed;                   /* a write failed: spooling stopped */
    ws_spool_counters c;
    char err[256];
} ws_spool;

/* Creates dir if needed and removes spool segments an earlier run left there.
 * total_max must hold at least two segments. Returns 0, or -1 with err set. */
int ws_spool_open(ws_spool *s, const char *dir, uint64_t seg_max, uint64_t total_max, uint32_t buf_cap);
/* Appends one frame (buffered; rotates and deletes as needed). */
void ws_spool_frame(ws_spool *s, const ws_frame *f);
/* Writes out the buffer, so readers of the segment files see every frame. */
int ws_spool_flush(ws_spool *s);
/* Flushes and closes the current segment; the files stay for extraction. */
void ws_spool_close(ws_spool *s);

#endif
