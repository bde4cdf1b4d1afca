/* The call metrics' numbers (ws_aggregate.h). */
#include "ws_aggregate.h"

#include <stdlib.h>
#include <string.h>

/* -- rows ----------------------------------------------------------------- */

void ws_agg_rows_init(ws_agg_rows *r, uint32_t ncounts, uint32_t nsums)
{
    memset(r, 0, sizeof(*r));
    r->ncounts = ncounts;
    r->nsums = nsums;
}

int64_t ws_agg_rows_add(ws_agg_rows *r)
{
    if (r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 16;
        int64_t *counts = realloc(r->counts, (size_t)cap * (r->ncounts ? r->ncounts : 1) * sizeof(int64_t));
        if (!counts) return -1;
        r->counts = counts;
        double *sums = realloc(r->sums, (size_t)cap * (r->nsums ? r->nsums : 1) * sizeof(double));
        if (!sums) return -1;
        r->sums = sums;
        r->cap = cap;
    }
    uint32_t row = r->n++;
    memset(r->counts + (size_t)row * r->ncounts, 0, r->ncounts * sizeof(int64_t));
    for (uint32_t k = 0; k < r->nsums; k++) r->sums[(size_t)row * r->nsums + k] = 0.0;
    return row;
}

void ws_agg_rows_free(ws_agg_rows *r)
{
    free(r->counts);
    free(r->sums);
    memset(r, 0, sizeof(*r));
}

/* -- windows -------------------------------------------------------------- */

const ws_window_def ws_window_defs[WS_WINDOWS] = {
    {"5m", 60.0, 5, 0},
    {"1h", 300.0, 12, 5},
    {"24h", 3600.0, 24, 17},
};

#define CELLS_PER_BUCKET(w) (2 + (size_t)(w)->fields)
#define MEMO_LIMIT 1099511627776.0   /* 2^40 */

void ws_windows_init(ws_windows *w, uint32_t fields, uint32_t value_field)
{
    memset(w, 0, sizeof(*w));
    w->fields = fields;
    w->value_field = value_field;
    w->memo_lo = 1.0;   /* matches nothing */
    w->memo_hi = 0.0;
}

int64_t ws_windows_add_set(ws_windows *w)
{
    size_t per_set = WS_WINDOW_BUCKETS * CELLS_PER_BUCKET(w);
    if (w->n == w->cap) {
        uint32_t cap = w->cap ? w->cap * 2 : 16;
        ws_window_cell *cells = realloc(w->cells, (size_t)cap * per_set * sizeof(ws_window_cell));
        if (!cells) return -1;
        w->cells = cells;
        w->cap = cap;
    }
    uint32_t set = w->n++;
    ws_window_cell *c = w->cells + (size_t)set * per_set;
    for (uint32_t b = 0; b < WS_WINDOW_BUCKETS; b++, c += CELLS_PER_BUCKET(w)) {
        c[0].count = -1;
        c[1].sum = 0.0;
        for (uint32_t f = 0; f < w->fields; f++) c[2 + f].count = 0;
    }
    return set;
}

static ws_window_cell *bucket(const ws_windows *w, uint32_t set, uint32_t b)
{
    return w->cells + ((size_t)set * WS_WINDOW_BUCKETS + b) * CELLS_PER_BUCKET(w);
}

/* ts // width as an int64, as Python's int() of it; 0 when it is not one. */
static int window_epoch(double ts, double width, int64_t *epoch)
{
    double q = ws_py_floordiv(ts, width);
    if (!(q >= -9.2e18 && q <= 9.2e18)) return 0;   /* NaN, inf, or beyond int64 */
    *epoch = (int64_t)q;
    return 1;
}

static int epochs_of(ws_windows *w, double ts, int64_t *epochs)
{
    if (w->memo_lo <= ts && ts < w->memo_hi) {
        memcpy(epochs, w->memo_epochs, sizeof(w->memo_epochs));
        return 1;
    }
    for (uint32_t k = 0; k < WS_WINDOWS; k++)
        if (!window_epoch(ts, ws_window_defs[k].width, &epochs[k])) return 0;
    if (0.0 <= ts && ts < MEMO_LIMIT) {
        w->memo_lo = (double)epochs[0] * ws_window_defs[0].width;
        w->memo_hi = (double)(epochs[0] + 1) * ws_window_defs[0].width;
        memcpy(w->memo_epochs, epochs, sizeof(w->memo_epochs));
    }
    return 1;
}

int ws_windows_add(ws_windows *w, uint32_t set, double ts, const int64_t *counts, double value)
{
    int64_t epochs[WS_WINDOWS];
    if (!epochs_of(w, ts, epochs)) return -1;
    for (uint32_t k = 0; k < WS_WINDOWS; k++) {
        const ws_window_def *d = &ws_window_defs[k];
        int64_t slot = epochs[k] % (int64_t)d->slots;
        if (slot < 0) slot += d->slots;
        ws_window_cell *c = bucket(w, set, d->first + (uint32_t)slot);
        if (c[0].count != epochs[k]) {   /* the bucket's previous epoch has left every window */
            c[0].count = epochs[k];
            c[1].sum = 0.0 + value;
            for (uint32_t f = 0; f < w->fields; f++) c[2 + f].count = counts[f];
        } else {
            c[1].sum += value;
            for (uint32_t f = 0; f < w->fields; f++) c[2 + f].count += counts[f];
        }
    }
    return 0;
}

int ws_windows_total(const ws_windows *w, uint32_t set, uint32_t k, double now, double *out)
{
    const ws_window_def *d = &ws_window_defs[k];
    int64_t current;
    double value = 0.0;
    int any = 0;
    for (uint32_t f = 0; f < w->fields; f++) out[f] = 0.0;
    if (!window_epoch(now, d->width, &current)) return 0;
    /* counts summed as int64 (exact), then made floats, as the packed Python ints were */
    for (uint32_t f = 0; f < w->fields; f++) {
        int64_t total = 0;
        for (uint32_t s = 0; s < d->slots; s++) {
            const ws_window_cell *c = bucket(w, set, d->first + s);
            if (current - (int64_t)d->slots < c[0].count && c[0].count <= current) total += c[2 + f].count;
        }
        out[f] = (double)total;
    }
    for (uint32_t s = 0; s < d->slots; s++) {
        const ws_window_cell *c = bucket(w, set, d->first + s);
        if (current - (int64_t)d->slots < c[0].count && c[0].count <= current) {
            value = any ? value + c[1].sum : c[1].sum;
            any = 1;
        }
    }
    if (!any) return 0;
    if (w->value_field < w->fields) out[w->value_field] = value;
    return 1;
}

void ws_windows_free(ws_windows *w)
{
    free(w->cells);
    w->cells = NULL;
    w->n = w->cap = 0;
}

/* -- 64-bit key -> index map ---------------------------------------------- */

static int u64_map_resize(ws_u64_map *m, uint32_t slots)
{
    uint64_t *keys = malloc((size_t)slots * sizeof(uint64_t));
    int64_t *values = malloc((size_t)slots * sizeof(int64_t));
    if (!keys || !values) {
        free(keys);
        free(values);
        return -1;
    }
    for (uint32_t i = 0; i < slots; i++) keys[i] = WS_U64_EMPTY;
    uint32_t old_slots = m->mask ? m->mask + 1 : 0;
    uint64_t *old_keys = m->keys;
    int64_t *old_values = m->values;
    m->keys = keys;
    m->values = values;
    m->mask = slots - 1;
    for (uint32_t i = 0; i < old_slots; i++) {
        if (old_keys[i] == WS_U64_EMPTY) continue;
        uint32_t j = ws_u64_slot(old_keys[i], m->mask);
        while (keys[j] != WS_U64_EMPTY) j = (j + 1) & m->mask;
        keys[j] = old_keys[i];
        values[j] = old_values[i];
    }
    free(old_keys);
    free(old_values);
    return 0;
}

int ws_u64_map_put(ws_u64_map *m, uint64_t key, int64_t value)
{
    if (!m->mask || (m->count + 1) * 2 > m->mask + 1) {
        if (u64_map_resize(m, m->mask ? (m->mask + 1) * 2 : 16) != 0) return -1;
    }
    uint32_t i = ws_u64_slot(key, m->mask);
    while (m->keys[i] != WS_U64_EMPTY && m->keys[i] != key) i = (i + 1) & m->mask;
    if (m->keys[i] == WS_U64_EMPTY) m->count++;
    m->keys[i] = key;
    m->values[i] = value;
    return 0;
}

void ws_u64_map_remove(ws_u64_map *m, uint64_t key)
{
    if (!m->mask) return;
    uint32_t i = ws_u64_slot(key, m->mask);
    while (m->keys[i] != key) {
        if (m->keys[i] == WS_U64_EMPTY) return;
        i = (i + 1) & m->mask;
    }
    /* backward-shift deletion: no tombstones, lookups stop at the first empty slot */
    for (uint32_t j = (i + 1) & m->mask; m->keys[j] != WS_U64_EMPTY; j = (j + 1) & m->mask) {
        uint32_t home = ws_u64_slot(m->keys[j], m->mask);
        /* move j into the hole at i unless its home lies cyclically in (i, j] */
        if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
            m->keys[i] = m->keys[j];
            m->values[i] = m->values[j];
            i = j;
        }
    }
    m->keys[i] = WS_U64_EMPTY;
    m->count--;
}

void ws_u64_map_clear(ws_u64_map *m)
{
    if (m->mask)
        for (uint32_t i = 0; i <= m->mask; i++) m->keys[i] = WS_U64_EMPTY;
    m->count = 0;
}

void ws_u64_map_free(ws_u64_map *m)
{
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof(*m));
}
