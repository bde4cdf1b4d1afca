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
 * (ended, then active): `cmp` two of them to compare builds bit for bit.
 * WS_DRIVE_BIND=1: every stream's destination is bound to a call before each
 * round (learnt in an untimed first pass), as SDP binding leaves a replay:
 * the per-packet cost of bound streams, without Python in between.
 * WS_DRIVE_ADOPT_EVERY=k: adoption on, and every k frames a binding for an
 * address no stream uses, as a busy SIP side binds while this engine's
 * streams stay unbound: what adoption costs unbound streams. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <stdio.h>
#include <time.h>

#include "ws_engine_all.c"
#include "cpu_clock.h"

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
    /* destinations to bind (WS_DRIVE_BIND): from a first, untimed pass */
    ws_flow_key *dsts = NULL;
    uint32_t ndst = 0;
    if (getenv("WS_DRIVE_BIND") && atoi(getenv("WS_DRIVE_BIND"))) {
        ws_reader r;
        if (ws_engine_init(&e, 1u << 20) || ws_reader_open(&r, argv[1]) != WS_READ_OK) return 1;
        for (;;) {
            int rc = ws_engine_run(&e, &r, 1u << 20);
            if (rc == WS_RUN_SIGNALLING || rc == WS_RUN_TICK) ws_engine_sig_reset(&e);
            else if (rc == WS_RUN_ENDED) e.rtp.ended_count = 0;
            else break;
        }
        ws_reader_close(&r);
        ws_stream_record *all = malloc(sizeof(ws_stream_record) * (e.rtp.active + 1));
        uint32_t n = ws_rtp_snapshot(&e.rtp, all, e.rtp.active, 0);
        dsts = calloc(n + 1, sizeof *dsts);
        for (uint32_t i = 0; i < n; i++) {
            memcpy(dsts[ndst].dst.b, all[i].dst, 16);
            dsts[ndst++].dport = all[i].dport;
        }
        free(all);
        ws_engine_free(&e);
    }
    for (int round = 0; round < rounds; round++) {
        ws_reader r;
        if (ws_engine_init(&e, 1u << 20)) return 1;
        /* what a G.711 offer's a=rtpmap lines give the binding */
        static const ws_pt_entry g711[] = {{0, WS_PT_AUDIO, 0, 8000}, {8, WS_PT_AUDIO, 0, 8000}};
        uint32_t npts = getenv("WS_DRIVE_NO_RTPMAP") ? 0 : 2;   /* m=audio ... 0 8 without a=rtpmap */
        for (uint32_t i = 0; i < ndst; i++) ws_rtp_bind(&e.rtp, &dsts[i].dst, dsts[i].dport, i + 1, g711, npts, 0);
        FILE *out = round == rounds - 1 && out_path ? fopen(out_path, "wb") : NULL;
        double t0 = cpu_seconds();
        if (ws_reader_open(&r, argv[1]) != WS_READ_OK) {
            fprintf(stderr, "%s: %s\n", argv[1], r.err);
            return 1;
        }
        uint32_t adopt_every = getenv("WS_DRIVE_ADOPT_EVERY") ? (uint32_t)atoi(getenv("WS_DRIVE_ADOPT_EVERY")) : 0;
        e.rtp.adopt_unbound = adopt_every != 0 && !getenv("WS_DRIVE_NO_ADOPT");   /* the control: same binds */
        uint32_t binds = 0;
        for (;;) {
            int rc = ws_engine_run(&e, &r, adopt_every ? adopt_every : 1u << 20);
            if (adopt_every && (rc == WS_RUN_BUDGET || rc == WS_RUN_TICK || rc == WS_RUN_SIGNALLING)) {
                ws_addr nowhere;   /* 198.18.0.0/15 (benchmarking), a port per bind: never a stream's */
                memset(&nowhere, 0, sizeof nowhere);
                nowhere.b[10] = nowhere.b[11] = 0xff;
                nowhere.b[12] = 198, nowhere.b[13] = 18;
                ws_rtp_bind(&e.rtp, &nowhere, (uint16_t)(1024 + binds++ % 60000), 1u << 30, NULL, 0, 0);
            }
            if (rc == WS_RUN_BUDGET) continue;
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
            printf("{\"frames\": %llu, \"rtp_packets\": %llu, \"best_cpu_ms\": %.2f, \"rounds\": %d, "
                   "\"bindings\": %u, \"bound_streams\": %llu}\n",
                   (unsigned long long)e.c.frames, (unsigned long long)e.c.rtp_packets, best * 1e3, rounds,
                   ndst, (unsigned long long)e.rtp.bound_streams);
        ws_engine_free(&e);
    }
    return 0;
}
