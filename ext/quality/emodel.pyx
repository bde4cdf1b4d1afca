# The E-model (quality/ws_emodel.h) for Python: one stream's (R, MOS, Ppl,
# BurstR) as a tuple (emodel_score), and the formula's parts for tests and
# reports. Included by _engine.pyx.

from libc.math cimport NAN


def emodel_delay_impairment(double one_way_ms):
    return ws_emodel_delay_impairment(one_way_ms)


def emodel_effective_ie(double ie, double bpl, double ppl_percent, double burst_r):
    return ws_emodel_effective_ie(ie, bpl, ppl_percent, burst_r)


def emodel_mos_from_r(double r):
    return ws_emodel_mos_from_r(r)


def emodel_burst_ratio(int64_t expected, int64_t lost, int64_t loss_runs):
    return ws_emodel_burst_ratio(expected, lost, loss_runs)


def emodel_score(double ie, double bpl, int64_t expected, int64_t lost, int64_t loss_runs,
                 one_way_delay_ms=None):
    """(R, MOS, Ppl %, BurstR) of one stream; no delay: listening quality."""
    cdef ws_emodel_score s = ws_emodel(ie, bpl, expected, lost, loss_runs,
                                       NAN if one_way_delay_ms is None else <double>one_way_delay_ms)
    return s.r, s.mos, s.ppl, s.burst_r
