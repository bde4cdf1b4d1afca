"""Quality of one RTP stream: our passive E-model scores, kept apart from
what the endpoints themselves reported over RTCP and RTCP-XR."""
from __future__ import annotations

from typing import Optional

import numpy as np

from warpsniff.quality.codecs import CodecTable
from warpsniff.quality.emodel import score

JB_MODES = ("jb50", "jb200", "adaptive")   # order of the engine's jb_* arrays
DEFAULT_MOS_MODE = "adaptive"              # `mos` is what an adaptive buffer would play
DEFAULT_JB_MODE = JB_MODES.index(DEFAULT_MOS_MODE)


class QualityContext:
    """Everything stream scoring needs besides the stream record itself."""

    def __init__(self, codecs: CodecTable, rtcp: Optional[np.ndarray] = None,
                 payload_names: Optional[dict] = None, plc: bool = True, ssrcs=None):
        """`ssrcs`: the SSRCs of the streams this context will score (None: any);
        only the RTCP rows about them are read (the table holds every sender's)."""
        self.codecs = codecs
        self.plc = plc
        self.payload_names = payload_names or {}   # call_ref -> {pt: encoding}
        self.reports: dict[int, np.void] = {}      # SSRC -> latest receiver report about it
        self.rtt: dict[int, float] = {}            # SSRC -> latest RTT (ms)
        self.xr: dict[int, np.void] = {}           # SSRC -> latest XR VoIP metrics about it
        if rtcp is not None and ssrcs is not None and len(rtcp):
            wanted = np.fromiter(ssrcs, dtype=np.uint32)
            rtcp = rtcp[np.isin(rtcp["rb_ssrc"], wanted) | np.isin(rtcp["xr_ssrc"], wanted)]
        if rtcp is not None:
            for row in rtcp[np.argsort(rtcp["rb_arrival_ns"], kind="stable")] if len(rtcp) else ():
                if row["has_report_block"]:
                    self.reports[int(row["rb_ssrc"])] = row
                    if row["rtt_samples"]:
                        self.rtt[int(row["rb_ssrc"])] = float(row["rtt_ms"])
                if row["has_xr_voip"]:
                    self.xr[int(row["xr_ssrc"])] = row

    def codec_of(self, rec: np.void):
        pt = int(rec["payload_type"])
        names = self.payload_names.get(int(rec["call_ref"]), {})
        return self.codecs.lookup(pt, names.get(pt))

    def default_mos(self, rec: np.void):
        """(codec name, MOS of the default buffer) for one stream: what the
        metrics need, without the report's other fields."""
        codec = self.codec_of(rec)
        imp = None
        if codec is not None:
            imp = codec.plc if self.plc or codec.no_plc is None else codec.no_plc
        expected = int(rec["expected"])
        if imp is None or expected <= 0:
            return (codec.name if codec else None), None
        m = DEFAULT_JB_MODE
        rtt = self.rtt.get(int(rec["ssrc"]))
        lost = min(expected, max(int(rec["lost"]), 0) + int(rec["jb_late"][m]))
        s = score(imp.ie, imp.bpl, expected, lost, int(rec["jb_loss_runs"][m]),
                  rtt / 2.0 if rtt is not None else None)
        return codec.name, s.mos

    def assess(self, rec: np.void) -> dict:
        codec = self.codec_of(rec)
        ssrc = int(rec["ssrc"])
        rtt = self.rtt.get(ssrc)
        out = {"codec": codec.name if codec else None, "mos": None, "r_factor": None,
               "mos_network": None, "mos_jb50": None, "mos_jb200": None, "mos_adaptive": None,
               "burst_ratio": None, "mos_kind": "conversational" if rtt is not None else "listening",
               "rtt_ms": None if rtt is None else round(rtt, 3),
               "rtcp_fraction_lost": None, "rtcp_jitter_ms": None, "rtcp_cumulative_lost": None,
               "xr_mos_lq": None, "xr_mos_cq": None, "xr_r_factor": None}
        report = self.reports.get(ssrc)
        if report is not None:
            out["rtcp_fraction_lost"] = round(int(report["rb_fraction_lost"]) / 256.0, 6)
            out["rtcp_cumulative_lost"] = int(report["rb_cumulative_lost"])
            clock = int(rec["clock_rate"]) or (codec.clock if codec and codec.clock else 0)
            if clock:
                out["rtcp_jitter_ms"] = round(int(report["rb_jitter"]) * 1000.0 / clock, 3)
        xr = self.xr.get(ssrc)
        if xr is not None:
            for key in ("mos_lq", "mos_cq"):
                v = int(xr["xr_" + key])
                out["xr_" + key] = None if v == 127 else v / 10.0
            v = int(xr["xr_r_factor"])
            out["xr_r_factor"] = None if v == 127 else v
        imp = None
        if codec is not None:
            imp = codec.plc if self.plc or codec.no_plc is None else codec.no_plc
        expected = int(rec["expected"])
        if imp is None or expected <= 0:
            return out
        lost = max(int(rec["lost"]), 0)
        delay = rtt / 2.0 if rtt is not None else None
        network = score(imp.ie, imp.bpl, expected, lost, int(rec["loss_runs"]), delay)
        out["mos_network"] = network.mos
        for i, mode in enumerate(JB_MODES):
            s = score(imp.ie, imp.bpl, expected, min(expected, lost + int(rec["jb_late"][i])),
                      int(rec["jb_loss_runs"][i]), delay)
            out[f"mos_{mode}"] = s.mos
            if mode == DEFAULT_MOS_MODE:
                out["mos"] = s.mos
                out["r_factor"] = s.r
                out["burst_ratio"] = s.burst_r
        return out


def call_mos(stream_quality: list[dict]) -> Optional[float]:
    """A call is as good as its worse direction."""
    scores = [q["mos"] for q in stream_quality if q.get("mos") is not None]
    return min(scores) if scores else None
