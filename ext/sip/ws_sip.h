/* The hot part of SIP parsing (RFC 3261 section 7): start line and the
 * headers dialog correlation needs, as spans into the message, plus the
 * body offset. No allocation, no copy; one pass over the header section. */
#ifndef WS_SIP_H
#define WS_SIP_H

#include "../ws_common.h"

#define WS_SIP_MAX_HEADER (64u << 10) /* a header section larger than this is refused */
#define WS_SIP_MAX_BODY (1u << 20)
#define WS_SIP_NO_LENGTH UINT32_MAX

typedef enum ws_sip_method {
    WS_SIP_OTHER = 0,
    WS_SIP_INVITE,
    WS_SIP_ACK,
    WS_SIP_BYE,
    WS_SIP_CANCEL,
    WS_SIP_OPTIONS,
    WS_SIP_REGISTER,
    WS_SIP_PRACK,
    WS_SIP_UPDATE,
    WS_SIP_INFO,
    WS_SIP_REFER,
    WS_SIP_NOTIFY,
    WS_SIP_SUBSCRIBE,
    WS_SIP_MESSAGE,
    WS_SIP_PUBLISH,
    WS_SIP_METHOD_COUNT /* not a method: how many there are */
} ws_sip_method;

typedef enum ws_sip_status {
    WS_SIP_OK = 0,
    WS_SIP_INCOMPLETE,      /* header section not finished (TCP: wait for more) */
    WS_SIP_BAD_START_LINE,
    WS_SIP_NO_CALL_ID,
    WS_SIP_BAD_CSEQ,
    WS_SIP_BAD_LENGTH,      /* Content-Length absurd or larger than the datagram */
    WS_SIP_HEADER_TOO_LONG,
    WS_SIP_BINARY,          /* control bytes in the header section */
    WS_SIP_KEEPALIVE,       /* CRLF keep-alive (RFC 5626), not a message */
} ws_sip_status;

typedef struct ws_span {
    uint32_t off;
    uint32_t len;
} ws_span;

typedef struct ws_sip_msg {
    uint8_t status;       /* ws_sip_status */
    uint8_t is_request;
    uint8_t method;       /* ws_sip_method of the request line */
    uint8_t cseq_method;  /* ws_sip_method named in CSeq */
    uint16_t code;        /* response status code */
    uint16_t via_count;   /* Via values seen (all headers, comma-separated) */
    uint32_t cseq;
    uint32_t content_length; /* WS_SIP_NO_LENGTH when absent */
    uint32_t header_len;  /* bytes up to and including the empty line */
    uint32_t msg_len;     /* header_len + body length */
    ws_span method_name;
    ws_span request_uri;
    ws_span reason;
    ws_span call_id;
    ws_span from_uri;
    ws_span from_tag;
    ws_span to_uri;
    ws_span to_tag;
    ws_span via_branch;   /* of the top Via */
    ws_span content_type;
    ws_span session_expires;
    ws_span correlation;  /* the configured correlation header, e.g. X-CID */
    ws_span body;
} ws_sip_msg;

extern const ws_field_desc ws_sip_msg_fields[];
extern const size_t ws_sip_msg_nfields;

/* Parses one message at p. `datagram` = 1 for UDP (the message ends with the
 * datagram), 0 for a stream (framing by Content-Length; INCOMPLETE when the
 * headers or body have not all arrived). `corr_name` is a lower-case header
 * name to capture in `correlation` (NULL for none). */
int ws_sip_parse(const uint8_t *p, uint32_t n, int datagram, const char *corr_name, ws_sip_msg *m);

#endif
