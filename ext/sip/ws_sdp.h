/* SDP bodies (RFC 4566/8866, offer/answer per RFC 3264): the lines media
 * binding reads (c=, m=, a=rtpmap/ptime/rtcp/rtcp-mux and the direction
 * attributes), in one pass, into a fixed-size result. No allocation: a body
 * with more m= lines, formats or rtpmaps than the result holds keeps the
 * first ones and counts the rest.
 *
 * The result must equal what warpsniff/sip/sdp.py's Python parser reads from
 * the same body. That parser works on decoded text (Unicode whitespace, line
 * breaks and digits); this scan reproduces it for plain ASCII text only and
 * answers WS_SDP_UNUSUAL for anything else, and for number forms Python's
 * int() reads but this scan does not (signs, '_', more than 9 digits), so
 * that the caller can run the Python parser on those rare bodies. */
#ifndef WS_SDP_H
#define WS_SDP_H

#include "../ws_common.h"
#include "ws_sip.h" /* ws_span */

#define WS_SDP_MAX_MEDIA 32    /* m= lines kept per body */
#define WS_SDP_MAX_FORMATS 256 /* formats kept per body, all m= lines together */
#define WS_SDP_MAX_RTPMAP 256  /* distinct a=rtpmap payload types kept per body */
#define WS_SDP_ADDR_TEXT 48    /* >= INET6_ADDRSTRLEN */

typedef enum ws_sdp_status {
    WS_SDP_OK = 0,
    WS_SDP_NOT_SDP,  /* does not start with "v=" (after whitespace) */
    WS_SDP_UNUSUAL,  /* outside the subset this scan reproduces: parse it in Python */
} ws_sdp_status;

/* a= direction attributes (RFC 4566 section 6); NONE = not given at this level */
typedef enum ws_sdp_direction {
    WS_SDP_DIR_NONE = 0,
    WS_SDP_SENDRECV,
    WS_SDP_SENDONLY,
    WS_SDP_RECVONLY,
    WS_SDP_INACTIVE,
} ws_sdp_direction;

typedef enum ws_sdp_conn_state {
    WS_SDP_CONN_ABSENT = 0, /* no c= line at this level */
    WS_SDP_CONN_INVALID,    /* the last c= line here held no usable address */
    WS_SDP_CONN_VALID,
} ws_sdp_conn_state;

/* c=IN IP4|IP6 <address>[/ttl]: the address as the engine keys it (16 bytes,
 * IPv4 v4-mapped); ws_sdp_conn_text gives its normalised text when asked. */
typedef struct ws_sdp_conn {
    uint8_t state;  /* ws_sdp_conn_state */
    uint8_t is_v4;
    ws_addr addr;
} ws_sdp_conn;

/* one token of an m= line's format list: a payload type when all digits */
typedef struct ws_sdp_format {
    ws_span token;
    uint32_t value; /* when numeric */
    uint8_t numeric;
} ws_sdp_format;

/* a=rtpmap:<pt> <encoding>/<clock>[/<channels>] */
typedef struct ws_sdp_rtpmap {
    uint32_t pt;
    uint32_t clock;
    ws_span encoding;
} ws_sdp_rtpmap;

typedef struct ws_sdp_media {
    ws_span kind;  /* audio, video, image, application */
    ws_span proto; /* RTP/AVP, RTP/SAVP, udptl, ... */
    uint32_t port;
    uint32_t ptime;
    uint32_t rtcp_port;
    uint16_t first_format, n_formats; /* in ws_sdp.formats */
    uint16_t first_rtpmap, n_rtpmap;  /* in ws_sdp.rtpmap, in first-seen order */
    uint8_t has_ptime, has_rtcp_port, rtcp_mux;
    uint8_t direction; /* ws_sdp_direction */
    ws_sdp_conn conn;
} ws_sdp_media;

typedef struct ws_sdp {
    uint8_t status;    /* ws_sdp_status */
    uint8_t direction; /* session level; NONE means the default, sendrecv */
    uint16_t n_media;
    uint16_t n_formats, n_rtpmap;
    /* what did not fit (0 on any real body) */
    uint32_t media_dropped, formats_dropped, rtpmap_dropped;
    ws_sdp_conn conn; /* session level */
    ws_sdp_media media[WS_SDP_MAX_MEDIA];
    ws_sdp_format formats[WS_SDP_MAX_FORMATS];
    ws_sdp_rtpmap rtpmap[WS_SDP_MAX_RTPMAP];
} ws_sdp;

/* Scans the body p[0..n). Spans are offsets into p. Returns s->status. */
int ws_sdp_parse(const uint8_t *p, uint32_t n, ws_sdp *s);

/* A valid connection's address as inet_ntop() prints it (IPv4 dotted for an
 * IP4 line, else IPv6) into out[WS_SDP_ADDR_TEXT]; "" when not valid. Made
 * only when asked: binding media needs the 16 bytes, not the text. */
void ws_sdp_conn_text(const ws_sdp_conn *c, char *out);

#endif
