"""Signalling batches from the engine -> SIP messages -> the call tracker.

UDP datagrams are whole messages; TCP segments go through the reassembler
(Content-Length framing, or WebSocket framing after a SIP WebSocket handshake,
whose messages are whole like datagrams); SCTP DATA chunks carry whole
messages (RFC 4168).
"""
from __future__ import annotations

import struct
from collections import OrderedDict

from warpsniff._engine import SIG_CONTROL, SIG_SCTP, SIG_TCP, SIG_UDP, parse_sip
from warpsniff.sip.calls import CallTracker
from warpsniff.sip.tcp import TcpReassembler


class SignallingCorrelator:
    def __init__(self, tracker: CallTracker, tcp: TcpReassembler | None = None):
        self.tracker = tracker
        self.tcp = tcp or TcpReassembler()
        self.corr = tracker.corr_name   # the configured correlation header, for the scanner
        self.sctp_messages = 0
        self.sctp = SctpReassembler()
        # handlers for datagrams on control ports: f(payload, ts, (src16, sport), (dst16, dport))
        self.control_handlers: list = []

    def record(self, ts: float, src: bytes, dst: bytes, sport: int, dport: int, kind: int, tcp_flags: int,
               tcp_seq: int, payload: bytes) -> None:
        """One signalling record other than SIP over UDP, which CallTracker.feed
        takes from the engine's batch itself (a UDP record given here goes the
        same way through CallTracker.message)."""
        tracker = self.tracker
        a, b = (src, sport), (dst, dport)
        if kind == SIG_UDP:
            tracker.message(parse_sip(payload, True, self.corr), payload, ts, a, b)
        elif kind == SIG_TCP:
            for msg, whole in self.tcp.segment((src, sport, dst, dport), tcp_seq, tcp_flags, payload, ts):
                tracker.message(parse_sip(msg, whole, self.corr), msg, ts, a, b)
        elif kind == SIG_SCTP:
            for msg in self.sctp.messages((src, sport, dst, dport), payload):
                self.sctp_messages += 1
                tracker.message(parse_sip(msg, True, self.corr), msg, ts, a, b)
        elif kind == SIG_CONTROL:
            for handler in self.control_handlers:
                handler(payload, ts, a, b)


class SctpReassembler:
    """Whole user messages from SCTP DATA chunks (RFC 9260 section 3.3.1):
    a message split over chunks (B ... E flags) is joined per association
    and stream, in arrival order; a fragment set is bounded in size, and so
    is the number of messages under way (the least recently extended one
    goes first: a flood of first fragments on ever new streams cannot grow
    memory), each drop counted."""

    MAX_MESSAGE = 256 * 1024
    MAX_PARTIAL = 1024

    def __init__(self):
        self.partial: "OrderedDict[tuple, bytearray]" = OrderedDict()   # (association, stream id) -> bytes so far
        self.dropped = 0   # messages under way given up: too large, or pushed out by newer ones

    def messages(self, association: tuple, chunks: bytes):
        off = 0
        while off + 4 <= len(chunks):
            ctype, flags, clen = struct.unpack_from("!BBH", chunks, off)
            if clen < 4 or off + clen > len(chunks):
                return
            if ctype == 0 and clen > 16:  # DATA
                stream = struct.unpack_from("!H", chunks, off + 8)[0]
                data = chunks[off + 16:off + clen]
                key = (association, stream)
                begin, end = flags & 0x02, flags & 0x01
                if begin and end:
                    yield data
                elif begin:
                    if key in self.partial:
                        self.dropped += 1   # restarted before its end
                    self.partial[key] = bytearray(data)
                    self.partial.move_to_end(key)
                    if len(self.partial) > self.MAX_PARTIAL:
                        self.partial.popitem(last=False)
                        self.dropped += 1
                elif key in self.partial:
                    buf = self.partial[key]
                    buf += data
                    if end:
                        del self.partial[key]
                        yield bytes(buf)
                    elif len(buf) > self.MAX_MESSAGE:
                        del self.partial[key]
                        self.dropped += 1
                    else:
                        self.partial.move_to_end(key)
            off += (clen + 3) & ~3
