#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ws_pcap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PCAP_MAGIC_USEC 0xa1b2c3d4u
#define PCAP_MAGIC_NSEC 0xa1b23c4du
#define PCAPNG_SHB 0x0A0D0D0Au
#define PCAPNG_IDB 1u
#define PCAPNG_PB 2u /* obsolete Packet Block */
#define PCAPNG_SPB 3u
#define PCAPNG_EPB 6u
#define PCAPNG_BOM 0x1A2B3C4Du
#define DROP_CHUNK (32ull << 20) /* give pages back every 32 MiB read */
#define READ_CHUNK (1u << 20)

static int fail(ws_reader *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return status;
}

static uint32_t rd32(const ws_reader *r, const uint8_t *p)
{
    return r->swapped ? ws_be32(p) : ws_le32(p);
}
static uint16_t rd16(const ws_reader *r, const uint8_t *p)
{
    return r->swapped ? ws_be16(p) : ws_le16(p);
}

/* Returns a pointer to n contiguous bytes at the current position, or NULL
 * when fewer remain (*avail then says how many). */
static const uint8_t *peek(ws_reader *r, uint64_t n, uint64_t *avail)
{
    if (r->map) {
        uint64_t left = r->map_len - r->pos;
        *avail = left;
        return left >= n ? r->map + r->pos : NULL;
    }
    while (r->buf_len - r->buf_pos < n && !r->eof) {
        if (r->buf_pos) {
            memmove(r->buf, r->buf + r->buf_pos, r->buf_len - r->buf_pos);
            r->buf_len -= r->buf_pos;
            r->buf_pos = 0;
        }
        if (n > r->buf_cap) {
            uint64_t cap = r->buf_cap;
            while (cap < n) cap *= 2;
            uint8_t *nb = realloc(r->buf, cap);
            if (!nb) break;
            r->buf = nb;
            r->buf_cap = cap;
        }
        ssize_t got = read(r->fd, r->buf + r->buf_len, r->buf_cap - r->buf_len);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            r->eof = 1;
            break;
        }
        r->buf_len += (uint64_t)got;
    }
    *avail = r->buf_len - r->buf_pos;
    return *avail >= n ? r->buf + r->buf_pos : NULL;
}

static void advance(ws_reader *r, uint64_t n)
{
    r->pos += n;
    if (r->map) {
        if (r->pos - r->dropped_to >= DROP_CHUNK) {
            /* keep the last MiB mapped: the frame being returned lives there */
            uint64_t upto = (r->pos - (1u << 20)) & ~(uint64_t)0xffff;
            madvise((void *)(r->map + r->dropped_to), upto - r->dropped_to, MADV_DONTNEED);
            r->dropped_to = upto;
        }
    } else {
        r->buf_pos += n;
    }
}

/* Capture times are clamped to [0, WS_TS_MAX] so that every difference the
 * engine takes between two of them fits in an int64. */
static int64_t clamp_ns(__int128 ns)
{
    if (ns < 0) return 0;
    if (ns > WS_TS_MAX) return WS_TS_MAX;
    return (int64_t)ns;
}

static int64_t ts_to_ns(const ws_iface *ifc, uint64_t ts)
{
    uint8_t res = ifc->tsresol;
    __int128 ns;
    if (res & 0x80) {
        unsigned shift = res & 0x7f;
        if (shift > 63) shift = 63;
        ns = ((__int128)ts * 1000000000) >> shift;
    } else if (res <= 9) {
        static const int64_t mul[10] = {1000000000, 100000000, 10000000, 1000000, 100000,
                                        10000,      1000,      100,      10,      1};
        ns = (__int128)ts * mul[res];
    } else {
        uint64_t div = 1;
        for (unsigned i = 9; i < res && i < 19; i++) div *= 10;
        ns = ts / div;
    }
    return clamp_ns(ns + (__int128)ifc->tsoffset_ns);
}

static int open_common(ws_reader *r)
{
    uint64_t avail;
    const uint8_t *p = peek(r, 4, &avail);
    if (!p) {
        if (avail == 0) return fail(r, WS_READ_CORRUPT, "empty file: not a pcap or pcapng capture");
        return fail(r, WS_READ_TRUNCATED, "file of %llu bytes is too short for a capture header",
                    (unsigned long long)avail);
    }
    uint32_t magic = ws_le32(p);
    if (magic == PCAPNG_SHB) {
        r->format = WS_FORMAT_PCAPNG;
        return WS_READ_OK; /* the SHB is handled as an ordinary block */
    }
    if (magic == PCAP_MAGIC_USEC || magic == PCAP_MAGIC_NSEC) {
        r->swapped = 0;
    } else if (ws_be32(p) == PCAP_MAGIC_USEC || ws_be32(p) == PCAP_MAGIC_NSEC) {
        r->swapped = 1;
    } else {
        return fail(r, WS_READ_CORRUPT, "unknown magic 0x%08x at offset 0: not a pcap or pcapng capture",
                    ws_be32(p));
    }
    p = peek(r, 24, &avail);
    if (!p)
        return fail(r, WS_READ_TRUNCATED, "pcap global header truncated (%llu of 24 bytes)",
                    (unsigned long long)avail);
    r->format = WS_FORMAT_PCAP;
    r->nsec = (rd32(r, p) == PCAP_MAGIC_NSEC);
    r->n_ifaces = 1;
    r->ifaces[0].snaplen = rd32(r, p + 16);
    /* the top bits of the link-type field carry FCS information */
    r->ifaces[0].linktype = rd32(r, p + 20) & 0x0fffffff;
    r->ifaces[0].tsresol = r->nsec ? 9 : 6;
    r->ifaces[0].tsoffset_ns = 0;
    advance(r, 24);
    return WS_READ_OK;
}

int ws_reader_open_fd(ws_reader *r, int fd)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        r->file_size = (uint64_t)st.st_size;
        if (st.st_size > 0) {
            void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (m != MAP_FAILED) {
                madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
                r->map = m;
                r->map_len = (uint64_t)st.st_size;
            }
        }
    }
    if (!r->map) {
        r->buf_cap = READ_CHUNK;
        r->buf = malloc(r->buf_cap);
        if (!r->buf) return fail(r, WS_READ_IO, "out of memory");
    }
    return open_common(r);
}

int ws_reader_open(ws_reader *r, const char *path)
{
    int fd = (path[0] == '-' && path[1] == 0) ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        memset(r, 0, sizeof *r);
        r->fd = -1;
        return fail(r, WS_READ_IO, "cannot open: %s", strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        memset(r, 0, sizeof *r);
        r->fd = -1;
        return fail(r, WS_READ_IO, "is a directory, not a capture file");
    }
    int rc = ws_reader_open_fd(r, fd);
    return rc;
}

void ws_reader_close(ws_reader *r)
{
    if (r->map) munmap((void *)r->map, r->map_len);
    r->map = NULL;
    free(r->buf);
    r->buf = NULL;
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
}

static int next_pcap(ws_reader *r, ws_frame *f)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* the common case: a mapped little-endian file (swapped == 0 means little
     * endian here) with the whole record present */
    if (WS_LIKELY(r->map && !r->swapped && r->map_len - r->pos >= 16)) {
        const uint8_t *p = r->map + r->pos;
        uint32_t hdr[4];
        memcpy(hdr, p, 16);
        uint32_t caplen = hdr[2];
        if (WS_LIKELY(caplen <= WS_MAX_RECORD && r->map_len - r->pos - 16 >= caplen)) {
            f->data = p + 16;
            f->caplen = caplen;
            f->origlen = hdr[3];
            f->ts_ns = (int64_t)hdr[0] * 1000000000 + (int64_t)hdr[1] * (r->nsec ? 1 : 1000);
            f->linktype = r->ifaces[0].linktype;
            f->iface = 0;
            r->pos += 16ull + caplen;
            if (WS_UNLIKELY(r->pos - r->dropped_to >= DROP_CHUNK)) {
                r->pos -= 16ull + caplen;
                advance(r, 16ull + caplen);
            }
            r->frames++;
            return WS_READ_OK;
        }
    }
#endif
    uint64_t avail;
    const uint8_t *p = peek(r, 16, &avail);
    if (!p) {
        if (avail == 0) return WS_READ_EOF;
        return fail(r, WS_READ_TRUNCATED, "truncated record header at offset %llu (%llu of 16 bytes)",
                    (unsigned long long)r->pos, (unsigned long long)avail);
    }
    uint32_t sec = rd32(r, p), frac = rd32(r, p + 4);
    uint32_t caplen = rd32(r, p + 8), origlen = rd32(r, p + 12);
    if (caplen > WS_MAX_RECORD)
        return fail(r, WS_READ_CORRUPT, "record at offset %llu claims %u captured bytes (limit %u)",
                    (unsigned long long)r->pos, caplen, WS_MAX_RECORD);
    p = peek(r, 16ull + caplen, &avail);
    if (!p)
        return fail(r, WS_READ_TRUNCATED, "truncated record at offset %llu (needs %u bytes, %llu present)",
                    (unsigned long long)r->pos, 16 + caplen, (unsigned long long)avail);
    f->data = p + 16;
    f->caplen = caplen;
    f->origlen = origlen;
    f->ts_ns = (int64_t)sec * 1000000000 + (int64_t)frac * (r->nsec ? 1 : 1000);
    f->linktype = r->ifaces[0].linktype;
    f->iface = 0;
    advance(r, 16ull + caplen);
    r->frames++;
    return WS_READ_OK;
}

static int parse_idb(ws_reader *r, const uint8_t *b, uint32_t len)
{
    if (len < 20) return fail(r, WS_READ_CORRUPT, "interface block at offset %llu too short", (unsigned long long)r->pos);
    if (r->n_ifaces >= WS_MAX_IFACES)
        return fail(r, WS_READ_CORRUPT, "more than %d interfaces in one section", WS_MAX_IFACES);
    ws_iface *ifc = &r->ifaces[r->n_ifaces++];
    ifc->linktype = rd16(r, b + 8);
    ifc->snaplen = rd32(r, b + 12);
    ifc->tsresol = 6;
    ifc->tsoffset_ns = 0;
    uint32_t off = 16, end = len - 4;
    while (off + 4 <= end) {
        uint16_t code = rd16(r, b + off), olen = rd16(r, b + off + 2);
        off += 4;
        if (code == 0 || off + olen > end) break;
        if (code == 9 && olen >= 1) ifc->tsresol = b[off];
        if (code == 14 && olen >= 8) {
            uint64_t hi = rd32(r, b + off), lo = rd32(r, b + off + 4);
            uint64_t v = r->swapped ? (hi << 32 | lo) : (lo << 32 | hi);
            __int128 off = (__int128)(int64_t)v * 1000000000;
            ifc->tsoffset_ns = off > WS_TS_MAX ? WS_TS_MAX : off < -WS_TS_MAX ? -WS_TS_MAX : (int64_t)off;
        }
        off += (olen + 3u) & ~3u;
    }
    return WS_READ_OK;
}

static int next_pcapng(ws_reader *r, ws_frame *f)
{
    for (;;) {
        uint64_t avail;
        const uint8_t *p = peek(r, 12, &avail);
        if (!p) {
            if (avail == 0) return WS_READ_EOF;
            return fail(r, WS_READ_TRUNCATED, "truncated block header at offset %llu (%llu of 12 bytes)",
                        (unsigned long long)r->pos, (unsigned long long)avail);
        }
        uint32_t type = ws_le32(p);
        if (type == PCAPNG_SHB) {
            /* each section declares its own byte order and interfaces */
            uint32_t bom = ws_le32(p + 8);
            if (bom == PCAPNG_BOM) r->swapped = 0;
            else if (ws_be32(p + 8) == PCAPNG_BOM) r->swapped = 1;
            else return fail(r, WS_READ_CORRUPT, "section header at offset %llu has a bad byte-order magic",
                             (unsigned long long)r->pos);
            r->n_ifaces = 0;
        } else {
            type = rd32(r, p);
        }
        uint32_t len = rd32(r, p + 4);
        if (len < 12 || (len & 3) || len > WS_MAX_RECORD)
            return fail(r, WS_READ_CORRUPT, "block at offset %llu has impossible length %u",
                        (unsigned long long)r->pos, len);
        const uint8_t *b = peek(r, len, &avail);
        if (!b)
            return fail(r, WS_READ_TRUNCATED, "truncated block at offset %llu (needs %u bytes, %llu present)",
                        (unsigned long long)r->pos, len, (unsigned long long)avail);
        if (rd32(r, b + len - 4) != len)
            return fail(r, WS_READ_CORRUPT, "block at offset %llu: trailing length does not match",
                        (unsigned long long)r->pos);
        int got = 0;
        if (type == PCAPNG_IDB) {
            int rc = parse_idb(r, b, len);
            if (rc != WS_READ_OK) return rc;
        } else if (type == PCAPNG_EPB || type == PCAPNG_PB) {
            if (len < 32)
                return fail(r, WS_READ_CORRUPT, "packet block at offset %llu too short", (unsigned long long)r->pos);
            uint32_t ifid = type == PCAPNG_EPB ? rd32(r, b + 8) : rd16(r, b + 8);
            uint64_t ts = ((uint64_t)rd32(r, b + 12) << 32) | rd32(r, b + 16);
            uint32_t caplen = rd32(r, b + 20), origlen = rd32(r, b + 24);
            if (ifid >= r->n_ifaces)
                return fail(r, WS_READ_CORRUPT, "packet block at offset %llu names interface %u of %u",
                            (unsigned long long)r->pos, ifid, r->n_ifaces);
            if (caplen > len - 32)
                return fail(r, WS_READ_CORRUPT, "packet block at offset %llu: %u captured bytes in a %u-byte block",
                            (unsigned long long)r->pos, caplen, len);
            const ws_iface *ifc = &r->ifaces[ifid];
            f->data = b + 28;
            f->caplen = caplen;
            f->origlen = origlen;
            f->ts_ns = ts_to_ns(ifc, ts);
            f->linktype = ifc->linktype;
            f->iface = ifid;
            got = 1;
        } else if (type == PCAPNG_SPB) {
            if (r->n_ifaces == 0)
                return fail(r, WS_READ_CORRUPT, "simple packet block at offset %llu before any interface",
                            (unsigned long long)r->pos);
            if (len < 16)
                return fail(r, WS_READ_CORRUPT, "simple packet block at offset %llu too short",
                            (unsigned long long)r->pos);
            uint32_t origlen = rd32(r, b + 8);
            uint32_t caplen = origlen;
            if (caplen > len - 16) caplen = len - 16;
            if (r->ifaces[0].snaplen && caplen > r->ifaces[0].snaplen) caplen = r->ifaces[0].snaplen;
            f->data = b + 12;
            f->caplen = caplen;
            f->origlen = origlen;
            f->ts_ns = 0; /* SPBs carry no time */
            f->linktype = r->ifaces[0].linktype;
            f->iface = 0;
            got = 1;
        }
        advance(r, len);
        if (got) {
            r->frames++;
            return WS_READ_OK;
        }
    }
}

int ws_reader_next(ws_reader *r, ws_frame *f)
{
    return r->format == WS_FORMAT_PCAPNG ? next_pcapng(r, f) : next_pcap(r, f);
}
