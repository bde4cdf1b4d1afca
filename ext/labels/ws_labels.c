#include "ws_labels.h"

#include <stdlib.h>

/* str.isspace() for ASCII: what Python's strip() removes */
static const uint8_t PY_SPACE[256] = {
    ['\t'] = 1, ['\n'] = 1, [0x0b] = 1, [0x0c] = 1, ['\r'] = 1,
    [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, [' '] = 1,
};

static inline uint8_t lower_ascii(uint8_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* str.strip() of [*a, *b) */
static inline void strip(const uint8_t **a, const uint8_t **b)
{
    while (*a < *b && PY_SPACE[**a]) (*a)++;
    while (*b > *a && PY_SPACE[(*b)[-1]]) (*b)--;
}

static inline int has_non_ascii(const uint8_t *p, size_t n)
{
    uint8_t seen = 0;
    for (size_t i = 0; i < n; i++) seen |= p[i];
    return seen >> 7;
}

/* [a, b), stripped as ASCII, is what str.strip() leaves of its decoded text:
 * its ends are ASCII (a non-ASCII character there may be white space) */
static inline int strips_as_text(const uint8_t *a, const uint8_t *b)
{
    return a == b || (a[0] < 0x80 && b[-1] < 0x80);
}

/* the URI functions read text around the first "<" as bytes: right when
 * everything from there on is ASCII (non-ASCII text before it, a display
 * name, is stepped over alike), or when all of it is */
static inline int uri_reads_as_text(const uint8_t *p, uint32_t n)
{
    const uint8_t *lt = memchr(p, '<', n);
    return lt ? !has_non_ascii(lt, (size_t)(p + n - lt)) : !has_non_ascii(p, n);
}

/* p[0..n) lower-cased equals the lower-case literal */
static inline int ci_is(const uint8_t *p, size_t n, const char *lit, size_t k)
{
    if (n != k) return 0;
    for (size_t i = 0; i < n; i++)
        if (lower_ascii(p[i]) != (uint8_t)lit[i]) return 0;
    return 1;
}

static inline const uint8_t *find_last(const uint8_t *p, const uint8_t *e, uint8_t c)
{
    while (e > p)
        if (*--e == c) return e;
    return NULL;
}

/* ======================================================================
 * automata */

static inline int32_t step(const ws_num_tables *t, int32_t s, char digit)
{
    return t->trans[10 * s + (digit - '0')];
}

/* the pattern bits of the patterns the whole of p[0..n) matches */
static uint16_t fullmatch_tags(const ws_num_tables *t, int32_t s, const char *p, uint32_t n)
{
    for (uint32_t i = 0; i < n && s; i++) s = step(t, s, p[i]);
    return t->tags[s];
}

/* re.match(pattern, p) is not None: an accepting state on the way */
static int match_exists(const ws_num_tables *t, int32_t s, const char *p, uint32_t n)
{
    if (t->tags[s]) return 1;
    for (uint32_t i = 0; i < n; i++) {
        s = step(t, s, p[i]);
        if (!s) return 0;
        if (t->tags[s]) return 1;
    }
    return 0;
}

/* re.match(pattern, p).end(), -1 for no match; *took: the tracked group took part */
static int first_match(const ws_num_tables *t, int32_t s, const char *p, uint32_t n, int *took)
{
    int end = -1;
    *took = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint16_t tag = t->tags[s];
        if (tag & WS_LBL_MATCH_NOW) {
            end = (int)i;
            *took = (tag & WS_LBL_MATCH_NOW_GROUP) != 0;
        }
        s = step(t, s, p[i]);
        if (!s) return end;
    }
    if (t->tags[s] & WS_LBL_MATCH_AT_END) {
        *took = (t->tags[s] & WS_LBL_MATCH_AT_END_GROUP) != 0;
        return (int)n;
    }
    return end;
}

/* ======================================================================
 * numbers: labels._number and the parse() steps it takes (_split_number) */

/* _leading_country_code: the shortest known code p starts with; *skip its length; 0 for none */
static uint16_t leading_country_code(const ws_num_tables *t, const char *p, uint32_t n, uint32_t *skip)
{
    uint32_t cc = 0;
    for (uint32_t size = 1; size <= 3 && size <= n; size++) {
        cc = cc * 10 + (uint32_t)(p[size - 1] - '0');
        if (p[0] != '0' && t->ccs[cc].known) {
            *skip = size;
            return (uint16_t)cc;
        }
    }
    return 0;
}

/* _strip_national_prefix into out (WS_LBL_NUMBER_MAX): its length, or -1 for Python */
static int strip_national_prefix(const ws_num_tables *t, const ws_num_plan *plan, const char *num, uint32_t n,
                                 char *out)
{
    int took, end;
    uint32_t len;
    if (!plan->national_prefix || !n || (end = first_match(t, plan->national_prefix, num, n, &took)) < 0) {
        memmove(out, num, n);
        return (int)n;
    }
    if (plan->transform != WS_LBL_TRANSFORM_NONE && took) {
        /* m.expand(rule) + num[m.end():]; WHOLE: the group is all of num, so m.end() == n */
        if (plan->transform != WS_LBL_TRANSFORM_WHOLE || plan->transform_prefix_len + n > WS_LBL_NUMBER_MAX)
            return -1;
        memmove(out + plan->transform_prefix_len, num, n);
        memcpy(out, plan->transform_prefix, plan->transform_prefix_len);
        len = plan->transform_prefix_len + n;
    } else {
        len = n - (uint32_t)end;
        memmove(out, num + end, len);
    }
    /* unchanged when that turns a number of the general description into one that is not */
    if (!(fullmatch_tags(t, plan->general, out, len) & 1) && (fullmatch_tags(t, plan->general, num, n) & 1)) {
        memmove(out, num, n);
        return (int)n;
    }
    return (int)len;
}

enum { DIALLED_NONE = 0, DIALLED_FOUND, DIALLED_RAISES, DIALLED_PYTHON };

/* _dialled_country_code: the country code parse finds in digits dialled in
 * plan's region; FOUND with (*cc, rest), NONE for (0, ""), RAISES for None */
static int dialled_country_code(const ws_num_tables *t, const ws_num_plan *plan, const char *digits, uint32_t n,
                                uint16_t *cc, char *rest, uint32_t *rest_len)
{
    if (plan->idd) {
        int took, end = first_match(t, plan->idd, digits, n, &took);
        if (end >= 0) {
            const char *r = digits + end;
            uint32_t rn = n - (uint32_t)end, skip = 0;
            if (!(rn && r[0] == '0')) {   /* no country code starts with 0: then it was no IDD */
                if (rn <= t->min_nsn) return DIALLED_RAISES;
                *cc = leading_country_code(t, r, rn, &skip);
                if (!*cc) return DIALLED_RAISES;
                *rest_len = rn - skip;
                memmove(rest, r + skip, *rest_len);
                return DIALLED_FOUND;
            }
        }
    }
    if (n >= plan->cc_len && !memcmp(digits, plan->cc_text, plan->cc_len)) {
        char national[WS_LBL_NUMBER_MAX];
        int len = strip_national_prefix(t, plan, digits + plan->cc_len, n - plan->cc_len, national);
        if (len < 0) return DIALLED_PYTHON;
        int general_digits = fullmatch_tags(t, plan->general, digits, n) & 1;
        int general_national = fullmatch_tags(t, plan->general, national, (uint32_t)len) & 1;
        if ((!general_digits && general_national) || n > plan->longest) {
            *cc = plan->cc;
            *rest_len = (uint32_t)len;
            memcpy(rest, national, (size_t)len);
            return DIALLED_FOUND;
        }
    }
    return DIALLED_NONE;
}

/* _split_number for "+digits" (plan NULL: no region) or national digits
 * (plan: the default region's): WS_LBL_OK with (*cc, nsn), WS_LBL_NONE,
 * WS_LBL_PYTHON or WS_LBL_NEED_CC */
static int split_number(const ws_num_tables *t, const ws_num_plan *plan, int plus, const char *digits, uint32_t n,
                        uint16_t *cc, char *nsn, uint32_t *nsn_len, uint16_t *need)
{
    char rest[WS_LBL_NUMBER_MAX], national[WS_LBL_NUMBER_MAX];
    uint32_t rest_len = 0, skip = 0;
    const ws_num_plan *number_plan;
    if (n < 4 || (!plan && !plus) || n > WS_LBL_NUMBER_MAX) return WS_LBL_PYTHON;
    *cc = 0;
    if (plus) {
        *cc = leading_country_code(t, digits, n, &skip);
        if (!*cc) return WS_LBL_NONE;
        rest_len = n - skip;
        memcpy(rest, digits + skip, rest_len);
    } else {
        switch (dialled_country_code(t, plan, digits, n, cc, rest, &rest_len)) {
        case DIALLED_RAISES: return WS_LBL_NONE;
        case DIALLED_PYTHON: return WS_LBL_PYTHON;
        }
    }
    if (!*cc) {   /* a national number of the default region */
        *cc = plan->cc;
        rest_len = n;
        memcpy(rest, digits, n);
        number_plan = plan;
    } else {
        const ws_cc_entry *entry = &t->ccs[*cc];
        if (!entry->built) {
            *need = *cc;
            return WS_LBL_NEED_CC;
        }
        if (!entry->has_plan || entry->python) return WS_LBL_PYTHON;
        number_plan = &entry->plan;
    }
    if (rest_len < t->min_nsn) return WS_LBL_NONE;
    int len = strip_national_prefix(t, number_plan, rest, rest_len, national);
    if (len < 0) return WS_LBL_PYTHON;
    if ((len < 32 && (number_plan->possible >> len) & 1) || len > number_plan->longest) {
        rest_len = (uint32_t)len;
        memcpy(rest, national, rest_len);
    }
    if (rest_len < t->min_nsn || rest_len > t->max_nsn) return WS_LBL_NONE;
    memcpy(nsn, rest, rest_len);
    *nsn_len = rest_len;
    return WS_LBL_OK;
}

/* _region_and_kind: WS_LBL_OK with (*region, *kind), or WS_LBL_NEED_CC / WS_LBL_PYTHON */
static int region_and_kind(const ws_num_tables *t, uint16_t cc, const char *nsn, uint32_t n, uint16_t *region,
                           int *kind, uint16_t *need)
{
    *region = 0;
    *kind = WS_NUM_INVALID;
    if (cc >= WS_LBL_CC_COUNT || !t->ccs[cc].known) return WS_LBL_OK;   /* no region has the code */
    const ws_cc_entry *entry = &t->ccs[cc];
    if (!entry->built) {
        *need = cc;
        return WS_LBL_NEED_CC;
    }
    if (entry->python || n > WS_LBL_NSN_MAX) return WS_LBL_PYTHON;
    for (uint32_t i = entry->first[n]; i < entry->first[n + 1]; i++) {
        const ws_num_candidate *c = &t->candidates[i];
        if (c->leading) {
            if (c->leading != WS_LBL_ALWAYS && !match_exists(t, c->leading, nsn, n)) continue;
            if (!c->possible) return WS_LBL_OK;   /* this region owns the number, and no number of its length */
        }
        uint16_t tags = fullmatch_tags(t, c->kinds, nsn, n), types = tags >> 1;
        if ((tags & 1) && types) {   /* the general description, and the first type that matches */
            *region = c->region;
            *kind = (uint32_t)__builtin_ctz(types) + 1 == c->toll_free ? WS_NUM_TOLL_FREE : WS_NUM_VALID;
            return WS_LBL_OK;
        }
        if (c->leading) return WS_LBL_OK;   /* this region owns the number, valid or not */
    }
    return WS_LBL_OK;
}

/* _NANP_FAST: 1?([2-9][0-9]{9})\Z; the ten digits' offset, or -1 */
static int nanp_fast(const char *p, uint32_t n)
{
    uint32_t off = (n == 11 && p[0] == '1') ? 1 : 0;
    if (n - off != 10 || p[off] < '2') return -1;
    return (int)off;
}

int ws_number_of_dial(const ws_num_tables *t, const ws_num_plan *region_plan, uint16_t default_cc,
                      const char *dial, uint32_t len, ws_number *out, uint16_t *need)
{
    const char *international = NULL;
    uint32_t ilen = 0, nsn_len = 0;
    uint16_t cc;
    int rc, kind, off;
    memset(out, 0, sizeof *out);
    if (!len) return WS_LBL_OK;
    if (dial[0] == '+') {
        international = dial + 1;
        ilen = len - 1;
    } else if (dial[0] == '0' && len >= 2 && dial[1] == '0') {
        international = dial + 2;
        ilen = len - 2;
    } else if (dial[0] == '0' && len >= 3 && dial[1] == '1' && dial[2] == '1' && default_cc == 1) {
        international = dial + 3;
        ilen = len - 3;
    }
    if (international) {
        if (!ilen) return WS_LBL_OK;
        if (international[0] == '1' && (off = nanp_fast(international, ilen)) >= 0) {
            cc = 1;
            nsn_len = 10;
            memcpy(out->nsn, international + off, 10);
        } else if ((rc = split_number(t, NULL, 1, international, ilen, &cc, out->nsn, &nsn_len, need)) != WS_LBL_OK) {
            return rc == WS_LBL_NONE ? WS_LBL_OK : rc;
        }
    } else if (default_cc == 1 && len >= 10 && (off = nanp_fast(dial, len)) >= 0) {
        cc = 1;
        nsn_len = 10;
        memcpy(out->nsn, dial + off, 10);
    } else {
        if (!region_plan) return WS_LBL_PYTHON;   /* a region without a plan: parse decides */
        if ((rc = split_number(t, region_plan, 0, dial, len, &cc, out->nsn, &nsn_len, need)) != WS_LBL_OK)
            return rc == WS_LBL_NONE ? WS_LBL_OK : rc;
    }
    if ((rc = region_and_kind(t, cc, out->nsn, nsn_len, &out->region, &kind, need)) != WS_LBL_OK) return rc;
    out->present = 1;
    out->cc = cc;
    out->nsn_len = (uint8_t)nsn_len;
    out->nsn[nsn_len] = 0;
    out->toll_free = kind == WS_NUM_TOLL_FREE;
    return WS_LBL_OK;
}

/* ======================================================================
 * URIs */

/* _SEPARATORS: visual separators _dial_string removes */
static const uint8_t SEPARATOR[256] = {['-'] = 1, ['.'] = 1, ['('] = 1, [')'] = 1, [' '] = 1, ['\t'] = 1, ['/'] = 1};

static inline int hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = lower_ascii(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* _dial_string(user) for an ASCII user part */
static int dial_string(const uint8_t *user, uint32_t n, char *dial, uint32_t *len)
{
    uint8_t unquoted[1024];
    if (!n) return WS_LBL_NONE;
    if (memchr(user, '%', n)) {   /* urllib.parse.unquote: %XX escapes of ASCII bytes; others: Python */
        uint32_t k = 0;
        if (n > sizeof unquoted) return WS_LBL_PYTHON;
        for (uint32_t i = 0; i < n; i++) {
            int hi, lo;
            if (user[i] == '%' && i + 2 < n && (hi = hex_value(user[i + 1])) >= 0 &&
                (lo = hex_value(user[i + 2])) >= 0) {
                uint8_t b = (uint8_t)(hi * 16 + lo);
                if (b & 0x80) return WS_LBL_PYTHON;   /* decoded as UTF-8 text */
                unquoted[k++] = b;
                i += 2;
            } else {
                unquoted[k++] = user[i];
            }
        }
        user = unquoted;
        n = k;
    }
    /* number, _, params = user.partition(";"); number without separators */
    const uint8_t *semi = memchr(user, ';', n);
    const uint8_t *e = semi ? semi : user + n;
    char number[WS_LBL_DIAL_MAX + 2];
    uint32_t nl = 0;
    int valid = 1;
    for (const uint8_t *q = user; q < e; q++) {
        uint8_t c = *q;
        if (SEPARATOR[c]) continue;
        if (!((c >= '0' && c <= '9') || (c == '+' && nl == 0)) || nl > WS_LBL_DIAL_MAX) {
            valid = 0;   /* no prefix can make it "+" and 1-20 digits */
            break;
        }
        number[nl++] = (char)c;
    }
    if (!valid) return WS_LBL_NONE;
    if (semi && semi + 1 < user + n && !(nl && number[0] == '+')) {
        /* the first phone-context parameter: a global number ("+digits") is put in front */
        const uint8_t *p = semi + 1, *end = user + n;
        while (p <= end) {
            const uint8_t *pe = memchr(p, ';', (size_t)(end - p));
            if (!pe) pe = end;
            const uint8_t *eq = memchr(p, '=', (size_t)(pe - p));
            const uint8_t *ka = p, *kb = eq ? eq : pe;
            strip(&ka, &kb);
            if (ci_is(ka, (size_t)(kb - ka), "phone-context", 13)) {
                const uint8_t *va = eq ? eq + 1 : pe, *vb = pe;
                strip(&va, &vb);
                while (va < vb && *va == '"') va++;
                while (vb > va && vb[-1] == '"') vb--;
                char ctx[WS_LBL_DIAL_MAX + 2];
                uint32_t cl = 0;
                int global = 1;   /* ctx.startswith("+") and ctx[1:].isdigit() */
                for (const uint8_t *q = va; q < vb; q++) {
                    if (SEPARATOR[*q]) continue;
                    if (cl == 0 ? *q != '+' : !(*q >= '0' && *q <= '9')) {
                        global = 0;
                        break;
                    }
                    if (cl <= WS_LBL_DIAL_MAX) ctx[cl] = (char)*q;
                    cl++;
                }
                if (global && cl >= 2) {
                    if (cl + nl > WS_LBL_DIAL_MAX + 1) return WS_LBL_NONE;   /* more than 20 digits */
                    memmove(number + cl, number, nl);
                    memcpy(number, ctx, cl);
                    nl += cl;
                }
                break;
            }
            p = pe + 1;
        }
    }
    /* _DIGITS_RE: \+?[0-9]{1,20}\Z */
    uint32_t digits = nl - (nl && number[0] == '+');
    if (digits < 1 || digits > WS_LBL_DIAL_MAX) return WS_LBL_NONE;
    for (uint32_t i = nl - digits; i < nl; i++)
        if (number[i] == '+') return WS_LBL_NONE;
    memcpy(dial, number, nl);
    *len = nl;
    return WS_LBL_OK;
}

/* s.strip(), then the inside of its first <...> (to the end without a ">"), stripped */
static void inside_angles(const uint8_t **a, const uint8_t **b)
{
    strip(a, b);
    const uint8_t *lt = memchr(*a, '<', (size_t)(*b - *a));
    if (lt) {
        const uint8_t *gt = memchr(lt + 1, '>', (size_t)(*b - lt - 1));
        *a = lt + 1;
        if (gt) *b = gt;
    }
    strip(a, b);
}

int ws_lbl_dial_of_uri(const uint8_t *p, uint32_t n, char *dial, uint32_t *len)
{
    if (!uri_reads_as_text(p, n)) return WS_LBL_PYTHON;
    if (!n) return WS_LBL_NONE;
    const uint8_t *s = p, *e = p + n, *user, *ue;
    inside_angles(&s, &e);
    const uint8_t *colon = memchr(s, ':', (size_t)(e - s));
    size_t scheme = colon ? (size_t)(colon - s) : 0;
    if (scheme && (ci_is(s, scheme, "sip", 3) || ci_is(s, scheme, "sips", 4))) {
        const uint8_t *at = find_last(colon + 1, e, '@');
        if (!at || at == colon + 1) return WS_LBL_NONE;
        user = colon + 1;
        ue = memchr(user, ':', (size_t)(at - user));   /* user:password@host */
        if (!ue) ue = at;
    } else if (scheme && ci_is(s, scheme, "tel", 3)) {
        user = colon + 1;
        ue = e;
    } else if (!colon && !memchr(s, '@', (size_t)(e - s))) {
        user = s;   /* a bare number */
        ue = e;
    } else {
        return WS_LBL_NONE;
    }
    return dial_string(user, (uint32_t)(ue - user), dial, len);
}

int ws_lbl_uri_host(const uint8_t *p, uint32_t n, uint8_t *host, uint32_t *len)
{
    const uint8_t *s = p, *e = p + n;
    if (!uri_reads_as_text(p, n)) return WS_LBL_PYTHON;
    inside_angles(&s, &e);
    if ((size_t)(e - s) >= 4 && ci_is(s, 4, "sip:", 4)) s += 4;
    else if ((size_t)(e - s) >= 5 && ci_is(s, 5, "sips:", 5)) s += 5;
    else return WS_LBL_NONE;
    const uint8_t *at = find_last(s, e, '@');
    if (at) s = at + 1;
    for (const uint8_t *q = s; q < e; q++)
        if (*q == ';' || *q == '?' || *q == '>') {
            e = q;
            break;
        }
    if (s < e && *s == '[') {   /* IPv6 reference */
        const uint8_t *close = memchr(s, ']', (size_t)(e - s));
        s++;
        if (close) e = close;
    } else {
        const uint8_t *colon = memchr(s, ':', (size_t)(e - s));
        if (colon) e = colon;
    }
    strip(&s, &e);
    while (e > s && e[-1] == '.') e--;
    if (s == e) return WS_LBL_NONE;
    *len = (uint32_t)(e - s);
    for (uint32_t i = 0; i < *len; i++) host[i] = lower_ascii(s[i]);
    return WS_LBL_OK;
}

int ws_lbl_split_addresses(const uint8_t *p, uint32_t n, ws_span *out, int max)
{
    int count = 0, quoted = 0, angle = 0;
    uint32_t start = 0;
    for (uint32_t i = 0; i <= n; i++) {
        if (i < n) {
            uint8_t c = p[i];
            if (quoted) {
                if (c == '\\' && i + 1 < n) {
                    i++;
                    continue;
                }
                if (c == '"') quoted = 0;
                continue;
            }
            if (c == '"') quoted = 1;
            else if (c == '<') angle = 1;
            else if (c == '>') angle = 0;
            if (c != ',' || angle) continue;
        }
        const uint8_t *a = p + start, *b = p + i;
        strip(&a, &b);
        if (a < b) {
            if (count == max) return -1;
            out[count].off = (uint32_t)(a - p);
            out[count].len = (uint32_t)(b - a);
            count++;
        }
        start = i + 1;
    }
    return count;
}

/* ======================================================================
 * headers */

int ws_lbl_header_values(const ws_lbl_names *names, const uint8_t *p, uint32_t n, uint8_t *text, uint32_t cap,
                         ws_lbl_values *out)
{
    const uint8_t *end = p + n, *line = memchr(p, '\n', n);
    uint32_t used = 0;
    int current = -1;
    out->count = 0;
    if (!line) return WS_LBL_OK;   /* only the start line */
    line++;
    for (;;) {
        const uint8_t *nl = memchr(line, '\n', (size_t)(end - line));
        const uint8_t *le = nl ? nl : end;
        while (le > line && le[-1] == '\r') le--;
        if (le == line) break;   /* the empty line */
        if ((*line == ' ' || *line == '\t') && current >= 0) {
            /* a folded line: the last value gets " " + line.strip() */
            const uint8_t *a = line, *b = le;
            strip(&a, &b);
            if (!strips_as_text(a, b) || used + 1 + (uint32_t)(b - a) > cap) return WS_LBL_PYTHON;
            text[used++] = ' ';
            memcpy(text + used, a, (size_t)(b - a));
            used += (uint32_t)(b - a);
            out->value[out->count - 1].len += 1 + (uint32_t)(b - a);
        } else {
            const uint8_t *na = line;
            while (na < le && PY_SPACE[*na]) na++;
            current = -1;
            /* most lines start with no name's first character: done */
            if (na < le && (names->first_chars[*na] || (*na & 0x80))) {
                const uint8_t *colon = memchr(line, ':', (size_t)(le - line));
                if (colon) {
                    const uint8_t *nb = colon;
                    strip(&na, &nb);
                    if (has_non_ascii(na, (size_t)(nb - na))) return WS_LBL_PYTHON;   /* str.lower() decides */
                    for (uint32_t k = 0; k < names->count; k++) {
                        const ws_span *nm = &names->name[k];
                        if (!ci_is(na, (size_t)(nb - na), (const char *)names->text + nm->off, nm->len)) continue;
                        const uint8_t *a = colon + 1, *b = le;
                        strip(&a, &b);
                        if (!strips_as_text(a, b) || out->count == WS_LBL_MAX_VALUES ||
                            used + (uint32_t)(b - a) > cap)
                            return WS_LBL_PYTHON;
                        memcpy(text + used, a, (size_t)(b - a));
                        out->name[out->count] = (uint8_t)k;
                        out->value[out->count].off = used;
                        out->value[out->count].len = (uint32_t)(b - a);
                        out->count++;
                        used += (uint32_t)(b - a);
                        current = (int)k;
                        break;
                    }
                }
            }
        }
        if (!nl) break;
        line = nl + 1;
    }
    return WS_LBL_OK;
}

/* ======================================================================
 * rules */

static int in_net(const ws_lbl_net *net, const ws_lbl_addr *a)
{
    if (a->family != (net->v6 ? 6 : 4)) return 0;   /* False across IP versions */
    uint32_t full = net->bits / 8, rest = net->bits % 8;
    if (memcmp(net->addr, a->addr, full)) return 0;
    if (rest) {
        uint8_t mask = (uint8_t)(0xff << (8 - rest));
        if ((net->addr[full] ^ a->addr[full]) & mask) return 0;
    }
    return 1;
}

static int in_nets(const ws_lbl_net *nets, ws_lbl_list list, const ws_lbl_addr *a)
{
    if (!a->family) return 0;
    for (uint32_t i = 0; i < list.count; i++)
        if (in_net(&nets[list.first + i], a)) return 1;
    return 0;
}

static int in_ports(const ws_lbl_rules *r, ws_lbl_list list, int64_t port)
{
    for (uint32_t i = 0; i < list.count; i++)
        if (r->ports[list.first + i] == port) return 1;
    return 0;
}

static int in_trunks(const ws_lbl_rules *r, ws_lbl_list list, uint32_t trunk)
{
    for (uint32_t i = 0; i < list.count; i++)
        if (r->trunk_ids[list.first + i] == trunk) return 1;
    return 0;
}

static int is_string(const ws_lbl_rules *r, ws_lbl_list list, const uint8_t *p, uint32_t n)
{
    for (uint32_t i = 0; i < list.count; i++) {
        const ws_span *s = &r->strings[list.first + i];
        if (s->len == n && !memcmp(r->text + s->off, p, n)) return 1;
    }
    return 0;
}

/* a condition's `header` holds (or it has none): _header_has, a value of the
 * header, stripped, is one of the accepted ones; -1: Python decides (the
 * value's text and an accepted one both not ASCII) */
static int header_holds(const ws_lbl_rules *r, const ws_lbl_cond *c, const ws_lbl_values *v, const uint8_t *vtext)
{
    if (!(c->keys & WS_COND_HEADER)) return 1;
    for (uint32_t i = 0; i < v->count; i++) {
        if (v->name[i] != c->header) continue;
        const uint8_t *a = vtext + v->value[i].off, *b = a + v->value[i].len;
        strip(&a, &b);   /* as str.strip(): the values' ends are ASCII (ws_lbl_header_values) */
        if (r->values_non_ascii && has_non_ascii(a, (size_t)(b - a))) return -1;
        if (is_string(r, c->values, a, (uint32_t)(b - a))) return 1;
    }
    return 0;
}

/* _match_remote: 1 + the first rule matching a remote (remotes tried in
 * order) into *found; -1 when Python must decide */
static int match_remote(const ws_lbl_rules *r, const ws_lbl_list *rules, uint32_t n_rules,
                        const ws_lbl_addr *const *remotes, int n_remotes, const ws_lbl_values *v,
                        const uint8_t *vtext, uint32_t *found)
{
    *found = 0;
    for (int k = 0; k < n_remotes; k++) {
        const ws_lbl_addr *remote = remotes[k];
        for (uint32_t i = 0; i < n_rules; i++) {
            for (uint32_t j = 0; j < rules[i].count; j++) {
                const ws_lbl_cond *c = &r->conds[rules[i].first + j];
                if ((c->keys & WS_COND_NETS) && !in_nets(r->nets, c->nets, remote)) continue;
                if ((c->keys & WS_COND_PORTS) && !in_ports(r, c->ports, remote->port)) continue;
                int has = header_holds(r, c, v, vtext);
                if (has < 0) return -1;
                if (!has) continue;
                *found = i + 1;
                return 0;
            }
        }
    }
    return 0;
}

/* e164 of a number ("+<cc><nsn>") starts with one of the prefixes */
static int e164_has_prefix(const ws_lbl_rules *r, ws_lbl_list list, const ws_number *num)
{
    char e164[32];
    int n = 0;
    char digits[8];
    int k = 0;
    uint32_t cc = num->cc;
    e164[n++] = '+';
    do {
        digits[k++] = (char)('0' + cc % 10);
        cc /= 10;
    } while (cc);
    while (k) e164[n++] = digits[--k];
    memcpy(e164 + n, num->nsn, num->nsn_len);
    n += num->nsn_len;
    for (uint32_t i = 0; i < list.count; i++) {
        const ws_span *s = &r->strings[list.first + i];
        if (s->len <= (uint32_t)n && !memcmp(r->text + s->off, e164, s->len)) return 1;
    }
    return 0;
}

int ws_lbl_match_rules(const ws_lbl_rules *r, const ws_lbl_addr *src, const ws_lbl_addr *dst,
                       const ws_lbl_values *v, const uint8_t *vtext, const uint8_t *pai_host,
                       uint32_t pai_host_len, const ws_number *orig, ws_lbl_match *out)
{
    out->direction = WS_DIR_UNKNOWN;
    out->trunk = out->provider = out->account = 0;
    if (r->need_remotes) {
        ws_lbl_addr none = {0};
        const ws_lbl_addr *s = r->need_addresses ? src : &none, *d = r->need_addresses ? dst : &none;
        /* _need_addresses off: no rule reads an address, and Python leaves them None */
        ws_lbl_addr src_remote = *s, dst_remote = *d;
        src_remote.port = src->port;
        dst_remote.port = dst->port;
        if (r->n_platform) {
            ws_lbl_list all = {0, r->n_platform};
            if (in_nets(r->platform, all, &src_remote)) out->direction = WS_DIR_OUTBOUND;
            else if (in_nets(r->platform, all, &dst_remote)) out->direction = WS_DIR_INBOUND;
        }
        const ws_lbl_addr *remotes[2];
        int n_remotes = 0;
        if (out->direction != WS_DIR_OUTBOUND) remotes[n_remotes++] = &src_remote;
        if (out->direction != WS_DIR_INBOUND) remotes[n_remotes++] = &dst_remote;
        if (match_remote(r, r->trunks, r->n_trunks, remotes, n_remotes, v, vtext, &out->trunk) < 0 ||
            match_remote(r, r->providers, r->n_providers, remotes, n_remotes, v, vtext, &out->provider) < 0)
            return WS_LBL_PYTHON;
    }
    for (uint32_t i = 0; i < r->n_accounts && !out->account; i++) {
        for (uint32_t j = 0; j < r->accounts[i].count; j++) {
            const ws_lbl_cond *c = &r->conds[r->accounts[i].first + j];
            if ((c->keys & WS_COND_TRUNKS) && !in_trunks(r, c->trunks, out->trunk)) continue;
            int has = header_holds(r, c, v, vtext);
            if (has < 0) return WS_LBL_PYTHON;
            if (!has) continue;
            if ((c->keys & WS_COND_DOMAINS) &&
                (!pai_host || !is_string(r, c->domains, pai_host, pai_host_len)))
                continue;
            if ((c->keys & WS_COND_PREFIXES) && (!orig->present || !e164_has_prefix(r, c->prefixes, orig)))
                continue;
            out->account = i + 1;
            break;
        }
    }
    return WS_LBL_OK;
}

/* ======================================================================
 * zone */

static uint32_t npanxx_of(const ws_number *num)
{
    uint32_t v = 0;
    for (int i = 0; i < 6; i++) v = v * 10 + (uint32_t)(num->nsn[i] - '0');
    return v;
}

int ws_lbl_zone(const ws_number *dest, const ws_number *orig, const uint8_t *states, uint16_t us, uint16_t ca,
                uint32_t *zone, uint32_t *npanxx)
{
    *zone = WS_ZONE_UNKNOWN;
    if (!dest->present) return WS_LBL_OK;
    if (dest->toll_free) {
        *zone = WS_ZONE_TOLLFREE;
        return WS_LBL_OK;
    }
    if (!dest->region || !orig->present || !orig->region) return WS_LBL_OK;
    if (dest->region != orig->region) {
        *zone = WS_ZONE_INTL;
        return WS_LBL_OK;
    }
    if (dest->cc != 1) {
        *zone = WS_ZONE_INTRASTATE;   /* a national call outside NANP */
        return WS_LBL_OK;
    }
    if (dest->nsn_len != 10 || orig->nsn_len != 10) return WS_LBL_OK;
    if (!memcmp(dest->nsn, orig->nsn, 3)) {
        *zone = WS_ZONE_LOCAL;
        return WS_LBL_OK;
    }
    if (dest->region != us && dest->region != ca) {   /* the whole territory is one "state" */
        *zone = WS_ZONE_INTRASTATE;
        return WS_LBL_OK;
    }
    uint32_t a = npanxx_of(dest), b = npanxx_of(orig);
    if (!states || !states[a]) {
        *npanxx = a;
        return WS_LBL_PYTHON;
    }
    if (!states[b]) {
        *npanxx = b;
        return WS_LBL_PYTHON;
    }
    if (states[a] == 1 || states[b] == 1) return WS_LBL_OK;
    *zone = states[a] == states[b] ? WS_ZONE_INTRASTATE : WS_ZONE_INTERSTATE;
    return WS_LBL_OK;
}

/* ======================================================================
 * label sets */

static inline uint32_t set_hash(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (uint32_t)key;
}

int ws_lbl_sets_get(const ws_lbl_sets *s, uint64_t key, uint32_t *slot)
{
    if (!s->cap) return 0;
    uint32_t mask = s->cap - 1;
    for (uint32_t i = set_hash(key) & mask;; i = (i + 1) & mask) {
        if (!s->keys[i]) return 0;
        if (s->keys[i] == key + 1) {
            *slot = s->slots[i];
            return 1;
        }
    }
}

int ws_lbl_sets_put(ws_lbl_sets *s, uint64_t key, uint32_t slot)
{
    if (2 * (s->count + 1) > s->cap) {
        uint32_t cap = s->cap ? 2 * s->cap : 64;
        uint64_t *keys = calloc(cap, sizeof *keys);
        uint32_t *slots = calloc(cap, sizeof *slots);
        if (!keys || !slots) {
            free(keys);
            free(slots);
            return -1;
        }
        for (uint32_t i = 0; i < s->cap; i++) {
            if (!s->keys[i]) continue;
            uint32_t j = set_hash(s->keys[i] - 1) & (cap - 1);
            while (keys[j]) j = (j + 1) & (cap - 1);
            keys[j] = s->keys[i];
            slots[j] = s->slots[i];
        }
        free(s->keys);
        free(s->slots);
        s->keys = keys;
        s->slots = slots;
        s->cap = cap;
    }
    uint32_t mask = s->cap - 1, i = set_hash(key) & mask;
    while (s->keys[i] && s->keys[i] != key + 1) i = (i + 1) & mask;
    if (!s->keys[i]) s->count++;
    s->keys[i] = key + 1;
    s->slots[i] = slot;
    return 0;
}

void ws_lbl_sets_clear(ws_lbl_sets *s)
{
    if (s->cap) {
        memset(s->keys, 0, s->cap * sizeof *s->keys);
    }
    s->count = 0;
}

void ws_lbl_sets_free(ws_lbl_sets *s)
{
    free(s->keys);
    free(s->slots);
    memset(s, 0, sizeof *s);
}
