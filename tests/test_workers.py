"""Several capture workers: each engine keeps its own streams, while SIP seen
on any worker binds media on all of them.

The race the design must survive: a call's first RTP packets reach a worker
before the SIP that binds them, seen on another worker, has been turned into
a binding there. With `adopt_unbound` the stream joins the call as soon as the
binding arrives; a single engine (the fast path) keeps its exact semantics.
"""
from __future__ import annotations

import ipaddress

import numpy as np
import pytest

import capgen as cg
from warpsniff._engine import Engine

CALL_REF = 7


def addr16(text: str) -> bytes:
    return ipaddress.IPv6Address("::ffff:" + text).packed


def feed(engine: Engine, pkts) -> None:
    for p in pkts:
        frame = bytes(cg.ether(cg.udp_ip(cg.rtp_bytes(p))))
        engine.feed(frame, p.arrival_ns)


def only_stream(engine: Engine):
    streams = engine.streams()
    assert len(streams) == 1
    return streams[0]


@pytest.mark.parametrize("adopt", [False, True])
def test_stream_started_before_its_binding(adopt):
    pkts = cg.voice(50)
    engine = Engine(adopt_unbound=adopt)
    feed(engine, pkts[:10])               # media first: the SIP is still on another worker
    engine.bind(addr16(cg.DST4), cg.RTP_DPORT, CALL_REF, [(0, 8000, "audio")])
    feed(engine, pkts[10:])
    s = only_stream(engine)
    assert s["packets"] == 50             # one stream either way: nothing split or lost
    if adopt:
        assert s["call_ref"] == CALL_REF
        assert engine.counters()["adopted_streams"] == 1
    else:                                 # one engine binds only at a stream's start
        assert s["call_ref"] == 0
        assert engine.counters()["adopted_streams"] == 0


def test_adoption_leaves_other_destinations_alone():
    pkts = cg.voice(20)
    engine = Engine(adopt_unbound=True)
    feed(engine, pkts[:5])
    engine.bind(addr16(cg.DST4), cg.RTP_DPORT + 2, CALL_REF, [(0, 8000, "audio")])  # another port
    feed(engine, pkts[5:])
    assert only_stream(engine)["call_ref"] == 0


def test_stream_of_a_finished_call_is_not_adopted_by_the_next():
    """A stream that kept its call when the binding was released belongs to
    that call; the next call's binding of the same port does not take it."""
    pkts = cg.voice(30)
    engine = Engine(adopt_unbound=True)
    engine.bind(addr16(cg.DST4), cg.RTP_DPORT, CALL_REF, [(0, 8000, "audio")])
    feed(engine, pkts[:10])
    engine.unbind(addr16(cg.DST4), cg.RTP_DPORT, CALL_REF)
    feed(engine, pkts[10:20])
    engine.bind(addr16(cg.DST4), cg.RTP_DPORT, CALL_REF + 1, [(0, 8000, "audio")])
    feed(engine, pkts[20:])
    s = only_stream(engine)
    assert (s["call_ref"], s["packets"]) == (CALL_REF, 30)
    assert engine.counters()["adopted_streams"] == 0


class _Call:
    def __init__(self, call_ref, invite_ts, media):
        self.call_ref, self.invite_ts, self.media = call_ref, invite_ts, media


def test_claim_unbound_media_takes_only_the_calls_destinations_after_its_invite():
    from warpsniff._engine import STREAM_DTYPE
    from warpsniff.capture.workers import claim_unbound_media

    dst = addr16(cg.DST4)
    rows = np.zeros(4, dtype=STREAM_DTYPE)
    rows["dst"] = [dst, dst, dst, addr16("10.9.9.9")]
    rows["dport"] = [cg.RTP_DPORT, cg.RTP_DPORT, cg.RTP_DPORT + 2, cg.RTP_DPORT]
    rows["first_ns"] = [101 * cg.NS, 99 * cg.NS, 101 * cg.NS, 101 * cg.NS]   # the second began before the INVITE
    rows["call_ref"] = [0, 0, 0, 0]
    bound = rows.copy()[:1]
    bound["call_ref"] = 3                                                    # already someone's: untouched
    streams = np.concatenate([rows, bound])
    call = _Call(CALL_REF, 100.0, {(dst, cg.RTP_DPORT): "callee"})
    claimed = claim_unbound_media(streams, [call])
    assert list(claimed["call_ref"]) == [CALL_REF, 0, 0, 0, 3]
    assert list(streams["call_ref"]) == [0, 0, 0, 0, 3]                      # the snapshot itself is not changed


@pytest.mark.parametrize("port, pts", [(70000, ()), (-1, ()), (4000, ((128, 8000, "audio"),))])
def test_bind_refuses_what_rtp_cannot_carry(port, pts):
    """A 17-bit port or an 8-bit payload type is refused, not truncated into someone else's binding."""
    engine = Engine()
    with pytest.raises((ValueError, OverflowError)):
        engine.bind(addr16(cg.DST4), port, CALL_REF, pts)
    assert engine.counters()["media_bindings"] == 0
