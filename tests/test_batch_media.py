"""The pass that scores and sums calls' streams (CallMediaPass, one typed
pass in the engine; media joins and live_media) must give what the rules
give stream by stream: QualityContext.default_mos (the E-model per stream,
which badcalls also uses) and docs/metrics.md's direction rule, written out
in this file, on rows covering every branch: unknown and dynamic codecs, no
PLC, nothing expected, negative loss, late packets, known RTT, streams
matched by destination, by source, or by neither. The RTT it reads from the
engine's RTCP table in place (Engine.round_trips) is QualityContext's.
"""
from __future__ import annotations

import random

import numpy as np
import pytest

from warpsniff._engine import STREAM_DTYPE, CallMediaPass, StreamScorer
from warpsniff.capture.workers import EngineGroup
from warpsniff.labels import CallLabels
from warpsniff.pipeline import Pipeline, rows_of_calls
from warpsniff.quality.streams import DEFAULT_JB_MODE
from warpsniff.quality.codecs import CodecTable
from warpsniff.quality.streams import QualityContext
from warpsniff.sip.calls import Call

V4 = bytes(10) + b"\xff\xff"


def address(rng) -> bytes:
    return V4 + bytes([10, 0, 0, rng.randint(1, 4)])


def random_rows(rng, refs, n):
    rows = np.zeros(n, dtype=STREAM_DTYPE)
    for row in rows:
        row["call_ref"] = rng.choice(refs)
        row["payload_type"] = rng.choice([0, 8, 9, 18, 96, 97, 101, 111, 120])
        row["ssrc"] = rng.randint(1, 6)
        row["expected"] = rng.choice([0, -3, rng.randint(1, 5000)])
        row["lost"] = rng.choice([-2, 0, rng.randint(0, 300)])
        row["jb_late"] = [rng.randint(0, 50) for _ in range(3)]
        row["jb_loss_runs"] = [rng.randint(0, 40) for _ in range(3)]
        row["max_jitter_ms"] = rng.uniform(0.0, 80.0)
        row["src"], row["dst"] = address(rng), address(rng)
        row["sport"], row["dport"] = rng.choice([4000, 5000]), rng.choice([4000, 5000])
    return rows


def quality_for(rng, plc: bool) -> QualityContext:
    names = {1: {96: "opus", 97: "no-such-codec"}, 2: {96: "PCMA", 111: "opus"}, 3: {}}
    quality = QualityContext(CodecTable.load(), None, names, plc=plc)
    quality.rtt = {2: 35.0, 4: 410.0}   # SSRC -> RTT (ms): conversational MOS for these
    return quality


class FixedRoundTrips:
    """What EngineGroup.round_trips answers, from SSRC -> RTT (ms); keeps
    what it was asked."""

    def __init__(self, rtt: dict):
        self.rtt = rtt
        self.asked = []

    def round_trips(self, ssrcs):
        self.asked.append(list(ssrcs))
        return {s: (0, self.rtt[s]) for s in ssrcs if s in self.rtt}


def media_pass(calls, rows, quality) -> dict:
    """call_ref -> (streams, MOS) from the native pass, with the codec table,
    PLC setting and RTTs of `quality`; each call's payload names are its own."""
    scorer = StreamScorer(quality.codecs, quality.plc)
    return CallMediaPass(calls, rows, FixedRoundTrips(quality.rtt), scorer, DEFAULT_JB_MODE).by_call()


def batch_mos(quality, rows) -> list:
    """Each row's default MOS and codec as the batch path scores it: every row
    made a call of its own, whose MOS is then its one stream's."""
    rows = rows.copy()
    refs = list(rows["call_ref"].tolist())
    rows["call_ref"] = np.arange(1, len(rows) + 1)
    calls = []
    for ref, own in zip(rows["call_ref"].tolist(), refs):
        call = Call(call_ref=ref, call_id=f"row-{ref}", from_uri=None, to_uri=None, from_tag="a",
                    invite_ts=0.0, invite_cseq=1, caller=(V4 + bytes(4), 5060))
        call.labels = CallLabels()
        call.payload_names = quality.payload_names.get(own, {})
        calls.append(call)
    medias = media_pass(calls, rows, quality)
    return [(next(iter(medias[c.call_ref][0]))[1], medias[c.call_ref][1]) for c in calls]


@pytest.mark.parametrize("plc", [True, False])
def test_batch_mos_equals_default_mos_per_row(plc):
    rng = random.Random(7)
    rows = random_rows(rng, [1, 2, 3, 4], 2000)
    quality = quality_for(rng, plc)
    want = [((codec or "unknown"), mos) for codec, mos in (quality.default_mos(rec) for rec in rows)]
    assert batch_mos(quality, rows) == want
    assert any(mos is None for _, mos in want) and any(mos is not None for _, mos in want)


def direction_of(call, rec) -> str:
    """A stream's direction as docs/metrics.md states it: inbound/outbound
    from the platform's view when the call's direction is known, else from
    the caller's (its own media is outbound); the sender is the party whose
    SDP address the stream did not go to, or failing that came from, and the
    caller when neither is known."""
    to = call.media.get((bytes(rec["dst"]), int(rec["dport"])))
    if to is not None:
        sender = "callee" if to == "caller" else "caller"
    else:
        sender = call.media.get((bytes(rec["src"]), int(rec["sport"]))) or "caller"
    view = call.labels.direction if call.labels.direction in ("inbound", "outbound") else "outbound"
    if sender == "caller":
        return view
    return "inbound" if view == "outbound" else "outbound"


def media_by_rule(call, rows, quality) -> tuple:
    """(MOS, {(direction, codec): [lost, expected, max jitter ms]}) of one call,
    stream by stream: the worse direction's MOS, losses and jitter summed."""
    streams, scores = {}, []
    for rec in rows:
        codec, mos = quality.default_mos(rec)
        if mos is not None:
            scores.append(mos)
        row = streams.setdefault((direction_of(call, rec), codec or "unknown"), [0, 0, 0.0])
        row[0] += max(int(rec["lost"]), 0)
        row[1] += max(int(rec["expected"]), 0)
        row[2] = max(row[2], float(rec["max_jitter_ms"]))
    return (min(scores) if scores else None), streams


@pytest.mark.parametrize("joined", [False, True])
def test_media_of_calls_follows_the_rules_stream_by_stream(joined):
    """joined: the rows as a media join often has them, the table's rows and
    those of streams that already left it put together (np.concatenate lays
    the fields out anew, in name order, not as the engine's records)."""
    rng = random.Random(11)
    calls = []
    for ref, direction in zip((1, 2, 3, 4, 5), ("inbound", "outbound", "unknown", "internal", "inbound")):
        call = Call(call_ref=ref, call_id=f"batch-{ref}", from_uri=None, to_uri=None, from_tag="a",
                    invite_ts=0.0, invite_cseq=1, caller=(V4 + bytes(4), 5060))
        call.labels = CallLabels(account=f"acct-{ref}", direction=direction)
        # SDP bindings: some streams match their destination, some their source, some neither
        call.media = {(V4 + bytes([10, 0, 0, 1]), 4000): "caller", (V4 + bytes([10, 0, 0, 2]), 5000): "callee"}
        calls.append(call)
    rows = random_rows(rng, [1, 2, 3, 4, 9], 1500)   # call_ref 9: rows of a call not in the batch
    if joined:
        rows = np.concatenate([rows[:900], rows[900:]])
        assert rows.dtype != STREAM_DTYPE and rows.dtype.names == STREAM_DTYPE.names
    quality = quality_for(rng, plc=True)
    for call in calls:
        call.payload_names = quality.payload_names.get(call.call_ref, {})

    batch = media_pass(calls, rows, quality)

    assert list(batch) == [1, 2, 3, 4, 5]
    for call in calls:
        mos, streams = media_by_rule(call, rows[rows["call_ref"] == call.call_ref], quality)
        got_streams, got_mos = batch[call.call_ref]
        assert got_mos == mos
        assert list(got_streams.items()) == list(streams.items())   # same rows, same order
    assert batch[5] == ({}, None)


def test_rows_of_calls_selects_what_isin_selects():
    """Few refs take the comparison path, many take np.isin: both must give
    exactly the rows np.isin gives, in table order."""
    rng = np.random.default_rng(5)
    streams = np.zeros(3000, dtype=STREAM_DTYPE)
    streams["call_ref"] = rng.integers(0, 400, len(streams))
    streams["ssrc"] = np.arange(len(streams))
    for count in (0, 1, 2, 8, 9, 50, 399):
        refs = set(rng.choice(400, size=count, replace=False).tolist())
        want = streams[np.isin(streams["call_ref"], np.array(sorted(refs), dtype=np.uint32))]
        got = rows_of_calls(streams, refs)
        assert got.tobytes() == want.tobytes(), count
        assert len(got) == sum(1 for r in streams["call_ref"].tolist() if r in refs)


def test_rows_kept_for_an_open_call_are_bounded_and_the_rest_counted():
    """A flood of new SSRCs to one call's port ends stream after stream while
    the call is up: at most MAX_ENDED_ROWS_PER_CALL of their rows wait for the
    call's media join; the rest are counted (warpsniff_table_evictions_total
    {table="call_media"}), not kept."""
    from test_timers import CALLEE, CALLER, Headers
    from warpsniff.metrics.collector import SnifferCollector
    from warpsniff.pipeline import MAX_ENDED_ROWS_PER_CALL
    from warpsniff.replay import EngineOptions

    p = Pipeline(EngineOptions())
    p.tracker.message(Headers(call_id="flood@test", is_request=True, method="INVITE", cseq=1,
                              cseq_method="INVITE", via_branch="z9hG4bK1", from_tag="a"),
                      b"", 1.0, CALLER, CALLEE)
    ref = p.tracker.calls["flood@test"].call_ref
    flood = MAX_ENDED_ROWS_PER_CALL + 904
    for chunk in range(0, flood, 1000):
        rows = np.zeros(min(1000, flood - chunk), dtype=STREAM_DTYPE)
        rows["call_ref"] = ref
        rows["ssrc"] = np.arange(chunk, chunk + len(rows))
        p.streams_ended(rows)
    kept = np.concatenate(p.ended_by_call[ref])
    assert len(kept) == MAX_ENDED_ROWS_PER_CALL
    assert kept["ssrc"].tolist() == list(range(MAX_ENDED_ROWS_PER_CALL))   # the first ones, in order
    family = next(f for f in SnifferCollector(p).collect() if f.name == "warpsniff_table_evictions")
    assert {s.labels["table"]: s.value for s in family.samples}["call_media"] == 904
    p.streams_ended(np.zeros(3, dtype=STREAM_DTYPE))   # unbound rows: nobody's, nothing kept
    assert sum(len(k) for k in p.ended_by_call[ref]) == MAX_ENDED_ROWS_PER_CALL


def random_rtcp(rng, n):
    """RTCP senders' rows: reports about SSRCs 1..200 (several about the same
    one, arriving in any order), some with an RTT, some with XR VoIP metrics
    about the same source or another."""
    from warpsniff._engine import RTCP_DTYPE

    rtcp = np.zeros(n, dtype=RTCP_DTYPE)
    for row in rtcp:
        row["ssrc"] = rng.randint(1000, 2000)
        row["has_report_block"] = rng.random() < 0.8
        row["rb_ssrc"] = rng.randint(1, 200)
        row["rb_arrival_ns"] = rng.randint(0, 10) * 1000   # ties: the table's order decides
        row["rb_fraction_lost"] = rng.randint(0, 255)
        row["rb_cumulative_lost"] = rng.randint(0, 500)
        row["rb_jitter"] = rng.randint(0, 4000)
        row["rtt_samples"] = rng.choice([0, 1, 3])
        row["rtt_ms"] = rng.uniform(1.0, 600.0)
        row["has_xr_voip"] = rng.random() < 0.3
        row["xr_ssrc"] = row["rb_ssrc"] if rng.random() < 0.5 else rng.randint(1, 200)
        row["xr_mos_lq"], row["xr_mos_cq"], row["xr_r_factor"] = rng.choice([(127, 127, 127), (41, 39, 88)])
    return rtcp


def test_quality_context_for_some_streams_reads_only_their_rtcp_and_scores_the_same():
    """A context built for the SSRCs of the streams it scores (a media join
    reads only the RTCP about its calls' streams, not every sender's) scores
    them exactly as one built from the whole RTCP table."""
    rng = random.Random(3550)
    rtcp = random_rtcp(rng, 3000)
    codecs = CodecTable.load()
    names = {1: {96: "opus"}, 2: {111: "opus"}}
    for trial in range(20):
        rows = random_rows(rng, [1, 2, 3], rng.randint(1, 12))
        rows["ssrc"] = [rng.randint(1, 220) for _ in range(len(rows))]   # some with no RTCP at all
        wanted = set(rows["ssrc"].tolist())
        whole = QualityContext(codecs, rtcp, names)
        some = QualityContext(codecs, rtcp, names, ssrcs=wanted)
        assert wanted & set(whole.reports) <= set(some.reports) and len(some.reports) < len(whole.reports)
        assert batch_mos(some, rows) == batch_mos(whole, rows)
        assert [some.assess(rec) for rec in rows] == [whole.assess(rec) for rec in rows]
    assert some.rtt and some.reports and some.xr   # the figures compared did use RTCP


def test_the_pass_asks_the_rtt_of_each_scored_ssrc_once_in_order():
    """The RTCP about a join's streams, not every sender's: the SSRCs of the
    streams it scores (a codec with an impairment, packets expected), each
    once, ascending (the engine's scan looks them up by bisection), however
    many (a heap sort above a handful)."""
    rng = random.Random(29)
    for n in (1, 3, 70, 900):
        rows = random_rows(rng, [1, 2], n)
        rows["ssrc"] = [rng.randint(1, 5 * n) for _ in range(n)]
        rows["payload_type"] = [rng.choice([0, 8, 120]) for _ in range(n)]   # 120: no codec, not scored
        calls = []
        for ref in (1, 2):
            call = Call(call_ref=ref, call_id=f"c{ref}", from_uri=None, to_uri=None, from_tag="a",
                        invite_ts=0.0, invite_cseq=1, caller=(V4 + bytes(4), 5060))
            call.labels = CallLabels()
            calls.append(call)
        asked = FixedRoundTrips({})
        CallMediaPass(calls, rows, asked, StreamScorer(CodecTable.load()), DEFAULT_JB_MODE)
        scored = {int(r["ssrc"]) for r in rows if r["payload_type"] != 120 and r["expected"] > 0}
        assert asked.asked == ([sorted(scored)] if scored else [])


class RoundTripsOf:
    """An engine that answers Engine.round_trips from a table."""

    def __init__(self, table: dict):
        self.table = table

    def round_trips(self, ssrcs):
        return {s: self.table[s] for s in ssrcs if s in self.table}


def test_engine_group_round_trips_take_the_latest_report_the_later_engine_on_a_tie():
    """EngineGroup.round_trips merges its engines' answers as QualityContext
    reads rtcp_sources() (the engines' tables one after the other, sorted by
    arrival, stably): the latest arrival wins, on a tie the later engine."""
    group = EngineGroup([RoundTripsOf({1: (100, 10.0), 2: (300, 20.0), 3: (50, 30.0)}),
                         RoundTripsOf({1: (200, 11.0), 2: (300, 21.0), 4: (7, 40.0)}),
                         RoundTripsOf({1: (150, 12.0), 2: (299, 22.0)})], ["a", "b", "c"])
    assert group.round_trips([1, 2, 3, 4, 5]) == {1: (200, 11.0), 2: (300, 21.0), 3: (50, 30.0), 4: (7, 40.0)}
    rows = random_rows(random.Random(3), [1], 40)
    rows["ssrc"] = [1, 2, 3, 4, 5] * 8
    rows["payload_type"] = 0
    rows["expected"] = 100
    call = Call(call_ref=1, call_id="c1", from_uri=None, to_uri=None, from_tag="a", invite_ts=0.0, invite_cseq=1,
                caller=(V4 + bytes(4), 5060))
    call.labels = CallLabels()
    got = CallMediaPass([call], rows, group, StreamScorer(CodecTable.load()), DEFAULT_JB_MODE).by_call()
    quality = QualityContext(CodecTable.load(), None, {})
    quality.rtt = {1: 11.0, 2: 21.0, 3: 30.0, 4: 40.0}
    assert got[1][1] == min(quality.default_mos(r)[1] for r in rows)


def test_call_fields_read_what_getattr_reads():
    """CallFields (how joins and the aggregator read a Call's fields by name)
    gives getattr's value for each name on cdef classes, Python classes with
    properties, slots, instance attributes and a __getattribute__ of their
    own, and when objects of several types come in turn."""
    from warpsniff._engine import call_fields_for_tests as fields

    class WithProperty:
        def __init__(self, v):
            self.reason = f"r{v}"
            self._ref = v

        @property
        def call_ref(self):
            return self._ref * 10

    class WithSlots:
        __slots__ = ("call_ref", "reason")

        def __init__(self, v):
            self.call_ref, self.reason = v, "slot"

    class OwnGetattribute(WithProperty):
        def __getattribute__(self, name):
            return "own" if name == "reason" else object.__getattribute__(self, name)

    class Shadowed(WithProperty):
        pass

    class NonData:   # a descriptor without __set__: the instance's own attribute wins over it
        def __get__(self, obj, owner=None):
            return "descriptor"

    class WithNonData(WithProperty):
        reason = NonData()

    call = Call(call_ref=7, call_id="c7", from_uri=None, to_uri=None, from_tag="a", invite_ts=1.0, invite_cseq=1,
                caller=(V4 + bytes(4), 5060))
    call.reason, call.end_ts, call.answer_ts = "normal", 9.0, 4.0
    objects = [call, WithProperty(3), call, WithSlots(4), OwnGetattribute(5), Shadowed(6), WithSlots(8), call,
               WithNonData(9)]
    objects[5].__dict__["call_ref"] = "instance"   # a property wins over the instance's own attribute
    names = ("call_ref", "reason", "duration_s", "end_ts")
    for obj in objects:
        for name in names:
            try:
                want = getattr(obj, name)
            except AttributeError:
                with pytest.raises(AttributeError):
                    fields(obj, name)
                continue
            assert fields(obj, name) == want, (type(obj).__name__, name)
