"""Reference models of RTP maximum jitter, written from their descriptions.

Two independent readings of RFC 3550 A.8, both in plain Python, fed with
per-packet fields that tshark extracted (arrival time, sequence number,
timestamp, payload type, marker), one stream at a time, in capture order:

- `wireshark_max_jitter_ms`: Wireshark 4.0's rules (ui/tap-rtp-analysis.c,
  rtppacket_analyse), the figure `tshark -z rtp,streams` prints as
  "Max Jitter". The tests first check it reproduces tshark, which shows the
  model reads the packets the way tshark does.
- `documented_max_jitter_ms`: the rules of docs/rtp-statistics.md, the figure
  warpsniff must report.

Nothing here imports warpsniff: the point is to recompute its numbers from
the written rules, not from its code.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Mapping, Optional, Protocol


class RtpPacket(Protocol):
    arrival_ns: int
    seq: int
    timestamp: int
    payload_type: int
    marker: bool


class Kind(Enum):
    AUDIO = "audio"
    VIDEO = "video"
    COMFORT_NOISE = "cn"
    TELEPHONE_EVENT = "telephone-event"


@dataclass(frozen=True)
class PayloadType:
    clock_rate: int
    kind: Kind


# RFC 3551 section 6: the static payload types and their clocks.
STATIC_PAYLOAD_TYPES: dict[int, PayloadType] = {
    **{pt: PayloadType(8000, Kind.AUDIO) for pt in (0, 3, 4, 5, 7, 8, 9, 12, 15, 18)},
    6: PayloadType(16000, Kind.AUDIO),
    10: PayloadType(44100, Kind.AUDIO),
    11: PayloadType(44100, Kind.AUDIO),
    14: PayloadType(90000, Kind.AUDIO),
    16: PayloadType(11025, Kind.AUDIO),
    17: PayloadType(22050, Kind.AUDIO),
    13: PayloadType(8000, Kind.COMFORT_NOISE),
    19: PayloadType(8000, Kind.COMFORT_NOISE),
    **{pt: PayloadType(90000, Kind.VIDEO) for pt in (25, 26, 28, 31, 32, 33, 34)},
}

# Wireshark's own clock table (tap-rtp-analysis.c clock_map), kept apart from
# RFC 3551's: it still lists the retired types 1 and 2, and counts comfort
# noise as a clocked type.
WIRESHARK_STATIC_CLOCKS: dict[int, int] = {
    0: 8000, 1: 8000, 2: 8000, 3: 8000, 4: 8000, 5: 8000, 6: 16000, 7: 8000, 8: 8000, 9: 8000,
    10: 44100, 11: 44100, 12: 8000, 13: 8000, 14: 90000, 15: 8000, 16: 11025, 17: 22050,
    18: 8000, 19: 8000, 25: 90000, 26: 90000, 28: 90000, 31: 90000, 32: 90000, 33: 90000,
    34: 90000,
}


# --------------------------------------------------------------------------
# Wireshark


def wireshark_max_jitter_ms(packets: Iterable[RtpPacket],
                            dynamic_clocks: Mapping[int, int] = {}) -> float:
    """Wireshark 4.0's "Max Jitter" (ms) for one stream.

    Its rules, as rtppacket_analyse applies them:
    - times are milliseconds since the stream's first packet; timestamps are
      "nominal times", (ts - first ts) mod 2^32 converted with
      `clock_rate / 1000` in integer arithmetic;
    - a packet is "in time sequence" when its timestamp is less than 2^31
      ahead of the FIRST packet's (not the previous one's): a sender that
      steps its timestamp back stays "in sequence";
    - only packets in time sequence whose payload type has a clock (comfort
      noise included) update the estimate: D = |now - (t_last + nominal -
      nominal_last)|, J = (15 J + D) / 16; nominal_last only moves with
      such packets, while t_last moves with every packet in time sequence,
      whatever its payload type (telephone-event and unknown dynamic types
      included);
    - the maximum only takes packets with a clock that are not the first,
      carry no marker, are not comfort noise, do not follow comfort noise
      and are in time sequence.
    Dynamic payload types have no clock unless `dynamic_clocks` names one
    (tshark learns those from SDP; telephone-event never has one).
    """
    first_ts = first_ns = None
    jitter = max_jitter = 0.0
    last_time_ms = last_nominal = 0.0
    previous_pt = None
    for p in packets:
        pt = p.payload_type
        if first_ts is None:  # the first packet only starts the clocks
            first_ts, first_ns, previous_pt = p.timestamp, p.arrival_ns, pt
            continue
        now_ms = (p.arrival_ns - first_ns) / 1e6
        since_first = (p.timestamp - first_ts) % (1 << 32)
        in_time_sequence = since_first < 1 << 31
        clock = WIRESHARK_STATIC_CLOCKS.get(pt, 0) if pt < 96 else dynamic_clocks.get(pt, 0)
        follows_cn = previous_pt in (13, 19)
        previous_pt = pt
        if in_time_sequence and clock:
            nominal = since_first / (clock // 1000)
            jitter = (15 * jitter + abs(now_ms - (last_time_ms + nominal - last_nominal))) / 16
            last_nominal = nominal
        if (clock and in_time_sequence and not p.marker
                and pt not in (13, 19) and not follows_cn):
            max_jitter = max(max_jitter, jitter)
        if in_time_sequence:
            last_time_ms = now_ms
    return max_jitter


# --------------------------------------------------------------------------
# docs/rtp-statistics.md

MAX_DROPOUT = 3000
MAX_MISORDER = 100
SEQ_MOD = 1 << 16


class Step(Enum):
    FIRST = "first"
    FORWARD = "forward"      # 1 to MAX_DROPOUT - 1 ahead of the highest sequence number
    BEHIND = "behind"        # duplicate or late: 0 to MAX_MISORDER - 1 behind the highest
    JUMP = "jump"            # anything else: set aside once
    RESTART = "restart"      # the packet after a jump continues from it: the sender restarted


class SequenceTracker:
    """Where each sequence number lies relative to the stream so far (the
    "Sequence, loss, duplicates" section). Jitter only needs the direction,
    so duplicates and late packets are one class here."""

    def __init__(self):
        self.highest: Optional[int] = None
        self.after_jump: Optional[int] = None  # the number that would confirm a restart

    def step(self, seq: int) -> Step:
        if self.highest is None:
            self.highest = seq
            return Step.FIRST
        ahead = (seq - self.highest) % SEQ_MOD
        confirms_restart, self.after_jump = seq == self.after_jump, None  # only the very next packet
        if 0 < ahead < MAX_DROPOUT:
            self.highest = seq
            return Step.FORWARD
        if ahead == 0 or ahead > SEQ_MOD - MAX_MISORDER:
            return Step.BEHIND
        if confirms_restart:
            self.highest = seq
            return Step.RESTART
        self.after_jump = (seq + 1) % SEQ_MOD
        return Step.JUMP


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def documented_max_jitter_ms(packets: Iterable[RtpPacket],
                             payload_types: Mapping[int, PayloadType] = STATIC_PAYLOAD_TYPES) -> float:
    """`max_jitter_ms` as docs/rtp-statistics.md defines it, for one stream.

    - J is kept in timestamp units: D = (Rj - Ri) * clock - (Sj - Si),
      J += (|D| - J) / 16, reported as J / clock * 1000.
    - Comfort noise and telephone-event packets neither feed J nor move the
      reference. Payload types absent from `payload_types` (dynamic ones no
      SDP bound) have no clock: they never feed J, and once the stream has
      a voice clock they do not move the reference either; before that,
      they move it as any packet does.
    - The reference is re-anchored, without a sample, on the first packet,
      on the packet that confirms a sequence restart, and on a packet whose
      timestamp steps back while its sequence number moves forward.
    - A packet whose sequence number jumps (set aside once by sequence
      tracking) takes no part in timing.
    - Duplicates and late packets update J against the reference; only
      packets in timestamp order move it; the maximum only takes packets in
      timestamp order without a marker.
    """
    sequence = SequenceTracker()
    jitter = max_jitter = 0.0
    clock = None
    ref_arrival_ns = ref_ts = None
    for p in packets:
        step = sequence.step(p.seq)  # sequence tracking sees every packet
        info = payload_types.get(p.payload_type)
        if info is not None and info.kind in (Kind.COMFORT_NOISE, Kind.TELEPHONE_EVENT):
            continue
        if step is Step.JUMP or (info is None and clock is not None):
            continue
        if info is not None:
            clock = clock or info.clock_rate
            assert info.clock_rate == clock, "the model handles one clock rate per stream"
        ts_step = None if ref_ts is None else _signed32(p.timestamp - ref_ts)
        if ts_step is None or step is Step.RESTART or (ts_step < 0 and step is Step.FORWARD):
            ref_arrival_ns, ref_ts = p.arrival_ns, p.timestamp
            continue
        if info is not None:
            d = (p.arrival_ns - ref_arrival_ns) * 1e-9 * clock - ts_step
            jitter += (abs(d) - jitter) / 16
            if ts_step >= 0 and not p.marker:
                max_jitter = max(max_jitter, jitter)
        if ts_step >= 0:
            ref_arrival_ns, ref_ts = p.arrival_ns, p.timestamp
    return max_jitter / clock * 1000 if clock else 0.0
