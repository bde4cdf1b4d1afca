# Included by _engine.pyx, after sip/dialogs.pyx (it reads Call's fields).
# Calls' media figures from their stream records in one typed pass
# (Pipeline._media_of_calls: media joins and live_media), stream by stream as
# QualityContext.default_mos scores and docs/metrics.md directs them
# (tests/test_batch_media.py).

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.math cimport NAN


def add_call_media(rows, dict by_ref, dict medias, quality, int jb_mode):
    """Adds each stream record in `rows` (all of calls in `by_ref`: call_ref
    -> Call) to its call's CallMedia in `medias` (call_ref -> CallMedia): per
    (direction, codec) the lost and expected packets and the worst jitter,
    and as the call's MOS the worst of its streams' scores with playout
    buffer `jb_mode` (an index of the records' jb_* arrays)."""
    if rows.dtype.names != STREAM_DTYPE.names:
        raise TypeError("stream records expected")
    if not 0 <= jb_mode < WS_JB_MODES:
        raise ValueError(f"no playout buffer {jb_mode}")
    cdef Py_ssize_t i, n = len(rows)
    if n == 0:
        return
    if rows.dtype != STREAM_DTYPE:
        rows = rows.astype(STREAM_DTYPE)   # np.concatenate repacks the fields in name order
    rows = np.ascontiguousarray(rows)
    cdef const uint8_t[::1] raw = rows.view(np.uint8).reshape(-1)
    cdef const ws_stream_record *r
    cdef Call call
    cdef int64_t expected, lost, counted
    cdef double jitter, one_way
    cdef ws_emodel_score s
    cdef bint plc = quality.plc
    cdef dict payload_names = quality.payload_names, rtt_of = quality.rtt
    cdef dict scored = {}      # (call_ref, payload type) -> (codec name, impairment or None)
    cdef dict directions = {}  # call_ref -> the call's direction from the platform's view
    cdef dict worst = {}       # call_ref -> lowest MOS of its streams
    lookup = quality.codecs.lookup
    for i in range(n):
        r = <const ws_stream_record *>&raw[i * sizeof(ws_stream_record)]
        ref = r.call_ref
        call = <Call?>by_ref[ref]
        media = medias[ref]
        pt = r.payload_type
        found = scored.get((ref, pt))
        if found is None:
            codec = lookup(pt, payload_names.get(ref, {}).get(pt))
            imp = None
            if codec is not None:
                imp = codec.plc if plc or codec.no_plc is None else codec.no_plc
            found = scored[(ref, pt)] = (codec.name if codec is not None else None, imp)
        name, imp = found
        expected, lost = r.expected, r.lost
        if imp is not None and expected > 0:
            counted = (lost if lost > 0 else 0) + r.jb_late[jb_mode]
            rtt = rtt_of.get(r.ssrc)
            one_way = NAN if rtt is None else <double>rtt / 2.0
            s = ws_emodel(imp.ie, imp.bpl, expected, expected if expected < counted else counted,
                          r.jb_loss_runs[jb_mode], one_way)
            low = worst.get(ref)
            if low is None or s.mos < low:
                worst[ref] = s.mos
        # the sender is the party whose SDP address the stream did not go to
        # (or, failing that, came from); the caller when neither is known
        side = call.media.get((PyBytes_FromStringAndSize(<const char *>r.dst, 16), r.dport))
        if side is not None:
            sender_is_caller = side != "caller"
        else:
            side = call.media.get((PyBytes_FromStringAndSize(<const char *>r.src, 16), r.sport))
            sender_is_caller = not side or side == "caller"
        call_dir = directions.get(ref)
        if call_dir is None:
            call_dir = call.labels.direction if call.labels is not None else "unknown"
            if call_dir != "inbound" and call_dir != "outbound":
                call_dir = "outbound"   # unknown: from the caller's view, its own media is outbound
            directions[ref] = call_dir
        if not sender_is_caller:
            call_dir = "inbound" if call_dir == "outbound" else "outbound"
        row = media.streams.get((call_dir, name or "unknown"))
        if row is None:
            row = media.streams[(call_dir, name or "unknown")] = [0, 0, 0.0]
        row[0] += lost if lost > 0 else 0
        row[1] += expected if expected > 0 else 0
        jitter = r.max_jitter_ms
        if jitter > row[2]:
            row[2] = jitter
    for ref, low in worst.items():
        medias[ref].mos = low
