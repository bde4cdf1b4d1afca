"""SDP offers and answers (RFC 4566, RFC 3264): just what media binding needs.

The call tracker reads bodies with the native scan (ext/sip/ws_sdp.c, one
pass, into a C struct); parse_sdp() gives that scan's result as the
dataclasses below. The few bodies the scan leaves alone (non-ASCII or control
bytes, numbers in forms only Python's int() reads) are parsed by
parse_sdp_text(), which defines what both read.
"""
from __future__ import annotations

import socket
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Optional

from warpsniff._engine import scan_sdp

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_DIRECTION_SET = frozenset(DIRECTIONS)
# RFC 4566 line types that binding has no use for (only m=, c= and a= matter)
_UNUSED_TYPES = frozenset("vosiuepbzktr")


@dataclass
class MediaDescription:
    kind: str                       # audio, video, image, application
    port: int
    proto: str                      # RTP/AVP, RTP/SAVP, udptl, ...
    formats: list                   # payload types (ints) for RTP, raw tokens otherwise
    connection: Optional[str] = None
    rtpmap: dict = field(default_factory=dict)   # pt -> (encoding, clock_rate)
    ptime: Optional[int] = None
    rtcp_port: Optional[int] = None
    rtcp_mux: bool = False
    direction: Optional[str] = None

    @property
    def is_rtp(self) -> bool:
        return "RTP" in self.proto.upper()


@dataclass
class SessionDescription:
    connection: Optional[str] = None
    direction: str = "sendrecv"
    media: list = field(default_factory=list)
    # not a field: m= lines, formats and rtpmaps the native scan left out of a
    # body holding more than it keeps (ws_sdp.h: WS_SDP_MAX_*); 0 on real bodies
    truncated = 0

    def media_direction(self, m: MediaDescription) -> str:
        return m.direction or self.direction


@lru_cache(maxsize=65536)
def _connection_address(value: str) -> Optional[str]:
    # c=IN IP4 192.0.2.1[/ttl]
    parts = value.split()
    if len(parts) < 3 or parts[0] != "IN":
        return None
    addr = parts[2].split("/")[0]
    family = socket.AF_INET6 if parts[1] == "IP6" else socket.AF_INET
    try:
        # normalised text, as the engine's addresses will be compared with it
        return socket.inet_ntop(family, socket.inet_pton(family, addr))
    except (OSError, ValueError):   # ValueError: a NUL byte in the address
        return None


def parse_sdp(body: bytes) -> Optional[SessionDescription]:
    """Parses an SDP body; None when it is not SDP."""
    sdp = scan_sdp(body, SessionDescription, MediaDescription)
    if sdp is False:
        return parse_sdp_text(body)
    return sdp


def parse_sdp_text(body: bytes) -> Optional[SessionDescription]:
    """parse_sdp() in Python, on the decoded text: what the native scan
    reproduces, and what reads the bodies it leaves alone."""
    text = body.decode("utf-8", "replace")
    if not text.lstrip().startswith("v="):
        return None
    sdp = SessionDescription()
    media: Optional[MediaDescription] = None
    for raw in text.splitlines():
        if raw[1:2] == "=" and raw[:1] in _UNUSED_TYPES:
            continue   # v= o= s= t= ...: nothing below reads them
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            parts = value.split()
            if len(parts) < 3:
                media = None
                continue
            try:
                port = int(parts[1].split("/")[0])
            except ValueError:
                media = None
                continue
            formats = []
            for tok in parts[3:]:
                formats.append(int(tok) if tok.isdigit() else tok)
            media = MediaDescription(kind=parts[0], port=port, proto=parts[2], formats=formats)
            sdp.media.append(media)
        elif kind == "c":
            addr = _connection_address(value)
            if media is None:
                sdp.connection = addr
            else:
                media.connection = addr
        elif kind == "a":
            name, _, arg = value.partition(":")
            if name in _DIRECTION_SET:
                if media is None:
                    sdp.direction = name
                else:
                    media.direction = name
            elif media is None:
                continue
            elif name == "rtpmap":
                pt_text, _, enc = arg.partition(" ")
                enc_name, _, rest = enc.strip().partition("/")
                clock_text = rest.partition("/")[0]
                if pt_text.isdigit() and clock_text.isdigit():
                    media.rtpmap[int(pt_text)] = (enc_name, int(clock_text))
            elif name == "ptime" and arg.strip().isdigit():
                media.ptime = int(arg.strip())
            elif name == "rtcp":
                port_text = arg.split()[0] if arg.split() else ""
                if port_text.isdigit():
                    media.rtcp_port = int(port_text)
            elif name == "rtcp-mux":
                media.rtcp_mux = True
    return sdp
