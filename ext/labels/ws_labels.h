/* Call labels of an initial INVITE without Python (docs/labels.md, "Native
 * path"): the same steps as warpsniff/labels.py's LabelConfig.labels(), on
 * the INVITE's bytes and on tables compiled from a LabelConfig and from
 * phonenumbers' metadata (ext/labels/labels.pyx builds them).
 *
 * Every function here either gives exactly what the Python path gives, or
 * says WS_LBL_PYTHON: then the caller asks Python for that piece (a URI,
 * a dial string, a NANP state) or for the whole INVITE. Text is taken as
 * bytes; a byte outside ASCII where it could matter is a WS_LBL_PYTHON,
 * since Python reads it as decoded text. */
#ifndef WS_LABELS_H
#define WS_LABELS_H

#include "../sip/ws_sip.h"   /* ws_span */

enum {
    WS_LBL_OK = 0,
    WS_LBL_NONE,      /* no number / no value: Python's None */
    WS_LBL_PYTHON,    /* not decided here: ask Python */
    WS_LBL_NEED_CC,   /* the tables of a country code are not built yet */
};

#define WS_LBL_DIAL_MAX 20       /* _DIGITS_RE: "+" and 1-20 digits */
#define WS_LBL_NUMBER_MAX 40     /* a number being split (a dial string, a transform rule's prefix) */
#define WS_LBL_NSN_MAX 17        /* phonenumbers' longest national significant number */
#define WS_LBL_MAX_VALUES 64     /* header values kept per INVITE; more: Python */
#define WS_LBL_CC_COUNT 1000

/* ---------------------------------------------------------------- automata
 * Deterministic automata over the digits (warpsniff/digit_automata.py):
 * state s goes to trans[10 s + d]; state 0 is dead. A set automaton's tags
 * are its patterns' bits; a first-match automaton's tags are these flags
 * (the same as digit_automata's MATCH_*: labels.pyx checks). */
enum {
    WS_LBL_MATCH_NOW = 1,
    WS_LBL_MATCH_NOW_GROUP = 2,
    WS_LBL_MATCH_AT_END = 4,
    WS_LBL_MATCH_AT_END_GROUP = 8,
};
#define WS_LBL_ALWAYS (-1)       /* a leading-digits test that always holds (re.compile("")) */

/* What parse() reads of one region's metadata to split a number (labels._Plan). */
enum { WS_LBL_TRANSFORM_NONE = 0, WS_LBL_TRANSFORM_WHOLE, WS_LBL_TRANSFORM_OTHER };
typedef struct ws_num_plan {
    int32_t idd;              /* first-match automaton of the international prefix; 0: none */
    int32_t national_prefix;  /* first-match automaton of national_prefix_for_parsing, the flag
                                 tracking the transform rule's group; 0: none */
    int32_t general;          /* set automaton of the general description (bit 0) */
    uint32_t possible;        /* bit n: length n is possible (local-only lengths left out) */
    uint16_t cc;
    uint8_t longest;
    uint8_t cc_len;
    char cc_text[4];
    uint8_t transform;        /* WS_LBL_TRANSFORM_*: WHOLE: the group is the whole number, and the
                                 rule writes transform_prefix before it; OTHER: Python decides */
    uint8_t transform_prefix_len;
    char transform_prefix[8];
} ws_num_plan;

/* One region that may decide a number of one length (labels._candidates). */
typedef struct ws_num_candidate {
    int32_t leading;          /* set automaton whose any accepting prefix claims the number;
                                 0: no leading digits; WS_LBL_ALWAYS */
    int32_t kinds;            /* set automaton of the descriptions usable at this length
                                 (labels._kind_alternatives): bit 0 the general one, bit 1+i type
                                 slot i; 0: no number of this length is valid there */
    uint16_t region;          /* index of the ISO region; 0: none */
    uint8_t possible;         /* the length is possible there */
    uint8_t toll_free;        /* bit of the toll-free slot; 0: none */
} ws_num_candidate;

typedef struct ws_cc_entry {
    uint8_t known;            /* phonenumbers has the code (_COUNTRY_CODES) */
    uint8_t built;            /* plan and candidates below are filled */
    uint8_t has_plan;         /* _CC_PLANS[cc] is not None */
    uint8_t python;           /* its metadata is outside the automata: Python splits its numbers */
    ws_num_plan plan;
    uint32_t first[WS_LBL_NSN_MAX + 2];   /* candidates of length n: [first[n], first[n+1]) */
} ws_cc_entry;

typedef struct ws_num_tables {
    const int32_t *trans;
    const uint16_t *tags;
    const ws_num_candidate *candidates;
    const ws_cc_entry *ccs;   /* WS_LBL_CC_COUNT entries */
    uint8_t min_nsn, max_nsn; /* parse's bounds on a national significant number */
} ws_num_tables;

enum { WS_NUM_INVALID = 0, WS_NUM_TOLL_FREE, WS_NUM_VALID };

/* labels._Number: "+<cc><nsn>", its region when valid, toll-free or not */
typedef struct ws_number {
    uint8_t present;          /* 0: None */
    uint8_t toll_free;
    uint8_t nsn_len;
    uint16_t cc;
    uint16_t region;          /* 0: None */
    char nsn[WS_LBL_NSN_MAX + 7];
} ws_number;

/* labels._number(dial, default_region, default_cc). `region_plan` is the
 * default region's plan (NULL when it has none). WS_LBL_OK (out filled,
 * out->present 0 for None), WS_LBL_PYTHON, or WS_LBL_NEED_CC with *need. */
int ws_number_of_dial(const ws_num_tables *t, const ws_num_plan *region_plan, uint16_t default_cc,
                      const char *dial, uint32_t len, ws_number *out, uint16_t *need);

/* ---------------------------------------------------------------- URIs
 * _dial_string(_uri_user(value)) into dial (WS_LBL_DIAL_MAX + 1 bytes):
 * WS_LBL_OK with its length, WS_LBL_NONE, or WS_LBL_PYTHON. */
int ws_lbl_dial_of_uri(const uint8_t *p, uint32_t n, char *dial, uint32_t *len);

/* labels._uri_host: the lower-case host into host (n bytes are enough),
 * WS_LBL_OK with its length, WS_LBL_NONE, or WS_LBL_PYTHON. */
int ws_lbl_uri_host(const uint8_t *p, uint32_t n, uint8_t *host, uint32_t *len);

/* labels._split_addresses: up to max identities as [start, end) offsets;
 * returns their count, or -1 when there are more. */
int ws_lbl_split_addresses(const uint8_t *p, uint32_t n, ws_span *out, int max);

/* ---------------------------------------------------------------- headers
 * warpsniff.sip.headers.header_values over p[0..n): the values of the
 * configured names, each stripped, folded lines joined with a space, written
 * one after the other into `text` (capacity n is enough). Text outside
 * ASCII may stand inside a value, not at its ends or in a header name. */
typedef struct ws_lbl_values {
    uint32_t count;
    uint8_t name[WS_LBL_MAX_VALUES];      /* index into the configured names */
    ws_span value[WS_LBL_MAX_VALUES]; /* into text */
} ws_lbl_values;

typedef struct ws_lbl_names {
    uint32_t count;
    const uint8_t *text;                  /* the lower-case names, one after the other */
    const ws_span *name;
    uint8_t first_chars[256];             /* 1 for the first character of a name, either case */
} ws_lbl_names;

int ws_lbl_header_values(const ws_lbl_names *names, const uint8_t *p, uint32_t n, uint8_t *text,
                         uint32_t cap, ws_lbl_values *out);

/* ---------------------------------------------------------------- rules */
enum {
    WS_COND_NETS = 1, WS_COND_PORTS = 2, WS_COND_HEADER = 4,
    WS_COND_TRUNKS = 8, WS_COND_DOMAINS = 16, WS_COND_PREFIXES = 32,
};

typedef struct ws_lbl_list {
    uint32_t first, count;
} ws_lbl_list;

typedef struct ws_lbl_net {
    uint8_t v6;               /* 0: IPv4 (addr[0..4)), 1: IPv6 */
    uint8_t bits;
    uint8_t addr[16];
} ws_lbl_net;

/* one `match` mapping (labels._Cond): each key in `keys` must hold */
typedef struct ws_lbl_cond {
    uint32_t keys;            /* WS_COND_* */
    uint32_t header;          /* index of the header name */
    ws_lbl_list nets, ports, values, trunks, domains, prefixes;   /* values, domains, prefixes: strings */
} ws_lbl_cond;

typedef struct ws_lbl_rules {
    const ws_lbl_net *platform;
    uint32_t n_platform;
    const ws_lbl_list *trunks, *providers, *accounts;   /* each rule: its conds */
    uint32_t n_trunks, n_providers, n_accounts;
    const ws_lbl_cond *conds;
    const ws_lbl_net *nets;
    const int64_t *ports;
    const uint32_t *trunk_ids;   /* accounts' `trunk`: 1 + the trunk's index */
    const ws_span *strings;  /* into text */
    const uint8_t *text;
    uint8_t need_remotes, need_addresses, need_pai_domain;
    uint8_t values_non_ascii;    /* an accepted header value is not ASCII */
} ws_lbl_rules;

/* an address as labels._ip gives it */
typedef struct ws_lbl_addr {
    uint8_t family;           /* 0: none (not an address), 4, 6 */
    uint8_t addr[16];         /* IPv4 in addr[0..4) */
    int64_t port;
} ws_lbl_addr;

enum { WS_DIR_UNKNOWN = 0, WS_DIR_INBOUND, WS_DIR_OUTBOUND };

/* direction, trunk, provider, account (1 + rule index, 0 unknown) */
typedef struct ws_lbl_match {
    uint32_t direction, trunk, provider, account;
} ws_lbl_match;

/* WS_LBL_OK, or WS_LBL_PYTHON (a header value to compare as text) */
int ws_lbl_match_rules(const ws_lbl_rules *r, const ws_lbl_addr *src, const ws_lbl_addr *dst,
                       const ws_lbl_values *v, const uint8_t *vtext, const uint8_t *pai_host,
                       uint32_t pai_host_len, const ws_number *orig, ws_lbl_match *out);

/* ---------------------------------------------------------------- zone
 * labels._zone. `states` maps NPA-NXX (the first six digits of a NANP
 * number) to 0 (not known yet), 1 (no state) or 2 + a state's index;
 * `us`, `ca` are the region indices of US and CA. WS_LBL_OK with *zone, or
 * WS_LBL_PYTHON with *npanxx to look up first. */
enum { WS_ZONE_UNKNOWN = 0, WS_ZONE_INTERSTATE, WS_ZONE_INTRASTATE, WS_ZONE_LOCAL, WS_ZONE_INTL,
       WS_ZONE_TOLLFREE };
int ws_lbl_zone(const ws_number *dest, const ws_number *orig, const uint8_t *states, uint16_t us,
                uint16_t ca, uint32_t *zone, uint32_t *npanxx);

/* ---------------------------------------------------------------- label sets
 * A label set's key (its seven indices in one word) -> a slot the caller
 * keeps the shared CallLabels in. Open addressing, grown at half full. */
typedef struct ws_lbl_sets {
    uint64_t *keys;           /* key + 1; 0: empty */
    uint32_t *slots;
    uint32_t cap, count;
} ws_lbl_sets;

int ws_lbl_sets_get(const ws_lbl_sets *s, uint64_t key, uint32_t *slot);
int ws_lbl_sets_put(ws_lbl_sets *s, uint64_t key, uint32_t slot);   /* -1: out of memory */
void ws_lbl_sets_clear(ws_lbl_sets *s);
void ws_lbl_sets_free(ws_lbl_sets *s);

#endif
