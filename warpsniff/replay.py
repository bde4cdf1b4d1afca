"""Replay capture files through a Pipeline and collect the results.

Data flows once: file -> engine (native, per packet) -> signalling batches ->
calls (Python, per message) -> SDP bindings back into the engine. Results
come out in bulk: stream arrays from the engine, call records from the
tracker.
"""
from __future__ import annotations

import gc
import sys
import time
from collections import deque
from itertools import islice
from dataclasses import dataclass, field
from typing import Callable, Iterable, NamedTuple, Optional

import numpy as np

from warpsniff._engine import STREAM_DTYPE, Engine
from warpsniff.pipeline import Pipeline, streams_by_call
from warpsniff.report import CallRow, call_record, with_media
from warpsniff.sip.calls import Call, CallConfig


@dataclass
class EngineOptions:
    max_streams: int = 200_000
    sip_ports: tuple = (5060,)
    rtp_port_range: tuple = (1024, 65535)
    idle_timeout: float = 300.0
    sip_by_content: bool = True
    payload_types: dict = field(default_factory=dict)  # pt -> (clock_rate, kind)
    control_ports: tuple = ()   # UDP ports whose datagrams go to control handlers (rtpengine ng)
    signalling: bool = True     # False: RTP/RTCP streams only, SIP not looked for (--streams-only)

    def build(self, adopt_unbound: bool = True) -> Engine:
        engine = Engine(
            adopt_unbound=adopt_unbound,
            max_streams=self.max_streams,
            sip_ports=self.sip_ports if self.signalling else (),
            rtp_port_range=self.rtp_port_range,
            idle_timeout=self.idle_timeout,
            sip_by_content=self.sip_by_content and self.signalling,
            control_ports=self.control_ports if self.signalling else (),
        )
        for pt, (clock, kind) in self.payload_types.items():
            engine.set_payload_type(pt, clock, kind)
        return engine


@dataclass
class ReplayResult:
    streams: np.ndarray          # STREAM_DTYPE: every validated stream, ended or active
    rtcp: np.ndarray             # RTCP_DTYPE: one row per reporting sender
    calls: list                  # Call, in the order they finished
    counters: dict
    decode_errors: dict
    sip: dict                    # SIP and TCP reassembly counters
    signalling_records: int
    errors: list = field(default_factory=list)  # CaptureError per file that failed
    elapsed_s: float = 0.0

    def streams_of(self, call: Call) -> np.ndarray:
        return self.streams[self.streams["call_ref"] == call.call_ref]


class _Waiting(NamedTuple):
    """A finished call whose CDR waits for its streams: only what the line needs."""
    call_ref: int
    record: dict          # report.call_record(): the call's own fields, final
    payload_names: dict   # pt -> encoding, for scoring its streams


class CallOutput:
    """Replay output as calls finish, so memory follows the calls in flight and
    not the length of the capture. Instead of every Call object it keeps a
    compact row per call for the terminal table (`rows`) and the Call-ID per
    call_ref for --streams-json (`call_ids`), and hands each call's --cdr
    record (a dict, report.call_to_dict's) to `write_cdr` once nothing can
    change it any more: the tracker no longer keeps the call for late reports,
    and every stream bound to it has left the engine's table (idle for
    --idle-timeout, or the input ended). Those are the records the end of the
    replay would give, in the same order (the order calls finished); only an
    RTCP report about one of the call's SSRCs arriving after that could have
    changed its quality figures. A call waiting for its streams is kept as its
    record, not as the Call."""

    # A flood of calls behind one whose stream is still flowing would wait (and
    # be held in memory) until that stream goes idle: past this many waiting
    # CDRs the oldest are written with the packets their streams have so far.
    MAX_WAITING = 100_000

    def __init__(self, write_cdr: Optional[Callable[[dict], None]] = None,
                 rows: bool = True, call_ids: bool = True, max_waiting: int = MAX_WAITING):
        self.write_cdr = write_cdr
        self.max_waiting = max_waiting
        self.written_early = 0          # CDRs written before every stream of theirs went idle
        self.rows: Optional[list] = [] if rows else None
        self.call_ids: Optional[dict] = {} if call_ids else None
        self.payload_names: dict = {}   # call_ref -> {pt: encoding}, for --streams-json quality
        # CDRs not written yet, in the order calls finished: first the settled ones (records),
        # then calls the tracker may still change (they finished later)
        self.records: deque = deque()   # _Waiting
        self.calls: deque = deque()     # Call
        self.ended: dict = {}           # call_ref -> [stream rows that left the table]
        self.ended_seen = 0             # pipeline.ended_streams chunks already sorted by call

    @property
    def waiting(self) -> int:
        """Finished calls whose CDR is not written yet."""
        return len(self.records) + len(self.calls)

    def add(self, call: Call) -> None:
        if self.rows is not None:
            self.rows.append(CallRow.of(call))
        if self.call_ids is not None:
            self.call_ids[call.call_ref] = call.call_id
            if call.payload_names:
                self.payload_names[call.call_ref] = call.payload_names
        if self.write_cdr is not None:
            self.calls.append(call)

    def tick(self, p: Pipeline) -> None:
        if self.write_cdr is None:
            return
        self._collect_ended(p)
        self._settle(p, everything=False)
        # the oldest records first, a few hundred at a time, until one still has a stream
        # in the table (any stream, even one on probation, may still change)
        while self.records:
            head = list(islice(self.records, 256))
            rows = p.engine.streams_of_calls([w.call_ref for w in head], valid_only=False)
            in_table = set(rows["call_ref"].tolist())
            ready = 0
            while ready < len(head) and head[ready].call_ref not in in_table:
                ready += 1
            if ready:
                self._write(p, ready, None)
            if ready < len(head):
                break
        excess = len(self.records) - self.max_waiting
        if excess > 0:
            oldest = [w.call_ref for w in islice(self.records, excess)]
            self._write(p, excess, p.engine.streams_of_calls(oldest))
            self.written_early += excess

    def finish(self, p: Pipeline) -> None:
        """End of input: every call left is final; streams still in the table count."""
        if self.write_cdr is None:
            return
        self._collect_ended(p)
        self._settle(p, everything=True)
        if self.records:
            self._write(p, len(self.records), p.engine.streams())

    def _settle(self, p: Pipeline, everything: bool) -> None:
        """Calls the tracker no longer keeps for late reports (all of them at the
        end) become records; calls enter and leave that list in finish order."""
        recent = p.tracker.recent
        while self.calls:
            call = self.calls[0]
            if not everything and recent.get(call.call_id) is call:
                break
            self.calls.popleft()
            self.records.append(_Waiting(call.call_ref, call_record(call), call.payload_names))

    def _collect_ended(self, p: Pipeline) -> None:
        # streams that left the table wait in the engine until its buffer fills: take them
        # now, into the same list (and order) the replay's stream list is built from
        ended = p.engine.drain_ended()
        if len(ended):
            p.streams_ended(ended)
        for chunk in p.ended_streams[self.ended_seen:]:
            bound = chunk[chunk["call_ref"] > 0]
            if len(bound):
                for ref, rows in streams_by_call(bound, set(bound["call_ref"].tolist())).items():
                    self.ended.setdefault(ref, []).append(rows)
        self.ended_seen = len(p.ended_streams)

    def _write(self, p: Pipeline, count: int, active: Optional[np.ndarray]) -> None:
        """Writes the first `count` waiting records (all settled)."""
        batch = [self.records.popleft() for _ in range(count)]
        active_by_call = streams_by_call(active, {w.call_ref for w in batch}) if active is not None else {}
        empty = np.zeros(0, dtype=STREAM_DTYPE)
        rows_of = []
        for w in batch:
            parts = self.ended.pop(w.call_ref, [])
            if w.call_ref in active_by_call:
                parts.append(active_by_call[w.call_ref])
            rows = np.concatenate(parts) if parts else empty
            # the order the whole replay's stream list has (replay(): by first packet, then SSRC)
            rows_of.append(rows[np.lexsort((rows["ssrc"], rows["first_ns"]))])
        quality = p.quality_context(payload_names={w.call_ref: w.payload_names for w in batch},
                                    rows=np.concatenate(rows_of) if rows_of else empty)
        for w, rows in zip(batch, rows_of):
            self.write_cdr(with_media(w.record, w.call_ref, rows, quality))


# A replay makes no reference cycles (tests/test_replay_output.py checks it):
# everything it allocates is freed by reference counting, so CPython's cyclic
# collector, which would walk the replay's live objects every few hundred
# allocations, finds nothing to free (at its default threshold it cost a
# replay of 100,000 calls about a tenth of its time). A replay run flat out
# switches it off and back on after; a paced one (speed) can last hours beside
# the exporter's threads, whose garbage must still go, so it only runs the
# collector less often. Switched back on, the collector would at once walk
# everything the replay allocated (a young generation of every object made
# since: 2 ms after the 500-call benchmark, 0.3 s after 60,000 calls) to find
# nothing; those objects are moved to the oldest generation instead
# (gc.freeze + gc.unfreeze, two list splices), where the next full
# collection sees them as it would have.
PACED_GC_THRESHOLD = 50_000


def _promote_young_objects() -> None:
    """Moves every object the collector tracks to its oldest generation,
    unless the program froze objects of its own (unfreezing would hand them
    back to the collector)."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.enabled = stream.isatty()
        self.last = 0.0

    def update(self, name: str, pos: int, size: int, frames: int) -> None:
        if not self.enabled or not size:
            return
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        pct = min(100.0, 100.0 * pos / size)
        bar = "#" * int(pct / 5)
        self.stream.write(f"\r{name[-30:]:>30} [{bar:<20}] {pct:5.1f}% {frames:>12,} frames")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.last:
            self.stream.write("\r" + " " * 80 + "\r")
            self.stream.flush()


def replay(
    paths: Iterable[str],
    options: Optional[EngineOptions] = None,
    call_config: Optional[CallConfig] = None,
    progress: Optional[Progress] = None,
    label_config=None,
    codecs=None,
    plc: bool = True,
    speed: Optional[float] = None,
    pipeline: Optional[Pipeline] = None,
    close_calls: bool = True,
    output: Optional[CallOutput] = None,
) -> ReplayResult:
    """Runs every file through one pipeline, as if the files were one capture.
    `speed` paces by capture time (1 = real time); None runs flat out.
    close_calls=False leaves calls still up at the end open (for serving).
    With `output`, finished calls go there as they finish and `calls` of the
    result stays empty (memory bounded by calls in flight)."""
    start = time.perf_counter()
    p = pipeline or Pipeline(options or EngineOptions(), call_config, label_config, codecs, plc)
    if output is not None:
        p.call_sink = output
    collecting, thresholds = gc.isenabled(), gc.get_threshold()
    if speed is None:
        gc.disable()
    elif thresholds[0]:   # 0: collection disabled by the caller, leave it so
        gc.set_threshold(max(thresholds[0], PACED_GC_THRESHOLD), *thresholds[1:])
    try:
        for path in paths:
            p.run_reader(str(path), progress=progress, speed=speed)
        p.finish(close_calls)
    finally:
        gc.set_threshold(*thresholds)
        if collecting:
            if speed is None:
                _promote_young_objects()
            gc.enable()
    if progress:
        progress.done()
    streams = p.all_streams()
    order = np.lexsort((streams["ssrc"], streams["first_ns"]))
    sip = dict(vars(p.tracker.stats))
    sip.update({f"tcp_{k}": v for k, v in vars(p.correlator.tcp.stats).items()})
    sip["sctp_messages"] = p.correlator.sctp_messages
    sip["sctp_partial_dropped"] = p.correlator.sctp.dropped
    return ReplayResult(
        streams=streams[order],
        rtcp=p.engine.rtcp_sources(),
        calls=p.calls,
        counters=p.engine.counters(),
        decode_errors=p.engine.decode_errors(),
        sip=sip,
        signalling_records=p.signalling_records,
        errors=p.errors,
        elapsed_s=time.perf_counter() - start,
    )
