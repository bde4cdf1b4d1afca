#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ws_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPOOL_FILE_HEADER 24u
#define SPOOL_RECORD_HEADER 16u
#define SPOOL_SNAPLEN 262144u

static int spool_fail(ws_spool *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return -1;
}

static void segment_path(const ws_spool *s, uint64_t seq, int64_t first_ns, char *out, size_t cap)
{
    snprintf(out, cap, "%s/" WS_SPOOL_PREFIX "%010llu-%019lld.pcap", s->dir, (unsigned long long)seq,
             (long long)first_ns);
}

/* Whole-buffer write that survives short writes and EINTR. */
static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A failed write stops the spool rather than leaving a segment with a hole:
 * extraction then reports the window as missing instead of writing a pcap
 * that silently lacks frames. */
static void stop_spooling(ws_spool *s, const char *what, int e)
{
    s->failed = 1;
    s->c.write_errors++;
    spool_fail(s, "spool %s: %s: %s (spooling stopped)", s->dir, what, strerror(e));
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    s->buf_used = 0;
}

int ws_spool_flush(ws_spool *s)
{
    if (s->fd < 0 || !s->buf_used) return s->failed ? -1 : 0;
    if (write_all(s->fd, s->buf, s->buf_used)) {
        stop_spooling(s, "write", errno);
        return -1;
    }
    s->buf_used = 0;
    return 0;
}

static void delete_oldest(ws_spool *s)
{
    ws_spool_segment *old = &s->closed[s->closed_head];
    char path[WS_SPOOL_PATH_MAX + 64];
    segment_path(s, old->seq, old->first_ns, path, sizeof path);
    /* already gone (an operator cleaned up) is as good as deleted */
    unlink(path);
    s->closed_bytes -= old->bytes;
    s->c.segments_deleted++;
    s->c.bytes_deleted += old->bytes;
    s->closed_head = (s->closed_head + 1) % WS_SPOOL_MAX_SEGMENTS;
    s->closed_count--;
}

static void close_segment(ws_spool *s)
{
    if (s->fd < 0) return;
    ws_spool_flush(s);
    if (s->fd < 0) return; /* the flush failed and stopped the spool */
    close(s->fd);
    s->fd = -1;
    if (s->closed_count == WS_SPOOL_MAX_SEGMENTS) delete_oldest(s);
    ws_spool_segment *seg = &s->closed[(s->closed_head + s->closed_count) % WS_SPOOL_MAX_SEGMENTS];
    seg->seq = s->next_seq - 1;
    seg->bytes = s->seg_bytes;
    seg->first_ns = s->current_first_ns;
    s->closed_count++;
    s->closed_bytes += s->seg_bytes;
    s->seg_bytes = 0;
}

static int open_segment(ws_spool *s, const ws_frame *f)
{
    /* room for a whole new segment first: the cap holds at every moment */
    while (s->closed_count && s->closed_bytes + s->seg_max > s->total_max) delete_oldest(s);
    char path[WS_SPOOL_PATH_MAX + 64];
    segment_path(s, s->next_seq, f->ts_ns, path, sizeof path);
    s->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (s->fd < 0) {
        stop_spooling(s, "cannot create a segment", errno);
        return -1;
    }
    s->next_seq++;
    s->c.segments_opened++;
    s->linktype = f->linktype;
    s->current_first_ns = f->ts_ns;
    /* nanosecond pcap, native byte order */
    uint32_t hdr[6] = {0xa1b23c4du, 2u | (4u << 16), 0, 0, SPOOL_SNAPLEN, f->linktype};
    memcpy(s->buf, hdr, SPOOL_FILE_HEADER);
    s->buf_used = SPOOL_FILE_HEADER;
    s->seg_bytes = SPOOL_FILE_HEADER;
    return 0;
}

void ws_spool_frame(ws_spool *s, const ws_frame *f)
{
    if (WS_UNLIKELY(s->failed)) {
        s->c.frames_lost++;
        return;
    }
    uint32_t caplen = f->caplen < SPOOL_SNAPLEN ? f->caplen : SPOOL_SNAPLEN;
    uint32_t rec = SPOOL_RECORD_HEADER + caplen;
    if (WS_UNLIKELY(s->fd >= 0 && (f->linktype != s->linktype || s->seg_bytes + rec > s->seg_max)))
        close_segment(s);
    if (WS_UNLIKELY(s->fd < 0) && open_segment(s, f)) {
        s->c.frames_lost++;
        return;
    }
    if (WS_UNLIKELY(rec > s->buf_cap - s->buf_used) && ws_spool_flush(s)) {
        s->c.frames_lost++;
        return;
    }
    int64_t ts = f->ts_ns < 0 ? 0 : f->ts_ns;
    uint32_t h[4] = {(uint32_t)(ts / 1000000000), (uint32_t)(ts % 1000000000), caplen, f->origlen};
    if (WS_UNLIKELY(rec > s->buf_cap)) {
        /* larger than the whole buffer (a GRO super-frame): straight to the file */
        if (write_all(s->fd, (const uint8_t *)h, SPOOL_RECORD_HEADER) || write_all(s->fd, f->data, caplen)) {
            stop_spooling(s, "write", errno);
            s->c.frames_lost++;
            return;
        }
    } else {
        memcpy(s->buf + s->buf_used, h, SPOOL_RECORD_HEADER);
        memcpy(s->buf + s->buf_used + SPOOL_RECORD_HEADER, f->data, caplen);
        s->buf_used += rec;
    }
    s->seg_bytes += rec;
    s->c.frames++;
    s->c.bytes += rec;
    /* quiet traffic must not keep frames in memory: readers want them on disk */
    if (WS_UNLIKELY(ts - s->last_flush_ns >= WS_SPOOL_FLUSH_NS)) {
        s->last_flush_ns = ts;
        ws_spool_flush(s);
    }
}

static int is_segment_name(const char *name)
{
    size_t n = strlen(name), p = sizeof WS_SPOOL_PREFIX - 1;
    return n > p + 5 && !strncmp(name, WS_SPOOL_PREFIX, p) && !strcmp(name + n - 5, ".pcap");
}

int ws_spool_open(ws_spool *s, const char *dir, uint64_t seg_max, uint64_t total_max, uint32_t buf_cap)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    if (strlen(dir) >= sizeof s->dir) return spool_fail(s, "spool directory name too long");
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    if (buf_cap < WS_SPOOL_MIN_BYTES) buf_cap = WS_SPOOL_MIN_BYTES;
    /* a segment holds at least one frame of the largest size */
    if (seg_max < WS_SPOOL_MIN_BYTES + SPOOL_RECORD_HEADER + SPOOL_SNAPLEN)
        seg_max = WS_SPOOL_MIN_BYTES + SPOOL_RECORD_HEADER + SPOOL_SNAPLEN;
    if (total_max < 2 * seg_max)
        return spool_fail(s, "spool cap %llu bytes must hold two segments of %llu bytes",
                          (unsigned long long)total_max, (unsigned long long)seg_max);
    s->seg_max = seg_max;
    s->total_max = total_max;
    if (mkdir(dir, 0750) && errno != EEXIST) return spool_fail(s, "cannot create %s: %s", dir, strerror(errno));
    DIR *d = opendir(dir);
    if (!d) return spool_fail(s, "cannot open %s: %s", dir, strerror(errno));
    /* segments of an earlier run: this run's numbering starts at 0 again, and
     * only files named like our segments are touched */
    struct dirent *de;
    char path[WS_SPOOL_PATH_MAX + 300];
    while ((de = readdir(d))) {
        if (!is_segment_name(de->d_name)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (!unlink(path)) s->c.stale_removed++;
    }
    closedir(d);
    s->buf = malloc(buf_cap);
    s->closed = calloc(WS_SPOOL_MAX_SEGMENTS, sizeof(ws_spool_segment));
    if (!s->buf || !s->closed) {
        free(s->buf);
        free(s->closed);
        s->buf = NULL;
        s->closed = NULL;
        return spool_fail(s, "out of memory");
    }
    s->buf_cap = buf_cap;
    return 0;
}

void ws_spool_close(ws_spool *s)
{
    close_segment(s);
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    free(s->buf);
    free(s->closed);
    s->buf = NULL;
    s->closed = NULL;
}
