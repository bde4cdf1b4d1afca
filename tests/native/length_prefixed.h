/* Reads files of length-prefixed records (u32 little endian length, then the
 * bytes) and hands each record to a checker in a heap block of exactly its
 * length, so AddressSanitizer and UndefinedBehaviorSanitizer see every read
 * past its end. */
#ifndef LENGTH_PREFIXED_H
#define LENGTH_PREFIXED_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Returns 0 when the record passes, 3 when a result breaks a rule. */
typedef int (*record_check)(const uint8_t *p, uint32_t n, const char *file, unsigned long index);

/* Runs check over every record of every file; prints "done <noun>=N" per
 * file. Exit status: 0, 3 when any check failed, 1 on a file it cannot read. */
static int check_records(int argc, char **argv, const char *noun, record_check check)
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
            if (check(block + 1, n, argv[a], count)) status = 3;
            free(block);
            count++;
        }
        fclose(fh);
        printf("done %s=%lu\n", noun, count);
    }
    return status;
}

#endif
