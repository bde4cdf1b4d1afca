#include "ws_sip.h"

static const struct {
    const char *name;
    uint8_t len;
    uint8_t method;
} METHODS[] = {
    {"INVITE", 6, WS_SIP_INVITE},     {"ACK", 3, WS_SIP_ACK},         {"BYE", 3, WS_SIP_BYE},
    {"CANCEL", 6, WS_SIP_CANCEL},     {"OPTIONS", 7, WS_SIP_OPTIONS}, {"REGISTER", 8, WS_SIP_REGISTER},
    {"PRACK", 5, WS_SIP_PRACK},       {"UPDATE", 6, WS_SIP_UPDATE},   {"INFO", 4, WS_SIP_INFO},
    {"REFER", 5, WS_SIP_REFER},       {"NOTIFY", 6, WS_SIP_NOTIFY},   {"SUBSCRIBE", 9, WS_SIP_SUBSCRIBE},
    {"MESSAGE", 7, WS_SIP_MESSAGE},   {"PUBLISH", 7, WS_SIP_PUBLISH},
};

static uint8_t method_of(const uint8_t *p, uint32_t n)
{
    for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++)
        if (METHODS[i].len == n && !memcmp(p, METHODS[i].name, n)) return METHODS[i].method;
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

static int is_ws(uint8_t c) { return c == ' ' || c == '\t'; }

static ws_span span(const uint8_t *base, const uint8_t *a, const uint8_t *b)
{
    ws_span s = {(uint32_t)(a - base), (uint32_t)(b - a)};
    return s;
}

/* The bytes the value scanners below act on; every other byte they step over,
 * so a table lookup settles most bytes of a header value. */
enum { SP_QUOTE = 1, SP_ANGLE = 2, SP_COMMA = 4, SP_SEMI = 8 };
static const uint8_t SPECIAL[256] = {
    ['"'] = SP_QUOTE, ['<'] = SP_ANGLE, ['>'] = SP_ANGLE, [','] = SP_COMMA, [';'] = SP_SEMI,
};
/* where a parameter's value ends */
static const uint8_t PARAM_END[256] = {
    [';'] = 1, [','] = 1, ['>'] = 1, [' '] = 1, ['\t'] = 1, ['\r'] = 1, ['\n'] = 1,
};

/* Finds ";name=" (case-insensitive) outside quotes and angle brackets within
 * [p, e), and returns the token after it. */
static int find_param(const uint8_t *p, const uint8_t *e, const char *name, const uint8_t **vs, const uint8_t **ve)
{
    size_t nl = strlen(name);
    int quote = 0, angle = 0;
    for (const uint8_t *q = p; q < e; q++) {
        uint8_t c = *q;
        if (!SPECIAL[c]) continue;
        if (c == '"' && (q == p || q[-1] != '\\')) quote = !quote;
        if (quote) continue;
        if (c == '<') angle = 1;
        else if (c == '>') angle = 0;
        else if (c == ',' && !angle) return 0; /* next header value */
        else if (c == ';' && !angle) {
            const uint8_t *r = q + 1;
            while (r < e && is_ws(*r)) r++;
            if ((size_t)(e - r) > nl && name_is(r, (uint32_t)nl, name) && r[nl] == '=') {
                const uint8_t *a = r + nl + 1, *b = a;
                while (b < e && !PARAM_END[*b]) b++;
                *vs = a;
                *ve = b;
                return 1;
            }
        }
    }
    return 0;
}

/* name-addr or addr-spec: the URI inside <...>, else up to the first ';' */
static void find_uri(const uint8_t *p, const uint8_t *e, const uint8_t **us, const uint8_t **ue)
{
    int quote = 0;
    for (const uint8_t *q = p; q < e; q++) {
        if (!(SPECIAL[*q] & (SP_QUOTE | SP_ANGLE))) continue;
        if (*q == '"' && (q == p || q[-1] != '\\')) quote = !quote;
        else if (!quote && *q == '<') {
            const uint8_t *a = q + 1, *b = memchr(a, '>', (size_t)(e - a));
            *us = a;
            *ue = b ? b : e;
            return;
        }
    }
    const uint8_t *b = p;
    while (b < e && *b != ';' && *b != ',' && !is_ws(*b)) b++;
    *us = p;
    *ue = b;
}

static uint32_t count_values(const uint8_t *p, const uint8_t *e)
{
    uint32_t n = 1;
    int quote = 0, angle = 0;
    for (const uint8_t *q = p; q < e; q++) {
        if (!(SPECIAL[*q] & (SP_QUOTE | SP_ANGLE | SP_COMMA))) continue;
        if (*q == '"') quote = !quote;
        else if (!quote && *q == '<') angle = 1;
        else if (!quote && *q == '>') angle = 0;
        else if (!quote && !angle && *q == ',') n++;
    }
    return n;
}

/* Control bytes other than HT, CR and LF: binary, not a header line. Written
 * without branches so the compiler vectorises it. */
static int has_control(const uint8_t *p, const uint8_t *e)
{
    size_t n = (size_t)(e - p);
    uint8_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        bad |= (uint8_t)((uint8_t)(c - 0x20) >= 0xe0) & (uint8_t)(c != '\t') & (uint8_t)(c != '\r') &
               (uint8_t)(c != '\n');
    }
    return bad != 0;
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
    case 2: if (name_is(name, n, "to")) h = H_TO; break;
    case 3: if (name_is(name, n, "via")) h = H_VIA; break;
    case 4:
        if (name_is(name, n, "from")) h = H_FROM;
        else if (name_is(name, n, "cseq")) h = H_CSEQ;
        break;
    case 7: if (name_is(name, n, "call-id")) h = H_CALL_ID; break;
    case 12: if (name_is(name, n, "content-type")) h = H_CONTENT_TYPE; break;
    case 14: if (name_is(name, n, "content-length")) h = H_CONTENT_LENGTH; break;
    case 15: if (name_is(name, n, "session-expires")) h = H_SESSION_EXPIRES; break;
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
    const uint8_t *hend = base + limit;

    /* start line */
    const uint8_t *le = memchr(p, '\n', (size_t)(hend - p));
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
        while (q < lend && ((*q >= 'A' && *q <= 'Z') || *q == '-' || *q == '.' || *q == '!' || *q == '%' ||
                            *q == '*' || *q == '_' || *q == '+' || *q == '`' || *q == '\'' || *q == '~' ||
                            (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9')))
            q++;
        if (q == p || q >= lend || *q != ' ') return m->status = WS_SIP_BAD_START_LINE;
        m->is_request = 1;
        m->method_name = span(base, p, q);
        m->method = method_of(p, (uint32_t)(q - p));
        const uint8_t *u = q + 1, *ue = u;
        while (ue < lend && *ue != ' ') ue++;
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
        const uint8_t *nl = memchr(line, '\n', (size_t)(hend - line));
        if (!nl) {
            if (n < WS_SIP_MAX_HEADER) return m->status = WS_SIP_INCOMPLETE;
            return m->status = WS_SIP_HEADER_TOO_LONG;
        }
        const uint8_t *ll = (nl > line && nl[-1] == '\r') ? nl - 1 : nl;
        if (ll == line) { /* the empty line */
            m->header_len = (uint32_t)(nl + 1 - base);
            break;
        }
        /* extend over folded continuation lines */
        while (nl + 1 < hend && is_ws(nl[1])) {
            const uint8_t *nx = memchr(nl + 1, '\n', (size_t)(hend - nl - 1));
            if (!nx) break;
            nl = nx;
            ll = (nl > line && nl[-1] == '\r') ? nl - 1 : nl;
        }
        if (has_control(line, ll)) return m->status = WS_SIP_BINARY;
        const uint8_t *colon = memchr(line, ':', (size_t)(ll - line));
        if (colon) {
            const uint8_t *ne = colon;
            while (ne > line && is_ws(ne[-1])) ne--;
            uint32_t nlen = (uint32_t)(ne - line);
            const uint8_t *v = colon + 1, *ve = ll;
            while (v < ve && (is_ws(*v) || *v == '\r' || *v == '\n')) v++;
            while (ve > v && (is_ws(ve[-1]) || ve[-1] == '\r' || ve[-1] == '\n')) ve--;
            const uint8_t *a, *b;
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
                    find_uri(v, ve, &a, &b);
                    m->from_uri = span(base, a, b);
                    if (find_param(v, ve, "tag", &a, &b)) m->from_tag = span(base, a, b);
                }
                break;
            case H_TO:
                if (!have_to) {
                    have_to = 1;
                    find_uri(v, ve, &a, &b);
                    m->to_uri = span(base, a, b);
                    if (find_param(v, ve, "tag", &a, &b)) m->to_tag = span(base, a, b);
                }
                break;
            case H_VIA:
                m->via_count += (uint16_t)count_values(v, ve);
                if (!have_via) {
                    have_via = 1;
                    if (find_param(v, ve, "branch", &a, &b)) m->via_branch = span(base, a, b);
                }
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
