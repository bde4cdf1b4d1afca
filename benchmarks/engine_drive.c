/* The native engine alone, driven from C: no Python, no SDP binding. For
 * instruction counts (callgrind), profiles (perf) and A/B timing of engine
 * builds, and for checking that two builds give the same stream records.
 *
 *     gcc -O3 -g -std=c11 -fno-strict-aliasing -Iext -o engine_drive benchmarks/engine_drive.c -lm
 *     ./engine_drive capture.pcap [records.bin [rounds]]
 *     valgrind --tool=callgrind ./engine_drive capture.pcap
 *
 * Each round opens the capture and runs it to the end as Engine.run() does
 * (signalling batches thrown away, ended streams kept); it prints the best
 * round's CPU time. records.bin gets every stream record of the last round
 * (ended, then active): `cmp` two of them to compare builds bit for bit. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <time.h>

#include "ws_engine_all.c"

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: engine_drive capture.pcap [records.bin [rounds]]\n");
        return 2;
    }
    const char *out_path = argc > 2 && argv[2][0] ? argv[2] : NULL;
    int rounds = argc > 3 ? atoi(argv[3]) : 1;
    double best = 1e9;
    static ws_engine e;
    for (int round = 0; round < rounds; round++) {
        ws_reader r;
        if (ws_engine_init(&e, 1u << 20)) return 1;
        FILE *out = round == rounds - 1 && out_path ? fopen(out_path, "wb") : NULL;
        double t0 = cpu_seconds();
        if (ws_reader_open(&r, argv[1]) != WS_READ_OK) {
            fprintf(stderr, "%s: %s\n", argv[1], r.err);
            return 1;
        }
        for (;;) {
            int rc = ws_engine_run(&e, &r, 1u << 20);
            if (rc == WS_RUN_SIGNALLING || rc == WS_RUN_TICK) {
                ws_engine_sig_reset(&e);
            } else if (rc == WS_RUN_ENDED) {
                if (out) fwrite(e.rtp.ended, sizeof(ws_stream_record), e.rtp.ended_count, out);
                e.rtp.ended_count = 0;
            } else if (rc == WS_RUN_EOF) {
                break;
            } else if (rc < 0) {
                fprintf(stderr, "%s: %s\n", argv[1], r.err);
                return 1;
            }
        }
        ws_reader_close(&r);
        double t = cpu_seconds() - t0;
        if (t < best) best = t;
        if (out) {
            fwrite(e.rtp.ended, sizeof(ws_stream_record), e.rtp.ended_count, out);
            ws_stream_record *active = malloc(sizeof(ws_stream_record) * (e.rtp.active + 1));
            uint32_t n = ws_rtp_snapshot(&e.rtp, active, e.rtp.active, 0);
            fwrite(active, sizeof *active, n, out);
            free(active);
            fclose(out);
        }
        if (round == rounds - 1)
            printf("{\"frames\": %llu, \"rtp_packets\": %llu, \"best_cpu_ms\": %.2f, \"rounds\": %d}\n",
                   (unsigned long long)e.c.frames, (unsigned long long)e.c.rtp_packets, best * 1e3, rounds);
        ws_engine_free(&e);
    }
    return 0;
}
