"""ITU-T G.107 E-model with default parameters, as used for VoIP monitoring.

R = 93.2 - Id - Ie_eff, Ie_eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl),
with Ppl in percent and BurstR = 1 / (p + q) from the two-state Markov loss
model (p: loss after a received packet, q: receipt after a lost one). Id is
the simplified delay impairment from a one-way delay; 0 when no delay is
known (listening-quality MOS).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

R_DEFAULT = 93.2


def delay_impairment(one_way_ms: float) -> float:
    """Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)."""
    d = one_way_ms
    return 0.024 * d + (0.11 * (d - 177.3) if d > 177.3 else 0.0)


def effective_ie(ie: float, bpl: float, ppl_percent: float, burst_r: float) -> float:
    if ppl_percent <= 0:
        return ie
    return ie + (95.0 - ie) * ppl_percent / (ppl_percent / burst_r + bpl)


def mos_from_r(r: float) -> float:
    if r < 0:
        return 1.0
    if r > 100:
        return 4.5
    return 1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)


def burst_ratio(expected: int, lost: int, loss_runs: int) -> float:
    """BurstR from observed loss runs: 1 for random loss, above 1 for bursty."""
    received = expected - lost
    if lost <= 0 or loss_runs <= 0 or received <= 0:
        return 1.0
    p = loss_runs / received  # received -> lost transitions
    q = loss_runs / lost      # lost -> received transitions
    return 1.0 / (p + q)


@dataclass(frozen=True)
class Score:
    r: float
    mos: float
    ppl: float       # percent
    burst_r: float


def score(ie: float, bpl: float, expected: int, lost: int, loss_runs: int,
          one_way_delay_ms: Optional[float] = None) -> Score:
    ppl = 100.0 * lost / expected if expected > 0 and lost > 0 else 0.0
    b = burst_ratio(expected, lost, loss_runs)
    r = R_DEFAULT - effective_ie(ie, bpl, ppl, b)
    if one_way_delay_ms is not None:
        r -= delay_impairment(one_way_delay_ms)
    return Score(r=r, mos=mos_from_r(r), ppl=ppl, burst_r=b)
