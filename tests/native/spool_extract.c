/* Drives the spool and the per-call extraction without Python, so that
 * tests/test_write_pcap.py can build them with AddressSanitizer and
 * UndefinedBehaviorSanitizer and feed them damaged captures.
 *
 * usage: spool_extract WORKDIR FILE...
 * For each file: every frame goes through a small spool (forcing rotation),
 * then the Call-IDs and a few media endpoints found in the file are extracted
 * from the file itself and again from the spool's segments. One line per
 * file: "done frames=... written=...". Exit 2 when a file was unreadable. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ext/capture/ws_extract.h"
#include "../../ext/capture/ws_pcap.h"
#include "../../ext/capture/ws_spool.h"
#include "../../ext/decode/ws_decode.h"
#include "../../ext/sip/ws_sip.h"

#define MAX_CALLS 8
#define MAX_SEGMENTS 64

static uint8_t call_ids[MAX_CALLS][256];
static uint32_t call_id_lens[MAX_CALLS];
static ws_endpoint media[MAX_CALLS];

static uint64_t written(const ws_extract_call *calls, uint32_t n)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += calls[i].sip_frames + calls[i].tcp_frames + calls[i].media_frames + calls[i].fragment_frames;
    return total;
}

int main(int argc, char **argv)
{
    if (argc < 2) return 0;
    const char *work = argv[1];
    int status = 0;
    static ws_decoder dec;
    for (int a = 2; a < argc; a++) {
        char spool_dir[1024], out[MAX_CALLS][1100];
        snprintf(spool_dir, sizeof spool_dir, "%s/spool", work);
        ws_spool spool;
        if (ws_spool_open(&spool, spool_dir, 330u << 10, 700u << 10, 64u << 10)) {
            printf("spool: %s\n", spool.err);
            return 1;
        }
        ws_reader r;
        ws_frame f;
        uint32_t n_calls = 0, n_media = 0;
        uint64_t frames = 0;
        int rc = ws_reader_open(&r, argv[a]);
        ws_decoder_init(&dec);
        if (rc == WS_READ_OK) {
            while ((rc = ws_reader_next(&r, &f)) == WS_READ_OK) {
                frames++;
                ws_spool_frame(&spool, &f);
                ws_l4 l;
                if (ws_decode(&dec, &f, &l) != WS_DEC_L4 || l.proto != 17) continue;
                ws_sip_msg m;
                if (ws_sip_parse(l.payload, l.payload_len, 1, NULL, &m) == WS_SIP_OK) {
                    int known = 0;
                    for (uint32_t i = 0; i < n_calls; i++)
                        known |= call_id_lens[i] == m.call_id.len &&
                                 !memcmp(call_ids[i], l.payload + m.call_id.off, m.call_id.len);
                    if (!known && n_calls < MAX_CALLS && m.call_id.len <= sizeof call_ids[0]) {
                        memcpy(call_ids[n_calls], l.payload + m.call_id.off, m.call_id.len);
                        call_id_lens[n_calls++] = m.call_id.len;
                    }
                } else if (n_media < MAX_CALLS) {
                    media[n_media].addr = l.dst;
                    media[n_media++].port = l.dport;
                }
            }
            ws_reader_close(&r);
        }
        ws_decoder_free(&dec);
        if (rc != WS_READ_EOF) {
            printf("%s: error %d\n", argv[a], rc);
            status = 2;
        }
        ws_spool_close(&spool);

        ws_extract_call calls[MAX_CALLS + 1];
        memset(calls, 0, sizeof calls);
        uint32_t n = 0;
        for (uint32_t i = 0; i <= n_calls && i < MAX_CALLS; i++, n++) {
            snprintf(out[i], sizeof out[i], "%s/call-%u.pcap", work, i);
            calls[i].call_id = call_ids[i];
            calls[i].call_id_len = i < n_calls ? call_id_lens[i] : 0;
            calls[i].from_ns = i == 3 ? WS_TS_MAX / 2 : 0; /* one window that misses, the rest hit */
            calls[i].to_ns = WS_TS_MAX;
            calls[i].media = media;
            calls[i].n_media = i == 0 ? n_media : (uint32_t)(i % (n_media + 1));
            calls[i].out_path = out[i];
            calls[i].max_bytes = i == 1 ? 200 : 1u << 20; /* one file cut at its bound */
        }
        ws_extract_stats st;
        const char *inputs[MAX_SEGMENTS + 1] = {argv[a]};
        ws_extract(inputs, 1, calls, n, &st);
        uint64_t from_file = written(calls, n);
        /* the same calls from the spool's segments, merged */
        uint32_t n_in = 0;
        static char names[MAX_SEGMENTS][1400];
        DIR *d = opendir(spool_dir);
        struct dirent *de;
        while (d && (de = readdir(d)) && n_in < MAX_SEGMENTS) {
            if (strncmp(de->d_name, "spool-", 6)) continue;
            snprintf(names[n_in], sizeof names[n_in], "%s/%s", spool_dir, de->d_name);
            inputs[n_in] = names[n_in];
            n_in++;
        }
        if (d) closedir(d);
        ws_extract(inputs, n_in, calls, n, &st);
        printf("done frames=%llu written=%llu from_spool=%llu segments=%u\n", (unsigned long long)frames,
               (unsigned long long)from_file, (unsigned long long)written(calls, n), n_in);
        for (uint32_t i = 0; i < n; i++) remove(out[i]);
    }
    return status;
}
