/* What the live spool (ext/capture/ws_spool.c, `live --write-pcap`) costs per
 * frame: the engine's per-frame work over a capture held in memory, with and
 * without every frame also appended to the spool, in CPU time (write()
 * syscalls included; the page cache absorbs the data, as it does live).
 *
 *   gcc -O3 -std=c11 -D_GNU_SOURCE -I ext benchmarks/spool_cost.c ext/ws_engine_all.c -lm -o /tmp/spool_cost
 *   /tmp/spool_cost CAPTURE.pcap SPOOL_DIR [rounds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "engine/ws_engine.h"

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void drain(ws_engine *e)
{
    ws_engine_sig_reset(e);
    e->rtp.ended_count = 0;
    e->tick = 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CAPTURE SPOOL_DIR [rounds]\n", argv[0]);
        return 2;
    }
    int rounds = argc > 3 ? atoi(argv[3]) : 3;
    ws_reader r;
    if (ws_reader_open(&r, argv[1]) != WS_READ_OK) {
        fprintf(stderr, "%s: %s\n", argv[1], r.err);
        return 2;
    }
    size_t cap = 1 << 20, n = 0, bytes = 0;
    ws_frame *frames = malloc(cap * sizeof *frames);
    ws_frame f;
    while (ws_reader_next(&r, &f) == WS_READ_OK) {
        if (n == cap) frames = realloc(frames, (cap *= 2) * sizeof *frames);
        uint8_t *copy = malloc(f.caplen ? f.caplen : 1);
        memcpy(copy, f.data, f.caplen);
        frames[n] = f;
        frames[n++].data = copy;
        bytes += f.caplen;
    }
    ws_reader_close(&r);
    double best[2] = {1e30, 1e30};
    uint64_t spooled = 0, deleted = 0;
    for (int round = 0; round < rounds; round++) {
        for (int with_spool = 0; with_spool < 2; with_spool++) {
            static ws_engine e;
            ws_spool spool;
            if (ws_engine_init(&e, 200000)) return 1;
            if (with_spool) {
                if (ws_spool_open(&spool, argv[2], 64ull << 20, 1ull << 30, 1u << 20)) {
                    fprintf(stderr, "%s\n", spool.err);
                    return 1;
                }
                e.spool = &spool;
            }
            double t0 = cpu_s();
            for (size_t i = 0; i < n; i++) {
                /* the same per-frame steps as ws_engine_run_ring */
                if (e.spool) ws_spool_frame(e.spool, &frames[i]);
                ws_engine_frame(&e, &frames[i]);
                if (e.sig_count > WS_SIG_RECORDS / 2 || e.rtp.ended_count || e.tick) drain(&e);
            }
            if (with_spool) ws_spool_flush(&spool);
            double dt = cpu_s() - t0;
            if (dt < best[with_spool]) best[with_spool] = dt;
            if (with_spool) {
                spooled = spool.c.bytes;
                deleted = spool.c.segments_deleted;
                ws_spool_close(&spool);
            }
            ws_engine_free(&e);
        }
    }
    printf("%zu frames, %.1f MB of frames, best of %d rounds, CPU time\n", n, bytes / 1e6, rounds);
    printf("engine alone:       %.3f s  %.2f Mframes/s  %.1f ns/frame\n", best[0], n / best[0] / 1e6,
           best[0] / n * 1e9);
    printf("engine + spool:     %.3f s  %.2f Mframes/s  %.1f ns/frame (%.1f MB spooled, %llu segments rotated out)\n",
           best[1], n / best[1] / 1e6, best[1] / n * 1e9, spooled / 1e6, (unsigned long long)deleted);
    printf("spool cost:         %.1f ns/frame (+%.0f %%)\n", (best[1] - best[0]) / n * 1e9,
           100 * (best[1] - best[0]) / best[0]);
    return 0;
}
