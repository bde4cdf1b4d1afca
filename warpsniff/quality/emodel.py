"""ITU-T G.107 E-model with default parameters, as used for VoIP monitoring.

R = 93.2 - Id - Ie_eff, Ie_eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl),
with Ppl in percent and BurstR = 1 / (p + q) from the two-state Markov loss
model (p: loss after a received packet, q: receipt after a lost one). Id is
the simplified delay impairment from a one-way delay; 0 when no delay is
known (listening-quality MOS).

The formula is implemented once, in the engine (ext/quality/ws_emodel.h), so
that streams are scored without a Python object each (a media join calls
it from the engine: ext/quality/call_media.pyx); these functions are its
Python face.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from warpsniff._engine import (
    emodel_burst_ratio,
    emodel_delay_impairment,
    emodel_effective_ie,
    emodel_mos_from_r,
    emodel_score,
)


def delay_impairment(one_way_ms: float) -> float:
    """Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)."""
    return emodel_delay_impairment(one_way_ms)


def effective_ie(ie: float, bpl: float, ppl_percent: float, burst_r: float) -> float:
    return emodel_effective_ie(ie, bpl, ppl_percent, burst_r)


def mos_from_r(r: float) -> float:
    return emodel_mos_from_r(r)


def burst_ratio(expected: int, lost: int, loss_runs: int) -> float:
    """BurstR from observed loss runs: 1 for random loss, above 1 for bursty."""
    return emodel_burst_ratio(expected, lost, loss_runs)


@dataclass(frozen=True)
class Score:
    r: float
    mos: float
    ppl: float       # percent
    burst_r: float


def score(ie: float, bpl: float, expected: int, lost: int, loss_runs: int,
          one_way_delay_ms: Optional[float] = None) -> Score:
    r, mos, ppl, burst_r = emodel_score(ie, bpl, expected, lost, loss_runs, one_way_delay_ms)
    return Score(r=r, mos=mos, ppl=ppl, burst_r=burst_r)

