"""tshark as the independent oracle: runs it and parses what it prints.

Nothing here calls warpsniff; expected values in the tests come from these
functions, from formulas worked in the tests, or from captures the tests
built themselves.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SHARED_PCAPS = Path(__file__).resolve().parents[1].parent / "shared" / "pcaps" / "public"


def require_tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.fail("tshark is not installed: run .ci/run (it installs it) or apt-get install tshark")
    return path


def require_shared_pcaps() -> Path:
    if not SHARED_PCAPS.is_dir():
        pytest.skip(f"third-party captures not present at {SHARED_PCAPS}")
    return SHARED_PCAPS


@dataclass(frozen=True)
class TsharkStream:
    src: str
    sport: int
    dst: str
    dport: int
    ssrc: int
    payload: str
    packets: int
    lost: int
    max_delta_ms: float
    mean_jitter_ms: float
    max_jitter_ms: float

    @property
    def key(self):
        return (self.src, self.sport, self.dst, self.dport, self.ssrc)


def tshark_rtp_streams(pcap: Path, decode_as: tuple = ()) -> list[TsharkStream]:
    """Streams as `tshark -q -z rtp,streams` reports them (heuristic RTP on)."""
    cmd = [require_tshark(), "-n", "-q", "-o", "rtp.heuristic_rtp:TRUE", "-r", str(pcap), "-z", "rtp,streams"]
    for rule in decode_as:
        cmd += ["-d", rule]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    streams = []
    in_table = False
    for line in out.splitlines():
        if "RTP Streams" in line:
            in_table = True
            continue
        if not in_table or line.startswith("=") or "Src IP addr" in line or not line.strip():
            continue
        tok = line.split()
        if tok[-1] == "X":
            tok = tok[:-1]
        max_j, mean_j, _min_j, max_d, _mean_d, _min_d = (float(x) for x in tok[-1:-7:-1])
        lost = int(tok[-8])
        packets = int(tok[-9])
        payload = " ".join(tok[7:-9])
        streams.append(TsharkStream(
            src=tok[2], sport=int(tok[3]), dst=tok[4], dport=int(tok[5]), ssrc=int(tok[6], 16),
            payload=payload, packets=packets, lost=lost, max_delta_ms=max_d,
            mean_jitter_ms=mean_j, max_jitter_ms=max_j,
        ))
    return streams


def tshark_fields(pcap: Path, display_filter: str, fields: list[str], extra: tuple = ()) -> list[list[str]]:
    cmd = [require_tshark(), "-n", "-r", str(pcap), "-Y", display_filter, "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=f", *extra]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    return [line.split("\t") for line in out.splitlines()]
