#include "ws_sip.h"

#include "ws_scan.h"

/* A request method by its name (case-sensitive, RFC 3261 section 7.1). */
static uint8_t method_of(const uint8_t *p, uint32_t n)
{
    switch (n) {
    case 3:
        if (!memcmp(p, "ACK", 3)) return WS_SIP_ACK;
        if (!memcmp(p, "BYE", 3)) return WS_SIP_BYE;
        break;
    case 4:
        if (!memcmp(p, "INFO", 4)) return WS_SIP_INFO;
        break;
    case 5:
        if (!memcmp(p, "PRACK", 5)) return WS_SIP_PRACK;
        if (!memcmp(p, "REFER", 5)) return WS_SIP_REFER;
        break;
    case 6:
        if (!memcmp(p, "INVITE", 6)) return WS_SIP_INVITE;
        if (!memcmp(p, "CANCEL", 6)) return WS_SIP_CANCEL;
        if (!memcmp(p, "UPDATE", 6)) return WS_SIP_UPDATE;
        if (!memcmp(p, "NOTIFY", 6)) return WS_SIP_NOTIFY;
        break;
    case 7:
        if (!memcmp(p, "OPTIONS", 7)) return WS_SIP_OPTIONS;
        if (!memcmp(p, "MESSAGE", 7)) return WS_SIP_MESSAGE;
        if (!memcmp(p, "PUBLISH", 7)) return WS_SIP_PUBLISH;
        break;
    case 8:
        if (!memcmp(p, "REGISTER", 8)) return WS_SIP_REGISTER;
        break;
    case 9:
        if (!memcmp(p, "SUBSCRIBE", 9)) return WS_SIP_SUBSCRIBE;
        break;
    }
    return WS_SIP_OTHER;
}

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* case-insensitive compare of p[0..n) with a lower-case literal */
static int name_is(const uint8_t *p, uint32_t n, const char *lit)
{
    uint32_t i = 0;
    for (; i < n && lit[i]; i++)
        if (lower(p[i]) != lit[i]) return 0;
    return i == n && !lit[i];
}

/* 0x20 in each byte where an ASCII word has a lower-case letter: a byte
 * plus 0x1f reaches 0x80 from 'a' up, plus 0x05 from past 'z' (no carries:
 * every byte is below 0x80). A constant for a literal. */
WS_INLINE uint64_t letter_bits(uint64_t ascii)
{
    const uint64_t ones = 0x0101010101010101ull;
    uint64_t from_a = ascii + 0x1f * ones, past_z = ascii + 0x05 * ones;
    return (from_a & ~past_z & 0x80 * ones) >> 2;
}

WS_INLINE uint64_t load16(const void *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* A word of the input equals a word of a lower-case literal, letters in any
 * case: OR-ing 0x20 where the literal has a letter folds an upper-case letter
 * there and changes nothing else. */
WS_INLINE int folded_eq(uint64_t input, uint64_t lit) { return (input | letter_bits(lit)) == lit; }

/* name_is(p, n, lit) for a literal of n (2..16) bytes, in two words that
 * overlap when n is not a power of two (a literal's words are constants) */
WS_INLINE int name_eq(const uint8_t *p, uint32_t n, const char *lit)
{
    if (n >= 8) return folded_eq(ws_load64(p), ws_load64(lit)) && folded_eq(ws_load64(p + n - 8), ws_load64(lit + n - 8));
    if (n >= 4) return folded_eq(ws_load32(p), ws_load32(lit)) && folded_eq(ws_load32(p + n - 4), ws_load32(lit + n - 4));
    return folded_eq(load16(p), load16(lit)) && folded_eq(load16(p + n - 2), load16(lit + n - 2));
}

/* p (as many bytes as the literal has) is the lower-case literal lit */
#define NAME_IS(p, lit) name_eq(p, sizeof lit - 1, lit)

/* SP and HT (1), CR and LF (2): a header line's blanks, and what a value's
 * trimming also drops (folds) */
static const uint8_t BLANK[256] = {[' '] = 1, ['\t'] = 1, ['\r'] = 2, ['\n'] = 2};

static int is_ws(uint8_t c) { return BLANK[c] & 1; }

static ws_span span(const uint8_t *base, const uint8_t *a, const uint8_t *b)
{
    ws_span s = {(uint32_t)(a - base), (uint32_t)(b - a)};
    return s;
}

/* The bytes the value scanners below act on (special_walk); every other
 * byte they step over. */
static const uint8_t SPECIAL[256] = {['"'] = 1, ['<'] = 1, ['>'] = 1, [','] = 1, [';'] = 1};
/* where a parameter's value ends */
static const uint8_t PARAM_END[256] = {
    [';'] = 1, [','] = 1, ['>'] = 1, [' '] = 1, ['\t'] = 1, ['\r'] = 1, ['\n'] = 1,
};
/* the characters of a request's method token (RFC 3261 token) */
static const uint8_t METHOD_CHAR[256] = {
    ['-'] = 1, ['.'] = 1, ['!'] = 1, ['%'] = 1, ['*'] = 1, ['_'] = 1, ['+'] = 1, ['`'] = 1, ['\''] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1,
    ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1,
    ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1,
    ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1,
    ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

#if WS_SCAN_SSE2
WS_INLINE uint32_t special_mask(ws_vec x)
{
    ws_vec m = _mm_or_si128(_mm_or_si128(ws_vec_eq(x, '"'), ws_vec_eq(x, '<')),
                            _mm_or_si128(_mm_or_si128(ws_vec_eq(x, '>'), ws_vec_eq(x, ',')), ws_vec_eq(x, ';')));
    return ws_vec_bits(m);
}
#endif

/* The SPECIAL bytes among the 64 from `at` that lie before e, as bits. */
WS_INLINE uint64_t special_bits(const uint8_t *at, const uint8_t *e, const uint8_t *lim)
{
    size_t n = (size_t)(e - at) < 64 ? (size_t)(e - at) : 64, i = 0;
    uint64_t bits = 0;
#if WS_SCAN_SSE2
    for (; i < n && lim - (at + i) >= 16; i += 16) bits |= (uint64_t)special_mask(ws_vec_load(at + i)) << i;
#else
    (void)lim;
#endif
    for (; i < n; i++) bits |= (uint64_t)(SPECIAL[at[i]] != 0) << i;
    return n < 64 ? bits & (((uint64_t)1 << n) - 1) : bits;
}

/* A header value's SPECIAL bytes in order, 64 bytes' worth at a time: the
 * value scanners act on these and step over every other byte. */
typedef struct special_walk {
    const uint8_t *at, *e, *lim;
    uint64_t bits; /* those not yet visited among the 64 from at */
} special_walk;

WS_INLINE void walk_start(special_walk *w, const uint8_t *p, const uint8_t *e, const uint8_t *lim)
{
    w->at = p;
    w->e = e;
    w->lim = lim;
    w->bits = special_bits(p, e, lim);
}

/* The next SPECIAL byte, NULL after the last. */
WS_INLINE const uint8_t *walk_next(special_walk *w)
{
    while (!w->bits) {
        if (w->e - w->at <= 64) return NULL;
        w->at += 64;
        w->bits = special_bits(w->at, w->e, w->lim);
    }
    const uint8_t *q = w->at + __builtin_ctzll(w->bits);
    w->bits &= w->bits - 1;
    return q;
}

/* The first PARAM_END byte in [q, e), or e. */
WS_INLINE const uint8_t *param_end(const uint8_t *q, const uint8_t *e, const uint8_t *lim)
{
#if WS_SCAN_SSE2
    for (; q < e && lim - q >= 16; q += 16) {
        ws_vec x = ws_vec_load(q);
        ws_vec blank = _mm_or_si128(_mm_or_si128(ws_vec_eq(x, ' '), ws_vec_eq(x, '\t')),
                                    _mm_or_si128(ws_vec_eq(x, '\r'), ws_vec_eq(x, '\n')));
        ws_vec delim = _mm_or_si128(_mm_or_si128(ws_vec_eq(x, ';'), ws_vec_eq(x, ',')), ws_vec_eq(x, '>'));
        uint32_t bits = ws_vec_bits(_mm_or_si128(blank, delim));
        if (bits) {
            const uint8_t *r = q + __builtin_ctz(bits);
            return r < e ? r : e;
        }
    }
#else
    (void)lim;
#endif
    while (q < e && !PARAM_END[*q]) q++;
    return q;
}

/* A parameter "name=" (case-insensitive; `name` a lower-case literal of nl
 * bytes) right after the ';' at q, blanks allowed before it: its value, the
 * token after the '=', into *value. */
WS_INLINE int param_at(const uint8_t *base, const uint8_t *q, const uint8_t *e, const uint8_t *lim, const char *name,
                       size_t nl, ws_span *value)
{
    const uint8_t *r = q + 1;
    while (r < e && is_ws(*r)) r++;
    if ((size_t)(e - r) > nl && name_eq(r, (uint32_t)nl, name) && r[nl] == '=') {
        *value = span(base, r + nl + 1, param_end(r + nl + 1, e, lim));
        return 1;
    }
    return 0;
}

/* From and To, [p, e): the URI of a name-addr (inside <...>) or addr-spec
 * (up to the first ';', ',' or blank) into *uri, and the value of a ";tag="
 * outside quotes and angle brackets, before any ',' outside them, into *tag
 * (left alone when there is none). One walk of the SPECIAL bytes serves both
 * rules; a '"' after a backslash does not open or close a quote. */
WS_INLINE void scan_name_addr(const uint8_t *base, const uint8_t *p, const uint8_t *e, const uint8_t *lim, ws_span *uri,
                              ws_span *tag)
{
    enum { URI_LOOKING, URI_IN_ANGLE, URI_DONE } uri_state = URI_LOOKING;
    int quote = 0, angle = 0, tag_done = 0;
    const uint8_t *ua = NULL, *q;
    special_walk w;
    walk_start(&w, p, e, lim);
    while ((uri_state != URI_DONE || !tag_done) && (q = walk_next(&w)) != NULL) {
        uint8_t c = *q;
        if (c == '"' && (q == p || q[-1] != '\\')) quote = !quote;
        if (uri_state == URI_IN_ANGLE && c == '>') { /* the first '>' after the '<', quoted or not */
            *uri = span(base, ua, q);
            uri_state = URI_DONE;
        } else if (uri_state == URI_LOOKING && c == '<' && !quote) {
            ua = q + 1;
            uri_state = URI_IN_ANGLE;
        }
        if (tag_done || quote) continue;
        if (c == '<') angle = 1;
        else if (c == '>') angle = 0;
        else if (c == ',' && !angle) tag_done = 1; /* the next value */
        else if (c == ';' && !angle) tag_done = param_at(base, q, e, lim, "tag", 3, tag);
    }
    if (uri_state == URI_IN_ANGLE) {
        *uri = span(base, ua, e);
    } else if (uri_state == URI_LOOKING) {
        const uint8_t *b = p;
        while (b < e && *b != ';' && *b != ',' && !is_ws(*b)) b++;
        *uri = span(base, p, b);
    }
}

/* Via, [p, e): how many values it holds (commas outside quotes and angle
 * brackets; here every '"' opens or closes a quote) and, with want_branch,
 * the value of its ";branch=" (find it as scan_name_addr finds the tag). */
WS_INLINE uint32_t scan_via(const uint8_t *base, const uint8_t *p, const uint8_t *e, const uint8_t *lim, int want_branch,
                            ws_span *branch)
{
    uint32_t n = 1;
    int count_quote = 0, count_angle = 0;
    int quote = 0, angle = 0, branch_done = !want_branch;
    const uint8_t *q;
    special_walk w;
    walk_start(&w, p, e, lim);
    while ((q = walk_next(&w)) != NULL) {
        uint8_t c = *q;
        if (c == '"') count_quote = !count_quote;
        else if (!count_quote && c == '<') count_angle = 1;
        else if (!count_quote && c == '>') count_angle = 0;
        else if (!count_quote && !count_angle && c == ',') n++;
        if (branch_done) continue;
        if (c == '"' && (q == p || q[-1] != '\\')) quote = !quote;
        if (quote) continue;
        if (c == '<') angle = 1;
        else if (c == '>') angle = 0;
        else if (c == ',' && !angle) branch_done = 1;
        else if (c == ';' && !angle) branch_done = param_at(base, q, e, lim, "branch", 6, branch);
    }
    return n;
}

/* Control bytes other than HT, CR and LF: binary, not a header line. */
WS_INLINE int is_control(uint8_t c)
{
    return (uint8_t)(c - 0x20) >= 0xe0 && c != '\t' && c != '\r' && c != '\n';
}

/* One physical line from q: returns its '\n' (NULL when [q, end) has none),
 * with the first ':' before it (NULL for none) and whether a control byte
 * lies before it. 16 bytes at a time: of the bytes below 0x20 a line holds
 * few (its CR and LF), so each of those is looked at alone. */
WS_INLINE const uint8_t *scan_line(const uint8_t *q, const uint8_t *end, const uint8_t **colon, int *control)
{
    const uint8_t *first_colon = NULL;
    int bad = 0;
#if WS_SCAN_SSE2
    for (; end - q >= 16; q += 16) {
        ws_vec x = ws_vec_load(q);
        uint32_t low = ws_vec_bits(ws_vec_le(x, 0x1f));
        uint32_t col = first_colon ? 0 : ws_vec_bits(ws_vec_eq(x, ':'));
        for (; low; low &= low - 1) {
            uint32_t k = (uint32_t)__builtin_ctz(low);
            uint8_t c = q[k];
            if (c == '\n') {
                col &= (1u << k) - 1;
                *colon = col ? q + __builtin_ctz(col) : first_colon;
                *control = bad;
                return q + k;
            }
            bad |= c != '\r' && c != '\t';
        }
        if (col) first_colon = q + __builtin_ctz(col);
    }
#endif
    for (; q < end; q++) {
        uint8_t c = *q;
        if (c == '\n') {
            *colon = first_colon;
            *control = bad;
            return q;
        }
        if (c == ':' && !first_colon) first_colon = q;
        bad |= is_control(c);
    }
    return NULL;
}

/* The headers the scan keeps, by name (full and compact form) */
enum {
    H_OTHER, H_CALL_ID, H_FROM, H_TO, H_VIA, H_CSEQ, H_CONTENT_LENGTH, H_CONTENT_TYPE, H_SESSION_EXPIRES,
    H_CORRELATION,
};

static int header_of(const uint8_t *name, uint32_t n, const char *corr_name, uint32_t corr_len)
{
    int h = H_OTHER;
    switch (n) {
    case 1:
        switch (lower(name[0])) {
        case 'i': h = H_CALL_ID; break;
        case 'f': h = H_FROM; break;
        case 't': h = H_TO; break;
        case 'v': h = H_VIA; break;
        case 'l': h = H_CONTENT_LENGTH; break;
        case 'c': h = H_CONTENT_TYPE; break;
        case 'x': h = H_SESSION_EXPIRES; break;
        }
        break;
    case 2: if (NAME_IS(name, "to")) h = H_TO; break;
    case 3: if (NAME_IS(name, "via")) h = H_VIA; break;
    case 4:
        if (NAME_IS(name, "from")) h = H_FROM;
        else if (NAME_IS(name, "cseq")) h = H_CSEQ;
        break;
    case 7: if (NAME_IS(name, "call-id")) h = H_CALL_ID; break;
    case 12: if (NAME_IS(name, "content-type")) h = H_CONTENT_TYPE; break;
    case 14: if (NAME_IS(name, "content-length")) h = H_CONTENT_LENGTH; break;
    case 15: if (NAME_IS(name, "session-expires")) h = H_SESSION_EXPIRES; break;
    }
    if (h == H_OTHER && corr_name && n == corr_len && name_is(name, n, corr_name)) h = H_CORRELATION;
    return h;
}

static int parse_uint(const uint8_t *p, const uint8_t *e, uint32_t *out, const uint8_t **end)
{
    uint64_t v = 0;
    const uint8_t *q = p;
    while (q < e && *q >= '0' && *q <= '9') {
        v = v * 10 + (uint32_t)(*q - '0');
        if (v > 0xffffffffull) return 0;
        q++;
    }
    if (q == p) return 0;
    *out = (uint32_t)v;
    if (end) *end = q;
    return 1;
}

int ws_sip_parse(const uint8_t *base, uint32_t n, int datagram, const char *corr_name, ws_sip_msg *m)
{
    memset(m, 0, sizeof *m);
    m->content_length = WS_SIP_NO_LENGTH;
    const uint8_t *p = base, *end = base + n;
    while (p < end && (*p == '\r' || *p == '\n')) p++;
    if (p == end) {
        m->msg_len = n;
        return m->status = WS_SIP_KEEPALIVE;
    }
    if (p != base && !datagram) {
        /* leading CRLFs on a stream are keep-alives: report them alone */
        m->msg_len = (uint32_t)(p - base);
        return m->status = WS_SIP_KEEPALIVE;
    }
    uint32_t limit = n < WS_SIP_MAX_HEADER ? n : WS_SIP_MAX_HEADER;
    const uint8_t *hend = base + limit; /* also the limit of every search's loads */

    /* start line */
    const uint8_t *le = ws_find_byte(p, hend, hend, '\n');
    if (!le) {
        if (!datagram && n < WS_SIP_MAX_HEADER) return m->status = WS_SIP_INCOMPLETE;
        return m->status = WS_SIP_HEADER_TOO_LONG;
    }
    const uint8_t *lend = (le > p && le[-1] == '\r') ? le - 1 : le;
    if (lend - p >= 12 && !memcmp(p, "SIP/2.0 ", 8)) {
        const uint8_t *q = p + 8, *after;
        uint32_t code;
        if (!parse_uint(q, lend, &code, &after) || after - q != 3 || code < 100 || code > 699)
            return m->status = WS_SIP_BAD_START_LINE;
        m->code = (uint16_t)code;
        while (after < lend && is_ws(*after)) after++;
        m->reason = span(base, after, lend);
    } else {
        const uint8_t *q = p;
        while (q < lend && METHOD_CHAR[*q]) q++;
        if (q == p || q >= lend || *q != ' ') return m->status = WS_SIP_BAD_START_LINE;
        m->is_request = 1;
        m->method_name = span(base, p, q);
        m->method = method_of(p, (uint32_t)(q - p));
        const uint8_t *u = q + 1, *ue = ws_find_byte(u, lend, hend, ' ');
        if (!ue) ue = lend;
        if (ue == u || lend - ue != 8 || memcmp(ue, " SIP/2.0", 8)) return m->status = WS_SIP_BAD_START_LINE;
        m->request_uri = span(base, u, ue);
    }

    /* headers: one logical line at a time (a line starting with SP/HT folds) */
    int have_cseq = 0, have_call_id = 0, have_from = 0, have_to = 0, have_via = 0;
    uint32_t corr_len = corr_name ? (uint32_t)strlen(corr_name) : 0;
    const uint8_t *line = le + 1;
    for (;;) {
        if (line >= hend)
            return m->status = n < WS_SIP_MAX_HEADER ? WS_SIP_INCOMPLETE : WS_SIP_HEADER_TOO_LONG;
        const uint8_t *colon;
        int control;
        const uint8_t *nl = scan_line(line, hend, &colon, &control);
        if (!nl) {
            if (n < WS_SIP_MAX_HEADER) return m->status = WS_SIP_INCOMPLETE;
            return m->status = WS_SIP_HEADER_TOO_LONG;
        }
        const uint8_t *ll = (nl > line && nl[-1] == '\r') ? nl - 1 : nl;
        if (ll == line) { /* the empty line */
            m->header_len = (uint32_t)(nl + 1 - base);
            break;
        }
        /* extend over folded continuation lines (one without its '\n' is not
         * part of this line: the next turn finds the header section unfinished) */
        while (nl + 1 < hend && is_ws(nl[1])) {
            const uint8_t *more_colon;
            int more_control;
            const uint8_t *nx = scan_line(nl + 1, hend, &more_colon, &more_control);
            if (!nx) break;
            nl = nx;
            ll = nl[-1] == '\r' ? nl - 1 : nl;
            if (!colon) colon = more_colon;
            control |= more_control;
        }
        if (control) return m->status = WS_SIP_BINARY;
        if (colon) {
            const uint8_t *ne = colon;
            while (ne > line && is_ws(ne[-1])) ne--;
            uint32_t nlen = (uint32_t)(ne - line);
            const uint8_t *v = colon + 1, *ve = ll;
            while (v < ve && BLANK[*v]) v++;
            while (ve > v && BLANK[ve[-1]]) ve--;
            switch (header_of(line, nlen, corr_name, corr_len)) {
            case H_CALL_ID:
                if (!have_call_id && ve > v) {
                    m->call_id = span(base, v, ve);
                    have_call_id = 1;
                }
                break;
            case H_FROM:
                if (!have_from) {
                    have_from = 1;
                    scan_name_addr(base, v, ve, hend, &m->from_uri, &m->from_tag);
                }
                break;
            case H_TO:
                if (!have_to) {
                    have_to = 1;
                    scan_name_addr(base, v, ve, hend, &m->to_uri, &m->to_tag);
                }
                break;
            case H_VIA:
                m->via_count += (uint16_t)scan_via(base, v, ve, hend, !have_via, &m->via_branch);
                have_via = 1;
                break;
            case H_CSEQ: {
                const uint8_t *q;
                uint32_t num;
                if (parse_uint(v, ve, &num, &q)) {
                    while (q < ve && is_ws(*q)) q++;
                    const uint8_t *me = q;
                    while (me < ve && !is_ws(*me)) me++;
                    if (me > q) {
                        m->cseq = num;
                        m->cseq_method = method_of(q, (uint32_t)(me - q));
                        have_cseq = 1;
                    }
                }
                break;
            }
            case H_CONTENT_LENGTH: {
                uint32_t cl;
                const uint8_t *q;
                if (!parse_uint(v, ve, &cl, &q) || q != ve) return m->status = WS_SIP_BAD_LENGTH;
                m->content_length = cl;
                break;
            }
            case H_CONTENT_TYPE: m->content_type = span(base, v, ve); break;
            case H_SESSION_EXPIRES: m->session_expires = span(base, v, ve); break;
            case H_CORRELATION: m->correlation = span(base, v, ve); break;
            }
        }
        line = nl + 1;
    }

    /* body */
    uint32_t avail = n - m->header_len;
    uint32_t body_len;
    if (m->content_length == WS_SIP_NO_LENGTH) {
        body_len = datagram ? avail : 0;
    } else {
        if (m->content_length > WS_SIP_MAX_BODY) return m->status = WS_SIP_BAD_LENGTH;
        if (m->content_length > avail) {
            if (!datagram) return m->status = WS_SIP_INCOMPLETE;
            return m->status = WS_SIP_BAD_LENGTH;
        }
        body_len = m->content_length;
    }
    m->body.off = m->header_len;
    m->body.len = body_len;
    m->msg_len = m->header_len + body_len;
    if (!have_call_id) return m->status = WS_SIP_NO_CALL_ID;
    if (!have_cseq) return m->status = WS_SIP_BAD_CSEQ;
    return m->status = WS_SIP_OK;
}

#define F(name, fmt) {#name, fmt, offsetof(ws_sip_msg, name)}
#define S(name) {#name "_off", "u4", offsetof(ws_sip_msg, name.off)}, {#name "_len", "u4", offsetof(ws_sip_msg, name.len)}
const ws_field_desc ws_sip_msg_fields[] = {
    F(status, "u1"), F(is_request, "u1"), F(method, "u1"), F(cseq_method, "u1"), F(code, "u2"),
    F(via_count, "u2"), F(cseq, "u4"), F(content_length, "u4"), F(header_len, "u4"), F(msg_len, "u4"),
    S(method_name), S(request_uri), S(reason), S(call_id), S(from_uri), S(from_tag), S(to_uri),
    S(to_tag), S(via_branch), S(content_type), S(session_expires), S(correlation), S(body),
};
const size_t ws_sip_msg_nfields = sizeof ws_sip_msg_fields / sizeof ws_sip_msg_fields[0];
#undef F
#undef S
