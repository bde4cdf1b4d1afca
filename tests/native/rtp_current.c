/* rtp_table_api.h (prefix ws_new_) over ext/rtp/ws_rtp.c as it is. */
#include "../../ext/rtp/ws_rtp.c"

#define RTP_API_PREFIX ws_new_
#include "rtp_table_api.c"
