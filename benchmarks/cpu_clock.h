/* CPU seconds of this process, for the native benchmark drivers (not the
 * reference loop, which stays one self-contained file). */
#ifndef WS_BENCH_CPU_CLOCK_H
#define WS_BENCH_CPU_CLOCK_H

#include <time.h>

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#endif
