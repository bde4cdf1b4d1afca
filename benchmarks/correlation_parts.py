"""Where correlation's extra CPU goes: replay() with its per-call parts
taken away one after another, in one process, against the same replay with
SIP off.

    python -m benchmarks.correlation_parts [--repeat 9] [capture.pcap ...]

Default captures: the two of benchmarks.correlation_cost (bench-out/; run
that first to generate them). Each line is the extra CPU (best of --repeat,
time.process_time, pinned to the last CPU) once the named part and every
part above it are replaced by a stub, so the differences between lines are
what each part costs, including what its Python work does to the native
loop's caches between two runs. The stubs change the results (no labels,
no media figures): this measures, it checks nothing. Numbers in the first
replay of a process are not cached, here they are after the warm-up
replays, so labels cost less than in benchmarks.correlation_cost's fresh
processes.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from benchmarks.run import DEFAULT_DIR, pin_to_last_cpu

CAPTURES = ["synth-v1-c500-p1000000-l0.005-j5-s1.pcap", "synth-v1-c56-p1000000-l0.005-j5-s1-t180.pcap"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.correlation_parts", description=__doc__.split("\n\n")[0])
    ap.add_argument("captures", nargs="*")
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args(argv)
    pin_to_last_cpu()
    paths = args.captures or [os.path.join(DEFAULT_DIR, name) for name in CAPTURES]

    import warpsniff.labels as labels
    import warpsniff.metrics.aggregate as aggregate
    import warpsniff.pipeline as pipeline
    from benchmarks.ws_peer import warm_up
    from warpsniff.replay import EngineOptions, replay

    warm_up(replay)
    from warpsniff._engine import CallMediaPass
    from warpsniff.quality.streams import DEFAULT_JB_MODE

    originals = (pipeline.Pipeline.__init__, aggregate.CallAggregator.attempt_started,
                 pipeline.Pipeline._media_of_calls, aggregate.CallAggregator.calls_finished, pipeline.Pipeline.tick)
    unknown = labels.CallLabels()

    def stub_labels():
        # the tracker labels each INVITE with its config's native labeller: it gets no config,
        # and each call the empty label set as its attempt is counted
        init, attempt_started = originals[:2]

        def no_labels(self, *args, **kw):
            init(self, *args, **kw)
            self.tracker.label_config = None

        def unknown_labels(self, call):
            call.labels = unknown
            attempt_started(self, call)

        pipeline.Pipeline.__init__ = no_labels
        aggregate.CallAggregator.attempt_started = unknown_labels

    def stub_media():   # a pass over no stream records: every call without media figures
        pipeline.Pipeline._media_of_calls = lambda self, calls, streams: CallMediaPass(
            calls, streams[:0], None, self.scorer, DEFAULT_JB_MODE)

    def stub_aggregation():
        aggregate.CallAggregator.calls_finished = lambda self, calls, media: None

    def stub_ticks():
        pipeline.Pipeline.tick = lambda self, now: self.pending.clear()

    steps = [("labels", stub_labels), ("media figures (_media_of_calls)", stub_media),
             ("aggregation (calls_finished)", stub_aggregation), ("the rest of the ticks (timers, probes)", stub_ticks)]
    for path in paths:
        if not os.path.exists(path):
            print(f"{path}: missing (python -m benchmarks.correlation_cost generates it)", file=sys.stderr)
            return 2
        (pipeline.Pipeline.__init__, aggregate.CallAggregator.attempt_started, pipeline.Pipeline._media_of_calls,
         aggregate.CallAggregator.calls_finished, pipeline.Pipeline.tick) = originals

        def best(**kw) -> float:
            least = float("inf")
            for _ in range(args.repeat):
                t = time.process_time()
                replay([path], **kw)
                least = min(least, time.process_time() - t)
            return least * 1e3

        off = best(options=EngineOptions(signalling=False))
        print(f"{os.path.basename(path)}: SIP off {off:.1f} ms")
        extra = best() - off
        print(f"  replay() extra CPU{'':<31}{extra:6.1f} ms")
        for name, stub in steps:
            stub()
            now = best() - off
            print(f"  without {name:<40} {now:6.1f} ms  ({extra - now:+.1f})")
            extra = now
    return 0


if __name__ == "__main__":
    sys.exit(main())
