"""Calls from SIP dialogs: attempts, PDD, final codes, durations, media.

One `Call` per INVITE attempt (RFC 3261 sections 13-15 for the dialog
rules; the KPI definitions follow ../docs/calls.md). The tracker sees every
SIP message once, in capture order, and tells the engine which media
destinations belong to which call (SDP binding), so RTP statistics are per
call without any per-packet Python.
"""
from __future__ import annotations

import heapq
import math
import re
import socket
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Optional

from warpsniff.labels import InviteInfo
from warpsniff.quality.vq import CONTENT_TYPE as VQ_CONTENT_TYPE
from warpsniff.quality.vq import parse_vq_report
from warpsniff.sip.headers import header_values
from warpsniff.sip.sdp import SessionDescription, parse_sdp, payload_kind

V4_MAPPED = bytes(10) + b"\xff\xff"
UNSPECIFIED_V4 = V4_MAPPED + bytes(4)   # 0.0.0.0: hold (RFC 2543)
OTHER_TRANSACTIONS = 8192   # remembered keys of messages outside any call
RECENT_CALLS = 1024         # finished calls kept for stragglers (retransmissions, PUBLISH reports)
PROVISIONAL_PDD = {180: "ringing", 181: "ringing", 182: "ringing", 183: "progress"}
CHALLENGES = (401, 407)
# Final codes -> termination reason. Anything else 3xx-6xx is "failed".
REASON_BY_CODE = {486: "busy", 600: "busy", 603: "busy", 480: "no_answer", 408: "no_answer", 487: "cancelled"}
# A call's timer wakes this much before its computed deadline: the deadline is
# `start + limit`, the test in tick is `now - start > limit`, and the two can
# round apart by an ulp; waking early only costs one re-check.
TIMER_SLACK_S = 1e-3


def termination_reason(code: Optional[int]) -> str:
    if code is None:
        return "timeout"
    if 200 <= code < 300:
        return "normal"
    return REASON_BY_CODE.get(code, "failed")


@dataclass
class CallConfig:
    invite_timeout: float = 32.0       # no response at all (RFC 3261 Timer B)
    ring_timeout: float = 180.0        # provisional but no final (Timer C)
    rtp_timeout: float = 60.0          # answered, no BYE, no RTP for this long
    sip_only_timeout: float = 3600.0   # answered, no BYE, and no RTP ever seen (a SIP-only tap)
    max_duration: float = 4 * 3600.0   # answered calls end after this regardless
    bye_linger: float = 32.0           # wait this long for the BYE's response
    max_calls: int = 100_000           # dialogs tracked at once; oldest evicted
    correlation_header: Optional[str] = None   # B2BUA legs sharing this header's value
    call_id_pattern: Optional[str] = None      # regex; group 1 = the leg-independent id
    nat_aliases: dict = field(default_factory=dict)  # SDP address -> address seen on the wire


@dataclass
class CallStats:
    messages: int = 0
    requests: int = 0
    responses: int = 0
    retransmissions: int = 0
    parse_errors: int = 0
    keepalives: int = 0
    evicted: int = 0
    orphan_responses: int = 0
    vq_reports: int = 0
    reinvites: int = 0
    sdp_truncated: int = 0   # SDP bodies with more m= lines/formats/rtpmaps than the native scan keeps
    by_method: dict = field(default_factory=dict)


@dataclass
class Call:
    call_ref: int
    call_id: str
    from_uri: Optional[str]
    to_uri: Optional[str]
    from_tag: Optional[str]
    invite_ts: float
    invite_cseq: int
    caller: tuple                       # (addr16, port) the first INVITE came from
    correlation_id: Optional[str] = None
    leg: int = 1
    pdd_ms: Optional[float] = None
    pdd_end: Optional[str] = None
    ringing: bool = False
    proceeding: bool = False            # any 1xx came: Timer B no longer applies
    early_dialogs: set = field(default_factory=set)   # To-tags of forks
    final_code: Optional[int] = None
    challenged: bool = False
    challenge_ts: Optional[float] = None
    cancelled: bool = False
    answer_ts: Optional[float] = None
    answer_to_tag: Optional[str] = None
    answer_tags: dict = field(default_factory=dict)   # top Via branch -> To-tag of its first 2xx
    end_ts: Optional[float] = None
    ended_by: Optional[str] = None
    reason: Optional[str] = None
    bye_code: Optional[int] = None
    bye_ts: Optional[float] = None
    session_expires: Optional[float] = None
    refreshed_ts: Optional[float] = None
    last_sip_ts: float = 0.0
    last_rtp_ts: Optional[float] = None
    media_asked_ts: Optional[float] = None   # capture time the tracker last asked the engine (media_probe)
    holds: int = 0
    retransmissions: int = 0
    labels: object = None          # warpsniff.labels.CallLabels; None until labelled
    media: dict = field(default_factory=dict)          # (addr16, port) -> "caller" | "callee" side
    payload_names: dict = field(default_factory=dict)  # pt -> encoding, from a=rtpmap
    seen: set = field(default_factory=set)             # transaction keys, for retransmissions
    vq_reports: list = field(default_factory=list)     # RFC 6035 PUBLISH reports about this call
    timer_rank: int = field(default=0, repr=False, compare=False)   # CallTracker's: recency order in `calls`
    done: bool = False
    evicted: bool = False

    @property
    def answered(self) -> bool:
        return self.answer_ts is not None

    @property
    def duration_s(self) -> Optional[float]:
        if self.answer_ts is None or self.end_ts is None:
            return None
        return max(0.0, self.end_ts - self.answer_ts)


def addr16(text: str) -> bytes:
    """IP text -> engine address (16 bytes, IPv4 v4-mapped); ValueError if not an IP."""
    try:
        return V4_MAPPED + socket.inet_pton(socket.AF_INET, text)
    except OSError:
        pass
    try:
        return socket.inet_pton(socket.AF_INET6, text)
    except OSError:
        raise ValueError(f"not an IP address: {text!r}") from None


def ip_text(a16: bytes) -> str:
    """Engine address (16 bytes, IPv4 v4-mapped) -> text."""
    if a16[:12] == V4_MAPPED:
        return socket.inet_ntop(socket.AF_INET, a16[12:])
    return socket.inet_ntop(socket.AF_INET6, a16)


def _session_expires(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    head = value.split(";")[0].strip()
    return float(head) if head.isdigit() else None


class CallTracker:
    """Consumes SIP messages in capture order; hands finished calls to `on_call`."""

    def __init__(self, engine, config: Optional[CallConfig] = None, on_call: Optional[Callable] = None,
                 on_attempt: Optional[Callable] = None, label_config=None,
                 on_pdd: Optional[Callable] = None):
        self.engine = engine
        self.config = config or CallConfig()
        self.on_call = on_call or (lambda call: None)
        self.on_attempt = on_attempt or (lambda call: None)
        self.on_pdd = on_pdd or (lambda call: None)
        self.label_config = label_config   # warpsniff.labels.LabelConfig, or None: all "unknown"
        # called with every parsed message: f(h, ts, src, dst), e.g. proxy health
        self.observers: list = []
        self.calls: "OrderedDict[str, Call]" = OrderedDict()
        self.stats = CallStats()
        # transaction keys of messages that belong to no call (REGISTER, OPTIONS,
        # stragglers); a call's own keys live and die with the call
        self.seen_other: "OrderedDict[tuple, None]" = OrderedDict()
        self.legs: "OrderedDict[str, int]" = OrderedDict()  # correlation id -> legs seen
        self.recent: "OrderedDict[str, Call]" = OrderedDict()  # finished calls, for late reports
        self.next_ref = 1
        self.now = 0.0
        # Timers (tick): a heap of (due, seq, call_ref), `due` never later than the
        # first capture time the call can time out at, so a tick looks only at the
        # calls whose entry is due instead of at every open call. _timed: call_ref ->
        # [call, seq of its valid heap entry, that entry's due]; heap entries whose
        # seq differs are stale. Every message for a call and every new call moves
        # it to the end of `calls` and takes the next _seq as its Call.timer_rank,
        # so sorting by rank gives `calls`' order.
        self._timers: list = []
        self._timed: dict = {}
        self._dirty: dict = {}   # call_ref -> call whose state changed since the last tick
        self._seq = 0
        # RTP activity, asked for only when a timer is due: f(call_refs) -> {call_ref:
        # latest RTP time (s)} (Pipeline: from the engine's stream table). None: the
        # owner reports activity through media_activity instead.
        self.media_probe: Optional[Callable] = None
        self._call_id_re = re.compile(self.config.call_id_pattern) if self.config.call_id_pattern else None

    # -- input ---------------------------------------------------------------

    def message(self, h, payload: bytes, ts: float, src: tuple, dst: tuple) -> None:
        """One SIP message (native-parsed headers `h`, whole message bytes)."""
        if ts > self.now:
            self.now = ts
        stats = self.stats
        stats.messages += 1
        status = h.status_name
        if status != "ok":
            if status == "keepalive":
                stats.keepalives += 1
            else:
                stats.parse_errors += 1
            return
        for observe in self.observers:
            observe(h, ts, src, dst)
        if h.is_request:
            stats.requests += 1
            method = h.method
            stats.by_method[method] = stats.by_method.get(method, 0) + 1
            starts_call = method == "INVITE" and h.to_tag is None  # the new call will hold its key
            key = (h.via_branch, h.cseq, method, h.from_tag)
            if self._retransmitted(h.call_id, key, not starts_call):
                self._count_retransmission(h.call_id)
                return
            self._request(h, payload, ts, src, dst)
            if starts_call:
                call = self.calls.get(h.call_id)
                if call is not None:
                    call.seen.add(key)
        else:
            stats.responses += 1
            if self._retransmitted(h.call_id, (h.via_branch, h.cseq, h.cseq_method, h.code, h.to_tag)):
                self._count_retransmission(h.call_id)
                return
            self._response(h, payload, ts)

    def _retransmitted(self, call_id: str, key: tuple, remember_outside: bool = True) -> bool:
        """Seen before? Keys are kept per call (freed with it), else in a small LRU."""
        call = self.calls.get(call_id) or self.recent.get(call_id)
        if call is not None:
            if key in call.seen:
                return True
            call.seen.add(key)
            return False
        seen = self.seen_other
        key = (call_id, *key)
        if key in seen:
            return True
        if not remember_outside:
            return False
        seen[key] = None
        if len(seen) > OTHER_TRANSACTIONS:
            seen.popitem(last=False)
        return False

    def _count_retransmission(self, call_id: str) -> None:
        self.stats.retransmissions += 1
        call = self.calls.get(call_id)
        if call is not None:
            call.retransmissions += 1

    # -- requests -------------------------------------------------------------

    def _publish(self, h, payload: bytes) -> None:
        """RFC 6035 quality report: attach it to the call it names."""
        if not h.body_len or VQ_CONTENT_TYPE not in (h.content_type or "").lower():
            return
        report = parse_vq_report(payload[h.body_off:h.body_off + h.body_len])
        if report is None:
            return
        self.stats.vq_reports += 1
        cid = report.get("call_id") or ""
        call = self.calls.get(cid) or self.recent.get(cid)  # CallTerm reports follow the BYE
        if call is not None and len(call.vq_reports) < 16:
            call.vq_reports.append(report)

    def _request(self, h, payload: bytes, ts: float, src: tuple, dst: tuple) -> None:
        if h.method == "PUBLISH":
            self._publish(h, payload)
            return
        call = self.calls.get(h.call_id)
        if call is not None:
            call.last_sip_ts = ts
            self.calls.move_to_end(h.call_id)
            self._seq += 1                  # inline: once per message
            call.timer_rank = self._seq
            self._dirty[call.call_ref] = call
        method = h.method
        if method == "INVITE":
            if h.to_tag is None:
                self._initial_invite(call, h, payload, ts, src, dst)
            elif call is not None:
                self.stats.reinvites += 1
                self._refresh(call, h, ts)
                self._offer_answer(call, h, payload)
        elif call is None:
            return
        elif method == "CANCEL":
            if not call.answered:
                call.cancelled = True
        elif method == "BYE":
            callee_tag = h.to_tag if h.from_tag == call.from_tag else h.from_tag
            if call.answer_tags and callee_tag not in call.answer_tags.values():
                return  # ends a fork that lost the race, not the call
            if call.end_ts is None or call.reason == "timeout":
                call.end_ts = ts
                call.bye_ts = ts
                call.ended_by = "caller" if h.from_tag == call.from_tag else "callee"
                if call.reason is None:
                    call.reason = termination_reason(call.final_code) if call.answered else "cancelled"
        elif method == "UPDATE":
            self._refresh(call, h, ts)
            self._offer_answer(call, h, payload)
        elif method in ("ACK", "PRACK"):
            self._offer_answer(call, h, payload)

    def _invite_info(self, h, payload: bytes, src: tuple, dst: tuple):
        return InviteInfo(
            src=ip_text(src[0]), sport=src[1],
            dst=ip_text(dst[0]), dport=dst[1],
            request_uri=h.request_uri, from_uri=h.from_uri, to_uri=h.to_uri,
            headers=header_values(payload, h.header_len, self.label_config.header_names),
        )

    def _initial_invite(self, call: Optional[Call], h, payload: bytes, ts: float, src: tuple,
                        dst: tuple) -> None:
        if call is not None and not call.done:
            if call.challenged and h.cseq > call.invite_cseq:
                # the same attempt, retried with credentials
                call.challenged = False
                call.final_code = None
                call.invite_cseq = h.cseq
                self._offer_answer(call, h, payload)
                return
            if call.final_code is None and not call.answered:
                # a new branch of the same INVITE (forking proxy upstream): same attempt
                self._offer_answer(call, h, payload)
                return
            self._finish(call)
        call = Call(
            call_ref=self.next_ref, call_id=h.call_id, from_uri=h.from_uri, to_uri=h.to_uri,
            from_tag=h.from_tag, invite_ts=ts, invite_cseq=h.cseq, caller=src, last_sip_ts=ts,
        )
        self.next_ref += 1
        call.session_expires = _session_expires(h.session_expires)
        self._correlate(call, h)
        if self.label_config is not None:
            call.labels = self.label_config.labels(self._invite_info(h, payload, src, dst))
        self.calls[h.call_id] = call
        self._seq += 1
        call.timer_rank = self._seq
        self._timed[call.call_ref] = [call, -1, math.inf]   # no heap entry until the next tick
        self._dirty[call.call_ref] = call
        if len(self.calls) > self.config.max_calls:
            _, oldest = self.calls.popitem(last=False)
            oldest.evicted = True
            self.stats.evicted += 1
            if oldest.end_ts is None:
                oldest.end_ts = oldest.last_sip_ts
                oldest.reason = "timeout"
                oldest.ended_by = "timeout"
            self._finish(oldest, pop=False)
        self.on_attempt(call)
        self._offer_answer(call, h, payload)

    def _correlate(self, call: Call, h) -> None:
        key = None
        if self.config.correlation_header and h.correlation:
            key = h.correlation.strip()
        elif self._call_id_re is not None:
            m = self._call_id_re.search(h.call_id)
            if m:
                key = m.group(1)
        if key is None:
            return
        call.correlation_id = key
        call.leg = self.legs.get(key, 0) + 1
        self.legs[key] = call.leg
        self.legs.move_to_end(key)
        if len(self.legs) > self.config.max_calls:
            self.legs.popitem(last=False)

    def _refresh(self, call: Call, h, ts: float) -> None:
        call.refreshed_ts = ts
        se = _session_expires(h.session_expires)
        if se:
            call.session_expires = se

    # -- responses ------------------------------------------------------------

    def _response(self, h, payload: bytes, ts: float) -> None:
        call = self.calls.get(h.call_id)
        if call is None:
            self.stats.orphan_responses += 1
            return
        call.last_sip_ts = ts
        self.calls.move_to_end(h.call_id)
        self._seq += 1
        call.timer_rank = self._seq
        self._dirty[call.call_ref] = call
        code = h.code
        if h.cseq_method == "BYE":
            if code >= 200 and call.bye_code is None and call.bye_ts is not None:
                call.bye_code = code
                self._finish(call)
            return
        if h.cseq_method not in ("INVITE", "UPDATE", "PRACK"):
            return
        if h.cseq_method == "INVITE" and h.cseq == call.invite_cseq:
            if not call.answered:
                self._invite_response(call, h, payload, ts)
            elif 200 <= code < 300 and h.via_branch not in call.answer_tags:
                # the answer as another leg of the same Call-ID saw it (a B2BUA or
                # a proxy on both sides of the tap): its dialog is the call too
                call.answer_tags[h.via_branch] = h.to_tag
            # else: a 2xx from another fork of the same leg after the first won
        elif 200 <= code < 300:
            if h.cseq_method == "INVITE" and h.session_expires:
                call.session_expires = _session_expires(h.session_expires)
            self._offer_answer(call, h, payload)  # re-INVITE/UPDATE answer
        elif h.cseq_method == "PRACK" or code < 200:
            self._offer_answer(call, h, payload)

    def _invite_response(self, call: Call, h, payload: bytes, ts: float) -> None:
        code = h.code
        if code < 200:
            call.proceeding = True
            if code in PROVISIONAL_PDD:
                if call.pdd_ms is None:
                    call.pdd_ms = (ts - call.invite_ts) * 1000.0
                    call.pdd_end = PROVISIONAL_PDD[code]
                    self.on_pdd(call)
                call.ringing = call.ringing or code != 183
                if h.to_tag:
                    call.early_dialogs.add(h.to_tag)
            self._offer_answer(call, h, payload)
            return
        if code < 300:
            call.answer_ts = ts
            call.answer_to_tag = h.to_tag
            call.answer_tags[h.via_branch] = h.to_tag
            call.final_code = code
            call.challenged = False
            if call.pdd_ms is None:
                call.pdd_ms = (ts - call.invite_ts) * 1000.0
                call.pdd_end = "answer"
                self.on_pdd(call)
            se = _session_expires(h.session_expires)
            if se:
                call.session_expires = se
            call.refreshed_ts = ts
            self._offer_answer(call, h, payload)
            return
        if code in CHALLENGES:
            call.challenged = True
            call.challenge_ts = ts
            call.final_code = code
            return
        call.final_code = code
        call.end_ts = ts
        call.reason = termination_reason(code)
        if code == 487 or call.cancelled:
            call.ended_by = "caller"
        self._finish(call)

    # -- media ----------------------------------------------------------------

    def _offer_answer(self, call: Call, h, payload: bytes) -> None:
        """Binds the media an SDP body in this message announces."""
        if not h.body_len:
            return
        ctype = (h.content_type or "").lower()
        if ctype and "sdp" not in ctype:
            return
        sdp = parse_sdp(payload[h.body_off:h.body_off + h.body_len])
        if sdp is not None:
            if sdp.truncated:
                self.stats.sdp_truncated += 1
            # a request from the caller, or a response to one, says whose address this is
            side = "caller" if h.is_request == (h.from_tag == call.from_tag) else "callee"
            self._bind(call, sdp, side, in_dialog=h.to_tag is not None and call.answered)

    def _bind(self, call: Call, sdp: SessionDescription, side: str, in_dialog: bool) -> None:
        aliases = self.config.nat_aliases
        since_ns = round(call.invite_ts * 1e9)   # media older than the call is not adopted by it
        for m in sdp.media:
            addr_text = m.connection or sdp.connection
            if in_dialog and m.kind == "audio" and (
                    sdp.media_direction(m) in ("sendonly", "inactive") or addr_text == "0.0.0.0"):
                call.holds += 1  # a re-INVITE/UPDATE putting the call on hold
            if addr_text is None or not 0 < m.port <= 0xFFFF or not m.is_rtp:
                continue  # no port, or none a datagram can carry: binding it truncated would be someone else's
            pts = []
            rtpmap = m.rtpmap
            if rtpmap:
                kind, names = m.kind, call.payload_names
                for pt in m.formats:
                    entry = rtpmap.get(pt)   # keys are ints: a non-numeric format finds none
                    if entry is not None and 0 <= pt <= 0x7F and 0 < entry[1] <= 0xFFFFFFFF:  # RTP's 7-bit PT
                        enc, clock = entry
                        pts.append((pt, clock, payload_kind(enc, kind)))
                        names[pt] = enc
            alias = aliases.get(addr_text) if aliases else None
            for text in ((addr_text, alias) if alias else (addr_text,)):
                try:
                    a16 = addr16(text)
                except ValueError:
                    continue
                if a16 == UNSPECIFIED_V4:
                    continue
                if self.engine.bind(a16, m.port, call.call_ref, pts, since_ns):
                    call.media[(a16, m.port)] = side

    def media_activity(self, last_rtp_by_ref: dict) -> None:
        """Latest RTP time per call_ref (of open calls; others are ignored)."""
        timed = self._timed
        for ref, t in last_rtp_by_ref.items():
            entry = timed.get(ref)
            if entry is None:
                continue
            call = entry[0]
            if call.last_rtp_ts is None or t > call.last_rtp_ts:
                call.last_rtp_ts = t
                self._dirty[ref] = call   # the first RTP shortens the idle limit

    def tracks(self, call_ref: int) -> bool:
        """The call is open (not finished, not evicted)."""
        return call_ref in self._timed

    # -- time -----------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Ends calls whose end was never seen, by capture time. Only the calls
        whose timer is due are examined (_schedule); each by the same test a
        scan of every open call would apply, and finished in `calls`' order."""
        self.now = max(self.now, now)
        timers, timed = self._timers, self._timed
        for call in self._dirty.values():
            self._schedule(call, reschedule=False)
        self._dirty.clear()
        due = []
        while timers and timers[0][0] < now:
            _, seq, ref = heapq.heappop(timers)
            entry = timed.get(ref)
            if entry is None or entry[1] != seq:
                continue   # stale: the call finished, or has an earlier entry
            call = entry[0]
            if call.done or self.calls.get(call.call_id) is not call:
                continue
            due.append(call)
        if due and self.media_probe is not None:
            # only an answered call still up waits on its media: ask the engine now
            idle = [c for c in due if c.answer_ts is not None and c.end_ts is None]
            if idle:
                for call in idle:
                    call.media_asked_ts = now
                self.media_activity(self.media_probe([c.call_ref for c in idle]))
        expired, again = [], []
        for call in due:
            if self._expired(call, now):
                expired.append(call)
            else:
                again.append(call)   # woke early (slack, or activity since): after this tick's pops
        for call in again:
            self._schedule(call, reschedule=True)
        if len(expired) > 1:
            expired.sort(key=lambda c: c.timer_rank)   # the order a scan of `calls` would meet them in
        for call in expired:
            self._finish(call)
        if len(timers) > 2 * len(timed) + 1024:   # stale entries: rebuild with the valid ones
            self._timers = [e for e in timers if (t := timed.get(e[2])) is not None and t[1] == e[1]]
            heapq.heapify(self._timers)

    def _schedule(self, call: Call, reschedule: bool) -> None:
        """Pushes the call's timer when it is due earlier than its current entry
        (a later deadline keeps the entry: it wakes, finds nothing, reschedules);
        `reschedule`: its entry was just popped, push whatever the deadline."""
        entry = self._timed.get(call.call_ref)
        if entry is None or call.done:
            return
        due = self._deadline(call) - TIMER_SLACK_S
        if not reschedule and due >= entry[2]:
            return
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, call.call_ref))
        entry[1], entry[2] = self._seq, due

    def _deadline(self, call: Call) -> float:
        """The capture time after which _expired(call) holds if nothing else
        happens to the call; with media_probe, the first time it may hold given
        RTP the tracker has not been told of yet."""
        cfg = self.config
        if call.end_ts is not None:
            return call.end_ts + cfg.bye_linger
        if not call.answered:
            limit = cfg.ring_timeout if (call.proceeding or call.challenged) else cfg.invite_timeout
            if call.cancelled and not call.proceeding:
                limit = cfg.invite_timeout
            return call.invite_ts + limit
        since_media = call.last_rtp_ts if call.last_rtp_ts is not None else call.answer_ts
        activity = max(since_media, call.refreshed_ts or call.answer_ts, call.last_sip_ts)
        idle_limit = cfg.rtp_timeout if call.last_rtp_ts is not None else cfg.sip_only_timeout
        due = min(activity + idle_limit, call.answer_ts + cfg.max_duration)
        if self.media_probe is not None:
            # RTP is learnt only when asked: wake when media first seen after the last
            # answer (which saw every packet until then) could have gone idle
            asked = call.media_asked_ts
            due = min(due, (activity if asked is None or asked < activity else asked) + cfg.rtp_timeout)
        if call.session_expires:
            due = min(due, (call.refreshed_ts or call.answer_ts) + call.session_expires)
        return due if not math.isnan(due) else -math.inf   # never skip a call whose test cannot be bounded

    def _expired(self, call: Call, now: float) -> bool:
        """The timer test for one open call at capture time `now`; a call that
        timed out gets its end time and reason here."""
        cfg = self.config
        if call.end_ts is not None:
            return now - call.end_ts > cfg.bye_linger
        if not call.answered:
            waited = now - call.invite_ts
            # Timer B until any provisional; then Timer C. A challenged
            # attempt waits as long for its retry with credentials.
            limit = cfg.ring_timeout if (call.proceeding or call.challenged) else cfg.invite_timeout
            if call.cancelled and not call.proceeding:
                limit = cfg.invite_timeout
            if waited > limit:
                call.end_ts = call.challenge_ts if call.challenged else call.invite_ts + limit
                if call.challenged:
                    call.reason = "failed"  # challenged and never retried
                else:
                    call.reason = "cancelled" if call.cancelled else "timeout"
                    call.ended_by = "caller" if call.cancelled else "timeout"
                return True
            return False
        since_media = call.last_rtp_ts if call.last_rtp_ts is not None else call.answer_ts
        activity = max(since_media, call.refreshed_ts or call.answer_ts, call.last_sip_ts)
        # without any RTP the tap may simply not see the media: wait longer
        idle_limit = cfg.rtp_timeout if call.last_rtp_ts is not None else cfg.sip_only_timeout
        if now - activity > idle_limit:
            self._time_out(call, max(since_media, call.answer_ts))
            return True
        if call.session_expires and now - (call.refreshed_ts or call.answer_ts) > call.session_expires:
            self._time_out(call, (call.refreshed_ts or call.answer_ts) + call.session_expires)
            return True
        if now - call.answer_ts > cfg.max_duration:
            self._time_out(call, call.answer_ts + cfg.max_duration)
            return True
        return False

    def _time_out(self, call: Call, end_ts: float) -> None:
        call.end_ts = end_ts
        call.reason = "timeout"
        call.ended_by = "timeout"

    def close(self) -> None:
        """End of input: calls still open are reported as interrupted."""
        for call in list(self.calls.values()):
            if call.end_ts is None and call.final_code not in (None, *CHALLENGES) and not call.answered:
                pass  # failed attempts already carry their reason
            elif call.end_ts is None:
                call.reason = "interrupted"
            self._finish(call)

    # -- output ---------------------------------------------------------------

    def _finish(self, call: Call, pop: bool = True) -> None:
        if call.done:
            return
        call.done = True
        if call.reason is None:
            if call.final_code is not None and not call.answered and call.final_code not in CHALLENGES:
                call.reason = termination_reason(call.final_code)
            elif call.challenged:
                call.reason = "failed"
        for a16, port in call.media:
            self.engine.unbind(a16, port, call.call_ref)
        self._timed.pop(call.call_ref, None)
        self._dirty.pop(call.call_ref, None)
        if pop and self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]
        self.recent[call.call_id] = call
        if len(self.recent) > RECENT_CALLS:
            self.recent.popitem(last=False)
        self.on_call(call)
