/* The call metrics' numbers in C (metrics/aggregate.pyx keeps the Python
 * side: label tuples, names, the per-event reading of a Call):
 *
 *   ws_agg_rows   one row of whole counts and float sums per label set of a
 *                 metric (a counter, a histogram's buckets and sum, an outcome
 *                 row), grown as label sets arrive, never shrunk;
 *   ws_windows    per label set three rings of time buckets (5m = 5 x 1 min,
 *                 1h = 12 x 5 min, 24h = 24 x 1 h): fixed memory whatever the
 *                 traffic; a window's total covers the buckets that overlap
 *                 it, so it slides in steps of its bucket width;
 *   ws_u64_map    an open-addressing map from 64-bit keys to indexes (label
 *                 objects, call_refs, SSRCs).
 *
 * Sums are double additions in event order and counts int64, so every figure
 * is what Python's float and int arithmetic gave the same events (the tests
 * keep that Python code as their oracle). */
#ifndef WS_AGGREGATE_H
#define WS_AGGREGATE_H

#include <math.h>
#include <stdint.h>

/* -- rows ----------------------------------------------------------------- */

typedef struct ws_agg_rows {
    uint32_t ncounts;  /* whole counts per row */
    uint32_t nsums;    /* float sums per row */
    uint32_t n, cap;   /* rows used, allocated */
    int64_t *counts;   /* [row][ncounts] */
    double *sums;      /* [row][nsums] */
} ws_agg_rows;

void ws_agg_rows_init(ws_agg_rows *r, uint32_t ncounts, uint32_t nsums);
/* A new row, zeroed: its index, or -1 when memory is short. */
int64_t ws_agg_rows_add(ws_agg_rows *r);
void ws_agg_rows_free(ws_agg_rows *r);

/* A histogram's bucket for v: the first whose upper bound is >= v (bisect_left),
 * the +Inf bucket (n) for NaN and anything above the last bound. */
static inline uint32_t ws_bucket_of(const double *bounds, uint32_t n, double v)
{
    if (isnan(v)) return n;
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (bounds[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* A histogram row is nbounds + 1 bucket counts and one sum. */
static inline void ws_agg_observe(ws_agg_rows *r, uint32_t row, const double *bounds, uint32_t nbounds, double v)
{
    r->counts[(uint64_t)row * r->ncounts + ws_bucket_of(bounds, nbounds, v)] += 1;
    r->sums[(uint64_t)row * r->nsums] += v;
}

/* -- windows -------------------------------------------------------------- */

#define WS_WINDOWS 3
#define WS_WINDOW_BUCKETS 41   /* 5 + 12 + 24 */

typedef struct ws_window_def {
    const char *name;
    double width;      /* seconds a bucket covers; every width a whole number of the first's */
    uint32_t slots;    /* buckets in the ring */
    uint32_t first;    /* the ring's first bucket among a label set's WS_WINDOW_BUCKETS */
} ws_window_def;

extern const ws_window_def ws_window_defs[WS_WINDOWS];

/* A bucket: its epoch (time // width; -1 at first), the measure added in
 * arrival order, then the count fields, in one run of cells (an event
 * touches a line or two per ring). */
typedef union ws_window_cell {
    int64_t count;
    double sum;
} ws_window_cell;

typedef struct ws_windows {
    uint32_t fields;       /* values per event: whole counts, and the measure */
    uint32_t value_field;  /* the field summed as a float (answered seconds); >= fields: none */
    uint32_t n, cap;       /* label sets */
    ws_window_cell *cells; /* [set][bucket][2 + fields] */
    /* the epochs of the last time added, which hold for every ts with
     * memo_lo <= ts < memo_hi (events come in time order, many a minute):
     * every width is a whole number of the first one's, so one bucket of the
     * first window lies inside one bucket of each other; and for
     * 0 <= ts < 2^40, ts // width is the exact floor of ts / width, so the
     * bounds memo_lo = epoch * width are exact too */
    double memo_lo, memo_hi;
    int64_t memo_epochs[WS_WINDOWS];
} ws_windows;

void ws_windows_init(ws_windows *w, uint32_t fields, uint32_t value_field);
/* A new label set's rings: its index, or -1 when memory is short. */
int64_t ws_windows_add_set(ws_windows *w);
/* Adds an event at time ts: counts[k] to each count field k, value to the
 * measure, in each ring's bucket of ts (a bucket whose epoch has left every
 * window starts again). Returns -1, adding nothing, when ts // width is not
 * a number an int64 holds (Python's int() of it raised). */
int ws_windows_add(ws_windows *w, uint32_t set, double ts, const int64_t *counts, double value);
/* Totals of window k at time now into out[fields] (the counts as floats, the
 * measure summed ring slot by slot); 0 and zeros when no bucket is inside it. */
int ws_windows_total(const ws_windows *w, uint32_t set, uint32_t k, double now, double *out);
void ws_windows_free(ws_windows *w);

/* Python's float floor division a // b, to the last bit (CPython's float_floor_div). */
static inline double ws_py_floordiv(double a, double b)
{
    double mod = fmod(a, b);
    double div = (a - mod) / b;
    if (mod) {
        if ((b < 0) != (mod < 0)) div -= 1.0;
    }
    double floordiv;
    if (div) {
        floordiv = floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
        floordiv = copysign(0.0, a / b);
    }
    return floordiv;
}

/* -- 64-bit key -> index map ---------------------------------------------- */

#define WS_U64_EMPTY UINT64_MAX   /* the one key the map cannot hold */

typedef struct ws_u64_map {
    uint64_t *keys;
    int64_t *values;
    uint32_t mask;    /* slots - 1 (a power of two), 0 before the first put */
    uint32_t count;
} ws_u64_map;

static inline uint32_t ws_u64_slot(uint64_t key, uint32_t mask)
{
    return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

/* The value of key, -1 when absent. */
static inline int64_t ws_u64_map_get(const ws_u64_map *m, uint64_t key)
{
    if (!m->mask) return -1;
    for (uint32_t i = ws_u64_slot(key, m->mask);; i = (i + 1) & m->mask) {
        if (m->keys[i] == key) return m->values[i];
        if (m->keys[i] == WS_U64_EMPTY) return -1;
    }
}

/* Sets key's value (kept at most half full); -1 when memory is short. */
int ws_u64_map_put(ws_u64_map *m, uint64_t key, int64_t value);
void ws_u64_map_remove(ws_u64_map *m, uint64_t key);
void ws_u64_map_clear(ws_u64_map *m);
void ws_u64_map_free(ws_u64_map *m);

#endif
