"""Reading is streamed: peak memory must not grow with the size of the file.

The same 50 RTP streams are written as N and as 8N packets; replaying the
larger file must not raise the process's peak RSS by as much as 16 MiB,
although the file is hundreds of MB larger. A property, not a timing test.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import robust_captures as rc

PY = sys.executable
REPO = Path(__file__).resolve().parents[1]
STREAMS = 50
N = 200_000
PAYLOAD = 160          # G.711, 20 ms
MIB = 1 << 20


def _template(k: int) -> bytes:
    """One pcap record (header + frame) of stream k, sequence/time fields zero."""
    body = rc.rtp(0, 0, 0x5000 + k, 0, b"\xd5" * PAYLOAD)
    frame = rc.ether(rc.ipv4(f"10.0.{k}.1", f"10.1.{k}.1", 17, rc.udp(20000 + 2 * k, 30000 + 2 * k, body)))
    return struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame


RTP_AT = 16 + 14 + 20 + 8  # RTP header offset within a record


def write_capture(path: Path, packets: int, chunk: int = 100_000) -> None:
    """packets records, round-robin over the streams, 20 ms apart per stream,
    each stream sequential from 0. Built with numpy in chunks."""
    templates = np.frombuffer(b"".join(_template(k) for k in range(STREAMS)), np.uint8).reshape(STREAMS, -1)
    with open(path, "wb") as fh:
        fh.write(rc.pcap_bytes([]).data)
        for start in range(0, packets, chunk):
            idx = np.arange(start, min(packets, start + chunk), dtype=np.int64)
            k, j = idx % STREAMS, idx // STREAMS
            rec = templates[k]
            t_us = j * 20_000 + k * 300
            rec[:, 0:4] = (rc.T0_NS // 1_000_000_000 + t_us // 1_000_000).astype("<u4").view(np.uint8).reshape(-1, 4)
            rec[:, 4:8] = (t_us % 1_000_000).astype("<u4").view(np.uint8).reshape(-1, 4)
            rec[:, RTP_AT + 2:RTP_AT + 4] = (j & 0xFFFF).astype(">u2").view(np.uint8).reshape(-1, 2)
            rec[:, RTP_AT + 4:RTP_AT + 8] = (j * 160).astype(">u4").view(np.uint8).reshape(-1, 4)
            fh.write(rec.tobytes())


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    d = tmp_path_factory.mktemp("streaming")
    small, large = d / "small.pcap", d / "large.pcap"
    write_capture(small, N)
    write_capture(large, 8 * N)
    return {"small": (small, N), "large": (large, 8 * N)}


def replay_peak_rss(path: Path, packets: int, via: str, tmp: Path) -> int:
    """Runs `warpsniff replay -q` on the file (or on a pipe fed from it) and
    returns the child's peak RSS in bytes, after checking its results."""
    jpath = tmp / f"{path.stem}-{via}.json"
    errpath = tmp / f"{path.stem}-{via}.err"
    target = str(path) if via == "file" else "-"
    cmd = [PY, "-m", "warpsniff", "replay", "-q", target, "--streams-json", str(jpath)]
    with open(errpath, "w") as err:
        feeder = None
        stdin = subprocess.DEVNULL
        if via == "pipe":
            feeder = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
            stdin = feeder.stdout
        child = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO)
        if feeder:
            feeder.stdout.close()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if feeder:
            feeder.wait()
    assert child.returncode == 0, errpath.read_text()[-2000:]
    streams = json.loads(jpath.read_text())
    assert len(streams) == STREAMS
    per_stream = packets // STREAMS
    assert {(s["packets"], s["expected"], s["lost"]) for s in streams} == {(per_stream, per_stream, 0)}
    return usage.ru_maxrss * 1024  # Linux reports KiB


@pytest.mark.parametrize("via", ["file", "pipe"])
def test_peak_memory_does_not_grow_with_file_size(captures, tmp_path, via):
    small, n_small = captures["small"]
    large, n_large = captures["large"]
    growth_in_file = large.stat().st_size - small.stat().st_size
    assert growth_in_file > 200 * MIB  # the property below means something
    rss_small = replay_peak_rss(small, n_small, via, tmp_path)
    rss_large = replay_peak_rss(large, n_large, via, tmp_path)
    assert rss_large - rss_small < 16 * MIB, (
        f"peak RSS {rss_small / MIB:.1f} MiB for {small.stat().st_size / MIB:.0f} MiB, "
        f"{rss_large / MIB:.1f} MiB for {large.stat().st_size / MIB:.0f} MiB ({via})")
