/* Frame -> transport payload: link layers, VLAN/QinQ, MPLS, PPPoE, IPv4/IPv6
 * (extension headers), GRE/ERSPAN, IP-in-IP, VXLAN, and IP fragment
 * reassembly with a bounded table and a timeout. */
#ifndef WS_DECODE_H
#define WS_DECODE_H

#include "../ws_common.h"

/* Link types we decode (LINKTYPE_* numbers from the tcpdump registry). */
enum ws_linktype {
    WS_LINK_NULL = 0,
    WS_LINK_ETHERNET = 1,
    WS_LINK_RAW_BSD = 12,
    WS_LINK_RAW_OPENBSD = 14,
    WS_LINK_RAW = 101,
    WS_LINK_LOOP = 108,
    WS_LINK_SLL = 113,
    WS_LINK_IPV4 = 228,
    WS_LINK_IPV6 = 229,
    WS_LINK_SLL2 = 276,
};

typedef enum ws_decode_status {
    WS_DEC_L4 = 1,      /* out holds a UDP or TCP payload */
    WS_DEC_HELD = 2,    /* a fragment was stored; the datagram is not whole yet */
    WS_DEC_IGNORED = 3, /* not IP, or an IP protocol we do not follow */
    WS_DEC_ERROR = 4,   /* malformed: the reason is counted in errors[] */
} ws_decode_status;

/* Why a frame could not be decoded: one counter each. */
typedef enum ws_decode_error {
    WS_ERR_LINKTYPE = 0,   /* link type we do not decode */
    WS_ERR_SHORT_LINK,     /* frame shorter than its link header */
    WS_ERR_IP_HEADER,      /* bad version, header length or options */
    WS_ERR_IP_LENGTH,      /* IP length field larger than the frame */
    WS_ERR_UDP_LENGTH,     /* UDP length field that lies */
    WS_ERR_TCP_HEADER,
    WS_ERR_TUNNEL,         /* malformed GRE/ERSPAN/VXLAN or nesting too deep */
    WS_ERR_FRAG_OVERLAP,   /* fragment beyond 64 KiB or inconsistent */
    WS_ERR_FRAG_TABLE_FULL,
    WS_ERR_FRAG_TIMEOUT,   /* datagrams never completed before the timeout */
    WS_ERR_SNAPPED,        /* frame cut by the capture's snap length */
    WS_ERR__COUNT
} ws_decode_error;

typedef struct ws_l4 {
    ws_addr src, dst;
    uint16_t sport, dport;
    uint8_t proto;   /* 6 TCP, 17 UDP, 132 SCTP */
    uint8_t family;  /* 4 or 6 */
    uint8_t reassembled;
    uint8_t tunnels; /* how many encapsulations were removed */
    uint16_t vlan;   /* outermost VLAN ID, 0 when untagged */
    uint8_t tcp_flags;
    uint8_t _pad;
    uint32_t tcp_seq;
    uint32_t tcp_ack;
    const uint8_t *payload;
    uint32_t payload_len;
} ws_l4;

#define WS_FRAG_SLOTS 256 /* 64 KiB each at most: 16 MiB bound */

typedef struct ws_frag_slot {
    ws_addr src, dst;
    uint32_t id;
    uint8_t proto, family, in_use, _pad;
    int32_t total_len;  /* payload length once the last fragment is seen, else -1 */
    uint32_t blocks_seen; /* 8-byte units received */
    int64_t first_ns;
    uint8_t *buf;       /* 64 KiB of payload + bitmap, allocated on first use */
} ws_frag_slot;

typedef struct ws_decoder {
    uint64_t errors[WS_ERR__COUNT];
    uint64_t frames, ip_packets, udp, tcp, other_ip, non_ip;
    uint64_t fragments, reassembled;
    /* fragment reassembly */
    int64_t frag_timeout_ns;
    uint32_t frag_max;        /* slots in use at most (<= WS_FRAG_SLOTS) */
    uint32_t frag_in_use;
    int32_t frag_release;     /* slot handed out last call, freed on the next */
    uint16_t vxlan_port;      /* UDP port carrying VXLAN, 0 = off */
    ws_frag_slot frags[WS_FRAG_SLOTS];
} ws_decoder;

void ws_decoder_init(ws_decoder *d);
void ws_decoder_free(ws_decoder *d);
/* Decodes one frame. On WS_DEC_L4, out->payload is valid until the next call. */
int ws_decode(ws_decoder *d, const ws_frame *f, ws_l4 *out);
/* Drops fragment sets older than the timeout (called as capture time moves). */
void ws_decoder_expire(ws_decoder *d, int64_t now_ns);

#endif
