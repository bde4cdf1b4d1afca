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

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define WS_LITTLE_ENDIAN 1
#else
#define WS_LITTLE_ENDIAN 0
#endif

WS_INLINE uint32_t ws_load32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

#if WS_LITTLE_ENDIAN
/* Bytes 8-15 of a v4-mapped address as one little-endian word: 00 00 ff ff
 * then the four address bytes (v4_raw as loaded from the packet). */
WS_INLINE uint64_t ws_v4_mapped_word(uint32_t v4_raw)
{
    return 0xffff0000ull | (uint64_t)v4_raw << 32;
}
#endif

WS_INLINE void ws_addr_set_v4(ws_addr *a, const uint8_t *v4)
{
#if WS_LITTLE_ENDIAN
    /* two 8-byte stores, so a reader of the key's words gets them forwarded */
    uint64_t lo = 0, hi = ws_v4_mapped_word(ws_load32(v4));
    memcpy(a->b, &lo, 8);
    memcpy(a->b + 8, &hi, 8);
#else
    memcpy(a->b, WS_V4_MAPPED_PREFIX, 12);
    memcpy(a->b + 12, v4, 4);
#endif
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

/* A flow key as its five 64-bit words, so a caller that decoded the packet
 * can hash and compare without building the key in memory first. A v4-mapped
 * key has words 0 and 2 zero: with constants the compiler drops them, and an
 * IPv4 key costs three words. */
typedef struct ws_key_words {
    uint64_t w[5];
} ws_key_words;

WS_INLINE ws_key_words ws_key_words_of(const ws_flow_key *k)
{
    const uint8_t *p = (const uint8_t *)k;
    ws_key_words kw = {{ws_load64(p), ws_load64(p + 8), ws_load64(p + 16), ws_load64(p + 24), ws_load64(p + 32)}};
    return kw;
}

WS_INLINE void ws_key_from_words(ws_flow_key *k, const ws_key_words *kw)
{
    memcpy(k, kw->w, sizeof *k);
}

WS_INLINE uint64_t ws_key_words_hash(const ws_key_words *kw)
{
    uint64_t h = kw->w[0] * 0x9e3779b97f4a7c15ULL;
    h ^= kw->w[1] * 0xc2b2ae3d27d4eb4fULL;
    h ^= kw->w[2] * 0x165667b19e3779f9ULL;
    h ^= kw->w[3] * 0xd6e8feb86659fd93ULL;
    h ^= kw->w[4] * 0x27d4eb2f165667c5ULL;
    return ws_mix64(h);
}

/* Does the key stored at k equal these words? */
WS_INLINE int ws_key_words_eq(const ws_flow_key *k, const ws_key_words *kw)
{
    const uint8_t *x = (const uint8_t *)k;
    return ((ws_load64(x) ^ kw->w[0]) | (ws_load64(x + 8) ^ kw->w[1]) | (ws_load64(x + 16) ^ kw->w[2]) |
            (ws_load64(x + 24) ^ kw->w[3]) | (ws_load64(x + 32) ^ kw->w[4])) == 0;
}

WS_INLINE uint64_t ws_flow_hash(const ws_flow_key *k)
{
    ws_key_words kw = ws_key_words_of(k);
    return ws_key_words_hash(&kw);
}

WS_INLINE int ws_flow_key_eq(const ws_flow_key *a, const ws_flow_key *b)
{
    ws_key_words kw = ws_key_words_of(b);
    return ws_key_words_eq(a, &kw);
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
