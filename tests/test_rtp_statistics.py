"""RTP stream statistics on streams built by the test (ground truth by
construction).

Sequence figures (packets, expected, lost, duplicates, reordered, seq_resets)
are counted from how each stream was made: which packets were dropped,
repeated, delayed. Jitter figures come from `a8_model` below, an independent
loop over the constructed arrival times and RTP timestamps that follows the
rules written in docs/rtp-statistics.md.
"""
from __future__ import annotations

import random
from dataclasses import replace

import pytest

from capgen import (
    MS,
    NS,
    T0_NS,
    Rtp,
    by_arrival,
    delayed,
    dropped,
    duplicated,
    jittered,
    random_delays,
    voice,
    write_rtp,
)
from warpsniff.replay import EngineOptions, replay
from warpsniff.report import streams_to_dicts

SEQ_FIELDS = ("packets", "expected", "lost", "duplicates", "reordered", "seq_resets")
NO_TIMING_PTS = {13, 19}  # comfort noise: never part of voice timing (docs)


# --------------------------------------------------------------------------
# helpers


def analyse(tmp_path, pkts, options=None, name="s.pcap"):
    path = write_rtp(tmp_path / name, pkts)
    r = replay([str(path)], options)
    assert r.errors == []
    assert r.decode_errors == {k: 0 for k in r.decode_errors}
    return r, with_raw_timing(r.streams)


def with_raw_timing(streams) -> list[dict]:
    """The JSON view, with the timing figures unrounded (the JSON rounds to
    1e-6 ms, too coarse for a 1e-6 relative comparison of small jitters)."""
    out = streams_to_dicts(streams)
    for d, rec in zip(out, streams):
        for k in ("max_jitter_ms", "mean_jitter_ms", "max_delta_ms"):
            d[k] = float(rec[k])
    return out


def one_stream(tmp_path, pkts, options=None):
    r, streams = analyse(tmp_path, pkts, options)
    assert len(streams) == 1, streams
    return streams[0]


def seq_stats(s: dict) -> dict:
    return {k: s[k] for k in SEQ_FIELDS}


def expect(packets, expected, lost=0, duplicates=0, reordered=0, seq_resets=0) -> dict:
    return dict(packets=packets, expected=expected, lost=lost, duplicates=duplicates,
                reordered=reordered, seq_resets=seq_resets)


def arrive_after(pkts, seq, after_seq, extra_ns=10 * MS):
    """Delays `seq` so that it arrives extra_ns after `after_seq` did."""
    by_seq = {p.seq: p for p in pkts}
    delay = by_seq[after_seq].arrival_ns + extra_ns - by_seq[seq].arrival_ns
    return delayed(pkts, seq, delay)


def signed32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def a8_model(pkts, clock_rate, *, no_timing=frozenset(NO_TIMING_PTS), reanchor_on_backstep=True):
    """RFC 3550 A.8 over the constructed packets, following the documented rules.

    - D = (Rj - Ri) - (Sj - Si) in timestamp units, J += (|D| - J) / 16;
    - the reference i is the last packet whose timestamp did not go backwards;
    - payload types in `no_timing` (CN, telephone-event) are skipped entirely;
    - re-anchor without a sample on the first packet and when the timestamp
      steps back while the sequence number moves forward;
    - max/mean jitter and max delta only sample in-order packets without marker.

    reanchor_on_backstep=False instead takes a backward step like an in-order
    packet, the way Wireshark does (only to show the rule matters).

    Returns (max_jitter_ms, mean_jitter_ms, max_delta_ms).
    """
    J = 0.0
    ref: Rtp | None = None
    highest = None
    max_j = total = 0.0
    samples = 0
    max_delta_ns = 0
    for p in pkts:  # capture (arrival) order
        forward = highest is None or 0 < (p.seq - highest) % 65536 < 3000
        if forward:
            highest = p.seq
        if p.pt in no_timing:
            continue
        if ref is None:
            ref = p
            continue
        dts = signed32(p.ts - ref.ts)
        backstep = dts < 0 and forward
        if backstep and reanchor_on_backstep:
            ref = p
            continue
        darr_ns = p.arrival_ns - ref.arrival_ns
        D = darr_ns / NS * clock_rate - dts
        J += (abs(D) - J) / 16
        if dts >= 0 or backstep:  # (backstep here only as Wireshark would: a sample)
            if not p.marker:
                max_j = max(max_j, J)
                total += J
                samples += 1
                max_delta_ns = max(max_delta_ns, darr_ns)
            ref = p
    to_ms = 1000.0 / clock_rate
    return max_j * to_ms, (total / samples if samples else 0.0) * to_ms, max_delta_ns / MS


def assert_no_jitter(s: dict):
    """Perfect timing by construction: zero, up to float rounding of D."""
    assert s["max_jitter_ms"] == pytest.approx(0.0, abs=1e-9)
    assert s["mean_jitter_ms"] == pytest.approx(0.0, abs=1e-9)


def assert_jitter(s: dict, model, clock_rate):
    max_ms, mean_ms, delta_ms = model
    assert s["clock_rate"] == clock_rate
    assert s["max_jitter_ms"] == pytest.approx(max_ms, rel=1e-6, abs=1e-12)
    assert s["mean_jitter_ms"] == pytest.approx(mean_ms, rel=1e-6, abs=1e-12)
    assert s["max_delta_ms"] == pytest.approx(delta_ms, rel=1e-9, abs=1e-12)


# --------------------------------------------------------------------------
# sequence: loss, duplicates, reordering


def test_clean_stream(tmp_path):
    pkts = voice(200)
    s = one_stream(tmp_path, pkts)
    assert seq_stats(s) == expect(200, 200)
    assert s["bytes"] == sum(p.size for p in pkts)
    assert s["first_ts"] == T0_NS / NS and s["last_ts"] == pkts[-1].arrival_ns / NS
    assert_no_jitter(s)
    assert s["max_delta_ms"] == 20.0


def test_single_and_burst_loss(tmp_path):
    lost = [1010, 1050, 1051, 1052, 1053, 1054, 1100, 1198]
    s = one_stream(tmp_path, dropped(voice(200), *lost))
    assert seq_stats(s) == expect(200 - len(lost), 200, lost=len(lost))


def test_duplicates_are_not_received_twice(tmp_path):
    pkts = voice(100)
    pkts = duplicated(pkts, 1020, 5 * MS)
    pkts = duplicated(pkts, 1020, 7 * MS)
    pkts = duplicated(pkts, 1030, 1 * MS)
    pkts = duplicated(pkts, 1099, 3 * MS)  # a duplicate of the highest, last in the capture
    s = one_stream(tmp_path, pkts)
    assert seq_stats(s) == expect(104, 100, lost=0, duplicates=4)


def test_duplicates_do_not_hide_loss(tmp_path):
    pkts = dropped(voice(100), 1040, 1041)
    pkts = duplicated(pkts, 1020, 5 * MS)
    pkts = duplicated(pkts, 1060, 5 * MS)
    s = one_stream(tmp_path, pkts)
    assert seq_stats(s) == expect(100, 100, lost=2, duplicates=2)


def test_late_duplicate_far_behind(tmp_path):
    # a copy of 1010 arriving after 1090 (80 behind) is a duplicate, not late
    pkts = voice(100)
    pkts = by_arrival(pkts + [replace(pkts[10], arrival_ns=pkts[80].arrival_ns + 5 * MS)])
    s = one_stream(tmp_path, pkts)
    assert seq_stats(s) == expect(101, 100, duplicates=1)


def test_duplicate_during_probation(tmp_path):
    pkts = duplicated(voice(50), 1000, 2 * MS)  # 1000, 1000, 1001, ...
    s = one_stream(tmp_path, pkts)
    assert seq_stats(s) == expect(51, 50, duplicates=1)


def test_gap_during_probation_keeps_the_first_packet(tmp_path):
    s = one_stream(tmp_path, dropped(voice(50), 1001))  # 1000, 1002, 1003, ...
    assert seq_stats(s) == expect(49, 50, lost=1)


@pytest.mark.parametrize("late, after, reordered", [
    ((1000,), 1001, 1),          # 1001, 1000, 1002: the first packet sent arrives second
    ((1001,), 1002, 1),          # 1000, 1002, 1001: a late packet inside the probation run
    ((1000, 1001), 1002, 2),     # 1002, 1000, 1001: both before the first one seen
])
def test_reordering_during_probation_forgets_nothing(tmp_path, late, after, reordered):
    """Arrival jitter above the packet interval reorders a stream's first
    packets: every packet still counts once, and nothing is lost."""
    pkts = voice(50)
    for k, seq in enumerate(late):
        pkts = arrive_after(pkts, seq, after, (5 + k) * MS)
    assert [p.seq for p in pkts[:3]] != [1000, 1001, 1002]
    s = one_stream(tmp_path, pkts)
    assert seq_stats(s) == expect(50, 50, reordered=reordered)


def test_duplicate_of_a_late_probation_packet(tmp_path):
    pkts = arrive_after(voice(50), 1000, 1001, 5 * MS)          # 1001, 1000, ...
    pkts = arrive_after(duplicated(pkts, 1000, 1 * MS), 1000, 1002, 7 * MS)
    s = one_stream(tmp_path, pkts)
    assert seq_stats(s) == expect(51, 50, duplicates=1, reordered=1)


def test_reordered_pair(tmp_path):
    pkts = arrive_after(voice(100), 1010, 1011, 5 * MS)
    assert [p.seq for p in pkts[9:13]] == [1009, 1011, 1010, 1012]
    s = one_stream(tmp_path, pkts)
    assert seq_stats(s) == expect(100, 100, reordered=1)


def test_late_packets_within_misorder(tmp_path):
    pkts = voice(300)
    pkts = arrive_after(pkts, 1010, 1060)   # 50 behind
    pkts = arrive_after(pkts, 1100, 1199)   # 99 behind
    pkts = arrive_after(pkts, 1200, 1201)   # 1 behind
    s = one_stream(tmp_path, pkts)
    assert seq_stats(s) == expect(300, 300, reordered=3)


def test_duplicate_window_across_a_long_gap(tmp_path):
    # 69 lost (1100..1168) moves the window by 70 at once; behind it a copy of
    # 1095 is still known (duplicate) and a lost 1120 arriving late is not
    pkts = dropped(voice(300), *range(1100, 1169))
    after = next(p for p in pkts if p.seq == 1169).arrival_ns
    copy = replace(next(p for p in pkts if p.seq == 1095), arrival_ns=after + 5 * MS)
    late = replace(voice(300)[120], arrival_ns=after + 6 * MS)
    assert late.seq == 1120
    s = one_stream(tmp_path, by_arrival(pkts + [copy, late]))
    assert seq_stats(s) == expect(300 - 69 + 2, 300, lost=68, duplicates=1, reordered=1)


def test_late_then_duplicate(tmp_path):
    pkts = arrive_after(voice(100), 1010, 1030)
    pkts = by_arrival(pkts + [replace(next(p for p in pkts if p.seq == 1010),
                                      arrival_ns=pkts[-1].arrival_ns - 5 * MS)])
    s = one_stream(tmp_path, pkts)
    assert seq_stats(s) == expect(101, 100, duplicates=1, reordered=1)


def test_late_99_behind_is_reordered(tmp_path):
    pkts = arrive_after(voice(200), 1010, 1109)  # max_seq 1109 when 1010 arrives
    s = one_stream(tmp_path, pkts)
    assert seq_stats(s) == expect(200, 200, reordered=1)


@pytest.mark.parametrize("behind", [100, 101, 140, 2000])
def test_late_beyond_misorder_is_ignored_once(tmp_path, behind):
    # 100 or more behind (RFC 3550's boundary): set aside once (not received,
    # so counted lost), the next packet does not continue from it: no restart
    pkts = arrive_after(voice(2200), 1010, 1010 + behind)
    s = one_stream(tmp_path, pkts)
    assert seq_stats(s) == expect(2200, 2200, lost=1)


# --------------------------------------------------------------------------
# sequence wrap


def test_wrap_without_loss(tmp_path):
    s = one_stream(tmp_path, voice(300, seq0=65436))
    assert seq_stats(s) == expect(300, 300)


def test_loss_across_the_wrap(tmp_path):
    s = one_stream(tmp_path, dropped(voice(300, seq0=65436), 65534, 65535, 0, 1))
    assert seq_stats(s) == expect(296, 300, lost=4)


def test_wrap_twice(tmp_path):
    n = 65536 + 200
    pkts = voice(n, seq0=65500, ptime_ns=1 * MS, ts_step=8)
    s = one_stream(tmp_path, dropped(pkts, 65535, 100))
    assert seq_stats(s) == expect(n - 2, n, lost=2)


@pytest.mark.parametrize("seq0", [65535, 65534])
def test_stream_starting_just_before_the_wrap(tmp_path, seq0):
    s = one_stream(tmp_path, voice(100, seq0=seq0))
    assert seq_stats(s) == expect(100, 100)


def test_probation_gap_across_the_wrap(tmp_path):
    # 65534, (65535 lost), 0, 1, ...: the run starts at 65534
    s = one_stream(tmp_path, dropped(voice(100, seq0=65534), 65535))
    assert seq_stats(s) == expect(99, 100, lost=1)


def test_duplicate_across_the_wrap(tmp_path):
    pkts = voice(100, seq0=65500)
    copy = replace(pkts[35], arrival_ns=pkts[37].arrival_ns + 5 * MS)  # 65535 again after 1
    assert copy.seq == 65535
    s = one_stream(tmp_path, by_arrival(pkts + [copy]))
    assert seq_stats(s) == expect(101, 100, duplicates=1)


def test_late_packet_across_the_wrap(tmp_path):
    pkts = arrive_after(voice(100, seq0=65500), 65534, 2)  # arrives 4 behind, across the wrap
    s = one_stream(tmp_path, pkts)
    assert seq_stats(s) == expect(100, 100, reordered=1)


# --------------------------------------------------------------------------
# forward jumps and restarts


def test_gap_below_max_dropout_is_loss(tmp_path):
    first = voice(50, seq0=1000)
    second = voice(50, seq0=1049 + 2999, t0_ns=first[-1].arrival_ns + 20 * MS, ts0=500_000)
    s = one_stream(tmp_path, first + second)
    assert seq_stats(s) == expect(100, 100 + 2998, lost=2998)


def test_gap_of_exactly_max_dropout_is_a_restart(tmp_path):
    # a jump of 3000 (RFC 3550's MAX_DROPOUT) is set aside, and the packet that
    # continues from it restarts the sequence: two runs of 50, nothing lost
    first = voice(50, seq0=1000)
    second = voice(50, seq0=1049 + 3000, t0_ns=first[-1].arrival_ns + 20 * MS, ts0=500_000)
    s = one_stream(tmp_path, first + second)
    assert seq_stats(s) == expect(100, 100, lost=0, seq_resets=1)


def restart_streams(lost_first=(), lost_second=(), ts_jump=0):
    first = voice(100, seq0=1000)
    t1 = first[-1].arrival_ns + 20 * MS
    second = voice(100, seq0=40000, t0_ns=t1, ts0=(first[-1].ts + 160 + ts_jump) & 0xFFFFFFFF)
    return dropped(first, *lost_first) + dropped(second, *lost_second)


def test_restart_after_big_jump_counts_both_runs(tmp_path):
    s = one_stream(tmp_path, restart_streams(lost_first=[1050], lost_second=[40050, 40051]))
    assert s["seq_resets"] == 1
    assert s["packets"] == 197
    assert s["lost"] == 3
    assert s["duplicates"] == 0 and s["reordered"] == 0


def test_restart_expected_is_summed_over_runs(tmp_path):
    s = one_stream(tmp_path, restart_streams(lost_first=[1050], lost_second=[40050, 40051]))
    assert seq_stats(s) == expect(197, 200, lost=3, seq_resets=1)


def test_restart_without_timestamp_jump_has_no_jitter(tmp_path):
    # the sender restarts its sequence but its clock runs on: nothing to see
    s = one_stream(tmp_path, restart_streams())
    assert s["seq_resets"] == 1
    assert_no_jitter(s)


@pytest.mark.parametrize("ts_jump", [8_000_000, -8_000_000], ids=["forward", "backward"])
def test_restart_with_timestamp_jump_has_no_jitter(tmp_path, ts_jump):
    s = one_stream(tmp_path, restart_streams(ts_jump=ts_jump))
    assert s["seq_resets"] == 1
    assert_no_jitter(s)


def test_single_stray_jump_is_ignored_once(tmp_path):
    pkts = voice(100, seq0=1000)
    stray = replace(pkts[50], seq=30000, arrival_ns=pkts[50].arrival_ns - 5 * MS)
    s = one_stream(tmp_path, by_arrival(pkts + [stray]))
    assert seq_stats(s) == expect(101, 100)


def test_single_stray_jump_with_wild_timestamp_is_ignored_once(tmp_path):
    pkts = voice(100, seq0=1000)
    stray = replace(pkts[50], seq=30000, ts=pkts[50].ts + 8_000_000, arrival_ns=pkts[50].arrival_ns - 5 * MS)
    s = one_stream(tmp_path, by_arrival(pkts + [stray]))
    assert seq_stats(s) == expect(101, 100)
    assert_no_jitter(s)


# --------------------------------------------------------------------------
# what a stream is


def test_ssrc_change_on_same_five_tuple_is_two_streams(tmp_path):
    a = voice(80, ssrc=0xAAAA0001, seq0=100)
    b = voice(60, ssrc=0xBBBB0002, seq0=9000, ts0=7_000_000, t0_ns=a[-1].arrival_ns + 20 * MS)
    b = dropped(b, 9010)
    r, streams = analyse(tmp_path, a + b)
    by_ssrc = {s["ssrc"]: s for s in streams}
    assert set(by_ssrc) == {0xAAAA0001, 0xBBBB0002}
    assert seq_stats(by_ssrc[0xAAAA0001]) == expect(80, 80)
    assert seq_stats(by_ssrc[0xBBBB0002]) == expect(59, 60, lost=1)
    assert by_ssrc[0xBBBB0002]["first_ts"] == b[0].arrival_ns / NS
    for s in streams:
        assert_no_jitter(s)


def test_interleaved_ssrcs_do_not_mix(tmp_path):
    a = voice(100, ssrc=1, seq0=10)
    b = voice(100, ssrc=2, seq0=60000, ts0=999, t0_ns=T0_NS + 7 * MS)
    r, streams = analyse(tmp_path, by_arrival(a + dropped(b, 60050)))
    by_ssrc = {s["ssrc"]: s for s in streams}
    assert seq_stats(by_ssrc[1]) == expect(100, 100)
    assert seq_stats(by_ssrc[2]) == expect(99, 100, lost=1)
    assert_no_jitter(by_ssrc[1])
    assert_no_jitter(by_ssrc[2])


def test_never_validated_candidates_are_not_reported(tmp_path):
    seqs = [100, 5000, 20000, 300, 40000, 61000, 10, 12, 14, 16]  # never two consecutive
    pkts = [Rtp(seq=s, ts=i * 160, arrival_ns=T0_NS + i * 20 * MS, ssrc=0xDEAD) for i, s in enumerate(seqs)]
    lone = Rtp(seq=5, ts=0, arrival_ns=T0_NS + 3 * MS, ssrc=0xBEEF)
    r, streams = analyse(tmp_path, by_arrival(pkts + [lone]))
    assert streams == []
    assert r.counters["rtp_packets"] == len(seqs) + 1


# --------------------------------------------------------------------------
# jitter (A.8) against the independent model


def jitter_patterns():
    n = 400
    base = voice(n)
    pats = {
        "perfect": base,
        "alternating_4ms": jittered(base, [(i % 2) * 4 * MS for i in range(n)]),
        "uniform_0_10ms": jittered(base, random_delays(n, 10 * MS, seed=1)),
        "uniform_0_45ms_reorders": jittered(base, random_delays(n, 45 * MS, seed=2)),
        "single_spike": delayed(base, 1200, 150 * MS),
        "bursts": jittered(base, [(200 * MS - (i % 10) * 20 * MS) if i % 10 else 0 for i in range(n)]),
        "clock_skew": [replace(p, arrival_ns=T0_NS + i * 20_100_000) for i, p in enumerate(base)],
        "ts_wrap": jittered(voice(n, ts0=(1 << 32) - 160 * 37), random_delays(n, 8 * MS, seed=3)),
    }
    noisy = jittered(base, random_delays(n, 30 * MS, seed=4))
    for s in (1010, 1111, 1222, 1333):
        noisy = duplicated(noisy, s, 3 * MS)
    pats["reorders_and_duplicates"] = noisy
    return pats


PATTERNS = jitter_patterns()


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_jitter_matches_rfc3550_model(tmp_path, name):
    pkts = PATTERNS[name]
    s = one_stream(tmp_path, pkts)
    assert_jitter(s, a8_model(pkts, 8000), 8000)
    if name == "perfect":
        assert_no_jitter(s)
    if name == "clock_skew":
        # D = 0.1 ms * 8 kHz = 0.8 ticks every packet: J converges on 0.1 ms
        assert s["max_jitter_ms"] == pytest.approx(0.1 * (1 - (15 / 16) ** 399), rel=1e-6)


@pytest.mark.parametrize("pt,clock", [(6, 16000), (10, 44100), (9, 8000)])
def test_jitter_uses_the_payload_clock_rate(tmp_path, pt, clock):
    step = clock // 50  # 20 ms of samples
    pkts = jittered(voice(300, pt=pt, ts_step=step), random_delays(300, 12 * MS, seed=pt))
    s = one_stream(tmp_path, pkts)
    assert_jitter(s, a8_model(pkts, clock), clock)


def test_video_frames_share_a_timestamp(tmp_path):
    pkts = []
    seq = 500
    for frame in range(100):
        for k in range(3):  # three packets per frame, same timestamp, 1 ms apart
            pkts.append(Rtp(seq=seq, ts=frame * 3600, arrival_ns=T0_NS + frame * 40 * MS + k * MS,
                            pt=26, payload_len=1000, marker=(k == 2)))
            seq += 1
    pkts = jittered(pkts, random_delays(len(pkts), 5 * MS, seed=26))
    s = one_stream(tmp_path, pkts)
    assert s["markers"] == 100
    assert_jitter(s, a8_model(pkts, 90000), 90000)


def test_timestamp_step_back_reanchors_without_spike(tmp_path):
    pkts = voice(200)
    # the sender's clock resets at seq 1100: timestamps restart lower, sequence goes on
    pkts = [p if p.seq < 1100 else replace(p, ts=p.ts - 1_000_000) for p in pkts]
    pkts = jittered(pkts, random_delays(200, 6 * MS, seed=9))
    s = one_stream(tmp_path, pkts)
    assert seq_stats(s) == expect(200, 200)
    assert_jitter(s, a8_model(pkts, 8000), 8000)
    spike = a8_model(pkts, 8000, reanchor_on_backstep=False)[0]
    assert spike > 100 * s["max_jitter_ms"]  # the rule is what keeps it small


def test_timestamp_step_back_perfect_timing_is_zero(tmp_path):
    pkts = [p if p.seq < 1100 else replace(p, ts=p.ts - 1_000_000) for p in voice(200)]
    s = one_stream(tmp_path, pkts)
    assert_no_jitter(s)


def talkspurts(n_spurts=5, spurt=40, silence_ns=1500 * MS):
    """Voice with silence between talkspurts: the timestamp jumps with the
    arrival time and the first packet of each spurt carries the marker."""
    pkts = []
    seq, t, ts = 2000, T0_NS, 80_000
    for k in range(n_spurts):
        for i in range(spurt):
            pkts.append(Rtp(seq=seq, ts=ts, arrival_ns=t, marker=(i == 0)))
            seq += 1
            t += 20 * MS
            ts += 160
        t += silence_ns
        ts += silence_ns * 8000 // NS
    return pkts


def test_marker_talkspurts_with_silence_have_no_jitter(tmp_path):
    pkts = talkspurts()
    s = one_stream(tmp_path, pkts)
    assert seq_stats(s) == expect(200, 200)
    assert s["markers"] == 5
    assert_no_jitter(s)
    assert s["max_delta_ms"] == 20.0  # the silences come before marked packets only


def test_marker_talkspurts_with_network_jitter(tmp_path):
    pkts = talkspurts()
    pkts = jittered(pkts, random_delays(len(pkts), 8 * MS, seed=11))
    s = one_stream(tmp_path, pkts)
    assert_jitter(s, a8_model(pkts, 8000), 8000)


def voice_with_cn_and_dtmf():
    """PT 0 voice; a telephone-event (PT 101) digit whose packets all carry the
    event's start timestamp, its end packet sent three times (RFC 4733); then
    comfort noise (PT 13) during a silence, with timestamps off the voice clock."""
    pkts = []
    seq, t, ts = 3000, T0_NS, 1_000_000
    for _ in range(50):
        pkts.append(Rtp(seq=seq, ts=ts, arrival_ns=t))
        seq, t, ts = seq + 1, t + 20 * MS, ts + 160
    event_ts = ts
    for i in range(6):  # 6 x 50 ms of event, one timestamp
        end = i == 5
        for _ in range(3 if end else 1):
            pkts.append(Rtp(seq=seq, ts=event_ts, arrival_ns=t, pt=101, payload_len=4, marker=(i == 0)))
            t += 2 * MS if end else 0
        seq += 1
        t += 50 * MS
    ts += (t - pkts[50].arrival_ns) * 8000 // NS  # voice clock kept running
    for _ in range(50):
        pkts.append(Rtp(seq=seq, ts=ts, arrival_ns=t))
        seq, t, ts = seq + 1, t + 20 * MS, ts + 160
    for k in range(4):  # comfort noise every 200 ms, timestamps not following the clock
        pkts.append(Rtp(seq=seq, ts=ts + 7777 * (k + 1), arrival_ns=t + k * 200 * MS, pt=13, payload_len=1))
        seq += 1
    t += 1000 * MS
    ts += 1000 * 8
    for i in range(50):
        pkts.append(Rtp(seq=seq, ts=ts, arrival_ns=t, marker=(i == 0)))
        seq, t, ts = seq + 1, t + 20 * MS, ts + 160
    assert pkts == by_arrival(pkts)
    return pkts


DTMF = EngineOptions(payload_types={101: (8000, "event")})


def test_comfort_noise_and_telephone_event_do_not_feed_jitter(tmp_path):
    pkts = voice_with_cn_and_dtmf()
    s = one_stream(tmp_path, pkts, DTMF)
    n_voice = sum(p.pt == 0 for p in pkts)
    assert n_voice == 150
    assert seq_stats(s) == expect(len(pkts), len(pkts) - 2, duplicates=2)
    assert_no_jitter(s)
    assert_jitter(s, a8_model(pkts, 8000, no_timing={13, 19, 101}), 8000)
    # had CN/events fed jitter or moved the reference, it would not be zero
    assert a8_model(pkts, 8000, no_timing=frozenset())[0] > 10


def test_comfort_noise_and_dtmf_with_network_jitter(tmp_path):
    pkts = voice_with_cn_and_dtmf()
    pkts = jittered(pkts, random_delays(len(pkts), 7 * MS, seed=13))
    s = one_stream(tmp_path, pkts, DTMF)
    assert_jitter(s, a8_model(pkts, 8000, no_timing={13, 19, 101}), 8000)


# --------------------------------------------------------------------------
# dynamic payload types


def opus_like():
    pkts = voice(300, pt=96, ts_step=960, payload_len=80)  # 20 ms at 48 kHz
    return jittered(pkts, random_delays(300, 9 * MS, seed=96))


def test_dynamic_payload_type_has_no_jitter_without_mapping(tmp_path):
    s = one_stream(tmp_path, opus_like())
    assert seq_stats(s) == expect(300, 300)
    assert s["clock_rate"] is None
    assert_no_jitter(s)


def test_payload_type_mapping_gives_jitter(tmp_path):
    pkts = opus_like()
    s = one_stream(tmp_path, pkts, EngineOptions(payload_types={96: (48000, "audio")}))
    assert seq_stats(s) == expect(300, 300)
    assert s["max_jitter_ms"] > 0
    assert_jitter(s, a8_model(pkts, 48000), 48000)


def _idle_expiry_run(plans, driver_phase_s, driver_step_s, idle_s=3.0, horizon_s=14.0):
    """Feeds the streams of `plans` ((first s, last s, ssrc, port), 20 ms
    apart or fewer) and a never-quiet stream (every driver_step_s from
    driver_phase_s) to an engine frame by frame; after each frame checks the
    engine's expired count against the rule, simulated here: a sweep runs at
    the first frame one capture second after the last sweep (the first a
    second after the first frame) and removes every stream whose last packet
    is more than the idle timeout before that frame. Returns the order in
    which streams left."""
    from warpsniff._engine import Engine
    from capgen import ether_ipv4_udp_fast, rtp_bytes

    engine = Engine(idle_timeout=idle_s)
    frames = []
    for first, last, ssrc, port in plans:
        n = max(2, int((last - first) / 0.02) + 1)
        frames += [(T0_NS + int((first + i * (last - first) / (n - 1)) * NS), ssrc, port) for i in range(n)]
    t = driver_phase_s
    while t < horizon_s:
        frames.append((T0_NS + int(t * NS), 99, 40100))
        t += driver_step_s
    frames.sort()
    seqs, next_sweep, last_seen, left = {}, 0, {}, []
    for ts, ssrc, port in frames:
        if ts >= next_sweep:
            if next_sweep:
                for key, last in list(last_seen.items()):
                    if ts - last > idle_s * NS:
                        left.append(key)
                        del last_seen[key]
            next_sweep = ts + NS
        last_seen[(ssrc, port)] = ts
        seq = seqs[(ssrc, port)] = seqs.get((ssrc, port), 999) + 1
        pkt = Rtp(seq=seq, ts=seq * 160, arrival_ns=ts, ssrc=ssrc)
        engine.feed(ether_ipv4_udp_fast(rtp_bytes(pkt), sport=port, dport=port + 10000), ts)
        assert engine.counters()["streams_expired"] == len(left), (ts - T0_NS) / NS
    assert engine.counters()["streams_active"] == len(last_seen)
    return left


def test_idle_streams_leave_at_the_first_sweep_past_the_timeout():
    """A stream leaves the table at the first housekeeping sweep at which more
    than the idle timeout has passed since its last packet: not earlier, not
    later (the sweep skips slots it looked at recently, by a bound on their
    last packet; the bound must never make it late). Streams stop at
    fractions of a second on either side of whole seconds, one comes back
    after leaving (a new stream), sweeps fall at varied phases."""
    plans = [(0.0, 0.98, 1, 40000), (0.13, 2.37, 2, 40002), (0.5, 1.999, 3, 40004), (9.4, 10.0, 3, 40004),
             (1.0, 4.02, 4, 40006)]
    assert _idle_expiry_run(plans, 0.0, 0.25) == [(1, 40000), (3, 40004), (2, 40002), (4, 40006)]
    rng = random.Random(3550)
    for _ in range(40):
        plans = []
        for k in range(rng.randint(2, 6)):
            first = rng.uniform(0.0, 6.0)
            plans.append((first, first + rng.uniform(0.05, 3.0), 10 + k, 40000 + 2 * k))
        _idle_expiry_run(plans, rng.uniform(0.0, 0.5), rng.uniform(0.13, 0.61))
