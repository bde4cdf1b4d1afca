"""--write-pcap: one pcap per call that ended badly (docs/write-pcap.md).

The captures are built here (tests/sipgen.py) so the test knows which frames
belong to which call: every frame a call owns is recorded when it is written,
at a capture time no other frame uses. The written files are read with tshark
(tests/oracle.py) and must hold exactly those frames: same capture times, the
call's Call-ID only, the RTP streams the test sent. Nothing expected comes
from warpsniff's own output.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from oracle import epoch_to_ns, tshark_fields, tshark_frame_times, tshark_rtp_streams
from sipgen import BOB, Capture, Dialog, TcpConn, response, rtp, sdp, t_ns

REPO = Path(__file__).resolve().parent.parent
CARRIER = ("203.0.113.5", 5060)   # a second SIP peer, for the TCP call


@dataclass
class Truth:
    """What one call owns in the capture: its frames' times, its media streams."""
    call_id: str
    times: list = field(default_factory=list)       # t_ns of every frame of the call
    streams: dict = field(default_factory=dict)     # (src, sport, dst, dport, ssrc) -> packets sent


class Builder:
    """A Capture whose frames are attributed to calls as they are added.
    Every frame gets its own capture time: a 13 us step is added to any time
    already used, so frame times identify frames."""

    def __init__(self):
        self.cap = Capture()
        self.used: set = set()
        self.truth: dict[str, Truth] = {}

    def _t(self, t: float) -> float:
        while t_ns(t) in self.used:
            t += 0.000013
        self.used.add(t_ns(t))
        return t

    def own(self, call_id: str) -> Truth:
        return self.truth.setdefault(call_id, Truth(call_id))

    def udp(self, owner, t, src, dst, payload) -> None:
        t = self._t(t)
        self.cap.udp(t, src, dst, bytes(payload))
        if owner is not None:
            self.own(owner).times.append(t_ns(t))

    def tcp_frame(self, owner, t, fn) -> None:
        t = self._t(t)
        n = len(self.cap.frames)
        fn(t)
        if owner is not None:
            for f in self.cap.frames[n:]:
                self.own(owner).times.append(f.t_ns)

    def fragments(self, owner, t, src, dst, payload) -> int:
        """One UDP datagram as IPv4 fragments (100 us apart); returns how many."""
        t = self._t(t)
        n = len(self.cap.frames)
        count = self.cap.udp_fragments(t, src, dst, bytes(payload), fragsize=600, step=0.0001)
        for f in self.cap.frames[n:]:
            self.used.add(f.t_ns)
            self.own(owner).times.append(f.t_ns)
        return count

    def rtp(self, owner, src, dst, ssrc, start, count, drop=()) -> None:
        sent = 0
        for i in range(count):
            if i in drop:
                continue
            self.udp(owner, start + i * 0.02, src, dst, rtp(1000 + i, i * 160, ssrc))
            sent += 1
        self.own(owner).streams[(src[0], src[1], dst[0], dst[1], ssrc)] = sent

    def rtcp(self, owner, t, src, dst, ssrc) -> None:
        # RTCP receiver report, no blocks (RFC 3550 6.4.2)
        self.udp(owner, t, src, dst, struct.pack("!BBHI", 0x80, 201, 1, ssrc))


def udp_call(b: Builder, call_id: str, t0: float, caller, callee, a_media, b_media, *, code: int,
             rtp_packets: int = 0, drop=(), ssrcs=(0x1111, 0x2222), rtcp: bool = False) -> None:
    """INVITE (SDP), 100, then either the failure + ACK, or 200 (SDP) + ACK,
    RTP both ways (drop: indexes lost caller->callee), BYE + 200."""
    d = Dialog(call_id, caller, callee, from_tag=f"ft-{call_id[:6]}")
    inv = d.invite(1, body=sdp(a_media[0], a_media[1]))
    b.udp(call_id, t0, caller, callee, inv)
    b.udp(call_id, t0 + 0.01, callee, caller, response(inv, 100))
    if code >= 300:
        b.udp(call_id, t0 + 0.2, callee, caller, response(inv, code, to_tag="tt"))
        b.udp(call_id, t0 + 0.21, caller, callee,
              d.request("ACK", 1, to_tag="tt", branch=inv.get("Via").split("branch=")[1]))
        return
    b.udp(call_id, t0 + 0.3, callee, caller, response(inv, 200, to_tag="tt", body=sdp(b_media[0], b_media[1])))
    b.udp(call_id, t0 + 0.31, caller, callee, d.request("ACK", 1, to_tag="tt"))
    b.rtp(call_id, a_media, b_media, ssrcs[0], t0 + 0.4, rtp_packets, drop=drop)
    b.rtp(call_id, b_media, a_media, ssrcs[1], t0 + 0.405, rtp_packets)
    if rtcp:
        b.rtcp(call_id, t0 + 1.0, (a_media[0], a_media[1] + 1), (b_media[0], b_media[1] + 1), ssrcs[0])
        b.rtcp(call_id, t0 + 1.1, (b_media[0], b_media[1] + 1), (a_media[0], a_media[1] + 1), ssrcs[1])
    t_end = t0 + 0.4 + rtp_packets * 0.02 + 0.1
    bye = d.request("BYE", 2, to_tag="tt")
    b.udp(call_id, t_end, caller, callee, bye)
    b.udp(call_id, t_end + 0.02, callee, caller, response(bye, 200))


def tcp_503_call(b: Builder, call_id: str, t0: float) -> None:
    """A 503 over its own TCP connection: handshake, INVITE, 100, 503, ACK."""
    caller, callee = ("192.0.2.30", 45000), CARRIER
    conn = TcpConn(b.cap, caller, callee)
    b.tcp_frame(call_id, t0, lambda t: conn.handshake(t, step=0.0007))
    d = Dialog(call_id, caller, callee, transport="TCP", from_tag="tcp-ft")
    inv = d.invite(1, body=sdp("192.0.2.30", 30000))
    b.tcp_frame(call_id, t0 + 0.01, lambda t: conn.send(t, True, bytes(inv)))
    b.tcp_frame(call_id, t0 + 0.02, lambda t: conn.send(t, False, bytes(response(inv, 100))))
    b.tcp_frame(call_id, t0 + 0.3, lambda t: conn.send(t, False, bytes(response(inv, 503, to_tag="tt"))))
    ack = d.request("ACK", 1, to_tag="tt", branch=inv.get("Via").split("branch=")[1])
    b.tcp_frame(call_id, t0 + 0.31, lambda t: conn.send(t, True, bytes(ack)))


ALICE2, BOB2 = ("192.0.2.11", 5060), ("198.51.100.21", 5060)

BAD_503 = "bad-503-call@192.0.2.10"
GOOD = "good-200-call@192.0.2.10"
LOSSY = "lossy-200-call@192.0.2.11"
OTHER = "other-200-call@192.0.2.11"
BAD_TCP = "bad-503-tcp@192.0.2.30"
BUSY = "busy-486-call@192.0.2.10"
BAD_FRAG = "bad-500-fragmented@192.0.2.50"


def fragmented_500_call(b: Builder, call_id: str, t0: float) -> None:
    """A 500 whose INVITE (large SDP) crossed the network as IPv4 fragments."""
    caller = ("192.0.2.50", 5060)
    d = Dialog(call_id, caller, BOB, from_tag="frag-ft")
    inv = d.invite(1, body=sdp("192.0.2.50", 4900, pad_attrs=30))
    assert b.fragments(call_id, t0, caller, BOB, inv) >= 3
    b.udp(call_id, t0 + 0.01, BOB, caller, response(inv, 100))
    b.udp(call_id, t0 + 0.2, BOB, caller, response(inv, 500, to_tag="tt"))
    b.udp(call_id, t0 + 0.21, caller, BOB, d.request("ACK", 1, to_tag="tt", branch=inv.get("Via").split("branch=")[1]))


def mixed_capture(tmp_path: Path) -> tuple[Path, dict]:
    """Six calls, interleaved in time:
    - BAD_503: 503 Service Unavailable over UDP (SDP offer, no media),
    - GOOD: answered, clean RTP both ways + RTCP, BYE,
    - LOSSY: answered, 30 % of caller->callee RTP lost (MOS far below 3.1),
    - OTHER: answered, clean, during the others, same SIP hosts as LOSSY,
    - BAD_TCP: 503 over TCP,
    - BUSY: 486 (bad only if 4xx is asked for),
    - BAD_FRAG: 500, its INVITE in IPv4 fragments."""
    b = Builder()
    udp_call(b, GOOD, 0.0, Dialog("x").caller, BOB, ("192.0.2.10", 4000), ("198.51.100.20", 5000),
             code=200, rtp_packets=250, rtcp=True, ssrcs=(0xA1, 0xA2))
    udp_call(b, BAD_503, 0.5, Dialog("x").caller, BOB, ("192.0.2.10", 4100), ("198.51.100.20", 5100), code=503)
    lost = set(range(5, 250, 3))  # every third packet from #5: 82 of 250
    udp_call(b, LOSSY, 1.0, ALICE2, BOB2, ("192.0.2.11", 4200), ("198.51.100.21", 5200),
             code=200, rtp_packets=250, drop=lost, ssrcs=(0xB1, 0xB2), rtcp=True)
    udp_call(b, OTHER, 1.5, ALICE2, BOB2, ("192.0.2.11", 4300), ("198.51.100.21", 5300),
             code=200, rtp_packets=200, ssrcs=(0xC1, 0xC2))
    tcp_503_call(b, BAD_TCP, 2.0)
    udp_call(b, BUSY, 2.5, Dialog("x").caller, BOB, ("192.0.2.10", 4400), ("198.51.100.20", 5400), code=486)
    fragmented_500_call(b, BAD_FRAG, 3.0)
    for t in range(0, 60):
        b.cap.filler(b._t(float(t) + 0.5))  # capture time moves on; belongs to no call
    path = b.cap.write(tmp_path / "mixed.pcap")
    return path, b.truth


def run_cli(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "warpsniff", *map(str, argv)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def written(out_dir: Path) -> dict:
    """Call-ID (from tshark's reading of the file) -> path, for every pcap written."""
    files = {}
    for p in sorted(out_dir.glob("*.pcap")):
        ids = {row[0] for row in tshark_fields(p, "sip", ["sip.Call-ID"])}
        assert len(ids) == 1, (p, ids)   # one call per file, nothing of any other call's SIP
        files[ids.pop()] = p
    return files


def assert_exact(path: Path, truth: Truth) -> None:
    got = tshark_frame_times(path)
    assert Counter(got) == Counter(truth.times), (
        f"{path.name}: {len(got)} frames, the call has {len(truth.times)}; "
        f"extra {sorted(set(got) - set(truth.times))[:5]}, missing {sorted(set(truth.times) - set(got))[:5]}")
    assert got == sorted(got)  # in capture order


def test_replay_writes_exactly_the_bad_calls(tmp_path):
    pcap, truth = mixed_capture(tmp_path)
    out = tmp_path / "bad"
    r = run_cli("replay", pcap, "--write-pcap", out, "-q")
    assert r.returncode == 0, r.stderr
    files = written(out)
    # 5xx and the lossy call; not the clean ones, not the 486 (4xx was not asked for)
    assert set(files) == {BAD_503, BAD_TCP, LOSSY, BAD_FRAG}, (sorted(files), r.stderr)
    for call_id, path in files.items():
        assert_exact(path, truth[call_id])
    # the lossy call's RTP, as tshark sees it: both directions, every packet the test sent
    streams = {s.key: s.packets for s in tshark_rtp_streams(files[LOSSY])}
    assert streams == truth[LOSSY].streams
    # the TCP call: the whole connection, handshake included, and nothing else
    assert {row[0] for row in tshark_fields(files[BAD_TCP], "", ["tcp.stream"])} == {"0"}
    # the fragmented INVITE: every fragment, so tshark reassembles it (the SDP inside is read)
    assert tshark_fields(files[BAD_FRAG], "sip.Method == INVITE", ["sdp.media.port"]) == [["4900"]]
    assert "4 bad calls: 4 written (0 truncated), 0 skipped" in r.stderr, r.stderr


def test_codes_are_configurable(tmp_path):
    pcap, truth = mixed_capture(tmp_path)
    out = tmp_path / "bad"
    r = run_cli("replay", pcap, "--write-pcap", out, "--write-pcap-codes", "486", "--write-pcap-mos", "0", "-q")
    assert r.returncode == 0, r.stderr
    files = written(out)
    assert set(files) == {BUSY}
    assert_exact(files[BUSY], truth[BUSY])
    bad = run_cli("replay", pcap, "--write-pcap", out, "--write-pcap-codes", "5yy")
    assert bad.returncode == 2 and "--write-pcap-codes" in bad.stderr


def test_output_directory_stays_bounded(tmp_path):
    """Older files of ours are removed, oldest first, until the new ones fit;
    files that are not ours are never touched."""
    pcap, truth = mixed_capture(tmp_path)
    out = tmp_path / "bad"
    out.mkdir()
    mb = 1 << 20
    old1 = out / "20200101T000000Z_503_old-one.pcap"
    old2 = out / "20200102T000000Z_503_old-two.pcap"
    notes = out / "notes.txt"
    old1.write_bytes(b"\0" * (mb // 2))
    old2.write_bytes(b"\0" * (mb // 2))
    notes.write_bytes(b"\0" * (2 * mb))   # not ours: kept, and not counted
    os.utime(old1, ns=(1_577_836_800 * 10**9,) * 2)
    os.utime(old2, ns=(1_577_923_200 * 10**9,) * 2)
    r = run_cli("replay", pcap, "--write-pcap", out, "--write-pcap-max-mb", "1", "-q")
    assert r.returncode == 0, r.stderr
    # the new files take some KiB: with both old files (1 MiB) the directory would be over
    new = [p for p in out.glob("*.pcap") if "old-" not in p.name]
    assert len(new) == 4
    new_bytes = sum(p.stat().st_size for p in new)
    assert 0 < new_bytes < mb // 2
    assert not old1.exists() and old2.exists() and notes.exists()
    assert sum(p.stat().st_size for p in out.glob("*.pcap")) <= mb
    assert "removed the 1 oldest files" in r.stderr


def test_standard_input_is_refused(tmp_path):
    r = run_cli("replay", "-", "--write-pcap", tmp_path / "bad")
    assert r.returncode == 2 and "standard input" in r.stderr


# --------------------------------------------------------------------------
# the spool (live): segments, rotation, cap, and calls older than its window


def pcap_frames(path: Path) -> list[tuple[int, bytes]]:
    """(t_ns, frame) of a nanosecond pcap written by sipgen.Capture.write."""
    data = path.read_bytes()
    out, pos = [], 24
    while pos < len(data):
        sec, nsec, caplen, _ = struct.unpack_from("<IIII", data, pos)
        out.append((sec * 10**9 + nsec, data[pos + 16:pos + 16 + caplen]))
        pos += 16 + caplen
    return out


SEGMENT = re.compile(r"^spool-(\d{10})-(\d{19})\.pcap$")


def test_spool_rotates_under_its_cap_and_reports_lost_windows(tmp_path):
    """The capture is spooled frame by frame as the live loop does, with a cap
    far below the capture's size: on disk the total never exceeds the cap, the
    segments that remain are the newest frames, in order, and readable; a bad
    call whose frames rotated out is reported skipped, one that rotated out in
    part is written and reported truncated, a later one is written exactly."""
    from warpsniff._engine import Engine
    from warpsniff.badcalls import BadCallWriter
    from warpsniff.replay import EngineOptions, replay

    b = Builder()
    early, middle, late = "early-503@192.0.2.10", "middle-503@192.0.2.10", "late-503@192.0.2.10"
    udp_call(b, early, 0.0, Dialog("x").caller, BOB, ("192.0.2.10", 4000), ("198.51.100.20", 5000), code=503)
    # clean traffic that pushes the early call out of the spool
    udp_call(b, GOOD, 1.0, ALICE2, BOB2, ("192.0.2.11", 4200), ("198.51.100.21", 5200),
             code=200, rtp_packets=3000, ssrcs=(0xD1, 0xD2))
    # the middle call: INVITE early on, its 503 only after a long ring; the spool loses its start
    d = Dialog(middle, ("192.0.2.40", 5060), BOB, from_tag="mid")
    inv = d.invite(1, body=sdp("192.0.2.40", 4600))
    b.udp(middle, 5.0, d.caller, d.callee, inv)
    b.udp(middle, 5.01, d.callee, d.caller, response(inv, 180, to_tag="tt"))
    b.udp(middle, 70.0, d.callee, d.caller, response(inv, 503, to_tag="tt"))
    b.udp(middle, 70.01, d.caller, d.callee,
          d.request("ACK", 1, to_tag="tt", branch=inv.get("Via").split("branch=")[1]))
    udp_call(b, late, 75.0, Dialog("x").caller, BOB, ("192.0.2.10", 4800), ("198.51.100.20", 5800), code=503)
    for t in range(0, 100):
        b.cap.filler(b._t(float(t) + 0.7))
    pcap = b.cap.write(tmp_path / "spooled.pcap")
    frames = pcap_frames(pcap)

    spool_root = tmp_path / "spool"
    cap_bytes, segment_bytes = 700 << 10, 340 << 10
    engine = Engine()
    writer = BadCallWriter(tmp_path / "bad", codes="5xx", mos_below=0, margin_s=1.0)
    (spool_root / "worker-0").mkdir(parents=True)
    stale = spool_root / "worker-0" / "spool-0000000007-0000000000000000000.pcap"
    stale.write_bytes(b"left over")
    writer.open_spools([engine], spool_root, cap_bytes, segment_bytes)
    writer.spool_started_ns = frames[0][0] - 10**9  # the spool ran before the capture began
    assert not stale.exists()  # an earlier run's segments are removed
    spool_dir = spool_root / "worker-0"
    worst = 0
    for i, (t, frame) in enumerate(frames):
        engine.spool_feed(frame, t)
        if i % 500 == 0:
            engine.spool_flush()
            worst = max(worst, sum(p.stat().st_size for p in spool_dir.iterdir()))
    engine.spool_flush()
    segs = sorted(spool_dir.iterdir())
    on_disk = sum(p.stat().st_size for p in segs)
    worst = max(worst, on_disk)
    assert worst <= cap_bytes
    assert sum(len(f) + 16 for _, f in frames) > 1.5 * cap_bytes  # it had to rotate
    seqs = [int(SEGMENT.match(p.name).group(1)) for p in segs]
    assert seqs[0] >= 2 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    # what remains is the newest frames, in order, every one of them (tshark reads the segments)
    kept = [t for p in segs for t in tshark_frame_times(p)]
    assert kept == [t for t, _ in frames[-len(kept):]]
    assert [int(SEGMENT.match(p.name).group(2)) for p in segs] == [tshark_frame_times(p)[0] for p in segs]

    # the calls, as a replay finds them, handed to the writer; extraction from the spool
    from warpsniff.pipeline import Pipeline
    pipe = Pipeline(EngineOptions(), on_call=writer.on_call)
    replay([str(pcap)], pipeline=pipe)
    assert writer.stats.chosen == 3
    lines = []
    writer.log = lines.append
    writer.extract_due(0, everything=True)
    files = written(tmp_path / "bad")
    assert set(files) == {middle, late}, lines
    assert_exact(files[late], b.truth[late])
    # the middle call: only what the spool still held (its 503 and ACK), reported as truncated
    oldest = kept[0]
    assert Counter(tshark_frame_times(files[middle])) == Counter(t for t in b.truth[middle].times if t >= oldest)
    assert any(early in ln and "skipped" in ln and "not in the spool" in ln for ln in lines), lines
    assert any(middle in ln and "TRUNCATED" in ln and "no longer holds frames" in ln for ln in lines), lines
    assert writer.stats.skipped == 1 and writer.stats.truncated == 1 and writer.stats.written == 2
    engine.close_spool()


def test_spool_refuses_a_cap_below_two_segments(tmp_path):
    from warpsniff._engine import Engine

    with pytest.raises(ValueError, match="two segments"):
        Engine().open_spool(str(tmp_path / "s"), 1 << 20, 1 << 20)


def test_spool_and_extraction_under_sanitizers(tmp_path):
    """The spool and the extraction built with ASan/UBSan (tests/native/spool_extract.c):
    the mixed capture, a capture that rotates the spool, the damaged files of
    test_bad_input.py and seeded mutants of the mixed capture. No report allowed."""
    import random

    import robust_captures as rc
    from test_sanitizers import NATIVE, REPORT_RE, _compile, _env

    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    tool = _compile(tmp_path / "spool_extract", NATIVE / "spool_extract.c", tmp_path / "build")
    mixed, _ = mixed_capture(tmp_path)
    big = Builder()
    udp_call(big, GOOD, 0.0, ALICE2, BOB2, ("192.0.2.11", 4200), ("198.51.100.21", 5200),
             code=200, rtp_packets=2500, ssrcs=(0xD1, 0xD2))
    inputs = [mixed, big.cap.write(tmp_path / "big.pcap")]
    for i, case in enumerate(rc.structural_cases()):
        inputs.append(tmp_path / f"damaged-{i}.pcap")
        inputs[-1].write_bytes(case.data)
    rng = random.Random(20261127)
    base = mixed.read_bytes()
    for i in range(120):
        inputs.append(tmp_path / f"mutant-{i}.pcap")
        inputs[-1].write_bytes(rc.mutate(base, rng, rng.choice((1, 2, 5, 16, 40))))
    work = tmp_path / "work"
    work.mkdir()
    probe = subprocess.run([str(tool), str(work)], capture_output=True, text=True, env=_env(True), timeout=60)
    env = _env("LeakSanitizer has encountered a fatal error" not in probe.stderr)
    for start in range(0, len(inputs), 40):
        chunk = [str(p) for p in inputs[start:start + 40]]
        proc = subprocess.run([str(tool), str(work), *chunk], capture_output=True, text=True, errors="replace",
                              env=env, timeout=300)
        assert not REPORT_RE.search(proc.stderr) and proc.returncode in (0, 2), proc.stderr[-4000:]
        assert proc.stdout.count("done frames=") == len(chunk), proc.stdout[-2000:]
    # the clean captures: everything found in the file is found again in the spool
    proc = subprocess.run([str(tool), str(work), *map(str, inputs[:2])], capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("done")]
    first = dict(kv.split("=") for kv in lines[0].split()[1:])
    assert int(first["written"]) > 0 and first["written"] == first["from_spool"]
    second = dict(kv.split("=") for kv in lines[1].split()[1:])
    assert int(second["segments"]) >= 2   # the big capture rotated the spool


# --------------------------------------------------------------------------
# live: SIPp in a pair of network namespaces, warpsniff live spooling, and
# dumpcap beside it as the oracle of what was on the wire


@pytest.fixture
def wpc_lab(tmp_path):
    """Namespaces wpca*/wpcb* (ours only), veth between them; SIPp UAS in B:
    one answering with RTP (uas.xml), one with early media then 503."""
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces (CI runs as root)")
    from test_sipp_live import need, sipp_lab

    need("dumpcap")
    with sipp_lab(tmp_path, "wpc", (("uas.xml", 5060, 7000), ("early_media_503.xml", 5080, 7200))) as lab:
        yield lab


def _sipp_uac(lab, scenario: str, target_port: int, local_port: int, calls: int, name: str) -> dict:
    from test_sipp_live import SCENARIOS, UAC_IP, UAS_IP, sh, sipp_counts

    stat = lab["dir"] / f"{name}.csv"
    sh("ip", "netns", "exec", lab["a"], lab["sipp"], "-sf", SCENARIOS / scenario, f"{UAS_IP}:{target_port}",
       "-i", UAC_IP, "-p", local_port, "-mi", UAC_IP, "-mp", 6000 + local_port % 100 * 10,
       "-m", calls, "-r", 10, "-l", 1, "-nostdin", "-trace_stat", "-stf", stat, "-timeout", "60s", cwd=lab["dir"])
    return sipp_counts(stat)


WIRE_FIELDS = ["frame.len", "udp.srcport", "udp.dstport", "rtp.seq", "sip.CSeq", "sip.Status-Code"]


def _wire_rows(pcap: Path, display_filter: str) -> Counter:
    rows = tshark_fields(pcap, display_filter, WIRE_FIELDS, extra=("-o", "rtp.heuristic_rtp:TRUE"))
    return Counter(tuple(r) for r in rows)


@pytest.mark.parametrize("workers", [1, 2])
def test_live_spool_writes_the_failed_calls(wpc_lab, workers):
    """With two workers each capture thread spools its share of the flows;
    a call's file merges both spools by time."""
    lab = wpc_lab
    d = lab["dir"]
    out, spool = d / "bad", d / "spool"
    full = d / "wire.pcapng"
    oracle = subprocess.Popen(["ip", "netns", "exec", lab["a"], "dumpcap", "-q", "-i", lab["cap"], "-w", full],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    err = d / "live.err"
    live = subprocess.Popen(["ip", "netns", "exec", lab["a"], sys.executable, "-m", "warpsniff", "live",
                             "-i", lab["cap"], "--listen", "127.0.0.1:10780", "--write-pcap", out,
                             "--write-pcap-margin", "0.5", "--write-pcap-mos", "0", "--spool-dir", spool,
                             "--spool-mb", "16", "--spool-segment-mb", "4", "--workers", str(workers)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(err, "w"))
    try:
        deadline = time.monotonic() + 20
        while "serving /metrics" not in err.read_text() or not full.exists():
            assert live.poll() is None and oracle.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
        time.sleep(0.5)
        answered = _sipp_uac(lab, "uac.xml", 5060, 5061, 2, "answered")
        time.sleep(1.5)  # a quiet gap: the failed calls' windows hold nothing of the answered ones
        failed = _sipp_uac(lab, "uac_failing.xml", 5080, 5063, 3, "failed")
        assert answered == {"successful": 2, "failed": 0} and failed == {"successful": 3, "failed": 0}
        # written while warpsniff runs (a background thread, once each window is on disk), not at exit
        from test_live import scrape
        deadline = time.monotonic() + 20
        while True:
            samples = scrape(lab)
            if samples.get('warpsniff_write_pcap_calls_total{outcome="written"}') == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert samples['warpsniff_write_pcap_calls_total{outcome="written"}'] == 3, samples
        assert samples["warpsniff_write_pcap_pending"] == 0
        assert samples['warpsniff_write_pcap_calls_total{outcome="truncated"}'] == 0
        assert 0 < samples["warpsniff_spool_bytes"] <= 16 << 20
        while_running = sorted(p.name for p in out.glob("*.pcap"))
    finally:
        live.send_signal(signal.SIGTERM)
        code = live.wait(timeout=60)
        oracle.send_signal(signal.SIGINT)
        oracle.wait(timeout=30)
    assert code == 0, err.read_text()
    log = err.read_text()
    # the oracle: every 503 on the wire names a failed call; its frames are the UDP frames
    # from its INVITE to its ACK, with the test's quiet half second either side
    truth = {}
    for call_id, in tshark_fields(full, "sip.Status-Code == 503", ["sip.Call-ID"]):
        times = sorted(epoch_to_ns(t) for t, in tshark_fields(full, f'sip.Call-ID == "{call_id}"',
                                                               ["frame.time_epoch"]))
        lo, hi = (times[0] - 500_000_000) / 1e9, (times[-1] + 500_000_000) / 1e9
        truth[call_id] = _wire_rows(full, f"udp && frame.time_epoch >= {lo:.9f} && frame.time_epoch <= {hi:.9f}")
    assert len(truth) == 3
    files = written(out)
    assert set(files) == set(truth), log   # the failed calls, not the answered ones
    assert sorted(p.name for p in files.values()) == while_running
    for call_id, path in files.items():
        got = _wire_rows(path, "")
        assert got == truth[call_id], (call_id, got - truth[call_id], truth[call_id] - got)
        # early media went into the file: 2 s of 20 ms packets, give or take SIPp's pacing
        assert sum(n for row, n in got.items() if row[3]) >= 90, got
    assert "3 bad calls: 3 written (0 truncated), 0 skipped, 0 failed" in log, log
    on_disk = sum(p.stat().st_size for p in spool.rglob("spool-*.pcap"))
    assert 0 < on_disk <= 16 << 20
