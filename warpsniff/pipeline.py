"""One analysis job: engine + SIP correlation + quality + aggregation.

Replay and live capture both drive a Pipeline; the exporter reads it under
its lock. Work happens per packet in the engine, per message in the call
tracker, and per capture second here (timers, media joins, interval MOS).
"""
from __future__ import annotations

import sys
import threading
import time
import weakref
from typing import Callable, Optional, Sequence

import numpy as np

from warpsniff._engine import (
    RUN_BUDGET,
    RUN_ENDED,
    RUN_EOF,
    RUN_IDLE,
    RUN_SIGNALLING,
    RUN_TICK,
    STREAM_DTYPE,
    CallMediaPass,
    CaptureError,
    StreamScorer,
)
from warpsniff.capture.workers import EngineGroup, claim_unbound_media, fanout_group_id
from warpsniff.metrics.aggregate import CallAggregator, CallMedia
from warpsniff.quality.codecs import CodecTable
from warpsniff.quality.emodel import score
from warpsniff.quality.streams import DEFAULT_JB_MODE, JB_MODES, QualityContext
from warpsniff.sip.calls import Call, CallConfig, CallTracker
from warpsniff.sip.correlator import SignallingCorrelator

# Rows of streams that left the table kept for one open call until its media join: a call
# has a handful; a flood of new SSRCs to a call's port must not grow memory for hours.
MAX_ENDED_ROWS_PER_CALL = 4096


def rows_of_calls(streams: np.ndarray, refs) -> np.ndarray:
    """The rows of `streams` bound to any call_ref in `refs` (a collection of
    ints). A capture second usually finishes one or two calls: for a handful
    of refs, comparisons beat np.isin's sort (14 us for one ref)."""
    column = streams["call_ref"]
    if len(refs) == 1:
        for ref in refs:
            return streams[column == ref]
    if len(refs) <= 8:
        mask = np.zeros(len(column), dtype=bool)
        for ref in refs:
            mask |= column == ref
        return streams[mask]
    return streams[np.isin(column, np.fromiter(refs, dtype=np.uint32, count=len(refs)))]


def streams_by_call(streams: np.ndarray, refs: set) -> dict:
    """call_ref -> that call's rows, for the refs asked, in one pass (sort once,
    not one scan of the snapshot per call)."""
    wanted = rows_of_calls(streams, refs)
    if not len(wanted):
        return {}
    order = np.argsort(wanted["call_ref"], kind="stable")
    wanted = wanted[order]
    keys, starts = np.unique(wanted["call_ref"], return_index=True)
    bounds = list(starts[1:]) + [len(wanted)]
    return {int(k): wanted[a:b] for k, a, b in zip(keys, starts, bounds)}


class Pipeline:
    def __init__(self, engine_options, call_config: Optional[CallConfig] = None, label_config=None,
                 codecs: Optional[CodecTable] = None, plc: bool = True, keep_calls: bool = True,
                 quality_interval_s: float = 10.0, on_call: Optional[Callable] = None,
                 worker_names: Sequence[str] = ()):
        from warpsniff.labels import LabelConfig

        self.lock = threading.RLock()
        if len(worker_names) > 1:  # several capture workers: one engine each, SIP joined here
            self.engine = EngineGroup([engine_options.build(adopt_unbound=True) for _ in worker_names],
                                      list(worker_names))
        else:                      # the fast path: one engine, driven by the caller's thread
            self.engine = engine_options.build()
        self.label_config = label_config or LabelConfig.default()
        self.codecs = codecs or CodecTable.load()
        self.plc = plc
        self.scorer = StreamScorer(self.codecs, plc)   # each payload type's codec, looked up once
        self.aggregator = CallAggregator(self.label_config)
        self.keep_calls = keep_calls
        self.calls: list[Call] = []          # finished, in order (replay output)
        # replay: receives each finished call instead of self.calls (see replay.CallOutput)
        self.call_sink = None
        self.pending: list[Call] = []        # finished, media not yet joined
        self.ended_streams: list[np.ndarray] = []   # replay: every stream that left the table
        self.ended_by_call: dict = {}   # call_ref -> rows that left the table, until the call's media join
        self.ended_rows_dropped = 0     # beyond MAX_ENDED_ROWS_PER_CALL
        self.on_call = on_call
        self.tracker = CallTracker(self.engine, call_config, on_call=self.pending.append,
                                   on_attempt=self.aggregator.attempt_started,
                                   on_pdd=self.aggregator.pdd_measured,
                                   label_config=self.label_config)
        # the tracker asks for RTP activity when a call's timer is due, not every second;
        # through a weak reference, so that a finished pipeline (its calls, their tables)
        # is freed when dropped, not by a garbage collection pass over all of it later
        pipeline = weakref.ref(self)
        self.tracker.media_probe = lambda refs: pipeline()._last_rtp_of(refs)
        self.correlator = SignallingCorrelator(self.tracker)
        self.quality_interval_s = quality_interval_s
        self.serving = False                 # an exporter wants per-call live series
        self.next_quality = 0.0
        self.interval_prev = self.interval_last = None   # stream snapshots at the last two boundaries
        self._live_cache = None
        self.errors: list[CaptureError] = []
        self.replay_lag_s = 0.0
        self.started = time.time()
        self.live = False                   # capturing from rings (their counters are worth reading)
        self._drops_logged = (0, 0)

    # -- feeding --------------------------------------------------------------

    def run_reader(self, path: str, progress=None, speed: Optional[float] = None, budget: int = 1 << 16) -> None:
        """Runs one capture file; CaptureError is recorded, and what was read stays."""
        engine = self.engine
        try:
            with self.lock:
                engine.open(path)
        except CaptureError as exc:
            self.errors.append(exc)
            return
        wall0 = capture0 = None
        try:
            # signalling batches go from the engine to the tracker inside run(), except
            # when pacing, which wants every return to look at the capture clock
            tracker = None if speed else self.tracker
            while True:
                with self.lock:
                    rc = engine.run(budget, tracker, self.correlator)
                    self._handle(rc)
                if rc == RUN_EOF:
                    break
                if rc == RUN_BUDGET and progress:
                    progress.update(str(path), engine.position, engine.file_size, engine.counters()["frames"])
                if speed and rc in (RUN_TICK, RUN_BUDGET, RUN_SIGNALLING):
                    now_capture = engine.capture_time_ns / 1e9
                    if wall0 is None:
                        wall0, capture0 = time.monotonic(), now_capture
                    due = wall0 + (now_capture - capture0) / speed
                    ahead = due - time.monotonic()
                    if ahead > 0:
                        time.sleep(min(ahead, 1.0))
                    self.replay_lag_s = max(0.0, -ahead)
        except CaptureError as exc:
            self.errors.append(exc)  # everything read before the damage is kept
        finally:
            with self.lock:
                engine.close()

    def run_live(self, interface: str, stop: threading.Event, **options) -> None:
        """Captures from one live interface until `stop` is set: one capture
        thread reading one ring (the fast path), the same loop as several
        workers. Timers follow the packets' kernel time stamps, and the wall
        clock when traffic is quiet."""
        if not isinstance(self.engine, EngineGroup):
            self.engine = self.tracker.engine = EngineGroup([self.engine], [interface])
        self.run_workers([interface], 1, stop, **options)

    def run_workers(self, interfaces: Sequence[str], workers: int, stop: threading.Event, poll_ms: int = 20,
                    budget: int = 1 << 14, kernel_filter: Optional[list] = None, **ring) -> None:
        """Capture threads (docs/architecture.md, "Several capture workers"):
        `workers` rings per interface (one PACKET_FANOUT group when more than
        one), each read by its own engine in its own thread until `stop` is
        set. No thread holds the pipeline lock while its engine runs, so a
        scrape waits at most one engine run (poll_ms when the link is quiet).
        The first CaptureError (an unknown interface, no privilege) stops them all."""
        group: EngineGroup = self.engine
        units = [iface for iface in interfaces for _ in range(workers)]
        self.live = True
        try:
            for w, iface in zip(group.workers, units):
                with w.lock:
                    w.engine.open_live(iface, fanout_group=fanout_group_id(iface) if workers > 1 else 0,
                                       **ring)
                    w.opened = True
                    if kernel_filter:
                        w.engine.set_live_filter(kernel_filter)
            errors: list = []
            self._last_live_tick = time.time()
            threads = [threading.Thread(target=self._worker_loop, name=f"capture {w.name}", daemon=True,
                                        args=(w, stop, poll_ms, budget, errors)) for w in group.workers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]
        finally:
            for w in group.workers:
                with w.lock:
                    if w.opened:
                        w.engine.live_stats()
                        w.engine.close_live()
                        w.opened = False

    def _worker_loop(self, w, stop: threading.Event, poll_ms: int, budget: int, errors: list) -> None:
        try:
            while not stop.is_set():
                with w.lock:             # never held while waiting for self.lock
                    w.apply_pending()
                    rc = w.engine.run_live(budget, poll_ms)   # native, without the GIL
                with self.lock:
                    with w.lock:
                        if rc == RUN_ENDED:
                            self._handle(rc, w.engine)
                        # SIP from this worker, every round; the capture-second
                        # tick is the group's (below), not each engine's
                        self._drain_signalling(w.engine)
                    now = time.time()
                    if now - self._last_live_tick >= 1.0:
                        self._last_live_tick = now
                        self.tick(max(now, self.engine.capture_time_ns / 1e9))
                        self._log_drops()
        except BaseException as exc:  # a CaptureError, or a bug: the others must not capture on alone
            errors.append(exc)
            stop.set()

    @property
    def signalling_records(self) -> int:
        """Signalling records drained from the engine(s) so far."""
        return self.tracker.records_fed

    def engines(self) -> list:
        """Every native engine: one, or one per capture worker."""
        if isinstance(self.engine, EngineGroup):
            return [w.engine for w in self.engine.workers]
        return [self.engine]

    def capture_stats(self) -> dict:
        """Kernel counters per live ring (PACKET_STATISTICS): {ring: {packets,
        drops, freezes}}; empty for a replay. Caller holds `lock`."""
        return self.engine.live_stats_by_worker() if self.live else {}

    def _log_drops(self) -> None:
        """Kernel drops are never silent: each second that adds some says so."""
        stats = self.capture_stats()
        drops = sum(s["drops"] for s in stats.values())
        freezes = sum(s["freezes"] for s in stats.values())
        before_drops, before_freezes = self._drops_logged
        if drops > before_drops or freezes > before_freezes:
            where = ", ".join(f"{ring} {s['drops']}" for ring, s in stats.items() if s["drops"])
            print(f"warpsniff: the kernel dropped {drops - before_drops} packets (ring full"
                  f" {freezes - before_freezes} times); drops so far by ring: {where or 'none'}",
                  file=sys.stderr, flush=True)
            self._drops_logged = (drops, freezes)

    def _handle(self, rc: int, engine=None) -> None:
        """After a run of `engine` (default: the one engine) returned rc."""
        engine = engine or self.engine
        if rc == RUN_SIGNALLING:
            self._drain_signalling(engine)
        elif rc == RUN_TICK:
            self._drain_signalling(engine)
            self.tick(engine.capture_time_ns / 1e9)
        elif rc == RUN_ENDED:
            self.streams_ended(engine.drain_ended())
        elif rc == RUN_IDLE:
            pass  # nothing arrived: run_live ticks on the wall clock

    def streams_ended(self, ended: np.ndarray) -> None:
        """Streams that left the engine's table (idle, evicted, rebound): a
        replay keeps them all for its report; the rows of calls still tracked
        (or finished and not yet joined) are kept per call until their call's
        media join, which they count in as the rows still in the table do."""
        if not len(ended):
            return
        if self.keep_calls:
            self.ended_streams.append(ended)
        bound = ended[ended["call_ref"] > 0]
        if not len(bound):
            return
        pending = {c.call_ref for c in self.pending}
        for ref, rows in streams_by_call(bound, set(bound["call_ref"].tolist())).items():
            if self.tracker.tracks(ref) or ref in pending:
                kept = self.ended_by_call.setdefault(ref, [])
                room = MAX_ENDED_ROWS_PER_CALL - sum(len(k) for k in kept)
                if room < len(rows):
                    self.ended_rows_dropped += len(rows) - max(room, 0)
                    rows = rows[:max(room, 0)]
                if len(rows):
                    kept.append(rows)

    def _drain_signalling(self, engine=None) -> None:
        if engine is None and isinstance(self.engine, EngineGroup):
            for w in self.engine.workers:
                with w.lock:
                    self._drain_signalling(w.engine)
            return
        # SIP over UDP straight from the engine's batch into the call state
        # machine; TCP, SCTP and control records through the correlator
        self.tracker.feed(engine or self.engine, self.correlator)

    # -- per capture second ---------------------------------------------------

    def tick(self, now: float) -> None:
        snapshot = None   # the whole stream table, taken only when something needs all of it
        self.tracker.tick(now)
        if self.serving and now >= self.next_quality:
            snapshot = self.engine.streams() if snapshot is None else snapshot
            self._interval_boundary(snapshot)
            self.next_quality = now + self.quality_interval_s
        if self.pending:
            # what left the table since the last drain is the finishing calls' too
            self.streams_ended(self.engine.drain_ended())
            if snapshot is not None:
                self._join_media(snapshot)
            elif self._claims_media():   # unbound rows too: claim_unbound_media
                self._join_media(self.engine.streams())
            else:                  # only the finishing calls' rows, not a copy of the table
                self._join_media(self.engine.streams_of_calls([c.call_ref for c in self.pending]),
                                 only_theirs=True)
        if self.call_sink is not None:
            self.call_sink.tick(self)
        self.aggregator.expire_media(now)

    def _claims_media(self) -> bool:
        """Several capture workers: a stream can end on one before the SIP read on
        another has bound it (one engine adopts media that began before its SDP,
        and no stream ends before its SDP is read)."""
        return isinstance(self.engine, EngineGroup) and len(self.engine.workers) > 1

    def _last_rtp_of(self, refs: list) -> dict:
        """call_ref -> latest RTP time (s) of those calls' streams in the table."""
        return self.engine.last_rtp_of_calls(refs)

    def _tracked_refs(self) -> np.ndarray:
        calls = self.tracker.calls
        return np.fromiter((c.call_ref for c in calls.values()), dtype=np.uint32, count=len(calls))

    def finish(self, close_calls: bool = True) -> None:
        """End of input: finished calls get their media joined; open calls are
        reported as interrupted, or (close_calls=False) stay up, as the
        capture left them, for an exporter that keeps serving."""
        with self.lock:
            self._drain_signalling()
            self.tracker.media_activity(self._last_rtp_of(self._tracked_refs()))
            if close_calls:
                self.tracker.close()
            self.streams_ended(self.engine.drain_ended())
            table = self.engine.streams()
            if not close_calls and self.serving:
                self._interval_boundary(table)
            self._join_media(table)
            if self.call_sink is not None:
                self.call_sink.finish(self)
            self._live_cache = None

    def all_streams(self) -> np.ndarray:
        return np.concatenate(self.ended_streams + [self.engine.streams()]).astype(STREAM_DTYPE, copy=False)

    # -- media ----------------------------------------------------------------

    def quality_context(self, calls=(), payload_names: Optional[dict] = None, rows=None) -> QualityContext:
        """Scoring context for the streams of `calls` (or of the call_refs in
        `payload_names`: call_ref -> {pt: encoding}); given the stream `rows` it
        will score, it reads only the RTCP about them, not every sender's."""
        names = dict(payload_names) if payload_names else {}
        names.update((c.call_ref, c.payload_names) for c in calls)
        ssrcs = set(rows["ssrc"].tolist()) if rows is not None else None
        return QualityContext(self.codecs, self.engine.rtcp_sources(), names, plc=self.plc, ssrcs=ssrcs)

    def _media_of_calls(self, calls: list, streams: np.ndarray) -> CallMediaPass:
        """The media figures of a batch of calls (finishing ones, or those up
        for live_media) from one typed pass over the stream records in
        `streams` (other calls' rows are passed over), with the RTT the
        engine's RTCP senders reported about their SSRCs."""
        return CallMediaPass(calls, streams, self.engine, self.scorer, DEFAULT_JB_MODE)

    def _join_media(self, streams: np.ndarray, only_theirs: bool = False) -> None:
        """Finished calls' media: their rows in `streams` (from the table) and
        the rows of their streams that already left it (streams_ended),
        counted by the aggregator straight from the pass.
        `only_theirs`: `streams` holds those calls' rows and no other's."""
        calls, self.pending[:] = list(self.pending), []
        if not calls:
            return
        if self.ended_by_call:
            ended = [rows for c in calls for rows in self.ended_by_call.pop(c.call_ref, ())]
            if ended:
                streams = np.concatenate([streams] + ended)
        if self._claims_media():
            streams = claim_unbound_media(streams, calls)
        self.aggregator.calls_finished(calls, self._media_of_calls(calls, streams))
        if self.call_sink is not None:
            for call in calls:
                self.call_sink.add(call)
        elif self.keep_calls:
            self.calls.extend(calls)
        if self.on_call is not None:
            refs = {c.call_ref for c in calls}
            if not only_theirs:
                streams = rows_of_calls(streams, refs)   # `streams` may be the whole table
            quality = self.quality_context(calls, rows=streams)
            by_call = streams_by_call(streams, refs)
            empty = streams[:0]
            for call in calls:
                self.on_call(call, by_call.get(call.call_ref, empty), quality)

    def _interval_boundary(self, snapshot: np.ndarray) -> None:
        """Marks the end of a quality interval: keeps the stream counters only.
        The E-model work waits for a scrape (live_media), so a replay nobody
        scrapes pays next to nothing, at any speed."""
        self.interval_prev, self.interval_last = self.interval_last, snapshot
        self._live_cache = None

    def live_media(self) -> dict:
        """call_ref -> CallMedia of the calls still up: loss and jitter so far,
        MOS over the last complete interval (the whole call before the first)."""
        if self._live_cache is not None:
            return self._live_cache
        active = {c.call_ref: c for c in self.tracker.calls.values() if c.answered and c.end_ts is None}
        last = self.interval_last
        if not active or last is None:
            self._live_cache = {}
            return self._live_cache
        refs = np.fromiter(active, dtype=np.uint32, count=len(active))
        bound = last[np.isin(last["call_ref"], refs)]
        prev_counts = {}
        if self.interval_prev is not None:
            for rec in self.interval_prev[np.isin(self.interval_prev["call_ref"], refs)]:
                prev_counts[_ident(rec)] = _counts(rec)
        quality = self.quality_context(active.values())
        m = DEFAULT_JB_MODE
        zero = (0, 0, (0,) * len(JB_MODES), (0,) * len(JB_MODES))
        by_call: dict = {}
        for rec in bound:
            now_counts = _counts(rec)
            prev = prev_counts.get(_ident(rec), zero)
            codec = quality.codec_of(rec)
            imp = codec.plc if codec is not None else None
            expected = now_counts[0] - prev[0]
            if imp is None or expected <= 0:
                continue
            lost = (now_counts[1] - prev[1]) + (now_counts[2][m] - prev[2][m])
            runs = now_counts[3][m] - prev[3][m]
            s = score(imp.ie, imp.bpl, expected, max(0, min(lost, expected)), max(runs, 0))
            ref = int(rec["call_ref"])
            by_call[ref] = min(by_call.get(ref, 5.0), s.mos)
        figures = self._media_of_calls(list(active.values()), bound).by_call()
        medias = {ref: CallMedia(active[ref].labels.account, active[ref].call_id, streams, mos)
                  for ref, (streams, mos) in figures.items()}
        for ref, mos in by_call.items():
            medias[ref].mos = mos   # the last interval's, not the whole call's so far
        self._live_cache = medias
        return self._live_cache


def _ident(rec) -> tuple:
    return (bytes(rec["src"]), int(rec["sport"]), bytes(rec["dst"]), int(rec["dport"]), int(rec["ssrc"]))


def _counts(rec) -> tuple:
    return (int(rec["expected"]), max(int(rec["lost"]), 0),
            tuple(int(x) for x in rec["jb_late"]), tuple(int(x) for x in rec["jb_loss_runs"]))
