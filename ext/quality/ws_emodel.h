/* ITU-T G.107 E-model with default parameters, as used for VoIP monitoring:
 * the one implementation of the formula (warpsniff/quality/emodel.py wraps it).
 *
 *   R = 93.2 - Id - Ie_eff,  Ie_eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)
 *
 * Ppl in percent; BurstR = 1 / (p + q) from the two-state Markov loss model
 * (p: loss after a received packet, q: receipt after a lost one); Id is the
 * simplified delay impairment of a one-way delay, 0 when none is known
 * (listening-quality MOS). Operations are in the order the Python formula
 * had, so the figures are the same to the last bit (no -march, no FMA). */
#ifndef WS_EMODEL_H
#define WS_EMODEL_H

#include <math.h>
#include <stdint.h>

#define WS_EMODEL_R_DEFAULT 93.2

/* Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3) */
static inline double ws_emodel_delay_impairment(double one_way_ms)
{
    double d = one_way_ms;
    return 0.024 * d + (d > 177.3 ? 0.11 * (d - 177.3) : 0.0);
}

static inline double ws_emodel_effective_ie(double ie, double bpl, double ppl_percent, double burst_r)
{
    if (ppl_percent <= 0) return ie;
    return ie + (95.0 - ie) * ppl_percent / (ppl_percent / burst_r + bpl);
}

static inline double ws_emodel_mos_from_r(double r)
{
    if (r < 0) return 1.0;
    if (r > 100) return 4.5;
    return 1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r);
}

/* BurstR from observed loss runs: 1 for random loss, above 1 for bursty */
static inline double ws_emodel_burst_ratio(int64_t expected, int64_t lost, int64_t loss_runs)
{
    int64_t received = expected - lost;
    if (lost <= 0 || loss_runs <= 0 || received <= 0) return 1.0;
    double p = (double)loss_runs / (double)received; /* received -> lost transitions */
    double q = (double)loss_runs / (double)lost;     /* lost -> received transitions */
    return 1.0 / (p + q);
}

typedef struct {
    double r, mos, ppl, burst_r;
} ws_emodel_score;

/* one_way_delay_ms: NAN when not known */
static inline ws_emodel_score ws_emodel(double ie, double bpl, int64_t expected, int64_t lost, int64_t loss_runs,
                                        double one_way_delay_ms)
{
    ws_emodel_score s;
    s.ppl = expected > 0 && lost > 0 ? 100.0 * (double)lost / (double)expected : 0.0;
    s.burst_r = ws_emodel_burst_ratio(expected, lost, loss_runs);
    s.r = WS_EMODEL_R_DEFAULT - ws_emodel_effective_ie(ie, bpl, s.ppl, s.burst_r);
    if (!isnan(one_way_delay_ms)) s.r -= ws_emodel_delay_impairment(one_way_delay_ms);
    s.mos = ws_emodel_mos_from_r(s.r);
    return s;
}

#endif
