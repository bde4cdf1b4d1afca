"""Byte-exact capture builders for the robustness tests.

Everything is packed with struct (no scapy), so every offset, length and
expected statistic is known by construction. Used by test_bad_input.py,
test_sanitizers.py and test_streaming_memory.py; independent of capgen.py.
"""
from __future__ import annotations

import ipaddress
import random
import struct
from dataclasses import dataclass, field
from typing import Optional

# --------------------------------------------------------------------------
# link, network and transport layers

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_SLL = 113


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ether(l3: bytes, ethertype: int = ETH_IPV4,
          src: bytes = b"\x02\x00\x00\x00\x00\x01", dst: bytes = b"\x02\x00\x00\x00\x00\x02") -> bytes:
    return dst + src + struct.pack("!H", ethertype) + l3


def ipv4(src: str, dst: str, proto: int, payload: bytes, *, ident: int = 1, frag: int = 0,
         total_length: Optional[int] = None, ttl: int = 64) -> bytes:
    """IPv4 header (no options) + payload; total_length overrides the field."""
    tot = 20 + len(payload) if total_length is None else total_length
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tot & 0xFFFF, ident & 0xFFFF, frag, ttl, proto, 0,
                      ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    hdr = hdr[:10] + struct.pack("!H", _checksum(hdr)) + hdr[12:]
    return hdr + payload


def ipv6(src: str, dst: str, nh: int, payload: bytes, *, payload_length: Optional[int] = None) -> bytes:
    plen = len(payload) if payload_length is None else payload_length
    return (struct.pack("!IHBB", 0x60000000, plen & 0xFFFF, nh, 64)
            + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + payload)


def udp(sport: int, dport: int, payload: bytes, *, length: Optional[int] = None) -> bytes:
    ulen = 8 + len(payload) if length is None else length
    return struct.pack("!HHHH", sport, dport, ulen & 0xFFFF, 0) + payload


def rtp(seq: int, ts: int, ssrc: int, pt: int = 0, payload: bytes = b"", marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF,
                       ssrc) + payload


SIP_INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds\r\n"
    b"From: <sip:alice@example.com>;tag=1928301774\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: a84b4c76e66710@robust.test\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Content-Length: 0\r\n\r\n"
)

# --------------------------------------------------------------------------
# capture files


@dataclass
class Capture:
    data: bytes
    # [start, end) of every record (pcap) or block (pcapng), in file order
    records: list = field(default_factory=list)
    header_len: int = 0      # pcap: 24; pcapng: 0 (the SHB is a block)
    # index into records of each packet record, in packet order
    packet_records: list = field(default_factory=list)


def pcap_bytes(packets, linktype: int = LINKTYPE_ETHERNET, nsec: bool = False, big_endian: bool = False,
               snaplen: int = 65535) -> Capture:
    """packets: iterable of (ts_ns, frame) or (ts_ns, frame, origlen)."""
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nsec else 0xA1B2C3D4
    out = bytearray(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
    cap = Capture(b"", header_len=24)
    for p in packets:
        ts_ns, frame = p[0], p[1]
        origlen = p[2] if len(p) > 2 and p[2] is not None else len(frame)
        sec, rem = divmod(ts_ns, 1_000_000_000)
        frac = rem if nsec else rem // 1000
        start = len(out)
        out += struct.pack(e + "IIII", sec, frac, len(frame), origlen) + frame
        cap.packet_records.append(len(cap.records))
        cap.records.append((start, len(out)))
    cap.data = bytes(out)
    return cap


def pcapng_block(btype: int, body: bytes) -> bytes:
    body = body + b"\0" * (-len(body) % 4)
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def pcapng_shb() -> bytes:
    return pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def pcapng_idb(linktype: int = LINKTYPE_ETHERNET, snaplen: int = 0, tsresol: Optional[int] = 9) -> bytes:
    opts = b""
    if tsresol is not None:
        opts = struct.pack("<HHB3x", 9, 1, tsresol) + struct.pack("<HH", 0, 0)
    return pcapng_block(1, struct.pack("<HHI", linktype, 0, snaplen) + opts)


def pcapng_epb(ts: int, frame: bytes, iface: int = 0, origlen: Optional[int] = None) -> bytes:
    ol = len(frame) if origlen is None else origlen
    return pcapng_block(6, struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(frame), ol) + frame)


def pcapng_spb(frame: bytes, origlen: Optional[int] = None) -> bytes:
    return pcapng_block(3, struct.pack("<I", len(frame) if origlen is None else origlen) + frame)


def pcapng_bytes(packets, linktype: int = LINKTYPE_ETHERNET) -> Capture:
    """SHB + IDB (nanosecond resolution) + one EPB per packet."""
    cap = Capture(b"", header_len=0)
    out = bytearray()
    for blk in (pcapng_shb(), pcapng_idb(linktype)):
        cap.records.append((len(out), len(out) + len(blk)))
        out += blk
    for p in packets:
        ts_ns, frame = p[0], p[1]
        origlen = p[2] if len(p) > 2 else None
        blk = pcapng_epb(ts_ns, frame, origlen=origlen)
        cap.packet_records.append(len(cap.records))
        cap.records.append((len(out), len(out) + len(blk)))
        out += blk
    cap.data = bytes(out)
    return cap


# --------------------------------------------------------------------------
# the small reference capture: two RTP streams (IPv4 and IPv6) and a SIP INVITE

T0_NS = 1_700_000_000_000_000_000
PTIME_NS = 20_000_000


@dataclass(frozen=True)
class RtpPacket:
    ts_ns: int
    src: str       # "addr:port" / "[addr]:port" as the JSON spells it
    dst: str
    ssrc: int
    pt: int
    seq: int
    rtp_len: int   # header + payload bytes


@dataclass
class Sample:
    frames: list          # (ts_ns, frame) in capture order
    rtp: list             # RtpPacket or None per frame (None: the SIP message)


def sample_packets(payload_len: int = 16) -> Sample:
    """A SIP INVITE, then stream A (IPv4, 4 packets) interleaved with
    stream B (IPv6, 3 packets), 20 ms apart per stream, sequential."""
    frames, info = [], []
    sip = ether(ipv4("192.0.2.10", "192.0.2.20", 17, udp(5060, 5060, SIP_INVITE)))
    frames.append((T0_NS, sip))
    info.append(None)
    a = dict(src=("192.0.2.10", 40000), dst=("192.0.2.20", 50000), ssrc=0x11111111, pt=0, seq=1000, ts=5000)
    b = dict(src=("2001:db8::1", 40002), dst=("2001:db8::2", 50002), ssrc=0x22222222, pt=8, seq=65534, ts=0)
    order = ["a", "b", "a", "b", "a", "b", "a"]
    count = {"a": 0, "b": 0}
    for i, which in enumerate(order):
        s = a if which == "a" else b
        k = count[which]
        count[which] += 1
        seq = (s["seq"] + k) & 0xFFFF
        body = rtp(seq, s["ts"] + 160 * k, s["ssrc"], s["pt"], bytes([k]) * payload_len)
        ts_ns = T0_NS + 1_000_000 + k * PTIME_NS + (5_000_000 if which == "b" else 0)
        dgram = udp(s["src"][1], s["dst"][1], body)
        if which == "a":
            frame = ether(ipv4(s["src"][0], s["dst"][0], 17, dgram, ident=100 + i))
            src, dst = f"{s['src'][0]}:{s['src'][1]}", f"{s['dst'][0]}:{s['dst'][1]}"
        else:
            frame = ether(ipv6(s["src"][0], s["dst"][0], 17, dgram), ETH_IPV6)
            src, dst = f"[{s['src'][0]}]:{s['src'][1]}", f"[{s['dst'][0]}]:{s['dst'][1]}"
        frames.append((ts_ns, frame))
        info.append(RtpPacket(ts_ns, src, dst, s["ssrc"], s["pt"], seq, len(body)))
    # keep capture order == time order
    assert [f[0] for f in frames] == sorted(f[0] for f in frames)
    return Sample(frames, info)


def expected_streams(rtp_packets) -> list[dict]:
    """What --streams-json must say about these (sequential, loss-free)
    packets: a stream is reported once two consecutive sequence numbers
    arrived (RFC 3550 MIN_SEQUENTIAL = 2, docs/rtp-statistics.md)."""
    by_key: dict = {}
    for p in rtp_packets:
        if p is not None:
            by_key.setdefault((p.src, p.dst, p.ssrc), []).append(p)
    out = []
    for (src, dst, ssrc), pkts in by_key.items():
        if len(pkts) < 2:
            continue
        out.append({
            "src": src, "dst": dst, "ssrc": ssrc, "payload_type": pkts[0].pt,
            "packets": len(pkts), "expected": len(pkts), "lost": 0, "duplicates": 0,
            "reordered": 0, "seq_resets": 0,
            "first_ts": pkts[0].ts_ns / 1e9, "last_ts": pkts[-1].ts_ns / 1e9,
            "bytes": sum(p.rtp_len for p in pkts),
        })
    return sorted(out, key=lambda d: d["ssrc"])


def comparable(streams_json: list[dict]) -> list[dict]:
    """The keys expected_streams() predicts, from a --streams-json document."""
    keys = ("src", "dst", "ssrc", "payload_type", "packets", "expected", "lost", "duplicates",
            "reordered", "seq_resets", "first_ts", "last_ts", "bytes")
    return sorted(({k: d[k] for k in keys} for d in streams_json), key=lambda d: d["ssrc"])


def sample_captures() -> dict[str, tuple[Capture, Sample]]:
    s = sample_packets()
    return {
        "sample.pcap": (pcap_bytes(s.frames), s),
        "sample-nsec-be.pcap": (pcap_bytes(s.frames, nsec=True, big_endian=True), s),
        "sample.pcapng": (pcapng_bytes(s.frames), s),
    }


# --------------------------------------------------------------------------
# damaged variants


def record_at(cap: Capture, offset: int):
    """(index, start) of the record or block that contains byte `offset`."""
    for i, (start, end) in enumerate(cap.records):
        if start <= offset < end:
            return i, start
    return None, None


def complete_packets(cap: Capture, cut: int) -> int:
    """How many packet records lie wholly before byte `cut`."""
    return sum(1 for i in cap.packet_records if cap.records[i][1] <= cut)


def mutate(data: bytes, rng: random.Random, edits: int) -> bytes:
    """Flips, overwrites, inserts and deletes random bytes."""
    buf = bytearray(data)
    for _ in range(edits):
        op = rng.random()
        pos = rng.randrange(len(buf) + 1) if buf else 0
        if op < 0.35 and buf:
            pos = min(pos, len(buf) - 1)
            buf[pos] ^= 1 << rng.randrange(8)
        elif op < 0.55 and buf:
            pos = min(pos, len(buf) - 1)
            buf[pos] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
        elif op < 0.7 and len(buf) >= pos + 4:
            # an interesting 32-bit value where a length or timestamp may be
            val = rng.choice((0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 12, 16, 0x01000001,
                              rng.randrange(1 << 32)))
            buf[pos:pos + 4] = struct.pack(rng.choice("<>") + "I", val)
        elif op < 0.85:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif buf:
            del buf[pos:pos + rng.randint(1, 8)]
    return bytes(buf)


def garbage_udp_frames(rng: random.Random, count: int, dport: int, sport: int = 40000):
    """Ethernet/IPv4/UDP frames with correct headers and random payloads."""
    frames = []
    for i in range(count):
        n = rng.choice((0, 1, 4, 7, 8, 11, 12, 13, 16, 20, 40, 172, rng.randrange(0, 1400)))
        payload = bytes(rng.randrange(256) for _ in range(n))
        if i % 3 == 0 and n >= 2:
            # make it look a bit more like RTP/RTCP so deeper code runs
            payload = bytes([0x80 | (payload[0] & 0x3F), rng.choice((0, 8, 96, 200, 201, 202, 203, 72))]) \
                + payload[2:]
        frames.append((T0_NS + i * 1000, ether(ipv4("198.51.100.1", "198.51.100.2", 17,
                                                     udp(sport, dport, payload), ident=i))))
    return frames


# --------------------------------------------------------------------------
# structurally damaged files, each with what the CLI must do with it


@dataclass
class Damaged:
    name: str
    data: bytes
    rc: int                      # exit code the CLI must return
    offset: Optional[int] = None  # file offset the one-line message must name
    rtp: list = field(default_factory=list)  # RtpPacket of every packet that must still be counted
    frames: Optional[int] = None  # frames the engine must have read
    decode_errors: dict = field(default_factory=dict)  # counters that must have these values


def _split(sample: Sample, k: int):
    return sample.frames[:k], sample.rtp[:k], sample.frames[k:], sample.rtp[k:]


def structural_cases() -> list[Damaged]:
    s = sample_packets()
    n = len(s.frames)
    cases = []

    # -- classic pcap ------------------------------------------------------
    # a record with caplen 0 (and origlen 0), and one with caplen 0 of a 60-byte packet
    frames = s.frames[:3] + [(s.frames[2][0] + 1000, b"", 0), (s.frames[2][0] + 2000, b"", 60)] + s.frames[3:]
    cases.append(Damaged("pcap-caplen0.pcap", pcap_bytes(frames).data, 0, rtp=s.rtp, frames=n + 2,
                         decode_errors={"short_link_header": 1, "snapped": 1}))
    # caplen beyond the 16 MiB record limit: corrupt, results before it stay
    for label, caplen in (("16m1", (16 << 20) + 1), ("max", 0xFFFFFFFF)):
        head, head_rtp, _, _ = _split(s, 4)
        cap = pcap_bytes(head)
        bad_at = len(cap.data)
        data = cap.data + struct.pack("<IIII", 1_700_000_001, 0, caplen, caplen) + s.frames[4][1] * 4
        cases.append(Damaged(f"pcap-caplen-{label}.pcap", data, 2, offset=bad_at, rtp=head_rtp, frames=4))
    # caplen larger than origlen: every byte is present, so the packet is used
    frames = list(s.frames)
    ts, frame = frames[3]
    frames[3] = (ts, frame, len(frame) - 10)
    cases.append(Damaged("pcap-caplen-gt-origlen.pcap", pcap_bytes(frames).data, 0, rtp=s.rtp, frames=n,
                         decode_errors={"snapped": 0}))

    # -- pcapng ------------------------------------------------------------
    shb, idb = pcapng_shb(), pcapng_idb()
    epbs = [pcapng_epb(ts, fr) for ts, fr in s.frames]
    head = shb + idb + b"".join(epbs[:4])
    good4 = s.rtp[:4]
    tail = b"".join(epbs[4:])
    bad = len(head)
    for length, label in ((0, "len0"), (8, "len8"), (11, "len11"), (30, "len30"), (13, "len13")):
        blk = struct.pack("<II", 0x00000BAD, length) + b"\0" * 28
        cases.append(Damaged(f"pcapng-block-{label}.pcapng", head + blk + tail, 2, offset=bad, rtp=good4, frames=4))
    e = bytearray(epbs[4])
    e[-4:] = struct.pack("<I", len(e) + 4)
    cases.append(Damaged("pcapng-trailing-mismatch.pcapng", head + bytes(e) + tail, 2, offset=bad,
                         rtp=good4, frames=4))
    e = bytearray(epbs[4])
    e[8:12] = struct.pack("<I", 1)  # only interface 0 exists
    cases.append(Damaged("pcapng-epb-undefined-iface.pcapng", head + bytes(e) + tail, 2, offset=bad,
                         rtp=good4, frames=4))
    e = bytearray(epbs[4])
    e[20:24] = struct.pack("<I", len(e))  # captured length larger than the block
    cases.append(Damaged("pcapng-epb-caplen-beyond-block.pcapng", head + bytes(e) + tail, 2, offset=bad,
                         rtp=good4, frames=4))
    cases.append(Damaged("pcapng-epb-too-short.pcapng", head + pcapng_block(6, b"\0" * 12) + tail, 2,
                         offset=bad, rtp=good4, frames=4))
    cases.append(Damaged("pcapng-idb-too-short.pcapng", shb + pcapng_block(1, b"\1\0\0\0") + b"".join(epbs), 2,
                         offset=len(shb), frames=0))
    cases.append(Damaged("pcapng-spb-before-idb.pcapng", shb + pcapng_spb(s.frames[1][1]) + idb + b"".join(epbs),
                         2, offset=len(shb), frames=0))
    # a second section forgets the first one's interfaces
    cases.append(Damaged("pcapng-epb-after-new-shb.pcapng", head + shb + tail, 2, offset=bad + len(shb),
                         rtp=good4, frames=4))
    # an unknown block type is skipped, not an error
    cases.append(Damaged("pcapng-unknown-block.pcapng", head + pcapng_block(0x0BAD, b"x" * 10) + tail, 0,
                         rtp=s.rtp, frames=n))
    # a valid SPB (IDB snaplen 0 = unlimited) carries an RTP packet without a time stamp
    return cases


def spb_len12_case(linktype: int = LINKTYPE_RAW) -> bytes:
    """An SPB whose block length is 12: no room for the original-length
    field, no packet data. It is the last block and ends the file on a
    page boundary, so reading its "packet" means reading past the file."""
    shb, idb = pcapng_shb(), pcapng_idb(linktype, snaplen=0, tsresol=None)
    spb = struct.pack("<III", 3, 12, 12)
    fill = 4096 - len(shb) - len(idb) - len(spb)
    filler = struct.pack("<II", 0x0BAD, fill) + b"\0" * (fill - 12) + struct.pack("<I", fill)
    data = shb + idb + filler + spb
    assert len(data) == 4096
    return data


# --------------------------------------------------------------------------
# packets whose length fields lie


@dataclass
class LyingSet:
    frames: list          # (ts_ns, frame, origlen)
    good: list            # RtpPacket of the honest packets
    errors: dict          # decode error counter -> how many frames must land there
    labels: list          # label per lying frame, for messages
    counters: list        # decode error counter per lying frame


def lying_frames() -> LyingSet:
    """Honest RTP packets of one IPv4 stream, each followed by a packet of the
    same flow (a repeat of the same sequence number) whose headers lie. A lie
    the engine believed would show up as an extra packet or a duplicate."""
    src, dst, sport, dport, ssrc = "192.0.2.30", "192.0.2.40", 42000, 52000, 0x33333333
    src6, dst6 = "2001:db8::30", "2001:db8::40"
    lies = []

    def body(seq):
        return rtp(seq, seq * 160, ssrc, 0, b"\x55" * 32)

    def v4(seq, **kw):
        return ipv4(src, dst, 17, udp(sport, dport, body(seq)), **kw)

    def v6(seq, **kw):
        return ipv6(src6, dst6, 17, udp(sport, dport, body(seq)), **kw)

    def add(label, counter, make):
        lies.append((label, counter, make))

    real4 = 20 + 8 + 12 + 32
    add("ipv4 total length +1", "ip_length", lambda q: (ether(v4(q, total_length=real4 + 1)), None))
    add("ipv4 total length 65535", "ip_length", lambda q: (ether(v4(q, total_length=0xFFFF)), None))
    add("ipv4 total length lie behind a VLAN tag", "ip_length",
        lambda q: (ether(b"\x00\x64\x08\x00" + v4(q, total_length=real4 + 100), 0x8100), None))
    add("inner ipv4 total length lie in IP-in-IP", "ip_length",
        lambda q: (ether(ipv4("198.51.100.7", "198.51.100.8", 4, v4(q, total_length=real4 + 8))), None))
    add("ipv6 payload length +1", "ip_length",
        lambda q: (ether(v6(q, payload_length=8 + 12 + 32 + 1), ETH_IPV6), None))
    add("ipv6 payload length 65535", "ip_length", lambda q: (ether(v6(q, payload_length=0xFFFF), ETH_IPV6), None))
    add("udp length +1", "udp_length",
        lambda q: (ether(ipv4(src, dst, 17, udp(sport, dport, body(q), length=8 + 44 + 1))), None))
    add("udp length 65535", "udp_length",
        lambda q: (ether(ipv4(src, dst, 17, udp(sport, dport, body(q), length=0xFFFF))), None))
    add("udp length 7", "udp_length",
        lambda q: (ether(ipv4(src, dst, 17, udp(sport, dport, body(q), length=7))), None))
    add("udp length lie over ipv6", "udp_length",
        lambda q: (ether(ipv6(src6, dst6, 17, udp(sport, dport, body(q), length=8 + 44 + 9)), ETH_IPV6), None))
    add("udp header cut by the ip length", "udp_length",
        lambda q: (ether(ipv4(src, dst, 17, udp(sport, dport, body(q))[:6])), None))
    add("ipv4 header length (60) beyond total length (40)", "ip_header",
        lambda q: (ether(b"\x4f" + ipv4(src, dst, 17, udp(sport, dport, rtp(q, q * 160, ssrc)))[1:]), None))
    # snap length: the frame on the wire was whole, the capture kept a prefix
    add("snapped inside the ipv4 payload", "snapped",
        lambda q: (ether(v4(q))[:14 + 20 + 8 + 4], 14 + real4))
    add("snapped inside the ipv6 payload", "snapped",
        lambda q: (ether(v6(q), ETH_IPV6)[:14 + 40 + 10], 14 + 40 + 52))
    add("snapped inside the ethernet header", "snapped", lambda q: (ether(v4(q))[:10], 14 + real4))
    add("snapped to nothing", "snapped", lambda q: (b"", 14 + real4))

    frames, good, errors, labels, counters = [], [], {}, [], []
    ts = T0_NS
    for i, lie in enumerate(lies + [None]):
        seq = 7000 + i
        ts += PTIME_NS
        honest = body(seq)
        frames.append((ts, ether(ipv4(src, dst, 17, udp(sport, dport, honest), ident=i)), None))
        good.append(RtpPacket(ts, f"{src}:{sport}", f"{dst}:{dport}", ssrc, 0, seq, len(honest)))
        if lie is None:
            break
        label, counter, make = lie
        frame, origlen = make(seq)
        frames.append((ts + 1000, frame, len(frame) if origlen is None else origlen))
        errors[counter] = errors.get(counter, 0) + 1
        labels.append(label)
        counters.append(counter)
    return LyingSet(frames, good, errors, labels, counters)


# --------------------------------------------------------------------------
# garbage


LINKTYPES_DECODED = (0, 1, 12, 14, 101, 108, 113, 228, 229, 276)
LINKTYPES_UNDECODED = (2, 105, 127, 147, 65535)
_ETHERTYPES = (0x0800, 0x86DD, 0x8100, 0x88A8, 0x9100, 0x8847, 0x8864, 0x880B, 0x0806, 0x05DC)
_IP_PROTOS = (17, 17, 17, 6, 132, 4, 41, 47, 0, 43, 44, 51, 60, 1)


def _rand(rng: random.Random, n: int) -> bytes:
    return rng.getrandbits(8 * n).to_bytes(n, "little") if n else b""


def _maybe_lie(rng: random.Random, true_value: int) -> int:
    r = rng.random()
    if r < 0.7:
        return true_value
    return rng.choice((0, 1, 7, true_value - 1, true_value + 1, true_value + 8, 0xFFFF, rng.randrange(65536)))


def _garbage_l4(rng: random.Random, proto: int, depth: int) -> bytes:
    payload = _rand(rng, rng.choice((0, 1, 4, 8, 12, 16, 24, 40, rng.randrange(200))))
    if proto == 17:
        dport = rng.choice((5060, 4789, 50000, 50001, 1000, rng.randrange(65536)))
        if dport == 4789 and depth < 3:
            payload = b"\x08\0\0\0\0\0\x01\0" + ether(_garbage_ip(rng, depth + 1), rng.choice(_ETHERTYPES[:2]))
        elif rng.random() < 0.5 and len(payload) >= 2:
            payload = bytes([0x80 | (payload[0] & 0x3F), rng.choice((0, 8, 96, 200, 201, 202, 72, 101))]) + payload[2:]
        return struct.pack("!HHHH", rng.randrange(1024, 65536), dport, _maybe_lie(rng, 8 + len(payload)), 0) + payload
    if proto == 6:
        off = rng.choice((5, 5, 5, 0, 4, 8, 15))
        hdr = struct.pack("!HHIIBBHHH", rng.randrange(65536), rng.choice((5060, 5061, 80)), rng.getrandbits(32),
                          rng.getrandbits(32), off << 4, rng.getrandbits(8), 65535, 0, 0)
        return hdr + _rand(rng, max(0, off * 4 - 20) if rng.random() < 0.7 else 0) + payload
    if proto == 47 and depth < 3:
        flags = rng.choice((0, 0x8000, 0x2000, 0x1000, 0xB000, 0x3001, 0x3081, 0x0007))
        et = rng.choice((0x0800, 0x86DD, 0x6558, 0x88BE, 0x22EB, 0x880B))
        extra = _rand(rng, 4 * bin(flags & 0xB000).count("1") + (4 if flags & 0x80 else 0))
        inner = _garbage_ip(rng, depth + 1) if et in (0x0800, 0x86DD) else _rand(rng, 12) + ether(
            _garbage_ip(rng, depth + 1))
        return struct.pack("!HH", flags, et) + extra + inner
    if proto in (4, 41) and depth < 3:
        return _garbage_ip(rng, depth + 1, 4 if proto == 4 else 6)
    if proto in (0, 43, 44, 51, 60):
        return bytes([rng.choice(_IP_PROTOS), rng.randrange(4)]) + _rand(rng, 6) + payload
    return payload


def _garbage_ip(rng: random.Random, depth: int = 0, version: Optional[int] = None) -> bytes:
    version = version or rng.choice((4, 6))
    proto = rng.choice(_IP_PROTOS)
    l4 = _garbage_l4(rng, proto, depth)
    if version == 4:
        frag = rng.choice((0, 0, 0, 0x2000, 0x2000 | rng.randrange(8192), rng.randrange(8192), 0x4000))
        pkt = ipv4("10.0.0.1", "10.0.0.2", proto, l4, ident=rng.randrange(4), frag=frag,
                   total_length=_maybe_lie(rng, 20 + len(l4)))
        if rng.random() < 0.1:
            pkt = bytes([0x40 | rng.randrange(16)]) + pkt[1:]
        return pkt
    return ipv6("2001:db8::a", "2001:db8::b", proto, l4, payload_length=_maybe_lie(rng, len(l4)))


def garbage_frame(rng: random.Random, linktype: int) -> tuple:
    """(frame, origlen): random bytes, or a random but plausible stack of
    headers with lying lengths, for any link type."""
    if rng.random() < 0.3:
        frame = _rand(rng, rng.choice((0, 1, 2, 3, 4, 13, 14, 15, 16, 19, 20, 21, 40, rng.randrange(300))))
    else:
        ip = _garbage_ip(rng)
        et = ETH_IPV4 if ip[0] >> 4 == 4 else ETH_IPV6
        if rng.random() < 0.3:
            et = rng.choice(_ETHERTYPES)
            if et in (0x8100, 0x88A8, 0x9100):
                ip = struct.pack("!HH", rng.randrange(4096), rng.choice(_ETHERTYPES)) + ip
            elif et == 0x8847:
                ip = struct.pack("!I", rng.getrandbits(32)) + struct.pack("!I", 0x100) + ip
            elif et == 0x8864:
                ip = b"\x11\x00\x00\x01" + struct.pack("!H", len(ip) + 2) + rng.choice((b"\x00\x21", b"\x00\x57", b"\x21")) + ip
            elif et == 0x880B:
                ip = b"\xff\x03\x00\x21" + ip
        if linktype == LINKTYPE_ETHERNET:
            frame = ether(ip, et)
        elif linktype in (0, 108):
            fam = 2 if et == ETH_IPV4 else rng.choice((24, 28, 30))
            frame = struct.pack(rng.choice(("<I", ">I")), fam) + ip
        elif linktype == 113:
            frame = _rand(rng, 14) + struct.pack("!H", et) + ip
        elif linktype == 276:
            frame = struct.pack("!H", et) + _rand(rng, 18) + ip
        else:
            frame = ip
    r = rng.random()
    if r < 0.25 and frame:
        frame = frame[:rng.randrange(len(frame))]  # cut, wire length kept or forgotten
        return frame, (len(frame) + rng.randrange(1, 100)) if rng.random() < 0.5 else len(frame)
    if r < 0.35 and frame:
        b = bytearray(frame)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        frame = bytes(b)
    return frame, len(frame)


def garbage_link_capture(rng: random.Random, linktype: int, count: int) -> bytes:
    frames = []
    for i in range(count):
        frame, origlen = garbage_frame(rng, linktype)
        frames.append((T0_NS + i * 1_000_000, frame, origlen))
    return pcap_bytes(frames, linktype=linktype).data


def garbage_payload_capture(rng: random.Random, count: int):
    """Well-formed Ethernet/IPv4/UDP and TCP with random payloads: on RTP
    ports and on the SIP port. Returns (pcap bytes, counts by destination)."""
    frames, counts = [], {"udp_rtp": 0, "udp_sip": 0, "tcp_sip": 0}
    for i in range(count):
        kind = ("udp_rtp", "udp_sip", "tcp_sip")[i % 3]
        n = rng.choice((0, 1, 2, 7, 8, 11, 12, 13, 16, 20, 28, 40, 172, rng.randrange(1400)))
        payload = _rand(rng, n)
        if i % 2 and n >= 2:
            payload = bytes([0x80 | (payload[0] & 0x3F), rng.choice((0, 8, 96, 200, 201, 72))]) + payload[2:]
        if kind == "tcp_sip":
            seg = struct.pack("!HHIIBBHHH", 41000 + i % 7, 5060, rng.getrandbits(32), 0, 5 << 4, 0x18, 65535, 0, 0)
            l3 = ipv4("198.51.100.1", "198.51.100.2", 6, seg + payload, ident=i)
        else:
            dport = 5060 if kind == "udp_sip" else 50000 + 2 * (i % 5)
            l3 = ipv4("198.51.100.1", "198.51.100.2", 17, udp(40000 + 2 * (i % 5), dport, payload), ident=i)
        frames.append((T0_NS + i * 1_000_000, ether(l3)))
        counts[kind] += 1
    return pcap_bytes(frames).data, counts


# --------------------------------------------------------------------------
# SIP messages for the native SIP scanner

SDP_BODY = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
)


def sip_messages() -> list[bytes]:
    invite = (
        b"INVITE sip:bob@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds, SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKold\r\n"
        b"Via: SIP/2.0/TCP 192.0.2.8;branch=z9hG4bKolder\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n"
        b"To: <sip:bob@example.com>\r\n"
        b"Call-ID: a84b4c76e66710@robust.test\r\n"
        b"CSeq: 314159 INVITE\r\n"
        b"X-CID: corr-1\r\n"
        b"Session-Expires: 1800;refresher=uac\r\n"
        b"Content-Type: application/sdp\r\n"
        b"Content-Length: " + str(len(SDP_BODY)).encode() + b"\r\n\r\n" + SDP_BODY
    )
    ok = (
        b"SIP/2.0 200 OK\r\n"
        b"v: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds\r\n"
        b"f: <sip:alice@example.com>;tag=1928301774\r\n"
        b"t: <sip:bob@example.com>;tag=a6c85cf\r\n"
        b"i: a84b4c76e66710@robust.test\r\n"
        b"CSeq: 314159 INVITE\r\n"
        b"c: application/sdp\r\n"
        b"l: " + str(len(SDP_BODY)).encode() + b"\r\n\r\n" + SDP_BODY
    )
    folded = (
        b"BYE sip:alice@192.0.2.10 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.20\r\n  ;branch=z9hG4bKfold\r\n"
        b"From: <sip:bob@example.com>\r\n\t;tag=a6c85cf\r\n"
        b"To: <sip:alice@example.com>;tag=1928301774\r\n"
        b"Call-ID: a84b4c76e66710@robust.test\r\n"
        b"CSeq: 231 BYE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    lying = invite.replace(b"Content-Length: " + str(len(SDP_BODY)).encode(), b"Content-Length: 99999999")
    lf_only = invite.replace(b"\r\n", b"\n")
    return [invite, ok, folded, lying, lf_only, b"\r\n\r\n", b"\r\n", SIP_INVITE]


def sip_garbage(rng: random.Random, count: int) -> list[bytes]:
    """Every prefix of each message, then seeded mutations of them."""
    base = sip_messages()
    out = [m[:cut] for m in base for cut in range(len(m) + 1)]
    for i in range(count):
        out.append(mutate(base[i % len(base)], rng, rng.choice((1, 2, 4, 8, 20))))
    return out


# --------------------------------------------------------------------------
# a richer valid capture to mutate: RTP with CSRCs and a header extension,
# telephone-events, TURN ChannelData, and RTCP compounds (SR, RR, SDES, XR, BYE)


def _rtcp(pt: int, count: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("!BBH", 0x80 | count, pt, (4 + len(body)) // 4 - 1) + body


def rich_frames() -> list:
    a, b = ("192.0.2.50", 46000), ("192.0.2.60", 56000)
    ssrc_a, ssrc_b = 0xA0A0A0A0, 0xB0B0B0B0
    invite, ok = sip_messages()[:2]
    frames = [(T0_NS, ether(ipv4(a[0], b[0], 17, udp(5060, 5060, invite)))),
              (T0_NS + 5_000_000, ether(ipv4(b[0], a[0], 17, udp(5060, 5060, ok))))]
    ts = T0_NS + 5_000_000
    for k in range(12):
        ts += PTIME_NS
        hdr = struct.pack("!BBHII", 0x92, 0, 100 + k, 160 * k, ssrc_a) + struct.pack("!I", 0xC5C5C5C5)
        ext = struct.pack("!HH", 0xBEDE, 1) + b"\x10\xaa\0\0"
        rtp_a = hdr + ext + b"\xd5" * 40
        frames.append((ts, ether(ipv4(a[0], b[0], 17, udp(a[1], b[1], rtp_a)))))
        ev = rtp(500 + k, 8000 + 160 * (k // 4), ssrc_b, 101, struct.pack("!BBH", 5, 0x0A | (0x80 if k % 4 == 3 else 0), 160),
                 marker=k % 4 == 0)
        frames.append((ts + 1000, ether(ipv4(b[0], a[0], 17, udp(b[1], a[1], ev)))))
        turn = struct.pack("!HH", 0x4001, 12 + 20) + rtp(900 + k, 160 * k, 0xC0C0C0C0, 8, b"\xd5" * 20)
        frames.append((ts + 2000, ether(ipv4("198.51.100.5", "198.51.100.6", 17, udp(49152, 49154, turn)))))
    ntp = (3_900_000_000 << 32) | 0x80000000
    rb = lambda ssrc, lsr: struct.pack("!IBBHIIII", ssrc, 12, 0, 3, 111, 7, lsr, 0x8000)
    sr = _rtcp(200, 1, struct.pack("!IIIIII", ssrc_a, ntp >> 32, ntp & 0xFFFFFFFF, 1920, 12, 480) + rb(ssrc_b, 0))
    sdes = _rtcp(202, 1, struct.pack("!I", ssrc_a) + b"\x01\x09alice@x.y\0")
    voip = struct.pack("!BBH", 7, 0, 8) + struct.pack("!I", ssrc_b) + bytes(range(28))
    rle = struct.pack("!BBH", 1, 0, 2) + struct.pack("!IHH", ssrc_b, 100, 112)
    xr = _rtcp(207, 0, struct.pack("!I", ssrc_a) + voip + rle)
    frames.append((ts + 3000, ether(ipv4(a[0], b[0], 17, udp(a[1] + 1, b[1] + 1, sr + sdes + xr)))))
    lsr = (ntp >> 16) & 0xFFFFFFFF
    rr = _rtcp(201, 1, struct.pack("!I", ssrc_b) + rb(ssrc_a, lsr))
    bye = _rtcp(203, 1, struct.pack("!I", ssrc_b) + b"\x03bye")
    frames.append((ts + 50_000_000, ether(ipv4(b[0], a[0], 17, udp(b[1] + 1, a[1] + 1, rr + bye)))))
    return frames
