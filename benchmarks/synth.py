"""Deterministic SIP + RTP capture generator.

Every call is INVITE (SDP offer: PCMU, PCMA, telephone-event 101) -> 100 ->
180 -> 200 (SDP answer) -> ACK -> G.711 RTP both ways (20 ms, 160-byte
payloads) -> BYE -> 200, or one of the variants the bundled sample needs
(486 Busy, CANCEL -> 487, 183 early media, RFC 4733 DTMF). Loss is drawn per
packet, arrival jitter is a uniform offset added to the nominal send time, and
the ground truth of every stream (sent, dropped, received, RFC 3550 expected
and lost, reordered) is written to a JSON sidecar.

Speed: scapy builds one Ethernet/IPv4/UDP/RTP template per stream and every
SIP message; the RTP packets themselves are stamped out of the templates with
numpy (IP id and checksum, RTP sequence, timestamp and marker, pcap time) in
chunks, merged in arrival order and streamed to a classic microsecond pcap.
One million packets take a few seconds.

    python -m benchmarks.synth --calls 500 --packets 1000000 --loss 0.005 \\
        --jitter-ms 5 --seed 1 -o out.pcap        # + out.json (ground truth)
    python -m benchmarks.synth --sample           # pcaps/sample-calls.pcap

Determinism: the same arguments give the same bytes with the same numpy
version (numpy's PCG64 generator, seeded per call from (seed, call index)).
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

SYNTH_VERSION = 1
EPOCH_NS = 1_700_000_000 * 10**9   # 2023-11-14T22:13:20Z: capture clock origin
PTIME_NS = 20_000_000
SAMPLES_PER_PACKET = 160            # 20 ms of 8 kHz G.711
CODECS = {0: "PCMU", 8: "PCMA"}
SILENCE = {0: 0xFF, 8: 0xD5}
DTMF_PT = 101
DTMF_EVENTS = {c: i for i, c in enumerate("0123456789*#")}
SIP_PORT = 5060
WRITE_CHUNK = 1 << 16
ADDRESS_BLOCK = 250 * 256          # calls per pair of 10.x/16 networks (caller, callee)
MAX_CALLS = 1_000_000              # keeps caller/callee numbers at 7 digits

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_PCAP = os.path.join(REPO, "pcaps", "sample-calls.pcap")


@dataclass
class CallSpec:
    """One call to generate. Times are relative to EPOCH_NS."""

    index: int
    kind: str = "answered"     # answered | early | busy | cancel
    packets: int = 250         # RTP packets per direction after the answer
    start_ns: int = 0
    codec: int = 0             # 0 PCMU, 8 PCMA
    loss: float = 0.0          # per-packet random loss, both directions
    drop_exact: dict = field(default_factory=dict)  # "a"/"b" -> packets dropped at random interior slots
    dtmf: str = ""             # digits the caller sends as RFC 4733 events
    ring_ms: tuple = (500.0, 2000.0)
    note: str = ""


# ---------------------------------------------------------------------------
# SIP

def _sdp(ip: str, port: int, sess: int, pts: list) -> bytes:
    lines = [
        "v=0",
        f"o=- {sess} {sess} IN IP4 {ip}",
        "s=warpsniff-synth",
        f"c=IN IP4 {ip}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {' '.join(str(p) for p in pts)}",
    ]
    for pt in pts:
        if pt == DTMF_PT:
            lines += [f"a=rtpmap:{DTMF_PT} telephone-event/8000", f"a=fmtp:{DTMF_PT} 0-16"]
        else:
            lines.append(f"a=rtpmap:{pt} {CODECS[pt]}/8000")
    lines += ["a=ptime:20", "a=sendrecv"]
    return ("\r\n".join(lines) + "\r\n").encode()


def _sip(start: str, headers: list, body: bytes = b"") -> bytes:
    hs = list(headers)
    if body:
        hs.append("Content-Type: application/sdp")
    hs.append(f"Content-Length: {len(body)}")
    return (start + "\r\n" + "\r\n".join(hs) + "\r\n\r\n").encode() + body


class _Call:
    """Addresses, identifiers and SIP message builders of one call."""

    def __init__(self, spec: CallSpec, rng: np.random.Generator):
        i = spec.index
        # calls 0..ADDRESS_BLOCK-1 in 10.1/16 -> 10.2/16, the next block in 10.3 -> 10.4, ...
        block, j = divmod(i, ADDRESS_BLOCK)
        x, y = divmod(j, 250)
        net_a, net_b = 1 + 2 * block, 2 + 2 * block
        self.a_ip = f"10.{net_a}.{x}.{y + 1}"
        self.b_ip = f"10.{net_b}.{x}.{y + 1}"
        self.a_mac = f"02:00:0a:{net_a:02x}:{x:02x}:{y + 1:02x}"
        self.b_mac = f"02:00:0a:{net_b:02x}:{x:02x}:{y + 1:02x}"
        self.a_user = f"1{i:06d}"
        self.b_user = f"2{i:06d}"
        self.a_rtp = 16384 + 2 * int(rng.integers(0, 8000))
        self.b_rtp = 16384 + 2 * int(rng.integers(0, 8000))
        self.call_id = f"{int(rng.integers(0, 1 << 62)):016x}@{self.a_ip}"
        self.from_tag = f"{int(rng.integers(0, 1 << 31)):08x}"
        self.to_tag = f"{int(rng.integers(0, 1 << 31)):08x}"
        self.branch = f"z9hG4bK{int(rng.integers(0, 1 << 62)):x}"
        self.bye_branch = f"z9hG4bK{int(rng.integers(0, 1 << 62)):x}"
        self.ack_branch = f"z9hG4bK{int(rng.integers(0, 1 << 62)):x}"
        self.sess_a = int(rng.integers(1, 1 << 31))
        self.sess_b = int(rng.integers(1, 1 << 31))
        self.codec = spec.codec

    def _req_headers(self, method: str, cseq: int, branch: str, to_tag: bool) -> list:
        to = f"<sip:{self.b_user}@{self.b_ip}>" + (f";tag={self.to_tag}" if to_tag else "")
        return [
            f"Via: SIP/2.0/UDP {self.a_ip}:{SIP_PORT};branch={branch}",
            "Max-Forwards: 70",
            f"From: <sip:{self.a_user}@{self.a_ip}>;tag={self.from_tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
        ]

    def request(self, method: str, cseq: int = 1, with_sdp: bool = False) -> bytes:
        branch = {"BYE": self.bye_branch, "ACK": self.ack_branch}.get(method, self.branch)
        if method == "ACK" and not with_sdp and self._ack_non2xx:
            branch = self.branch  # ACK of a non-2xx final answer stays in the INVITE transaction
        hs = self._req_headers(method, cseq, branch, to_tag=method in ("ACK", "BYE") and self._dialog)
        hs.append(f"Contact: <sip:{self.a_user}@{self.a_ip}:{SIP_PORT}>")
        if method == "INVITE":
            hs.append("Allow: INVITE, ACK, CANCEL, BYE, OPTIONS")
        hs.append("User-Agent: warpsniff-synth")
        body = _sdp(self.a_ip, self.a_rtp, self.sess_a, self._offer_pts()) if method == "INVITE" else b""
        target = f"sip:{self.b_user}@{self.b_ip}"
        return _sip(f"{method} {target} SIP/2.0", hs, body)

    def response(self, code: int, reason: str, method: str = "INVITE", cseq: int = 1,
                 with_sdp: bool = False, tag: bool = True) -> bytes:
        branch = self.bye_branch if method == "BYE" else self.branch
        to = f"<sip:{self.b_user}@{self.b_ip}>" + (f";tag={self.to_tag}" if tag else "")
        hs = [
            f"Via: SIP/2.0/UDP {self.a_ip}:{SIP_PORT};branch={branch}",
            f"From: <sip:{self.a_user}@{self.a_ip}>;tag={self.from_tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
        ]
        if method == "INVITE" and code < 300 and code > 100:
            hs.append(f"Contact: <sip:{self.b_user}@{self.b_ip}:{SIP_PORT}>")
        hs.append("Server: warpsniff-synth")
        body = _sdp(self.b_ip, self.b_rtp, self.sess_b, [self.codec, DTMF_PT]) if with_sdp else b""
        return _sip(f"SIP/2.0 {code} {reason}", hs, body)

    def _offer_pts(self) -> list:
        return [0, 8, DTMF_PT] if self.codec == 0 else [8, 0, DTMF_PT]

    _dialog = True
    _ack_non2xx = False


# ---------------------------------------------------------------------------
# packet templates

class _Templates:
    """scapy-built frames; imported lazily (scapy's import is slow)."""

    def __init__(self, vlan: int = 0):
        from scapy.all import IP, UDP, Dot1Q, Ether, Raw  # noqa: F401

        self._scapy = (Ether, Dot1Q, IP, UDP, Raw)
        self.vlan = vlan

    def frame(self, smac, dmac, sip, dip, sport, dport, payload: bytes, ip_id: int = 0,
              udp_checksum: bool = True) -> bytes:
        Ether, Dot1Q, IP, UDP, Raw = self._scapy
        eth = Ether(src=smac, dst=dmac)
        if self.vlan:
            eth = eth / Dot1Q(vlan=self.vlan)
        udp = UDP(sport=sport, dport=dport) if udp_checksum else UDP(sport=sport, dport=dport, chksum=0)
        return bytes(eth / IP(src=sip, dst=dip, id=ip_id, flags="DF", ttl=64) / udp / Raw(payload))

    @property
    def ip_off(self) -> int:
        return 14 + (4 if self.vlan else 0)


def _fold(s):
    s = (s & 0xFFFF) + (s >> 16)
    return (s & 0xFFFF) + (s >> 16)


@dataclass
class _Stream:
    call: int
    direction: str          # "a" caller->callee, "b" callee->caller
    src: str
    dst: str
    sport: int
    dport: int
    ssrc: int
    seq0: int
    ts0: int
    ipid0: int
    pt: int
    template: bytes         # voice frame with ip id 0, UDP checksum 0
    base_sum: int           # folded IPv4 header sum with id 0 and checksum 0
    k: np.ndarray           # kept slots (sequence offsets), in slot order
    arrival: np.ndarray     # their arrival times, ns relative to EPOCH_NS
    event: np.ndarray       # bool: slot carries an RFC 4733 event, not voice
    events: dict            # slot -> (event code, end bit, duration, marker, ts slot)
    sent: int
    dtmf_packets: int


def _stream_plan(spec: CallSpec, rng: np.random.Generator, direction: str, start_ns: int,
                 n: int, jitter_ns: int, events: dict) -> tuple:
    """Slots 0..n-1 sent every 20 ms from start_ns; returns (kept k, arrival, event mask)."""
    k = np.arange(n, dtype=np.int64)
    drop = np.zeros(n, dtype=bool)
    if spec.loss > 0:
        drop |= rng.random(n) < spec.loss
    exact = spec.drop_exact.get(direction, 0)
    if exact:
        lo, hi = 5, max(6, n - 5)
        drop[rng.choice(np.arange(lo, hi), size=min(exact, hi - lo), replace=False)] = True
    offs = rng.integers(0, jitter_ns + 1, n) if jitter_ns > 0 else np.zeros(n, dtype=np.int64)
    arrival = start_ns + k * PTIME_NS + offs
    keep = ~drop
    ev = np.zeros(n, dtype=bool)
    if events:
        ev[list(events)] = True
    return k[keep], arrival[keep], ev[keep]


def _dtmf_slots(digits: str, n: int) -> dict:
    """RFC 4733 events: per digit three packets with growing duration, then
    three end packets; all carry the timestamp of the event's first slot."""
    events = {}
    if not digits:
        return events
    step = max(8, (n - 10) // (len(digits) + 1))
    for j, d in enumerate(digits):
        first = 10 + j * step
        if first + 6 > n - 2:
            break
        code = DTMF_EVENTS[d]
        for m in range(6):
            end = m >= 3
            dur = SAMPLES_PER_PACKET * (min(m, 2) + 1)
            events[first + m] = (code, end, dur, m == 0, first)
    return events


def build_call(spec: CallSpec, seed: int, jitter_ns: int, tm: _Templates):
    """-> (sip frames [(t_ns, bytes)], streams [_Stream], call truth dict)."""
    rng = np.random.default_rng([seed, spec.index])
    c = _Call(spec, rng)
    t = spec.start_ns
    sip = []

    def a2b(when, msg):
        sip.append((int(when), tm.frame(c.a_mac, c.b_mac, c.a_ip, c.b_ip, SIP_PORT, SIP_PORT, msg,
                                        ip_id=int(rng.integers(0, 65536)))))

    def b2a(when, msg):
        sip.append((int(when), tm.frame(c.b_mac, c.a_mac, c.b_ip, c.a_ip, SIP_PORT, SIP_PORT, msg,
                                        ip_id=int(rng.integers(0, 65536)))))

    ms = 1_000_000
    u = lambda lo, hi: int(rng.uniform(lo, hi) * ms)  # noqa: E731
    truth = {"call": spec.index, "call_id": c.call_id, "kind": spec.kind, "note": spec.note,
             "caller": f"{c.a_user}@{c.a_ip}", "callee": f"{c.b_user}@{c.b_ip}",
             "codec": CODECS[spec.codec], "payload_type": spec.codec,
             "invite_ns": EPOCH_NS + t, "streams": []}
    a2b(t, c.request("INVITE"))
    t_100 = t + u(1, 5)
    b2a(t_100, c.response(100, "Trying", tag=False))
    streams = []
    if spec.kind == "busy":
        t_486 = t_100 + u(100, 300)
        b2a(t_486, c.response(486, "Busy Here"))
        c._ack_non2xx = True
        a2b(t_486 + u(1, 5), c.request("ACK"))
        truth.update(final=486, answer_ns=None, end_ns=EPOCH_NS + t_486)
        return sip, streams, truth
    if spec.kind == "cancel":
        t_180 = t_100 + u(20, 80)
        b2a(t_180, c.response(180, "Ringing"))
        t_cancel = t_180 + u(1000, 3000)
        c._dialog = False
        a2b(t_cancel, c.request("CANCEL"))
        b2a(t_cancel + u(1, 5), c.response(200, "OK", method="CANCEL"))
        t_487 = t_cancel + u(5, 10)
        b2a(t_487, c.response(487, "Request Terminated"))
        c._ack_non2xx = True
        c._dialog = True
        a2b(t_487 + u(1, 5), c.request("ACK"))
        truth.update(final=487, answer_ns=None, end_ns=EPOCH_NS + t_487)
        return sip, streams, truth

    early_slots = 0
    if spec.kind == "early":
        t_183 = t_100 + u(80, 150)
        b2a(t_183, c.response(183, "Session Progress", with_sdp=True))
        b_start = t_183 + u(5, 15)
        t_200 = t_183 + u(*spec.ring_ms)
        early_slots = (t_200 - b_start) // PTIME_NS
        truth["early_media_packets"] = int(early_slots)
    else:
        t_180 = t_100 + u(20, 80)
        b2a(t_180, c.response(180, "Ringing"))
        t_200 = t_180 + u(*spec.ring_ms)
        b_start = t_200 + u(5, 15)
    b2a(t_200, c.response(200, "OK", with_sdp=True))
    t_ack = t_200 + u(1, 5)
    a2b(t_ack, c.request("ACK"))
    a_start = t_ack + u(5, 15)
    n_a, n_b = spec.packets, spec.packets + early_slots

    # per-stream identifiers, then the slot plans (fixed draw order)
    ids = {}
    for d in "ab":
        ids[d] = dict(ssrc=int(rng.integers(1, 1 << 32)), seq0=int(rng.integers(0, 1 << 16)),
                      ts0=int(rng.integers(0, 1 << 32)), ipid0=int(rng.integers(0, 1 << 16)),
                      payload=bytes([SILENCE[spec.codec] ^ int(v) for v in rng.integers(0, 4, SAMPLES_PER_PACKET)]))
    a_events = _dtmf_slots(spec.dtmf, n_a)
    plans = {
        "a": (c.a_mac, c.b_mac, c.a_ip, c.b_ip, c.a_rtp, c.b_rtp, a_start, n_a, a_events),
        "b": (c.b_mac, c.a_mac, c.b_ip, c.a_ip, c.b_rtp, c.a_rtp, b_start, n_b, {}),
    }
    last_send = 0
    for d in "ab":
        smac, dmac, sip_, dip, sport, dport, start, n, events = plans[d]
        k, arrival, ev = _stream_plan(spec, rng, d, start, n, jitter_ns, events)
        idd = ids[d]
        rtp = struct.pack("!BBHII", 0x80, spec.codec, 0, 0, idd["ssrc"]) + idd["payload"]
        tmpl = tm.frame(smac, dmac, sip_, dip, sport, dport, rtp, ip_id=0, udp_checksum=False)
        ip = tm.ip_off
        csum = struct.unpack_from("!H", tmpl, ip + 10)[0]
        streams.append(_Stream(
            call=spec.index, direction=d, src=f"{sip_}:{sport}", dst=f"{dip}:{dport}", sport=sport, dport=dport,
            ssrc=idd["ssrc"], seq0=idd["seq0"], ts0=idd["ts0"], ipid0=idd["ipid0"], pt=spec.codec,
            template=tmpl, base_sum=(~csum) & 0xFFFF, k=k, arrival=arrival, event=ev, events=events,
            sent=n, dtmf_packets=int(ev.sum())))
        last_send = max(last_send, start + (n - 1) * PTIME_NS)
    t_bye = last_send + jitter_ns + u(20, 40)
    a2b(t_bye, c.request("BYE", cseq=2))
    t_ok = t_bye + u(1, 5)
    b2a(t_ok, c.response(200, "OK", method="BYE", cseq=2))
    truth.update(final=200, answer_ns=EPOCH_NS + t_200, end_ns=EPOCH_NS + t_bye)
    if spec.dtmf:
        truth["dtmf"] = spec.dtmf
    return sip, streams, truth


def _event_frame(s: _Stream, k: int, ip_off: int, tm: _Templates, macs) -> bytes:
    """One RFC 4733 packet, built from the voice template's headers."""
    code, end, dur, marker, first = s.events[k]
    payload = struct.pack("!BBH", code, (0x80 if end else 0) | 10, dur)
    hdr = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | DTMF_PT, (s.seq0 + k) & 0xFFFF,
                      (s.ts0 + SAMPLES_PER_PACKET * first) & 0xFFFFFFFF, s.ssrc)
    src, sport = s.src.rsplit(":", 1)
    dst, dport = s.dst.rsplit(":", 1)
    return tm.frame(macs[0], macs[1], src, dst, int(sport), int(dport), hdr + payload,
                    ip_id=(s.ipid0 + k) & 0xFFFF)


# ---------------------------------------------------------------------------
# writing

def _pcap_record(t_ns: int, frame: bytes) -> bytes:
    t = EPOCH_NS + t_ns
    return struct.pack("<IIII", t // 10**9, (t % 10**9) // 1000, len(frame), len(frame)) + frame


def generate(specs: list, out_path: str, seed: int, jitter_ms: float = 0.0, vlan: int = 0,
             truth_path: Optional[str] = None, params: Optional[dict] = None, quiet: bool = False) -> dict:
    """Writes the capture and its ground truth; returns the truth document."""
    t_start = time.perf_counter()
    tm = _Templates(vlan)
    jitter_ns = int(round(jitter_ms * 1e6))
    others: list = []       # (t_ns, pcap record bytes): SIP and RFC 4733 packets
    streams: list = []
    calls: list = []
    for spec in specs:
        sip, sts, truth = build_call(spec, seed, jitter_ns, tm)
        others += [(t, _pcap_record(t, fr)) for t, fr in sip]
        truth["sip_messages"] = len(sip)
        for s in sts:
            truth["streams"].append(len(streams))
            streams.append(s)
        calls.append(truth)

    # voice packets, as parallel arrays over every stream
    ip = 16 + tm.ip_off
    rtp = ip + 20 + 8
    reclen = 16 + len(streams[0].template) if streams else 0
    tmpl = np.zeros((max(1, len(streams)), reclen), dtype=np.uint8)
    v_stream, v_k, v_time = [], [], []
    for i, s in enumerate(streams):
        if 16 + len(s.template) != reclen:
            raise ValueError("every voice template must have the same length")
        tmpl[i] = np.frombuffer(struct.pack("<IIII", 0, 0, len(s.template), len(s.template)) + s.template,
                                dtype=np.uint8)
        voice = ~s.event
        v_stream.append(np.full(int(voice.sum()), i, dtype=np.int64))
        v_k.append(s.k[voice])
        v_time.append(s.arrival[voice])
        macs = (":".join(f"{b:02x}" for b in s.template[6:12]), ":".join(f"{b:02x}" for b in s.template[0:6]))
        for k, t in zip(s.k[s.event], s.arrival[s.event]):
            others.append((int(t), _pcap_record(int(t), _event_frame(s, int(k), ip, tm, macs))))
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, dtype=np.int64)  # noqa: E731
    v_stream, v_k, v_time = cat(v_stream), cat(v_k), cat(v_time)
    base_sum = np.array([s.base_sum for s in streams] or [0], dtype=np.int64)
    ipid0 = np.array([s.ipid0 for s in streams] or [0], dtype=np.int64)
    seq0 = np.array([s.seq0 for s in streams] or [0], dtype=np.int64)
    ts0 = np.array([s.ts0 for s in streams] or [0], dtype=np.int64)
    pts = np.array([s.pt for s in streams] or [0], dtype=np.int64)

    nv = len(v_time)
    o_time = np.array([t for t, _ in others], dtype=np.int64)
    order = np.argsort(np.concatenate([v_time, o_time]), kind="stable")
    total = len(order)

    def voice_records(vidx: np.ndarray) -> np.ndarray:
        s, k, t = v_stream[vidx], v_k[vidx], v_time[vidx] + EPOCH_NS
        out = tmpl[s]
        out[:, 0:4] = (t // 10**9).astype("<u4").view(np.uint8).reshape(-1, 4)
        out[:, 4:8] = ((t % 10**9) // 1000).astype("<u4").view(np.uint8).reshape(-1, 4)
        ipid = (ipid0[s] + k) & 0xFFFF
        out[:, ip + 4] = ipid >> 8
        out[:, ip + 5] = ipid & 0xFF
        c = ~_fold(base_sum[s] + ipid) & 0xFFFF
        out[:, ip + 10] = c >> 8
        out[:, ip + 11] = c & 0xFF
        out[:, rtp + 1] = pts[s] | np.where(k == 0, 0x80, 0)
        seq = (seq0[s] + k) & 0xFFFF
        out[:, rtp + 2] = seq >> 8
        out[:, rtp + 3] = seq & 0xFF
        ts = (ts0[s] + SAMPLES_PER_PACKET * k) & 0xFFFFFFFF
        out[:, rtp + 4:rtp + 8] = ts.astype(">u4").view(np.uint8).reshape(-1, 4)
        return out

    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp_path = out_path + ".part"
    with open(tmp_path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for a in range(0, total, WRITE_CHUNK):
            sel = order[a:a + WRITE_CHUNK]
            is_voice = sel < nv
            recs = voice_records(sel[is_voice])
            if is_voice.all():
                fh.write(recs.tobytes())
                continue
            vi = prev = 0
            for p in np.flatnonzero(~is_voice):
                cnt = int(p) - prev
                if cnt:
                    fh.write(recs[vi:vi + cnt].tobytes())
                    vi += cnt
                fh.write(others[int(sel[p]) - nv][1])
                prev = int(p) + 1
            if vi < len(recs):
                fh.write(recs[vi:].tobytes())
    os.replace(tmp_path, out_path)

    # ground truth per stream
    st_truth = []
    for s in streams:
        o = np.argsort(s.arrival, kind="stable")
        ks = s.k[o]
        received = len(ks)
        expected = int(ks.max() - ks.min() + 1) if received else 0
        reordered = int((ks[1:] < np.maximum.accumulate(ks)[:-1]).sum()) if received > 1 else 0
        st_truth.append({
            "call": s.call, "direction": "caller->callee" if s.direction == "a" else "callee->caller",
            "src": s.src, "dst": s.dst, "ssrc": s.ssrc, "payload_type": s.pt, "codec": CODECS[s.pt],
            "clock_rate": 8000, "first_seq": int((s.seq0 + ks[0]) & 0xFFFF) if received else None,
            "sent": s.sent, "dropped": s.sent - received, "packets": received,
            "expected": expected, "lost": expected - received, "reordered": reordered,
            "dtmf_packets": s.dtmf_packets,
            "first_ns": int(EPOCH_NS + s.arrival[o[0]]) if received else None,
            "last_ns": int(EPOCH_NS + s.arrival[o[-1]]) if received else None,
        })
    n_sip = sum(c["sip_messages"] for c in calls)
    rtp_packets = sum(s["packets"] for s in st_truth)
    doc = {
        "generator": "benchmarks.synth", "version": SYNTH_VERSION,
        "params": dict(params or {}, seed=seed, jitter_ms=jitter_ms, vlan=vlan),
        "totals": {
            "frames": total, "sip_messages": n_sip, "rtp_packets": rtp_packets,
            "rtp_sent": sum(s["sent"] for s in st_truth),
            "rtp_dropped": sum(s["dropped"] for s in st_truth),
            "rtp_lost": sum(s["lost"] for s in st_truth),
            "streams": len(st_truth), "calls": len(calls),
            "bytes": os.path.getsize(out_path),
        },
        "calls": calls,
        "streams": st_truth,
    }
    if truth_path is None:
        truth_path = os.path.splitext(out_path)[0] + ".json"
    if truth_path:
        with open(truth_path, "w") as fh:
            json.dump(doc, fh, indent=1)
            fh.write("\n")
    if not quiet:
        print(f"synth: {out_path}: {total:,} frames ({rtp_packets:,} RTP in {len(st_truth)} streams, "
              f"{n_sip} SIP), {doc['totals']['bytes'] / 1e6:.1f} MB in "
              f"{time.perf_counter() - t_start:.1f} s", file=sys.stderr)
    return doc


# ---------------------------------------------------------------------------
# call plans

SIP_PER_ANSWERED_CALL = 7  # INVITE 100 180 200 ACK BYE 200


def bulk_specs(calls: int, packets: Optional[int] = None, duration: Optional[float] = None,
               loss: float = 0.0, stagger: float = 2.0, seed: int = 1) -> list:
    """`calls` answered G.711 calls starting within `stagger` seconds. Their
    lengths vary by +-20 % and add up to about `packets` frames (SIP
    included, before loss), or each lasts `duration` seconds."""
    if not 0 < calls <= MAX_CALLS:
        raise ValueError(f"--calls must be 1..{MAX_CALLS}")
    rng = np.random.default_rng([seed, 1 << 30])
    weights = rng.uniform(0.8, 1.2, calls)
    starts = np.sort(rng.uniform(0.0, stagger, calls))
    codecs = rng.choice([0, 8], size=calls)
    if duration is not None:
        per_dir = np.full(calls, max(2, int(round(duration * 1e9 / PTIME_NS))), dtype=np.int64)
    else:
        half = max(2 * calls, (packets or 0) - SIP_PER_ANSWERED_CALL * calls) // 2
        per_dir = np.floor(half * weights / weights.sum()).astype(np.int64)
        per_dir[: half - int(per_dir.sum())] += 1
    return [CallSpec(index=i, packets=int(per_dir[i]), start_ns=int(starts[i] * 1e9), codec=int(codecs[i]),
                     loss=loss) for i in range(calls)]


def sample_specs(seed: int = 7) -> list:
    """The bundled sample: 20 calls, short, with every variant the tests need."""
    rng = np.random.default_rng([seed, 1 << 30])
    specs = []
    for i in range(20):
        specs.append(CallSpec(index=i, packets=int(rng.integers(25, 51)), start_ns=int(i * 0.3e9 + rng.uniform(0, 0.2e9)),
                              codec=int(rng.choice([0, 8])), ring_ms=(300.0, 1200.0)))
    specs[3].kind, specs[3].note = "busy", "486 Busy Here, no media"
    specs[7].kind, specs[7].note = "cancel", "caller CANCELs while ringing: 200 (CANCEL), 487, ACK; no media"
    specs[11].kind, specs[11].note = "early", "183 Session Progress with SDP; callee media before the 200"
    specs[5].packets, specs[5].drop_exact = 300, {"a": 3}
    specs[5].note = "caller->callee stream loses 3 of 300 packets (1 %)"
    specs[14].dtmf, specs[14].note = "1#", "caller sends DTMF 1 and # as RFC 4733 events (PT 101)"
    return specs


# ---------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.synth", description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=500, help="concurrent calls (default 500)")
    ap.add_argument("--packets", type=int, default=1_000_000,
                    help="about this many frames before loss, SIP included (default 1000000)")
    ap.add_argument("--duration", type=float, help="seconds of media per call instead of --packets")
    ap.add_argument("--loss", type=float, default=0.0, help="per-packet RTP loss probability (e.g. 0.005)")
    ap.add_argument("--jitter-ms", type=float, default=0.0, help="arrival offset drawn uniformly in 0..N ms")
    ap.add_argument("--stagger", type=float, default=2.0, help="calls start within this many seconds (default 2)")
    ap.add_argument("--vlan", type=int, default=0, help="802.1Q tag every frame with this VLAN ID")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--output", help="pcap to write")
    ap.add_argument("--truth", help="ground-truth JSON (default: output with .json)")
    ap.add_argument("--sample", action="store_true",
                    help=f"write the bundled sample ({os.path.relpath(SAMPLE_PCAP, REPO)}) and its README")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.sample:
        if REPO not in sys.path:
            sys.path.insert(0, REPO)
        from tools.make_sample import make_sample
        make_sample(args.output or SAMPLE_PCAP)
        return 0
    if not args.output:
        ap.error("-o/--output is required")
    if not 0 <= args.loss < 1:
        ap.error("--loss must be in [0, 1)")
    specs = bulk_specs(args.calls, args.packets, args.duration, args.loss, args.stagger, args.seed)
    params = {"calls": args.calls, "packets": None if args.duration else args.packets,
              "duration": args.duration, "loss": args.loss, "stagger": args.stagger}
    generate(specs, args.output, args.seed, args.jitter_ms, args.vlan, args.truth, params, args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
