"""warpsniff as a benchmark peer: imports the package, then times one pass
over the capture and prints one JSON line shaped like ref_loop's.

    python -m benchmarks.ws_peer capture.pcap                 # replay()
    python -m benchmarks.ws_peer --engine-only capture.pcap   # the native loop alone
    python -m benchmarks.ws_peer --streams-only capture.pcap  # replay(), RTP/RTCP streams only
    python -m benchmarks.ws_peer --split [--streams-only] capture.pcap
                                   # replay()'s loop, with the CPU inside the native run loop apart

`replay()` is the product: open, native loop, signalling batches through the
Python SIP layer, SDP bindings, final stream arrays. `--streams-only` is the
product without SIP (`warpsniff replay --streams-only`, the same work as
`tshark -z rtp,streams`): the pipeline, its ticks and the final arrays, with
the engine told to look for no SIP. `--engine-only` drives
`warpsniff._engine.Engine` directly and throws the signalling batches away,
which isolates the C engine (streams are then not bound to calls).

Interpreter start-up, imports and a warm-up replay of the bundled sample
capture (which loads what replay() imports on first use) are reported apart
(`import_seconds`): they are a constant, not a per-packet cost; the CLI row of
benchmarks.run includes them. `seconds` is wall time, `cpu_seconds`
this process's CPU time over the same span.
"""
from __future__ import annotations

import json
import os
import struct
import sys
import tempfile
import time


SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pcaps", "sample-calls.pcap")


def warm_up(replay) -> None:
    """One replay of a two-frame capture spanning two seconds and one of the
    bundled sample (20 calls), so what replay() loads on first use is loaded
    before the clock starts: its modules, numpy.ma (numpy.unique imports it
    at first use: 10 ms), phonenumbers' metadata for the sample's numbers
    (the synthetic captures use the same numbering plan)."""
    if os.path.exists(SAMPLE):
        replay([SAMPLE])
    fd, path = tempfile.mkstemp(suffix=".pcap")
    frame = bytes(12) + b"\x88\xb5" + bytes(46)   # an experimental ethertype: decoded as nothing
    try:
        os.write(fd, struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for sec in (1_700_000_000, 1_700_000_002):
            os.write(fd, struct.pack("<IIII", sec, 0, len(frame), len(frame)) + frame)
        os.close(fd)
        replay([path])
    finally:
        os.unlink(path)


def engine_only(path: str) -> dict:
    from warpsniff import _engine as E

    engine = E.Engine()
    engine.open(path)
    returns = 0
    ended = []
    while True:
        rc = engine.run(1 << 20)
        returns += 1
        if rc == E.RUN_SIGNALLING or rc == getattr(E, "RUN_TICK", -1):
            engine.drain_signalling()
        elif rc == E.RUN_ENDED:
            ended.append(engine.drain_ended())
        elif rc == E.RUN_EOF:
            break
    engine.close()
    import numpy as np

    streams = np.concatenate(ended + [engine.drain_ended(), engine.streams()])
    return {"streams": streams, "counters": engine.counters(), "returns": returns}


def split(path: str, streams_only: bool) -> dict:
    """replay()'s work (Pipeline.run_reader's loop, then finish), with the CPU
    time spent inside Engine.run counted apart: the native loop's own cost,
    which with SIP on includes only the native part of correlation (SIP and
    SDP spotted and copied out, bound streams checked), not the call state
    machine or anything per call (the engine returns each batch to this loop
    instead of handing it to the tracker itself)."""
    from warpsniff._engine import RUN_EOF
    from warpsniff.pipeline import Pipeline
    from warpsniff.replay import EngineOptions

    p = Pipeline(EngineOptions(signalling=not streams_only))
    engine = p.engine
    engine.open(path)
    inside = 0.0
    while True:
        t = time.process_time()
        rc = engine.run(1 << 16)
        inside += time.process_time() - t
        p._handle(rc)
        if rc == RUN_EOF:
            break
    engine.close()
    p.finish()
    return {"streams": p.all_streams(), "counters": engine.counters(), "engine_cpu_seconds": inside}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    only = "--engine-only" in argv
    streams_only = "--streams-only" in argv
    do_split = "--split" in argv
    args = [a for a in argv if a not in ("--engine-only", "--streams-only", "--split")]
    if len(args) != 1:
        print("usage: python -m benchmarks.ws_peer [--engine-only | --streams-only] capture.pcap", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    from warpsniff.replay import replay

    warm_up(replay)
    t1, c1 = time.perf_counter(), time.process_time()
    if do_split:
        got = split(args[0], streams_only)
        s, c, extra = got["streams"], got["counters"], {"engine_cpu_seconds": round(got["engine_cpu_seconds"], 6)}
        s = s[(s["flags"] & 1) == 1] if len(s) else s
    elif only:
        got = engine_only(args[0])
        s, c, extra = got["streams"], got["counters"], {"engine_returns": got["returns"]}
        s = s[(s["flags"] & 1) == 1] if len(s) else s  # validated streams, as replay() reports
    else:
        from warpsniff.replay import EngineOptions

        result = replay([args[0]], options=EngineOptions(signalling=not streams_only))
        if result.errors:
            print(f"ws_peer: {result.errors[0]}", file=sys.stderr)
            return 1
        s, c = result.streams, result.counters
        extra = {"calls": len(getattr(result, "calls", []) or [])}
    t2, c2 = time.perf_counter(), time.process_time()
    print(json.dumps({
        "tool": ("split-" if do_split else "") + (
            "warpsniff-engine" if only else "warpsniff-streams" if streams_only else "warpsniff"),
        "seconds": round(t2 - t1, 6),
        "cpu_seconds": round(c2 - c1, 6),
        "import_seconds": round(t1 - t0, 6),
        "frames": int(c["frames"]),
        "rtp_packets": int(c["rtp_packets"]),
        "sip_udp": int(c["sip_udp"]),
        "streams": int(len(s)),
        "stream_packets": int(s["packets"].sum()) if len(s) else 0,
        "expected": int(s["expected"].sum()) if len(s) else 0,
        "lost": int(s["lost"].sum()) if len(s) else 0,
        "max_jitter_ms": round(float(s["max_jitter_ms"].max()), 4) if len(s) else 0.0,
        **extra,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
