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
#include "length_prefixed.h"

static int span_ok(ws_span s, uint32_t n) { return s.len == 0 || ((uint64_t)s.off + s.len <= n); }

static int check_message(const uint8_t *p, uint32_t n, const char *file, unsigned long index)
{
    int status = 0;
    for (int datagram = 0; datagram < 2; datagram++) {
        ws_sip_msg m;
        memset(&m, 0xa5, sizeof m);
        ws_sip_parse(p, n, datagram, "x-cid", &m);
        if (m.status == WS_SIP_KEEPALIVE || m.status == WS_SIP_INCOMPLETE) continue;
        const ws_span spans[] = {m.method_name, m.request_uri, m.reason, m.call_id, m.from_uri,
                                 m.from_tag, m.to_uri, m.to_tag, m.via_branch, m.content_type,
                                 m.session_expires, m.correlation, m.body};
        int bad = 0;
        for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++) bad |= !span_ok(spans[i], n);
        if (bad) {
            printf("%s: message %lu (datagram=%d): a span lies outside its %u bytes\n", file, index, datagram, n);
            status = 3;
        }
    }
    return status;
}

int main(int argc, char **argv) { return check_records(argc, argv, "messages", check_message); }
