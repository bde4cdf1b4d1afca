"""CallTracker's timers with many calls open at once (docs/calls.md, "Timers
run on capture time"): every call must end at the first capture-second tick
after its documented deadline, with the documented end time, and the calls one
tick ends are reported in the order of their last message.

The tracker is fed header objects directly (no capture) so that hundreds of
calls in every timer state, including states that move a deadline earlier
(a BYE while ringing, the first RTP after SIP-only), share the same ticks.
The truth is computed here from the rules, not from the tracker.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional

import pytest

from warpsniff.sip.calls import CallConfig, CallTracker

CONFIG = CallConfig(invite_timeout=32.0, ring_timeout=180.0, rtp_timeout=40.0, sip_only_timeout=90.0,
                    max_duration=400.0, bye_linger=32.0)
CALLER = (bytes(10) + b"\xff\xff" + bytes([192, 0, 2, 10]), 5060)
CALLEE = (bytes(10) + b"\xff\xff" + bytes([198, 51, 100, 20]), 5060)


@dataclass
class Headers:
    """The fields of the native parser's header object the tracker reads."""
    call_id: str
    is_request: bool
    cseq: int
    cseq_method: str
    via_branch: str
    from_tag: Optional[str]
    to_tag: Optional[str] = None
    method: Optional[str] = None
    code: int = 0
    session_expires: Optional[str] = None
    status_name: str = "ok"
    request_uri: str = "sip:bob@example.com"
    from_uri: str = "sip:alice@example.com"
    to_uri: str = "sip:bob@example.com"
    correlation: Optional[str] = None
    body_len: int = 0
    body_off: int = 0
    content_type: Optional[str] = None
    header_len: int = 0


class NoEngine:
    def bind(self, *args):
        return False

    def unbind(self, *args):
        pass


def scenario(seed: int, calls: int):
    """Messages and RTP sightings for `calls` calls of random kinds, and for
    each call its expected (end_ts, reason, deadline): the tracker must end it
    at the first tick more than deadline."""
    rng = random.Random(seed)
    events = []   # (time, order, kind, call_id, payload)
    truth = {}
    branch = iter(range(10 ** 9))

    def request(t, cid, method, cseq, to_tag=None, se=None):
        events.append((t, len(events), "sip", cid, Headers(
            call_id=cid, is_request=True, method=method, cseq=cseq, cseq_method=method,
            via_branch=f"z9hG4bK{next(branch)}", from_tag="a-" + cid, to_tag=to_tag, session_expires=se)))

    def answer(t, cid, code, to_tag=None, se=None):
        events.append((t, len(events), "sip", cid, Headers(
            call_id=cid, is_request=False, code=code, cseq=1, cseq_method="INVITE",
            via_branch=f"z9hG4bK-invite-{cid}", from_tag="a-" + cid, to_tag=to_tag, session_expires=se)))

    for i in range(calls):
        cid = f"timer-{i}@test"
        t0 = round(rng.uniform(0.0, 300.0), 3)
        # the INVITE's branch is the one its responses carry
        events.append((t0, len(events), "sip", cid, Headers(
            call_id=cid, is_request=True, method="INVITE", cseq=1, cseq_method="INVITE",
            via_branch=f"z9hG4bK-invite-{cid}", from_tag="a-" + cid)))
        kind = rng.choice(["timer_b", "timer_c", "ringing_then_bye", "session_expires", "rtp_idle",
                           "sip_only", "bye_without_response", "max_duration"])
        if kind == "timer_b":
            truth[cid] = (t0 + 32.0, "timeout", t0 + 32.0)
        elif kind == "timer_c":
            answer(t0 + 1.0, cid, 180, to_tag="b-" + cid)
            truth[cid] = (t0 + 180.0, "timeout", t0 + 180.0)
        elif kind == "ringing_then_bye":   # Timer C's deadline, then a much earlier one
            answer(t0 + 1.0, cid, 180, to_tag="b-" + cid)
            request(t0 + 3.0, cid, "BYE", 2, to_tag="b-" + cid)
            truth[cid] = (t0 + 3.0, "cancelled", t0 + 3.0 + 32.0)
        else:
            answer(t0 + 1.0, cid, 200, to_tag="b-" + cid,
                   se=str(rng.randint(20, 80)) if kind == "session_expires" else None)
            request(t0 + 1.1, cid, "ACK", 1, to_tag="b-" + cid)
            if kind == "session_expires":
                se = float(events[-2][4].session_expires)
                truth[cid] = (t0 + 1.0 + se, "timeout", t0 + 1.0 + se)
            elif kind == "rtp_idle":
                # the first RTP shortens the idle limit from 90 to 40 s; past
                # invite + 32 s it comes after the Timer B wake-up
                last = t0 + rng.uniform(2.0, 50.0)
                events.append((last + 0.05, len(events), "rtp", cid, last))
                truth[cid] = (last, "timeout", last + 40.0)
            elif kind == "sip_only":
                truth[cid] = (t0 + 1.0, "timeout", t0 + 1.1 + 90.0)
            elif kind == "max_duration":   # RTP all along, until the cap
                for k in range(1, 57):   # the last at +392 s: the cap ends it first
                    events.append((t0 + 7.0 * k + 0.05, len(events), "rtp", cid, t0 + 7.0 * k))
                truth[cid] = (t0 + 1.0 + 400.0, "timeout", t0 + 1.0 + 400.0)
            else:   # bye_without_response: BYE seen, its response never comes
                t_bye = t0 + rng.uniform(5.0, 50.0)
                request(t_bye, cid, "BYE", 2, to_tag="b-" + cid)
                truth[cid] = (t_bye, "normal", t_bye + 32.0)
    events.sort(key=lambda e: (e[0], e[1]))
    return events, truth


@pytest.mark.parametrize("rtp", ["pushed", "probed"])
def test_many_calls_end_at_their_documented_ticks_in_last_message_order(rtp):
    """pushed: each RTP sighting is handed to media_activity as it happens;
    probed: the tracker asks (media_probe) only when a timer is due, as the
    pipeline runs it, and must end every call at the same tick."""
    events, truth = scenario(seed=3, calls=600)
    finished = []   # (tick, call)
    tick_now = [None]
    tracker = CallTracker(NoEngine(), CONFIG, on_call=lambda call: finished.append((tick_now[0], call)))
    latest_rtp = {}   # call_ref -> latest RTP time so far: what the engine's table would say
    asked: dict = {}  # call_ref -> times the tracker asked about it
    if rtp == "probed":
        def probe(refs):
            for ref in refs:
                asked[ref] = asked.get(ref, 0) + 1
            return {ref: latest_rtp[ref] for ref in refs if ref in latest_rtp}
        tracker.media_probe = probe

    last_message = {}   # call_id -> index of its latest message, for the expected order within a tick
    ticks = [k + 0.5 for k in range(0, 900)]   # capture seconds, never equal to an event's time
    next_tick = 0
    open_call_ticks = 0   # what asking about every open call every tick would cost
    for position, (t, _, kind, cid, payload) in enumerate(events):
        while next_tick < len(ticks) and ticks[next_tick] <= t:
            open_call_ticks += len(tracker.calls)
            tick_now[0] = ticks[next_tick]
            tracker.tick(ticks[next_tick])
            next_tick += 1
        tick_now[0] = None
        if kind == "sip":
            tracker.message(payload, b"", t, CALLER if payload.is_request else CALLEE,
                            CALLEE if payload.is_request else CALLER)
            last_message[cid] = position
        else:
            call = tracker.calls[cid]
            if rtp == "pushed":
                tracker.media_activity({call.call_ref: payload})
            else:
                latest_rtp[call.call_ref] = payload
    for now in ticks[next_tick:]:
        tick_now[0] = now
        tracker.tick(now)

    assert len(finished) == len(truth)
    assert all(tick is not None for tick, _ in finished), "a call ended outside a tick"
    for tick, call in finished:
        end_ts, reason, deadline = truth[call.call_id]
        expected_tick = next(k for k in ticks if k - deadline > 0)
        assert (tick, call.reason) == (expected_tick, reason), call.call_id
        assert abs(call.end_ts - end_ts) < 1e-9, call.call_id
    # within one tick, the order of the calls' last messages
    by_tick: dict = {}
    for tick, call in finished:
        by_tick.setdefault(tick, []).append(last_message[call.call_id])
    assert all(orders == sorted(orders) for orders in by_tick.values())
    assert max(len(v) for v in by_tick.values()) > 1   # the order was put to the test
    assert not tracker.calls
    if rtp == "probed":
        # asked only when a timer is due: about once per rtp_timeout of a call's life (+1 for
        # the slack's early wake-up), never about every open call every tick
        assert 0 < 5 * sum(asked.values()) < open_call_ticks
        for tick, call in finished:
            life = tick - call.invite_ts
            assert asked.get(call.call_ref, 0) <= life / CONFIG.rtp_timeout + 2, call.call_id


def test_a_config_set_later_brings_its_limits():
    """The tracker keeps its config's limits as C numbers (the timers read them
    for every due call): a config assigned after the tracker was made must
    bring its own."""
    ended = []
    tracker = CallTracker(NoEngine(), CallConfig(invite_timeout=32.0), on_call=ended.append)
    tracker.config = CallConfig(invite_timeout=2.0)
    tracker.message(Headers(call_id="late-config@test", is_request=True, method="INVITE", cseq=1,
                            cseq_method="INVITE", via_branch="z9hG4bK1", from_tag="a"), b"", 10.0, CALLER, CALLEE)
    tracker.tick(11.0)
    assert ended == []
    tracker.tick(13.0)
    assert [(c.call_id, c.reason, c.end_ts) for c in ended] == [("late-config@test", "timeout", 12.0)]
    assert tracker.config.invite_timeout == 2.0
