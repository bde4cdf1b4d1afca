/* The native SIP scan alone (ext/sip/ws_sip.c), beside the least any scan of
 * the same header sections must do: find their line ends (memchr). Reads a
 * capture with the engine's reader and decoder, keeps the UDP payloads that
 * start like SIP, and times best-of-rounds CPU per message for both.
 *
 *     python -m benchmarks.sip_scan [capture ...] [--source ws_sip.c]
 *     gcc -O3 -std=c11 -fno-strict-aliasing -D_GNU_SOURCE -Iext -DWS_SIP_SOURCE='"sip/ws_sip.c"' \
 *         -o sip_scan benchmarks/sip_scan.c && ./sip_scan capture.pcap [max_messages [rounds]]
 *
 * WS_SIP_SOURCE picks the scanner's source (another version of ws_sip.c, to
 * compare two versions in one run); compiled as the engine compiles it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture/ws_pcap.c"
#include "decode/ws_decode.c"
#include WS_SIP_SOURCE
#include "cpu_clock.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s capture [max_messages [rounds]]\n", argv[0]);
        return 2;
    }
    size_t max = argc > 2 ? strtoul(argv[2], NULL, 10) : 200000;
    int rounds = argc > 3 ? atoi(argv[3]) : 20;
    ws_reader r;
    if (ws_reader_open(&r, argv[1]) != WS_READ_OK) {
        fprintf(stderr, "%s: %s\n", argv[1], r.err);
        return 2;
    }
    ws_decoder d;
    ws_decoder_init(&d);
    size_t n = 0, cap = 1024, bytes = 0;
    uint8_t **msg = malloc(cap * sizeof *msg);
    uint32_t *len = malloc(cap * sizeof *len);
    ws_frame f;
    ws_l4 l;
    while (n < max && ws_reader_next(&r, &f) == WS_READ_OK) {
        if (ws_decode(&d, &f, &l) != WS_DEC_L4 || l.proto != 17 || l.payload_len < 16) continue;
        if (!(l.payload[0] >= 'A' && l.payload[0] <= 'Z')) continue;
        if (n == cap) {
            cap *= 2;
            msg = realloc(msg, cap * sizeof *msg);
            len = realloc(len, cap * sizeof *len);
        }
        msg[n] = malloc(l.payload_len);
        memcpy(msg[n], l.payload, l.payload_len);
        len[n] = l.payload_len;
        bytes += l.payload_len;
        n++;
    }
    ws_reader_close(&r);
    if (!n) {
        fprintf(stderr, "%s: no SIP over UDP\n", argv[1]);
        return 2;
    }
    /* the header sections, as the scan found them: what the floor walks */
    uint32_t *head = malloc(n * sizeof *head);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        ws_sip_msg m;
        ok += ws_sip_parse(msg[i], len[i], 1, NULL, &m) == WS_SIP_OK;
        head[i] = m.header_len ? m.header_len : len[i];
    }
    double best_scan = 1e30, best_floor = 1e30;
    volatile uint64_t sink = 0;
    for (int k = 0; k < rounds; k++) {
        double t = cpu_seconds();
        for (size_t i = 0; i < n; i++) {
            ws_sip_msg m;
            sink += (uint64_t)ws_sip_parse(msg[i], len[i], 1, NULL, &m) + m.cseq;
        }
        t = cpu_seconds() - t;
        if (t < best_scan) best_scan = t;
        t = cpu_seconds();
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = msg[i], *e = p + head[i];
            while ((p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
                sink++;
                p++;
            }
        }
        t = cpu_seconds() - t;
        if (t < best_floor) best_floor = t;
    }
    printf("{\"messages\": %zu, \"parsed_ok\": %zu, \"mean_bytes\": %.0f, \"scan_ns\": %.1f, \"line_ends_ns\": %.1f, "
           "\"rounds\": %d}\n",
           n, ok, (double)bytes / n, best_scan / n * 1e9, best_floor / n * 1e9, rounds);
    return 0;
}
