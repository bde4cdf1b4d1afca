"""SIP calls on third-party captures, against tshark.

For every public capture that carries SIP (../shared/pcaps/public/), the truth
comes from tshark: each SIP message it dissects (Call-ID, method or status,
CSeq, tags, top Via branch, timestamps) goes through `expected_attempts`
below, an implementation written here of the rules in docs/calls.md. Nothing
in that model reads warpsniff's code or output; warpsniff is then replayed on
the same file and must agree call by call: attempts, final codes, reasons,
PDD (both sides use the capture timestamps, so within 0.01 ms), answers and,
for calls ended by a BYE, duration and who hung up.

Where warpsniff and tshark see different messages, the test names the reason
and checks it is exactly that (SIP in SCTP DATA chunks that did not arrive in
order, header bytes that the docs make a parse error),
and where the rules themselves part from what tshark shows, a test says why.

Where docs/calls.md leaves room, the model reads it so:
- an initial INVITE in a Call-ID whose attempt is still open and unanswered is
  the same attempt (a retransmission on another branch, a proxy's next leg);
- the 180 s a challenge waits for its retry count from the first INVITE (as
  Timer C does); every challenge in these captures is retried within 51 s;
- a leg's answer is the first 2xx on its top Via branch whose CSeq is the
  attempt's INVITE's (after any challenge);
- a BYE's remote tag is the To-tag of a BYE from the caller (its From-tag is
  the attempt's From-tag), the From-tag of any other; a still-open call's BYE
  whose remote tag is no answer tag but whose other tag is one (the caller side
  of another leg hanging up) is a case the docs leave open, and the model
  refuses it rather than guess (no capture has one);
- "RTP of the call" is tshark's RTP to or from an address its SDP announced:
  once any was seen, 60 s without RTP or SIP times an answered call out at
  max(last RTP, answer); before any, 3600 s of SIP silence does, at the answer.
"""
from __future__ import annotations

import functools
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

from oracle import (
    SHARED_PCAPS,
    require_shared_pcaps,
    require_tshark,
    tshark_fields,
    tshark_frame_times,
    tshark_rtp_packets,
    tshark_rtp_setup_call_ids,
    tshark_sip_messages,
)
from warpsniff.sip.calls import ip_text
from tracker_tap import replay_tapped
from warpsniff.replay import replay

NS = 1_000_000_000
SIP_PORTS = (5060,)

# Every public capture that carries SIP, with the decode-as rules tshark needs.
CAPTURES: dict[str, tuple] = {
    "heplify__FAX-Call-t38-CA-TDM-SIP-FB-1.pcap": (),
    "heplify__erspan_sip_ipv4_udp.pcapng": (),
    "heplify__ipip0_rawip.pcap": (),
    "heplify__rtp_rtcp_sip_ipv4_udp.pcap": (),
    "heplify__sip_ipv4_tcp.pcap": (),
    "heplify__sip_ipv4_tcp_fragmented.pcap": ("tcp.port==6060,sip",),
    "heplify__sip_ipv4_tcp_retrans.pcap": (),
    "heplify__sip_ipv6_udp.pcap": (),
    "heplify__sip_sctp.pcap": (),
    "heplify__sip_tcp_websocket.pcap": (),
    "ndpi__gre_sip.pcapng": (),
    "ndpi__sip_hello.pcapng": (),
    "rtp-pcap__SIP_DTMF2.pcap": (),
    "rtp-pcap__h263-over-rtp.pcap": (),
    "rtp-pcap__nb6-startup.pcap": (),
    "rtp-pcap__nb6-telephone.pcap": (),
    "rtp-pcap__sip-rtp-g722.pcap": (),
    "rtp-pcap__sip-rtp-g726.pcap": (),
    "rtp-pcap__sip-rtp-g729a.pcap": (),
    "rtp-pcap__sip-rtp-gsm.pcap": (),
    "rtp-pcap__sip-rtp-ilbc.pcap": (),
    "rtp-pcap__sip-rtp-l16.pcap": (),
    "rtp-pcap__sip-rtp-lpc.pcap": (),
    "rtp-pcap__sip-rtp-opus.pcap": (),
    "rtp-pcap__sip-rtp-speex.pcap": (),
    "sngrep__aaa.pcap": (),
    "sngrep__ipip.pcap": (),
    "sngrep__ipv6frag.pcap": (),
    "suricata-verify__public-cloudshark-sip-s0.pcap": (),
    "suricata-verify__sip-body-large.pcap": (),
    "suricata-verify__sip-options-method.pcap": (),
    "suricata-verify__sip-sdp.pcap": (),
    "suricata-verify__sip-tcp.pcap": (),
    "suricata-verify__sip_compact_form.pcap": (),
    "suricata-verify__sip_header_multi_val.pcap": (),
}


# --------------------------------------------------------------------------
# tshark's view, cached per file (and fetched in parallel the first time)


@dataclass
class Truth:
    messages: list                 # TsharkSipMessage, capture order
    other_sip_port_udp: list       # (frame, ts_ns, payload): UDP on 5060 that tshark does not take as SIP
    frame_times: list              # ts_ns of every frame, capture order


_TRUTH: dict[str, Truth] = {}


def _load_truth(name: str) -> Truth:
    path = SHARED_PCAPS / name
    sip = tshark_sip_messages(path, CAPTURES.get(name, ()), SIP_PORTS)
    return Truth(sip.messages, sip.other_sip_port_udp, tshark_frame_times(path))


def truth(name: str) -> Truth:
    if name not in _TRUTH:
        _TRUTH[name] = _load_truth(name)
    return _TRUTH[name]


@pytest.fixture(scope="module", autouse=True)
def _prefetch():
    """Runs tshark over every capture at once (tshark start-up dominates)."""
    if not SHARED_PCAPS.is_dir():
        return                      # the tests skip
    require_tshark()                # the tests fail
    todo = [n for n in CAPTURES if n not in _TRUTH and (SHARED_PCAPS / n).exists()]
    with ThreadPoolExecutor(max_workers=max(2, min(8, (os.cpu_count() or 2) * 2))) as pool:
        for name, t in zip(todo, pool.map(_load_truth, todo)):
            _TRUTH[name] = t


@pytest.fixture
def shared() -> Path:
    path = require_shared_pcaps()   # no third-party captures: skip
    require_tshark()                # captures but no tshark: fail
    return path


# --------------------------------------------------------------------------
# warpsniff's view: the calls, plus every message its tracker was handed


@dataclass(frozen=True)
class Seen:
    ts: float
    status: str
    call_id: Optional[str]
    kind: object                   # method (requests) or status code (responses)
    cseq: Optional[int]


@dataclass
class Run:
    result: object
    messages: list                 # Seen, in the order the tracker got them


@functools.lru_cache(maxsize=None)
def warpsniff(name: str) -> Run:
    seen: list[Seen] = []

    def tap(h, ts, src, dst):
        ok = h.status_name == "ok"
        seen.append(Seen(ts, h.status_name, h.call_id if ok else None,
                         (h.method if h.is_request else h.code) if ok else None, h.cseq if ok else None))

    return Run(replay_tapped(SHARED_PCAPS / name, tap), seen)


# --------------------------------------------------------------------------
# The rules of docs/calls.md, written again from the text


PDD_END = {180: "ringing", 181: "ringing", 182: "ringing", 183: "progress"}
REASONS = {486: "busy", 600: "busy", 603: "busy", 480: "no_answer", 408: "no_answer", 487: "cancelled"}
TIMER_B_NS = 32 * NS               # no response at all
TIMER_C_NS = 180 * NS              # provisional, never a final
RTP_TIMEOUT_NS = 60 * NS            # answered, RTP of the call seen: no RTP and no SIP this long
SIP_ONLY_TIMEOUT_NS = 3600 * NS     # answered, no RTP of the call ever seen: no SIP this long


def reason_for(code: int) -> str:
    if 200 <= code < 300:
        return "normal"
    return REASONS.get(code, "failed")


@dataclass
class Attempt:
    call_id: str
    from_tag: Optional[str]
    invite_ns: int
    cseq: int
    last_sip_ns: int
    responded: bool = False        # any response (100 included) to the INVITE
    pdd_ns: Optional[int] = None
    pdd_end: Optional[str] = None
    final_code: Optional[int] = None
    challenged: bool = False
    challenge_ns: Optional[int] = None
    cancelled: bool = False
    answer_ns: Optional[int] = None
    answer_to_tag: Optional[str] = None
    answer_tags: dict = field(default_factory=dict)   # leg (top Via branch) -> To-tag of its first 2xx
    end_ns: Optional[int] = None
    bye_ns: Optional[int] = None
    ended_by: Optional[str] = None
    reason: Optional[str] = None
    early_dialogs: set = field(default_factory=set)
    session_expires_ns: Optional[int] = None
    refreshed_ns: Optional[int] = None
    media_unknown: bool = False    # answered, no BYE, SIP silent > 60 s: RTP decides the timer
    media: set = field(default_factory=set)   # (address, port) its SDP bodies announced
    ignored_byes: list = field(default_factory=list)  # BYEs of a dialog no leg answered with
    ended: bool = False

    @property
    def answered(self) -> bool:
        return self.answer_ns is not None

    @property
    def pdd_ms(self) -> Optional[float]:
        return None if self.pdd_ns is None else (self.pdd_ns - self.invite_ns) / 1e6

    @property
    def duration_s(self) -> Optional[float]:
        if self.answer_ns is None or self.bye_ns is None:
            return None
        return (self.bye_ns - self.answer_ns) / NS


def _session_expires_ns(value: Optional[str]) -> Optional[int]:
    if not value:
        return None
    head = value.split(";")[0].strip()
    return int(head) * NS if head.isdigit() else None


def retransmission_key(m) -> tuple:
    if m.is_request:
        return ("req", m.call_id, m.branch, m.cseq, m.method, m.from_tag)
    return ("resp", m.call_id, m.branch, m.cseq, m.cseq_method, m.code, m.to_tag)


@dataclass
class Model:
    attempts: list                 # Attempt, in the order they started
    retransmissions: int


def expected_attempts(messages: list, frame_times: list, rtp: Optional[list] = None,
                      sip_only_timeout_ns: int = SIP_ONLY_TIMEOUT_NS) -> Model:
    """docs/calls.md applied to tshark's messages, in capture order.

    Timers run on capture time: before a message is handled, every timer that
    expired at a frame seen before it fires. `rtp` (tshark's RTP packets) is
    only needed when an answered call goes 60 s without SIP (whether RTP of the
    call was seen picks the 60 s or the 3600 s timer); without it such calls
    are flagged `media_unknown`. `sip_only_timeout_ns` is docs/calls.md's
    3600 s unless a test asks what another value would give."""
    seen: set = set()
    retransmissions = 0
    open_: dict[str, Attempt] = {}
    attempts: list[Attempt] = []
    latest_before = []             # capture time reached before frame n (1-based)
    latest = 0
    for t in frame_times:
        latest_before.append(latest)
        latest = max(latest, t)
    capture_end = latest

    def end(a: Attempt) -> None:
        a.ended = True
        if open_.get(a.call_id) is a:
            del open_[a.call_id]

    def run_timers(now: int) -> None:
        for a in list(open_.values()):
            if a.end_ns is not None:
                continue           # its end is known (BYE or failure)
            if not a.answered:
                if a.challenged:
                    # a challenge waits as long as Timer C for the retry, then ends
                    # the attempt as failed, at the challenge
                    if now - a.invite_ns > TIMER_C_NS:
                        a.reason, a.end_ns = "failed", a.challenge_ns
                        end(a)
                    continue
                limit = TIMER_C_NS if a.responded else TIMER_B_NS   # any 1xx: Timer C
                if now - a.invite_ns > limit:
                    a.reason, a.ended_by = "timeout", "timeout"
                    a.end_ns = a.invite_ns + limit   # "the timer's end"
                    end(a)
                continue
            since = a.refreshed_ns or a.answer_ns
            sip_silence = now - max(a.answer_ns, a.last_sip_ns)
            if a.session_expires_ns and now - since > a.session_expires_ns:
                a.reason, a.ended_by = "timeout", "timeout"
                a.end_ns = since + a.session_expires_ns
                end(a)
            elif sip_silence > RTP_TIMEOUT_NS:
                if rtp is None:
                    a.media_unknown = True   # which timer runs depends on the call's RTP: ask for it
                    continue
                last_rtp = max((p.arrival_ns for p in rtp if p.arrival_ns <= now and (
                    (p.dst, p.dport) in a.media or (p.src, p.sport) in a.media)), default=None)
                if last_rtp is None:
                    # no RTP of the call seen yet (a SIP-only tap): an hour of SIP silence
                    if sip_silence > sip_only_timeout_ns:
                        a.reason, a.ended_by = "timeout", "timeout"
                        a.end_ns = a.answer_ns
                        end(a)
                elif now - max(a.answer_ns, a.last_sip_ns, last_rtp) > RTP_TIMEOUT_NS:
                    a.reason, a.ended_by = "timeout", "timeout"
                    a.end_ns = max(last_rtp, a.answer_ns)
                    end(a)

    for m in messages:
        run_timers(latest_before[m.frame - 1])
        key = retransmission_key(m)
        if key in seen:
            retransmissions += 1
            continue
        seen.add(key)
        a = open_.get(m.call_id)
        if a is not None:
            a.last_sip_ns = m.ts_ns
            a.media |= m.sdp_media
        if m.is_request:
            if m.method == "INVITE" and m.to_tag is None:
                if a is not None and a.end_ns is None and not a.answered:
                    if a.challenged and m.cseq > a.cseq:
                        a.challenged, a.final_code, a.cseq = False, None, m.cseq
                        continue   # retried with credentials: the same attempt
                    if not a.challenged and a.final_code is None:
                        continue   # the same INVITE again on another branch
                if a is not None:
                    raise AssertionError(f"new initial INVITE in open call {m.call_id} (frame {m.frame})")
                a = Attempt(m.call_id, m.from_tag, m.ts_ns, m.cseq, m.ts_ns)
                a.media |= m.sdp_media
                a.session_expires_ns = _session_expires_ns(m.session_expires)
                open_[m.call_id] = a
                attempts.append(a)
            elif a is None:
                continue
            elif m.method in ("INVITE", "UPDATE"):      # re-INVITE / UPDATE refresh the session
                a.refreshed_ns = m.ts_ns
                a.session_expires_ns = _session_expires_ns(m.session_expires) or a.session_expires_ns
            elif m.method == "CANCEL" and not a.answered:
                a.cancelled = True
            elif m.method == "BYE" and a.end_ns is None:
                if not a.answered:  # docs/calls.md does not say what that is
                    raise AssertionError(f"BYE before any 2xx in {m.call_id} (frame {m.frame})")
                by_caller = m.from_tag == a.from_tag
                remote_tag = m.to_tag if by_caller else m.from_tag
                answered_with = set(a.answer_tags.values())
                if remote_tag not in answered_with:
                    other_tag = m.from_tag if by_caller else m.to_tag
                    if other_tag in answered_with:   # docs/calls.md does not say what that is
                        raise AssertionError(f"BYE from the caller side of another leg in {m.call_id} "
                                             f"(frame {m.frame})")
                    a.ignored_byes.append(m)   # ends a losing fork's dialog, not the call
                    continue
                a.end_ns = a.bye_ns = m.ts_ns
                a.ended_by = "caller" if by_caller else "callee"
                a.reason = "normal"
            continue
        # responses
        if a is None:
            continue
        if m.cseq_method == "BYE":
            if m.code >= 200 and a.bye_ns is not None:
                end(a)
            continue
        if m.cseq_method == "INVITE" and m.cseq == a.cseq and not a.answered and a.end_ns is None:
            a.responded = True
            code = m.code
            if code < 200:
                # "every To-tag seen on a provisional response other than 100 Trying is
                # an early dialog"
                if m.to_tag and code != 100:
                    a.early_dialogs.add(m.to_tag)
                if code in PDD_END and a.pdd_ns is None:
                    a.pdd_ns, a.pdd_end = m.ts_ns, PDD_END[code]
            elif code < 300:
                a.answer_ns, a.answer_to_tag, a.final_code = m.ts_ns, m.to_tag, code
                a.answer_tags[m.branch] = m.to_tag
                a.refreshed_ns = m.ts_ns
                if a.pdd_ns is None:
                    a.pdd_ns, a.pdd_end = m.ts_ns, "answer"
                a.session_expires_ns = _session_expires_ns(m.session_expires) or a.session_expires_ns
            elif code in (401, 407):
                a.challenged, a.final_code, a.challenge_ns = True, code, m.ts_ns
            else:
                a.final_code, a.end_ns, a.reason = code, m.ts_ns, reason_for(code)
                if a.cancelled or code == 487:
                    a.ended_by = "caller"
                end(a)
        elif m.cseq_method == "INVITE" and 200 <= m.code < 300 and a.answered:
            if m.cseq == a.cseq and m.branch not in a.answer_tags:
                # the answer as another leg of the Call-ID saw it (a B2BUA keeping the
                # Call-ID, a proxy seen on both sides); a later 2xx on a branch that
                # already has one is another fork of that leg, and is ignored
                a.answer_tags[m.branch] = m.to_tag
            a.session_expires_ns = _session_expires_ns(m.session_expires) or a.session_expires_ns

    run_timers(capture_end)
    for a in attempts:
        if a.reason is None:
            a.reason = "failed" if a.challenged else "interrupted"
    return Model(attempts, retransmissions)


# --------------------------------------------------------------------------
# Comparing


def describe(a: Attempt) -> dict:
    d = {
        "call_id": a.call_id,
        "invite_ts": a.invite_ns / NS,
        "final_code": a.final_code,
        "reason": a.reason,
        "pdd_end": a.pdd_end,
        "answered": a.answered,
        "answer_ts": None if a.answer_ns is None else a.answer_ns / NS,
        "ended_by": a.ended_by,
        "early_dialogs": sorted(a.early_dialogs),
    }
    if a.end_ns is not None:
        d["end_ts"] = a.end_ns / NS      # BYE, failure response or the timer's end
    if a.bye_ns is not None:
        d["duration_s"] = a.duration_s
    assert not a.media_unknown, "model_for() hands the model tshark's RTP when it needs it"
    return d


def describe_call(c, like: dict) -> dict:
    d = {
        "call_id": c.call_id,
        "invite_ts": c.invite_ts,
        "final_code": c.final_code,
        "reason": c.reason,
        "pdd_end": c.pdd_end,
        "answered": c.answer_ts is not None,
        "answer_ts": c.answer_ts,
        "ended_by": c.ended_by,
        "early_dialogs": sorted(c.early_dialogs),
    }
    if "end_ts" in like:
        d["end_ts"] = c.end_ts
    if "duration_s" in like:
        d["duration_s"] = c.duration_s
    return d


def same(expected: dict, got: dict) -> bool:
    for k, v in expected.items():
        g = got.get(k)
        if isinstance(v, float) and isinstance(g, float):
            if abs(v - g) > 1e-5:  # 0.01 ms
                return False
        elif v != g:
            return False
    return True


def by_start(calls) -> list:
    return sorted(calls, key=lambda c: (c.invite_ts, c.call_id))


def ts_key(ts_ns_or_s) -> int:
    """Microseconds: warpsniff hands the tracker float seconds."""
    if isinstance(ts_ns_or_s, int):
        return round(ts_ns_or_s / 1000)
    return round(ts_ns_or_s * 1e6)


def message_key(m) -> tuple:
    return (ts_key(m.ts_ns), m.call_id, m.cseq, m.method or m.code)


def seen_key(s: Seen) -> tuple:
    return (ts_key(s.ts), s.call_id, s.cseq, s.kind)


def header_has_control_bytes(m) -> bool:
    head = m.header_text.split("\r\n\r\n", 1)[0]
    return any(ord(ch) < 0x20 and ch not in "\r\n\t" for ch in head)


# --------------------------------------------------------------------------
# Messages warpsniff is documented not to see, each with tshark's evidence


def websocket_carried(m) -> bool:
    """SIP over WebSocket (RFC 7118), as tshark dissects it."""
    return ":websocket:" in m.protocols


@dataclass(frozen=True)
class SctpData:
    """One SCTP DATA chunk as tshark dissected it."""
    frame: int
    association: tuple             # (src, sport, dst, dport)
    stream: int
    tsn: int
    begin: bool
    end: bool


def sctp_data_chunks(name: str) -> list:
    """Every SCTP DATA chunk in the capture, in arrival order."""
    path = SHARED_PCAPS / name
    rows = tshark_fields(path, "sctp.data_tsn", ["frame.number", "ip.src", "ipv6.src", "ip.dst", "ipv6.dst",
                                                 "sctp.srcport", "sctp.dstport", "sctp.data_sid",
                                                 "sctp.data_tsn", "sctp.data_b_bit", "sctp.data_e_bit"],
                         ("-E", "occurrence=a", "-E", "aggregator=,"))
    out = []
    for frame, src4, src6, dst4, dst6, sport, dport, sids, tsns, bs, es in rows:
        association = (src4 or src6, int(sport), dst4 or dst6, int(dport))
        for sid, tsn, b, e in zip(sids.split(","), tsns.split(","), bs.split(","), es.split(",")):
            out.append(SctpData(int(frame), association, int(sid, 0), int(tsn), b in ("1", "True"),
                                e in ("1", "True")))
    return out


@functools.lru_cache(maxsize=None)
def sctp_joins(name: str) -> dict:
    """docs/calls.md: 'a message split over several chunks (B ... E flags) is
    joined per association and stream (in arrival order)'. Frame of each E
    chunk that completes a join -> the TSNs joined, in arrival order. tshark
    reassembles by TSN, so the two agree when those TSNs run consecutively."""
    if not any(":sctp:" in m.protocols for m in truth(name).messages):
        return {}
    partial: dict = {}
    joins: dict = {}
    for c in sctp_data_chunks(name):
        key = (c.association, c.stream)
        if c.begin and c.end:
            continue               # a whole message
        if c.begin:
            partial[key] = [c.tsn]
        elif key in partial:
            partial[key].append(c.tsn)
            if c.end:
                joins[c.frame] = tuple(partial.pop(key))
    return joins


@functools.lru_cache(maxsize=None)
def fragmented_sctp_frames(name: str) -> frozenset:
    """Frames whose SIP tshark rebuilt from SCTP DATA chunks without both the
    B and E bits (a message split over several chunks)."""
    if not any(":sctp:" in m.protocols for m in truth(name).messages):
        return frozenset()
    path = SHARED_PCAPS / name
    rows = tshark_fields(path, "sctp && sip", ["frame.number", "sctp.data_b_bit", "sctp.data_e_bit"],
                         ("-E", "occurrence=a", "-E", "aggregator=,"))
    out = set()
    for frame, b_bits, e_bits in rows:
        chunks = list(zip(b_bits.split(","), e_bits.split(",")))
        if any(b not in ("1", "True") or e not in ("1", "True") for b, e in chunks):
            out.add(int(frame))
    return frozenset(out)


def unjoinable_sctp_frames(name: str) -> frozenset:
    """Fragmented-SCTP frames whose message the arrival-order join does not
    rebuild as tshark did (fragments out of TSN order, or no B chunk seen)."""
    joins = sctp_joins(name)
    out = set()
    for frame in fragmented_sctp_frames(name):
        tsns = joins.get(frame)
        if tsns is None or list(tsns) != list(range(tsns[0], tsns[0] + len(tsns))):
            out.add(frame)
    return frozenset(out)


def invisible(name: str, m) -> Optional[str]:
    """Why warpsniff cannot see this tshark message, or None."""
    if m.frame in unjoinable_sctp_frames(name):
        return "unjoinable-sctp"
    if header_has_control_bytes(m):
        return "control-bytes"   # a parse error by docs/calls.md
    return None


@functools.lru_cache(maxsize=None)
def visible_messages(name: str) -> list:
    return [m for m in truth(name).messages if invisible(name, m) is None]


def crlf_keepalives(name: str) -> list:
    return [o for o in truth(name).other_sip_port_udp if o[2].strip(b"\r\n") == b""]


def junk_on_sip_port(name: str) -> list:
    return [o for o in truth(name).other_sip_port_udp if o[2].strip(b"\r\n") != b""]


# --------------------------------------------------------------------------
# Comparing call by call


@functools.lru_cache(maxsize=None)
def rtp_packets(name: str) -> list:
    return tshark_rtp_packets(SHARED_PCAPS / name, CAPTURES.get(name, ()))


def model_for(name: str, messages: list) -> Model:
    """The rules over `messages`, with tshark's RTP packets only if a call needs them."""
    t = truth(name)
    model = expected_attempts(messages, t.frame_times)
    if any(a.media_unknown for a in model.attempts):
        model = expected_attempts(messages, t.frame_times, rtp_packets(name))
    return model


def compare_calls(name: str, messages: list) -> None:
    """Every attempt the rules give from `messages` is warpsniff's, field by field."""
    model = model_for(name, messages)
    calls = warpsniff(name).result.calls
    attempts = model.attempts
    assert len(calls) == len(attempts), (
        [describe(a) for a in attempts], [describe_call(c, {}) for c in by_start(calls)])
    exp_by_id: dict[str, list] = {}
    got_by_id: dict[str, list] = {}
    for a in attempts:
        exp_by_id.setdefault(a.call_id, []).append(a)
    for c in by_start(calls):
        got_by_id.setdefault(c.call_id, []).append(c)
    assert sorted(exp_by_id) == sorted(got_by_id)
    for cid, exp in exp_by_id.items():
        got = got_by_id[cid]
        assert len(exp) == len(got), (cid, [describe(a) for a in exp], [describe_call(c, {}) for c in got])
        for a, c in zip(exp, got):
            want = describe(a)
            have = describe_call(c, want)
            assert same(want, have), (cid, want, have)
            if a.pdd_ms is None:
                assert c.pdd_ms is None, (cid, c.pdd_ms)
            else:
                assert c.pdd_ms == pytest.approx(a.pdd_ms, abs=0.01), (cid, a.pdd_ms, c.pdd_ms)
    answered = sum(a.answered for a in attempts)
    assert sum(c.answer_ts is not None for c in calls) == answered


# --------------------------------------------------------------------------
# Which captures carry SIP: SOURCES.md's tshark facts, checked


def sources_sip_counts() -> dict[str, int]:
    text = (SHARED_PCAPS / "SOURCES.md").read_text()
    out = {}
    for line in text.splitlines():
        m = re.match(r"\| `([^`]+\.pcap(?:ng)?)` \|.*\bSIP msgs (\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def test_the_sip_captures_are_every_capture_sources_md_says_carries_sip(shared):
    counts = sources_sip_counts()
    files = sorted(p.name for p in shared.iterdir() if p.suffix in (".pcap", ".pcapng"))
    assert sorted(counts) == files, "every capture must have its row in SOURCES.md"
    assert sorted(n for n, c in counts.items() if c) == sorted(CAPTURES)
    for name in CAPTURES:
        assert len(truth(name).messages) == counts[name], name
    # the others: no SIP for tshark (SOURCES.md), none for warpsniff either
    for name in files:
        if name in CAPTURES:
            continue
        r = replay([str(shared / name)])
        assert r.calls == [], name
        assert r.sip["messages"] == 0 and r.sip["parse_errors"] == 0, (name, r.sip)


# --------------------------------------------------------------------------
# Per capture: the messages, the parse errors, the calls

PARAMS = sorted(CAPTURES)


@pytest.mark.parametrize("name", PARAMS)
def test_warpsniff_sees_the_sip_messages_tshark_sees(shared, name):
    """Same messages (time, Call-ID, CSeq, method/status), less only those
    `invisible` explains; retransmission and keep-alive counts agree."""
    run = warpsniff(name)
    visible = visible_messages(name)
    want = Counter(message_key(m) for m in visible)
    got = Counter(seen_key(s) for s in run.messages if s.status == "ok")
    assert got == want, (sorted((want - got).elements())[:10], sorted((got - want).elements())[:10])
    sip = run.result.sip
    assert sip["requests"] == sum(m.is_request for m in visible)
    assert sip["responses"] == sum(not m.is_request for m in visible)
    assert sip["keepalives"] == len(crlf_keepalives(name))
    assert sip["retransmissions"] == model_for(name, visible).retransmissions
    assert not any(m.malformed for m in truth(name).messages), "tshark flags no SIP frame as malformed"


@pytest.mark.parametrize("name", PARAMS)
def test_parse_errors_only_where_tshark_shows_the_damage(shared, name):
    """parse_errors is 0 unless tshark shows why: a datagram on the SIP port that
    tshark dissects as plain `data` (not SIP, not a CRLF keep-alive), or a SIP
    message whose header tshark decodes with C0 control bytes in it (docs: control
    bytes in the header are a parse error)."""
    run = warpsniff(name)
    junk = junk_on_sip_port(name)
    damaged = [m for m in truth(name).messages if header_has_control_bytes(m) and invisible(name, m) == "control-bytes"]
    for _frame, _ts, payload in junk:
        first_line = payload.split(b"\r\n", 1)[0]
        assert not re.match(rb"^(SIP/2\.0 \d{3} |[A-Z]+ \S+ SIP/2\.0$)", first_line), payload[:80]
    assert run.result.sip["parse_errors"] == len(junk) + len(damaged), (name, run.result.sip)
    # and they are those very messages
    want = Counter([ts_key(ts) for _f, ts, _p in junk] + [ts_key(m.ts_ns) for m in damaged])
    got = Counter(ts_key(s.ts) for s in run.messages if s.status not in ("ok", "keepalive"))
    assert got == want


EXPECTED_PARSE_ERRORS = {
    # 21 datagrams of five spaces to 5060
    "sngrep__aaa.pcap": 21,
    # 22 "hello" datagrams to 5060
    "ndpi__sip_hello.pcapng": 22,
    # 3 NOTIFY + 3 481 whose To-tag holds 0x18 0x01, 0x0c 0x01, 0x0e 0x01
    "heplify__erspan_sip_ipv4_udp.pcapng": 6,
}


def test_parse_errors_are_zero_on_every_other_capture(shared):
    for name in CAPTURES:
        assert warpsniff(name).result.sip["parse_errors"] == EXPECTED_PARSE_ERRORS.get(name, 0), name
    # and what tshark shows accounts for each of the three
    assert len(junk_on_sip_port("sngrep__aaa.pcap")) == 21
    assert {p for _f, _t, p in junk_on_sip_port("sngrep__aaa.pcap")} == {b"     "}
    assert {p for _f, _t, p in junk_on_sip_port("ndpi__sip_hello.pcapng")} == {b"hello"}
    damaged = [m for m in truth("heplify__erspan_sip_ipv4_udp.pcapng").messages if header_has_control_bytes(m)]
    assert [(m.method or m.code) for m in damaged] == ["NOTIFY", 481] * 3


@pytest.mark.parametrize("name", PARAMS)
def test_calls_follow_the_rules(shared, name):
    """Attempts, final codes, reasons, PDD (0.01 ms) and its end, answers, and for
    BYE-ended calls the duration and who hung up, all from tshark's messages."""
    compare_calls(name, visible_messages(name))


# --------------------------------------------------------------------------
# The facts SOURCES.md states (tshark's Call-ID scan), on warpsniff's calls

# pdd: [(ms, tolerance_ms)] as SOURCES.md rounds them; finals: Counter of final codes
FACTS: dict[str, dict] = {
    "heplify__FAX-Call-t38-CA-TDM-SIP-FB-1.pcap": dict(finals={200: 2}, pdd=[(162, .6), (169, .6)], byes=2),
    # SOURCES.md: "3 INVITE dialogs (2x200, 1x407) with BYE": the 407 dialog retried with CSeq 2
    # and was answered, one attempt by docs/calls.md (test_erspan_challenge_then_answer_is_one_attempt);
    # two of the three BYEs are on the dialog of the B2BUA's other leg, which the legs rule counts
    # (test_bye_on_another_legs_answered_dialog_ends_the_call)
    "heplify__erspan_sip_ipv4_udp.pcapng": dict(finals={200: 3}, byes=3),
    "heplify__rtp_rtcp_sip_ipv4_udp.pcap": dict(finals={200: 1, None: 1}, pdd=[(48, .6), (27, .6)], byes=0),
    "heplify__sip_ipv4_tcp.pcap": dict(finals={200: 1}, pdd=[(59, .6)], byes=1),
    # SOURCES.md also counts a 486 and a second 487: they answer INVITEs sent before the capture
    # started (see test_tcp_fragmented_486_answers_an_invite_before_the_capture)
    "heplify__sip_ipv4_tcp_fragmented.pcap": dict(finals={200: 32, 487: 1, 403: 1, None: 3}),
    # SOURCES.md states the trunk call's PDD; the WebRTC call's (to the 180, its INVITE and 407 over the
    # WebSocket) is tshark's, in test_websocket_leg_is_decoded_as_tshark_decodes_it
    "heplify__sip_tcp_websocket.pcap": dict(finals={200: 2}, byes=2, some_pdd=[(1120, 10)]),
    # SOURCES.md: "INVITE answered 403": the 403 carries another Call-ID (test_ipip0_403_is_another_call_id)
    "heplify__ipip0_rawip.pcap": dict(finals={None: 1}),
    "sngrep__ipip.pcap": dict(finals={200: 1}, byes=1),
    # its BYE is on the proxy's other leg's answered dialog (test_bye_on_another_legs_answered_dialog_ends_the_call)
    "sngrep__ipv6frag.pcap": dict(finals={200: 1}, pdd=[(322, .6)], byes=1),
    "ndpi__gre_sip.pcapng": dict(finals={487: 3, 200: 2}, byes=2, pdd_range=(400 - 50, 1500 + 50)),
    "rtp-pcap__SIP_DTMF2.pcap": dict(finals={603: 1, 200: 1}, pdd=[(1100, 50)], byes=0),
    "rtp-pcap__h263-over-rtp.pcap": dict(finals={200: 1}, byes=0),
    "rtp-pcap__nb6-telephone.pcap": dict(finals={200: 1}, pdd=[(349, .6)], byes=1),
    "rtp-pcap__sip-rtp-g722.pcap": dict(finals={200: 1}, byes=1),
    "rtp-pcap__sip-rtp-g726.pcap": dict(finals={200: 8}, byes=8),
    "rtp-pcap__sip-rtp-g729a.pcap": dict(finals={200: 1}, byes=1),
    "rtp-pcap__sip-rtp-gsm.pcap": dict(finals={200: 1}, byes=1),
    "rtp-pcap__sip-rtp-ilbc.pcap": dict(finals={200: 1}, byes=1),
    "rtp-pcap__sip-rtp-l16.pcap": dict(finals={200: 4}, byes=4),
    "rtp-pcap__sip-rtp-lpc.pcap": dict(finals={200: 1}, byes=1),
    "rtp-pcap__sip-rtp-opus.pcap": dict(finals={200: 1}, byes=1),
    "rtp-pcap__sip-rtp-speex.pcap": dict(finals={200: 3}, byes=3),
    "suricata-verify__public-cloudshark-sip-s0.pcap": dict(finals={200: 1, None: 1}, byes=0),
    "suricata-verify__sip-sdp.pcap": dict(finals={200: 1}),
    "suricata-verify__sip_compact_form.pcap": dict(finals={None: 1}),
    "suricata-verify__sip_header_multi_val.pcap": dict(finals={None: 1}),
    "suricata-verify__sip-body-large.pcap": dict(finals={None: 1}),
    # SOURCES.md: "INVITE->100->403 Forbidden->ACK", the INVITE split over two DATA chunks
    # (test_sctp_invite_split_over_two_data_chunks_is_joined)
    "heplify__sip_sctp.pcap": dict(finals={403: 1}, byes=0),
    # REGISTER / OPTIONS only
    "heplify__sip_ipv4_tcp_retrans.pcap": dict(finals={}),
    "ndpi__sip_hello.pcapng": dict(finals={}),
    "rtp-pcap__nb6-startup.pcap": dict(finals={}),
    "suricata-verify__sip-tcp.pcap": dict(finals={}),
    "suricata-verify__sip-options-method.pcap": dict(finals={}),
    # sngrep__aaa.pcap: its own test below
}


@pytest.mark.parametrize("name", PARAMS)
def test_streams_belong_to_the_call_whose_sdp_tshark_sets_them_up_from(shared, name):
    """Every RTP stream tshark ties to a SIP call's SDP (`rtp.setup-frame`) is
    that call's in warpsniff too: its Call-ID is one of the Call-IDs whose SDP
    tshark set the stream up from (several where B2BUA legs name the same
    address); and no stream is a call's in warpsniff that tshark does not tie
    to that call. The one exception tshark's view allows is media that starts
    after its call failed: tshark keeps the SDP's conversation, warpsniff ends
    the call's bindings with the final response (docs/calls.md), so such a
    stream belongs to no call; the test checks the failure came first."""
    want = tshark_rtp_setup_call_ids(SHARED_PCAPS / name, CAPTURES[name])
    result = warpsniff(name).result
    call_ids = {c.call_ref: c.call_id for c in result.calls}
    got = {(ip_text(bytes(s["src"])), int(s["sport"]), ip_text(bytes(s["dst"])), int(s["dport"]), int(s["ssrc"])):
           call_ids.get(int(s["call_ref"])) for s in result.streams}
    # and the other way: no stream is a call's that tshark ties to no SDP of that call
    assert not {key: cid for key, cid in got.items() if cid is not None and cid not in want.get(key, ())}
    differ = {key: (cids, got.get(key, "no such stream")) for key, cids in want.items()
              if cids and got.get(key) not in cids}
    if not differ:
        return
    messages = truth(name).messages
    first_packet = {}
    for pk in tshark_rtp_packets(SHARED_PCAPS / name, CAPTURES[name]):
        first_packet.setdefault((pk.src, pk.sport, pk.dst, pk.dport, pk.ssrc), pk.arrival_ns)
    for key, (cids, ours) in differ.items():
        failures = [m.ts_ns for m in messages if m.call_id in cids and m.code is not None and m.code >= 300
                    and m.cseq_method == "INVITE" and m.code not in (401, 407)]
        assert ours is None and failures and min(failures) < first_packet[key], (name, key, cids, ours)


@pytest.mark.parametrize("name", sorted(FACTS))
def test_facts_sources_md_states(shared, name):
    facts = FACTS[name]
    calls = warpsniff(name).result.calls
    assert Counter(c.final_code for c in calls) == Counter(facts["finals"])
    pdds = sorted(c.pdd_ms for c in calls if c.pdd_ms is not None)
    if "pdd" in facts:
        assert len(pdds) == len(facts["pdd"]), pdds
        for got, (ms, tol) in zip(pdds, sorted(facts["pdd"])):
            assert abs(got - ms) <= tol, (pdds, facts["pdd"])
    for ms, tol in facts.get("some_pdd", []):
        assert any(abs(got - ms) <= tol for got in pdds), pdds
    if "pdd_range" in facts:
        lo, hi = facts["pdd_range"]
        assert pdds and all(lo <= p <= hi for p in pdds), pdds


@pytest.mark.parametrize("name", [n for n in sorted(FACTS) if "byes" in FACTS[n]])
def test_bye_counts_sources_md_states(shared, name):
    calls = warpsniff(name).result.calls
    assert sum(c.bye_ts is not None for c in calls) == FACTS[name]["byes"]
    for c in calls:
        if c.bye_ts is not None:
            assert c.reason == "normal" and c.ended_by in ("caller", "callee") and c.duration_s > 0


# --------------------------------------------------------------------------
# Explained differences between tshark's messages and warpsniff's


def websocket_messages_seen(name: str) -> list:
    """(message key, ports) of every message warpsniff's tracker was handed."""
    seen = []

    def tap(h, ts, src, dst):
        if h.status_name == "ok":
            seen.append(((ts_key(ts), h.call_id, h.cseq, h.method if h.is_request else h.code), {src[1], dst[1]}))

    replay_tapped(SHARED_PCAPS / name, tap)
    return seen


def test_websocket_leg_is_decoded_as_tshark_decodes_it(shared):
    """SIP over WebSocket (RFC 7118): on the WebSocket connection warpsniff finds
    exactly the messages tshark decodes as SIP over WebSocket, all through the
    WebSocket framing, and the WebRTC client's call starts at its first INVITE,
    which only crossed the WebSocket."""
    name = "heplify__sip_tcp_websocket.pcap"
    path = shared / name
    messages = truth(name).messages
    over_ws = [m for m in messages if websocket_carried(m)]
    assert len(over_ws) == 11 and len(messages) == 39
    assert all(":tcp:http:websocket:sip" in m.protocols for m in over_ws)
    # tshark: the connection that carries the WebSocket, and its handshake
    ws_ports = {int(p) for row in tshark_fields(path, "websocket", ["tcp.srcport", "tcp.dstport"]) for p in row}
    assert len(ws_ports) == 2
    upgrades = tshark_fields(path, 'http.upgrade contains "websocket"', ["http.request.method", "http.response.code"])
    assert sorted(tuple(r) for r in upgrades) == [("", "101"), ("GET", "")]

    on_ws = Counter(key for key, ports in websocket_messages_seen(name) if ports == ws_ports)
    assert on_ws == Counter(message_key(m) for m in over_ws)
    run = warpsniff(name)
    sip = run.result.sip
    assert sip["messages"] == len(messages)
    assert sip["tcp_websocket_upgrades"] == 2          # the GET's direction and the 101's
    assert sip["tcp_websocket_joined"] == 0
    assert sip["tcp_websocket_messages"] == len(over_ws)
    assert sip["tcp_websocket_errors"] == sip["tcp_websocket_oversize"] == sip["tcp_websocket_not_sip"] == 0

    full = {a.call_id: a for a in expected_attempts(messages, truth(name).frame_times).attempts}
    calls = {c.call_id: c for c in run.result.calls}
    assert sorted(full) == sorted(calls)
    for cid in full:
        want = describe(full[cid])
        assert same(want, describe_call(calls[cid], want)), (cid, want)
        assert calls[cid].pdd_ms == pytest.approx(full[cid].pdd_ms, abs=0.01)
    # the trunk call never touches WebSocket (PDD 1.12 s to the 183, as SOURCES.md says)
    trunk = "926ffd16-6154-1237-09ba-0270b3230128"
    assert not any(websocket_carried(m) for m in messages if m.call_id == trunk)
    assert calls[trunk].pdd_ms == pytest.approx(1121.047, abs=0.01) and calls[trunk].pdd_end == "progress"
    # the WebRTC client's Call-ID is proxied to UDP unchanged; its attempt starts at the first
    # INVITE, over the WebSocket, whose 407 challenge only crossed the WebSocket
    webrtc = "kovfhoptshgn59q712sr"
    ours = [m for m in messages if m.call_id == webrtc]
    first_invite = next(m for m in ours if m.method == "INVITE")
    assert websocket_carried(first_invite)
    challenges = [m for m in ours if m.code == 407]
    assert len(challenges) == 1 and websocket_carried(challenges[0])
    first_ring = next(m for m in ours if m.code in (180, 181, 182, 183))
    assert calls[webrtc].invite_ts == pytest.approx(first_invite.ts_ns / NS, abs=1e-6)
    assert calls[webrtc].pdd_ms == pytest.approx((first_ring.ts_ns - first_invite.ts_ns) / 1e6, abs=0.01)
    assert calls[webrtc].pdd_end == "ringing" and calls[webrtc].final_code == 200
    assert calls[webrtc].ended_by == "caller"


def test_sctp_invite_split_over_two_data_chunks_is_joined(shared):
    """docs/calls.md: 'a message split over several chunks (B ... E flags) is
    joined per association and stream (in arrival order)'. This INVITE came as
    two DATA chunks in two packets (frame 1: B bit, TSN 0; frame 2: E bit, TSN 1,
    same association and stream): joined, it is seen at frame 2 as tshark shows
    it, and INVITE->100->403->ACK (SOURCES.md) is one attempt, failed with 403."""
    name = "heplify__sip_sctp.pcap"
    t = truth(name)
    messages = t.messages
    path = SHARED_PCAPS / name
    rows = tshark_fields(path, "sctp", ["frame.number", "frame.protocols", "sctp.data_b_bit", "sctp.data_e_bit",
                                        "sctp.data_tsn"])
    bits = {int(r[0]): (r[2] in ("1", "True"), r[3] in ("1", "True"), int(r[4])) for r in rows}
    assert bits[1] == (True, False, 0) and ":sip" not in rows[0][1]
    assert bits[2] == (False, True, 1)
    assert all(bits[f][:2] == (True, True) for f in (3, 4, 5))
    chunks = {c.frame: c for c in sctp_data_chunks(name)}
    assert (chunks[1].association, chunks[1].stream) == (chunks[2].association, chunks[2].stream)
    assert fragmented_sctp_frames(name) == {2}
    assert sctp_joins(name) == {2: (0, 1)} and unjoinable_sctp_frames(name) == frozenset()
    assert [(m.frame, m.method or m.code) for m in messages] == [(2, "INVITE"), (3, 100), (4, 403), (5, "ACK")]
    assert visible_messages(name) == messages

    run = warpsniff(name)
    assert [s.kind for s in run.messages] == ["INVITE", 100, 403, "ACK"]
    assert run.messages[0].ts == pytest.approx(messages[0].ts_ns / NS, abs=1e-6)   # at the E chunk
    assert run.result.sip["sctp_messages"] == 4 and run.result.sip["orphan_responses"] == 0

    (a,) = expected_attempts(messages, t.frame_times).attempts
    assert (a.final_code, a.reason, a.pdd_end, a.answered) == (403, "failed", None, False)
    assert a.invite_ns == messages[0].ts_ns and a.end_ns == messages[2].ts_ns
    (c,) = run.result.calls
    assert same(describe(a), describe_call(c, describe(a)))
    assert (c.final_code, c.reason, c.pdd_ms, c.answer_ts) == (403, "failed", None, None)
    assert c.end_ts == pytest.approx(messages[2].ts_ns / NS, abs=1e-6)


def test_control_byte_messages_belong_to_no_call(shared):
    """The six ERSPAN messages with control bytes in their To-tag are NOTIFY/481
    of subscriptions: dropping them (a parse error by the docs) changes no call."""
    name = "heplify__erspan_sip_ipv4_udp.pcapng"
    t = truth(name)
    damaged = [m for m in t.messages if header_has_control_bytes(m)]
    assert {m.cseq_method for m in damaged} == {"NOTIFY"}
    invite_ids = {m.call_id for m in t.messages if m.method == "INVITE"}
    assert not invite_ids & {m.call_id for m in damaged}
    full = [describe(a) for a in expected_attempts(t.messages, t.frame_times).attempts]
    visible = [describe(a) for a in expected_attempts(visible_messages(name), t.frame_times).attempts]
    assert full == visible


def test_erspan_challenge_then_answer_is_one_attempt(shared):
    """SOURCES.md's '1x407' dialog: 407 to CSeq 1, then INVITE CSeq 2 answered 200."""
    name = "heplify__erspan_sip_ipv4_udp.pcapng"
    cid = "bf3880-0-16e4-5af571fa-38bc4ba4-5af571fa@101.231.48.19"
    codes = [(m.cseq, m.code) for m in truth(name).messages if m.call_id == cid and m.cseq_method == "INVITE"
             and m.code and m.code >= 200]
    assert (1, 407) in codes and (2, 200) in codes
    (call,) = [c for c in warpsniff(name).result.calls if c.call_id == cid]
    assert call.final_code == 200 and call.answer_ts is not None
    first_invite = next(m for m in truth(name).messages if m.call_id == cid and m.method == "INVITE")
    assert first_invite.cseq == 1 and call.invite_ts == pytest.approx(first_invite.ts_ns / NS, abs=1e-6)


def test_tcp_fragmented_486_answers_an_invite_before_the_capture(shared):
    """SOURCES.md lists a 486 and two 487s among the 37 dialogs: the 486 and one
    487 answer INVITEs sent before the capture began, so they start no attempt."""
    name = "heplify__sip_ipv4_tcp_fragmented.pcap"
    messages = truth(name).messages
    invited = {m.call_id for m in messages if m.method == "INVITE" and m.to_tag is None}
    assert len(invited) == 37
    orphans = [(m.code, m.frame) for m in messages if m.cseq_method == "INVITE" and m.code in (486, 487)
               and m.call_id not in invited]
    assert sorted(code for code, _ in orphans) == [486, 487]
    calls = warpsniff(name).result.calls
    assert len(calls) == 37 and {c.call_id for c in calls} == invited
    # the 3 without a final: one never answered at all (Timer B), two open at the end
    assert Counter(c.reason for c in calls if c.final_code is None) == Counter({"interrupted": 2, "timeout": 1})


def test_ipv6_capture_clock_makes_the_call_a_timeout(shared):
    """SOURCES.md: 'All packets share one timestamp'. They share the microseconds
    only: tshark's seconds jump by years (2012 .. 2092), so by the rules the INVITE
    times out long before its 200 arrives: no answer, reason timeout."""
    name = "heplify__sip_ipv6_udp.pcap"
    times = truth(name).frame_times
    assert len(set(t % NS for t in times)) == 1 and len(set(times)) == 6
    assert times[1] - times[0] > 365 * 86400 * NS
    (call,) = warpsniff(name).result.calls
    assert call.final_code is None and call.answer_ts is None
    assert call.reason == "timeout" and call.ended_by == "timeout"


def test_aaa_attempts_as_the_rules_count_them(shared):
    """sngrep__aaa.pcap, SOURCES.md: 408 after CANCEL, 480, 403, 407s, one 183 (PDD
    17.8 s). By the rules, 4 attempts: a 100 Trying stops Timer B, so the INVITE
    CANCELled 34 s later ends with its 408; each 407 is retried with CSeq 2 (34 s,
    51 s and 17 s later), the same attempt, ending 403, 403 and 480 after a 183."""
    name = "sngrep__aaa.pcap"
    model = model_for(name, visible_messages(name))
    assert [(a.final_code, a.reason) for a in model.attempts] == [
        (408, "no_answer"), (403, "failed"), (403, "failed"), (480, "no_answer")]
    calls = by_start(warpsniff(name).result.calls)
    assert [(c.final_code, c.reason) for c in calls] == [
        (408, "no_answer"), (403, "failed"), (403, "failed"), (480, "no_answer")]
    assert calls[0].ended_by == "caller" and calls[0].cancelled
    (c183,) = [c for c in calls if c.pdd_end == "progress"]
    assert c183.call_id == "11894297-4432a9f8@192.168.1.2"
    assert abs(c183.pdd_ms - 17800) <= 50
    # the PDD runs from the first INVITE, before the 407
    first = next(m for m in truth(name).messages if m.call_id == c183.call_id and m.method == "INVITE")
    assert first.cseq == 1 and c183.invite_ts == pytest.approx(first.ts_ns / NS, abs=1e-6)


def test_ipip0_403_is_another_call_id(shared):
    """heplify's decoder test data: the 403 shares the INVITE's branch and CSeq but
    not its Call-ID, so by the rules it answers nothing and the INVITE stays open."""
    name = "heplify__ipip0_rawip.pcap"
    invite, resp = truth(name).messages[:2]
    assert invite.method == "INVITE" and resp.code == 403
    assert (invite.branch, invite.cseq) == (resp.branch, resp.cseq) and invite.call_id != resp.call_id
    (call,) = warpsniff(name).result.calls
    assert call.call_id == invite.call_id and call.final_code is None and call.reason == "interrupted"
    assert warpsniff(name).result.sip["orphan_responses"] == 4   # the 403 and three 401s to REGISTER


def test_sip_only_capture_waits_an_hour_not_the_rtp_timeout(shared):
    """heplify__sip_ipv4_tcp_fragmented.pcap holds no RTP at all (SOURCES.md: 'No
    RTP'), so by docs/calls.md an answered call whose RTP was never seen waits
    sip_only_timeout (3600 s) of SIP silence, not the 60 s RTP timeout. The
    capture lasts 127 s: no answered call times out. Seven answered calls go
    over 60 s without SIP (with the RTP timeout each would end as a timeout at
    its answer); the two whose BYE comes later end at that BYE, the other five
    are still open when the capture ends: interrupted."""
    name = "heplify__sip_ipv4_tcp_fragmented.pcap"
    t = truth(name)
    messages = visible_messages(name)
    assert rtp_packets(name) == []
    assert t.frame_times[-1] - t.frame_times[0] < SIP_ONLY_TIMEOUT_NS
    model = {a.call_id: a for a in model_for(name, messages).attempts}
    with_rtp_timeout = expected_attempts(messages, t.frame_times, [], sip_only_timeout_ns=RTP_TIMEOUT_NS).attempts
    silent = {a.call_id for a in with_rtp_timeout if a.answered and a.reason == "timeout"}
    for a in with_rtp_timeout:
        if a.call_id in silent:
            assert a.end_ns == a.answer_ns and a.ended_by == "timeout"
    assert len(silent) == 7
    assert not any(a.reason == "timeout" for a in model.values() if a.answered)

    late_byes = {m.call_id for m in messages if m.method == "BYE"} & silent
    assert sorted(late_byes) == ["17c0b3b3-dfd2-42ac-9018-6156179021c0", "ddcc448f-561e-4bb1-a003-950342ed1c17"]
    calls = {c.call_id: c for c in warpsniff(name).result.calls}
    assert not any(c.reason == "timeout" for c in calls.values() if c.answer_ts is not None)
    for cid in sorted(silent):
        a, c = model[cid], calls[cid]
        assert same(describe(a), describe_call(c, describe(a))), (cid, describe(a), describe_call(c, {}))
        if cid in late_byes:
            (bye,) = [m for m in messages if m.call_id == cid and m.method == "BYE"]
            first_2xx = next(m for m in messages if m.call_id == cid and m.cseq_method == "INVITE"
                             and m.code and 200 <= m.code < 300)
            assert (a.reason, a.ended_by, a.bye_ns, a.answer_ns) == ("normal", "caller", bye.ts_ns, first_2xx.ts_ns)
            assert bye.ts_ns - first_2xx.ts_ns > RTP_TIMEOUT_NS
            assert c.reason == "normal" and c.ended_by == "caller" and c.bye_ts is not None
            assert c.duration_s == pytest.approx((bye.ts_ns - first_2xx.ts_ns) / NS, abs=1e-5)
        else:
            assert a.reason == "interrupted" and a.end_ns is None and a.ended_by is None
            assert c.reason == "interrupted" and c.end_ts is None and c.ended_by is None


LEG_BYES = {
    # Call-ID: (first 2xx's To-tag, the other leg's first 2xx's To-tag, the caller's BYE frame)
    ("heplify__erspan_sip_ipv4_udp.pcapng", "bf3880-0-16e4-5af571fa-38bc4ba4-5af571fa@101.231.48.19"):
        ("779c4b34bb083eb9b1623e76e439bfd4", "41B472DE-5AF5017B00043725-EFBFB700", 124),
    ("heplify__erspan_sip_ipv4_udp.pcapng", "cdfef7c7647e97e4ff66fbf504c524e4@192.168.1.191"):
        ("bd6630-0-13c4-563a778f-1bd0043e-563a778f", "1EA15777-5AF5017B0004863A-EFCFC700", 135),
    ("sngrep__ipv6frag.pcap", "71846-1647924829-397430@fd17:625c:f037:2:a00:27ff:feb9:1521"):
        ("1632476SIPpTag0271847", "1632476SIPpTag0171847", 31),
}


@pytest.mark.parametrize("name,call_id", sorted(LEG_BYES), ids=[c for _n, c in sorted(LEG_BYES)])
def test_bye_on_another_legs_answered_dialog_ends_the_call(shared, name, call_id):
    """docs/calls.md, Legs: 'each leg (top Via branch) keeps the To-tag of its
    first 2xx; a BYE on any of those dialogs ends the call.' In the ERSPAN
    capture the Call-ID crosses a B2BUA that rewrites both tags and the far
    leg's 200 is seen first; in ipv6frag the capture sees both sides of a proxy,
    fork 02's 200 first on the UAS side, while the caller's dialog (and BYE) is
    fork 01's, answered on the other branch. The caller's BYE names the other
    leg's answer, not the first 2xx's: the call ends at that BYE (normal, by the
    caller, duration from the first 2xx), not 'interrupted' as when only the
    first 2xx's To-tag counted."""
    answer_tag, leg_tag, bye_frame = LEG_BYES[(name, call_id)]
    messages = [m for m in visible_messages(name) if m.call_id == call_id]
    caller_tag = next(m for m in messages if m.method == "INVITE").from_tag
    attempt_cseq = max(m.cseq for m in messages if m.method == "INVITE" and m.to_tag is None)
    answers = [m for m in messages if m.cseq_method == "INVITE" and m.cseq == attempt_cseq
               and m.code and 200 <= m.code < 300]
    first_2xx = answers[0]
    other_leg = next(m for m in answers if m.branch != first_2xx.branch)
    assert (first_2xx.to_tag, other_leg.to_tag) == (answer_tag, leg_tag)
    assert {m.to_tag for m in answers if m.branch == first_2xx.branch} == {answer_tag}
    assert {m.to_tag for m in answers if m.branch == other_leg.branch} == {leg_tag}
    byes = [m for m in messages if m.method == "BYE"]
    bye = byes[0]
    assert bye.frame == bye_frame and bye.from_tag == caller_tag and bye.to_tag == leg_tag != answer_tag
    bye_answer = next(m for m in messages if m.cseq_method == "BYE" and m.code and m.code >= 200
                      and (m.cseq, m.branch) == (bye.cseq, bye.branch))
    assert bye_answer.code == 200

    (a,) = [a for a in model_for(name, visible_messages(name)).attempts if a.call_id == call_id]
    assert a.answer_tags == {first_2xx.branch: answer_tag, other_leg.branch: leg_tag}
    assert (a.answer_ns, a.bye_ns, a.end_ns) == (first_2xx.ts_ns, bye.ts_ns, bye.ts_ns)
    assert (a.reason, a.ended_by, a.ignored_byes) == ("normal", "caller", [])
    (c,) = [c for c in warpsniff(name).result.calls if c.call_id == call_id]
    assert same(describe(a), describe_call(c, describe(a))), (describe(a), describe_call(c, {}))
    assert c.answer_ts == pytest.approx(first_2xx.ts_ns / NS, abs=1e-6)
    assert c.bye_ts == pytest.approx(bye.ts_ns / NS, abs=1e-6) and c.end_ts == c.bye_ts
    assert c.duration_s == pytest.approx((bye.ts_ns - first_2xx.ts_ns) / NS, abs=1e-5)
    assert (c.reason, c.ended_by, c.bye_code) == ("normal", "caller", bye_answer.code)
