"""Exporter costs: one scrape of ~100,000 series, and what serving adds to a
replay (interval MOS for live calls + a scrape every second while it runs).

    python -m benchmarks.scrape [--series 100000] [--capture bench-out/<1M-frame capture>.pcap]
"""
from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

OUT = Path(__file__).resolve().parents[1] / "bench-out"


@dataclass(frozen=True)
class FakeLabels:
    account: str
    trunk: str = "t"
    provider: str = "p"
    zone: str = "LOCAL"
    direction: str = "inbound"
    destination_country: str = "US"
    origination_country: str = "US"


@dataclass
class FakeCall:
    labels: FakeLabels


def scrape_time(series: int) -> dict:
    from warpsniff.exporter import registry_for
    from warpsniff.labels import LabelConfig
    from warpsniff.pipeline import Pipeline
    from warpsniff.replay import EngineOptions

    cfg = LabelConfig.from_dict({"limits": {"max_label_sets": series + 10}}, "<bench>")
    p = Pipeline(EngineOptions(), label_config=cfg)
    for i in range(series):
        p.aggregator.attempt_started(FakeCall(FakeLabels(account=f"a{i}")))
    registry = registry_for(p)
    out = {}
    for name, gen in (("text", generate_latest), ("openmetrics", generate_openmetrics)):
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            body = gen(registry)
            best = min(best, time.perf_counter() - t)
        out[name] = (best, body.count(b"\nwarp_call_attempts_total{"))
    return out


def replay_cost(capture: Path, serving: bool, rounds: int = 3) -> float:
    from warpsniff.exporter import registry_for
    from warpsniff.pipeline import Pipeline
    from warpsniff.replay import EngineOptions, replay

    best = float("inf")
    for _ in range(rounds):
        p = Pipeline(EngineOptions())
        stop = threading.Event()
        scraper = None
        if serving:
            registry = registry_for(p)

            def scrape_every_second():
                while not stop.wait(1.0):
                    generate_latest(registry)

            scraper = threading.Thread(target=scrape_every_second, daemon=True)
            scraper.start()
        t = time.process_time()
        replay([str(capture)], pipeline=p)
        cpu = time.process_time() - t
        stop.set()
        if scraper is not None:
            scraper.join()
        best = min(best, cpu)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--capture", type=Path,
                    default=OUT / "synth-v1-c500-p1000000-l0.005-j5-s1.pcap")
    args = ap.parse_args()
    for fmt, (seconds, n) in scrape_time(args.series).items():
        print(f"scrape ({fmt}): {n} warp_call_attempts_total series (plus the rest) in {seconds:.3f} s")
    if args.capture.exists():
        plain = replay_cost(args.capture, serving=False)
        served = replay_cost(args.capture, serving=True)
        print(f"replay {args.capture.name}: {plain:.3f} s CPU without the exporter, {served:.3f} s serving "
              f"(+{100 * (served - plain) / plain:.1f} %)")
    else:
        print(f"no {args.capture}: run `python -m benchmarks.run` first to generate it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
