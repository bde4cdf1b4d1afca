#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ws_ring.h"

#include <arpa/inet.h> /* htons */
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ws_pcap.h"

static int ring_fail(ws_ring *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    if (r->map) munmap(r->map, r->map_len);
    if (r->fd >= 0) close(r->fd);
    r->map = NULL;
    r->fd = -1;
    return WS_READ_IO;
}

static const char *privilege_hint(int e)
{
    return (e == EPERM || e == EACCES) ? " (needs CAP_NET_RAW: run as root or grant the capability)" : "";
}

int ws_ring_open(ws_ring *r, const char *ifname, uint32_t block_size, uint32_t block_count,
                 uint32_t block_timeout_ms, int promisc, int fanout_group)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    unsigned idx = if_nametoindex(ifname);
    if (!idx) return ring_fail(r, "no network interface named '%s'", ifname);
    r->ifindex = idx;
    r->fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (r->fd < 0) {
        int e = errno;
        return ring_fail(r, "cannot open a packet socket: %s%s", strerror(e), privilege_hint(e));
    }
    /* link type of the interface, for the decoder */
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    r->linktype = 1; /* Ethernet framing: Ethernet, veth, and Linux loopback */
    if (ioctl(r->fd, SIOCGIFHWADDR, &ifr) == 0 &&
        (ifr.ifr_hwaddr.sa_family == ARPHRD_NONE || ifr.ifr_hwaddr.sa_family == ARPHRD_IPGRE))
        r->linktype = 101; /* raw IP */
    int version = TPACKET_V3;
    if (setsockopt(r->fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) < 0)
        return ring_fail(r, "TPACKET_V3 not supported: %s", strerror(errno));
    long page = sysconf(_SC_PAGESIZE);
    if (block_size < (uint32_t)page || (block_size & (block_size - 1)))
        return ring_fail(r, "ring block size %u must be a power of two of at least %ld", block_size, page);
    struct tpacket_req3 req;
    memset(&req, 0, sizeof req);
    req.tp_block_size = block_size;
    req.tp_block_nr = block_count;
    req.tp_frame_size = 2048; /* only a hint in V3: frames are packed */
    req.tp_frame_nr = (block_size / req.tp_frame_size) * block_count;
    req.tp_retire_blk_tov = block_timeout_ms;
    req.tp_feature_req_word = TP_FT_REQ_FILL_RXHASH;
    if (setsockopt(r->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) {
        int e = errno;
        return ring_fail(r, "cannot set up a %u x %u-byte ring: %s%s", block_count, block_size, strerror(e),
                         privilege_hint(e));
    }
    r->map_len = (size_t)block_size * block_count;
    r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED, r->fd, 0);
    if (r->map == MAP_FAILED) /* MAP_LOCKED needs memlock room; unlocked works too */
        r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
    if (r->map == MAP_FAILED) {
        r->map = NULL;
        return ring_fail(r, "cannot map the ring: %s", strerror(errno));
    }
    r->block_size = block_size;
    r->block_count = block_count;
    struct sockaddr_ll ll;
    memset(&ll, 0, sizeof ll);
    ll.sll_family = AF_PACKET;
    ll.sll_protocol = htons(ETH_P_ALL);
    ll.sll_ifindex = (int)idx;
    if (bind(r->fd, (struct sockaddr *)&ll, sizeof ll) < 0)
        return ring_fail(r, "cannot bind to '%s': %s", ifname, strerror(errno));
    if (promisc) {
        struct packet_mreq mr;
        memset(&mr, 0, sizeof mr);
        mr.mr_ifindex = (int)idx;
        mr.mr_type = PACKET_MR_PROMISC;
        if (setsockopt(r->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) {
            int e = errno;
            return ring_fail(r, "cannot make '%s' promiscuous: %s%s", ifname, strerror(e),
                             (e == EPERM) ? " (needs CAP_NET_ADMIN)" : "");
        }
    }
    if (fanout_group > 0) {
        /* by flow hash, so a stream's packets meet one engine; fragments are
         * reassembled first, since only the first one carries the ports */
        int arg = (fanout_group & 0xffff) | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16);
        if (setsockopt(r->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) < 0)
            return ring_fail(r, "cannot join fanout group %d: %s", fanout_group, strerror(errno));
    }
    ws_ring_stats(r); /* start the counters from zero */
    r->packets = r->drops = r->freezes = 0;
    return WS_READ_OK;
}

int ws_ring_set_filter(ws_ring *r, const void *insns, uint16_t count)
{
    struct sock_fprog prog = {count, (struct sock_filter *)insns};
    if (setsockopt(r->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) {
        snprintf(r->err, sizeof r->err, "the kernel refused the capture filter: %s", strerror(errno));
        return WS_READ_IO;
    }
    return WS_READ_OK;
}

static struct tpacket_block_desc *block_at(ws_ring *r, uint32_t i)
{
    return (struct tpacket_block_desc *)(r->map + (size_t)i * r->block_size);
}

/* Puts the 802.1Q/802.1ad tag the kernel moved to the metadata back after
 * the two MAC addresses. */
static void restore_vlan_tag(ws_ring *r, const struct tpacket3_hdr *h, ws_frame *f)
{
    if (r->linktype != 1 || f->caplen < 12 || f->caplen > WS_RING_TAGGED_MAX) return;
    uint16_t tpid = (h->tp_status & TP_STATUS_VLAN_TPID_VALID) && h->hv1.tp_vlan_tpid ? h->hv1.tp_vlan_tpid
                                                                                       : ETH_P_8021Q;
    uint16_t tci = (uint16_t)h->hv1.tp_vlan_tci;
    memcpy(r->tagged, f->data, 12);
    r->tagged[12] = (uint8_t)(tpid >> 8);
    r->tagged[13] = (uint8_t)tpid;
    r->tagged[14] = (uint8_t)(tci >> 8);
    r->tagged[15] = (uint8_t)tci;
    memcpy(r->tagged + 16, f->data + 12, f->caplen - 12);
    f->data = r->tagged;
    f->caplen += 4;
    f->origlen += 4;
    r->vlan_restored++;
}

int ws_ring_next(ws_ring *r, ws_frame *f, int poll_ms)
{
    for (;;) {
        struct tpacket_block_desc *bd = r->block;
        if (bd) {
            if (r->pkts_left) {
                struct tpacket3_hdr *h = (struct tpacket3_hdr *)r->next_pkt;
                f->data = (const uint8_t *)h + h->tp_mac;
                f->caplen = h->tp_snaplen;
                f->origlen = h->tp_len;
                int64_t ns = (int64_t)h->tp_sec * 1000000000 + h->tp_nsec;
                f->ts_ns = ns < 0 ? 0 : ns > WS_TS_MAX ? WS_TS_MAX : ns;
                f->linktype = r->linktype;
                f->iface = r->ifindex;
                r->next_pkt += h->tp_next_offset;
                r->pkts_left--;
                if (WS_UNLIKELY(h->tp_status & TP_STATUS_VLAN_VALID)) restore_vlan_tag(r, h, f);
                return WS_READ_OK;
            }
            /* every frame of this block was handed out and processed: give it back */
            __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
            r->block = NULL;
            r->block_idx = (r->block_idx + 1) % r->block_count;
        }
        bd = block_at(r, r->block_idx);
        if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
            struct pollfd pfd = {r->fd, POLLIN | POLLERR, 0};
            int n = poll(&pfd, 1, poll_ms);
            if (n < 0 && errno != EINTR) {
                snprintf(r->err, sizeof r->err, "poll: %s", strerror(errno));
                return WS_READ_IO;
            }
            if (n <= 0) return WS_RING_TIMEOUT;
            if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
                return WS_RING_TIMEOUT;
        }
        r->block = bd;
        r->pkts_left = bd->hdr.bh1.num_pkts;
        r->next_pkt = (uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt;
    }
}

void ws_ring_stats(ws_ring *r)
{
    struct tpacket_stats_v3 st;
    socklen_t len = sizeof st;
    memset(&st, 0, sizeof st);
    /* the kernel resets its counters on every read: we keep the sums */
    if (r->fd >= 0 && getsockopt(r->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
        r->packets += st.tp_packets;
        r->drops += st.tp_drops;
        r->freezes += st.tp_freeze_q_cnt;
    }
}

void ws_ring_close(ws_ring *r)
{
    if (r->map) munmap(r->map, r->map_len);
    if (r->fd >= 0) close(r->fd);
    r->map = NULL;
    r->fd = -1;
}
