/* Types shared by every stage of the native engine: a captured frame, a flow
 * key, and the hash used by every table. Addresses are stored as 16 bytes,
 * IPv4 in its v4-mapped form (::ffff:a.b.c.d), so one key type serves both
 * families and compares as five 64-bit words. */
#ifndef WS_COMMON_H
#define WS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define WS_LIKELY(x) __builtin_expect(!!(x), 1)
#define WS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define WS_INLINE static inline __attribute__((always_inline))
#else
#define WS_LIKELY(x) (x)
#define WS_UNLIKELY(x) (x)
#define WS_INLINE static inline
#endif

/* Latest representable capture time (2^62 ns, year 2116): sources clamp to
 * [0, WS_TS_MAX] so differences of two times never overflow. */
#define WS_TS_MAX ((int64_t)1 << 62)

/* One frame as delivered by a capture source (file reader or live ring). */
typedef struct ws_frame {
    const uint8_t *data;
    uint32_t caplen;   /* bytes present in data */
    uint32_t origlen;  /* bytes on the wire */
    int64_t ts_ns;     /* capture time, Unix epoch nanoseconds */
    uint32_t linktype; /* LINKTYPE_* of the interface */
    uint32_t iface;    /* interface index within the source */
} ws_frame;

typedef struct ws_addr {
    uint8_t b[16];
} ws_addr;

/* (source, destination, SSRC): RFC 3550 section 8.2 says a receiver must tell
 * sources apart by SSRC, and a mirror sees both directions, so both ends are
 * part of the key. */
typedef struct ws_flow_key {
    ws_addr src;
    ws_addr dst;
    uint16_t sport;
    uint16_t dport;
    uint32_t ssrc;
} ws_flow_key;

_Static_assert(sizeof(ws_flow_key) == 40, "flow key must stay five words");

static const uint8_t WS_V4_MAPPED_PREFIX[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

WS_INLINE void ws_addr_set_v4(ws_addr *a, const uint8_t *v4)
{
    memcpy(a->b, WS_V4_MAPPED_PREFIX, 12);
    memcpy(a->b + 12, v4, 4);
}

WS_INLINE int ws_addr_is_v4(const ws_addr *a)
{
    return memcmp(a->b, WS_V4_MAPPED_PREFIX, 12) == 0;
}

WS_INLINE uint64_t ws_load64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

WS_INLINE uint64_t ws_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

WS_INLINE uint64_t ws_flow_hash(const ws_flow_key *k)
{
    const uint8_t *p = (const uint8_t *)k;
    uint64_t h = ws_load64(p) * 0x9e3779b97f4a7c15ULL;
    h ^= ws_load64(p + 8) * 0xc2b2ae3d27d4eb4fULL;
    h ^= ws_load64(p + 16) * 0x165667b19e3779f9ULL;
    h ^= ws_load64(p + 24) * 0xd6e8feb86659fd93ULL;
    h ^= ws_load64(p + 32) * 0x27d4eb2f165667c5ULL;
    return ws_mix64(h);
}

WS_INLINE int ws_flow_key_eq(const ws_flow_key *a, const ws_flow_key *b)
{
    const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
    return ((ws_load64(x) ^ ws_load64(y)) | (ws_load64(x + 8) ^ ws_load64(y + 8)) |
            (ws_load64(x + 16) ^ ws_load64(y + 16)) | (ws_load64(x + 24) ^ ws_load64(y + 24)) |
            (ws_load64(x + 32) ^ ws_load64(y + 32))) == 0;
}

/* One field of a record exported to Python, for building a numpy dtype. */
typedef struct ws_field_desc {
    const char *name;
    const char *format; /* numpy type string */
    size_t offset;
} ws_field_desc;

WS_INLINE uint16_t ws_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
WS_INLINE uint32_t ws_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
WS_INLINE uint16_t ws_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
WS_INLINE uint32_t ws_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

#endif
