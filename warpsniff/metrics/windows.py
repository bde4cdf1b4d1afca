"""Sliding-window sums from fixed time buckets, for the seed's 5m/1h/24h gauges.

Each window is a ring of buckets (5m: 5 x 1 min, 1h: 12 x 5 min, 24h: 24 x
1 h), so memory per label set is fixed (41 buckets x the number of fields)
whatever the traffic; a window's sum covers the buckets that overlap it, so
it slides in steps of its bucket width.
"""
from __future__ import annotations

from typing import Sequence

WINDOWS = (("5m", 60.0, 5), ("1h", 300.0, 12), ("24h", 3600.0, 24))


class Ring:
    __slots__ = ("width", "slots", "epochs", "sums")

    def __init__(self, width: float, slots: int, fields: int):
        self.width = width
        self.slots = slots
        self.epochs = [-1] * slots
        self.sums = [[0.0] * fields for _ in range(slots)]

    def add(self, ts: float, values: Sequence[float]) -> None:
        epoch = int(ts // self.width)
        i = epoch % self.slots
        if self.epochs[i] != epoch:
            self.epochs[i] = epoch
            self.sums[i] = [0.0] * len(values)
        row = self.sums[i]
        for k, v in enumerate(values):
            row[k] += v

    def total(self, now: float) -> list:
        current = int(now // self.width)
        out = None
        for epoch, row in zip(self.epochs, self.sums):
            if current - self.slots < epoch <= current:
                out = list(row) if out is None else [a + b for a, b in zip(out, row)]
        return out


class WindowedSums:
    """Field sums over the last 5 minutes, hour and day."""

    __slots__ = ("fields", "rings")

    def __init__(self, fields: int):
        self.fields = fields
        self.rings = {name: Ring(width, slots, fields) for name, width, slots in WINDOWS}

    def add(self, ts: float, values: Sequence[float]) -> None:
        for ring in self.rings.values():
            ring.add(ts, values)

    def total(self, window: str, now: float) -> list:
        t = self.rings[window].total(now)
        return t if t is not None else [0.0] * self.fields
