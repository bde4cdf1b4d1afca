/* Streaming reader for classic pcap (usec/nsec, either byte order) and pcapng
 * (SHB/IDB/EPB/SPB/PB, several interfaces and sections, per-interface
 * if_tsresol and if_tsoffset). Regular files are memory-mapped and the pages
 * already read are dropped as the reader moves on, so resident memory does
 * not grow with the file; pipes fall back to read() into a bounded buffer. */
#ifndef WS_PCAP_H
#define WS_PCAP_H

#include "../ws_common.h"

#define WS_MAX_IFACES 256
#define WS_MAX_RECORD (16u << 20) /* larger records are refused as corrupt */

typedef enum ws_read_status {
    WS_READ_OK = 1,
    WS_READ_EOF = 0,
    WS_READ_TRUNCATED = -1, /* file ends inside a record */
    WS_READ_CORRUPT = -2,   /* a header that cannot be right */
    WS_READ_IO = -3,
} ws_read_status;

typedef enum ws_file_format {
    WS_FORMAT_PCAP = 1,
    WS_FORMAT_PCAPNG = 2,
} ws_file_format;

typedef struct ws_iface {
    uint32_t linktype;
    uint32_t snaplen;
    uint8_t tsresol;     /* raw if_tsresol option: bit 7 = power of two */
    int64_t tsoffset_ns; /* if_tsoffset, in ns */
} ws_iface;

typedef struct ws_reader {
    int fd;
    int format;
    int swapped;       /* file byte order differs from ours */
    int nsec;          /* classic pcap nanosecond magic */
    /* memory-mapped input */
    const uint8_t *map;
    uint64_t map_len;
    uint64_t dropped_to; /* pages before this offset were given back */
    /* read() input, for pipes */
    uint8_t *buf;
    uint64_t buf_cap, buf_len, buf_pos;
    int eof;
    uint64_t pos;       /* file offset of the next record */
    uint64_t file_size; /* 0 when unknown (a pipe) */
    uint32_t n_ifaces;
    ws_iface ifaces[WS_MAX_IFACES];
    uint64_t frames;
    char err[256];
} ws_reader;

/* Opens path ("-" for standard input). Returns WS_READ_OK or an error with
 * r->err filled in. */
int ws_reader_open(ws_reader *r, const char *path);
int ws_reader_open_fd(ws_reader *r, int fd);
/* Reads the next frame. The frame's data stays valid until the next call. */
int ws_reader_next(ws_reader *r, ws_frame *f);
void ws_reader_close(ws_reader *r);

#endif
