"""Replay capture files through the engine and the SIP correlator.

Data flows once: file -> engine (native, per packet) -> signalling batches ->
calls (Python, per message) -> SDP bindings back into the engine. Results
come out in bulk: stream arrays from the engine, call records from the
tracker.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np

from warpsniff._engine import (
    RUN_BUDGET,
    RUN_ENDED,
    RUN_EOF,
    RUN_SIGNALLING,
    RUN_TICK,
    STREAM_DTYPE,
    CaptureError,
    Engine,
)
from warpsniff.sip.calls import Call, CallConfig, CallTracker
from warpsniff.sip.correlator import SignallingCorrelator

MEDIA_CHECK_EVERY_S = 5.0


@dataclass
class EngineOptions:
    max_streams: int = 200_000
    sip_ports: tuple = (5060,)
    rtp_port_range: tuple = (1024, 65535)
    idle_timeout: float = 300.0
    sip_by_content: bool = True
    payload_types: dict = field(default_factory=dict)  # pt -> (clock_rate, kind)

    def build(self) -> Engine:
        engine = Engine(
            max_streams=self.max_streams,
            sip_ports=self.sip_ports,
            rtp_port_range=self.rtp_port_range,
            idle_timeout=self.idle_timeout,
            sip_by_content=self.sip_by_content,
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


def last_rtp_by_call(streams: np.ndarray) -> dict:
    """call_ref -> latest RTP time (s), from a stream snapshot."""
    bound = streams[streams["call_ref"] > 0]
    if not len(bound):
        return {}
    refs, inverse = np.unique(bound["call_ref"], return_inverse=True)
    latest = np.zeros(len(refs), dtype=np.int64)
    np.maximum.at(latest, inverse, bound["last_ns"])
    return {int(r): int(t) / 1e9 for r, t in zip(refs, latest)}


def replay(
    paths: Iterable[str],
    options: Optional[EngineOptions] = None,
    call_config: Optional[CallConfig] = None,
    progress: Optional[Progress] = None,
    budget: int = 1 << 20,
) -> ReplayResult:
    """Runs every file through one engine, as if the files were one capture."""
    engine = (options or EngineOptions()).build()
    calls: list[Call] = []
    tracker = CallTracker(engine, call_config, on_call=calls.append)
    correlator = SignallingCorrelator(tracker, tracker.config.correlation_header)
    ended: list[np.ndarray] = []
    errors: list[CaptureError] = []
    signalling = 0
    next_media_check = 0.0
    start = time.perf_counter()

    def drain_signalling() -> None:
        nonlocal signalling
        records, arena = engine.drain_signalling()
        if len(records):
            signalling += len(records)
            correlator.batch(records, arena)

    def on_tick() -> None:
        nonlocal next_media_check
        now = engine.capture_time_ns / 1e9
        if now >= next_media_check:
            tracker.media_activity(last_rtp_by_call(engine.streams()))
            next_media_check = now + MEDIA_CHECK_EVERY_S
        tracker.tick(now)

    for path in paths:
        try:
            engine.open(path)
        except CaptureError as exc:
            errors.append(exc)
            continue
        try:
            while True:
                rc = engine.run(budget)
                if rc == RUN_SIGNALLING:
                    drain_signalling()
                elif rc == RUN_TICK:
                    drain_signalling()
                    on_tick()
                elif rc == RUN_ENDED:
                    ended.append(engine.drain_ended())
                elif rc == RUN_BUDGET:
                    if progress:
                        progress.update(str(path), engine.position, engine.file_size,
                                        engine.counters()["frames"])
                elif rc == RUN_EOF:
                    break
        except CaptureError as exc:
            # everything read before the damage is still reported
            errors.append(exc)
        finally:
            engine.close()
    drain_signalling()
    tracker.media_activity(last_rtp_by_call(engine.streams()))
    tracker.close()
    if progress:
        progress.done()
    ended.append(engine.drain_ended())
    streams = np.concatenate(ended + [engine.streams()]).astype(STREAM_DTYPE, copy=False)
    order = np.lexsort((streams["ssrc"], streams["first_ns"]))
    sip = dict(vars(tracker.stats))
    sip.update({f"tcp_{k}": v for k, v in vars(correlator.tcp.stats).items()})
    sip["sctp_messages"] = correlator.sctp_messages
    return ReplayResult(
        streams=streams[order],
        rtcp=engine.rtcp_sources(),
        calls=calls,
        counters=engine.counters(),
        decode_errors=engine.decode_errors(),
        sip=sip,
        signalling_records=signalling,
        errors=errors,
        elapsed_s=time.perf_counter() - start,
    )
