"""RTCP compound packets written by the test: the parsed fields must be the
ones written (docs/rtp-statistics.md, RTCP)."""
from __future__ import annotations

import struct

import pytest

import capgen as cg
from capgen import MS, T0_NS, ReportBlock
from test_rtp_statistics import SEQ_FIELDS, expect
from warpsniff.replay import replay
from warpsniff.report import format_addr, streams_to_dicts

SPORT, DPORT = 40001, 50001
SENDER = 0x01020304
BLOCK = ReportBlock(ssrc=0xA0B0C0D0, fraction_lost=64, cumulative_lost=1234, ext_high_seq=0x0001_1F40,
                    jitter=77, lsr=0x12345678, dlsr=0x00018000)
NTP = 0xE8A1B2C3_D4E5F607


def run(tmp_path, datagrams, *, sport=SPORT, dport=DPORT, src=cg.SRC4, dst=cg.DST4):
    """datagrams: [(ts_ns, payload)]"""
    fr = [(t, cg.ether_ipv4_udp_fast(p, sport=sport, dport=dport, src=src, dst=dst)) for t, p in datagrams]
    r = replay([str(cg.write_pcap(tmp_path / "rtcp.pcap", fr))])
    assert r.errors == []
    return r


def row_dict(row) -> dict:
    return {name: row[name].item() if hasattr(row[name], "item") else row[name] for name in row.dtype.names}


def only_source(r) -> dict:
    assert len(r.rtcp) == 1, r.rtcp
    return row_dict(r.rtcp[0])


def counts(src: dict) -> dict:
    keys = ("sr_count", "rr_count", "sdes_count", "bye_count", "app_count", "xr_count", "fb_count", "malformed")
    return {k: src[k] for k in keys}


def n_counts(sr=0, rr=0, sdes=0, bye=0, app=0, xr=0, fb=0, malformed=0) -> dict:
    return dict(sr_count=sr, rr_count=rr, sdes_count=sdes, bye_count=bye, app_count=app, xr_count=xr,
                fb_count=fb, malformed=malformed)


def block_fields(src: dict) -> dict:
    return dict(ssrc=src["rb_ssrc"], fraction_lost=src["rb_fraction_lost"],
                cumulative_lost=src["rb_cumulative_lost"], ext_high_seq=src["rb_ext_high_seq"],
                jitter=src["rb_jitter"], lsr=src["rb_lsr"], dlsr=src["rb_dlsr"])


def as_dict(b: ReportBlock) -> dict:
    return dict(ssrc=b.ssrc, fraction_lost=b.fraction_lost, cumulative_lost=b.cumulative_lost,
                ext_high_seq=b.ext_high_seq, jitter=b.jitter, lsr=b.lsr, dlsr=b.dlsr)


# --------------------------------------------------------------------------


def test_report_block_packing():
    # the writer itself: 24 bytes, 24-bit two's complement
    raw = ReportBlock(1, 2, -2, 3, 4, 5, 6).pack()
    assert len(raw) == 24 and raw[5:8] == b"\xff\xff\xfe"


def test_sender_report_with_one_block(tmp_path):
    sr = cg.rtcp_sr(SENDER, NTP, 123456789, 5000, 800000, [BLOCK])
    sdes = cg.rtcp_sdes_cname(SENDER, b"alice@example.com")
    t = T0_NS + 5 * MS
    r = run(tmp_path, [(t, sr + sdes)])
    s = only_source(r)
    assert format_addr(s["src"]) == cg.SRC4 and format_addr(s["dst"]) == cg.DST4
    assert (s["sport"], s["dport"], s["ssrc"]) == (SPORT, DPORT, SENDER)
    assert counts(s) == n_counts(sr=1, sdes=1)
    assert (s["sr_ntp"], s["sr_rtp_ts"], s["sr_packets"], s["sr_octets"]) == (NTP, 123456789, 5000, 800000)
    assert s["sr_arrival_ns"] == t
    assert s["has_report_block"] == 1
    assert block_fields(s) == as_dict(BLOCK)
    assert s["rb_arrival_ns"] == t and s["first_ns"] == t and s["last_ns"] == t
    assert r.counters["rtcp_packets"] == 1 and r.counters["rtcp_malformed"] == 0
    assert r.counters["rtp_packets"] == 0 and len(r.streams) == 0


def test_receiver_report(tmp_path):
    rr = cg.rtcp_rr(SENDER, [BLOCK])
    r = run(tmp_path, [(T0_NS, rr + cg.rtcp_sdes_cname(SENDER, b"bob"))])
    s = only_source(r)
    assert counts(s) == n_counts(rr=1, sdes=1)
    assert s["sr_ntp"] == 0 and s["sr_arrival_ns"] == 0
    assert s["has_report_block"] == 1 and block_fields(s) == as_dict(BLOCK)


def test_receiver_report_without_blocks_keeps_no_block(tmp_path):
    s = only_source(run(tmp_path, [(T0_NS, cg.rtcp_rr(SENDER) + cg.rtcp_sdes_cname(SENDER, b"x"))]))
    assert counts(s) == n_counts(rr=1, sdes=1)
    assert s["has_report_block"] == 0


def test_sdes_and_bye_compound(tmp_path):
    pkt = cg.rtcp_rr(SENDER) + cg.rtcp_sdes_cname(SENDER, b"carol@example.com") + \
        cg.rtcp_bye(SENDER, reason=b"hangup")
    s = only_source(run(tmp_path, [(T0_NS, pkt)]))
    assert counts(s) == n_counts(rr=1, sdes=1, bye=1)


def test_bare_sdes_then_bye(tmp_path):
    pkt = cg.rtcp_sdes_cname(SENDER, b"dave") + cg.rtcp_bye(SENDER)
    s = only_source(run(tmp_path, [(T0_NS, pkt)]))
    assert s["ssrc"] == SENDER
    assert counts(s) == n_counts(sdes=1, bye=1)


@pytest.mark.parametrize("lost", [-1, -5, -8388608, 0, 8388607])
def test_cumulative_lost_is_24_bit_signed(tmp_path, lost):
    block = ReportBlock(0x55, 0, lost, 1000, 0, 0, 0)
    s = only_source(run(tmp_path, [(T0_NS, cg.rtcp_rr(SENDER, [block]))]))
    assert s["rb_cumulative_lost"] == lost


def test_extended_report(tmp_path):
    pkt = cg.rtcp_rr(SENDER) + cg.rtcp_xr_dlrr(SENDER, 0x77, 0x11112222, 0x3333)
    s = only_source(run(tmp_path, [(T0_NS, pkt)]))
    assert counts(s) == n_counts(rr=1, xr=1)


def test_app_and_feedback(tmp_path):
    nack = struct.pack("!BBHII", 0x81, 205, 3, SENDER, 0x99) + struct.pack("!HH", 1234, 0)
    pli = struct.pack("!BBHII", 0x81, 206, 2, SENDER, 0x99)
    pkt = cg.rtcp_rr(SENDER) + cg.rtcp_app(SENDER, b"TEST", b"\x00" * 8) + nack + pli
    s = only_source(run(tmp_path, [(T0_NS, pkt)]))
    assert counts(s) == n_counts(rr=1, app=1, fb=2)


def test_last_sender_report_wins(tmp_path):
    b2 = ReportBlock(0xA0B0C0D0, 12, -3, 0x0001_2000, 99, 0xCAFEBABE, 0x20000)
    t1, t2 = T0_NS, T0_NS + 5000 * MS
    r = run(tmp_path, [(t1, cg.rtcp_sr(SENDER, NTP, 1000, 10, 1600, [BLOCK])),
                       (t2, cg.rtcp_sr(SENDER, NTP + (5 << 32), 41000, 260, 41600, [b2]))])
    s = only_source(r)
    assert counts(s) == n_counts(sr=2)
    assert (s["sr_ntp"], s["sr_rtp_ts"], s["sr_packets"], s["sr_octets"]) == (NTP + (5 << 32), 41000, 260, 41600)
    assert s["sr_arrival_ns"] == t2 and s["rb_arrival_ns"] == t2
    assert block_fields(s) == as_dict(b2)
    assert (s["first_ns"], s["last_ns"]) == (t1, t2)


def test_sources_are_keyed_by_direction_and_sender(tmp_path):
    fr = [(T0_NS, cg.ether_ipv4_udp_fast(cg.rtcp_rr(1), sport=SPORT, dport=DPORT)),
          (T0_NS + MS, cg.ether_ipv4_udp_fast(cg.rtcp_rr(2), sport=SPORT, dport=DPORT)),
          (T0_NS + 2 * MS, cg.ether_ipv4_udp_fast(cg.rtcp_rr(1), sport=DPORT, dport=SPORT,
                                                  src=cg.DST4, dst=cg.SRC4)),
          (T0_NS + 3 * MS, cg.ether_ipv4_udp_fast(cg.rtcp_rr(1), sport=SPORT, dport=DPORT))]
    r = replay([str(cg.write_pcap(tmp_path / "k.pcap", fr))])
    rows = sorted((format_addr(x["src"]), int(x["sport"]), int(x["ssrc"]), int(x["rr_count"])) for x in r.rtcp)
    assert rows == [(cg.SRC4, SPORT, 1, 2), (cg.SRC4, SPORT, 2, 1), (cg.DST4, DPORT, 1, 1)]


def test_sender_report_claiming_a_missing_block(tmp_path):
    # RC says one block, the length holds only the sender info
    sr = bytearray(cg.rtcp_sr(SENDER, NTP, 1, 2, 3))
    sr[0] |= 1
    s = only_source(run(tmp_path, [(T0_NS, bytes(sr))]))
    assert counts(s) == n_counts(sr=1)
    assert s["sr_packets"] == 2 and s["has_report_block"] == 0


# -- malformed -------------------------------------------------------------


def overrun(pkt: bytes, extra_words: int = 10) -> bytes:
    """The same RTCP packet with a length field claiming more than is there."""
    n = struct.unpack("!H", pkt[2:4])[0] + extra_words
    return pkt[:2] + struct.pack("!H", n) + pkt[4:]


def test_length_overrun_inside_a_compound(tmp_path):
    sr = cg.rtcp_sr(SENDER, NTP, 1, 2, 3, [BLOCK])
    bad = overrun(cg.rtcp_sdes_cname(SENDER, b"eve"))
    r = run(tmp_path, [(T0_NS, sr + bad), (T0_NS + MS, cg.rtcp_rr(SENDER))])
    assert r.counters["rtcp_packets"] == 2
    assert r.counters["rtcp_malformed"] == 1
    s = only_source(r)
    assert counts(s) == n_counts(sr=1, rr=1, malformed=1)
    assert block_fields(s) == as_dict(BLOCK)  # what came before the damage is kept


def test_bad_version_inside_a_compound(tmp_path):
    rr = cg.rtcp_rr(SENDER, [BLOCK])
    bye = bytearray(cg.rtcp_bye(SENDER))
    bye[0] = (bye[0] & 0x3F) | 0x40  # version 1
    r = run(tmp_path, [(T0_NS, rr + bytes(bye))])
    assert r.counters["rtcp_malformed"] == 1
    assert counts(only_source(r)) == n_counts(rr=1, malformed=1)


def test_first_packet_overrun_is_not_rtcp(tmp_path):
    r = run(tmp_path, [(T0_NS, overrun(cg.rtcp_sr(SENDER, NTP, 1, 2, 3)))])
    assert len(r.rtcp) == 0 and r.counters["rtcp_packets"] == 0
    assert r.counters["rtp_packets"] == 0 and len(r.streams) == 0


# -- RTCP multiplexed with RTP (RFC 5761) -----------------------------------


def test_rtcp_muxed_with_rtp_stays_out_of_the_stream(tmp_path):
    pkts = cg.dropped(cg.voice(100, seq0=10), 50)
    dg = [(p.arrival_ns, cg.rtp_bytes(p)) for p in pkts]
    for k in range(1, 4):  # a sender report every 500 ms on the same ports
        dg.append((T0_NS + k * 500 * MS + 5 * MS, cg.rtcp_sr(pkts[0].ssrc, NTP + k, k * 4000, k * 25, k * 4000)))
    r = run(tmp_path, sorted(dg), sport=cg.RTP_SPORT, dport=cg.RTP_DPORT)
    (s,) = streams_to_dicts(r.streams)
    assert {k: s[k] for k in SEQ_FIELDS} == expect(99, 100, lost=1)
    assert s["max_jitter_ms"] == pytest.approx(0.0, abs=1e-9)
    src = only_source(r)
    assert counts(src) == n_counts(sr=3)
    assert src["ssrc"] == pkts[0].ssrc and src["sr_packets"] == 75
