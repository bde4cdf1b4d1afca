/* Runs the native SDP scan over length-prefixed bodies (u32 little endian
 * length, then the bytes), each copied into a heap block of exactly its
 * length, so AddressSanitizer and UndefinedBehaviorSanitizer see every read.
 * Checks what the Python side (scan_sdp in ext/_engine.pyx) relies on: every
 * span lies inside the body, every count within its array, every media
 * description's formats and rtpmaps inside the shared pools, every valid
 * address's text (ws_sdp_conn_text) NUL-terminated within its buffer.
 * Usage: sdp_bodies FILE...   Prints "done bodies=N" per file.
 * Exit: 0, or 3 when a result breaks one of those rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ext/sip/ws_sdp.h"
#include "length_prefixed.h"

static int span_ok(ws_span s, uint32_t n) { return s.len == 0 || ((uint64_t)s.off + s.len <= n); }

static int conn_ok(const ws_sdp_conn *c)
{
    char text[WS_SDP_ADDR_TEXT];
    if (c->state > WS_SDP_CONN_VALID) return 0;
    if (c->state != WS_SDP_CONN_VALID) return 1;
    memset(text, 0xa5, sizeof text);
    ws_sdp_conn_text(c, text);
    return c->is_v4 <= 1 && memchr(text, 0, sizeof text) != NULL;
}

static int result_ok(const ws_sdp *s, uint32_t n)
{
    if (s->status != WS_SDP_OK) return 1;
    if (s->n_media > WS_SDP_MAX_MEDIA || s->n_formats > WS_SDP_MAX_FORMATS || s->n_rtpmap > WS_SDP_MAX_RTPMAP)
        return 0;
    if (!conn_ok(&s->conn) || s->direction > WS_SDP_INACTIVE) return 0;
    for (uint16_t i = 0; i < s->n_media; i++) {
        const ws_sdp_media *m = &s->media[i];
        if (!span_ok(m->kind, n) || !span_ok(m->proto, n) || !conn_ok(&m->conn) || m->direction > WS_SDP_INACTIVE)
            return 0;
        if ((uint32_t)m->first_format + m->n_formats > s->n_formats) return 0;
        if ((uint32_t)m->first_rtpmap + m->n_rtpmap > s->n_rtpmap) return 0;
        for (uint16_t k = m->first_format; k < m->first_format + m->n_formats; k++)
            if (!span_ok(s->formats[k].token, n)) return 0;
        for (uint16_t k = m->first_rtpmap; k < m->first_rtpmap + m->n_rtpmap; k++)
            if (!span_ok(s->rtpmap[k].encoding, n)) return 0;
    }
    return 1;
}

static int check_body(const uint8_t *p, uint32_t n, const char *file, unsigned long index)
{
    static ws_sdp s; /* ~10 KB: kept off the stack of the sanitized build */
    memset(&s, 0xa5, sizeof s);
    ws_sdp_parse(p, n, &s);
    if (result_ok(&s, n)) return 0;
    printf("%s: body %lu: a result lies outside its %u bytes or its arrays\n", file, index, n);
    return 3;
}

int main(int argc, char **argv) { return check_records(argc, argv, "bodies", check_body); }
