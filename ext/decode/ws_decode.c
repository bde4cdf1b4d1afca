#include "ws_decode.h"

#include <stdlib.h>

#define MAX_TUNNELS 6
#define MAX_V6_EXT 8
#define FRAG_PAYLOAD_MAX 65535u
#define FRAG_BITMAP_BYTES ((FRAG_PAYLOAD_MAX / 8 + 1 + 7) / 8)

#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86DD
#define ETH_VLAN 0x8100
#define ETH_QINQ 0x88A8
#define ETH_QINQ_OLD 0x9100
#define ETH_MPLS 0x8847
#define ETH_PPPOE 0x8864
#define ETH_TEB 0x6558 /* transparent Ethernet bridging, inside GRE */
#define ETH_ERSPAN2 0x88BE
#define ETH_ERSPAN3 0x22EB
#define ETH_PPP 0x880B

typedef struct ctx {
    ws_decoder *d;
    ws_l4 *out;
    int64_t ts_ns;
    int snapped; /* frame shorter than on the wire */
} ctx;

static int dec_ether(ctx *c, const uint8_t *p, uint32_t n);
static int dec_ethertype(ctx *c, uint16_t et, const uint8_t *p, uint32_t n);
static int dec_ipv4(ctx *c, const uint8_t *p, uint32_t n);
static int dec_ipv6(ctx *c, const uint8_t *p, uint32_t n);

static int err(ctx *c, ws_decode_error e)
{
    if (c->snapped && (e == WS_ERR_IP_LENGTH || e == WS_ERR_UDP_LENGTH || e == WS_ERR_SHORT_LINK))
        e = WS_ERR_SNAPPED;
    c->d->errors[e]++;
    return WS_DEC_ERROR;
}

void ws_decoder_init(ws_decoder *d)
{
    memset(d, 0, sizeof *d);
    d->frag_timeout_ns = 30ll * 1000000000;
    d->frag_max = WS_FRAG_SLOTS;
    d->frag_release = -1;
    d->vxlan_port = 4789;
}

void ws_decoder_free(ws_decoder *d)
{
    for (int i = 0; i < WS_FRAG_SLOTS; i++) {
        free(d->frags[i].buf);
        d->frags[i].buf = NULL;
    }
}

static void frag_free(ws_decoder *d, ws_frag_slot *s)
{
    s->in_use = 0;
    d->frag_in_use--;
}

void ws_decoder_expire(ws_decoder *d, int64_t now_ns)
{
    if (!d->frag_in_use) return;
    for (int i = 0; i < WS_FRAG_SLOTS; i++) {
        ws_frag_slot *s = &d->frags[i];
        if (s->in_use && now_ns - s->first_ns > d->frag_timeout_ns && i != d->frag_release) {
            d->errors[WS_ERR_FRAG_TIMEOUT]++;
            frag_free(d, s);
        }
    }
}

/* The payload bytes once the datagram is whole.
 * Returns WS_DEC_L4 with (*data, *len) set, WS_DEC_HELD, or an error. */
static int frag_add(ctx *c, int family, const ws_addr *src, const ws_addr *dst, uint32_t id,
                    uint8_t proto, uint32_t offset, int more, const uint8_t *p, uint32_t n,
                    const uint8_t **data, uint32_t *len)
{
    ws_decoder *d = c->d;
    d->fragments++;
    if (offset + n > FRAG_PAYLOAD_MAX || (more && (n & 7))) return err(c, WS_ERR_FRAG_OVERLAP);
    ws_frag_slot *s = NULL, *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < WS_FRAG_SLOTS; i++) {
        ws_frag_slot *t = &d->frags[i];
        if (!t->in_use) {
            if (!free_slot && (uint32_t)i < d->frag_max) free_slot = t;
            continue;
        }
        /* the slot handed out by this very decode (a tunnel's outer datagram)
         * is not a candidate: its buffer is what we are reading */
        if (i != d->frag_release && t->id == id && t->proto == proto && t->family == family &&
            !memcmp(&t->src, src, 16) && !memcmp(&t->dst, dst, 16)) {
            s = t;
            break;
        }
        if (i != d->frag_release && (!oldest || t->first_ns < oldest->first_ns)) oldest = t;
    }
    if (!s) {
        if (!free_slot) {
            /* the table is full: the oldest set is the least likely to complete */
            if (!oldest) return err(c, WS_ERR_FRAG_TABLE_FULL);
            d->errors[WS_ERR_FRAG_TABLE_FULL]++;
            frag_free(d, oldest);
            free_slot = oldest;
        }
        s = free_slot;
        if (!s->buf) {
            s->buf = malloc(FRAG_PAYLOAD_MAX + 1 + FRAG_BITMAP_BYTES);
            if (!s->buf) return err(c, WS_ERR_FRAG_TABLE_FULL);
        }
        memset(s->buf + FRAG_PAYLOAD_MAX + 1, 0, FRAG_BITMAP_BYTES);
        s->src = *src;
        s->dst = *dst;
        s->id = id;
        s->proto = proto;
        s->family = (uint8_t)family;
        s->in_use = 1;
        s->total_len = -1;
        s->blocks_seen = 0;
        s->first_ns = c->ts_ns;
        d->frag_in_use++;
    }
    if (!more) {
        int32_t end = (int32_t)(offset + n);
        if (s->total_len >= 0 && s->total_len != end) {
            frag_free(d, s);
            return err(c, WS_ERR_FRAG_OVERLAP);
        }
        s->total_len = end;
    } else if (s->total_len >= 0 && (int32_t)(offset + n) > s->total_len) {
        frag_free(d, s); /* data past the end the last fragment declared */
        return err(c, WS_ERR_FRAG_OVERLAP);
    }
    memcpy(s->buf + offset, p, n);
    uint8_t *bitmap = s->buf + FRAG_PAYLOAD_MAX + 1;
    for (uint32_t b = offset / 8; b < (offset + n + 7) / 8; b++) {
        if (!(bitmap[b >> 3] & (1u << (b & 7)))) {
            bitmap[b >> 3] |= (uint8_t)(1u << (b & 7));
            s->blocks_seen++;
        }
    }
    uint32_t needed = s->total_len < 0 ? 0 : ((uint32_t)s->total_len + 7) / 8;
    if (s->total_len < 0 || s->blocks_seen < needed) return WS_DEC_HELD;
    /* blocks_seen may count blocks past the end: make sure there is no hole */
    for (uint32_t b = 0; b < needed; b++)
        if (!(bitmap[b >> 3] & (1u << (b & 7)))) return WS_DEC_HELD;
    d->reassembled++;
    *data = s->buf;
    *len = (uint32_t)s->total_len;
    /* the buffer must outlive this call: free the slot on the next one */
    d->frag_release = (int32_t)(s - d->frags);
    return WS_DEC_L4;
}

static int dec_transport(ctx *c, uint8_t proto, const uint8_t *p, uint32_t n)
{
    ws_l4 *o = c->out;
    o->proto = proto;
    switch (proto) {
    case 17: {
        if (n < 8) return err(c, WS_ERR_UDP_LENGTH);
        uint32_t ulen = ws_be16(p + 4);
        if (ulen < 8 || ulen > n) {
            if (ulen == 0 && n >= 8) ulen = n; /* jumbogram / checksum offload captures */
            else return err(c, WS_ERR_UDP_LENGTH);
        }
        o->sport = ws_be16(p);
        o->dport = ws_be16(p + 2);
        if (WS_UNLIKELY(o->dport == c->d->vxlan_port && c->d->vxlan_port) && ulen >= 16 && (p[8] & 0x08) &&
            o->tunnels < MAX_TUNNELS) {
            o->tunnels++;
            return dec_ether(c, p + 16, ulen - 16);
        }
        o->payload = p + 8;
        o->payload_len = ulen - 8;
        c->d->udp++;
        return WS_DEC_L4;
    }
    case 6: {
        if (n < 20) return err(c, WS_ERR_TCP_HEADER);
        uint32_t hl = (uint32_t)(p[12] >> 4) * 4;
        if (hl < 20 || hl > n) return err(c, WS_ERR_TCP_HEADER);
        o->sport = ws_be16(p);
        o->dport = ws_be16(p + 2);
        o->tcp_seq = ws_be32(p + 4);
        o->tcp_ack = ws_be32(p + 8);
        o->tcp_flags = p[13];
        o->payload = p + hl;
        o->payload_len = n - hl;
        c->d->tcp++;
        return WS_DEC_L4;
    }
    case 132:
        if (n < 12) return err(c, WS_ERR_TCP_HEADER);
        o->sport = ws_be16(p);
        o->dport = ws_be16(p + 2);
        o->payload = p + 12;
        o->payload_len = n - 12;
        return WS_DEC_L4;
    case 4:
        if (++o->tunnels > MAX_TUNNELS) return err(c, WS_ERR_TUNNEL);
        return dec_ipv4(c, p, n);
    case 41:
        if (++o->tunnels > MAX_TUNNELS) return err(c, WS_ERR_TUNNEL);
        return dec_ipv6(c, p, n);
    case 47: {
        /* GRE (RFC 2784/2890) and enhanced GRE v1 (RFC 2637) */
        if (++o->tunnels > MAX_TUNNELS || n < 4) return err(c, WS_ERR_TUNNEL);
        uint16_t flags = ws_be16(p), et = ws_be16(p + 2);
        uint32_t hl = 4;
        int version = flags & 7;
        if (flags & 0x8000) hl += 4; /* checksum + reserved */
        if (flags & 0x2000) hl += 4; /* key (v1: payload length + call id) */
        if (flags & 0x1000) hl += 4; /* sequence */
        if (version == 1 && (flags & 0x0080)) hl += 4; /* acknowledgment */
        if (version > 1 || hl > n) return err(c, WS_ERR_TUNNEL);
        p += hl;
        n -= hl;
        if (et == ETH_ERSPAN2) {
            if (!(flags & 0x1000)) return dec_ether(c, p, n); /* type I: no header */
            if (n < 8) return err(c, WS_ERR_TUNNEL);
            return dec_ether(c, p + 8, n - 8);
        }
        if (et == ETH_ERSPAN3) {
            if (n < 12) return err(c, WS_ERR_TUNNEL);
            uint32_t eh = 12 + ((p[11] & 1) ? 8 : 0); /* O bit: platform sub-header */
            if (n < eh) return err(c, WS_ERR_TUNNEL);
            return dec_ether(c, p + eh, n - eh);
        }
        if (et == ETH_TEB) return dec_ether(c, p, n);
        return dec_ethertype(c, et, p, n);
    }
    default:
        c->d->other_ip++;
        return WS_DEC_IGNORED;
    }
}

static int dec_ipv4(ctx *c, const uint8_t *p, uint32_t n)
{
    if (n < 20 || (p[0] >> 4) != 4) return err(c, WS_ERR_IP_HEADER);
    uint32_t hl = (uint32_t)(p[0] & 15) * 4;
    uint32_t tot = ws_be16(p + 2);
    if (hl < 20 || tot < hl) return err(c, WS_ERR_IP_HEADER);
    if (tot > n) {
        /* TSO captures write 0 in the length; otherwise the length lies */
        if (tot == 0) tot = n;
        else return err(c, WS_ERR_IP_LENGTH);
    }
    c->d->ip_packets++;
    ws_l4 *o = c->out;
    ws_addr_set_v4(&o->src, p + 12);
    ws_addr_set_v4(&o->dst, p + 16);
    o->family = 4;
    uint16_t fo = ws_be16(p + 6);
    uint32_t offset = (uint32_t)(fo & 0x1fff) * 8;
    int more = (fo & 0x2000) != 0;
    const uint8_t *pl = p + hl;
    uint32_t pn = tot - hl;
    if (offset || more) {
        const uint8_t *data;
        uint32_t len;
        int rc = frag_add(c, 4, &o->src, &o->dst, ws_be16(p + 4), p[9], offset, more, pl, pn, &data, &len);
        if (rc != WS_DEC_L4) return rc;
        o->reassembled = 1;
        return dec_transport(c, p[9], data, len);
    }
    return dec_transport(c, p[9], pl, pn);
}

static int dec_ipv6(ctx *c, const uint8_t *p, uint32_t n)
{
    if (n < 40 || (p[0] >> 4) != 6) return err(c, WS_ERR_IP_HEADER);
    uint32_t plen = ws_be16(p + 4);
    if (plen + 40 > n) {
        if (plen == 0) plen = n - 40; /* jumbogram */
        else return err(c, WS_ERR_IP_LENGTH);
    }
    c->d->ip_packets++;
    ws_l4 *o = c->out;
    memcpy(o->src.b, p + 8, 16);
    memcpy(o->dst.b, p + 24, 16);
    o->family = 6;
    uint8_t nh = p[6];
    const uint8_t *q = p + 40;
    uint32_t left = plen;
    for (int i = 0; i < MAX_V6_EXT; i++) {
        if (nh == 0 || nh == 43 || nh == 60) { /* hop-by-hop, routing, destination options */
            if (left < 8) return err(c, WS_ERR_IP_HEADER);
            uint32_t el = ((uint32_t)q[1] + 1) * 8;
            if (el > left) return err(c, WS_ERR_IP_HEADER);
            nh = q[0];
            q += el;
            left -= el;
        } else if (nh == 51) { /* authentication header */
            if (left < 8) return err(c, WS_ERR_IP_HEADER);
            uint32_t el = ((uint32_t)q[1] + 2) * 4;
            if (el > left) return err(c, WS_ERR_IP_HEADER);
            nh = q[0];
            q += el;
            left -= el;
        } else if (nh == 44) { /* fragment */
            if (left < 8) return err(c, WS_ERR_IP_HEADER);
            uint16_t fo = ws_be16(q + 2);
            uint32_t offset = (uint32_t)(fo & 0xfff8);
            int more = fo & 1;
            uint8_t inner = q[0];
            uint32_t id = ws_be32(q + 4);
            q += 8;
            left -= 8;
            if (!offset && !more) { /* atomic fragment */
                nh = inner;
                continue;
            }
            const uint8_t *data;
            uint32_t len;
            int rc = frag_add(c, 6, &o->src, &o->dst, id, inner, offset, more, q, left, &data, &len);
            if (rc != WS_DEC_L4) return rc;
            o->reassembled = 1;
            return dec_transport(c, inner, data, len);
        } else {
            return dec_transport(c, nh, q, left);
        }
    }
    return err(c, WS_ERR_IP_HEADER);
}

static int dec_ip_by_version(ctx *c, const uint8_t *p, uint32_t n)
{
    if (n < 1) return err(c, WS_ERR_SHORT_LINK);
    if ((p[0] >> 4) == 4) return dec_ipv4(c, p, n);
    if ((p[0] >> 4) == 6) return dec_ipv6(c, p, n);
    return err(c, WS_ERR_IP_HEADER);
}

static int dec_ppp(ctx *c, const uint8_t *p, uint32_t n)
{
    if (n >= 2 && p[0] == 0xff && p[1] == 0x03) { /* address and control fields */
        p += 2;
        n -= 2;
    }
    if (n < 1) return err(c, WS_ERR_TUNNEL);
    uint16_t proto;
    if (p[0] & 1) { /* protocol field compression */
        proto = p[0];
        p += 1;
        n -= 1;
    } else {
        if (n < 2) return err(c, WS_ERR_TUNNEL);
        proto = ws_be16(p);
        p += 2;
        n -= 2;
    }
    if (proto == 0x0021) return dec_ipv4(c, p, n);
    if (proto == 0x0057) return dec_ipv6(c, p, n);
    c->d->non_ip++;
    return WS_DEC_IGNORED;
}

static int dec_ethertype(ctx *c, uint16_t et, const uint8_t *p, uint32_t n)
{
    for (int tags = 0;; tags++) {
        switch (et) {
        case ETH_IPV4:
            return dec_ipv4(c, p, n);
        case ETH_IPV6:
            return dec_ipv6(c, p, n);
        case ETH_VLAN:
        case ETH_QINQ:
        case ETH_QINQ_OLD:
            if (n < 4 || tags > 4) return err(c, WS_ERR_SHORT_LINK);
            if (!c->out->vlan) c->out->vlan = ws_be16(p) & 0x0fff;
            et = ws_be16(p + 2);
            p += 4;
            n -= 4;
            continue;
        case ETH_MPLS:
            /* pop labels to the bottom of the stack, then guess by version */
            for (;;) {
                if (n < 4) return err(c, WS_ERR_SHORT_LINK);
                int bottom = p[2] & 1;
                p += 4;
                n -= 4;
                if (bottom) break;
            }
            return dec_ip_by_version(c, p, n);
        case ETH_PPPOE:
            if (n < 6) return err(c, WS_ERR_SHORT_LINK);
            return dec_ppp(c, p + 6, n - 6);
        case ETH_PPP:
            return dec_ppp(c, p, n);
        default:
            c->d->non_ip++;
            return WS_DEC_IGNORED;
        }
    }
}

static int dec_ether(ctx *c, const uint8_t *p, uint32_t n)
{
    if (n < 14) return err(c, WS_ERR_SHORT_LINK);
    uint16_t et = ws_be16(p + 12);
    if (et <= 1500) { /* 802.3 length field: LLC, not IP */
        c->d->non_ip++;
        return WS_DEC_IGNORED;
    }
    return dec_ethertype(c, et, p + 14, n - 14);
}

int ws_decode(ws_decoder *d, const ws_frame *f, ws_l4 *out)
{
    if (d->frag_release >= 0) {
        ws_frag_slot *s = &d->frags[d->frag_release];
        if (s->in_use) {
            s->in_use = 0;
            d->frag_in_use--;
        }
        d->frag_release = -1;
    }
    d->frames++;
    out->vlan = 0;
    out->tunnels = 0;
    out->reassembled = 0;
    out->tcp_flags = 0;
    const uint8_t *p = f->data;
    uint32_t n = f->caplen;
    /* fast path for what a media mirror mostly carries: Ethernet, IPv4 without
     * options or fragmentation, UDP with honest lengths (anything else, and
     * VXLAN, takes the general path below) */
    if (WS_LIKELY(f->linktype == WS_LINK_ETHERNET && n >= 42 && p[12] == 0x08 && p[13] == 0x00 &&
                  p[14] == 0x45 && p[23] == 17 && (ws_be16(p + 20) & 0x3fff) == 0)) {
        uint32_t tot = ws_be16(p + 16), ulen = ws_be16(p + 38);
        uint16_t dport = ws_be16(p + 36);
        if (WS_LIKELY(tot >= 28 && tot <= n - 14 && ulen >= 8 && ulen <= tot - 20 && dport != d->vxlan_port)) {
            d->ip_packets++;
            d->udp++;
            ws_addr_set_v4(&out->src, p + 26);
            ws_addr_set_v4(&out->dst, p + 30);
            out->family = 4;
            out->proto = 17;
            out->sport = ws_be16(p + 34);
            out->dport = dport;
            out->payload = p + 42;
            out->payload_len = ulen - 8;
            return WS_DEC_L4;
        }
    }
    ctx c = {d, out, f->ts_ns, f->caplen < f->origlen};
    switch (f->linktype) {
    case WS_LINK_ETHERNET:
        return dec_ether(&c, p, n);
    case WS_LINK_SLL:
        if (n < 16) return err(&c, WS_ERR_SHORT_LINK);
        return dec_ethertype(&c, ws_be16(p + 14), p + 16, n - 16);
    case WS_LINK_SLL2:
        if (n < 20) return err(&c, WS_ERR_SHORT_LINK);
        return dec_ethertype(&c, ws_be16(p), p + 20, n - 20);
    case WS_LINK_RAW:
    case WS_LINK_RAW_BSD:
    case WS_LINK_RAW_OPENBSD:
        return dec_ip_by_version(&c, p, n);
    case WS_LINK_IPV4:
        return dec_ipv4(&c, p, n);
    case WS_LINK_IPV6:
        return dec_ipv6(&c, p, n);
    case WS_LINK_NULL:
    case WS_LINK_LOOP: {
        if (n < 4) return err(&c, WS_ERR_SHORT_LINK);
        /* NULL stores the family in the writer's byte order: accept both */
        uint32_t fam = f->linktype == WS_LINK_LOOP ? ws_be32(p) : ws_le32(p);
        if (fam > 0xffff) fam = ws_be32(p);
        if (fam == 2) return dec_ipv4(&c, p + 4, n - 4);
        if (fam == 24 || fam == 28 || fam == 30) return dec_ipv6(&c, p + 4, n - 4);
        d->non_ip++;
        return WS_DEC_IGNORED;
    }
    default:
        return err(&c, WS_ERR_LINKTYPE);
    }
}
