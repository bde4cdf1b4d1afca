"""Builds SIP/RTP captures whose truth the tests choose.

- `Capture` collects frames with explicit capture times (seconds relative to
  `T0_NS`, kept on a nanosecond grid) and writes a nanosecond pcap by hand, so
  the times warpsniff reads are exactly the ones a test wrote.
- `Dialog` writes the SIP messages of one Call-ID (requests from either side,
  responses that copy Via/From/To/Call-ID/CSeq from their request), `sdp()` the
  bodies, `rtp()`/`Capture.rtp_flow()` the media.
- `ts(t)` is the absolute time warpsniff reports for relative time `t`.

Nothing here imports warpsniff.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.sctp import SCTP, SCTPChunkData
from scapy.packet import Raw

NS = 1_000_000_000
T0_NS = 1_700_000_000 * NS  # capture start, whole seconds

# documentation addresses (RFC 5737 / RFC 3849)
ALICE = ("192.0.2.10", 5060)
BOB = ("198.51.100.20", 5060)
FILLER_SRC = ("192.0.2.250", 53)
FILLER_DST = ("192.0.2.251", 53)

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 302: "Moved Temporarily", 401: "Unauthorized",
    404: "Not Found", 407: "Proxy Authentication Required", 408: "Request Timeout",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    486: "Busy Here", 487: "Request Terminated", 500: "Server Internal Error",
    503: "Service Unavailable", 600: "Busy Everywhere", 603: "Decline",
}


# explicit MACs: scapy would otherwise resolve them through the host's routes (slow, noisy)
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


def eth():
    return Ether(src=MAC_A, dst=MAC_B)


def t_ns(t: float) -> int:
    """Relative seconds -> absolute capture time in ns (microsecond grid)."""
    return T0_NS + round(t * 1_000_000) * 1000


def ts(t: float) -> float:
    """What warpsniff reports for a frame written at relative time t."""
    return t_ns(t) / 1e9


# --------------------------------------------------------------------------
# SIP messages


@dataclass
class Msg:
    start: str
    headers: list  # [(name, value)] in order
    body: bytes = b""
    content_length: Optional[str] = "auto"  # "auto", None (omit) or literal text
    length_name: str = "Content-Length"

    def get(self, name: str) -> Optional[str]:
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def all(self, name: str) -> list:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def encode(self) -> bytes:
        lines = [self.start] + [f"{n}: {v}" for n, v in self.headers]
        if self.content_length == "auto":
            lines.append(f"{self.length_name}: {len(self.body)}")
        elif self.content_length is not None:
            lines.append(f"{self.length_name}: {self.content_length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    def __bytes__(self) -> bytes:
        return self.encode()


def response(req: Msg, code: int, *, to_tag: Optional[str] = None, body: bytes = b"",
             extra: Sequence = ()) -> Msg:
    """A response to `req`: Via (all), From, To (+tag), Call-ID, CSeq copied."""
    headers = [("Via", v) for v in req.all("Via")]
    headers.append(("From", req.get("From")))
    to = req.get("To")
    if to_tag and ";tag=" not in to:
        to = f"{to};tag={to_tag}"
    headers.append(("To", to))
    headers.append(("Call-ID", req.get("Call-ID")))
    headers.append(("CSeq", req.get("CSeq")))
    headers.extend(extra)
    if body:
        headers.append(("Content-Type", "application/sdp"))
    return Msg(f"SIP/2.0 {code} {REASONS.get(code, 'Whatever')}", headers, body)


class Dialog:
    """One Call-ID between a caller and a callee (both SIP endpoints)."""

    def __init__(self, call_id: str, caller=ALICE, callee=BOB, *, from_tag: str = "caller-tag",
                 from_user: str = "alice", to_user: str = "bob", transport: str = "UDP"):
        self.call_id = call_id
        self.caller, self.callee = caller, callee
        self.from_tag = from_tag
        self.from_user, self.to_user = from_user, to_user
        self.transport = transport
        self.to_tag: Optional[str] = None
        self._branch = 0

    @property
    def from_uri(self) -> str:
        return f"sip:{self.from_user}@{_host(self.caller[0])}"

    @property
    def to_uri(self) -> str:
        return f"sip:{self.to_user}@{_host(self.callee[0])}"

    def branch(self) -> str:
        self._branch += 1
        return f"z9hG4bK-{self.call_id[:12]}-{self._branch}"

    def request(self, method: str, cseq: int, *, from_callee: bool = False, to_tag: Optional[str] = None,
                branch: Optional[str] = None, body: bytes = b"", extra: Sequence = (),
                cseq_method: Optional[str] = None) -> Msg:
        """A request. From the caller: To carries `to_tag` (None for an initial
        INVITE). From the callee: From = callee with `to_tag`, To = caller."""
        src = self.callee if from_callee else self.caller
        branch = branch or self.branch()
        caller_ref = f"<{self.from_uri}>;tag={self.from_tag}"
        callee_ref = f"<{self.to_uri}>" + (f";tag={to_tag}" if to_tag else "")
        if from_callee:
            ruri, frm, to = self.from_uri, callee_ref, caller_ref
        else:
            ruri, frm, to = self.to_uri, caller_ref, callee_ref
        headers = [
            ("Via", f"SIP/2.0/{self.transport} {_hostport(src)};branch={branch}"),
            ("Max-Forwards", "70"),
            ("From", frm),
            ("To", to),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {cseq_method or method}"),
            ("Contact", f"<sip:{'bob' if from_callee else 'alice'}@{_hostport(src)}>"),
        ]
        headers.extend(extra)
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return Msg(f"{method} {ruri} SIP/2.0", headers, body)

    def invite(self, cseq: int = 1, *, body: bytes = b"", to_tag: Optional[str] = None,
               branch: Optional[str] = None, extra: Sequence = ()) -> Msg:
        return self.request("INVITE", cseq, body=body, to_tag=to_tag, branch=branch, extra=extra)


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def _hostport(ep) -> str:
    return f"{_host(ep[0])}:{ep[1]}"


# --------------------------------------------------------------------------
# SDP and RTP


def sdp(ip: str, port: int, pts: Sequence = ((0, "PCMU", 8000),), *, direction: Optional[str] = None,
        version: int = 1, extra: Sequence[str] = (), pad_attrs: int = 0) -> bytes:
    """An audio offer/answer. `pad_attrs` adds that many a= lines *before* the
    c=/m= lines (to make a large body whose binding needs all of it)."""
    fam = "IP6" if ":" in ip else "IP4"
    lines = ["v=0", f"o=- 1000 {version} IN {fam} {ip}", "s=-"]
    lines += [f"a=x-pad{i}:{'p' * 60}" for i in range(pad_attrs)]
    lines += [f"c=IN {fam} {ip}", "t=0 0",
              f"m=audio {port} RTP/AVP {' '.join(str(p[0]) for p in pts)}"]
    lines += [f"a=rtpmap:{pt} {enc}/{clock}" for pt, enc, clock in pts]
    if direction:
        lines.append(f"a={direction}")
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n").encode()


def rtp(seq: int, rtp_ts: int, ssrc: int, pt: int = 0, marker: bool = False, payload_len: int = 160) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, rtp_ts & 0xFFFFFFFF,
                       ssrc) + b"\xd5" * payload_len


# --------------------------------------------------------------------------
# Frames and files


@dataclass
class Frame:
    t_ns: int
    order: int
    data: bytes


@dataclass
class Capture:
    frames: list = field(default_factory=list)

    def add(self, t: float, pkt) -> None:
        """One link-layer frame (scapy packet or bytes) at relative time t."""
        data = bytes(pkt)
        self.frames.append(Frame(t_ns(t), len(self.frames), data))

    # -- layers --

    @staticmethod
    def ip(src: str, dst: str):
        return IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)

    def udp(self, t: float, src, dst, payload) -> None:
        self.add(t, eth() / self.ip(src[0], dst[0]) / UDP(sport=src[1], dport=dst[1]) / Raw(bytes(payload)))

    def tcp(self, t: float, src, dst, seq: int, payload=b"", flags: str = "PA", ack: int = 1) -> None:
        layer = TCP(sport=src[1], dport=dst[1], seq=seq & 0xFFFFFFFF, ack=ack, flags=flags, window=65535)
        pkt = eth() / self.ip(src[0], dst[0]) / layer
        if payload:
            pkt = pkt / Raw(bytes(payload))
        self.add(t, pkt)

    def sctp(self, t: float, src, dst, payload, tsn: int) -> None:
        chunk = SCTPChunkData(data=bytes(payload), beginning=1, ending=1, tsn=tsn, stream_id=0, proto_id=0)
        self.add(t, eth() / self.ip(src[0], dst[0]) / SCTP(sport=src[1], dport=dst[1], tag=0x1234) / chunk)

    def udp_fragments(self, t: float, src, dst, payload, fragsize: int = 1400, step: float = 0.0001) -> int:
        """An IPv4 UDP datagram as fragments (times t, t+step, ...); returns how many."""
        whole = IP(src=src[0], dst=dst[0], id=0x4242) / UDP(sport=src[1], dport=dst[1]) / Raw(bytes(payload))
        frags = fragment(whole, fragsize=fragsize)
        for i, f in enumerate(frags):
            self.add(t + i * step, eth() / f)
        return len(frags)

    def filler(self, t: float) -> None:
        """Neither SIP nor RTP (UDP port 53): only moves capture time on."""
        self.udp(t, FILLER_SRC, FILLER_DST, b"tick")

    def fillers(self, start: float, stop: float, step: float = 1.0) -> None:
        t = start
        while t <= stop + 1e-9:
            self.filler(t)
            t += step

    def rtp_flow(self, src, dst, ssrc: int, start: float, count: int, *, pt: int = 0, ptime: float = 0.02,
                 seq0: int = 1000, ts0: int = 0, ts_step: int = 160,
                 arrivals: Optional[Sequence[float]] = None) -> list:
        """`count` RTP packets; returns [(arrival, seq, rtp_ts)]."""
        out = []
        for i in range(count):
            t = arrivals[i] if arrivals is not None else start + i * ptime
            seq, rts = seq0 + i, ts0 + i * ts_step
            self.udp(t, src, dst, rtp(seq, rts, ssrc, pt))
            out.append((t, seq, rts))
        return out

    # -- file --

    def write(self, path) -> Path:
        """A nanosecond pcap, Ethernet, frames in time order (stable)."""
        path = Path(path)
        frames = sorted(self.frames, key=lambda f: (f.t_ns, f.order))
        with open(path, "wb") as fh:
            fh.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
            for f in frames:
                sec, nsec = divmod(f.t_ns, NS)
                fh.write(struct.pack("<IIII", sec, nsec, len(f.data), len(f.data)))
                fh.write(f.data)
        return path


def a8_max_jitter_ms(packets: Iterable, clock_rate: int) -> float:
    """RFC 3550 A.8 over (arrival_s_relative, rtp_ts) in arrival order, for a
    stream without markers whose timestamps only go forward: the largest
    running estimate J, in ms. Arrivals go through `t_ns` like the capture's."""
    prev = None
    j = 0.0
    best = 0.0
    for arrival, rtp_ts in packets:
        r = t_ns(arrival)
        if prev is not None:
            d = (r - prev[0]) * 1e-9 * clock_rate - (rtp_ts - prev[1])
            j += (abs(d) - j) / 16.0
            best = max(best, j)
        prev = (r, rtp_ts)
    return best / clock_rate * 1000.0


class TcpConn:
    """One TCP connection between `a` and `b` with explicit sequence numbers."""

    def __init__(self, cap: Capture, a, b, isn_a: int = 100_000, isn_b: int = 700_000):
        self.cap, self.a, self.b = cap, a, b
        self.next = {True: isn_a + 1, False: isn_b + 1}
        self.isn = {True: isn_a, False: isn_b}

    def handshake(self, t: float, step: float = 0.0005) -> None:
        self.cap.tcp(t, self.a, self.b, self.isn[True], flags="S", ack=0)
        self.cap.tcp(t + step, self.b, self.a, self.isn[False], flags="SA", ack=self.next[True])
        self.cap.tcp(t + 2 * step, self.a, self.b, self.next[True], flags="A", ack=self.next[False])

    def send(self, t: float, from_a: bool, data: bytes) -> int:
        """`data` at the next sequence number of that direction; returns its seq."""
        seq = self.next[from_a]
        self.send_at(t, from_a, seq, data)
        self.next[from_a] = seq + len(data)
        return seq

    def reserve(self, from_a: bool, data: bytes) -> int:
        """Takes the sequence range for `data` without sending (for reordering)."""
        seq = self.next[from_a]
        self.next[from_a] = seq + len(data)
        return seq

    def send_at(self, t: float, from_a: bool, seq: int, data: bytes) -> None:
        src, dst = (self.a, self.b) if from_a else (self.b, self.a)
        self.cap.tcp(t, src, dst, seq, data, flags="PA", ack=self.next[not from_a])
