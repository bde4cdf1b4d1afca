"""One small RTP stream and one SIP message, written in every container, link
type and tunnel the engine supports, must give the statistics the stream was
built to have and the exact capture times it was written with.

Arrival times sit on a 1/64 s grid (15.625 ms): exact in microseconds,
nanoseconds and every power-of-two resolution from 2^-6 up, so each variant
can carry the very same times.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

import pytest
from scapy.layers.inet6 import IPv6ExtHdrHopByHop
from scapy.utils import PcapNgWriter, PcapWriter

import capgen as cg
from capgen import MS, NS, T0_NS
from test_rtp_statistics import a8_model
from warpsniff._engine import RUN_EOF, Engine
from warpsniff.replay import replay
from warpsniff.report import streams_to_dicts

GRID = NS // 64
SIP_AT = T0_NS + 21 * GRID  # between two RTP packets


def common_stream() -> list[cg.Rtp]:
    """40 packets, 31.25 ms apart: one lost, one duplicate, one late, one delayed."""
    pkts = cg.voice(40, seq0=7000, ts0=3_000_000, ptime_ns=2 * GRID, ts_step=250, payload_len=250)
    pkts = cg.dropped(pkts, 7010)
    pkts = cg.duplicated(pkts, 7020, GRID)
    pkts = cg.delayed(pkts, 7030, 3 * GRID)  # arrives after 7031
    pkts = cg.delayed(pkts, 7005, GRID)      # half a period late, still in order
    return pkts


STREAM = common_stream()
SIP = cg.sip_message()
EXPECTED = dict(packets=40, expected=40, lost=1, duplicates=1, reordered=1, seq_resets=0,
                ssrc=STREAM[0].ssrc, payload_type=0, markers=0, clock_rate=8000,
                bytes=sum(p.size for p in STREAM),
                first_ts=T0_NS / NS, last_ts=(T0_NS + 39 * 2 * GRID) / NS)
FIRST_NS, LAST_NS = T0_NS, T0_NS + 39 * 2 * GRID
MAX_J, MEAN_J, MAX_DELTA = a8_model(STREAM, 8000)


def test_stream_is_what_the_statistics_say():
    assert [p.seq for p in STREAM[28:33]] == [7028, 7029, 7031, 7030, 7032]
    assert sum(p.seq == 7020 for p in STREAM) == 2 and all(p.seq != 7010 for p in STREAM)
    assert all((p.arrival_ns - T0_NS) % GRID == 0 for p in STREAM)
    assert MAX_J > 0


def test_fast_builder_matches_scapy():
    for p in STREAM[:5]:
        payload = cg.rtp_bytes(p)
        assert cg.ether_ipv4_udp_fast(payload) == bytes(cg.ether(cg.udp_ip(payload)))


# --------------------------------------------------------------------------
# helpers


def frames(link: Callable = cg.ether, v6: bool = False) -> list[tuple[int, bytes]]:
    """RTP + one SIP message (5060 -> 5060), in arrival order."""
    out = cg.rtp_frames(STREAM, link, v6=v6)
    sip = bytes(link(cg.udp_ip(SIP, sport=5060, dport=5060, v6=v6)))
    out.append((SIP_AT, sip))
    return sorted(out, key=lambda f: f[0])


def signalling_payloads(path) -> list[tuple[int, bytes, int]]:
    """(ts_ns, payload, reassembled) of every signalling record, straight from the engine."""
    e = Engine()
    e.open(str(path))
    out = []
    try:
        while True:
            rc = e.run()
            records, arena = e.drain_signalling()
            for r in records:
                off, n = int(r["offset"]), int(r["length"])
                out.append((int(r["ts_ns"]), bytes(arena[off:off + n]), int(r["reassembled"])))
            if rc == RUN_EOF:
                return out
    finally:
        e.close()


def check(path, v6: bool = False, times: bool = True):
    """The stream and the SIP message came through exactly as built."""
    r = replay([str(path)])
    assert r.errors == []
    assert {k: v for k, v in r.decode_errors.items() if v} == {}
    streams = streams_to_dicts(r.streams)
    assert len(streams) == 1, streams
    s = streams[0]
    src, dst = (f"[{cg.SRC6}]", f"[{cg.DST6}]") if v6 else (cg.SRC4, cg.DST4)
    assert s["src"] == f"{src}:{cg.RTP_SPORT}" and s["dst"] == f"{dst}:{cg.RTP_DPORT}"
    want = dict(EXPECTED)
    if not times:
        del want["first_ts"], want["last_ts"]
    assert {k: s[k] for k in want} == want
    assert r.counters["rtp_packets"] == len(STREAM)
    assert r.counters["sip_udp"] == 1 and r.signalling_records == 1
    sig = signalling_payloads(path)
    assert [payload for _, payload, _ in sig] == [SIP]
    if times:
        assert int(r.streams["first_ns"][0]) == FIRST_NS
        assert int(r.streams["last_ns"][0]) == LAST_NS
        assert sig[0][0] == SIP_AT
        rec = r.streams[0]
        assert float(rec["max_jitter_ms"]) == pytest.approx(MAX_J, rel=1e-6)
        assert float(rec["mean_jitter_ms"]) == pytest.approx(MEAN_J, rel=1e-6)
        assert float(rec["max_delta_ms"]) == pytest.approx(MAX_DELTA, rel=1e-9)
    return r


# --------------------------------------------------------------------------
# link types and encapsulations (classic usec pcap)


@dataclass(frozen=True)
class Link:
    linktype: int
    wrap: Callable
    v6: bool = False


def _plain(l3):
    return bytes(l3)


LINKS = {
    "ethernet": Link(cg.LINKTYPE_ETHERNET, cg.ether),
    "ethernet_ipv6": Link(cg.LINKTYPE_ETHERNET, cg.ether, v6=True),
    "vlan": Link(cg.LINKTYPE_ETHERNET, cg.dot1q),
    "qinq_88a8": Link(cg.LINKTYPE_ETHERNET, cg.qinq),
    "qinq_9100": Link(cg.LINKTYPE_ETHERNET, lambda l3: cg.qinq(l3, outer_type=0x9100)),
    "qinq_ipv6": Link(cg.LINKTYPE_ETHERNET, cg.qinq, v6=True),
    "mpls_one_label": Link(cg.LINKTYPE_ETHERNET, lambda l3: cg.mpls(l3, labels=(100,))),
    "mpls_two_labels": Link(cg.LINKTYPE_ETHERNET, cg.mpls),
    "mpls_ipv6": Link(cg.LINKTYPE_ETHERNET, cg.mpls, v6=True),
    "pppoe": Link(cg.LINKTYPE_ETHERNET, cg.pppoe_session),
    "pppoe_ipv6": Link(cg.LINKTYPE_ETHERNET, cg.pppoe_session, v6=True),
    "sll": Link(cg.LINKTYPE_SLL, cg.sll),
    "sll_ipv6": Link(cg.LINKTYPE_SLL, cg.sll, v6=True),
    "sll2": Link(cg.LINKTYPE_SLL2, cg.sll2),
    "sll2_ipv6": Link(cg.LINKTYPE_SLL2, cg.sll2, v6=True),
    "raw_101": Link(cg.LINKTYPE_RAW, _plain),
    "raw_101_ipv6": Link(cg.LINKTYPE_RAW, _plain, v6=True),
    "raw_12": Link(cg.LINKTYPE_RAW_BSD, _plain),
    "raw_14": Link(cg.LINKTYPE_RAW_OPENBSD, _plain, v6=True),
    "ipv4_228": Link(cg.LINKTYPE_IPV4, _plain),
    "ipv6_229": Link(cg.LINKTYPE_IPV6, _plain, v6=True),
    "null_le": Link(cg.LINKTYPE_NULL, lambda l3: cg.null_link(l3, "<")),
    "null_be": Link(cg.LINKTYPE_NULL, lambda l3: cg.null_link(l3, ">")),
    "null_ipv6_30": Link(cg.LINKTYPE_NULL, lambda l3: cg.null_link(l3, "<", 30), v6=True),
    "null_ipv6_28_be": Link(cg.LINKTYPE_NULL, lambda l3: cg.null_link(l3, ">", 28), v6=True),
    "null_ipv6_24": Link(cg.LINKTYPE_NULL, lambda l3: cg.null_link(l3, "<", 24), v6=True),
    "loop": Link(cg.LINKTYPE_LOOP, cg.loop_link),
    "loop_ipv6": Link(cg.LINKTYPE_LOOP, cg.loop_link, v6=True),
    "ipv4_options": Link(cg.LINKTYPE_ETHERNET, lambda l3: cg.ether(cg.with_ipv4_options(l3))),
    "ipv6_ah": Link(cg.LINKTYPE_ETHERNET, lambda l3: cg.ether(cg.with_ipv6_ah(l3)), v6=True),
    "gre": Link(cg.LINKTYPE_ETHERNET, cg.gre_v0),
    "gre_ipv6_inner": Link(cg.LINKTYPE_ETHERNET, cg.gre_v0, v6=True),
    "gre_checksum_key_seq": Link(cg.LINKTYPE_ETHERNET,
                                 lambda l3: cg.gre_v0(l3, checksum=True, key=True, seq=True)),
    "gre_key": Link(cg.LINKTYPE_ETHERNET, lambda l3: cg.gre_v0(l3, key=True)),
    "gre_teb": Link(cg.LINKTYPE_ETHERNET, cg.gre_teb),
    "gre_v1_pptp": Link(cg.LINKTYPE_ETHERNET, cg.gre_v1_pptp),
    "gre_v1_pptp_bare": Link(cg.LINKTYPE_ETHERNET,
                             lambda l3: cg.gre_v1_pptp(l3, seq=False, ack=False, hdlc=False)),
    "gre_v1_pptp_seq_only": Link(cg.LINKTYPE_ETHERNET, lambda l3: cg.gre_v1_pptp(l3, ack=False)),
    "erspan_i": Link(cg.LINKTYPE_ETHERNET, cg.erspan_i),
    "erspan_ii": Link(cg.LINKTYPE_ETHERNET, cg.erspan_ii),
    "erspan_iii": Link(cg.LINKTYPE_ETHERNET, cg.erspan_iii),
    "erspan_iii_platform": Link(cg.LINKTYPE_ETHERNET, lambda l3: cg.erspan_iii(l3, platform=True)),
    "erspan_ii_ipv6_inner": Link(cg.LINKTYPE_ETHERNET, cg.erspan_ii, v6=True),
    "ip_in_ip": Link(cg.LINKTYPE_ETHERNET, cg.ip_in_ip),
    "ipv6_in_ipv4": Link(cg.LINKTYPE_ETHERNET, cg.ip_in_ip, v6=True),
    "vxlan": Link(cg.LINKTYPE_ETHERNET, cg.vxlan),
    "vxlan_ipv6_inner": Link(cg.LINKTYPE_ETHERNET, cg.vxlan, v6=True),
    "vlan_in_vxlan": Link(cg.LINKTYPE_ETHERNET, lambda l3: cg.vxlan(cg.Dot1Q(vlan=5) / l3)),
    "vlan_mpls_in_gre_teb": Link(cg.LINKTYPE_ETHERNET, lambda l3: cg.gre_teb(cg.Dot1Q(vlan=9) / l3)),
}


@pytest.mark.parametrize("name", sorted(LINKS))
def test_link_and_encapsulation(tmp_path, name):
    link = LINKS[name]
    path = cg.write_pcap(tmp_path / f"{name}.pcap", frames(link.wrap, link.v6), linktype=link.linktype)
    check(path, v6=link.v6)


def test_ipv6_extension_headers_before_udp(tmp_path):
    fr = [(p.arrival_ns, bytes(cg.ether(cg.udp_ip6_ext(cg.rtp_bytes(p))))) for p in STREAM]
    fr.append((SIP_AT, bytes(cg.ether(cg.udp_ip6_ext(SIP, sport=5060, dport=5060)))))
    fr.sort(key=lambda f: f[0])
    hdr = cg.udp_ip6_ext(b"x")
    assert [layer.__name__ for layer in hdr.layers()][:5] == [
        "IPv6", "IPv6ExtHdrHopByHop", "IPv6ExtHdrDestOpt", "IPv6ExtHdrRouting", "IPv6ExtHdrDestOpt"]
    check(cg.write_pcap(tmp_path / "ext.pcap", fr), v6=True)


def test_rtp_in_turn_channel_data(tmp_path):
    fr = [(p.arrival_ns, cg.ether_ipv4_udp_fast(cg.turn_channel_data(cg.rtp_bytes(p)))) for p in STREAM]
    fr.append((SIP_AT, bytes(cg.ether(cg.udp_ip(SIP, sport=5060, dport=5060)))))
    check(cg.write_pcap(tmp_path / "turn.pcap", sorted(fr)))


# --------------------------------------------------------------------------
# classic pcap containers


@pytest.mark.parametrize("nsec", [False, True], ids=["usec", "nsec"])
@pytest.mark.parametrize("byteorder", ["<", ">"], ids=["le", "be"])
def test_classic_pcap(tmp_path, nsec, byteorder):
    path = cg.write_pcap(tmp_path / "c.pcap", frames(), nsec=nsec, byteorder=byteorder)
    check(path)


def test_nanosecond_times_are_kept(tmp_path):
    # times that only the nanosecond magic can carry: stream shifted by 123 ns
    shifted = [(t + 123, b) for t, b in frames()]
    r = replay([str(cg.write_pcap(tmp_path / "n.pcap", shifted, nsec=True))])
    assert int(r.streams["first_ns"][0]) == FIRST_NS + 123
    assert int(r.streams["last_ns"][0]) == LAST_NS + 123
    assert r.counters["first_ns"] == FIRST_NS + 123


def _scapy_packets():
    pkts = []
    for t, b in frames():
        p = cg.Ether(b)
        p.time = Decimal(t) / NS
        pkts.append(p)
    return pkts


def test_pcap_written_by_scapy(tmp_path):
    path = tmp_path / "scapy.pcap"
    w = PcapWriter(str(path), linktype=1, sync=True)
    w.write(_scapy_packets())
    w.close()
    check(path)


def test_pcapng_written_by_scapy(tmp_path):
    path = tmp_path / "scapy.pcapng"
    w = PcapNgWriter(str(path))
    w.write(_scapy_packets())
    w.close()
    check(path)


# --------------------------------------------------------------------------
# pcapng


def ng_one_iface(byteorder="<", **iface) -> cg.PcapNg:
    ng = cg.PcapNg().section(byteorder, options=[(4, b"capgen")])
    i = ng.interface(cg.LINKTYPE_ETHERNET, name=b"eth0", **iface)
    for t, b in frames():
        ng.epb(i, t, b)
    return ng


NG_IFACE = {
    "default_usec": {},
    "nsec": dict(tsresol=9),
    "100ns": dict(tsresol=7),
    "pow2_6": dict(tsresol=0x80 | 6),
    "pow2_20": dict(tsresol=0x80 | 20),
    "pow2_30": dict(tsresol=0x80 | 30),
    "tsoffset": dict(tsoffset_s=1_600_000_000),
    "tsoffset_nsec": dict(tsresol=9, tsoffset_s=1_699_999_990),
    "negative_tsoffset": dict(tsoffset_s=-100),
    "tsoffset_pow2": dict(tsresol=0x80 | 10, tsoffset_s=1_700_000_000),
    "psec_tsoffset": dict(tsresol=12, tsoffset_s=T0_NS // NS - 100),
    "pow2_40_tsoffset": dict(tsresol=0x80 | 40, tsoffset_s=T0_NS // NS - 100),
}


@pytest.mark.parametrize("byteorder", ["<", ">"], ids=["le", "be"])
@pytest.mark.parametrize("name", sorted(NG_IFACE))
def test_pcapng_resolution_and_offset(tmp_path, name, byteorder):
    check(ng_one_iface(byteorder, **NG_IFACE[name]).write(tmp_path / f"{name}.pcapng"))


def test_pcapng_tsoffset_is_applied(tmp_path):
    # the stored ticks alone are 100 s after the epoch: only if_tsoffset makes them 2023
    ng = ng_one_iface(tsoffset_s=T0_NS // NS - 100)
    assert ng.ticks(0, T0_NS) == 100 * 1_000_000
    check(ng.write(tmp_path / "off.pcapng"))


def test_pcapng_several_interfaces(tmp_path):
    """Frames alternate over three interfaces with their own link type,
    resolution and offset; one stream comes out."""
    ng = cg.PcapNg().section("<")
    eth = ng.interface(cg.LINKTYPE_ETHERNET)
    sll2 = ng.interface(cg.LINKTYPE_SLL2, tsresol=9)
    raw = ng.interface(cg.LINKTYPE_RAW, tsresol=0x80 | 20, tsoffset_s=1_000_000_000)
    wraps = [(eth, cg.ether), (sll2, cg.sll2), (raw, bytes)]
    items = [(p.arrival_ns, cg.rtp_bytes(p), cg.RTP_SPORT, cg.RTP_DPORT) for p in STREAM]
    items.append((SIP_AT, SIP, 5060, 5060))
    for k, (t, payload, sport, dport) in enumerate(sorted(items, key=lambda x: x[0])):
        iface, wrap = wraps[k % 3]
        ng.epb(iface, t, bytes(wrap(cg.udp_ip(payload, sport=sport, dport=dport))))
    check(ng.write(tmp_path / "ifaces.pcapng"))


def test_pcapng_several_sections(tmp_path):
    """Three sections (little, big, little endian), each with its own
    interfaces numbered from 0, and blocks a reader must skip."""
    ng = cg.PcapNg()
    fr = frames()
    thirds = [fr[:14], fr[14:28], fr[28:]]

    ng.section("<")
    i = ng.interface(cg.LINKTYPE_ETHERNET)
    for t, b in thirds[0]:
        ng.epb(i, t, b, options=[(1, b"first section")])
    ng.other_block(4)  # name resolution block
    ng.other_block(5, b"\x00" * 12)  # interface statistics

    ng.section(">")
    ng.interface(cg.LINKTYPE_SLL, tsresol=9)  # declared, unused
    j = ng.interface(cg.LINKTYPE_ETHERNET, tsresol=0x80 | 16)
    for t, b in thirds[1]:
        ng.epb(j, t, b)
    ng.other_block(0x40000BAD)  # a custom block

    ng.section("<")
    k = ng.interface(cg.LINKTYPE_ETHERNET, tsresol=9, tsoffset_s=1_699_000_000)
    for t, b in thirds[2]:
        ng.epb(k, t, b)
    check(ng.write(tmp_path / "sections.pcapng"))


@pytest.mark.parametrize("byteorder", ["<", ">"], ids=["le", "be"])
def test_pcapng_obsolete_packet_block(tmp_path, byteorder):
    ng = cg.PcapNg().section(byteorder)
    ng.interface(cg.LINKTYPE_ETHERNET)
    i = ng.interface(cg.LINKTYPE_ETHERNET, tsresol=9)
    for t, b in frames():
        ng.pb(i, t, b)
    check(ng.write(tmp_path / "pb.pcapng"))


@pytest.mark.parametrize("byteorder", ["<", ">"], ids=["le", "be"])
def test_pcapng_simple_packet_blocks(tmp_path, byteorder):
    """SPBs carry no time: the sequence statistics must still be exact."""
    ng = cg.PcapNg().section(byteorder)
    ng.interface(cg.LINKTYPE_SLL2)
    for t, b in frames(cg.sll2):
        ng.spb(b)
    check(ng.write(tmp_path / "spb.pcapng"), times=False)


# --------------------------------------------------------------------------
# the generator itself, read by an independent reader (tshark)


def test_tshark_reads_the_generated_times(tmp_path):
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark not installed")
    files = {
        "pcap_be_nsec": cg.write_pcap(tmp_path / "a.pcap", frames(), nsec=True, byteorder=">"),
        "ng_pow2_20_be": ng_one_iface(">", tsresol=0x80 | 20).write(tmp_path / "b.pcapng"),
        "ng_offset": ng_one_iface(tsresol=9, tsoffset_s=1_699_999_990).write(tmp_path / "c.pcapng"),
    }
    want = [t for t, _ in frames()]
    for name, path in files.items():
        out = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "frame.time_epoch"],
                             capture_output=True, text=True, check=True, timeout=60).stdout.split()
        got = [int(Decimal(x) * NS) for x in out]
        assert got == want, name


# --------------------------------------------------------------------------
# IP fragments


BIG_SIP = cg.sip_message("fragmented@example.com", body_len=3000)


def run_frames(tmp_path, frame_list, name="f.pcap", linktype=cg.LINKTYPE_ETHERNET):
    path = cg.write_pcap(tmp_path / name, frame_list, linktype=linktype)
    return path, replay([str(path)])


def timed(pkts, start=T0_NS, step=MS, link=cg.ether):
    return [(start + i * step, bytes(link(p))) for i, p in enumerate(pkts)]


V4_ORDERS = {
    "in_order": lambda f: f,
    "reversed": lambda f: f[::-1],
    "middle_first": lambda f: [f[1], f[0], f[2]],
    "duplicate_fragment": lambda f: [f[0], f[1], f[1], f[2]],
    "last_first_duplicate_first": lambda f: [f[2], f[0], f[0], f[1]],
}


def assert_reassembled_once(tmp_path, fragment_pkts, n_datagrams=1, payloads=(BIG_SIP,)):
    path, r = run_frames(tmp_path, timed(fragment_pkts))
    assert r.counters["fragments"] == len(fragment_pkts)
    assert r.counters["reassembled"] == n_datagrams
    assert r.counters["held_fragments"] == len(fragment_pkts) - n_datagrams
    assert r.signalling_records == n_datagrams
    assert {k: v for k, v in r.decode_errors.items() if v} == {}
    sig = signalling_payloads(path)
    assert sorted(p for _, p, _ in sig) == sorted(payloads)
    assert all(re for _, _, re in sig)


@pytest.mark.parametrize("order", sorted(V4_ORDERS))
def test_ipv4_fragments_reassembled(tmp_path, order):
    frags = cg.ipv4_fragments(BIG_SIP)
    assert len(frags) == 3 and all(f.flags.MF for f in frags[:2]) and not frags[2].flags.MF
    assert_reassembled_once(tmp_path, V4_ORDERS[order](frags))


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_duplicate_fragment_after_completion_counts_once(tmp_path, v6):
    frags = cg.ipv6_fragments(BIG_SIP) if v6 else cg.ipv4_fragments(BIG_SIP)
    path, r = run_frames(tmp_path, timed([frags[0], frags[1], frags[2], frags[2], frags[1]]))
    assert r.counters["reassembled"] == 1 and r.signalling_records == 1
    assert [p for _, p, _ in signalling_payloads(path)] == [BIG_SIP]


def test_ipv4_overlapping_fragment(tmp_path):
    frags = cg.ipv4_fragments(BIG_SIP)
    # bytes 1000..2400 again (same content), overlapping the first two fragments
    overlap = cg.ipv4_fragment_piece(BIG_SIP, 1000, 1400, more=True)
    assert_reassembled_once(tmp_path, [frags[0], overlap, frags[1], frags[2]])
    assert_reassembled_once(tmp_path, [overlap, frags[2], frags[0], frags[1]])


def test_ipv4_two_datagrams_interleaved(tmp_path):
    other = cg.sip_message("second@example.com", body_len=3300)
    a = cg.ipv4_fragments(BIG_SIP, ident=1)
    b = cg.ipv4_fragments(other, ident=2)
    assert_reassembled_once(tmp_path, [a[0], b[0], a[1], b[1], b[2], a[2]], n_datagrams=2,
                            payloads=(BIG_SIP, other))


@pytest.mark.parametrize("order", sorted(V4_ORDERS))
def test_ipv6_fragments_reassembled(tmp_path, order):
    frags = cg.ipv6_fragments(BIG_SIP)
    assert len(frags) == 3
    assert_reassembled_once(tmp_path, V4_ORDERS[order](frags))


def test_ipv6_fragments_after_hop_by_hop(tmp_path):
    frags = []
    for f in cg.ipv6_fragments(BIG_SIP):
        ip = f.copy()
        frag_hdr = ip.payload
        ip.remove_payload()
        ip.nh = None
        frags.append(ip / IPv6ExtHdrHopByHop() / frag_hdr)
    assert_reassembled_once(tmp_path, frags[::-1])


def keepalive_rtp(until_ns, step_ns=500 * MS):
    """Capture time moving on: a regular RTP stream from T0 to until_ns."""
    n = (until_ns - T0_NS) // step_ns + 1
    return cg.rtp_frames(cg.voice(n, ptime_ns=step_ns, ts_step=4000))


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_incomplete_fragments_time_out_after_30s(tmp_path, v6):
    frags = cg.ipv6_fragments(BIG_SIP) if v6 else cg.ipv4_fragments(BIG_SIP)
    held = [(T0_NS + 100 * MS, bytes(cg.ether(frags[0]))), (T0_NS + 200 * MS, bytes(cg.ether(frags[2])))]

    # 29 s of capture after the fragments: not yet
    _, r = run_frames(tmp_path, sorted(held + keepalive_rtp(T0_NS + 29 * NS)), "short.pcap")
    assert r.decode_errors["fragment_timeout"] == 0
    assert r.counters["reassembled"] == 0 and r.signalling_records == 0

    # 32 s: the set is given up, counted once
    _, r = run_frames(tmp_path, sorted(held + keepalive_rtp(T0_NS + 32 * NS)), "long.pcap")
    assert r.decode_errors["fragment_timeout"] == 1
    assert r.counters["reassembled"] == 0 and r.signalling_records == 0


def test_fragment_completing_after_the_timeout_is_not_reassembled(tmp_path):
    frags = cg.ipv4_fragments(BIG_SIP)
    fr = [(T0_NS, bytes(cg.ether(frags[0]))), (T0_NS + 31 * NS, bytes(cg.ether(frags[1]))),
          (T0_NS + 31 * NS + MS, bytes(cg.ether(frags[2])))]
    _, r = run_frames(tmp_path, fr)
    assert r.decode_errors["fragment_timeout"] == 1
    assert r.counters["reassembled"] == 0 and r.signalling_records == 0
