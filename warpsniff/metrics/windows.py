"""Sliding-window sums from fixed time buckets, for the seed's 5m/1h/24h gauges.

Each window is a ring of buckets (5m: 5 x 1 min, 1h: 12 x 5 min, 24h: 24 x
1 h), so memory per label set is fixed (41 buckets) whatever the traffic; a
window's sum covers the buckets that overlap it, so it slides in steps of its
bucket width.

The fields are event counts (whole numbers) but for one, `value_field`, which
sums a measure (answered seconds).  A bucket keeps its counts packed in one
int, field k in bits 64k to 64k+63, so an event costs one int addition per
bucket however many fields it touches, and its measure as a float added in
arrival order.  Totals are what summing each field as a float one event at a
time gives: whole numbers add exactly in floats (below 2**53) and in ints in
any grouping, and the measure is summed in the same order (bucket by
arrival, then ring slot by slot).
"""
from __future__ import annotations

from typing import Optional, Sequence

WINDOWS = (("5m", 60.0, 5), ("1h", 300.0, 12), ("24h", 3600.0, 24))

COUNT_BITS = 64
COUNT_MASK = (1 << COUNT_BITS) - 1

# The buckets a time stamp falls in, remembered for the last minute asked
# about (events come in time order, many a minute): (lo, hi, ((epoch, slot)
# per window)) holds for every ts with lo <= ts < hi.  Every width is a whole
# number of the first one's, so one bucket of the first window lies inside one
# bucket of each other; and for 0 <= ts < 2**40, ts // width is the exact
# floor of ts / width (ts - fmod(ts, width) is a whole multiple of width that
# floats hold exactly), so the bounds lo = epoch * width are exact too.
# Replaced whole (one assignment), so threads never see half of one.
_BASE = WINDOWS[0][1]
assert all(w % _BASE == 0 for _, w, _ in WINDOWS)   # the memo's bounds hold for every window
_MEMO_LIMIT = 2.0 ** 40
_memo = (1.0, 0.0, None)        # matches nothing


def _places(ts) -> tuple:
    """((epoch, slot) per window) for ts, remembered for its minute when exact."""
    global _memo
    places = tuple((int(ts // width), int(ts // width) % slots) for _, width, slots in WINDOWS)
    if 0.0 <= ts < _MEMO_LIMIT:
        epoch = places[0][0]
        _memo = (epoch * _BASE, (epoch + 1) * _BASE, places)
    return places


def count_unit(field: int) -> int:
    """What adds one to count field `field` in a packed count."""
    return 1 << (COUNT_BITS * field)


class Ring:
    __slots__ = ("width", "slots", "epochs", "counts", "sums")

    def __init__(self, width: float, slots: int):
        self.width = width
        self.slots = slots
        self.epochs = [-1] * slots
        self.counts = [0] * slots      # packed counts per bucket
        self.sums = [0.0] * slots      # the measure per bucket

    def total(self, now: float) -> Optional[tuple]:
        """(packed counts, measure) over the buckets in the window, None if none is."""
        current = int(now // self.width)
        counts, value = 0, None
        for epoch, c, s in zip(self.epochs, self.counts, self.sums):
            if current - self.slots < epoch <= current:
                counts += c
                value = s if value is None else value + s
        return None if value is None else (counts, value)


class WindowedSums:
    """Field sums over the last 5 minutes, hour and day."""

    __slots__ = ("fields", "value_field", "rings", "_rings")

    def __init__(self, fields: int, value_field: Optional[int] = None):
        self.fields = fields
        self.value_field = value_field
        self.rings = {name: Ring(width, slots) for name, width, slots in WINDOWS}
        self._rings = tuple((r.epochs, r.counts, r.sums) for r in self.rings.values())

    def add(self, ts: float, values: Sequence[float]) -> None:
        """Adds values[k] to field k; count fields take whole numbers >= 0."""
        counts, value = 0, 0.0
        for k, v in enumerate(values):
            if k == self.value_field:
                value = v
            elif v:
                if v < 0 or v != int(v):
                    raise ValueError(f"field {k} counts events: {v!r} is not a whole number >= 0")
                counts += int(v) << (COUNT_BITS * k)
        self.add_packed(ts, counts, value)

    def add_packed(self, ts: float, counts: int, value: float = 0.0) -> None:
        """add() with the counts already packed (sums of count_unit(k))."""
        memo = _memo
        places = memo[2] if memo[0] <= ts < memo[1] else _places(ts)
        for (epoch, i), (epochs, bucket_counts, sums) in zip(places, self._rings):
            if epochs[i] != epoch:   # the bucket's previous epoch has left every window
                epochs[i] = epoch
                bucket_counts[i] = counts
                sums[i] = 0.0 + value
            else:
                bucket_counts[i] += counts
                sums[i] += value

    def total(self, window: str, now: float) -> list:
        t = self.rings[window].total(now)
        if t is None:
            return [0.0] * self.fields
        counts, value = t
        out = [float((counts >> (COUNT_BITS * k)) & COUNT_MASK) for k in range(self.fields)]
        if self.value_field is not None:
            out[self.value_field] = value
        return out
