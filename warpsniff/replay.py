"""Replay capture files through the native engine and collect the results.

Data flows once: file -> engine (native, per packet) -> bulk arrays here.
Signalling payloads are handed to `on_signalling` in batches; the SIP layer
plugs in there.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import numpy as np

from warpsniff._engine import (
    RUN_BUDGET,
    RUN_ENDED,
    RUN_EOF,
    RUN_SIGNALLING,
    STREAM_DTYPE,
    CaptureError,
    Engine,
)

SignallingHandler = Callable[[np.ndarray, bytes], None]


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
    counters: dict
    decode_errors: dict
    signalling_records: int
    errors: list = field(default_factory=list)  # CaptureError per file that failed
    elapsed_s: float = 0.0


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
    on_signalling: Optional[SignallingHandler] = None,
    progress: Optional[Progress] = None,
    budget: int = 1 << 20,
) -> ReplayResult:
    """Runs every file through one engine, as if the files were one capture."""
    engine = (options or EngineOptions()).build()
    ended: list[np.ndarray] = []
    errors: list[CaptureError] = []
    signalling = 0
    start = time.perf_counter()

    def drain_signalling() -> None:
        nonlocal signalling
        records, arena = engine.drain_signalling()
        signalling += len(records)
        if on_signalling is not None and len(records):
            on_signalling(records, arena)

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
    if progress:
        progress.done()
    ended.append(engine.drain_ended())
    streams = np.concatenate(ended + [engine.streams()]) if ended else engine.streams()
    streams = streams.astype(STREAM_DTYPE, copy=False)
    order = np.lexsort((streams["ssrc"], streams["first_ns"]))
    return ReplayResult(
        streams=streams[order],
        rtcp=engine.rtcp_sources(),
        counters=engine.counters(),
        decode_errors=engine.decode_errors(),
        signalling_records=signalling,
        errors=errors,
        elapsed_s=time.perf_counter() - start,
    )
