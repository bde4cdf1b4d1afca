/* The SIP and SDP scans (ext/sip/ws_sip.c, ws_sdp.c) held against their
 * reference (scan_reference.c: the same scans before their rewrite): for
 * every input both must fill ws_sip_msg and ws_sdp identically, byte for
 * byte, from the same prefilled bytes (so a field one writes and the other
 * leaves alone differs too).
 *
 * Usage: scan_diff [--mutants K] [--seed S] FILE...
 *   FILE   a pcap or pcapng: every UDP, TCP and SCTP payload is an input;
 *          named *.bin: length-prefixed inputs (u32 little endian, bytes)
 *   K      seeded mutants of each input that holds SIP or SDP text
 *
 * Each input (and mutant) sits in a heap block of exactly its length, so a
 * sanitized build sees any read past it. It goes through ws_sip_parse in
 * datagram and stream framing, with no, a common and an unusual correlation
 * name; a stream goes on at each next message. ws_sdp_parse gets the body of
 * each parsed message, every suffix that starts a line with "v=", and the
 * whole input; the connection texts (ws_sdp_conn_text) are compared too.
 * Prints one JSON line of counts; each difference (up to 20) with its input
 * in hex and the fields that differ. Exit 0: none differ; 1: some do; 2: an
 * unreadable file. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ext/capture/ws_pcap.h"
#include "../../ext/decode/ws_decode.h"
#include "../../ext/sip/ws_sdp.h"
#include "../../ext/sip/ws_sip.h"
#include "seeded.h"

int ws_ref_sip_parse(const uint8_t *p, uint32_t n, int datagram, const char *corr_name, ws_sip_msg *m);
int ws_ref_sdp_parse(const uint8_t *p, uint32_t n, ws_sdp *s);
void ws_ref_sdp_conn_text(const ws_sdp_conn *c, char *out);

#define MAX_REPORTS 20
#define STREAM_MESSAGES 64 /* messages followed in one stream input */

static struct {
    unsigned long inputs, mutants, sip_parses, sip_ok, sip_bodies, sdp_parses, sdp_ok, sdp_media;
    unsigned long differences;
    unsigned long by_status[16];
} count;

static const char *const CORR_NAMES[] = {NULL, "x-cid", "max-forwards"};

static void hex(const uint8_t *p, uint32_t n)
{
    uint32_t shown = n < 4096 ? n : 4096;
    printf("  input (%u bytes%s): ", n, shown < n ? ", first 4096" : "");
    for (uint32_t i = 0; i < shown; i++) printf("%02x", p[i]);
    printf("\n");
}

static void report(const char *what, const uint8_t *p, uint32_t n, const char *detail)
{
    count.differences++;
    if (count.differences > MAX_REPORTS) return;
    printf("DIFFERENCE %s: %s\n", what, detail);
    hex(p, n);
}

/* ------------------------------------------------------------------------ */
/* SIP */

static void sip_fields(char *out, size_t cap, const ws_sip_msg *a, const ws_sip_msg *b)
{
    size_t used = 0;
    out[0] = 0;
    for (size_t i = 0; i < ws_sip_msg_nfields; i++) {
        const ws_field_desc *f = &ws_sip_msg_fields[i];
        size_t size = f->format[1] - '0';
        uint64_t x = 0, y = 0;
        memcpy(&x, (const uint8_t *)a + f->offset, size);
        memcpy(&y, (const uint8_t *)b + f->offset, size);
        if (x != y && used < cap)
            used += (size_t)snprintf(out + used, cap - used, "%s ref=%llu new=%llu; ", f->name,
                                     (unsigned long long)x, (unsigned long long)y);
    }
    if (!out[0]) snprintf(out, cap, "bytes outside the described fields");
}

/* One parse by both; returns the new scan's result in *out. */
static void sip_once(const uint8_t *p, uint32_t n, int datagram, const char *corr, ws_sip_msg *out,
                     const uint8_t *input, uint32_t input_len)
{
    ws_sip_msg a, b;
    memset(&a, 0x5a, sizeof a);
    memset(&b, 0x5a, sizeof b);
    ws_ref_sip_parse(p, n, datagram, corr, &a);
    ws_sip_parse(p, n, datagram, corr, &b);
    count.sip_parses++;
    count.by_status[b.status & 15]++;
    count.sip_ok += b.status == WS_SIP_OK;
    if (memcmp(&a, &b, sizeof a)) {
        char detail[1024], what[128];
        sip_fields(detail, sizeof detail, &a, &b);
        snprintf(what, sizeof what, "ws_sip_parse(datagram=%d, corr=%s, at %ld)", datagram, corr ? corr : "NULL",
                 (long)(p - input));
        report(what, input, input_len, detail);
    }
    *out = b;
}

/* ------------------------------------------------------------------------ */
/* SDP */

static ws_sdp sdp_ref, sdp_new; /* ~10 KB each: off the stack */

static int conn_text_differs(const ws_sdp_conn *a, const ws_sdp_conn *b)
{
    char x[WS_SDP_ADDR_TEXT], y[WS_SDP_ADDR_TEXT];
    ws_ref_sdp_conn_text(a, x);
    ws_sdp_conn_text(b, y);
    return strcmp(x, y) != 0;
}

static void sdp_check(const uint8_t *p, uint32_t n, const uint8_t *input, uint32_t input_len)
{
    /* a copy of exactly the body's bytes: reads past it are the scan's own */
    uint8_t *body = malloc(n ? n : 1);
    if (!body) abort();
    memcpy(body, p, n);
    memset(&sdp_ref, 0x5a, sizeof sdp_ref);
    memset(&sdp_new, 0x5a, sizeof sdp_new);
    ws_ref_sdp_parse(body, n, &sdp_ref);
    ws_sdp_parse(body, n, &sdp_new);
    count.sdp_parses++;
    if (sdp_new.status == WS_SDP_OK) {
        count.sdp_ok++;
        count.sdp_media += sdp_new.n_media;
    }
    char detail[256], what[128];
    snprintf(what, sizeof what, "ws_sdp_parse(body at %ld, %u bytes)", (long)(p - input), n);
    if (memcmp(&sdp_ref, &sdp_new, sizeof sdp_ref)) {
        size_t at = 0;
        while (((const uint8_t *)&sdp_ref)[at] == ((const uint8_t *)&sdp_new)[at]) at++;
        snprintf(detail, sizeof detail, "ws_sdp differs first at byte %zu (status ref=%u new=%u, media %u/%u)", at,
                 sdp_ref.status, sdp_new.status, sdp_ref.n_media, sdp_new.n_media);
        report(what, input, input_len, detail);
    } else if (sdp_new.status == WS_SDP_OK) {
        int bad = conn_text_differs(&sdp_ref.conn, &sdp_new.conn);
        for (uint16_t i = 0; i < sdp_new.n_media && i < WS_SDP_MAX_MEDIA; i++)
            bad |= conn_text_differs(&sdp_ref.media[i].conn, &sdp_new.media[i].conn);
        if (bad) {
            snprintf(detail, sizeof detail, "connection texts differ");
            report(what, input, input_len, detail);
        }
    }
    free(body);
}

/* ------------------------------------------------------------------------ */

static int looks_textual(const uint8_t *p, uint32_t n)
{
    if (n >= 2 && p[0] == 'v' && p[1] == '=') return 1;
    if (memmem(p, n, "SIP/2.0", 7) || memmem(p, n, "\nv=", 3)) return 1;
    return 0;
}

/* Every check on one input; returns whether it holds SIP or SDP text. */
static int check_input(const uint8_t *p, uint32_t n)
{
    ws_sip_msg m;
    for (size_t c = 0; c < sizeof CORR_NAMES / sizeof CORR_NAMES[0]; c++) {
        sip_once(p, n, 1, CORR_NAMES[c], &m, p, n);
        if (c == 0 && m.status == WS_SIP_OK && m.body.len && (uint64_t)m.body.off + m.body.len <= n) {
            count.sip_bodies++;
            sdp_check(p + m.body.off, m.body.len, p, n);
        }
        /* a stream: message after message, as TCP framing reads them */
        uint32_t at = 0;
        for (int k = 0; k < STREAM_MESSAGES && at <= n; k++) {
            sip_once(p + at, n - at, 0, CORR_NAMES[c], &m, p, n);
            if ((m.status != WS_SIP_OK && m.status != WS_SIP_KEEPALIVE) || !m.msg_len || m.msg_len > n - at) break;
            at += m.msg_len;
        }
    }
    sdp_check(p, n, p, n);
    for (uint32_t i = 1; i + 1 < n; i++)
        if (p[i - 1] == '\n' && p[i] == 'v' && p[i + 1] == '=') sdp_check(p + i, n - i, p, n);
    return looks_textual(p, n);
}

/* ------------------------------------------------------------------------ */
/* Seeded mutations: what malformed, binary, folded, huge and truncated
 * messages are made of. */


static const char SPECIALS[] = "\r\n:;,<>\"\\ \t=/.@0123456789AZaz-+_~vVmcaLlIiFfTtXx\x7f\x80\xff\x01\x0b";
static const char *const NAMES[] = {
    "i", "I", "f", "F", "t", "T", "v", "V", "l", "L", "c", "C", "x", "X", "k", "Call-ID", "CALL-ID", "call-id",
    "Call-Id ", "From", "FROM", "from\t", "To", "tO", "Via", "VIA", "via ", "CSeq", "CSEQ", "cseq", "Content-Length",
    "CONTENT-LENGTH", "content-length", "Content-Type", "content-TYPE", "Session-Expires", "SESSION-EXPIRES", "X-CID",
    "x-cid", "Max-Forwards", "Subject", "Contact", "Call-IDs", "Fro", "Vias", "Content-Lengt", "",
};
static const char *const TOKENS[] = {
    "0", "00", "007", "1", "99", "100", "199", "200", "699", "700", "1000", "65535", "65536", "256",
    "4294967295", "4294967296", "999999999", "1000000000", "99999999999", "+5", "-1", "1_0", "",
    "1.2.3.4", "01.2.3.4", "1.2.3", "1.2.3.4.5", "256.1.1.1", "255.255.255.255", "0.0.0.0", "1..2.3",
    "1.2.3.4/127", "1.2.3.4/127/2", "::1", "::ffff:1.2.3.4", "2001:db8::1", "2001:db8:::1", "a.b.c.d", "1.2.3.04",
    "IN", "IP4", "IP6", "ip4", "RTP/AVP", "sendonly", "recvonly", "inactive", "sendrecv", "rtcp-mux",
    "rtpmap", "ptime", "rtcp", "PCMU/8000", "telephone-event/8000/1", "/", "//", "tag=", ";tag=x", "branch=",
    ";branch=z9hG4bK1", "\"a\\\"b\"", "<sip:a@b>", "<", ">", "\"", "INVITE", "ACK", "BYE", "SIP/2.0", "SIP/2.0 ",
};

static uint32_t mutate(uint8_t *buf, uint32_t n, uint32_t cap)
{
#define ROOM(k) (n + (k) <= cap)
    uint32_t ops = 1 + below(4);
    for (uint32_t o = 0; o < ops; o++) {
        uint32_t at = below(n + 1);
        switch (below(12)) {
        case 0: /* a random byte */
            if (n) buf[below(n)] = (uint8_t)rnd();
            break;
        case 1: /* a byte the scans treat specially */
            if (n) buf[below(n)] = (uint8_t)SPECIALS[below(sizeof SPECIALS - 1)];
            break;
        case 2: /* ... inserted */
            if (ROOM(1)) {
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = (uint8_t)SPECIALS[below(sizeof SPECIALS - 1)];
                n++;
            }
            break;
        case 3: { /* a range deleted */
            uint32_t k = 1 + below(16);
            if (at + k <= n) {
                memmove(buf + at, buf + at + k, n - at - k);
                n -= k;
            }
            break;
        }
        case 4: /* truncated */
            n = at;
            break;
        case 5: { /* a range repeated: long lines, repeated headers */
            uint32_t k = 1 + below(64), from = below(n + 1);
            if (from + k <= n && ROOM(k)) {
                memmove(buf + at + k, buf + at, n - at);
                memmove(buf + at, buf + (from >= at ? from + k : from), k);
                n += k;
            }
            break;
        }
        case 6: { /* case flipped */
            uint32_t k = 1 + below(32);
            for (uint32_t i = at; i < at + k && i < n; i++)
                if ((buf[i] | 0x20) >= 'a' && (buf[i] | 0x20) <= 'z') buf[i] ^= 0x20;
            break;
        }
        case 7: { /* a line break or a fold */
            static const char *const BREAKS[] = {"\r\n ", "\r\n\t", "\r\n", "\n", "\r", "\n ", "\r\n\r\n"};
            const char *s = BREAKS[below(7)];
            uint32_t k = (uint32_t)strlen(s);
            if (ROOM(k)) {
                memmove(buf + at + k, buf + at, n - at);
                memcpy(buf + at, s, k);
                n += k;
            }
            break;
        }
        case 8:
        case 9: { /* a header name or a token replaced */
            int token = below(2);
            const char *s = token ? TOKENS[below(sizeof TOKENS / sizeof TOKENS[0])]
                                  : NAMES[below(sizeof NAMES / sizeof NAMES[0])];
            uint32_t k = (uint32_t)strlen(s), a = at, b = at;
            if (token) { /* the token around `at`: up to blanks, separators, line ends */
                while (a > 0 && !strchr(" \t\r\n:;,/=", buf[a - 1])) a--;
                while (b < n && !strchr(" \t\r\n:;,/=", buf[b])) b++;
            } else { /* the name of the line `at` falls in */
                while (a > 0 && buf[a - 1] != '\n') a--;
                b = a;
                while (b < n && buf[b] != ':' && buf[b] != '\n') b++;
            }
            if (n - (b - a) + k <= cap) {
                memmove(buf + a + k, buf + b, n - b);
                memcpy(buf + a, s, k);
                n = n - (b - a) + k;
            }
            break;
        }
        case 10: { /* a long run of one byte: huge lines and headers */
            uint32_t k = below(8) ? 1 + below(300) : 1000 + below(70000);
            uint8_t c = (uint8_t)SPECIALS[below(sizeof SPECIALS - 1)];
            if (ROOM(k)) {
                memmove(buf + at + k, buf + at, n - at);
                memset(buf + at, c, k);
                n += k;
            }
            break;
        }
        case 11: /* a NUL */
            if (n) buf[below(n)] = 0;
            break;
        }
    }
    return n;
#undef ROOM
}

static unsigned mutants_per_input = 0;

static void run_input(const uint8_t *p, uint32_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) abort();
    memcpy(copy, p, n);
    count.inputs++;
    int textual = check_input(copy, n);
    free(copy);
    if (!textual) return;
    uint32_t cap = n + 80000;
    uint8_t *work = malloc(cap);
    if (!work) abort();
    for (unsigned k = 0; k < mutants_per_input; k++) {
        memcpy(work, p, n);
        uint32_t m = mutate(work, n, cap);
        uint8_t *exact = malloc(m ? m : 1);
        if (!exact) abort();
        memcpy(exact, work, m);
        count.mutants++;
        check_input(exact, m);
        free(exact);
    }
    free(work);
}

/* ------------------------------------------------------------------------ */

static int run_records(const char *path)
{
    FILE *fh = fopen(path, "rb");
    if (!fh) return -1;
    uint8_t len4[4];
    while (fread(len4, 1, 4, fh) == 4) {
        uint32_t n = (uint32_t)len4[0] | (uint32_t)len4[1] << 8 | (uint32_t)len4[2] << 16 | (uint32_t)len4[3] << 24;
        uint8_t *p = malloc(n ? n : 1);
        if (!p || fread(p, 1, n, fh) != n) {
            fclose(fh);
            return -1;
        }
        run_input(p, n);
        free(p);
    }
    fclose(fh);
    return 0;
}

static int run_capture(const char *path)
{
    ws_reader r;
    if (ws_reader_open(&r, path) != WS_READ_OK) {
        ws_reader_close(&r);
        return -1;
    }
    ws_decoder d;
    ws_decoder_init(&d);
    ws_frame f;
    ws_l4 l;
    while (ws_reader_next(&r, &f) == WS_READ_OK) {
        if (ws_decode(&d, &f, &l) != WS_DEC_L4) continue;
        if (l.proto == 17 || l.proto == 6 || l.proto == 132) run_input(l.payload, l.payload_len);
    }
    ws_decoder_free(&d);
    ws_reader_close(&r);
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t seed = 20251127;
    int a = 1;
    for (; a + 1 < argc && argv[a][0] == '-' && argv[a][1] == '-'; a += 2) {
        if (!strcmp(argv[a], "--mutants")) mutants_per_input = (unsigned)strtoul(argv[a + 1], NULL, 10);
        else if (!strcmp(argv[a], "--seed")) seed = strtoull(argv[a + 1], NULL, 10);
        else break;
    }
    rng_seed(seed);
    for (; a < argc; a++) {
        size_t len = strlen(argv[a]);
        int rc = len > 4 && !strcmp(argv[a] + len - 4, ".bin") ? run_records(argv[a]) : run_capture(argv[a]);
        if (rc) {
            fprintf(stderr, "%s: cannot read\n", argv[a]);
            return 2;
        }
    }
    printf("{\"inputs\": %lu, \"mutants\": %lu, \"sip_parses\": %lu, \"sip_ok\": %lu, \"sip_bodies\": %lu, "
           "\"sdp_parses\": %lu, \"sdp_ok\": %lu, \"sdp_media\": %lu, \"differences\": %lu, \"sip_status\": [",
           count.inputs, count.mutants, count.sip_parses, count.sip_ok, count.sip_bodies, count.sdp_parses,
           count.sdp_ok, count.sdp_media, count.differences);
    for (int i = 0; i <= WS_SIP_KEEPALIVE; i++) printf("%s%lu", i ? ", " : "", count.by_status[i]);
    printf("]}\n");
    return count.differences ? 1 : 0;
}
