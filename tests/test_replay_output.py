"""Replay output as calls finish (warpsniff/replay.py CallOutput): CDRs are
written during the replay, once a call can no longer change, and say what the
capture's constructed truth says; the stream selection and header shortcut
the per-call work relies on give what the general paths give."""
from __future__ import annotations

import gc
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from oracle import SHARED_PCAPS
from warpsniff.metrics.aggregate import Histogram
from warpsniff.pipeline import Pipeline
from warpsniff.replay import CallOutput, EngineOptions, replay
from warpsniff.report import call_to_dict
from warpsniff.sip.headers import header_values

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "pcaps" / "sample-calls.pcap"
TRUTH = json.loads((REPO / "pcaps" / "sample-calls.json").read_text())
IDLE = 0.5   # streams leave the table half a second after their last packet


@pytest.fixture(autouse=True)
def few_recent_calls(monkeypatch):
    """The tracker keeps the last 1,024 finished calls for late reports, and a
    CDR waits for its call to leave that list; the sample has 20 calls."""
    monkeypatch.setattr("warpsniff._engine.RECENT_CALLS", 2)   # the tracker reads it there


def _pcap_time(ns: int):
    """A truth time as the microsecond pcap records it."""
    return pytest.approx(ns // 1000 / 1e6, abs=1e-6)


def _streamed(idle: float = IDLE):
    """Replays the sample with CallOutput; returns (CDR dicts in write order,
    capture time of each write, peak calls waiting for their CDR, result)."""
    written, when, peak = [], [], [0]
    pipeline = Pipeline(EngineOptions(idle_timeout=idle))

    def write(record):
        written.append(json.loads(json.dumps(record)))
        when.append(pipeline.engine.capture_time_ns)

    output = CallOutput(write)
    add = output.add

    def counting_add(call):
        add(call)
        peak[0] = max(peak[0], output.waiting)

    output.add = counting_add
    result = replay([str(SAMPLE)], pipeline=pipeline, output=output)
    return written, when, peak[0], result, output


def test_cdrs_are_written_during_the_replay_and_match_the_truth():
    written, when, peak, result, output = _streamed()
    truth = {c["call_id"]: c for c in TRUTH["calls"]}
    assert [c["call_id"] for c in written] and {c["call_id"] for c in written} == set(truth)
    assert result.calls == []                    # no Call objects kept
    last_frame_ns = max(s["last_ns"] for s in TRUTH["streams"])
    assert sum(t < last_frame_ns for t in when) >= len(truth) // 2, "CDRs should not wait for the end"
    assert peak < len(truth)
    for cdr in written:
        t = truth[cdr["call_id"]]
        assert cdr["final_code"] == t["final"]
        assert cdr["invite_ts"] == _pcap_time(t["invite_ns"])
        assert cdr["answer_ts"] == (None if t["answer_ns"] is None else _pcap_time(t["answer_ns"]))
        assert cdr["end_ts"] == _pcap_time(t["end_ns"])
        want = sorted((TRUTH["streams"][i]["ssrc"], TRUTH["streams"][i]["packets"]) for i in t["streams"])
        assert sorted((s["ssrc"], s["packets"]) for s in cdr["streams"]) == want
    # written in the order the calls finished, as rows for the call table
    assert [r.call_id for r in output.rows] == [c["call_id"] for c in written]


def test_waiting_cdrs_are_bounded():
    """Streams that never go idle within the capture (a 300 s idle timeout)
    would hold every CDR to the end; with at most two allowed to wait, the
    oldest are written early, each once, with the packets seen so far."""
    written, peak = [], [0]
    pipeline = Pipeline(EngineOptions(idle_timeout=300.0))
    output = CallOutput(lambda record: written.append(json.loads(json.dumps(record))), max_waiting=2)
    tick = output.tick

    def counting_tick(p):
        tick(p)
        peak[0] = max(peak[0], len(output.records))

    output.tick = counting_tick
    replay([str(SAMPLE)], pipeline=pipeline, output=output)
    truth = {c["call_id"]: c for c in TRUTH["calls"]}
    assert sorted(c["call_id"] for c in written) == sorted(truth)      # each call once
    assert output.written_early > 0 and peak[0] == 2                   # never more than two after a tick
    for cdr in written:
        t = truth[cdr["call_id"]]
        assert cdr["final_code"] == t["final"]
        sent = {TRUTH["streams"][i]["ssrc"]: TRUTH["streams"][i]["packets"] for i in t["streams"]}
        assert all(s["ssrc"] in sent and s["packets"] <= sent[s["ssrc"]] for s in cdr["streams"])


def test_streamed_cdrs_equal_the_end_of_replay_cdrs():
    written, _, _, _, _ = _streamed()
    p = Pipeline(EngineOptions(idle_timeout=IDLE))
    kept = replay([str(SAMPLE)], pipeline=p)
    quality = p.quality_context(kept.calls)
    assert written == [json.loads(json.dumps(call_to_dict(c, kept.streams_of(c), quality))) for c in kept.calls]


def test_cli_streamed_cdrs_equal_the_unstreamed_ones(tmp_path):
    """--cdr FILE streams; --cdr - with --streams-json - cannot (the stream list
    comes first on stdout) and writes everything at the end: same lines. (In a
    subprocess the 20 calls all stay in the tracker's recent list, so this
    compares the two CLI paths; the test above covers writing mid-replay.)"""
    out = tmp_path / "cdr.jsonl"
    run = lambda *a: subprocess.run([sys.executable, "-m", "warpsniff", "replay", str(SAMPLE),  # noqa: E731
                                     "--idle-timeout", str(IDLE), *a], cwd=REPO, capture_output=True,
                                    text=True, timeout=120)
    streamed = run("--cdr", str(out), "-q")
    assert streamed.returncode == 0, streamed.stderr
    both = run("--cdr", "-", "--streams-json", "-")
    assert both.returncode == 0, both.stderr
    tail = both.stdout.splitlines()[-len(TRUTH["calls"]):]
    assert out.read_text().splitlines() == tail


def test_cli_call_table_unchanged_by_streaming(tmp_path):
    """The terminal table is built from compact rows: same text as from Calls."""
    proc = subprocess.run([sys.executable, "-m", "warpsniff", "replay", str(SAMPLE), "--cdr", str(tmp_path / "c")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.split("=" * 57)[0]
    for call in TRUTH["calls"]:
        assert call["call_id"] in table
    assert table.count("\n") == 2 + len(TRUTH["calls"])


@pytest.mark.parametrize("max_streams", [200000, 5])
def test_streams_of_calls_is_the_snapshot_filtered(max_streams):
    """The media join's selection (a compact array of each slot's call) against
    the snapshot it stands for; with 5 slots, streams are evicted and their
    slots reused by streams of other calls, or of none."""
    checked = [0]
    p = Pipeline(EngineOptions(max_streams=max_streams))
    tick = p.tick

    def checking_tick(now):
        refs = np.array([c.call_ref for c in p.tracker.calls.values()] + [1, 2, 3], dtype=np.uint32)
        # a few refs (no numpy on the way in) and many, unsorted and repeated; refs
        # spread wider than the selection's bits on the stack, and than any bits at all
        for asked in (refs, refs[::-1].tolist() * 2, refs[:4][::-1].tolist() + refs[:2].tolist(),
                      refs.tolist() + [70_000], refs[:3].tolist() + [1 << 30]):
            chosen = np.array(sorted(set(np.asarray(asked, dtype=np.int64).tolist())), dtype=np.uint32)
            for valid_only in (True, False):
                got = p.engine.streams_of_calls(asked, valid_only=valid_only)
                if valid_only:
                    snap = p.engine.streams()
                    want = snap[np.isin(snap["call_ref"], chosen)]
                    assert got.tobytes() == want.tobytes()
                else:
                    assert set(got["call_ref"].tolist()) <= set(chosen.tolist())
                    assert len(got) >= len(p.engine.streams_of_calls(asked))
        checked[0] += 1
        tick(now)

    p.tick = checking_tick
    replay([str(SAMPLE)], pipeline=p)
    assert checked[0] > 3
    assert len(p.engine.streams_of_calls([])) == 0
    if max_streams == 5:
        assert p.engine.counters()["stream_evictions"] > 0


def test_last_rtp_of_calls_is_the_latest_packet_of_each_calls_valid_streams():
    """The timer probe's answer, against the snapshot it stands for: per call,
    the largest last_ns of its validated streams (the sample's truth decides
    which calls have media at all)."""
    checked = [0]
    p = Pipeline(EngineOptions())
    tick = p.tick

    def checking_tick(now):
        refs = [c.call_ref for c in p.tracker.calls.values()] + [0, 7777]
        snap = p.engine.streams()
        want = {}
        for ref, last in zip(snap["call_ref"].tolist(), snap["last_ns"].tolist()):
            if ref in refs and ref:
                want[ref] = max(want.get(ref, 0), last)
        got = p.engine.last_rtp_of_calls(refs)
        assert got == {ref: last / 1e9 for ref, last in want.items()}
        assert p.engine.last_rtp_of_calls(refs[::-1] * 3) == got   # unsorted, repeated, more than a few
        assert p.engine.last_rtp_of_calls(refs + [1 << 30]) == got   # refs too far apart for a bit set
        checked[0] += bool(got)
        tick(now)

    p.tick = checking_tick
    replay([str(SAMPLE)], pipeline=p)
    assert checked[0] > 3
    assert p.engine.last_rtp_of_calls([]) == {}


def test_a_replay_makes_no_reference_cycles():
    """replay() runs with the cyclic collector off (warpsniff/replay.py): that
    is only safe while everything a replay allocates, the finished pipeline
    included, is freed by reference counting. The sample and every public
    capture (TCP, WebSocket, SCTP, fragments, broken files) leave nothing
    for the collector."""
    public = sorted(SHARED_PCAPS.glob("*.pcap*"))   # none when ../shared is absent: the sample alone
    captures = [str(SAMPLE)] + [str(p) for p in public]
    for path in captures[:2]:
        replay([path])          # first use: imports, caches and compiled patterns are not garbage
    gc.collect()
    gc.disable()
    try:
        for path in captures:
            replay([path])
            replay([path], output=CallOutput(write_cdr=lambda record: None))
        found = gc.collect()
    finally:
        gc.enable()
    assert found == 0


def test_replay_turns_the_collector_off_only_when_flat_out():
    """Flat out, replay() runs without the cyclic collector and restores it;
    paced (speed), it keeps collecting, less often, beside the exporter."""
    before = gc.get_threshold()
    seen = []
    replay([str(SAMPLE)], output=CallOutput(write_cdr=lambda record: seen.append(gc.isenabled())))
    assert seen and not any(seen)
    assert gc.isenabled() and gc.get_threshold() == before
    seen.clear()
    replay([str(SAMPLE)], speed=10_000.0,
           output=CallOutput(write_cdr=lambda record: seen.append((gc.isenabled(), gc.get_threshold()[0]))))
    assert seen and all(enabled and threshold >= 50_000 for enabled, threshold in seen)
    assert gc.isenabled() and gc.get_threshold() == before


def test_a_flat_out_replay_ends_without_a_collection():
    """Switched back on after a flat-out replay, the collector would walk every
    object the replay made (finding nothing: the test above); replay() hands
    them to the oldest generation instead, so no collection runs within it,
    and a program's own frozen objects stay frozen."""
    replay([str(SAMPLE)])   # first use: imports and caches
    started = []

    def watch(phase, info):
        if phase == "start":
            started.append(info["generation"])

    thresholds = gc.get_threshold()
    gc.collect()
    # the sample twice leaves about 1,100 objects made since the replay began
    gc.set_threshold(500, *thresholds[1:])
    gc.callbacks.append(watch)
    try:
        result = replay([str(SAMPLE), str(SAMPLE)])
    finally:
        gc.callbacks.remove(watch)
        gc.set_threshold(*thresholds)
    assert result.calls and started == []
    assert gc.isenabled()
    kept = [[i] for i in range(1000)]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        replay([str(SAMPLE)])
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
    assert kept


def test_header_values_byte_shortcut_keeps_the_rules():
    msg = (b"INVITE sip:1@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
           b"P-ASSERTED-IDENTITY : <sip:+13125550100@example.com>\r\n x-more\r\nTo: <sip:2@x>\r\n\r\n")
    got = header_values(msg, len(msg), frozenset({"p-asserted-identity", "x-trunk"}))
    assert got == {"p-asserted-identity": ["<sip:+13125550100@example.com> x-more"]}
    absent = b"INVITE sip:1@x SIP/2.0\r\nTo: <sip:2@x>\r\n\r\n"
    assert header_values(absent, len(absent), frozenset({"p-asserted-identity"})) == {}
    # a non-ASCII name that lower-cases to an asked one (KELVIN SIGN -> k) still counts
    kelvin = "INVITE sip:1@x SIP/2.0\r\nX-\u212aey: v\r\n\r\n".encode()
    assert header_values(kelvin, len(kelvin), frozenset({"x-key"})) == {"x-key": ["v"]}


@pytest.mark.parametrize("value, bucket", [(0.5, 0), (1, 0), (1.0000001, 1), (3, 1), (6, 2), (7, 3),
                                           (math.inf, 3), (math.nan, 3)])
def test_histogram_buckets_are_less_or_equal(value, bucket):
    """Prometheus buckets count observations <= their upper bound."""
    h = Histogram((1, 3, 6))
    h.observe(value)
    assert h.counts == [1 if i == bucket else 0 for i in range(4)]


def test_streams_only_gives_the_truths_streams_and_no_calls(tmp_path):
    """--streams-only: every stream of the sample, with the packets and loss its
    generator wrote, none bound to a call, and SIP not even looked at."""
    out = tmp_path / "streams.json"
    proc = subprocess.run([sys.executable, "-m", "warpsniff", "replay", str(SAMPLE), "--streams-only",
                           "--streams-json", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Calls" not in proc.stdout and "RTP Streams" in proc.stdout
    got = sorted((s["src"], s["dst"], s["ssrc"], s["packets"], s["lost"], s["call_id"])
                 for s in json.loads(out.read_text()))
    want = sorted((s["src"], s["dst"], s["ssrc"], s["packets"], s["lost"], None) for s in TRUTH["streams"])
    assert got == want
    r = replay([str(SAMPLE)], options=EngineOptions(signalling=False))
    assert r.counters["sip_udp"] == 0 and r.calls == []


def test_streams_only_refuses_what_needs_sip(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "warpsniff", "replay", str(SAMPLE), "--streams-only",
                           "--cdr", str(tmp_path / "c.jsonl")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--streams-only" in proc.stderr and "--cdr" in proc.stderr


@pytest.mark.parametrize("given", [None, "2"])
def test_the_command_starts_no_blas_threads(given):
    """numpy's OpenBLAS would start a thread per CPU at import, spinning about
    0.1 s of CPU per run; the command does no linear algebra and asks for
    none (a value the user set is kept). Threads counted from /proc."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    probe = ("import os, warpsniff.cli, numpy; "
             "print(os.environ['OPENBLAS_NUM_THREADS'], len(os.listdir('/proc/self/task')))")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60,
                         check=True).stdout.split()
    if given is None:
        assert out == ["1", "1"]
    else:
        assert out[0] == given
