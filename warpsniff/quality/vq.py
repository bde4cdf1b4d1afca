"""SIP PUBLISH with application/vq-rtcpxr bodies (RFC 6035): the endpoint's
own RTCP-XR VoIP metrics sent to a collector, parsed into the same fields as
an RTCP-XR VoIP Metrics block. Endpoint-reported: never mixed with ours."""
from __future__ import annotations

import re
from typing import Optional

CONTENT_TYPE = "application/vq-rtcpxr"
_PAIR = re.compile(r"([A-Za-z]+)=([^\s]+)")

# report parameter -> our field name (same meaning as RFC 3611 section 4.7)
FIELDS = {
    ("PacketLoss", "NLR"): "loss_rate_percent",
    ("PacketLoss", "JDR"): "discard_rate_percent",
    ("BurstGapLoss", "BLD"): "burst_density_percent",
    ("BurstGapLoss", "BD"): "burst_duration_ms",
    ("BurstGapLoss", "GLD"): "gap_density_percent",
    ("BurstGapLoss", "GD"): "gap_duration_ms",
    ("BurstGapLoss", "GMIN"): "gmin",
    ("Delay", "RTD"): "round_trip_delay_ms",
    ("Delay", "ESD"): "end_system_delay_ms",
    ("Delay", "IAJ"): "interarrival_jitter_ms",
    ("QualityEst", "RLQ"): "r_factor_lq",
    ("QualityEst", "RCQ"): "r_factor_cq",
    ("QualityEst", "MOSLQ"): "mos_lq",
    ("QualityEst", "MOSCQ"): "mos_cq",
}


def parse_vq_report(body: bytes) -> Optional[dict]:
    """One vq-rtcpxr body -> {"event", "call_id", "local", "remote", fields...}.
    The reporter's own figures (LocalMetrics) are the fields; what it says of
    the far end (RemoteMetrics) goes under "remote_metrics"."""
    text = body.decode("utf-8", "replace")
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    if not lines or not lines[0].startswith("VQSessionReport"):
        return None
    report: dict = {"event": lines[0].partition(":")[2].strip() or None, "call_id": None}
    target = report
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name, value = name.strip(), value.strip()
        if name == "LocalMetrics":
            target = report
            continue
        if name == "RemoteMetrics":
            target = report.setdefault("remote_metrics", {})
            continue
        if name == "CallID":
            report["call_id"] = value
        elif name in ("LocalAddr", "RemoteAddr"):
            report["local" if name == "LocalAddr" else "remote"] = dict(_PAIR.findall(value))
        else:
            for key, raw in _PAIR.findall(value):
                field = FIELDS.get((name, key))
                if field is None:
                    continue
                try:
                    target[field] = float(raw)
                except ValueError:
                    continue
    return report
