"""warpsniff's RTP stream statistics against tshark on third-party captures.

Every capture in ../shared/pcaps/public (SOURCES.md there says where each
comes from) is replayed through warpsniff and compared, stream by stream,
with `tshark -z rtp,streams` (heuristic RTP on), with tshark's per-packet
fields fed to the reference models in rtp_model.py, and with rtpproxy's own
analyser output where rtpproxy published one. docs/rtp-statistics.md says
where warpsniff differs from Wireshark on purpose; each such difference, and
each capture tshark reads differently, is asserted exactly below, never
skipped.
"""
from __future__ import annotations

import os
import re
import shlex
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import pytest

from oracle import (
    SHARED_PCAPS,
    TsharkRtpPacket,
    epoch_to_ns,
    require_shared_pcaps,
    require_tshark,
    tshark_fields,
    tshark_rtp_packets,
    tshark_rtp_streams,
    tshark_sdp,
)
from rtp_model import (
    STATIC_PAYLOAD_TYPES,
    Kind,
    PayloadType,
    documented_max_jitter_ms,
    wireshark_max_jitter_ms,
)
from warpsniff.replay import replay
from warpsniff.report import streams_to_dicts

RTPPROXY_EXPECTED = SHARED_PCAPS / "rtpproxy_expected"

# tshark finds no RTP in this loopback capture by itself: it hands UDP port
# 12344 to another dissector (LLC), so heuristic RTP never runs. Told, it agrees.
DECODE_AS = {"rtpproxy__rtp_analyze__DLT_NULL.a.pcap": ("udp.port==12344,rtp",)}

# A T.38 re-INVITE on this call was refused (488), but tshark still labels the
# flow T.38 from the offer on, so it misses PCMA packets that carry the
# stream's SSRC and an RTP header. warpsniff counts them.
FAX = "heplify__FAX-Call-t38-CA-TDM-SIP-FB-1.pcap"
FAX_FLOW = ("10.35.60.100", 15580, "10.23.1.52", 16756, 0x0EAF0EAF)

SESS6 = "rtpproxy__rtp_analyze__sess6.a.pcap"  # a sender that restarts its sequence
STUN_OVER_TCP = "ndpi__stun_dtls_rtp.pcapng"
ONE_PACKET_STREAM = "asterisk-testsuite__ssrc1.pcap"

JITTER_REL = 0.01        # 1 %
TSHARK_ROUNDING = 0.002  # ms: tshark prints jitter with 3 decimals


def capture_names() -> list[str]:
    if not SHARED_PCAPS.is_dir():
        return ["<shared captures absent>"]  # the test skips via require_shared_pcaps()
    return sorted(p.name for p in SHARED_PCAPS.iterdir() if p.suffix in (".pcap", ".pcapng"))


def rtpproxy_outputs() -> list[str]:
    if not RTPPROXY_EXPECTED.is_dir():
        return ["<shared captures absent>"]
    return sorted(p.name for p in RTPPROXY_EXPECTED.glob("*.output"))


@pytest.fixture(scope="session")
def tshark_runs_started() -> None:
    """tshark runs are independent subprocesses: run them for every capture
    side by side once, instead of one after another as the tests ask."""
    require_shared_pcaps()
    require_tshark()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(tshark_packets, capture_names()))


@pytest.fixture(params=capture_names())
def capture(request, tshark_runs_started) -> str:
    return request.param


# --------------------------------------------------------------------------
# one run of each tool per capture, shared by all the tests


def capture_path(name: str) -> Path:
    return SHARED_PCAPS / name


def endpoint(text: str) -> tuple:
    """'1.2.3.4:5' or '[::1]:5' -> ('1.2.3.4', 5), as tshark prints them."""
    address, _, port = text.rpartition(":")
    return address.strip("[]"), int(port)


@lru_cache(maxsize=None)
def tshark_streams(name: str) -> dict:
    return {s.key: s for s in tshark_rtp_streams(capture_path(name), DECODE_AS.get(name, ()))}


@lru_cache(maxsize=None)
def tshark_packets(name: str) -> dict:
    """Stream key -> the packets `-z rtp,streams` counted for it, in order.

    RTP that tshark finds quoted inside ICMP errors is left out: its RTP tap
    does not count those, and neither does warpsniff."""
    if not tshark_streams(name):
        return {}  # no RTP in tshark's table: no second tshark run needed
    streams = defaultdict(list)
    for p in tshark_rtp_packets(capture_path(name), DECODE_AS.get(name, ())):
        if ":icmp:" not in p.protocols:
            streams[p.key].append(p)
    return dict(streams)


@lru_cache(maxsize=None)
def our_streams(name: str) -> dict:
    """Stream key -> warpsniff's stream record (the --streams-json object)."""
    result = replay([str(capture_path(name))])
    assert result.errors == [], result.errors
    streams = {}
    for record in streams_to_dicts(result.streams):
        key = (*endpoint(record["src"]), *endpoint(record["dst"]), record["ssrc"])
        assert key not in streams, f"{name}: two records for stream {key}"
        streams[key] = record
    return streams


@lru_cache(maxsize=None)
def t38_labelled_rtp(name: str) -> dict:
    """Stream key -> frames tshark labels T.38 whose UDP payload starts with
    0x80 (RTP version 2, no padding, extension or CSRC), parsed as RTP."""
    rows = tshark_fields(capture_path(name), "t38 && udp", [
        "frame.number", "frame.time_epoch", "ip.src", "udp.srcport", "ip.dst", "udp.dstport",
        "udp.payload"])
    streams = defaultdict(list)
    for frame, epoch, src, sport, dst, dport, payload in rows:
        data = bytes.fromhex(payload.replace(":", ""))
        if len(data) < 12 or data[0] != 0x80:
            continue
        packet = TsharkRtpPacket(
            frame=int(frame), arrival_ns=epoch_to_ns(epoch), protocols="t38",
            src=src, sport=int(sport), dst=dst, dport=int(dport),
            ssrc=int.from_bytes(data[8:12], "big"), seq=int.from_bytes(data[2:4], "big"),
            timestamp=int.from_bytes(data[4:8], "big"), payload_type=data[1] & 0x7F,
            marker=bool(data[1] & 0x80))
        streams[packet.key].append(packet)
    return dict(streams)


def extra_packets_we_count(name: str, key: tuple) -> list:
    """Packets of a stream that warpsniff counts and tshark's RTP tap does not."""
    if name == FAX and key == FAX_FLOW:
        return t38_labelled_rtp(name).get(key, [])
    return []


def packets_as_we_see_them(name: str, key: tuple) -> list:
    packets = tshark_packets(name)[key] + extra_packets_we_count(name, key)
    return sorted(packets, key=lambda p: p.frame)


@lru_cache(maxsize=None)
def sdp_bodies(name: str) -> tuple:
    return tuple(tshark_sdp(capture_path(name)))


def payload_types_of(name: str, key: tuple, packets: list) -> dict:
    """Payload type -> clock and kind for one stream: RFC 3551's static
    types, plus the dynamic ones of the last SDP body sent before the stream
    began that names either of its ends (the SDP that binds it)."""
    if all(p.payload_type < 96 for p in packets):
        return STATIC_PAYLOAD_TYPES  # no SDP needed (and no tshark run)
    src, dst, first_ns = key[:2], key[2:4], packets[0].arrival_ns
    binding = None
    for body in sdp_bodies(name):
        if body.arrival_ns <= first_ns and (src in body.endpoints or dst in body.endpoints):
            binding = body
    types = dict(STATIC_PAYLOAD_TYPES)
    for pt, (encoding, rate) in (binding.rtpmap.items() if binding else ()):
        if pt < 96:
            continue
        kind = {"telephone-event": Kind.TELEPHONE_EVENT, "cn": Kind.COMFORT_NOISE}.get(
            encoding.lower(), Kind.AUDIO)
        types[pt] = PayloadType(rate, kind)
    return types


def shared_streams(name: str):
    """(key, tshark's stream, ours) for every stream both report."""
    ours = our_streams(name)
    for key, theirs in sorted(tshark_streams(name).items()):
        if key in ours:
            yield key, theirs, ours[key]


def check_all(failures: list) -> None:
    """One assertion per capture that lists every stream that failed."""
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------
# 1. stream set and packet counts


def streams_carried_in_stun_over_tcp(name: str) -> set:
    """RTP relayed inside STUN/TURN over TCP: warpsniff only unwraps TURN
    ChannelData over UDP, so it does not see these streams."""
    return {key for key, packets in tshark_packets(name).items()
            if any("tcp:stun:rtp" in p.protocols for p in packets)}


def one_packet_streams(name: str) -> set:
    """A single packet cannot pass probation (two consecutive sequence
    numbers), so such a stream is never reported."""
    return {key for key, s in tshark_streams(name).items() if s.packets == 1}


def test_streams_and_packets_match_tshark(capture):
    theirs, ours = tshark_streams(capture), our_streams(capture)
    assert set(ours) - set(theirs) == set(), "streams tshark does not report"
    assert set(theirs) - set(ours) == one_packet_streams(capture) | streams_carried_in_stun_over_tcp(capture)
    check_all([
        f"{key}: packets {ours[key]['packets']}, tshark {s.packets} + {len(extra_packets_we_count(capture, key))}"
        for key, s, _ in shared_streams(capture)
        if ours[key]["packets"] != s.packets + len(extra_packets_we_count(capture, key))
    ])


def test_tshark_packet_fields_cover_its_streams(capture):
    """The per-packet extraction the models read holds exactly the packets
    tshark's stream table counted (otherwise the models would compare
    different packets)."""
    packets = tshark_packets(capture)
    check_all([f"{key}: {len(packets.get(key, []))} packets extracted, table says {s.packets}"
               for key, s in tshark_streams(capture).items() if len(packets.get(key, [])) != s.packets])


def test_one_packet_stream_is_the_only_one_missing():
    require_shared_pcaps()
    theirs = tshark_streams(ONE_PACKET_STREAM)
    assert [s.packets for s in theirs.values()] == [1]
    assert our_streams(ONE_PACKET_STREAM) == {}


def test_rtp_in_stun_over_tcp_is_what_we_miss():
    require_shared_pcaps()
    relayed = streams_carried_in_stun_over_tcp(STUN_OVER_TCP)
    assert len(relayed) == 2
    assert set(tshark_streams(STUN_OVER_TCP)) - set(our_streams(STUN_OVER_TCP)) == relayed


def test_dlt_null_capture_needs_decode_as_in_tshark():
    require_shared_pcaps()
    name = "rtpproxy__rtp_analyze__DLT_NULL.a.pcap"
    assert tshark_rtp_streams(capture_path(name)) == []
    assert len(tshark_streams(name)) == 3 and set(tshark_streams(name)) == set(our_streams(name))


def test_fax_t38_labelled_frames_are_the_packets_tshark_misses():
    require_shared_pcaps()
    extra = t38_labelled_rtp(FAX).get(FAX_FLOW, [])
    src, sport, dst, dport, _ = FAX_FLOW
    labelled = tshark_fields(capture_path(FAX), f"t38 && ip.src=={src} && udp.srcport=={sport} "
                                                f"&& ip.dst=={dst} && udp.dstport=={dport}", ["frame.number"])
    # every frame tshark calls T.38 on that flow is a PCMA packet of the stream
    assert len(extra) == len(labelled) > 0
    assert {p.payload_type for p in extra} == {8}
    # tshark told to leave T.38 out sees the whole stream, as we do
    whole = {s.key: s for s in tshark_rtp_streams(capture_path(FAX), extra=("--disable-protocol", "t38"))}
    ours = our_streams(FAX)[FAX_FLOW]
    assert whole[FAX_FLOW].packets == tshark_streams(FAX)[FAX_FLOW].packets + len(extra) == ours["packets"]
    assert whole[FAX_FLOW].lost == ours["lost"] - ours["duplicates"]


# --------------------------------------------------------------------------
# 2. loss


def test_lost_is_tshark_lost_plus_duplicates(capture):
    """docs: tshark counts duplicates as received, so tshark lost = our lost
    - duplicates, for streams without restarts or reordering (and with the
    same packets: the FAX flow is compared with T.38 left out, above)."""
    check_all([
        f"{key}: lost {ours['lost']} - duplicates {ours['duplicates']} != tshark lost {s.lost}"
        for key, s, ours in shared_streams(capture)
        if ours["seq_resets"] == 0 and ours["reordered"] == 0 and not extra_packets_we_count(capture, key)
        and s.lost != ours["lost"] - ours["duplicates"]
    ])


def test_sequence_restart_loses_nothing_where_tshark_goes_negative():
    require_shared_pcaps()
    (key, theirs, ours), = shared_streams(SESS6)
    rtpproxy, _ = rtpproxy_blocks("rtp_analyze__sess6.output")
    assert ours["seq_resets"] > 0
    assert ours["lost"] == rtpproxy["plost"] == 0
    assert theirs.lost != ours["lost"]  # -475: Wireshark has no restart rule


def test_expected_is_summed_over_sequence_runs():
    """sess6.a restarts twice: runs of 170, 300 and 2076 packets, as many as
    rtpproxy says were sent."""
    require_shared_pcaps()
    (key, _, ours), = shared_streams(SESS6)
    rtpproxy, _ = rtpproxy_blocks("rtp_analyze__sess6.output")
    assert ours["expected"] == rtpproxy["psent"] == 2546


# rtpproxy `extractaudio -s` prints, per SSRC: the last sequence run's pcount
# (packets received once), min/max seq and duplicates, then totals over all
# runs: psent (expected), precvd (received once) and plost.
RTPPROXY_FIELD = re.compile(r"(\w+)=([0-9A-Fa-fx.]+)")


def rtpproxy_number(text: str):
    if text.startswith("0x"):
        return int(text, 16)  # the SSRC
    return float(text) if "." in text else int(text)


def rtpproxy_blocks(output_name: str) -> list[dict]:
    """One dict per SSRC block of an rtpproxy .output file."""
    text = (RTPPROXY_EXPECTED / output_name).read_text()
    blocks = []
    for line in text.splitlines():
        fields = {k: rtpproxy_number(v) for k, v in RTPPROXY_FIELD.findall(line)}
        if "pcount" in fields:
            blocks.append(fields)
        elif blocks:
            blocks[-1].update(fields)
    return blocks


def rtpproxy_captures(output_name: str) -> list[str]:
    """The captures an output was made from: the -A/-B files its .args name,
    else those of the .a/.o pair named like it that exist
    (rtp_analyze__X -> rtpproxy__rtp_analyze__X.a.pcap)."""
    stem = output_name.removesuffix(".output")
    tool = stem.split("__")[0]
    args = RTPPROXY_EXPECTED / f"{stem}.args"
    if args.exists():
        words = shlex.split(args.read_text())
        named = [Path(words[i + 1]).name for i, w in enumerate(words[:-1]) if w in ("-A", "-B")]
        if named:
            return [f"rtpproxy__{tool}__{n}" for n in named]
    pair = [f"rtpproxy__{stem}.{side}.pcap" for side in ("a", "o")]
    return [n for n in pair if capture_path(n).exists()]  # DLT_NULL has no .o


@pytest.mark.parametrize("output_name", rtpproxy_outputs())
def test_loss_and_duplicates_match_rtpproxy(output_name):
    require_shared_pcaps()
    blocks, captures = rtpproxy_blocks(output_name), rtpproxy_captures(output_name)
    assert len(blocks) == len(captures), captures
    for block, name in zip(blocks, captures):
        assert capture_path(name).exists(), name
        # rtpproxy follows one SSRC across source ports: sum our streams of it
        mine = [s for s in our_streams(name).values() if s["ssrc"] == block["ssrc"]]
        assert mine, f"{name}: no stream with SSRC {block['ssrc']:#x}"
        total = {k: sum(s[k] for s in mine) for k in ("packets", "expected", "lost", "duplicates", "seq_resets")}
        received_once = total["packets"] - total["duplicates"]
        assert (total["lost"], received_once) == (block["plost"], block["precvd"]), name
        if total["seq_resets"] == 0:  # else pcount and duplicates describe the last run only
            assert (received_once, total["duplicates"], total["expected"]) == (
                block["pcount"], block["duplicates"], block["psent"]), name


# --------------------------------------------------------------------------
# 3. jitter


def timestamp_steps_back(packets) -> bool:
    return any(((b.timestamp - a.timestamp) & 0xFFFFFFFF) >= 1 << 31 for a, b in zip(packets, packets[1:]))


def is_plain_voice(name: str, key: tuple) -> bool:
    """Every packet of a payload type with a clock that is neither comfort
    noise nor telephone-event, and timestamps that never step back: the
    streams where the documented rules and Wireshark's give the same jitter."""
    packets = packets_as_we_see_them(name, key)
    types = payload_types_of(name, key, packets)
    media = {pt for pt, t in types.items() if t.kind in (Kind.AUDIO, Kind.VIDEO)}
    return all(p.payload_type in media for p in packets) and not timestamp_steps_back(packets)


def close_to_tshark(value: float, printed: float) -> bool:
    return abs(value - printed) <= JITTER_REL * printed + TSHARK_ROUNDING


def test_streams_without_a_clock_report_no_jitter(capture):
    """Until SDP (or --payload-type) gives a dynamic payload type a clock, its
    stream has no jitter."""
    check_all([
        f"{key}: payload type {s['payload_type']}, max jitter {s['max_jitter_ms']}"
        for key, s in our_streams(capture).items()
        if s["clock_rate"] is None and (s["max_jitter_ms"] != 0 or s["payload_type"] < 96)
    ])


def test_plain_stream_jitter_matches_tshark(capture):
    check_all([
        f"{key}: max jitter {ours['max_jitter_ms']:.4f} ms, tshark {s.max_jitter_ms}"
        for key, s, ours in shared_streams(capture)
        if ours["clock_rate"] and is_plain_voice(capture, key)
        and not close_to_tshark(ours["max_jitter_ms"], s.max_jitter_ms)
    ])


def wireshark_model(name: str, key: tuple) -> float:
    packets = tshark_packets(name)[key]
    types = payload_types_of(name, key, packets)
    # tshark takes a dynamic type's clock from SDP, except telephone-event's
    dynamic_clocks = {pt: t.clock_rate for pt, t in types.items()
                      if pt >= 96 and t.kind is not Kind.TELEPHONE_EVENT}
    return wireshark_max_jitter_ms(packets, dynamic_clocks)


def documented_model(name: str, key: tuple) -> float:
    packets = packets_as_we_see_them(name, key)
    return documented_max_jitter_ms(packets, payload_types_of(name, key, packets))


def test_wireshark_model_reproduces_tshark(capture):
    """Validates rtp_model's reading of the packets: on every stream with a
    clock, its Wireshark rules give the jitter tshark printed."""
    check_all([
        f"{key}: Wireshark model {wireshark_model(capture, key):.4f} ms, tshark {s.max_jitter_ms}"
        for key, s, ours in shared_streams(capture)
        if ours["clock_rate"] and not close_to_tshark(wireshark_model(capture, key), s.max_jitter_ms)
    ])


def test_jitter_follows_documented_rules(capture):
    """Our max jitter is what docs/rtp-statistics.md's rules give, on every
    stream with a clock: CN, telephone-event, timestamp resets and all."""
    failures = []
    for key, _, ours in shared_streams(capture):
        if not ours["clock_rate"]:
            continue
        expected = documented_model(capture, key)
        if abs(ours["max_jitter_ms"] - expected) > JITTER_REL * expected + 1e-9:
            failures.append(f"{key}: max jitter {ours['max_jitter_ms']:.4f} ms, documented rules {expected:.4f}")
    check_all(failures)


def test_restart_does_not_count_as_jitter():
    """sess6.a's sender resets sequence and timestamp to 0 twice. The packet
    that opens each new run is set aside and the next re-anchors, so the
    timestamp step is no jitter (Wireshark: 376 ms). rtpproxy's analyser
    agrees: its max_jitter, in 8 kHz timestamp units, is about 1.8 ms."""
    require_shared_pcaps()
    (key, theirs, ours), = shared_streams(SESS6)
    rtpproxy, _ = rtpproxy_blocks("rtp_analyze__sess6.output")
    rtpproxy_ms = rtpproxy["max_jitter"] / 8000 * 1000
    assert ours["max_jitter_ms"] == pytest.approx(documented_model(SESS6, key), rel=JITTER_REL)
    assert ours["max_jitter_ms"] == pytest.approx(rtpproxy_ms, rel=0.05)
    assert theirs.max_jitter_ms > 100 * ours["max_jitter_ms"]
