# The E-model (quality/ws_emodel.h) for Python: one stream (emodel_score, and
# the formula's parts for tests and reports), or every row of a batch in one
# call (emodel_mos: no Python object per stream). Included by _engine.pyx.

from libc.math cimport NAN, isnan


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


def emodel_mos(const double[::1] ie, const double[::1] bpl, const int64_t[::1] expected,
               const int64_t[::1] lost, const int64_t[::1] loss_runs, const double[::1] one_way_delay_ms):
    """MOS per row of equal-length columns; NaN where the row has no codec
    impairment (ie NaN) or nothing was expected. Delay NaN: not known."""
    cdef Py_ssize_t i, n = ie.shape[0]
    if not (bpl.shape[0] == expected.shape[0] == lost.shape[0] == loss_runs.shape[0] ==
            one_way_delay_ms.shape[0] == n):
        raise ValueError("emodel_mos: columns of different lengths")
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] mos = out
    with nogil:
        for i in range(n):
            if isnan(ie[i]) or expected[i] <= 0:
                mos[i] = NAN
            else:
                mos[i] = ws_emodel(ie[i], bpl[i], expected[i], lost[i], loss_runs[i], one_way_delay_ms[i]).mos
    return out
