/* Drives the native engine over capture files without Python, so the tests
 * can build it with AddressSanitizer and UndefinedBehaviorSanitizer and feed
 * it damaged input. Prints one line per stream and the engine counters. */
#include <stdio.h>
#include <stdlib.h>

#include "../../ext/engine/ws_engine.h"

int main(int argc, char **argv)
{
    int status = 0;
    for (int a = 1; a < argc; a++) {
        static ws_engine e;
        ws_reader r;
        if (ws_engine_init(&e, 4096)) return 1;
        int rc = ws_reader_open(&r, argv[a]);
        if (rc == WS_READ_OK) {
            for (;;) {
                rc = ws_engine_run(&e, &r, 1u << 20);
                /* EOF is 0 and reader errors are negative; every positive
                 * status (batch full, streams ended, budget, tick, ...) means
                 * "drain what you need and call again" */
                if (rc <= 0) break;
                if (rc == WS_RUN_SIGNALLING) ws_engine_sig_reset(&e);
                else if (rc == WS_RUN_ENDED) e.rtp.ended_count = 0;
            }
        }
        if (rc < 0) {
            printf("%s: error %d: %s\n", argv[a], rc, r.err);
            status = 2;
        }
        ws_stream_record *recs = calloc(e.rtp.active + 1, sizeof *recs);
        uint32_t n = ws_rtp_snapshot(&e.rtp, recs, e.rtp.active, 1);
        for (uint32_t i = 0; i < n; i++)
            printf("stream ssrc=%08x sport=%u dport=%u packets=%u lost=%lld dups=%u jitter=%.3f\n",
                   recs[i].ssrc, recs[i].sport, recs[i].dport, recs[i].packets, (long long)recs[i].lost,
                   recs[i].duplicates, recs[i].max_jitter_ms);
        printf("frames=%llu rtp=%llu rtcp=%llu sip=%llu tcp=%llu errors=%llu\n",
               (unsigned long long)e.c.frames, (unsigned long long)e.c.rtp_packets,
               (unsigned long long)e.c.rtcp_packets, (unsigned long long)e.c.sip_udp,
               (unsigned long long)e.c.tcp_segments, (unsigned long long)e.c.decode_errors);
        free(recs);
        if (r.fd >= 0 || r.map) ws_reader_close(&r);
        ws_engine_free(&e);
    }
    return status;
}
