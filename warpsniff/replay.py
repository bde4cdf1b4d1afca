"""Replay capture files through a Pipeline and collect the results.

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

from warpsniff._engine import Engine
from warpsniff.pipeline import Pipeline
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

    def build(self, adopt_unbound: bool = False) -> Engine:
        engine = Engine(
            adopt_unbound=adopt_unbound,
            max_streams=self.max_streams,
            sip_ports=self.sip_ports,
            rtp_port_range=self.rtp_port_range,
            idle_timeout=self.idle_timeout,
            sip_by_content=self.sip_by_content,
            control_ports=self.control_ports,
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
) -> ReplayResult:
    """Runs every file through one pipeline, as if the files were one capture.
    `speed` paces by capture time (1 = real time); None runs flat out.
    close_calls=False leaves calls still up at the end open (for serving)."""
    start = time.perf_counter()
    p = pipeline or Pipeline(options or EngineOptions(), call_config, label_config, codecs, plc)
    for path in paths:
        p.run_reader(str(path), progress=progress, speed=speed)
    p.finish(close_calls)
    if progress:
        progress.done()
    streams = p.all_streams()
    order = np.lexsort((streams["ssrc"], streams["first_ns"]))
    sip = dict(vars(p.tracker.stats))
    sip.update({f"tcp_{k}": v for k, v in vars(p.correlator.tcp.stats).items()})
    sip["sctp_messages"] = p.correlator.sctp_messages
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
