"""Stream records -> JSON objects and the terminal table."""
from __future__ import annotations

import ipaddress
import time
from typing import NamedTuple, Optional, TextIO

import numpy as np

from warpsniff.quality.streams import call_mos

_V4_PREFIX = bytes(10) + b"\xff\xff"


def format_addr(raw: bytes) -> str:
    """16-byte engine address -> text (IPv4 stored v4-mapped)."""
    raw = bytes(raw)
    if raw[:12] == _V4_PREFIX:
        return str(ipaddress.IPv4Address(raw[12:]))
    return str(ipaddress.IPv6Address(raw))


def format_endpoint(raw: bytes, port: int) -> str:
    addr = format_addr(raw)
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def stream_to_dict(rec: np.void, call_ids: dict | None = None, quality=None) -> dict:
    """The `--streams-json` object for one stream. Keys keep their meaning
    across releases; new keys may be added. `call_ids` maps call_ref to
    Call-ID (an unbound stream has call_id null); `quality` (a
    QualityContext) adds MOS and the endpoints' own RTCP figures."""
    ref = int(rec["call_ref"])
    d = {
        "call_id": (call_ids or {}).get(ref) if ref else None,
        "src": format_endpoint(rec["src"], int(rec["sport"])),
        "dst": format_endpoint(rec["dst"], int(rec["dport"])),
        "ssrc": int(rec["ssrc"]),
        "payload_type": int(rec["payload_type"]),
        "packets": int(rec["packets"]),
        "expected": int(rec["expected"]),
        "lost": int(rec["lost"]),
        "duplicates": int(rec["duplicates"]),
        "reordered": int(rec["reordered"]),
        "seq_resets": int(rec["seq_resets"]),
        "markers": int(rec["markers"]),
        "clock_rate": int(rec["clock_rate"]) or None,
        "max_jitter_ms": round(float(rec["max_jitter_ms"]), 6),
        "mean_jitter_ms": round(float(rec["mean_jitter_ms"]), 6),
        "max_delta_ms": round(float(rec["max_delta_ms"]), 6),
        "first_ts": int(rec["first_ns"]) / 1e9,
        "last_ts": int(rec["last_ns"]) / 1e9,
        "bytes": int(rec["bytes"]),
        "dtmf_events": int(rec["dtmf_events"]),
    }
    if quality is not None:
        d.update(quality.assess(rec))
    return d


def streams_to_dicts(streams: np.ndarray, call_ids: dict | None = None, quality=None) -> list[dict]:
    return [stream_to_dict(r, call_ids, quality) for r in streams]


def _ts(value):
    return None if value is None else round(value, 6)


def call_record(call) -> dict:
    """The call's own fields of its `--cdr` line, in line order; the media
    fields (dtmf_events, mos, streams) are placeholders until with_media()."""
    return {
        "call_id": call.call_id,
        "from": call.from_uri,
        "to": call.to_uri,
        "invite_ts": _ts(call.invite_ts),
        "pdd_ms": None if call.pdd_ms is None else round(call.pdd_ms, 3),
        "pdd_end": call.pdd_end,
        "final_code": call.final_code,
        "reason": call.reason,
        "answer_ts": _ts(call.answer_ts),
        "end_ts": _ts(call.end_ts),
        "duration_s": None if call.duration_s is None else round(call.duration_s, 6),
        "ended_by": call.ended_by,
        "bye_code": call.bye_code,
        "ringing": call.ringing,
        "early_dialogs": len(call.early_dialogs),
        "retransmissions": call.retransmissions,
        "holds": call.holds,
        "correlation_id": call.correlation_id,
        "leg": call.leg,
        "evicted": call.evicted,
        "dtmf_events": 0,
        "vq_reports": call.vq_reports,
        "mos": None,
        "streams": [],
    }


def with_media(record: dict, call_ref: int, streams: np.ndarray, quality=None) -> dict:
    """Fills a call_record() with its call's streams (call_ref's rows)."""
    stream_dicts = [stream_to_dict(r, {call_ref: record["call_id"]}, quality) for r in streams]
    record["dtmf_events"] = sum(s["dtmf_events"] for s in stream_dicts)
    record["mos"] = call_mos(stream_dicts) if quality is not None else None
    record["streams"] = stream_dicts
    return record


def call_to_dict(call, streams: np.ndarray, quality=None) -> dict:
    """One `--cdr` line: a call attempt and its media."""
    return with_media(call_record(call), call.call_ref, streams, quality)


class CallRow(NamedTuple):
    """What the call table shows of a call, kept instead of the Call (a tuple
    of plain values: small, and invisible to the garbage collector)."""
    invite_ts: float
    from_uri: Optional[str]
    to_uri: Optional[str]
    final_code: Optional[int]
    reason: Optional[str]
    pdd_ms: Optional[float]
    duration_s: Optional[float]
    ended_by: Optional[str]
    call_id: str

    @classmethod
    def of(cls, call) -> "CallRow":
        return cls(call.invite_ts, call.from_uri, call.to_uri, call.final_code, call.reason, call.pdd_ms,
                   call.duration_s, call.ended_by, call.call_id)


def write_call_table(calls: list, out: TextIO) -> None:
    """A call list in the spirit of sngrep's: Calls or CallRows."""
    out.write("=" * 25 + " Calls " + "=" * 25 + "\n")
    out.write(f"{'Start':>19} {'From':>28} {'To':>28} {'Code':>4} {'Reason':>11} "
              f"{'PDD(ms)':>9} {'Dur(s)':>8} {'By':>7} Call-ID\n")
    for c in calls:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(c.invite_ts))
        pdd = f"{c.pdd_ms:9.1f}" if c.pdd_ms is not None else f"{'-':>9}"
        dur = f"{c.duration_s:8.1f}" if c.duration_s is not None else f"{'-':>8}"
        out.write(f"{start:>19} {(c.from_uri or '-')[-28:]:>28} {(c.to_uri or '-')[-28:]:>28} "
                  f"{c.final_code or '-':>4} {c.reason or '-':>11} {pdd} {dur} {c.ended_by or '-':>7} {c.call_id}\n")
    out.write("=" * 57 + "\n")


def write_stream_table(streams: np.ndarray, out: TextIO, t0_ns: int | None = None) -> None:
    """A table in the spirit of `tshark -q -z rtp,streams`."""
    out.write("=" * 25 + " RTP Streams " + "=" * 25 + "\n")
    header = (f"{'Start':>11} {'End':>11} {'Source':>22} {'Destination':>22} {'SSRC':>10} "
              f"{'PT':>3} {'Pkts':>8} {'Lost':>14} {'Dups':>5} {'Late':>5} "
              f"{'MaxDelta(ms)':>12} {'MaxJitter(ms)':>13} {'MeanJitter(ms)':>14}")
    out.write(header + "\n")
    if t0_ns is None:
        t0_ns = int(streams["first_ns"].min()) if len(streams) else 0
    for r in streams:
        expected = int(r["expected"])
        lost = int(r["lost"])
        pct = 100.0 * lost / expected if expected > 0 else 0.0
        lost_s = f"{lost} ({pct:.1f}%)"
        jitter = f"{r['max_jitter_ms']:.3f}" if r["clock_rate"] else "-"
        mean = f"{r['mean_jitter_ms']:.3f}" if r["clock_rate"] else "-"
        out.write(
            f"{(int(r['first_ns']) - t0_ns) / 1e9:11.6f} {(int(r['last_ns']) - t0_ns) / 1e9:11.6f} "
            f"{format_endpoint(r['src'], int(r['sport'])):>22} {format_endpoint(r['dst'], int(r['dport'])):>22} "
            f"0x{int(r['ssrc']):08X} {int(r['payload_type']):>3} {int(r['packets']):>8} {lost_s:>14} "
            f"{int(r['duplicates']):>5} {int(r['reordered']):>5} {r['max_delta_ms']:12.3f} {jitter:>13} {mean:>14}\n"
        )
    out.write("=" * 63 + "\n")


def write_summary(counters: dict, decode_errors: dict, out: TextIO, elapsed_s: float) -> None:
    frames = counters["frames"]
    rate = frames / elapsed_s / 1e6 if elapsed_s > 0 else 0.0
    out.write(f"{frames} frames ({rate:.2f} Mpps), {counters['rtp_packets']} RTP, "
              f"{counters['rtcp_packets']} RTCP, {counters['sip_udp']} SIP/UDP, "
              f"{counters['tcp_segments']} SIP/TCP segments, {counters['decode_errors']} malformed\n")
    bad = {k: v for k, v in decode_errors.items() if v}
    if bad:
        out.write("malformed: " + ", ".join(f"{k}={v}" for k, v in bad.items()) + "\n")

