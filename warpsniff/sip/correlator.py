"""Signalling batches from the engine -> SIP messages -> the call tracker.

UDP datagrams are whole messages; TCP segments go through the reassembler;
SCTP DATA chunks carry whole messages (RFC 4168).
"""
from __future__ import annotations

import struct

import numpy as np

from warpsniff._engine import parse_sip
from warpsniff.sip.calls import CallTracker
from warpsniff.sip.tcp import TcpReassembler

SIG_UDP, SIG_TCP, SIG_SCTP, SIG_CONTROL = 1, 2, 3, 4


class SignallingCorrelator:
    def __init__(self, tracker: CallTracker, correlation_header: str | None = None,
                 tcp: TcpReassembler | None = None):
        self.tracker = tracker
        self.tcp = tcp or TcpReassembler()
        self.corr = correlation_header.lower().encode() if correlation_header else None
        self.sctp_messages = 0
        # handlers for datagrams on control ports: f(payload, ts, (src16, sport), (dst16, dport))
        self.control_handlers: list = []

    def batch(self, records: np.ndarray, arena: bytes) -> None:
        tracker, corr = self.tracker, self.corr
        for r in records.tolist():
            ts_ns, src, dst, sport, dport, kind, tcp_flags, _reasm, _fam, tcp_seq, off, length = r
            payload = arena[off:off + length]
            ts = ts_ns / 1e9
            a, b = (src, sport), (dst, dport)
            if kind == SIG_UDP:
                tracker.message(parse_sip(payload, True, corr), payload, ts, a, b)
            elif kind == SIG_TCP:
                for msg in self.tcp.segment((src, sport, dst, dport), tcp_seq, tcp_flags, payload, ts):
                    tracker.message(parse_sip(msg, False, corr), msg, ts, a, b)
            elif kind == SIG_SCTP:
                for msg in sctp_messages(payload):
                    self.sctp_messages += 1
                    tracker.message(parse_sip(msg, True, corr), msg, ts, a, b)
            elif kind == SIG_CONTROL:
                for handler in self.control_handlers:
                    handler(payload, ts, a, b)


def sctp_messages(chunks: bytes):
    """Complete user messages from the DATA chunks of one SCTP packet."""
    off = 0
    while off + 4 <= len(chunks):
        ctype, flags, clen = struct.unpack_from("!BBH", chunks, off)
        if clen < 4:
            return
        if ctype == 0 and clen > 16 and flags & 0x03 == 0x03:  # DATA, B and E: unfragmented
            yield chunks[off + 16:off + clen]
        off += (clen + 3) & ~3
