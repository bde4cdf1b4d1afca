"""Call attempts and their CDR values (docs/calls.md), on captures whose truth
the test wrote: every expected time below is a time a frame was written at,
every code one a response carried.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

import warpsniff.pipeline as pipeline_mod
from warpsniff.metrics.collector import SnifferCollector
from warpsniff.pipeline import Pipeline
from warpsniff.replay import EngineOptions, replay
from warpsniff.report import call_to_dict
from warpsniff.sip.calls import CallConfig, CallTracker

from sipgen import (
    ALICE,
    BOB,
    Capture,
    Dialog,
    Msg,
    TcpConn,
    a8_max_jitter_ms,
    response,
    sdp,
    ts,
)

REPO = Path(__file__).resolve().parent.parent

A_MEDIA = ("192.0.2.10", 4000)
B_MEDIA = ("198.51.100.20", 5000)


# --------------------------------------------------------------------------
# helpers


def run(tmp_path, cap: Capture, config: CallConfig | None = None, name: str = "c.pcap", **opts):
    path = cap.write(tmp_path / name)
    r = replay([str(path)], EngineOptions(**opts), config or CallConfig())
    assert not r.errors, r.errors
    return r


def cdr(r, call) -> dict:
    """The CDR line warpsniff writes for this attempt."""
    return call_to_dict(call, r.streams_of(call))


def check(line: dict, **expected) -> None:
    """Compares CDR fields; times to the microsecond, PDD to the microsecond."""
    bad = []
    for key, want in expected.items():
        got = line[key]
        if isinstance(want, float) and got is not None:
            tol = 1e-3 if key == "pdd_ms" else 1e-6
            ok = abs(got - want) <= tol
        else:
            ok = got == want
        if not ok:
            bad.append(f"{key}: expected {want!r}, got {got!r}")
    assert not bad, "; ".join(bad) + f"\nCDR: { {k: v for k, v in line.items() if k != 'streams'} }"


def one_call(r) -> dict:
    assert len(r.calls) == 1, [c.call_id for c in r.calls]
    return cdr(r, r.calls[0])


def by_id(r, call_id: str):
    found = [c for c in r.calls if c.call_id == call_id]
    assert len(found) == 1, (call_id, [c.call_id for c in r.calls])
    return found[0]


def send(cap: Capture, t: float, src, dst, msg) -> None:
    cap.udp(t, src, dst, bytes(msg))


def ack(d: Dialog, cseq: int, to_tag, invite: Msg | None = None) -> Msg:
    """ACK for a 2xx (new branch) or, given the INVITE, for a non-2xx (its branch)."""
    branch = None
    if invite is not None:
        branch = invite.get("Via").split("branch=")[1]
    return d.request("ACK", cseq, to_tag=to_tag, branch=branch)


def setup_call(cap, d: Dialog, *, t_invite, offer=b"", t_trying=None, t_ring=None, ring_code=180,
               ring_body=b"", t_answer=None, answer=b"", to_tag="callee-tag", extra=(), answer_extra=()):
    """INVITE, optional 100/18x/200 and the ACK (10 ms after the 200)."""
    inv = d.invite(1, body=offer, extra=extra)
    send(cap, t_invite, d.caller, d.callee, inv)
    if t_trying is not None:
        send(cap, t_trying, d.callee, d.caller, response(inv, 100))
    if t_ring is not None:
        send(cap, t_ring, d.callee, d.caller, response(inv, ring_code, to_tag=to_tag, body=ring_body))
    if t_answer is not None:
        send(cap, t_answer, d.callee, d.caller, response(inv, 200, to_tag=to_tag, body=answer, extra=answer_extra))
        send(cap, t_answer + 0.01, d.caller, d.callee, ack(d, 1, to_tag))
    d.to_tag = to_tag
    return inv


def hangup(cap, d: Dialog, t, *, from_callee=False, code=200, cseq=2, delay=0.05):
    bye = d.request("BYE", cseq, from_callee=from_callee, to_tag=d.to_tag)
    src, dst = (d.callee, d.caller) if from_callee else (d.caller, d.callee)
    send(cap, t, src, dst, bye)
    if code is not None:
        send(cap, t + delay, dst, src, response(bye, code))
    return bye


def stream_rows(r, call):
    return list(r.streams_of(call))


# --------------------------------------------------------------------------
# attempts


def test_retransmitted_invite_is_one_attempt(tmp_path):
    cap = Capture()
    d = Dialog("retrans-1@192.0.2.10")
    inv = d.invite(1, body=sdp(*A_MEDIA))
    send(cap, 0.0, ALICE, BOB, inv)
    send(cap, 0.5, ALICE, BOB, inv)          # Timer A retransmissions: same branch, CSeq
    send(cap, 1.5, ALICE, BOB, inv)
    send(cap, 1.6, BOB, ALICE, response(inv, 100))
    send(cap, 2.0, BOB, ALICE, response(inv, 180, to_tag="b1"))
    ok = response(inv, 200, to_tag="b1", body=sdp(*B_MEDIA))
    send(cap, 5.0, BOB, ALICE, ok)
    send(cap, 5.5, BOB, ALICE, ok)           # 2xx retransmitted before the ACK
    send(cap, 5.6, ALICE, BOB, ack(d, 1, "b1"))
    d.to_tag = "b1"
    hangup(cap, d, 15.0)
    r = run(tmp_path, cap)
    line = one_call(r)
    check(line, call_id="retrans-1@192.0.2.10", invite_ts=ts(0.0), pdd_ms=2000.0, pdd_end="ringing",
          final_code=200, reason="normal", answer_ts=ts(5.0), end_ts=ts(15.0), duration_s=10.0,
          ended_by="caller", bye_code=200, retransmissions=3, early_dialogs=1)
    assert r.sip["retransmissions"] == 3
    assert r.sip["by_method"]["INVITE"] == 3


def test_challenge_then_invite_with_higher_cseq_is_same_attempt(tmp_path):
    cap = Capture()
    d = Dialog("auth-1@192.0.2.10")
    inv1 = d.invite(1, body=sdp(*A_MEDIA))
    send(cap, 0.0, ALICE, BOB, inv1)
    send(cap, 0.05, BOB, ALICE, response(inv1, 407, to_tag="px", extra=[
        ("Proxy-Authenticate", 'Digest realm="example.com", nonce="abc"')]))
    send(cap, 0.06, ALICE, BOB, ack(d, 1, "px", invite=inv1))
    inv2 = d.invite(2, body=sdp(*A_MEDIA), extra=[
        ("Proxy-Authorization", 'Digest username="alice", realm="example.com", nonce="abc", response="x"')])
    send(cap, 0.10, ALICE, BOB, inv2)
    send(cap, 0.12, BOB, ALICE, response(inv2, 100))
    send(cap, 0.90, BOB, ALICE, response(inv2, 180, to_tag="b2"))
    send(cap, 3.0, BOB, ALICE, response(inv2, 200, to_tag="b2", body=sdp(*B_MEDIA)))
    send(cap, 3.01, ALICE, BOB, ack(d, 2, "b2"))
    d.to_tag = "b2"
    hangup(cap, d, 20.0, from_callee=True, cseq=1)
    r = run(tmp_path, cap)
    line = one_call(r)
    check(line, invite_ts=ts(0.0), pdd_ms=900.0, pdd_end="ringing", final_code=200, reason="normal",
          answer_ts=ts(3.0), end_ts=ts(20.0), duration_s=17.0, ended_by="callee", bye_code=200,
          retransmissions=0)


def test_challenge_never_retried_fails_with_that_code(tmp_path):
    cap = Capture()
    d = Dialog("auth-2@192.0.2.10")
    inv = d.invite(1, body=sdp(*A_MEDIA))
    send(cap, 0.0, ALICE, BOB, inv)
    send(cap, 0.05, BOB, ALICE, response(inv, 407, to_tag="px"))
    send(cap, 0.06, ALICE, BOB, ack(d, 1, "px", invite=inv))
    cap.fillers(1.0, 200.0)  # capture time runs past the 180 s wait for a retry
    r = run(tmp_path, cap)
    line = one_call(r)
    check(line, invite_ts=ts(0.0), final_code=407, reason="failed", answer_ts=None, duration_s=None,
          pdd_ms=None, pdd_end=None)


def test_challenge_never_retried_ends_at_the_challenge(tmp_path):
    cap = Capture()
    d = Dialog("auth-3@192.0.2.10")
    inv = d.invite(1, body=sdp(*A_MEDIA))
    send(cap, 0.0, ALICE, BOB, inv)
    send(cap, 0.05, BOB, ALICE, response(inv, 407, to_tag="px"))
    send(cap, 0.06, ALICE, BOB, ack(d, 1, "px", invite=inv))
    cap.fillers(1.0, 200.0)
    r = run(tmp_path, cap)
    check(one_call(r), final_code=407, reason="failed", end_ts=ts(0.05))


def test_cancel_after_ringing(tmp_path):
    cap = Capture()
    d = Dialog("cancel-1@192.0.2.10")
    inv = setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), t_trying=0.05, t_ring=1.2)
    branch = inv.get("Via").split("branch=")[1]
    cancel = d.request("CANCEL", 1, branch=branch)
    send(cap, 6.0, ALICE, BOB, cancel)
    send(cap, 6.02, BOB, ALICE, response(cancel, 200, to_tag="callee-tag"))
    send(cap, 6.03, BOB, ALICE, response(inv, 487, to_tag="callee-tag"))
    send(cap, 6.04, ALICE, BOB, ack(d, 1, "callee-tag", invite=inv))
    r = run(tmp_path, cap)
    line = one_call(r)
    check(line, final_code=487, reason="cancelled", ended_by="caller", pdd_ms=1200.0, pdd_end="ringing",
          answer_ts=None, end_ts=ts(6.03), duration_s=None, bye_code=None)


def test_forked_early_dialogs_then_200_from_one(tmp_path):
    cap = Capture()
    d = Dialog("fork-1@192.0.2.10")
    inv = d.invite(1, body=sdp(*A_MEDIA))
    send(cap, 0.0, ALICE, BOB, inv)
    send(cap, 0.04, BOB, ALICE, response(inv, 100))
    send(cap, 1.0, BOB, ALICE, response(inv, 180, to_tag="fork-a"))
    send(cap, 1.5, BOB, ALICE, response(inv, 180, to_tag="fork-b"))
    send(cap, 4.0, BOB, ALICE, response(inv, 200, to_tag="fork-b", body=sdp(*B_MEDIA)))
    send(cap, 4.01, ALICE, BOB, ack(d, 1, "fork-b"))
    d.to_tag = "fork-b"
    hangup(cap, d, 10.0)
    r = run(tmp_path, cap)
    line = one_call(r)
    check(line, early_dialogs=2, pdd_ms=1000.0, pdd_end="ringing", final_code=200, answer_ts=ts(4.0),
          end_ts=ts(10.0), duration_s=6.0, ended_by="caller", bye_code=200, reason="normal")
    assert r.calls[0].answer_to_tag == "fork-b"


def test_late_2xx_from_other_fork_is_ignored_even_when_byed(tmp_path):
    cap = Capture()
    d = Dialog("fork-2@192.0.2.10")
    inv = d.invite(1, body=sdp(*A_MEDIA))
    send(cap, 0.0, ALICE, BOB, inv)
    send(cap, 1.0, BOB, ALICE, response(inv, 180, to_tag="fork-a"))
    send(cap, 1.5, BOB, ALICE, response(inv, 180, to_tag="fork-b"))
    send(cap, 4.0, BOB, ALICE, response(inv, 200, to_tag="fork-b", body=sdp(*B_MEDIA)))
    send(cap, 4.01, ALICE, BOB, ack(d, 1, "fork-b"))
    # fork a answers too late: the caller ACKs and BYEs that dialog only
    send(cap, 4.2, BOB, ALICE, response(inv, 200, to_tag="fork-a", body=sdp("198.51.100.21", 5002)))
    send(cap, 4.21, ALICE, BOB, ack(d, 1, "fork-a"))
    d.to_tag = "fork-a"
    hangup(cap, d, 4.3, cseq=2, code=200)
    d.to_tag = "fork-b"
    hangup(cap, d, 10.0, cseq=3, code=200)
    r = run(tmp_path, cap)
    line = one_call(r)
    check(line, early_dialogs=2, answer_ts=ts(4.0), end_ts=ts(10.0), duration_s=6.0, ended_by="caller",
          bye_code=200, reason="normal", final_code=200)


def test_183_with_sdp_and_early_media_then_200(tmp_path):
    cap = Capture()
    d = Dialog("early-1@192.0.2.10")
    inv = d.invite(1, body=sdp(*A_MEDIA))
    send(cap, 0.0, ALICE, BOB, inv)
    send(cap, 0.03, BOB, ALICE, response(inv, 100))
    send(cap, 0.8, BOB, ALICE, response(inv, 183, to_tag="b1", body=sdp(*B_MEDIA),
                                        extra=[("Require", "100rel"), ("RSeq", "1")]))
    prack = d.request("PRACK", 2, to_tag="b1", extra=[("RAck", "1 1 INVITE")])
    send(cap, 0.85, ALICE, BOB, prack)
    send(cap, 0.87, BOB, ALICE, response(prack, 200))
    # early media (ringback) from the callee, through the answer
    early = cap.rtp_flow(B_MEDIA, A_MEDIA, 0xE0E0E0E0, 1.0, 200)       # 1.00 .. 4.98
    send(cap, 3.0, BOB, ALICE, response(inv, 200, to_tag="b1", body=sdp(*B_MEDIA, version=2)))
    send(cap, 3.01, ALICE, BOB, ack(d, 1, "b1"))
    d.to_tag = "b1"
    cap.rtp_flow(A_MEDIA, B_MEDIA, 0xA0A0A0A0, 3.02, 99)                 # 3.02 .. 4.98
    hangup(cap, d, 6.0, cseq=3)
    r = run(tmp_path, cap)
    line = one_call(r)
    check(line, pdd_ms=800.0, pdd_end="progress", final_code=200, answer_ts=ts(3.0), end_ts=ts(6.0),
          duration_s=3.0, reason="normal")
    streams = {s["ssrc"]: s for s in line["streams"]}
    assert set(streams) == {0xE0E0E0E0, 0xA0A0A0A0}
    em = streams[0xE0E0E0E0]
    assert em["call_id"] == "early-1@192.0.2.10"
    assert em["first_ts"] == pytest.approx(ts(early[0][0]), abs=1e-6) and em["first_ts"] < line["answer_ts"]
    assert em["packets"] == 200 and em["lost"] == 0
    assert streams[0xA0A0A0A0]["packets"] == 99


@pytest.mark.parametrize("offer_port, rtpmap_pt", [(70000, 0), (2 ** 40, 0), (4000, 300), (4000, -1)])
def test_sdp_numbers_outside_rtp_bounds_bind_nothing_and_crash_nothing(tmp_path, offer_port, rtpmap_pt):
    """An offer whose port is not a UDP port, or whose rtpmap names a payload
    type RTP cannot carry (7 bits), is not bound (a truncated port would bind
    someone else's media); the call is still counted, and the answer binds."""
    cap = Capture()
    d = Dialog("bounds@192.0.2.10")
    offer = sdp(*A_MEDIA).replace(b"m=audio 4000 RTP/AVP 0", f"m=audio {offer_port} RTP/AVP 0 {rtpmap_pt}".encode())
    offer += f"a=rtpmap:{rtpmap_pt} PCMA/8000\r\n".encode()
    setup_call(cap, d, t_invite=0.0, offer=offer, t_trying=0.1, t_answer=1.0, answer=sdp(*B_MEDIA))
    cap.rtp_flow(B_MEDIA, A_MEDIA, 0xB0B0B0B0, 1.1, 50)   # to the offer's address: bound only if the offer was
    # to the answer's: always bound; sent from another port than the offer's, or latching its
    # source (NAT) would bind the reverse stream to the offer's address whatever the offer said
    cap.rtp_flow((A_MEDIA[0], A_MEDIA[1] + 2), B_MEDIA, 0xA0A0A0A0, 1.1, 50)
    if offer_port != 4000:                                 # to the port a 16-bit truncation would bind
        cap.rtp_flow(B_MEDIA, (A_MEDIA[0], offer_port % 65536), 0xC0C0C0C0, 1.1, 50)
    hangup(cap, d, 3.0)
    r = run(tmp_path, cap)
    line = one_call(r)
    check(line, final_code=200, reason="normal", duration_s=2.0)
    bound = {s["ssrc"] for s in line["streams"]}
    assert 0xA0A0A0A0 in bound
    assert (0xB0B0B0B0 in bound) == (offer_port == 4000)   # a bad rtpmap entry alone does not stop the binding
    assert 0xC0C0C0C0 not in bound


def test_pdd_ends_at_answer_when_only_trying(tmp_path):
    cap = Capture()
    d = Dialog("pdd-answer@192.0.2.10")
    setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), t_trying=0.1, t_answer=2.75, answer=sdp(*B_MEDIA))
    hangup(cap, d, 5.0)
    r = run(tmp_path, cap)
    check(one_call(r), pdd_ms=2750.0, pdd_end="answer", answer_ts=ts(2.75), end_ts=ts(5.0), duration_s=2.25,
          early_dialogs=0)


def test_reinvite_hold_and_resume_rebinds_media(tmp_path):
    cap = Capture()
    d = Dialog("hold-1@192.0.2.10")
    setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), t_ring=0.5, t_answer=2.0, answer=sdp(*B_MEDIA))
    cap.rtp_flow(A_MEDIA, B_MEDIA, 0x11111111, 2.02, 300)        # .. 8.00
    cap.rtp_flow(B_MEDIA, A_MEDIA, 0x22222222, 2.03, 300)
    a_new = ("192.0.2.10", 4002)
    hold = d.invite(2, to_tag=d.to_tag, body=sdp(*a_new, direction="sendonly", version=2))
    send(cap, 10.0, ALICE, BOB, hold)
    send(cap, 10.05, BOB, ALICE, response(hold, 200, to_tag=d.to_tag,
                                          body=sdp(*B_MEDIA, direction="recvonly", version=2)))
    send(cap, 10.06, ALICE, BOB, ack(d, 2, d.to_tag))
    resume = d.invite(3, to_tag=d.to_tag, body=sdp(*a_new, direction="sendrecv", version=3))
    send(cap, 20.0, ALICE, BOB, resume)
    send(cap, 20.05, BOB, ALICE, response(resume, 200, to_tag=d.to_tag,
                                          body=sdp(*B_MEDIA, direction="sendrecv", version=3)))
    send(cap, 20.06, ALICE, BOB, ack(d, 3, d.to_tag))
    cap.rtp_flow(B_MEDIA, a_new, 0x33333333, 20.1, 200)          # to the port the re-INVITE moved to
    hangup(cap, d, 30.0, cseq=4)
    r = run(tmp_path, cap)
    line = one_call(r)
    check(line, holds=1, invite_ts=ts(0.0), answer_ts=ts(2.0), end_ts=ts(30.0), duration_s=28.0,
          final_code=200, reason="normal", pdd_ms=500.0)
    assert r.sip["reinvites"] == 2
    streams = {s["ssrc"]: s for s in line["streams"]}
    assert set(streams) == {0x11111111, 0x22222222, 0x33333333}
    moved = streams[0x33333333]
    assert moved["dst"] == "192.0.2.10:4002" and moved["packets"] == 200


def test_hold_by_unspecified_address_and_nat_alias_binding(tmp_path):
    """An RFC 2543 hold (a re-INVITE offering c=0.0.0.0) counts as a hold and
    binds nothing; with CallConfig.nat_aliases, media the SDP announces on a
    private address is bound at the public address it arrives on."""
    cap = Capture()
    d = Dialog("alias-1@192.0.2.10")
    private, public = ("10.0.0.5", 4000), ("203.0.113.5", 4000)
    setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), t_ring=0.5, t_answer=2.0, answer=sdp(*private))
    cap.rtp_flow(A_MEDIA, public, 0x11111111, 2.02, 100)      # to where the callee really is
    cap.rtp_flow(("198.51.100.99", 4000), ("192.0.2.99", 4000), 0x44444444, 2.02, 100)   # no call's
    hold = d.invite(2, to_tag=d.to_tag, body=sdp("0.0.0.0", 4000, version=2))
    send(cap, 10.0, ALICE, BOB, hold)
    send(cap, 10.05, BOB, ALICE, response(hold, 200, to_tag=d.to_tag, body=sdp(*private, version=2)))
    send(cap, 10.06, ALICE, BOB, ack(d, 2, d.to_tag))
    hangup(cap, d, 20.0, cseq=3)
    r = run(tmp_path, cap, CallConfig(nat_aliases={"10.0.0.5": "203.0.113.5"}))
    line = one_call(r)
    check(line, holds=1, final_code=200, reason="normal")
    streams = {s["ssrc"]: s for s in line["streams"]}
    assert set(streams) == {0x11111111}
    assert streams[0x11111111]["dst"] == "203.0.113.5:4000" and streams[0x11111111]["packets"] == 100
    without = one_call(run(tmp_path, cap, name="plain.pcap"))
    assert without["holds"] == 1 and without["streams"] == []   # no alias: the public address is no call's


def test_bye_never_seen_ends_by_rtp_timeout_at_last_rtp(tmp_path):
    cap = Capture()
    d = Dialog("nobye-1@192.0.2.10")
    setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), t_ring=0.4, t_answer=1.0, answer=sdp(*B_MEDIA))
    a = cap.rtp_flow(A_MEDIA, B_MEDIA, 0x1, 1.02, 500)     # last 11.00
    b = cap.rtp_flow(B_MEDIA, A_MEDIA, 0x2, 1.03, 500)     # last 11.01
    last = max(a[-1][0], b[-1][0])
    assert last == pytest.approx(11.01)
    cap.fillers(12.0, 40.0)
    r = run(tmp_path, cap, CallConfig(rtp_timeout=10.0))
    line = one_call(r)
    check(line, answer_ts=ts(1.0), end_ts=ts(last), duration_s=ts(last) - ts(1.0), reason="timeout",
          ended_by="timeout", final_code=200, bye_code=None)


def test_rtp_timeout_does_not_fire_while_rtp_flows(tmp_path):
    cap = Capture()
    d = Dialog("flowing-1@192.0.2.10")
    setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), t_ring=0.4, t_answer=1.0, answer=sdp(*B_MEDIA))
    cap.rtp_flow(A_MEDIA, B_MEDIA, 0x1, 1.02, 1000)     # every 20 ms until 21.0
    hangup(cap, d, 21.0)
    r = run(tmp_path, cap, CallConfig(rtp_timeout=2.0))
    line = one_call(r)
    check(line, reason="normal", ended_by="caller", end_ts=ts(21.0), duration_s=20.0, bye_code=200)


def test_session_expires_not_refreshed(tmp_path):
    cap = Capture()
    d = Dialog("se-1@192.0.2.10")
    se = [("Supported", "timer"), ("Session-Expires", "90;refresher=uac")]
    setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), extra=se, t_ring=0.5, t_answer=1.0,
               answer=sdp(*B_MEDIA), answer_extra=[("Session-Expires", "90;refresher=uac")])
    # one refresh (request and its 2xx written at the same instant), then none
    refresh = d.invite(2, to_tag=d.to_tag, body=sdp(*A_MEDIA, version=2), extra=se)
    send(cap, 46.0, ALICE, BOB, refresh)
    send(cap, 46.0, BOB, ALICE, response(refresh, 200, to_tag=d.to_tag, body=sdp(*B_MEDIA, version=2),
                                         extra=[("Session-Expires", "90;refresher=uac")]))
    send(cap, 46.01, ALICE, BOB, ack(d, 2, d.to_tag))
    cap.fillers(47.0, 160.0)
    r = run(tmp_path, cap, CallConfig(rtp_timeout=600.0))
    line = one_call(r)
    check(line, answer_ts=ts(1.0), end_ts=ts(136.0), duration_s=135.0, reason="timeout", ended_by="timeout",
          final_code=200)


def test_max_call_duration(tmp_path):
    cap = Capture()
    d = Dialog("long-1@192.0.2.10")
    setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), t_ring=0.5, t_answer=1.0, answer=sdp(*B_MEDIA))
    cap.fillers(2.0, 75.0)
    r = run(tmp_path, cap, CallConfig(rtp_timeout=600.0, max_duration=60.0))
    check(one_call(r), answer_ts=ts(1.0), end_ts=ts(61.0), duration_s=60.0, reason="timeout",
          ended_by="timeout")


@pytest.mark.parametrize("ringing, limit", [(False, 32.0), (True, 180.0)], ids=["timer_b", "timer_c"])
def test_unanswered_invite_timers(tmp_path, ringing, limit):
    cap = Capture()
    d = Dialog(f"timer-{limit}@192.0.2.10")
    setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), t_ring=1.0 if ringing else None)
    cap.filler(limit + 13.5)   # capture time moves on well after the timer
    cap.filler(limit + 20.0)
    r = run(tmp_path, cap)
    check(one_call(r), reason="timeout", ended_by="timeout", end_ts=ts(limit), final_code=None,
          answer_ts=None)


@pytest.mark.parametrize("code, reason", [
    (486, "busy"), (600, "busy"), (603, "busy"), (480, "no_answer"), (408, "no_answer"),
    (404, "failed"), (503, "failed"),
])
def test_final_failure_codes(tmp_path, code, reason):
    cap = Capture()
    d = Dialog(f"fail-{code}@192.0.2.10")
    inv = setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), t_trying=0.05, t_ring=1.0)
    send(cap, 7.5, BOB, ALICE, response(inv, code, to_tag="callee-tag"))
    send(cap, 7.51, ALICE, BOB, ack(d, 1, "callee-tag", invite=inv))
    r = run(tmp_path, cap)
    check(one_call(r), final_code=code, reason=reason, end_ts=ts(7.5), pdd_ms=1000.0, pdd_end="ringing",
          answer_ts=None, duration_s=None, bye_code=None)


def test_redirect_then_new_invite_is_two_attempts(tmp_path):
    cap = Capture()
    d = Dialog("redir-1@192.0.2.10")
    inv1 = d.invite(1, body=sdp(*A_MEDIA))
    send(cap, 0.0, ALICE, BOB, inv1)
    send(cap, 0.2, BOB, ALICE, response(inv1, 302, to_tag="r1",
                                        extra=[("Contact", "<sip:bob@198.51.100.30>")]))
    send(cap, 0.21, ALICE, BOB, ack(d, 1, "r1", invite=inv1))
    inv2 = d.invite(2, body=sdp(*A_MEDIA))
    send(cap, 0.3, ALICE, BOB, inv2)
    send(cap, 1.0, BOB, ALICE, response(inv2, 180, to_tag="b2"))
    send(cap, 2.0, BOB, ALICE, response(inv2, 200, to_tag="b2", body=sdp(*B_MEDIA)))
    send(cap, 2.01, ALICE, BOB, ack(d, 2, "b2"))
    d.to_tag = "b2"
    hangup(cap, d, 12.0, cseq=3)
    r = run(tmp_path, cap)
    assert len(r.calls) == 2
    first, second = sorted((cdr(r, c) for c in r.calls), key=lambda x: x["invite_ts"])
    check(first, call_id="redir-1@192.0.2.10", invite_ts=ts(0.0), final_code=302, reason="failed",
          end_ts=ts(0.2), answer_ts=None, pdd_ms=None)
    check(second, call_id="redir-1@192.0.2.10", invite_ts=ts(0.3), pdd_ms=700.0, pdd_end="ringing",
          final_code=200, answer_ts=ts(2.0), end_ts=ts(12.0), duration_s=10.0, reason="normal")


@pytest.mark.parametrize("who, code", [("caller", 200), ("callee", 200), ("callee", 481), ("caller", None)])
def test_bye_direction_and_bye_code(tmp_path, who, code):
    cap = Capture()
    d = Dialog(f"bye-{who}-{code}@192.0.2.10")
    setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), t_ring=0.25, t_answer=1.5, answer=sdp(*B_MEDIA))
    hangup(cap, d, 9.25, from_callee=(who == "callee"), code=code, cseq=1 if who == "callee" else 2)
    if code is None:
        cap.fillers(10.0, 50.0)   # no response to the BYE: it lingers, then ends
    r = run(tmp_path, cap)
    check(one_call(r), ended_by=who, bye_code=code, end_ts=ts(9.25), answer_ts=ts(1.5), duration_s=7.75,
          reason="normal", final_code=200, pdd_ms=250.0)


# --------------------------------------------------------------------------
# transports and encodings


def test_sip_over_tcp_reassembly(tmp_path):
    cap = Capture()
    a = ("192.0.2.10", 50123)
    d = Dialog("tcp-1@192.0.2.10", caller=a, transport="TCP")
    conn = TcpConn(cap, a, BOB)
    conn.handshake(0.0)
    inv = d.invite(1, body=sdp(*A_MEDIA))
    raw = bytes(inv)
    cut1, cut2 = len(raw) // 3, 2 * len(raw) // 3
    p1, p2, p3 = raw[:cut1], raw[cut1:cut2], raw[cut2:]
    assert b"\r\n\r\n" in p3 or b"\r\n\r\n" in p2   # the last part carries body bytes
    conn.send(0.010, True, p1)
    s2 = conn.send(0.011, True, p2)
    conn.send(0.012, True, p3)                         # the INVITE is complete here
    conn.send_at(0.013, True, s2, p2)                  # retransmitted segment
    two = bytes(response(inv, 100)) + bytes(response(inv, 180, to_tag="b1"))
    conn.send(0.500, False, two)                       # two messages, one segment
    ok = bytes(response(inv, 200, to_tag="b1", body=sdp(*B_MEDIA)))
    h1, h2 = ok[:300], ok[300:]
    s_h1 = conn.reserve(False, h1)
    s_h2 = conn.reserve(False, h2)
    conn.send_at(2.000, False, s_h2, h2)               # out of order: the second half first
    conn.send_at(2.001, False, s_h1, h1)               # the 200 is complete here
    conn.send(2.050, True, bytes(ack(d, 1, "b1")))
    d.to_tag = "b1"
    bye = d.request("BYE", 2, to_tag="b1")
    conn.send(9.0, True, bytes(bye))
    conn.send(9.05, False, bytes(response(bye, 200)))
    cap.rtp_flow(B_MEDIA, A_MEDIA, 0x7, 2.1, 50)
    r = run(tmp_path, cap)
    line = one_call(r)
    check(line, invite_ts=ts(0.012), pdd_ms=488.0, pdd_end="ringing", answer_ts=ts(2.001), end_ts=ts(9.0),
          duration_s=6.999, final_code=200, reason="normal", ended_by="caller", bye_code=200,
          retransmissions=0)
    assert r.sip["tcp_retransmitted"] == 1
    assert r.sip["tcp_out_of_order"] == 1
    assert r.sip["tcp_gaps_skipped"] == 0
    assert r.sip["parse_errors"] == 0
    assert r.sip["responses"] == 4 and r.sip["requests"] == 3
    assert [s["packets"] for s in line["streams"]] == [50]   # the SDP split over segments bound media


def test_sip_over_tcp_hole_is_skipped_after_5s(tmp_path):
    cap = Capture()
    a = ("192.0.2.10", 50124)
    conn = TcpConn(cap, a, BOB)
    conn.handshake(0.0)
    lost = bytes(Dialog("tcp-lost@192.0.2.10", caller=a, transport="TCP").invite(1, body=sdp(*A_MEDIA)))
    cut1, cut2 = len(lost) // 3, 2 * len(lost) // 3
    conn.send(0.01, True, lost[:cut1])
    conn.reserve(True, lost[cut1:cut2])                     # never captured
    conn.send(0.03, True, lost[cut2:])
    d = Dialog("tcp-after-gap@192.0.2.10", caller=a, transport="TCP")
    inv = d.invite(1, body=sdp(*A_MEDIA))
    conn.send(6.0, True, bytes(inv))                        # > 5 s after the hole opened
    conn.send(6.5, False, bytes(response(inv, 180, to_tag="g")))
    conn.send(7.0, False, bytes(response(inv, 603, to_tag="g")))
    r = run(tmp_path, cap)
    assert [c.call_id for c in r.calls] == ["tcp-after-gap@192.0.2.10"]
    check(cdr(r, r.calls[0]), invite_ts=ts(6.0), pdd_ms=500.0, final_code=603, reason="busy", end_ts=ts(7.0))
    assert r.sip["tcp_gaps_skipped"] == 1


def test_ipv4_fragmented_invite(tmp_path):
    cap = Capture()
    d = Dialog("frag-1@192.0.2.10")
    offer = sdp(*A_MEDIA, pad_attrs=40)      # c=/m= come after ~2.8 KB of attributes
    inv = d.invite(1, body=offer, extra=[("X-Padding", "z" * 1200)])
    raw = bytes(inv)
    assert len(raw) > 4000
    nfrag = cap.udp_fragments(0.0, ALICE, BOB, raw, fragsize=1400)
    assert nfrag >= 3
    send(cap, 0.3, BOB, ALICE, response(inv, 180, to_tag="b1"))
    send(cap, 1.0, BOB, ALICE, response(inv, 200, to_tag="b1", body=sdp(*B_MEDIA)))
    send(cap, 1.01, ALICE, BOB, ack(d, 1, "b1"))
    d.to_tag = "b1"
    cap.rtp_flow(B_MEDIA, A_MEDIA, 0xF, 1.1, 40)
    hangup(cap, d, 5.0)
    r = run(tmp_path, cap)
    line = one_call(r)
    # the INVITE counts when its last fragment arrived
    t_last = (nfrag - 1) * 0.0001
    check(line, **{"from": "sip:alice@192.0.2.10", "to": "sip:bob@198.51.100.20"}, invite_ts=ts(t_last),
          pdd_ms=(ts(0.3) - ts(t_last)) * 1000, answer_ts=ts(1.0), end_ts=ts(5.0), final_code=200)
    assert [(s["dst"], s["packets"]) for s in line["streams"]] == [("192.0.2.10:4000", 40)]


def test_ipv6_sip_and_media(tmp_path):
    cap = Capture()
    a, b = ("2001:db8::10", 5060), ("2001:db8::20", 5060)
    am, bm = ("2001:db8::10", 4000), ("2001:db8::20", 5000)
    d = Dialog("v6-1@[2001:db8::10]", caller=a, callee=b)
    setup_call(cap, d, t_invite=0.0, offer=sdp(*am), t_ring=0.6, t_answer=2.0, answer=sdp(*bm))
    cap.rtp_flow(am, bm, 0x61, 2.02, 100)
    cap.rtp_flow(bm, am, 0x62, 2.03, 100)
    hangup(cap, d, 8.0, from_callee=True, cseq=1)
    r = run(tmp_path, cap)
    line = one_call(r)
    check(line, **{"from": "sip:alice@[2001:db8::10]", "to": "sip:bob@[2001:db8::20]"}, pdd_ms=600.0,
          answer_ts=ts(2.0), end_ts=ts(8.0), duration_s=6.0, ended_by="callee", bye_code=200)
    assert sorted((s["src"], s["dst"], s["packets"]) for s in line["streams"]) == [
        ("[2001:db8::10]:4000", "[2001:db8::20]:5000", 100),
        ("[2001:db8::20]:5000", "[2001:db8::10]:4000", 100),
    ]


def _raw(lines, body=b"") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_compact_headers_folded_lines_multiple_vias(tmp_path):
    cap = Capture()
    offer = sdp(*A_MEDIA)
    answer = sdp(*B_MEDIA)
    cid = "compact-1@192.0.2.10"
    via_c = "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-c1"
    invite = _raw([
        "INVITE sip:bob@198.51.100.20 SIP/2.0",
        f"v: {via_c}",
        'f: "Alice Example"',
        "   <sip:alice@192.0.2.10>",            # folded From: tag on a continuation line
        "\t;tag=alice-folded",
        "t: <sip:bob@198.51.100.20>",
        f"i: {cid}",
        "CSEQ: 1 INVITE",
        "m: <sip:alice@192.0.2.10:5060>",
        "k: timer, 100rel",
        "s: a folded",
        "  subject",
        "c: application/sdp",
        f"l: {len(offer)}",
    ], offer)
    send(cap, 0.0, ALICE, BOB, invite)
    # responses: long names in other cases, two Vias in one header (a proxy's on top) and a second header
    resp_head = [
        f"VIA: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK-p1, {via_c}",
        "via: SIP/2.0/UDP 203.0.113.2:5060;branch=z9hG4bK-p0",
        'FROM: "Alice Example" <sip:alice@192.0.2.10>;tag=alice-folded',
        "To: <sip:bob@198.51.100.20>;tag=bob-1",
        f"call-id: {cid}",
        "cseq: 1 INVITE",
    ]
    send(cap, 0.7, BOB, ALICE, _raw(["SIP/2.0 180 Ringing"] + resp_head + ["content-length: 0"]))
    send(cap, 2.5, BOB, ALICE, _raw(["SIP/2.0 200 OK"] + resp_head + [
        "m: <sip:bob@198.51.100.20>", "C: application/sdp", f"L: {len(answer)}"], answer))
    send(cap, 2.51, ALICE, BOB, _raw([
        "ACK sip:bob@198.51.100.20 SIP/2.0", "v: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-c2",
        "f: <sip:alice@192.0.2.10>;tag=alice-folded", "t: <sip:bob@198.51.100.20>;tag=bob-1",
        f"i: {cid}", "CSeq: 1 ACK", "l: 0"]))
    cap.rtp_flow(B_MEDIA, A_MEDIA, 0xC0, 2.6, 50)
    cap.rtp_flow(A_MEDIA, B_MEDIA, 0xC1, 2.61, 50)
    send(cap, 12.0, ALICE, BOB, _raw([
        "BYE sip:bob@198.51.100.20 SIP/2.0", "v: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-c3",
        "f: <sip:alice@192.0.2.10>;tag=alice-folded", "t: <sip:bob@198.51.100.20>;tag=bob-1",
        f"i: {cid}", "CSeq: 2 BYE", "l: 0"]))
    send(cap, 12.04, BOB, ALICE, _raw([
        "SIP/2.0 200 OK", "v: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-c3",
        "f: <sip:alice@192.0.2.10>;tag=alice-folded", "t: <sip:bob@198.51.100.20>;tag=bob-1",
        f"i: {cid}", "CSeq: 2 BYE", "l: 0"]))
    r = run(tmp_path, cap)
    line = one_call(r)
    check(line, call_id=cid, **{"from": "sip:alice@192.0.2.10", "to": "sip:bob@198.51.100.20"},
          pdd_ms=700.0, pdd_end="ringing", answer_ts=ts(2.5), end_ts=ts(12.0), duration_s=9.5,
          ended_by="caller", bye_code=200, reason="normal", final_code=200)
    assert r.calls[0].from_tag == "alice-folded"
    assert sorted(s["packets"] for s in line["streams"]) == [50, 50]
    assert r.sip["parse_errors"] == 0


def test_sip_on_non_standard_port_found_by_content(tmp_path):
    cap = Capture()
    a, b = ("192.0.2.10", 5080), ("198.51.100.20", 15090)
    d = Dialog("port-1@192.0.2.10", caller=a, callee=b)
    setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), t_trying=0.01, t_ring=0.35, t_answer=1.0,
               answer=sdp(*B_MEDIA))
    cap.rtp_flow(A_MEDIA, B_MEDIA, 0x5080, 1.05, 100)
    hangup(cap, d, 4.0)
    r = run(tmp_path, cap)   # default SIP ports: 5060 only
    line = one_call(r)
    check(line, pdd_ms=350.0, answer_ts=ts(1.0), end_ts=ts(4.0), duration_s=3.0, reason="normal",
          ended_by="caller", bye_code=200)
    assert [s["packets"] for s in line["streams"]] == [100]


def test_sip_over_sctp(tmp_path):
    cap = Capture()
    d = Dialog("sctp-1@192.0.2.10", transport="SCTP")
    tsn = {True: 1, False: 1}

    def sc(t, from_a, msg):
        src, dst = (ALICE, BOB) if from_a else (BOB, ALICE)
        cap.sctp(t, src, dst, bytes(msg), tsn[from_a])
        tsn[from_a] += 1

    inv = d.invite(1, body=sdp(*A_MEDIA))
    sc(0.0, True, inv)
    sc(0.02, False, response(inv, 100))
    sc(0.45, False, response(inv, 180, to_tag="s1"))
    sc(1.5, False, response(inv, 200, to_tag="s1", body=sdp(*B_MEDIA)))
    sc(1.51, True, ack(d, 1, "s1"))
    cap.rtp_flow(B_MEDIA, A_MEDIA, 0x5C, 1.6, 30)
    bye = d.request("BYE", 1, from_callee=True, to_tag="s1")
    sc(6.5, False, bye)
    sc(6.52, True, response(bye, 200))
    r = run(tmp_path, cap)
    line = one_call(r)
    check(line, pdd_ms=450.0, answer_ts=ts(1.5), end_ts=ts(6.5), duration_s=5.0, ended_by="callee",
          bye_code=200, reason="normal")
    assert r.sip["sctp_messages"] == 7
    assert [s["packets"] for s in line["streams"]] == [30]


# --------------------------------------------------------------------------
# media binding


@pytest.mark.parametrize("first", ["caller", "callee"])
def test_nat_latching_binds_reverse_direction(tmp_path, first):
    """The caller's media comes from its NAT's address, not its SDP's: that
    address is latched, and the callee's media to it is the call's too; also
    when the callee's media began first (40 ms before the latch: it joins the
    call then, with every packet)."""
    cap = Capture()
    sig = ("203.0.113.5", 5060)
    d = Dialog("nat-1@10.0.0.1", caller=sig)
    nat = ("203.0.113.5", 31000)
    setup_call(cap, d, t_invite=0.0, offer=sdp("10.0.0.1", 4000), t_ring=0.3, t_answer=2.0,
               answer=sdp(*B_MEDIA))
    t_caller, t_callee = (2.02, 2.03) if first == "caller" else (2.05, 2.01)
    cap.rtp_flow(nat, B_MEDIA, 0xAAAA, t_caller, 100)     # from the NAT's address, not the SDP's
    cap.rtp_flow(B_MEDIA, nat, 0xBBBB, t_callee, 100)     # to the latched address, which no SDP names
    hangup(cap, d, 6.0)
    r = run(tmp_path, cap)
    line = one_call(r)
    got = sorted((s["src"], s["dst"], s["call_id"], s["packets"]) for s in line["streams"])
    assert got == [
        ("198.51.100.20:5000", "203.0.113.5:31000", "nat-1@10.0.0.1", 100),
        ("203.0.113.5:31000", "198.51.100.20:5000", "nat-1@10.0.0.1", 100),
    ]
    assert len(r.streams) == 2


def test_dynamic_payload_type_clock_from_rtpmap(tmp_path):
    cap = Capture()
    d = Dialog("opus-1@192.0.2.10")
    opus = ((111, "opus", 48000), (0, "PCMU", 8000))
    setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA, pts=opus), t_ring=0.2, t_answer=1.0,
               answer=sdp(*B_MEDIA, pts=opus))
    rng = random.Random(3550)
    n = 300
    # 20 ms packets (960 ticks at 48 kHz), each arriving up to 6 ms late (µs grid, still in order)
    arrivals = [round(1.1 + i * 0.02 + rng.randint(0, 6000) * 1e-6, 6) for i in range(n)]
    sent = cap.rtp_flow(B_MEDIA, A_MEDIA, 0x0905, 0, n, pt=111, ts_step=960, ts0=123456, arrivals=arrivals)
    cap.rtp_flow(A_MEDIA, B_MEDIA, 0x0906, 1.11, n, pt=111, ts_step=960)   # no jitter at all
    hangup(cap, d, 8.0)
    r = run(tmp_path, cap)
    line = one_call(r)
    streams = {s["ssrc"]: s for s in line["streams"]}
    assert set(streams) == {0x0905, 0x0906}
    jit = [s for s in r.streams if int(s["ssrc"]) == 0x0905][0]
    assert int(jit["clock_rate"]) == 48000 and int(jit["payload_type"]) == 111
    expected = a8_max_jitter_ms([(t, rts) for t, _, rts in sent], 48000)
    assert expected > 0.5
    # the engine keeps its maximum as a float32: agree to its precision
    assert float(jit["max_jitter_ms"]) == pytest.approx(expected, rel=1e-6)
    flat = streams[0x0906]
    assert flat["clock_rate"] == 48000 and flat["max_jitter_ms"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("parser", ["native", "python"])
def test_sdp_binds_the_same_whichever_parser_reads_it(tmp_path, parser):
    """A body the native scan leaves to the Python parser (here a non-ASCII
    session name) binds exactly as a plain one: both directions, and the
    dynamic payload type's clock from a=rtpmap reaches the engine."""
    from warpsniff._engine import scan_sdp
    from warpsniff.sip.sdp import MediaDescription, SessionDescription

    opus = ((111, "opus", 48000), (0, "PCMU", 8000))
    offer, answer = sdp(*A_MEDIA, pts=opus), sdp(*B_MEDIA, pts=opus)
    if parser == "python":
        offer = offer.replace(b"s=-", "s=Caf\u00e9".encode())
        answer = answer.replace(b"s=-", "s=\u00c5sa".encode())
    for body in (offer, answer):
        assert (scan_sdp(body, SessionDescription, MediaDescription) is False) == (parser == "python")
    cap = Capture()
    d = Dialog(f"parser-{parser}@192.0.2.10")
    setup_call(cap, d, t_invite=0.0, offer=offer, t_ring=0.2, t_answer=1.0, answer=answer)
    sent = cap.rtp_flow(B_MEDIA, A_MEDIA, 0x0905, 0, 100, pt=111, ts_step=960,
                        arrivals=[1.1 + i * 0.02 + (0.004 if i % 3 else 0.0) for i in range(100)])
    cap.rtp_flow(A_MEDIA, B_MEDIA, 0x0906, 1.11, 100, pt=111, ts_step=960)
    hangup(cap, d, 5.0)
    r = run(tmp_path, cap)
    line = one_call(r)
    assert {s["ssrc"] for s in line["streams"]} == {0x0905, 0x0906}
    assert r.calls[0].payload_names == {111: "opus", 0: "PCMU"}
    assert {(s["dst"], s["clock_rate"]) for s in line["streams"]} == {
        ("192.0.2.10:4000", 48000), ("198.51.100.20:5000", 48000)}
    jit = [s for s in r.streams if int(s["ssrc"]) == 0x0905][0]
    assert float(jit["max_jitter_ms"]) == pytest.approx(
        a8_max_jitter_ms([(t, rts) for t, _, rts in sent], 48000), rel=1e-6)


def test_transaction_keys_keep_their_fields_apart(tmp_path):
    """Retransmissions are recognised by (top Via branch, CSeq, method,
    From-tag): two requests whose method and From-tag only differ in where one
    ends and the other begins ("XPING" + "c", "XPIN" + "Gc") are two
    transactions; the same request again is a retransmission."""
    cap = Capture()
    d = Dialog("keys-1@192.0.2.10")
    setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), t_answer=1.0, answer=sdp(*B_MEDIA), to_tag="b1")
    for t, method, tag in ((2.0, "XPING", "c"), (2.1, "XPIN", "Gc"), (2.2, "XPIN", "Gc")):
        d.from_tag = tag
        send(cap, t, ALICE, BOB, d.request(method, 5, to_tag="b1", branch="z9hG4bK-same"))
    d.from_tag = "caller-tag"
    hangup(cap, d, 3.0)
    r = run(tmp_path, cap)
    assert r.sip["by_method"]["XPING"] == 1 and r.sip["by_method"]["XPIN"] == 2
    assert r.sip["retransmissions"] == 1
    check(one_call(r), retransmissions=1, final_code=200, reason="normal", end_ts=ts(3.0))


def test_port_reused_by_next_call_is_a_new_stream(tmp_path):
    cap = Capture()
    d1 = Dialog("reuse-1@192.0.2.10", from_tag="t1")
    setup_call(cap, d1, t_invite=0.0, offer=sdp(*A_MEDIA), t_answer=1.0, answer=sdp(*B_MEDIA), to_tag="b1")
    cap.rtp_flow(B_MEDIA, A_MEDIA, 0xCAFE, 1.02, 100, seq0=1000, ts0=0)        # .. 3.00
    hangup(cap, d1, 3.5)
    d2 = Dialog("reuse-2@192.0.2.10", from_tag="t2")
    setup_call(cap, d2, t_invite=4.0, offer=sdp(*A_MEDIA), t_answer=5.0, answer=sdp(*B_MEDIA), to_tag="b2")
    # the same 5-tuple and SSRC carry on (a relay reusing its port)
    cap.rtp_flow(B_MEDIA, A_MEDIA, 0xCAFE, 5.02, 50, seq0=1100, ts0=16000)
    hangup(cap, d2, 7.0)
    r = run(tmp_path, cap)
    assert len(r.calls) == 2
    c1, c2 = by_id(r, "reuse-1@192.0.2.10"), by_id(r, "reuse-2@192.0.2.10")
    s1, s2 = stream_rows(r, c1), stream_rows(r, c2)
    assert [(int(s["ssrc"]), int(s["packets"])) for s in s1] == [(0xCAFE, 100)]
    assert [(int(s["ssrc"]), int(s["packets"])) for s in s2] == [(0xCAFE, 50)]
    assert int(s2[0]["first_ns"]) / 1e9 == pytest.approx(ts(5.02), abs=1e-6)
    assert len(r.streams) == 2


def test_correlation_header_links_b2bua_legs(tmp_path):
    cap = Capture()
    b2bua = ("203.0.113.100", 5060)
    carol = ("198.51.100.77", 5060)
    leg1 = Dialog("leg1-abc@192.0.2.10", caller=ALICE, callee=b2bua, from_tag="l1")
    leg2 = Dialog("leg2-xyz@203.0.113.100", caller=b2bua, callee=carol, from_tag="l2", from_user="b2bua")
    other = Dialog("solo@192.0.2.11", caller=("192.0.2.11", 5060), callee=b2bua, from_tag="s")
    setup_call(cap, leg1, t_invite=0.0, extra=[("X-CID", "cid-42")], t_ring=0.5, t_answer=2.0)
    setup_call(cap, leg2, t_invite=0.01, extra=[("X-CID", "cid-42")], t_ring=0.49, t_answer=1.99)
    setup_call(cap, other, t_invite=0.3, t_ring=0.4, t_answer=1.0)
    hangup(cap, leg1, 5.0)
    hangup(cap, leg2, 5.01)
    hangup(cap, other, 5.5)
    r = run(tmp_path, cap, CallConfig(correlation_header="x-cid"))
    assert len(r.calls) == 3
    l1, l2, solo = (cdr(r, by_id(r, cid)) for cid in ("leg1-abc@192.0.2.10", "leg2-xyz@203.0.113.100",
                                                      "solo@192.0.2.11"))
    check(l1, correlation_id="cid-42", leg=1, pdd_ms=500.0)
    check(l2, correlation_id="cid-42", leg=2, pdd_ms=480.0)
    check(solo, correlation_id=None, leg=1)


def test_label_headers_reach_labels_through_the_tracker(tmp_path):
    """The headers label rules read (deploy/warpsniff.example.yml: X-Trunk,
    X-Account, P-Asserted-Identity) are found in an INVITE in any case, and
    in a non-ASCII header section as str.lower() finds them; an INVITE
    without them labels from addresses and numbers alone."""
    from warpsniff.labels import LabelConfig

    cfg = LabelConfig.load(str(REPO / "deploy" / "warpsniff.example.yml"))
    cap = Capture()
    outside, far = ("192.0.2.99", 5060), ("203.0.113.50", 5060)   # neither platform nor a trunk's network
    headers = {
        "acct": [("x-ACCOUNT", "67890")],
        "pai": [("P-ASSERTED-IDENTITY", '"A" <sip:+14155550100@EXAMPLE.COM;user=phone>')],
        # KELVIN SIGN: str.lower() makes this name "x-trunk"; the section is not ASCII
        "kelvin": [("X-TRUN\u212a", "cust_x")],
        "none": [("Subject", "x-account in a value, not a name")],
    }
    for i, (name, extra) in enumerate(headers.items()):
        d = Dialog(f"{name}@192.0.2.99", caller=outside, callee=far, from_tag=f"t{i}", from_user="alice")
        setup_call(cap, d, t_invite=i * 0.1, extra=extra, t_answer=i * 0.1 + 0.05)
        hangup(cap, d, 2.0 + i * 0.1)
    path = cap.write(tmp_path / "labels.pcap")
    r = replay([str(path)], EngineOptions(), CallConfig(), label_config=cfg)
    got = {c.call_id.split("@")[0]: (c.labels.trunk, c.labels.account) for c in r.calls}
    assert got == {"acct": ("unknown", "67890"), "pai": ("unknown", "555"), "kelvin": ("cust_x", "12345"),
                   "none": ("unknown", "unknown")}


def test_ip_text_prints_as_socket_inet_ntop():
    """The engine's address text (ip_text, used for labels' InviteInfo and
    reports) is what socket.inet_ntop prints, for IPv4 (v4-mapped) and IPv6,
    and refuses what it refuses."""
    import socket

    from warpsniff.sip.calls import ip_text

    rng = random.Random(9)
    v4_mapped = bytes(10) + b"\xff\xff"
    for _ in range(2000):
        v4 = bytes(rng.randrange(256) for _ in range(4))
        assert ip_text(v4_mapped + v4) == socket.inet_ntop(socket.AF_INET, v4)
        v6 = bytes(rng.choice([0, 0, rng.randrange(256)]) for _ in range(16))
        if v6[:12] != v4_mapped:
            assert ip_text(v6) == socket.inet_ntop(socket.AF_INET6, v6)
    with pytest.raises(ValueError):
        ip_text(b"\x01\x02\x03")


# --------------------------------------------------------------------------
# malformed input and floods


def _bad(start, headers, body=b"", length="auto"):
    return bytes(Msg(start, headers, body, content_length=length))


def test_malformed_sip_counts_parse_errors(tmp_path):
    cap = Capture()
    base = [("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-bad"), ("From", "<sip:a@x>;tag=1"),
            ("To", "<sip:b@y>")]
    cid = [("Call-ID", "bad@x")]
    inv = "INVITE sip:b@y SIP/2.0"
    bad = [
        _bad(inv, base + [("CSeq", "1 INVITE")]),                                   # no Call-ID
        _bad(inv, base + cid + [("CSeq", "abc INVITE")]),                          # bad CSeq
        _bad(inv, base + cid + [("CSeq", "7")]),                                   # CSeq without method
        _bad(inv, base + cid + [("CSeq", "1 INVITE")], length="4294967296"),       # overflows
        _bad(inv, base + cid + [("CSeq", "1 INVITE")], length="99999999"),         # absurd
        _bad(inv, base + cid + [("CSeq", "1 INVITE")], b"v=0\r\n", length="500"),  # lying
        _bad(inv, base + cid + [("CSeq", "1 INVITE")], length="-1"),
        _bad(inv, base + cid + [("CSeq", "1 INVITE"), ("Subject", "a\x01b")]),     # control byte
        _bad("HELLO there", base + cid + [("CSeq", "1 INVITE")]),                  # bad start line
        bytes(range(256)) * 3,                                                     # binary garbage
        bytes(random.Random(5060).randrange(256) for _ in range(900)),
    ]
    for i, payload in enumerate(bad):
        cap.udp(0.1 * i, ALICE, BOB, payload)
    cap.udp(1.5, ALICE, BOB, b"\r\n\r\n")           # a keep-alive: not an error
    d = Dialog("good-after-bad@192.0.2.10")
    setup_call(cap, d, t_invite=2.0, offer=sdp(*A_MEDIA), t_ring=2.1, t_answer=3.0, answer=sdp(*B_MEDIA))
    hangup(cap, d, 4.0)
    r = run(tmp_path, cap)
    assert r.sip["parse_errors"] == len(bad)
    assert r.sip["keepalives"] == 1
    check(one_call(r), call_id="good-after-bad@192.0.2.10", pdd_ms=100.0, answer_ts=ts(3.0), end_ts=ts(4.0))


def test_header_section_over_64k_is_a_parse_error(tmp_path):
    cap = Capture()
    a = ("192.0.2.10", 50200)
    conn = TcpConn(cap, a, BOB)
    conn.handshake(0.0)
    d = Dialog("huge@192.0.2.10", caller=a, transport="TCP")
    huge = bytes(d.invite(1, extra=[(f"X-Big-{i}", "y" * 990) for i in range(70)]))
    assert huge.index(b"\r\n\r\n") > 65536
    for off in range(0, len(huge), 8000):
        conn.send(0.01 + off / 8000 * 0.001, True, huge[off:off + 8000])
    good = Dialog("after-huge@192.0.2.10", caller=a, transport="TCP")
    inv = good.invite(1, body=sdp(*A_MEDIA))
    conn.send(1.0, True, bytes(inv))
    conn.send(1.5, False, bytes(response(inv, 486, to_tag="x")))
    r = run(tmp_path, cap)
    assert [c.call_id for c in r.calls] == ["after-huge@192.0.2.10"]
    check(cdr(r, r.calls[0]), final_code=486, reason="busy", end_ts=ts(1.5))
    assert r.sip["parse_errors"] == 1


def test_invite_flood_is_bounded_by_max_calls(tmp_path, monkeypatch):
    peak = {"calls": 0, "seen": 0, "legs": 0}

    class Watched(CallTracker):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            self.taps.append(self.watch)   # after each message

        def watch(self, *message):
            peak["calls"] = max(peak["calls"], len(self.calls))
            peak["seen"] = max(peak["seen"], len(self.seen_other) + sum(len(c.seen) for c in self.calls.values()))
            peak["legs"] = max(peak["legs"], len(self.legs))

    monkeypatch.setattr(pipeline_mod, "CallTracker", Watched)
    rng = random.Random(5000)
    cap = Capture()
    ids = []
    for i in range(5000):
        cid = f"{rng.getrandbits(64):016x}@flood"
        ids.append(cid)
        d = Dialog(cid, caller=("192.0.2.66", 5060), from_tag=f"{i:x}")
        send(cap, i * 0.001, d.caller, d.callee, d.invite(1))
    r = run(tmp_path, cap, CallConfig(max_calls=100))
    assert peak["calls"] <= 100
    assert peak["seen"] <= 100  # one INVITE key per open call, nothing kept for evicted ones
    assert r.sip["evicted"] == 4900
    assert len(r.calls) == 5000
    assert sorted(c.call_id for c in r.calls) == sorted(ids)
    evicted = [c for c in r.calls if c.evicted]
    assert len(evicted) == 4900
    assert {c.reason for c in evicted} == {"timeout"}
    assert {c.ended_by for c in evicted} == {"timeout"}
    # the least recently active go first: the 4900 oldest INVITEs
    assert {c.call_id for c in evicted} == set(ids[:4900])
    assert {c.reason for c in r.calls if not c.evicted} == {"interrupted"}


def test_eviction_takes_least_recently_active(tmp_path):
    cap = Capture()
    da, db, dc = (Dialog(f"lra-{x}@192.0.2.10", from_tag=x) for x in "abc")
    ia = da.invite(1)
    send(cap, 0.0, ALICE, BOB, ia)
    send(cap, 1.0, ALICE, BOB, db.invite(1))
    send(cap, 2.0, BOB, ALICE, response(ia, 180, to_tag="ra"))   # a is active again, b is now the idlest
    send(cap, 3.0, ALICE, BOB, dc.invite(1))
    r = run(tmp_path, cap, CallConfig(max_calls=2))
    assert [c.call_id for c in r.calls if c.evicted] == ["lra-b@192.0.2.10"]


# --------------------------------------------------------------------------
# the command line


CDR_KEYS = {"call_id", "from", "to", "invite_ts", "pdd_ms", "pdd_end", "final_code", "reason", "answer_ts",
            "end_ts", "duration_s", "ended_by", "streams"}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "warpsniff", "replay", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_cli_cdr_and_streams_json(tmp_path):
    cap = Capture()
    d = Dialog("cli-1@192.0.2.10")
    setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), t_trying=0.02, t_ring=0.75, t_answer=2.25,
               answer=sdp(*B_MEDIA))
    cap.rtp_flow(A_MEDIA, B_MEDIA, 0x101, 2.3, 100)
    cap.rtp_flow(B_MEDIA, A_MEDIA, 0x102, 2.31, 100)
    hangup(cap, d, 7.5, from_callee=True, cseq=1)
    busy = Dialog("cli-2@192.0.2.10", from_tag="busy-tag")
    inv = setup_call(cap, busy, t_invite=3.0, t_ring=3.5)
    send(cap, 4.0, BOB, ALICE, response(inv, 486, to_tag="callee-tag"))
    send(cap, 4.01, ALICE, BOB, ack(busy, 1, "callee-tag", invite=inv))
    stray = (("192.0.2.99", 20000), ("192.0.2.98", 20002))      # no SDP announced this
    cap.rtp_flow(*stray, 0x999, 5.0, 20)
    pcap = cap.write(tmp_path / "cli.pcap")
    out, sj = tmp_path / "cdr.jsonl", tmp_path / "streams.json"
    proc = _cli(str(pcap), "--cdr", str(out), "--streams-json", str(sj), "-q")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert CDR_KEYS <= set(line), CDR_KEYS - set(line)
    rows = {x["call_id"]: x for x in lines}
    check(rows["cli-1@192.0.2.10"], **{"from": "sip:alice@192.0.2.10", "to": "sip:bob@198.51.100.20"},
          invite_ts=ts(0.0), pdd_ms=750.0, pdd_end="ringing", final_code=200, reason="normal",
          answer_ts=ts(2.25), end_ts=ts(7.5), duration_s=5.25, ended_by="callee")
    check(rows["cli-2@192.0.2.10"], invite_ts=ts(3.0), pdd_ms=500.0, pdd_end="ringing", final_code=486,
          reason="busy", answer_ts=None, end_ts=ts(4.0), duration_s=None, streams=[])
    assert sorted((s["ssrc"], s["call_id"], s["packets"]) for s in rows["cli-1@192.0.2.10"]["streams"]) == [
        (0x101, "cli-1@192.0.2.10", 100), (0x102, "cli-1@192.0.2.10", 100)]
    streams = json.loads(sj.read_text())
    assert sorted((s["ssrc"], s["call_id"]) for s in streams) == [
        (0x101, "cli-1@192.0.2.10"), (0x102, "cli-1@192.0.2.10"), (0x999, None)]
    assert all("call_id" in s for s in streams)


def test_cli_nat_alias_and_call_id_pattern(tmp_path):
    """--nat-alias binds media announced on a private address where it
    arrives; --call-id-pattern links legs whose Call-IDs share group 1;
    malformed values exit 2 with one line saying what."""
    cap = Capture()
    b2bua = ("203.0.113.100", 5060)
    leg1 = Dialog("c0ffee-leg1@192.0.2.10", caller=ALICE, callee=b2bua, from_tag="l1")
    leg2 = Dialog("c0ffee-leg2@203.0.113.100", caller=b2bua, callee=BOB, from_tag="l2")
    private, public = ("10.0.0.5", 4000), ("203.0.113.5", 4000)
    setup_call(cap, leg1, t_invite=0.0, offer=sdp(*A_MEDIA), t_ring=0.5, t_answer=2.0, answer=sdp(*private))
    setup_call(cap, leg2, t_invite=0.01, t_ring=0.49, t_answer=1.99)
    cap.rtp_flow(A_MEDIA, public, 0x51, 2.02, 50)
    hangup(cap, leg1, 5.0)
    hangup(cap, leg2, 5.01)
    pcap = cap.write(tmp_path / "nat.pcap")
    out = tmp_path / "cdr.jsonl"
    proc = _cli(str(pcap), "--cdr", str(out), "-q", "--nat-alias", "10.0.0.5=203.0.113.5",
                "--call-id-pattern", r"^([0-9a-f]+)-leg")
    assert proc.returncode == 0, proc.stderr
    rows = {x["call_id"]: x for x in map(json.loads, out.read_text().splitlines())}
    check(rows["c0ffee-leg1@192.0.2.10"], correlation_id="c0ffee", leg=1)
    check(rows["c0ffee-leg2@203.0.113.100"], correlation_id="c0ffee", leg=2)
    assert [(s["ssrc"], s["dst"], s["packets"]) for s in rows["c0ffee-leg1@192.0.2.10"]["streams"]] == [
        (0x51, "203.0.113.5:4000", 50)]
    for bad, says in ((["--nat-alias", "10.0.0.5"], "SDP_ADDR=WIRE_ADDR"),
                      (["--nat-alias", "10.0.0.5=host.example"], "not an IP address"),
                      (["--call-id-pattern", "([0-9"], "not a regular expression"),
                      (["--call-id-pattern", "leg"], "no group"),
                      (["--streams-only", "--nat-alias", "10.0.0.5=203.0.113.5"], "--nat-alias")):
        proc = _cli(str(pcap), "-q", *bad)
        assert proc.returncode == 2 and says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, (
            bad, proc.returncode, proc.stderr)


def test_cli_rtp_timeout_flag(tmp_path):
    cap = Capture()
    d = Dialog("cli-nobye@192.0.2.10")
    setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), t_ring=0.5, t_answer=1.0, answer=sdp(*B_MEDIA))
    sent = cap.rtp_flow(A_MEDIA, B_MEDIA, 0x55, 1.02, 250)     # last at 5.999... -> 6.0
    cap.fillers(7.0, 30.0)
    pcap = cap.write(tmp_path / "nobye.pcap")
    out = tmp_path / "cdr.jsonl"
    proc = _cli(str(pcap), "--cdr", str(out), "--rtp-timeout", "15", "-q")
    assert proc.returncode == 0, proc.stderr
    [line] = [json.loads(x) for x in out.read_text().splitlines()]
    last = sent[-1][0]
    check(line, reason="timeout", ended_by="timeout", end_ts=ts(last), answer_ts=ts(1.0),
          duration_s=ts(last) - ts(1.0))


def test_media_of_streams_that_went_idle_before_the_bye_still_counts(tmp_path):
    """RTP stops at 11 s, its streams leave the table (idle timeout 3 s) at about
    14 s, the BYE comes at 20 s: the call's metrics (per-call media, MOS and
    jitter histograms) still come from those streams, as its CDR's do."""

    cap = Capture()
    d = Dialog("idle-before-bye-1@192.0.2.10")
    setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), t_ring=0.4, t_answer=1.0, answer=sdp(*B_MEDIA))
    cap.rtp_flow(A_MEDIA, B_MEDIA, 0x1, 1.02, 500)
    cap.rtp_flow(B_MEDIA, A_MEDIA, 0x2, 1.03, 500)
    cap.fillers(11.5, 19.5)
    hangup(cap, d, 20.0)
    cap.fillers(20.5, 25.0)   # the call is joined with its media at a tick, not at the end of input
    path = cap.write(tmp_path / "c.pcap")
    p = Pipeline(EngineOptions(idle_timeout=3.0))
    r = replay([str(path)], pipeline=p)
    call = one = r.calls[0]
    assert cdr(r, one)["reason"] == "normal"
    assert p.engine.counters()["streams_expired"] == 2   # they did leave the table before the BYE
    media = p.aggregator.media[call.call_ref]
    assert sorted(row[1] for row in media.streams.values()) == [500, 500]   # expected, per direction
    assert media.mos is not None
    assert sum(sum(h.counts) for h in p.aggregator.mos.values()) == 1
    assert sum(sum(h.counts) for h in p.aggregator.jitter.values()) == 2


def test_media_seen_before_the_sdp_that_announces_it_joins_the_call(tmp_path):
    """The tap sees the caller's first RTP to the answer's address 30 ms before
    the 200 OK carrying that answer (SIP and media mirrored from different
    ports, or SIP through a slower path): the stream is the call's from the
    moment the answer binds it (no media is lost to an unbound stream). A
    stream to the same address that began before the INVITE is someone
    else's and stays unbound."""
    cap = Capture()
    stray_src = ("203.0.113.99", 7000)
    cap.rtp_flow(stray_src, B_MEDIA, 0x77, -1.0, 150, pt=8)   # from before the INVITE until 2.0
    d = Dialog("media-first-1@192.0.2.10")
    setup_call(cap, d, t_invite=0.0, offer=sdp(*A_MEDIA), t_ring=0.4, t_answer=1.0, answer=sdp(*B_MEDIA))
    cap.rtp_flow(A_MEDIA, B_MEDIA, 0x1, 0.97, 500)      # 30 ms before the answer is seen
    cap.rtp_flow(B_MEDIA, A_MEDIA, 0x2, 1.05, 500)
    hangup(cap, d, 11.5)
    path = cap.write(tmp_path / "c.pcap")
    p = Pipeline(EngineOptions())
    r = replay([str(path)], pipeline=p)
    call = r.calls[0]
    mine = {int(s["ssrc"]): int(s["packets"]) for s in stream_rows(r, call)}
    assert mine == {0x1: 500, 0x2: 500}
    stray = r.streams[r.streams["ssrc"] == 0x77]
    assert len(stray) == 1 and int(stray["call_ref"][0]) == 0
    assert len(r.streams) == 3
    # and the operator can see it happen: one stream adopted, one bound at its start
    family = next(f for f in SnifferCollector(p).collect() if f.name == "warpsniff_streams_bound")
    assert {s.labels["how"]: s.value for s in family.samples} == {"at_start": 1, "adopted": 1}


def test_a_flood_into_one_open_call_is_bounded():
    """Requests with ever new branches, provisional responses with ever new
    To-tags and 2xx from ever new Via branches, all into one open call, do
    not grow it without bound: transaction keys live in two generations,
    forks are capped; a retransmission of a recent request is still known."""
    from test_timers import CALLEE, CALLER, Headers, NoEngine
    from warpsniff.sip.calls import KEYS_PER_GENERATION, MAX_FORKS

    tracker = CallTracker(NoEngine())
    cid = "flood-1@192.0.2.10"

    def request(method, branch, cseq, to_tag=None):
        tracker.message(Headers(call_id=cid, is_request=True, method=method, cseq=cseq, cseq_method=method,
                                via_branch=branch, from_tag="a", to_tag=to_tag), b"", 1.0, CALLER, CALLEE)

    def response(code, branch, to_tag):
        tracker.message(Headers(call_id=cid, is_request=False, code=code, cseq=1, cseq_method="INVITE",
                                via_branch=branch, from_tag="a", to_tag=to_tag), b"", 1.0, CALLEE, CALLER)

    request("INVITE", "z9hG4bK-invite", 1)
    for i in range(3000):
        response(180, "z9hG4bK-invite", f"fork-{i}")
    response(200, "z9hG4bK-invite", "fork-0")
    for i in range(3000):
        response(200, f"z9hG4bK-leg-{i}", f"leg-{i}")           # the answer as other legs saw it
    for i in range(50_000):
        request("INFO", f"z9hG4bK-info-{i}", 10 + i, to_tag="fork-0")
    call = tracker.calls[cid]
    assert len(call.seen) <= KEYS_PER_GENERATION
    assert len(call.early_dialogs) == MAX_FORKS and len(call.answer_tags) == MAX_FORKS
    assert tracker.stats.retransmissions == 0
    request("INFO", "z9hG4bK-info-49999", 10 + 49999, to_tag="fork-0")   # the last one again
    assert tracker.stats.retransmissions == 1 and call.retransmissions == 1
    # 56,002 keys: the current generation holds the last 706, the previous one the 2,048 before
    request("INFO", "z9hG4bK-info-48999", 10 + 48999, to_tag="fork-0")   # in the previous generation
    assert tracker.stats.retransmissions == 2
    request("INFO", "z9hG4bK-info-46999", 10 + 46999, to_tag="fork-0")   # forgotten: taken as new
    assert tracker.stats.retransmissions == 2
    assert call.final_code == 200 and call.pdd_end == "ringing"


def test_sctp_first_fragments_on_ever_new_streams_are_bounded():
    """RFC 9260 DATA chunks: a flood of first fragments (B flag, no E) on ever
    new streams keeps at most MAX_PARTIAL messages under way, the oldest
    given up and counted; a message split over three chunks still joins."""
    import struct as st

    from warpsniff.sip.correlator import SctpReassembler

    def data_chunk(stream: int, payload: bytes, begin: bool, end: bool) -> bytes:
        flags = (0x02 if begin else 0) | (0x01 if end else 0)
        body = st.pack("!IHHI", 1, stream, 0, 0) + payload
        chunk = st.pack("!BBH", 0, flags, 4 + len(body)) + body
        return chunk + bytes(-len(chunk) % 4)

    sctp = SctpReassembler()
    association = ("192.0.2.10", 5060, "198.51.100.20", 5060)
    flood = 5000
    for i in range(flood):
        assert list(sctp.messages(association, data_chunk(i, b"INVITE sip:x", True, False))) == []
    assert len(sctp.partial) == SctpReassembler.MAX_PARTIAL
    assert sctp.dropped == flood - SctpReassembler.MAX_PARTIAL
    parts = [b"INVITE sip:bob@198.51.100.20 SIP/2.0\r\n", b"Call-ID: split@x\r\n", b"\r\n"]
    got = []
    for k, part in enumerate(parts):
        got += sctp.messages(association, data_chunk(65535, part, k == 0, k == len(parts) - 1))
    assert got == [b"".join(parts)]
    # its first fragment pushed the oldest flood fragment out; its last one completed it
    assert len(sctp.partial) == SctpReassembler.MAX_PARTIAL - 1
    assert sctp.dropped == flood - SctpReassembler.MAX_PARTIAL + 1


def test_tcp_connections_stopping_inside_large_messages_are_bounded_together():
    """Each TCP direction holds at most 256 KiB, and all of them together at
    most `max_held`: many connections each stopping inside a large message
    push the least recently active out (counted), and a later connection's
    messages are still framed."""
    from warpsniff.sip.tcp import SYN, TcpReassembler

    tcp = TcpReassembler(max_held=1 << 20)
    head = (b"INVITE sip:bob@198.51.100.20 SIP/2.0\r\nCall-ID: big-%d@x\r\nCSeq: 1 INVITE\r\n"
            b"Content-Length: 200000\r\n\r\n")
    for i in range(64):
        key = ("192.0.2.10", 40000 + i, "198.51.100.20", 5060)
        assert list(tcp.segment(key, 1000, SYN, b"", 0.0)) == []
        assert list(tcp.segment(key, 1001, 0, head % i + b"x" * 40_000, 0.1)) == []   # waits for the rest
    held = sum(d.holding() for d in tcp.streams.values())
    assert held == tcp.held <= 1 << 20
    assert tcp.stats.streams_evicted >= 64 - (1 << 20) // 40_000
    key = ("192.0.2.11", 41000, "198.51.100.20", 5060)
    list(tcp.segment(key, 5000, SYN, b"", 1.0))
    msg = b"OPTIONS sip:x SIP/2.0\r\nCall-ID: small@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    assert list(tcp.segment(key, 5001, 0, msg, 1.1)) == [(msg, False)]


def test_tags_compare_as_the_text_they_decode_to():
    """The tracker keeps a call's tags as the bytes on the wire, yet compares
    them as text, as it always read them (invalid UTF-8 decoded with
    replacement): two From-tags whose bytes differ only where decoding replaced
    them are one party; two such To-tags are one early dialog; a BYE's tag
    matches the answered leg's the same way. Expected values follow from
    bytes.decode("utf-8", "replace"), worked here, not from the tracker."""
    from warpsniff._engine import parse_sip
    from test_timers import CALLEE, CALLER, NoEngine

    assert b"a\xff".decode("utf-8", "replace") == b"a\xfe".decode("utf-8", "replace") == "a\ufffd"

    def msg(start: bytes, cseq: bytes, from_tag: bytes, to_tag: bytes = b"", branch: bytes = b"z9hG4bK1") -> bytes:
        to = b"To: <sip:bob@example.com>" + (b";tag=" + to_tag if to_tag else b"")
        return (start + b"\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=" + branch +
                b"\r\nFrom: <sip:alice@example.com>;tag=" + from_tag + b"\r\n" + to +
                b"\r\nCall-ID: tags@test\r\nCSeq: " + cseq + b"\r\nContent-Length: 0\r\n\r\n")

    done = []
    tracker = CallTracker(NoEngine(), CallConfig(), on_call=done.append)

    def feed(ts, raw, src, dst):
        tracker.message(parse_sip(raw), raw, ts, src, dst)

    feed(1.0, msg(b"INVITE sip:bob@example.com SIP/2.0", b"1 INVITE", b"a\xff"), CALLER, CALLEE)
    feed(1.1, msg(b"SIP/2.0 180 Ringing", b"1 INVITE", b"a\xff", b"t\xff"), CALLEE, CALLER)
    feed(1.2, msg(b"SIP/2.0 180 Ringing", b"1 INVITE", b"a\xff", b"t\xfe", b"z9hG4bK1x"), CALLEE, CALLER)
    feed(1.3, msg(b"SIP/2.0 200 OK", b"1 INVITE", b"a\xff", b"t\xff"), CALLEE, CALLER)
    call = tracker.calls["tags@test"]
    assert call.early_dialogs == {"t\ufffd"}          # one early dialog: the same text
    assert call.answer_tags == {"z9hG4bK1": "t\ufffd"}
    assert call.from_tag == "a\ufffd"
    # the caller hangs up with a From-tag whose bytes differ from the INVITE's, and a
    # To-tag whose bytes differ from the answer's: the same texts, so the caller ends the call
    feed(5.0, msg(b"BYE sip:bob@example.com SIP/2.0", b"2 BYE", b"a\xfe", b"t\xfe", b"z9hG4bK2"), CALLER, CALLEE)
    feed(5.1, msg(b"SIP/2.0 200 OK", b"2 BYE", b"a\xfe", b"t\xfe", b"z9hG4bK2"), CALLEE, CALLER)
    assert [c.call_id for c in done] == ["tags@test"]
    assert done[0].ended_by == "caller" and done[0].end_ts == 5.0 and done[0].bye_code == 200


def test_payload_names_past_the_interned_encoding_names(monkeypatch):
    """Encoding names are interned once per process, up to a bound; a flood of
    junk names past it must still name each call's payload types (kept per
    call), and a later SDP renames a type whichever way either name is kept.
    Expected: the a=rtpmap lines this test writes."""
    import warpsniff._engine as engine_mod
    from warpsniff._engine import parse_sip
    from test_timers import CALLEE, CALLER, NoEngine

    def invite(cseq: int, rtpmaps: list, to_tag: bytes = b"") -> bytes:
        fmts = b" ".join(str(pt).encode() for pt, _ in rtpmaps)
        body = (b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
                b"m=audio 4000 RTP/AVP " + fmts + b"\r\n" +
                b"".join(b"a=rtpmap:%d %s\r\n" % (pt, name) for pt, name in rtpmaps))
        to = b"To: <sip:bob@example.com>" + (b";tag=" + to_tag if to_tag else b"")
        return (b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK%d\r\n" % cseq +
                b"From: <sip:alice@example.com>;tag=a1\r\n" + to + b"\r\nCall-ID: names@test\r\n" +
                b"CSeq: %d INVITE\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n" % (cseq, len(body)) +
                body)

    tracker = CallTracker(NoEngine(), CallConfig())

    def feed(ts, raw):
        tracker.message(parse_sip(raw), raw, ts, CALLER, CALLEE)

    feed(1.0, invite(1, [(0, b"PCMU/8000"), (101, b"telephone-event/8000")]))   # interned (or already were)
    monkeypatch.setattr(engine_mod, "MAX_ENCODING_NAMES", 0)   # the table is full from here on
    feed(2.0, invite(2, [(0, b"PCMU/8000"), (96, b"X-JUNK-A/8000")], to_tag=b"b1"))
    call = tracker.calls["names@test"]
    assert call.payload_names == {0: "PCMU", 101: "telephone-event", 96: "X-JUNK-A"}
    feed(3.0, invite(3, [(101, b"X-JUNK-B/8000"), (96, b"PCMU/8000")], to_tag=b"b1"))
    assert call.payload_names == {0: "PCMU", 101: "X-JUNK-B", 96: "PCMU"}


def test_calls_are_kept_least_recently_active_first_and_the_oldest_evicted():
    """docs/calls.md: beyond --max-calls the least recently active call is
    ended. Any message for a call makes it the most recently active; the
    order here is the one the messages below give, worked by hand."""
    from warpsniff._engine import parse_sip
    from test_timers import CALLEE, CALLER, NoEngine

    def msg(start: bytes, cid: bytes, cseq: bytes, to_tag: bytes = b"") -> bytes:
        to = b"To: <sip:bob@example.com>" + (b";tag=" + to_tag if to_tag else b"")
        return (start + b"\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-" + cid + cseq.split()[0] +
                b"\r\nFrom: <sip:alice@example.com>;tag=a\r\n" + to + b"\r\nCall-ID: " + cid +
                b"\r\nCSeq: " + cseq + b"\r\nContent-Length: 0\r\n\r\n")

    ended = []
    tracker = CallTracker(NoEngine(), CallConfig(max_calls=3), on_call=ended.append)

    def feed(ts, raw, src=CALLER, dst=CALLEE):
        tracker.message(parse_sip(raw), raw, ts, src, dst)

    for i, cid in enumerate((b"A", b"B", b"C")):
        feed(1.0 + i, msg(b"INVITE sip:bob@example.com SIP/2.0", cid, b"1 INVITE"))
    assert list(tracker.calls) == ["A", "B", "C"]
    feed(4.0, msg(b"SIP/2.0 100 Trying", b"A", b"1 INVITE"), CALLEE, CALLER)    # A: most recent
    assert list(tracker.calls) == ["B", "C", "A"]
    feed(5.0, msg(b"SIP/2.0 180 Ringing", b"C", b"1 INVITE", b"c1"), CALLEE, CALLER)   # then C
    assert list(tracker.calls) == ["B", "A", "C"]
    feed(6.0, msg(b"INVITE sip:bob@example.com SIP/2.0", b"D", b"1 INVITE"))   # a fourth: B goes
    assert list(tracker.calls) == ["A", "C", "D"]
    assert [(c.call_id, c.evicted, c.reason) for c in ended] == [("B", True, "timeout")]
    feed(7.0, msg(b"SIP/2.0 180 Ringing", b"A", b"1 INVITE", b"a1"), CALLEE, CALLER)
    feed(8.0, msg(b"INVITE sip:bob@example.com SIP/2.0", b"E", b"1 INVITE"))   # then C goes
    assert list(tracker.calls) == ["D", "A", "E"]
    assert [c.call_id for c in ended] == ["B", "C"]
    assert tracker.calls.get("C") is None and "E" in tracker.calls and len(tracker.calls) == 3


def test_long_call_ids_that_differ_only_at_the_end_are_two_calls():
    """The call table compares a Call-ID's first bytes in the Call and the rest
    in its own copy: Call-IDs equal for their first 60 bytes and different in
    the last one are two calls, each answered by its own 200."""
    from warpsniff._engine import parse_sip
    from test_timers import CALLEE, CALLER, NoEngine

    def msg(start: bytes, cid: bytes, to_tag: bytes = b"") -> bytes:
        to = b"To: <sip:bob@example.com>" + (b";tag=" + to_tag if to_tag else b"")
        return (start + b"\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-" + cid[-1:] +
                b"\r\nFrom: <sip:alice@example.com>;tag=a\r\n" + to + b"\r\nCall-ID: " + cid +
                b"\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")

    tracker = CallTracker(NoEngine(), CallConfig())
    base = b"0123456789" * 6
    one, two = base + b"x", base + b"y"

    def feed(ts, raw, src, dst):
        tracker.message(parse_sip(raw), raw, ts, src, dst)

    feed(1.0, msg(b"INVITE sip:bob@example.com SIP/2.0", one), CALLER, CALLEE)
    feed(2.0, msg(b"INVITE sip:bob@example.com SIP/2.0", two), CALLER, CALLEE)
    feed(3.0, msg(b"SIP/2.0 200 OK", two, b"t2"), CALLEE, CALLER)
    assert len(tracker.calls) == 2
    assert tracker.calls[one.decode()].answer_ts is None
    assert tracker.calls[two.decode()].answer_ts == 3.0
