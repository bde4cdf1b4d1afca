"""SIP over TCP: per-direction stream reassembly and Content-Length framing.

Each direction of a connection is a byte stream. Segments are placed by
sequence number; retransmitted bytes are trimmed, out-of-order segments wait
(bounded), and a hole that does not fill within `gap_timeout` seconds of
capture time is skipped: the message it cut is lost and counted, and framing
resynchronises on the next SIP start line.

A direction that opens with a WebSocket handshake for SIP (or, when the
handshake was not seen, whose bytes are WebSocket frames holding SIP) is framed
by WebSocket instead (sip/websocket.py): each of its messages is one SIP message.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterator, Optional

from warpsniff._engine import SIP_INCOMPLETE, SIP_KEEPALIVE, parse_sip
from warpsniff.sip import websocket
from warpsniff.sip.websocket import WebSocketFrames

SYN, FIN, RST = 0x02, 0x01, 0x04
_START_LINE = re.compile(rb"(?:^|\r?\n)((?:SIP/2\.0 \d{3}|[A-Z]{3,10} \S+ SIP/2\.0)\r?\n)")


@dataclass
class TcpStats:
    segments: int = 0
    retransmitted: int = 0
    out_of_order: int = 0
    gaps_skipped: int = 0
    buffer_overflows: int = 0
    resyncs: int = 0
    streams_evicted: int = 0
    # SIP over WebSocket on these streams (sip/websocket.py)
    websocket_upgrades: int = 0        # directions switched to WebSocket by a handshake
    websocket_joined: int = 0          # directions taken as WebSocket by their frames (no handshake seen)
    websocket_not_sip: int = 0         # WebSocket upgrades without the "sip" subprotocol: ignored
    websocket_messages: int = 0
    websocket_control_frames: int = 0  # close, ping, pong
    websocket_errors: int = 0          # protocol errors (garbage): framing looks for the next message
    websocket_oversize: int = 0        # messages over the size limit, skipped unbuffered


@dataclass
class _Direction:
    next_seq: Optional[int] = None
    buf: bytearray = field(default_factory=bytearray)
    pending: dict = field(default_factory=dict)  # seq -> (payload, ts)
    pending_bytes: int = 0
    gap_since: Optional[float] = None
    websocket: Optional[WebSocketFrames] = None  # set once the handshake switched it
    ignored: bool = False                        # a WebSocket that does not carry SIP
    held: int = 0                                # bytes it held when last counted (TcpReassembler.held)

    def holding(self) -> int:
        return len(self.buf) + self.pending_bytes + (self.websocket.holding() if self.websocket else 0)


def _reverse(key: tuple) -> tuple:
    """The other direction of the connection: (src, sport, dst, dport) swapped."""
    return key[2], key[3], key[0], key[1]


class TcpReassembler:
    """Every direction holds at most `max_buffer` bytes in order and as many
    waiting out of order; all of them together at most `max_held` (a flood of
    connections each stopping inside a large message cannot add up to
    max_streams x max_buffer): past it the least recently active directions
    are dropped, counted as evicted streams."""

    def __init__(self, max_buffer: int = 256 * 1024, gap_timeout: float = 5.0, max_streams: int = 20000,
                 max_websocket_message: int = websocket.MAX_MESSAGE, max_held: int = 64 << 20):
        self.max_buffer = max_buffer
        self.max_websocket_message = max_websocket_message
        self.gap_timeout = gap_timeout
        self.max_streams = max_streams
        self.max_held = max_held
        self.held = 0   # bytes all directions hold, as last counted
        self.streams: "OrderedDict[tuple, _Direction]" = OrderedDict()
        self.stats = TcpStats()

    def _evict_oldest(self) -> None:
        _, d = self.streams.popitem(last=False)
        self.held -= d.held
        self.stats.streams_evicted += 1

    def segment(self, key: tuple, seq: int, flags: int, payload: bytes, ts: float) -> Iterator[tuple]:
        """Feeds one segment of one direction (key = src, sport, dst, dport);
        yields (message, whole) for each complete message: `whole` is True
        when the transport delimited it (WebSocket), so that it is parsed
        like a datagram, without Content-Length framing."""
        self.stats.segments += 1
        d = self.streams.get(key)
        if d is None:
            if not payload and not flags & SYN:
                return
            d = self.streams[key] = _Direction()
            if len(self.streams) > self.max_streams:
                self._evict_oldest()
        else:
            self.streams.move_to_end(key)
        if flags & SYN:
            d.next_seq = (seq + 1) & 0xFFFFFFFF
            d.buf.clear()
            d.pending.clear()
            d.pending_bytes = 0
            d.websocket, d.ignored = None, False   # a new connection on the same ports
        elif payload:
            if d.next_seq is None:
                d.next_seq = seq  # joined mid-connection
            self._place(d, seq, payload, ts)
        yield from self._frame(key, d)
        if flags & (FIN | RST):
            if self.streams.pop(key, None) is d:
                self.held -= d.held
            return
        if self.streams.get(key) is not d:
            return   # pushed out meanwhile
        held = d.holding()
        self.held += held - d.held
        d.held = held
        while self.held > self.max_held and len(self.streams) > 1:
            self._evict_oldest()   # this direction is the most recent: it goes last

    def _place(self, d: _Direction, seq: int, payload: bytes, ts: float) -> None:
        ahead = (seq - d.next_seq) & 0xFFFFFFFF
        if ahead >= 0x80000000:  # starts before what we already have
            overlap = (d.next_seq - seq) & 0xFFFFFFFF
            if overlap >= len(payload):
                self.stats.retransmitted += 1
                return
            payload, ahead = payload[overlap:], 0
        if ahead:
            self.stats.out_of_order += 1
            if seq not in d.pending:
                d.pending[seq] = (payload, ts)
                d.pending_bytes += len(payload)
                if d.gap_since is None:
                    d.gap_since = ts
            if d.pending_bytes > self.max_buffer or ts - d.gap_since > self.gap_timeout:
                self._skip_gap(d)
            return
        d.buf += payload
        d.next_seq = (d.next_seq + len(payload)) & 0xFFFFFFFF
        self._drain_pending(d)
        if len(d.buf) > self.max_buffer:
            self.stats.buffer_overflows += 1
            d.buf.clear()
            if d.websocket:
                d.websocket.lost_sync()

    def _drain_pending(self, d: _Direction) -> None:
        while d.pending:
            progressed = False
            for seq in list(d.pending):
                ahead = (seq - d.next_seq) & 0xFFFFFFFF
                if ahead == 0 or ahead >= 0x80000000:
                    payload, _ = d.pending.pop(seq)
                    d.pending_bytes -= len(payload)
                    overlap = (d.next_seq - seq) & 0xFFFFFFFF if ahead else 0
                    if overlap < len(payload):
                        d.buf += payload[overlap:]
                        d.next_seq = (d.next_seq + len(payload) - overlap) & 0xFFFFFFFF
                    progressed = True
            if not progressed:
                return
        d.gap_since = None

    def _skip_gap(self, d: _Direction) -> None:
        """Gives up on a hole: drop the partial message, continue after it."""
        self.stats.gaps_skipped += 1
        first = min(d.pending, key=lambda s: (s - d.next_seq) & 0xFFFFFFFF)
        d.next_seq = first
        d.buf.clear()
        d.gap_since = None
        self._drain_pending(d)
        if d.websocket:
            d.websocket.lost_sync()   # resumes at the segment after the hole
        else:
            self._resync(d)

    def _resync(self, d: _Direction) -> None:
        m = _START_LINE.search(d.buf)
        if m is None:
            if d.buf:
                self.stats.resyncs += 1
            d.buf.clear()
        elif m.start(1):
            self.stats.resyncs += 1
            del d.buf[:m.start(1)]

    def _frame(self, key: tuple, d: _Direction) -> Iterator[tuple]:
        while d.buf:
            if d.websocket:
                for msg in d.websocket.messages(d.buf):
                    yield msg, True
                return
            if d.ignored:
                d.buf.clear()
                return
            if websocket.starts_http(d.buf):
                switched = self._handshake(key, d)
                if switched is None:
                    return            # the head is still arriving
                if switched:
                    continue
                # any other HTTP: not SIP, the scanner below counts it
            elif self._join_websocket(key, d):
                continue
            h = parse_sip(bytes(d.buf), False)
            if h.status == SIP_INCOMPLETE:
                return
            if h.status == SIP_KEEPALIVE:
                del d.buf[:h.msg_len]
                continue
            if h.msg_len == 0:
                # not a message: skip to the next start line; what is skipped
                # still goes to the parser, so it counts as an error, not lost
                m = _START_LINE.search(d.buf, 1)
                cut = m.start(1) if m else len(d.buf)
                self.stats.resyncs += 1
                junk = bytes(d.buf[:cut])
                del d.buf[:cut]
                yield junk, False
                continue
            msg = bytes(d.buf[:h.msg_len])
            del d.buf[:h.msg_len]
            yield msg, False

    def _join_websocket(self, key: tuple, d: _Direction) -> bool:
        """A WebSocket whose handshake was not seen: the other direction is
        WebSocket already, or this one's bytes begin with a frame that holds
        a SIP message."""
        other = self.streams.get(_reverse(key))
        if other is not None and other.websocket:
            d.websocket = WebSocketFrames.opposite(other.websocket)
        elif d.buf[0] & 0x80 or d.buf[0] < 0x20:      # not text
            d.websocket = WebSocketFrames.joined(self.stats, d.buf, self.max_websocket_message)
        if not d.websocket:
            return False
        self.stats.websocket_joined += 1
        return True

    def _handshake(self, key: tuple, d: _Direction) -> Optional[bool]:
        """An HTTP head at the start of the direction: True when it was a
        WebSocket handshake (consumed; the direction is now WebSocket, or
        ignored if it does not carry SIP), False for any other HTTP, None
        while the head is incomplete."""
        length = websocket.head_length(d.buf)
        if length is None:
            return None
        if not length:
            return False
        hs = websocket.parse_handshake(bytes(d.buf[:length]))
        if not hs.websocket or not (hs.is_request or hs.status == 101):
            return False
        other = self.streams.get(_reverse(key))
        del d.buf[:length]
        if (hs.is_request and not hs.sip) or (other is not None and other.ignored):
            self.stats.websocket_not_sip += hs.is_request
            d.ignored = True
            return True
        # the client masks its frames, the server does not (RFC 6455 section 5.1)
        d.websocket = WebSocketFrames(self.stats, masked=hs.is_request, max_message=self.max_websocket_message)
        self.stats.websocket_upgrades += 1
        if not hs.is_request and hs.deflate:
            # the 101 settles the extension for both directions
            d.websocket.use_deflate(hs.server_no_context_takeover)
            if other is not None and other.websocket:
                other.websocket.use_deflate(hs.client_no_context_takeover)
        return True
