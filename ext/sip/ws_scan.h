/* Byte searches the SIP and SDP scans are made of: the first byte of a small
 * set in a range, 16 bytes at a time with SSE2 (every x86-64 has it), else a
 * byte at a time. Each takes `lim`, the end of the buffer the range lies in:
 * a 16-byte load is made only where all its bytes lie before lim, so no read
 * ever leaves the caller's buffer (AddressSanitizer sees exact-size blocks).
 * Results never depend on which version runs; WS_SCAN_SCALAR forces the
 * byte-at-a-time one, so tests can hold the two against each other. */
#ifndef WS_SCAN_H
#define WS_SCAN_H

#include "../ws_common.h"

#if defined(__SSE2__) && !defined(WS_SCAN_SCALAR)
#include <emmintrin.h>
#define WS_SCAN_SSE2 1
#else
#define WS_SCAN_SSE2 0
#endif

#if WS_SCAN_SSE2
typedef __m128i ws_vec;
WS_INLINE ws_vec ws_vec_load(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }
WS_INLINE ws_vec ws_vec_eq(ws_vec x, uint8_t c) { return _mm_cmpeq_epi8(x, _mm_set1_epi8((char)c)); }
WS_INLINE uint32_t ws_vec_bits(ws_vec m) { return (uint32_t)_mm_movemask_epi8(m); }
/* bytes <= c (unsigned) */
WS_INLINE ws_vec ws_vec_le(ws_vec x, uint8_t c) { return _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8((char)c)), x); }
#endif

/* The first byte equal to a or b in [q, e), or e. */
WS_INLINE const uint8_t *ws_find_either(const uint8_t *q, const uint8_t *e, const uint8_t *lim, uint8_t a, uint8_t b)
{
#if WS_SCAN_SSE2
    for (; q < e && lim - q >= 16; q += 16) {
        ws_vec x = ws_vec_load(q);
        uint32_t m = ws_vec_bits(_mm_or_si128(ws_vec_eq(x, a), ws_vec_eq(x, b)));
        if (m) {
            const uint8_t *r = q + __builtin_ctz(m);
            return r < e ? r : e;
        }
    }
#else
    (void)lim;
#endif
    for (; q < e; q++)
        if (*q == a || *q == b) return q;
    return e;
}

/* The first byte equal to c in [q, e), or NULL: memchr, inlined (the ranges
 * here are a few dozen bytes, shorter than a call to the library costs). */
WS_INLINE const uint8_t *ws_find_byte(const uint8_t *q, const uint8_t *e, const uint8_t *lim, uint8_t c)
{
    const uint8_t *r = ws_find_either(q, e, lim, c, c);
    return r < e ? r : NULL;
}

#endif
