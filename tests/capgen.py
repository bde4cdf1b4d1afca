"""Builds small captures whose content the tests choose, so every expected
value is known by construction.

Three layers, one function per concept:

- RTP schedules: `voice()` makes a regular stream (sequence numbers,
  timestamps, arrival times); `dropped()`, `delayed()`, `duplicated()` and
  friends change it the way a network would. A schedule is a list of `Rtp`
  sorted by arrival time, i.e. the order a capture would hold them in.
- Packet bytes: `rtp_bytes()`, `rtcp_*()`, and scapy for IP/UDP and every
  encapsulation (`udp_ip()`, `ether()`, link-layer headers, tunnels,
  fragments).
- Files: `write_pcap()` (any magic, either byte order) and `PcapNg` (several
  sections, interfaces, if_tsresol/if_tsoffset, EPB/SPB/PB), written by hand
  because scapy cannot produce most of these variants.

Nothing here imports warpsniff.
"""
from __future__ import annotations

import random
import struct
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

from scapy.layers.inet import IP, UDP, IPOption_RR
from scapy.layers.ipsec import AH
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import GRE, GRE_PPTP, Dot1AD, Dot1Q, Ether
from scapy.layers.ppp import HDLC, PPP, PPPoE
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific
from scapy.contrib.mpls import MPLS
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

NS = 1_000_000_000
MS = 1_000_000
T0_NS = 1_700_000_000 * NS  # a plausible capture start, whole seconds

SRC4, DST4 = "10.1.1.1", "10.2.2.2"
SRC6, DST6 = "2001:db8::1", "2001:db8::2"
RTP_SPORT, RTP_DPORT = 40000, 50000


# --------------------------------------------------------------------------
# RTP schedules


@dataclass(frozen=True)
class Rtp:
    """One RTP packet as sent (seq, ts, ...) and when the capture saw it."""

    seq: int
    ts: int
    arrival_ns: int
    ssrc: int = 0x11223344
    pt: int = 0
    marker: bool = False
    payload_len: int = 160

    @property
    def size(self) -> int:
        """RTP bytes: 12-byte header + payload."""
        return 12 + self.payload_len


def by_arrival(pkts: Iterable[Rtp]) -> list[Rtp]:
    """Capture order. Python's sort is stable: equal times keep list order."""
    return sorted(pkts, key=lambda p: p.arrival_ns)


def voice(n: int, *, seq0: int = 1000, ts0: int = 160_000, t0_ns: int = T0_NS,
          ptime_ns: int = 20 * MS, ts_step: int = 160, **fields) -> list[Rtp]:
    """A perfectly regular stream: seq and timestamp wrap like the real fields."""
    return [Rtp(seq=(seq0 + i) & 0xFFFF, ts=(ts0 + i * ts_step) & 0xFFFFFFFF,
                arrival_ns=t0_ns + i * ptime_ns, **fields) for i in range(n)]


def _index(pkts: Sequence[Rtp], seq: int) -> int:
    for i, p in enumerate(pkts):
        if p.seq == seq:
            return i
    raise KeyError(seq)


def dropped(pkts: Sequence[Rtp], *seqs: int) -> list[Rtp]:
    """Loses the (first) packet carrying each sequence number."""
    out = list(pkts)
    for s in seqs:
        del out[_index(out, s)]
    return out


def delayed(pkts: Sequence[Rtp], seq: int, delay_ns: int) -> list[Rtp]:
    """That packet arrives delay_ns later than scheduled (maybe after others)."""
    out = list(pkts)
    i = _index(out, seq)
    out[i] = replace(out[i], arrival_ns=out[i].arrival_ns + delay_ns)
    return by_arrival(out)


def duplicated(pkts: Sequence[Rtp], seq: int, delay_ns: int) -> list[Rtp]:
    """A copy of that packet arrives again delay_ns after the original."""
    out = list(pkts)
    p = out[_index(out, seq)]
    out.append(replace(p, arrival_ns=p.arrival_ns + delay_ns))
    return by_arrival(out)


def jittered(pkts: Sequence[Rtp], delays_ns: Sequence[int]) -> list[Rtp]:
    """Adds a per-packet network delay (in schedule order), then re-sorts."""
    return by_arrival(replace(p, arrival_ns=p.arrival_ns + d) for p, d in zip(pkts, delays_ns))


def random_delays(n: int, max_ns: int, seed: int, unit_ns: int = 1000) -> list[int]:
    """Uniform delays in [0, max_ns], whole microseconds (a usec pcap keeps them)."""
    rng = random.Random(seed)
    return [rng.randrange(0, max_ns // unit_ns + 1) * unit_ns for _ in range(n)]


# --------------------------------------------------------------------------
# RTP / RTCP / SIP payload bytes


def rtp_bytes(p: Rtp) -> bytes:
    """RFC 3550 fixed header (V=2, no padding/extension/CSRC) + filler payload."""
    b0 = 0x80
    b1 = (0x80 if p.marker else 0) | (p.pt & 0x7F)
    body = bytes((p.seq + i) & 0xFF for i in range(p.payload_len))
    return struct.pack("!BBHII", b0, b1, p.seq & 0xFFFF, p.ts & 0xFFFFFFFF, p.ssrc) + body


def _rtcp_header(count: int, pt: int, body: bytes) -> bytes:
    assert len(body) % 4 == 0
    return struct.pack("!BBH", 0x80 | count, pt, (len(body) + 4) // 4 - 1) + body


@dataclass(frozen=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # 0..255
    cumulative_lost: int  # -2^23 .. 2^23-1
    ext_high_seq: int
    jitter: int
    lsr: int
    dlsr: int

    def pack(self) -> bytes:
        cum = self.cumulative_lost & 0xFFFFFF  # 24-bit two's complement
        return struct.pack("!IB3sIIII", self.ssrc, self.fraction_lost, cum.to_bytes(3, "big"),
                           self.ext_high_seq, self.jitter, self.lsr, self.dlsr)


def rtcp_sr(ssrc: int, ntp: int, rtp_ts: int, packets: int, octets: int,
            blocks: Sequence[ReportBlock] = ()) -> bytes:
    body = struct.pack("!IQIII", ssrc, ntp, rtp_ts, packets, octets)
    return _rtcp_header(len(blocks), 200, body + b"".join(b.pack() for b in blocks))


def rtcp_rr(ssrc: int, blocks: Sequence[ReportBlock] = ()) -> bytes:
    return _rtcp_header(len(blocks), 201, struct.pack("!I", ssrc) + b"".join(b.pack() for b in blocks))


def rtcp_sdes_cname(ssrc: int, cname: bytes) -> bytes:
    chunk = struct.pack("!IBB", ssrc, 1, len(cname)) + cname + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)  # the item list ends with null octets to a word
    return _rtcp_header(1, 202, chunk)


def rtcp_bye(*ssrcs: int, reason: bytes = b"") -> bytes:
    body = b"".join(struct.pack("!I", s) for s in ssrcs)
    if reason:
        body += bytes([len(reason)]) + reason
        body += b"\x00" * (-len(body) % 4)
    return _rtcp_header(len(ssrcs), 203, body)


def rtcp_app(ssrc: int, name: bytes, data: bytes) -> bytes:
    assert len(name) == 4 and len(data) % 4 == 0
    return _rtcp_header(0, 204, struct.pack("!I", ssrc) + name + data)


def rtcp_xr_dlrr(ssrc: int, sub_ssrc: int, lrr: int, dlrr: int) -> bytes:
    """XR (RFC 3611) with one DLRR report block (BT=5)."""
    block = struct.pack("!BBH", 5, 0, 3) + struct.pack("!III", sub_ssrc, lrr, dlrr)
    return _rtcp_header(0, 207, struct.pack("!I", ssrc) + block)


def sip_message(call_id: str = "capgen-1@example.com", body_len: int = 0) -> bytes:
    """A syntactically plain SIP OPTIONS request, optionally with a large body."""
    body = (b"v=0\r\n" + b"a=" + b"x" * max(0, body_len - 9) + b"\r\n")[:body_len] if body_len else b""
    head = (
        "OPTIONS sip:bob@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bK-capgen\r\n"
        "From: <sip:alice@example.com>;tag=1\r\n"
        "To: <sip:bob@example.com>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


# --------------------------------------------------------------------------
# Network layers (scapy) -> bytes


def udp_ip(payload: bytes, *, sport: int = RTP_SPORT, dport: int = RTP_DPORT, v6: bool = False,
           src: str | None = None, dst: str | None = None) -> Packet:
    """IPv4 or IPv6 / UDP / payload."""
    if v6:
        ip = IPv6(src=src or SRC6, dst=dst or DST6)
    else:
        ip = IP(src=src or SRC4, dst=dst or DST4)
    return ip / UDP(sport=sport, dport=dport) / Raw(payload)


def udp_ip6_ext(payload: bytes, *, sport: int = RTP_SPORT, dport: int = RTP_DPORT) -> Packet:
    """IPv6 with hop-by-hop, destination options and a routing header before UDP."""
    return (IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
            / IPv6ExtHdrRouting(addresses=["2001:db8::99"], segleft=0)
            / IPv6ExtHdrDestOpt() / UDP(sport=sport, dport=dport) / Raw(payload))


def with_ipv4_options(l3: Packet) -> Packet:
    """The same IPv4 packet with a record-route option (IHL 7)."""
    ip = l3.copy()
    ip.options = [IPOption_RR(routers=["192.0.2.9"])]
    ip.ihl = ip.len = ip.chksum = None
    return ip


def with_ipv6_ah(l3: Packet) -> Packet:
    """The same IPv6 packet with an authentication header before UDP."""
    return IPv6(src=l3.src, dst=l3.dst) / AH(nh=17, payloadlen=4, spi=0x100, seq=1, icv=b"\x00" * 12) \
        / l3.payload.copy()


def turn_channel_data(payload: bytes, channel: int = 0x4001) -> bytes:
    """TURN ChannelData (RFC 8656 section 12.4), padded to 4 bytes as over UDP."""
    return struct.pack("!HH", channel, len(payload)) + payload + b"\x00" * (-len(payload) % 4)


def ether(l3: Packet | bytes, ethertype: int | None = None) -> Packet:
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    if ethertype is not None:
        e.type = ethertype
    return e / l3


def ethertype_of(l3: Packet) -> int:
    return 0x86DD if isinstance(l3, IPv6) else 0x0800


# -- link-layer headers by hand: their byte order is the point --------------


def sll(l3: Packet) -> bytes:
    """Linux cooked v1 (LINKTYPE_LINUX_SLL = 113)."""
    hdr = struct.pack("!HHH8sH", 0, 1, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00", ethertype_of(l3))
    return hdr + bytes(l3)


def sll2(l3: Packet) -> bytes:
    """Linux cooked v2 (LINKTYPE_LINUX_SLL2 = 276)."""
    hdr = struct.pack("!HHIHBB8s", ethertype_of(l3), 0, 3, 1, 0, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00")
    return hdr + bytes(l3)


def null_link(l3: Packet, byteorder: str = "<", v6_family: int = 30) -> bytes:
    """BSD loopback (LINKTYPE_NULL = 0): family in the writer's byte order."""
    fam = v6_family if isinstance(l3, IPv6) else 2
    return struct.pack(byteorder + "I", fam) + bytes(l3)


def loop_link(l3: Packet, v6_family: int = 24) -> bytes:
    """OpenBSD loopback (LINKTYPE_LOOP = 108): family always big-endian."""
    fam = v6_family if isinstance(l3, IPv6) else 2
    return struct.pack("!I", fam) + bytes(l3)


# -- Ethernet-level encapsulations -----------------------------------------


def dot1q(l3: Packet, vlan: int = 100) -> Packet:
    return ether(Dot1Q(vlan=vlan) / l3)


def qinq(l3: Packet, outer_type: int = 0x88A8, outer: int = 200, inner: int = 100) -> Packet:
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=outer_type) / \
        Dot1AD(vlan=outer, type=0x8100) / Dot1Q(vlan=inner) / l3


def mpls(l3: Packet, labels: Sequence[int] = (16, 17)) -> Packet:
    stack = None
    for i, label in enumerate(labels):
        m = MPLS(label=label, s=1 if i == len(labels) - 1 else 0, ttl=64)
        stack = m if stack is None else stack / m
    return ether(stack / l3, 0x8847)


def pppoe_session(l3: Packet) -> Packet:
    proto = 0x0057 if isinstance(l3, IPv6) else 0x0021
    return ether(PPPoE(sessionid=0x1234) / PPP(proto=proto) / l3, 0x8864)


# -- tunnels ---------------------------------------------------------------

OUTER_SRC, OUTER_DST = "192.0.2.1", "192.0.2.2"


def gre_v0(l3: Packet, checksum: bool = False, key: bool = False, seq: bool = False) -> Packet:
    g = GRE(proto=ethertype_of(l3))
    if checksum:
        g.chksum_present = 1
    if key:
        g.key_present, g.key = 1, 0xCAFE
    if seq:
        g.seqnum_present, g.sequence_number = 1, 77
    return ether(IP(src=OUTER_SRC, dst=OUTER_DST) / g / l3)


def gre_teb(l3: Packet) -> Packet:
    """GRE carrying a whole Ethernet frame (transparent Ethernet bridging)."""
    return ether(IP(src=OUTER_SRC, dst=OUTER_DST) / GRE(proto=0x6558) / ether(l3))


def gre_v1_pptp(l3: Packet, seq: bool = True, ack: bool = True, hdlc: bool = True) -> Packet:
    """Enhanced GRE (RFC 2637) carrying PPP, with or without address/control."""
    g = GRE_PPTP(call_id=9)
    if seq:
        g.seqnum_present, g.sequence_number = 1, 5
    if ack:
        g.acknum_present, g.ack_number = 1, 4
    ppp = (HDLC() / PPP(proto=0x0021)) if hdlc else PPP(proto=0x0021)
    return ether(IP(src=OUTER_SRC, dst=OUTER_DST) / g / ppp / l3)


def erspan_i(l3: Packet) -> Packet:
    """ERSPAN type I: GRE 0x88BE without a sequence number, no ERSPAN header."""
    return ether(IP(src=OUTER_SRC, dst=OUTER_DST) / GRE(proto=0x88BE) / ether(l3))


def erspan_ii(l3: Packet) -> Packet:
    g = GRE(proto=0x88BE, seqnum_present=1, sequence_number=3)
    return ether(IP(src=OUTER_SRC, dst=OUTER_DST) / g / ERSPAN_II(session_id=7) / ether(l3))


def erspan_iii(l3: Packet, platform: bool = False) -> Packet:
    g = GRE(proto=0x22EB, seqnum_present=1, sequence_number=3)
    hdr = ERSPAN_III(session_id=7, timestamp=123456, o=1 if platform else 0)
    if platform:
        hdr = hdr / ERSPAN_PlatformSpecific(platf_id=3, info1=1, info2=2)
    return ether(IP(src=OUTER_SRC, dst=OUTER_DST) / g / hdr / ether(l3))


def ip_in_ip(l3: Packet) -> Packet:
    """IPv4-in-IPv4 (protocol 4) or IPv6-in-IPv4 (protocol 41)."""
    proto = 41 if isinstance(l3, IPv6) else 4
    return ether(IP(src=OUTER_SRC, dst=OUTER_DST, proto=proto) / l3)


def vxlan(l3: Packet) -> Packet:
    return ether(IP(src=OUTER_SRC, dst=OUTER_DST) / UDP(sport=51000, dport=4789)
                 / VXLAN(vni=42, flags=0x08) / ether(l3))


# -- IP fragments ------------------------------------------------------------


def udp_datagram(payload: bytes, sport: int, dport: int, v6: bool = False) -> bytes:
    """The UDP header + payload as it sits after the IP header (checksum set)."""
    pkt = udp_ip(payload, sport=sport, dport=dport, v6=v6)
    return bytes(pkt[UDP])


def ipv4_fragments(payload: bytes, *, sport: int = 5060, dport: int = 5060, ident: int = 0x4242,
                   frag_size: int = 1480) -> list[Packet]:
    """IPv4 fragments of one UDP datagram, in order; frag_size a multiple of 8."""
    assert frag_size % 8 == 0
    data = udp_datagram(payload, sport, dport)
    out = []
    for off in range(0, len(data), frag_size):
        chunk = data[off:off + frag_size]
        more = off + frag_size < len(data)
        out.append(IP(src=SRC4, dst=DST4, id=ident, proto=17, flags="MF" if more else 0,
                      frag=off // 8) / Raw(chunk))
    return out


def ipv4_fragment_piece(payload: bytes, off: int, length: int, *, more: bool, sport: int = 5060,
                        dport: int = 5060, ident: int = 0x4242) -> Packet:
    """An arbitrary slice of the datagram as a fragment (for overlaps)."""
    data = udp_datagram(payload, sport, dport)
    return IP(src=SRC4, dst=DST4, id=ident, proto=17, flags="MF" if more else 0,
              frag=off // 8) / Raw(data[off:off + length])


def ipv6_fragments(payload: bytes, *, sport: int = 5060, dport: int = 5060, ident: int = 0x7777,
                   frag_size: int = 1232) -> list[Packet]:
    assert frag_size % 8 == 0
    data = udp_datagram(payload, sport, dport, v6=True)
    out = []
    for off in range(0, len(data), frag_size):
        chunk = data[off:off + frag_size]
        more = off + frag_size < len(data)
        out.append(IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrFragment(nh=17, offset=off // 8, m=int(more), id=ident)
                   / Raw(chunk))
    return out


# --------------------------------------------------------------------------
# Capture files

LINKTYPE_ETHERNET = 1
LINKTYPE_NULL = 0
LINKTYPE_RAW = 101
LINKTYPE_RAW_BSD = 12
LINKTYPE_RAW_OPENBSD = 14
LINKTYPE_LOOP = 108
LINKTYPE_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_SLL2 = 276

Frame = tuple  # (ts_ns: int, data: bytes)


def write_pcap(path: Path, frames: Iterable[Frame], *, linktype: int = LINKTYPE_ETHERNET,
               nsec: bool = False, byteorder: str = "<", snaplen: int = 262144) -> Path:
    """Classic pcap: usec (0xa1b2c3d4) or nsec (0xa1b23c4d) magic, "<" or ">"."""
    magic = 0xA1B23C4D if nsec else 0xA1B2C3D4
    out = [struct.pack(byteorder + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for ts_ns, data in frames:
        data = bytes(data)
        sec, frac = divmod(ts_ns, NS)
        if not nsec:
            assert frac % 1000 == 0, "timestamp not representable in microseconds"
            frac //= 1000
        out.append(struct.pack(byteorder + "IIII", sec, frac, len(data), len(data)) + data)
    path.write_bytes(b"".join(out))
    return path


def _pad4(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) % 4)


class PcapNg:
    """A pcapng writer: call section(), interface(), then packet blocks.

    Timestamps are given in ns and converted to each interface's units; a
    value the interface cannot represent exactly is refused, so a test never
    relies on rounding it did not choose.
    """

    def __init__(self) -> None:
        self.blocks: list[bytes] = []
        self.bo = "<"
        self.ifaces: list[tuple[int, object, int]] = []  # (linktype, resol, offset_s)

    def _block(self, btype: int, body: bytes) -> None:
        body = _pad4(body)
        n = len(body) + 12
        self.blocks.append(struct.pack(self.bo + "II", btype, n) + body + struct.pack(self.bo + "I", n))

    def _options(self, opts: Sequence[tuple[int, bytes]]) -> bytes:
        if not opts:
            return b""
        out = b"".join(struct.pack(self.bo + "HH", code, len(v)) + _pad4(v) for code, v in opts)
        return out + struct.pack(self.bo + "HH", 0, 0)

    def section(self, byteorder: str = "<", options: Sequence[tuple[int, bytes]] = ()) -> "PcapNg":
        """A new Section Header Block; interfaces restart from 0."""
        self.bo = byteorder
        self.ifaces = []
        body = struct.pack(self.bo + "IHHq", 0x1A2B3C4D, 1, 0, -1) + self._options(options)
        self._block(0x0A0D0D0A, body)
        return self

    def interface(self, linktype: int = LINKTYPE_ETHERNET, *, tsresol: int | None = None,
                  tsoffset_s: int = 0, snaplen: int = 0, name: bytes = b"") -> int:
        """Interface Description Block. tsresol is the raw option byte
        (n = 10^-n s, 0x80|n = 2^-n s); None leaves the default (10^-6)."""
        opts = []
        if name:
            opts.append((2, name))  # if_name before the options under test
        if tsresol is not None:
            opts.append((9, bytes([tsresol])))
        if tsoffset_s:
            opts.append((14, struct.pack(self.bo + "q", tsoffset_s)))
        self._block(1, struct.pack(self.bo + "HHI", linktype, 0, snaplen) + self._options(opts))
        self.ifaces.append((linktype, 6 if tsresol is None else tsresol, tsoffset_s))
        return len(self.ifaces) - 1

    def ticks(self, iface: int, ts_ns: int) -> int:
        _, res, off = self.ifaces[iface]
        t = Fraction(ts_ns - off * NS, NS)
        units = t * (2 ** (res & 0x7F) if res & 0x80 else 10 ** res)
        assert units.denominator == 1, f"{ts_ns} ns not representable with tsresol {res:#x}"
        return int(units)

    def epb(self, iface: int, ts_ns: int, data: bytes, options: Sequence[tuple[int, bytes]] = ()) -> None:
        data = bytes(data)
        t = self.ticks(iface, ts_ns)
        body = struct.pack(self.bo + "IIIII", iface, t >> 32, t & 0xFFFFFFFF, len(data), len(data))
        self._block(6, body + _pad4(data) + self._options(options))

    def pb(self, iface: int, ts_ns: int, data: bytes) -> None:
        """Obsolete Packet Block (type 2): 16-bit interface id and drop count."""
        data = bytes(data)
        t = self.ticks(iface, ts_ns)
        body = struct.pack(self.bo + "HHIIII", iface, 0, t >> 32, t & 0xFFFFFFFF, len(data), len(data))
        self._block(2, body + _pad4(data))

    def spb(self, data: bytes) -> None:
        """Simple Packet Block: interface 0, no timestamp."""
        data = bytes(data)
        self._block(3, struct.pack(self.bo + "I", len(data)) + _pad4(data))

    def other_block(self, btype: int, body: bytes = b"\x00" * 8) -> None:
        """A block readers must skip (name resolution, statistics, custom)."""
        self._block(btype, body)

    def write(self, path: Path) -> Path:
        path.write_bytes(b"".join(self.blocks))
        return path


# --------------------------------------------------------------------------
# Glue


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ether_ipv4_udp_fast(payload: bytes, *, sport: int = RTP_SPORT, dport: int = RTP_DPORT,
                        src: str = SRC4, dst: str = DST4) -> bytes:
    """Byte for byte what `bytes(ether(udp_ip(payload)))` gives, ~50x faster
    (test_capture_formats checks the two agree); for streams of thousands."""
    s, d = bytes(map(int, src.split("."))), bytes(map(int, dst.split(".")))
    ulen = 8 + len(payload)
    pseudo = s + d + struct.pack("!BBH", 0, 17, ulen)
    udp_sum = _csum(pseudo + struct.pack("!HHHH", sport, dport, ulen, 0) + payload) or 0xFFFF
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 1, 0, 64, 17, 0, s, d)
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
    return eth + ip + struct.pack("!HHHH", sport, dport, ulen, udp_sum) + payload


def rtp_frames(pkts: Iterable[Rtp], link=None, *, v6: bool = False, sport: int = RTP_SPORT,
               dport: int = RTP_DPORT) -> list[Frame]:
    """(arrival ns, frame bytes) per packet, `link` wrapped around scapy's
    IP/UDP; without a link, plain Ethernet/IPv4 built the fast way."""
    if link is None and not v6:
        return [(p.arrival_ns, ether_ipv4_udp_fast(rtp_bytes(p), sport=sport, dport=dport)) for p in pkts]
    link = link or ether
    return [(p.arrival_ns, bytes(link(udp_ip(rtp_bytes(p), sport=sport, dport=dport, v6=v6))))
            for p in pkts]


def write_rtp(path: Path, pkts: Iterable[Rtp], **kw) -> Path:
    """The common case: one stream, Ethernet/IPv4/UDP, classic usec pcap."""
    return write_pcap(path, rtp_frames(pkts, **kw))
