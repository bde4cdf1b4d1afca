/* Like harness.c, but every frame is copied into a heap block of exactly its
 * captured length before the engine sees it, so AddressSanitizer reports any
 * read past the captured bytes (the reader's memory map would hide it).
 * It also checks the reader's side of the contract: a frame read from a
 * memory-mapped file must lie inside the bytes that ws_reader_next consumed
 * (its record or block); otherwise it prints where and aborts.
 * Usage: exact_frames FILE...
 * Prints "done frames=..." after each file. Exit: 0 all read, 2 some file
 * damaged, 1 out of memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ext/engine/ws_engine.h"

int main(int argc, char **argv)
{
    int status = 0;
    for (int a = 1; a < argc; a++) {
        static ws_engine e;
        ws_reader r;
        if (ws_engine_init(&e, 4096)) return 1;
        int rc = ws_reader_open(&r, argv[a]);
        uint64_t frames = 0;
        while (rc == WS_READ_OK) {
            ws_frame f;
            uint64_t before = r.pos;
            rc = ws_reader_next(&r, &f);
            if (rc != WS_READ_OK) break;
            if (r.map && f.caplen) {
                uint64_t off = (uint64_t)(uintptr_t)f.data - (uint64_t)(uintptr_t)r.map;
                if ((uintptr_t)f.data < (uintptr_t)r.map || off < before || off + f.caplen > r.pos) {
                    printf("%s: frame %llu: captured bytes at file offsets %llu..%llu lie outside the "
                           "record(s) read, %llu..%llu\n", argv[a], (unsigned long long)frames,
                           (unsigned long long)off, (unsigned long long)(off + f.caplen),
                           (unsigned long long)before, (unsigned long long)r.pos);
                    fflush(stdout);
                    abort();
                }
            }
            /* one spare byte in front, so an empty frame still has a
             * pointer that is not NULL and owns no readable byte */
            uint8_t *block = malloc(1 + (size_t)f.caplen);
            if (!block) return 1;
            block[0] = 0;
            memcpy(block + 1, f.data, f.caplen);
            ws_frame g = f;
            g.data = block + 1;
            ws_engine_frame(&e, &g);
            free(block);
            frames++;
            /* keep the batches drained as the Python side would */
            ws_engine_sig_reset(&e);
            e.rtp.ended_count = 0;
        }
        if (rc < 0) {
            printf("%s: error %d: %s\n", argv[a], rc, r.err);
            status = 2;
        }
        printf("done frames=%llu errors=%llu\n", (unsigned long long)frames,
               (unsigned long long)e.c.decode_errors);
        if (r.fd >= 0 || r.map) ws_reader_close(&r);
        ws_engine_free(&e);
    }
    return status;
}
