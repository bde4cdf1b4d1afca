#include "ws_sdp.h"

#include <arpa/inet.h>
#include <sys/socket.h>

/* Where the lines after an m= line go: to the session (before any m= line,
 * or after an m= line the Python parser rejects), to a kept media
 * description, or nowhere (an m= line beyond WS_SDP_MAX_MEDIA). */
#define SDP_TARGET_SESSION (-1)
#define SDP_TARGET_DROPPED (-2)

/* More digits than this could exceed uint32 (Python's int() would not care):
 * such numbers send the body to the Python parser. */
#define SDP_MAX_DIGITS 9

static int sdp_ws(uint8_t c) { return c == ' ' || c == '\t'; }

/* Bytes whose meaning in the Python parser (which decodes UTF-8 and splits
 * and strips on Unicode whitespace and line breaks: \v \f \x1c-\x1f \x85 ...)
 * this scan does not reproduce. */
static int sdp_unusual(uint8_t c) { return c >= 0x80 || (c < 0x20 && c != '\t' && c != '\r' && c != '\n'); }

/* A token of the line: [*a, *b) after skipping blanks from `from`; 0 at the end. */
static int sdp_next_token(const uint8_t *from, const uint8_t *end, const uint8_t **a, const uint8_t **b)
{
    while (from < end && sdp_ws(*from)) from++;
    if (from == end) return 0;
    const uint8_t *q = from;
    while (q < end && !sdp_ws(*q)) q++;
    *a = from;
    *b = q;
    return 1;
}

typedef enum sdp_digits_result {
    SDP_DIGITS_NO = 0,   /* empty or not all digits: Python's isdigit() is False */
    SDP_DIGITS_YES,      /* value fits */
    SDP_DIGITS_TOO_LONG, /* all digits, more than SDP_MAX_DIGITS */
} sdp_digits_result;

static sdp_digits_result sdp_all_digits(const uint8_t *a, const uint8_t *b, uint32_t *value)
{
    if (a == b) return SDP_DIGITS_NO;
    uint32_t v = 0;
    for (const uint8_t *q = a; q < b; q++) {
        if (*q < '0' || *q > '9') return SDP_DIGITS_NO;
        if (q - a < SDP_MAX_DIGITS) v = v * 10 + (uint32_t)(*q - '0');
    }
    if (b - a > SDP_MAX_DIGITS) return SDP_DIGITS_TOO_LONG;
    *value = v;
    return SDP_DIGITS_YES;
}

static ws_span sdp_span(const uint8_t *base, const uint8_t *a, const uint8_t *b)
{
    ws_span s = {(uint32_t)(a - base), (uint32_t)(b - a)};
    return s;
}

static int sdp_literal_is(const uint8_t *a, const uint8_t *b, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(b - a) == n && !memcmp(a, lit, n);
}

/* c=<nettype> <addrtype> <address>[/ttl][/count]. Like sdp.py: nettype must
 * be "IN"; "IP6" means IPv6 and anything else IPv4; the address must be one
 * inet_pton() accepts (its text, as inet_ntop() prints it: ws_sdp_conn_text). */
static void sdp_parse_connection(const uint8_t *v, const uint8_t *end, ws_sdp_conn *c)
{
    const uint8_t *t0, *t0e, *t1, *t1e, *t2, *t2e;
    c->state = WS_SDP_CONN_INVALID;
    if (!sdp_next_token(v, end, &t0, &t0e) || !sdp_next_token(t0e, end, &t1, &t1e) || !sdp_next_token(t1e, end, &t2, &t2e))
        return;
    if (!sdp_literal_is(t0, t0e, "IN")) return;
    const uint8_t *slash = memchr(t2, '/', (size_t)(t2e - t2));
    if (slash) t2e = slash;
    char text[64];
    size_t len = (size_t)(t2e - t2);
    if (len >= sizeof text) return; /* longer than any address inet_pton() accepts */
    memcpy(text, t2, len);
    text[len] = 0;
    if (sdp_literal_is(t1, t1e, "IP6")) {
        if (inet_pton(AF_INET6, text, c->addr.b) != 1) return;
        c->is_v4 = 0;
    } else {
        uint8_t v4[4];
        if (inet_pton(AF_INET, text, v4) != 1) return;
        memcpy(c->addr.b, WS_V4_MAPPED_PREFIX, 12);
        memcpy(c->addr.b + 12, v4, 4);
        c->is_v4 = 1;
    }
    c->state = WS_SDP_CONN_VALID;
}

/* Python's int() of the port token (before any "/<count>"): plain digits are
 * read here; forms int() may accept ("+5", "1_0", long) go to Python; the
 * rest make int() fail, which rejects the m= line. */
typedef enum sdp_port_result { SDP_PORT_OK, SDP_PORT_BAD, SDP_PORT_UNUSUAL } sdp_port_result;

void ws_sdp_conn_text(const ws_sdp_conn *c, char *out)
{
    out[0] = 0;
    if (c->state != WS_SDP_CONN_VALID) return;
    const char *ok = c->is_v4 ? inet_ntop(AF_INET, c->addr.b + 12, out, WS_SDP_ADDR_TEXT)
                              : inet_ntop(AF_INET6, c->addr.b, out, WS_SDP_ADDR_TEXT);
    if (!ok) out[0] = 0;
}

static sdp_port_result sdp_parse_port(const uint8_t *a, const uint8_t *b, uint32_t *port)
{
    const uint8_t *slash = memchr(a, '/', (size_t)(b - a));
    if (slash) b = slash;
    sdp_digits_result d = sdp_all_digits(a, b, port);
    if (d == SDP_DIGITS_YES) return SDP_PORT_OK;
    if (d == SDP_DIGITS_TOO_LONG || a == b) return d == SDP_DIGITS_TOO_LONG ? SDP_PORT_UNUSUAL : SDP_PORT_BAD;
    for (const uint8_t *q = a; q < b; q++)
        if (!((*q >= '0' && *q <= '9') || *q == '+' || *q == '-' || *q == '_')) return SDP_PORT_BAD;
    return SDP_PORT_UNUSUAL;
}

static int sdp_parse_m_line(const uint8_t *base, const uint8_t *v, const uint8_t *end, ws_sdp *s, int *target)
{
    const uint8_t *k, *ke, *pt, *pte, *pr, *pre;
    if (!sdp_next_token(v, end, &k, &ke) || !sdp_next_token(ke, end, &pt, &pte) || !sdp_next_token(pte, end, &pr, &pre)) {
        *target = SDP_TARGET_SESSION;
        return 0;
    }
    uint32_t port = 0;
    sdp_port_result r = sdp_parse_port(pt, pte, &port);
    if (r == SDP_PORT_UNUSUAL) return -1;
    if (r == SDP_PORT_BAD) {
        *target = SDP_TARGET_SESSION;
        return 0;
    }
    /* the formats first: a long number among them sends the body to Python
     * whether or not this m= line is kept */
    uint16_t first = s->n_formats, kept = 0;
    const uint8_t *fa, *fb, *from = pre;
    int keep = s->n_media < WS_SDP_MAX_MEDIA;
    while (sdp_next_token(from, end, &fa, &fb)) {
        from = fb;
        uint32_t value = 0;
        sdp_digits_result d = sdp_all_digits(fa, fb, &value);
        if (d == SDP_DIGITS_TOO_LONG) return -1;
        if (!keep) continue;
        if (s->n_formats == WS_SDP_MAX_FORMATS) {
            s->formats_dropped++;
            continue;
        }
        ws_sdp_format *f = &s->formats[s->n_formats++];
        f->token = sdp_span(base, fa, fb);
        f->numeric = d == SDP_DIGITS_YES;
        f->value = value;
        kept++;
    }
    if (!keep) {
        s->media_dropped++;
        *target = SDP_TARGET_DROPPED;
        return 0;
    }
    ws_sdp_media *m = &s->media[s->n_media];
    memset(m, 0, sizeof *m);
    m->kind = sdp_span(base, k, ke);
    m->proto = sdp_span(base, pr, pre);
    m->port = port;
    m->first_format = first;
    m->n_formats = kept;
    m->first_rtpmap = s->n_rtpmap;
    *target = s->n_media++;
    return 0;
}

/* a=rtpmap:<pt> <encoding>/<clock>[/...], read as sdp.py reads it: the pt
 * is the text before the first space, the encoding what the rest holds
 * (blanks trimmed) before its first '/', the clock the text up to the next
 * '/'; both numbers all digits. A later rtpmap for the same pt replaces the
 * earlier one in place, as a dict assignment does. */
static int sdp_parse_rtpmap(const uint8_t *base, const uint8_t *arg, const uint8_t *end, ws_sdp *s, ws_sdp_media *m)
{
    const uint8_t *space = memchr(arg, ' ', (size_t)(end - arg));
    const uint8_t *pt_end = space ? space : end;
    uint32_t pt = 0, clock = 0;
    sdp_digits_result d = sdp_all_digits(arg, pt_end, &pt);
    if (d == SDP_DIGITS_TOO_LONG) return -1;
    if (d != SDP_DIGITS_YES || !space) return 0;
    const uint8_t *e = space + 1, *ee = end;
    while (e < ee && sdp_ws(*e)) e++;
    while (ee > e && sdp_ws(ee[-1])) ee--;
    const uint8_t *slash = memchr(e, '/', (size_t)(ee - e));
    if (!slash) return 0;
    const uint8_t *c = slash + 1, *ce = memchr(c, '/', (size_t)(ee - c));
    if (!ce) ce = ee;
    d = sdp_all_digits(c, ce, &clock);
    if (d == SDP_DIGITS_TOO_LONG) return -1;
    if (d != SDP_DIGITS_YES) return 0;
    ws_sdp_rtpmap *r = NULL;
    for (uint16_t i = m->first_rtpmap; i < s->n_rtpmap; i++)
        if (s->rtpmap[i].pt == pt) r = &s->rtpmap[i];
    if (!r) {
        if (s->n_rtpmap == WS_SDP_MAX_RTPMAP) {
            s->rtpmap_dropped++;
            return 0;
        }
        r = &s->rtpmap[s->n_rtpmap++];
        m->n_rtpmap++;
        r->pt = pt;
    }
    r->clock = clock;
    r->encoding = sdp_span(base, e, slash);
    return 0;
}

static int sdp_parse_a_line(const uint8_t *base, const uint8_t *v, const uint8_t *end, ws_sdp *s, int target)
{
    const uint8_t *colon = memchr(v, ':', (size_t)(end - v));
    const uint8_t *ne = colon ? colon : end, *arg = colon ? colon + 1 : end;
    uint8_t dir = WS_SDP_DIR_NONE;
    if (sdp_literal_is(v, ne, "sendrecv")) dir = WS_SDP_SENDRECV;
    else if (sdp_literal_is(v, ne, "sendonly")) dir = WS_SDP_SENDONLY;
    else if (sdp_literal_is(v, ne, "recvonly")) dir = WS_SDP_RECVONLY;
    else if (sdp_literal_is(v, ne, "inactive")) dir = WS_SDP_INACTIVE;
    if (dir != WS_SDP_DIR_NONE) {
        if (target == SDP_TARGET_SESSION) s->direction = dir;
        else if (target >= 0) s->media[target].direction = dir;
        return 0;
    }
    if (target < 0) return 0; /* media attributes outside a kept media description */
    ws_sdp_media *m = &s->media[target];
    if (sdp_literal_is(v, ne, "rtpmap")) return sdp_parse_rtpmap(base, arg, end, s, m);
    if (sdp_literal_is(v, ne, "ptime")) {
        const uint8_t *a = arg, *b = end;
        while (a < b && sdp_ws(*a)) a++;
        while (b > a && sdp_ws(b[-1])) b--;
        uint32_t value = 0;
        sdp_digits_result d = sdp_all_digits(a, b, &value);
        if (d == SDP_DIGITS_TOO_LONG) return -1;
        if (d == SDP_DIGITS_YES) {
            m->ptime = value;
            m->has_ptime = 1;
        }
    } else if (sdp_literal_is(v, ne, "rtcp")) {
        const uint8_t *a, *b;
        uint32_t value = 0;
        if (sdp_next_token(arg, end, &a, &b)) {
            sdp_digits_result d = sdp_all_digits(a, b, &value);
            if (d == SDP_DIGITS_TOO_LONG) return -1;
            if (d == SDP_DIGITS_YES) {
                m->rtcp_port = value;
                m->has_rtcp_port = 1;
            }
        }
    } else if (sdp_literal_is(v, ne, "rtcp-mux")) {
        m->rtcp_mux = 1;
    }
    return 0;
}

int ws_sdp_parse(const uint8_t *base, uint32_t n, ws_sdp *s)
{
    s->status = WS_SDP_OK;
    s->direction = WS_SDP_DIR_NONE;
    s->n_media = s->n_formats = s->n_rtpmap = 0;
    s->media_dropped = s->formats_dropped = s->rtpmap_dropped = 0;
    s->conn.state = WS_SDP_CONN_ABSENT;

    const uint8_t *p = base, *end = base + n;
    for (const uint8_t *q = base; q < end; q++)
        if (sdp_unusual(*q)) return s->status = WS_SDP_UNUSUAL;
    while (p < end && (sdp_ws(*p) || *p == '\r' || *p == '\n')) p++;
    if (end - p < 2 || p[0] != 'v' || p[1] != '=') return s->status = WS_SDP_NOT_SDP;

    int target = SDP_TARGET_SESSION;
    while (p < end) {
        /* a line ends at \n, \r or \r\n (str.splitlines() on this subset) */
        const uint8_t *le = p;
        while (le < end && *le != '\n' && *le != '\r') le++;
        const uint8_t *next = le;
        if (next < end) next += (*next == '\r' && next + 1 < end && next[1] == '\n') ? 2 : 1;
        const uint8_t *a = p, *b = le;
        p = next;
        while (a < b && sdp_ws(*a)) a++;
        while (b > a && sdp_ws(b[-1])) b--;
        if (b - a < 2 || a[1] != '=') continue;
        const uint8_t *v = a + 2;
        int rc = 0;
        switch (a[0]) {
        case 'm':
            rc = sdp_parse_m_line(base, v, b, s, &target);
            break;
        case 'c':
            if (target == SDP_TARGET_SESSION) sdp_parse_connection(v, b, &s->conn);
            else if (target >= 0) sdp_parse_connection(v, b, &s->media[target].conn);
            break;
        case 'a':
            rc = sdp_parse_a_line(base, v, b, s, target);
            break;
        default:
            break; /* v= o= s= t= ...: binding reads none of them */
        }
        if (rc < 0) return s->status = WS_SDP_UNUSUAL;
    }
    return s->status;
}
