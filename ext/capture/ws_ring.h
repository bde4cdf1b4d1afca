/* Live capture from an AF_PACKET TPACKET_V3 memory-mapped ring: the kernel
 * fills blocks of frames, we read them in place and hand each block back.
 * Kernel drop counters (PACKET_STATISTICS) are read on demand so drops are
 * never silent. */
#ifndef WS_RING_H
#define WS_RING_H

#include "../ws_common.h"

#define WS_RING_TIMEOUT 2 /* ws_ring_next: nothing arrived within the poll timeout */
#define WS_RING_TAGGED_MAX 16384 /* longest frame whose stripped VLAN tag is put back */

typedef struct ws_ring {
    int fd;
    uint8_t *map;
    size_t map_len;
    uint32_t block_size;
    uint32_t block_count;
    uint32_t block_idx;     /* the block being read, or the next to wait for */
    void *block;            /* current tpacket_block_desc, NULL when none is held */
    uint32_t pkts_left;
    uint8_t *next_pkt;      /* current tpacket3_hdr */
    uint32_t linktype;
    uint32_t ifindex;
    uint64_t packets;       /* what PACKET_STATISTICS reported, summed over reads */
    uint64_t drops;
    uint64_t freezes;       /* times the ring was full (queue frozen) */
    uint64_t vlan_restored; /* frames whose 802.1Q tag the kernel had moved to the metadata */
    char err[256];
    /* A tagged frame arrives with its tag stripped into the ring's metadata
     * (VLAN acceleration); it is rebuilt here, tag back in place, so decode,
     * spool and --write-pcap see the frame as it was on the wire (as libpcap
     * does). Frames longer than this are passed on untagged. */
    uint8_t tagged[WS_RING_TAGGED_MAX + 4];
} ws_ring;

/* Opens a TPACKET_V3 ring on ifname. fanout_group > 0 joins a PACKET_FANOUT
 * group (hash by flow). Returns WS_READ_OK, or WS_READ_IO with r->err set
 * (unknown interface, missing CAP_NET_RAW, ...). */
int ws_ring_open(ws_ring *r, const char *ifname, uint32_t block_size, uint32_t block_count,
                 uint32_t block_timeout_ms, int promisc, int fanout_group);
/* Attaches a classic BPF program (struct sock_filter[]: code, jt, jf, k) so
 * the kernel drops what we would ignore. Returns WS_READ_OK or WS_READ_IO. */
int ws_ring_set_filter(ws_ring *r, const void *insns, uint16_t count);
/* The next frame; valid until the next call. WS_READ_OK, WS_RING_TIMEOUT, or WS_READ_IO. */
int ws_ring_next(ws_ring *r, ws_frame *f, int poll_ms);
/* Adds the kernel's counters since the last call to packets/drops/freezes. */
void ws_ring_stats(ws_ring *r);
void ws_ring_close(ws_ring *r);

#endif
