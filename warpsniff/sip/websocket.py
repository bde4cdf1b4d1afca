"""SIP over WebSocket (RFC 7118) on one reassembled TCP direction.

A connection becomes WebSocket with the HTTP/1.1 opening handshake (RFC 6455
section 4): a GET with `Upgrade: websocket`, offering the `sip` subprotocol in
`Sec-WebSocket-Protocol` (RFC 7118 section 4.1), answered by
`101 Switching Protocols`. After its head, each direction is a sequence of
frames (RFC 6455 section 5.2): FIN, three RSV bits, an opcode, a 7-, 16- or
64-bit payload length, and, from the client only, a 4-byte masking key
(section 5.3). A message is one text or binary frame, or such a frame without
FIN followed by continuation frames (section 5.4); control frames (close, ping,
pong, section 5.5) may come between the fragments. Each message is exactly one
SIP message (RFC 7118), so it needs no Content-Length framing.

The `permessage-deflate` extension (RFC 7692), when the 101 accepts it,
compresses a message's payload (RSV1 on its first frame); it is inflated here.

WSS (WebSocket over TLS) is encrypted: without the session keys nothing of it
can be read, not even its handshake, so nothing of it is decoded.
"""
from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from typing import Iterator, Optional

MAX_HEAD = 16 * 1024          # an opening handshake longer than this is not one
MAX_MESSAGE = 128 * 1024      # a SIP message larger than this is dropped (counted)
MAX_FRAME = 16 * 1024 * 1024  # a frame claiming more is garbage, not a message to skip

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
_DATA_OPS = (OP_CONTINUATION, OP_TEXT, OP_BINARY)
_CONTROL_OPS = (OP_CLOSE, OP_PING, OP_PONG)
_DEFLATE_TAIL = b"\x00\x00\xff\xff"   # RFC 7692 section 7.2.2: the sender strips it, we put it back

# where a frame may start: FIN or not, no RSV2/RSV3, text or binary; its
# payload must then begin like a SIP message (start line or CRLF keep-alive)
_DATA_FRAME_START = re.compile(rb"[\x01\x02\x41\x42\x81\x82\xc1\xc2]")
_SIP_START = re.compile(rb"SIP/2\.0 \d|[A-Z][A-Z-]{1,31} [^ \r\n]|\r\n")
_HEADER_LINE = re.compile(rb"\r\n([!#-'*+.0-9A-Z^-z|~-]+):[ \t]*([^\r\n]*)")


def starts_http(buf: bytearray) -> bool:
    """Could `buf` begin a handshake head (a GET, or an HTTP/1.x response)?"""
    return buf[:4] == b"GET " or buf[:7] == b"HTTP/1."


def head_length(buf: bytearray) -> Optional[int]:
    """Length of the HTTP head at the start of `buf`, blank line included;
    None while it may still be arriving, 0 when it is too long to be one."""
    end = buf.find(b"\r\n\r\n", 0, MAX_HEAD)
    if end >= 0:
        return end + 4
    return None if len(buf) < MAX_HEAD else 0


@dataclass(frozen=True)
class Handshake:
    """What an HTTP head says about a WebSocket upgrade."""
    is_request: bool
    status: int                   # the response's status code; 0 for a request
    websocket: bool               # Upgrade: websocket
    sip: bool                     # "sip" among the Sec-WebSocket-Protocol values
    deflate: bool                 # permessage-deflate named in Sec-WebSocket-Extensions
    client_no_context_takeover: bool = False
    server_no_context_takeover: bool = False


def parse_handshake(head: bytes) -> Handshake:
    start, _, _ = head.partition(b"\r\n")
    is_request = start.startswith(b"GET ")
    status = 0
    if not is_request:
        parts = start.split(b" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
    fields: dict[bytes, list] = {}
    for name, value in _HEADER_LINE.findall(head):
        fields.setdefault(name.lower(), []).extend(
            t.strip().lower() for t in value.split(b","))   # header values are comma-separated lists
    upgrade = fields.get(b"upgrade", [])
    protocols = fields.get(b"sec-websocket-protocol", [])
    extensions = fields.get(b"sec-websocket-extensions", [])
    deflate = [e for e in extensions if e.split(b";")[0].strip() == b"permessage-deflate"]
    params = {p.strip().split(b"=")[0] for p in deflate[0].split(b";")[1:]} if deflate else set()
    return Handshake(is_request, status, b"websocket" in upgrade, b"sip" in protocols, bool(deflate),
                     b"client_no_context_takeover" in params, b"server_no_context_takeover" in params)


def unmask(data: bytes, key: bytes) -> bytes:
    """RFC 6455 section 5.3: byte i XOR key[i % 4] (as one big-integer XOR)."""
    n = len(data)
    if not n:
        return b""
    pad = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(pad, "little")).to_bytes(n, "little")


class WebSocketFrames:
    """The frames of one direction -> its messages.

    `masked` is what the direction must send: True from the client, False
    from the server (section 5.1); a frame that disagrees, like any other
    protocol error, is counted, and decoding resumes at the next place where
    a text or binary frame begins a SIP message (after a hole in the TCP
    stream too: the bytes after a hole are seldom a frame's first). A message
    larger than `max_message` is skipped frame by frame without being
    buffered, and counted."""

    def holding(self) -> int:
        """Bytes of a message under way."""
        return len(self._message)

    def __init__(self, stats, masked: bool, max_message: int = MAX_MESSAGE):
        self.stats = stats
        self.masked = masked
        self.max_message = max_message
        self.deflate = False
        self.no_context_takeover = False
        self._inflater = None
        self._message = bytearray()
        self._open = False            # a fragmented message is under way
        self._compressed = False      # ... and its first frame had RSV1 (permessage-deflate)
        self._dropping = False        # ... and it is over the size limit
        self._skip = 0                # payload bytes of an oversized frame still to discard
        self._searching = False       # lost the frame boundaries: look for a message start

    def use_deflate(self, no_context_takeover: bool) -> None:
        self.deflate = True
        self.no_context_takeover = no_context_takeover

    def lost_sync(self) -> None:
        """The byte stream had a hole: whatever was under way is gone."""
        self._reset_message()
        self._skip = 0
        self._inflater = None         # its window depended on the lost bytes
        self._searching = True

    def messages(self, buf: bytearray) -> Iterator[bytes]:
        """Consumes every complete frame at the start of `buf`; yields messages."""
        while buf:
            if self._searching:
                start = self._find_message_start(buf)
                if start is None:
                    buf.clear()
                    return
                del buf[:start]
                self._searching = False
            if self._skip:
                n = min(self._skip, len(buf))
                del buf[:n]
                self._skip -= n
                continue
            frame = self._header(buf)
            if frame is None:
                return
            if frame is False:
                self._error(buf)
                continue
            fin, rsv1, opcode, start, length, key = frame
            if opcode in _CONTROL_OPS:
                if len(buf) < start + length:
                    return
                del buf[:start + length]          # close, ping, pong: nothing for SIP
                self.stats.websocket_control_frames += 1
                continue
            if (opcode == OP_CONTINUATION) != self._open:
                # a continuation with no message under way, or a new message inside one
                self._error(buf)
                continue
            if opcode != OP_CONTINUATION:
                self._compressed = rsv1
            if self._dropping or len(self._message) + length > self.max_message:
                if not self._dropping:
                    self.stats.websocket_oversize += 1
                    self._dropping = True
                    self._message.clear()
                del buf[:start]
                self._skip = length
            else:
                if len(buf) < start + length:
                    return                        # the frame is still arriving
                payload = bytes(buf[start:start + length])
                del buf[:start + length]
                self._message += unmask(payload, key) if key else payload
            self._open = True
            if fin:
                message = None if self._dropping else self._finish()
                self._reset_message()
                if message:
                    self.stats.websocket_messages += 1
                    yield message

    def _header(self, buf: bytearray):
        """(fin, rsv1, opcode, payload offset, length, key); None while
        incomplete; False for a protocol error."""
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        fin, rsv1, opcode = bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F
        masked, length, start = bool(b1 & 0x80), b1 & 0x7F, 2
        if b0 & 0x30 or masked != self.masked or opcode not in _DATA_OPS + _CONTROL_OPS:
            return False                          # RSV2/RSV3 belong to no extension we know
        if rsv1 and not (self.deflate and opcode in (OP_TEXT, OP_BINARY)):
            return False                          # RSV1 only marks a compressed message's first frame
        if opcode in _CONTROL_OPS and (not fin or length > 125):
            return False                          # section 5.5: control frames are short and whole
        if length == 126:
            start = 4
            if len(buf) < start:
                return None
            length = struct.unpack_from("!H", buf, 2)[0]
        elif length == 127:
            start = 10
            if len(buf) < start:
                return None
            length = struct.unpack_from("!Q", buf, 2)[0]
            if length >> 63:
                return False                      # section 5.2: the top bit must be 0
        if length > MAX_FRAME:
            return False
        key = b""
        if masked:
            if len(buf) < start + 4:
                return None
            key = bytes(buf[start:start + 4])
            start += 4
        return fin, rsv1, opcode, start, length, key

    @classmethod
    def joined(cls, stats, buf: bytearray, max_message: int = MAX_MESSAGE) -> Optional["WebSocketFrames"]:
        """Frames met without their handshake (the capture, or the engine's
        following of the connection, began after it): a direction whose bytes
        begin with a text or binary frame holding a SIP message is taken as
        WebSocket, from the client if that frame is masked. Whether
        permessage-deflate was agreed cannot be known: compressed frames are
        errors."""
        if len(buf) < 2:
            return None
        frames = cls(stats, masked=bool(buf[1] & 0x80), max_message=max_message)
        return frames if frames._starts_message(buf, 0) else None

    @classmethod
    def opposite(cls, other: "WebSocketFrames") -> "WebSocketFrames":
        """The other direction of a WebSocket joined mid-stream: its bytes
        may begin inside a frame, so it starts at its first frame that holds
        a SIP message."""
        frames = cls(other.stats, masked=not other.masked, max_message=other.max_message)
        frames._searching = True
        return frames

    def _find_message_start(self, buf: bytearray) -> Optional[int]:
        """The first offset where a data frame starts a SIP message."""
        for m in _DATA_FRAME_START.finditer(buf):
            if self._starts_message(buf, m.start()):
                return m.start()
        return None

    def _starts_message(self, buf: bytearray, i: int) -> bool:
        """Does a text or binary frame start at `i` whose payload, unmasked
        (and inflated), begins like a SIP message?"""
        frame = self._header(buf[i:i + 14])
        if not frame or frame[2] not in (OP_TEXT, OP_BINARY):
            return False
        _fin, rsv1, _opcode, start, length, key = frame
        peek = bytes(buf[i + start:i + start + min(length, 64)])
        if key:
            peek = unmask(peek, key)
        if rsv1:
            try:
                peek = zlib.decompressobj(-zlib.MAX_WBITS).decompress(peek, 64)
            except zlib.error:
                return False
        return bool(_SIP_START.match(peek))

    def _finish(self) -> Optional[bytes]:
        message = bytes(self._message)
        if not self._compressed:
            return message
        if self._inflater is None or self.no_context_takeover:
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            out = self._inflater.decompress(message + _DEFLATE_TAIL, self.max_message + 1)
        except zlib.error:
            self.stats.websocket_errors += 1
            self._inflater = None
            return None
        if len(out) > self.max_message or self._inflater.unconsumed_tail:
            self.stats.websocket_oversize += 1
            self._inflater = None             # the window is incomplete from here on
            return None
        if self._inflater.eof:
            self._inflater = None             # BFINAL ended the stream: the next message starts one
        return out

    def _reset_message(self) -> None:
        self._message.clear()
        self._open = self._compressed = self._dropping = False

    def _error(self, buf: bytearray) -> None:
        self.stats.websocket_errors += 1
        del buf[:1]
        self._reset_message()
        self._searching = True
