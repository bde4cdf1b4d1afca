/* Runs the native SIP scanner over length-prefixed messages (u32 little
 * endian length, then the bytes), each copied into a heap block of exactly
 * its length, in datagram and in stream framing, so AddressSanitizer and
 * UndefinedBehaviorSanitizer see every read. Checks that the spans the
 * Python side reads (every status but keep-alive and incomplete, see
 * parse_sip in ext/_engine.pyx) lie inside the message.
 * Usage: sip_messages FILE...   Prints "done messages=N" per file.
 * Exit: 0, or 3 when a span points outside its message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ext/sip/ws_sip.h"

static int span_ok(ws_span s, uint32_t n) { return s.len == 0 || ((uint64_t)s.off + s.len <= n); }

int main(int argc, char **argv)
{
    int status = 0;
    for (int a = 1; a < argc; a++) {
        FILE *fh = fopen(argv[a], "rb");
        if (!fh) return 1;
        unsigned long count = 0;
        uint8_t len4[4];
        while (fread(len4, 1, 4, fh) == 4) {
            uint32_t n = (uint32_t)len4[0] | (uint32_t)len4[1] << 8 | (uint32_t)len4[2] << 16 |
                         (uint32_t)len4[3] << 24;
            uint8_t *block = malloc(1 + (size_t)n);
            if (!block || fread(block + 1, 1, n, fh) != n) return 1;
            for (int datagram = 0; datagram < 2; datagram++) {
                ws_sip_msg m;
                memset(&m, 0xa5, sizeof m);
                ws_sip_parse(block + 1, n, datagram, "x-cid", &m);
                if (m.status != WS_SIP_KEEPALIVE && m.status != WS_SIP_INCOMPLETE) {
                    const ws_span spans[] = {m.method_name, m.request_uri, m.reason, m.call_id, m.from_uri,
                                             m.from_tag, m.to_uri, m.to_tag, m.via_branch, m.content_type,
                                             m.session_expires, m.correlation, m.body};
                    int bad = 0;
                    for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++) bad |= !span_ok(spans[i], n);
                    if (bad) {
                        printf("%s: message %lu (datagram=%d): a span lies outside its %u bytes\n", argv[a],
                               count, datagram, n);
                        status = 3;
                    }
                }
            }
            free(block);
            count++;
        }
        fclose(fh);
        printf("done messages=%lu\n", count);
    }
    return status;
}
