"""Damaged, lying and garbage input: warpsniff must never crash, must exit 2
with one line naming the file (and the offset, when a record is damaged),
and must still report everything it read before the damage.

Every capture here is built byte by byte (robust_captures.py), so the
expected exit code, offset and stream statistics are known by construction.
"""
from __future__ import annotations

import json
import random
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import robust_captures as rc

PY = sys.executable
REPO = Path(__file__).resolve().parents[1]

DECODE_ERROR_KEYS = ("unsupported_linktype", "short_link_header", "ip_header", "ip_length", "udp_length",
                     "tcp_header", "tunnel", "fragment_overlap", "fragment_table_full", "fragment_timeout",
                     "snapped")

# --------------------------------------------------------------------------
# helpers


def cli(*args, stdin=None, timeout=60) -> subprocess.CompletedProcess:
    """`python3 -m warpsniff replay ARGS` as a separate process."""
    return subprocess.run([PY, "-m", "warpsniff", "replay", *map(str, args)], capture_output=True, text=True,
                          stdin=stdin, timeout=timeout, cwd=REPO)


def stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def assert_not_crashed(proc, what):
    assert proc.returncode >= 0, f"{what}: killed by signal {-proc.returncode}\n{proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr, f"{what}: traceback\n{proc.stderr[-2000:]}"


def assert_one_line(proc, path, what):
    lines = stderr_lines(proc.stderr)
    assert len(lines) == 1, f"{what}: expected one line on stderr, got {lines!r}"
    assert str(path) in lines[0], f"{what}: message does not name {path}: {lines[0]!r}"
    return lines[0]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# Runs cli.main in-process over many files, in a child interpreter, so that a
# crash kills only the child and names the file that caused it. One process
# per file would take minutes for a sweep over every byte offset.
CLI_WORKER = r"""
import contextlib, io, json, sys
from warpsniff import cli
for path in sys.argv[1:]:
    jpath = path + ".json"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(["replay", path, "--streams-json", jpath])
        except SystemExit as exc:
            rc = exc.code
    try:
        with open(jpath) as fh:
            streams = json.load(fh)
    except (OSError, ValueError) as exc:
        streams = "unreadable: " + repr(exc)
    sys.__stdout__.write(json.dumps({"path": path, "rc": rc, "stdout": out.getvalue(),
                                     "stderr": err.getvalue(), "streams": streams}) + "\n")
    sys.__stdout__.flush()
"""


def run_cli_worker(paths: list[Path]) -> dict[str, dict]:
    def one(chunk):
        proc = subprocess.run([PY, "-c", CLI_WORKER, *map(str, chunk)], capture_output=True, text=True,
                              timeout=300, cwd=REPO)
        done = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or len(done) != len(chunk):
            culprit = chunk[len(done)] if len(done) < len(chunk) else None
            pytest.fail(f"worker died (exit {proc.returncode}) on {culprit}:\n{proc.stderr[-3000:]}")
        return done

    chunks = [paths[i::2] for i in range(2)]
    with ThreadPoolExecutor(2) as ex:
        results = [r for part in ex.map(one, chunks) for r in part]
    return {r["path"]: r for r in results}


# Buffers that end right before a PROT_NONE page: reading past the data
# handed to the engine is a SIGSEGV instead of silently reading a neighbour.
# `place(data)` returns such a view of data.
GUARD_PRELUDE = r"""
import ctypes, json, mmap, struct, sys
PAGE = mmap.PAGESIZE
SPAN = 32 * PAGE
buf = mmap.mmap(-1, SPAN + PAGE)
addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
if libc.mprotect(addr + SPAN, PAGE, 0) != 0:
    raise OSError(ctypes.get_errno(), "mprotect")
view = memoryview(buf)
end = SPAN

def place(data):
    assert len(data) <= end
    buf[end - len(data):end] = data
    return view[end - len(data):end]
"""

# Every frame of a classic pcap through Engine.feed from a guarded buffer.
GUARD_WORKER = GUARD_PRELUDE + r"""
from warpsniff._engine import Engine
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    e = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
    eng = Engine()
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, origlen = struct.unpack(e + "IIII", data[pos:pos + 16])
        frame = data[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen
        eng.feed(place(frame), sec * 1000000000 + frac * 1000, linktype, origlen)
    print(json.dumps({"path": path, "counters": eng.counters(), "decode_errors": eng.decode_errors()}),
          flush=True)
"""

# Length-prefixed SIP messages through parse_sip (datagram and stream
# framing) from a guarded buffer; spans of parsed messages must lie inside.
SIP_GUARD_WORKER = GUARD_PRELUDE + r"""
from warpsniff._engine import SIP_OK, parse_sip
data = open(sys.argv[1], "rb").read()
pos, count, outside, statuses = 0, 0, [], {}
while pos < len(data):
    (n,) = struct.unpack_from("<I", data, pos)
    msg = data[pos + 4:pos + 4 + n]
    pos += 4 + n
    for datagram in (True, False):
        h = parse_sip(place(msg), datagram, b"x-cid")
        statuses[h.status_name] = statuses.get(h.status_name, 0) + 1
        if h.status == SIP_OK and (h.header_len > n or h.body_off + h.body_len > n):
            outside.append((count, datagram, h.header_len, h.body_off, h.body_len, n))
    count += 1
print(json.dumps({"messages": count, "outside": outside[:20], "statuses": statuses}), flush=True)
"""


def run_guard_worker(paths: list[Path]) -> dict[str, dict]:
    proc = subprocess.run([PY, "-c", GUARD_WORKER, *map(str, paths)], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    done = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or len(done) != len(paths):
        culprit = paths[len(done)] if len(done) < len(paths) else None
        pytest.fail(f"engine read past the captured bytes (exit {proc.returncode}) "
                    f"while feeding {culprit}:\n{proc.stderr[-2000:]}")
    return {r["path"]: r for r in done}


def replay_file(path):
    from warpsniff.replay import replay

    return replay([str(path)])


def assert_counters_conserved(counters: dict, what: str):
    """Every frame ends in exactly one bucket."""
    buckets = ("decode_errors", "ignored", "held_fragments", "rtp_packets", "rtcp_packets", "sip_udp",
               "other_udp", "tcp_segments", "other_tcp", "sctp_packets")
    assert sum(counters[k] for k in buckets) == counters["frames"], (what, counters)


# --------------------------------------------------------------------------
# (a) truncation at every byte offset


@pytest.fixture(scope="module")
def samples():
    return rc.sample_captures()


def expected_after_cut(cap: rc.Capture, sample: rc.Sample, cut: int):
    """(exit code, offset the message must name or None, expected streams, complete packets)."""
    complete = rc.complete_packets(cap, cut)
    streams = rc.expected_streams(sample.rtp[:complete])
    boundaries = {end for _, end in cap.records}
    if cap.header_len:
        boundaries.add(cap.header_len)
    if cut in boundaries:
        return 0, None, streams, complete
    if cut < 4 or cut < cap.header_len:
        return 2, None, streams, complete  # inside the file header: no record yet
    _, start = rc.record_at(cap, cut)
    return 2, start, streams, complete


def check_truncated_result(path, cap, sample, cut, rc_, stdout, stderr, streams_json):
    """Returns a list of problems (empty when the result is right)."""
    problems = []
    want_rc, offset, want_streams, complete = expected_after_cut(cap, sample, cut)
    where = f"{path.name} cut at {cut}"
    if rc_ != want_rc:
        problems.append(f"{where}: exit {rc_}, expected {want_rc}; stderr {stderr!r}")
    lines = stderr_lines(stderr)
    if want_rc == 0 and lines:
        problems.append(f"{where}: unexpected stderr {lines!r}")
    if want_rc == 2:
        if len(lines) != 1:
            problems.append(f"{where}: expected one stderr line, got {lines!r}")
        elif str(path) not in lines[0]:
            problems.append(f"{where}: message does not name the file: {lines[0]!r}")
        elif offset is not None and f"offset {offset}" not in lines[0]:
            problems.append(f"{where}: message does not name offset {offset}: {lines[0]!r}")
    if not isinstance(streams_json, list):
        problems.append(f"{where}: --streams-json not written: {streams_json!r}")
    elif rc.comparable(streams_json) != want_streams:
        problems.append(f"{where}: streams {rc.comparable(streams_json)!r} != expected {want_streams!r}")
    if complete:
        # the table and the summary are printed for what was read
        if f"{complete} frames" not in stdout:
            problems.append(f"{where}: summary does not say {complete} frames: {stdout!r}")
        for s in want_streams:
            if f"0x{s['ssrc']:08X}" not in stdout:
                problems.append(f"{where}: table lacks stream 0x{s['ssrc']:08X}")
        listed = {s["ssrc"] for s in want_streams}
        for p in sample.rtp:
            if p is not None and p.ssrc not in listed and f"0x{p.ssrc:08X}" in stdout:
                problems.append(f"{where}: table lists stream 0x{p.ssrc:08X} that has not passed probation")
    return problems


@pytest.mark.parametrize("name", ["sample.pcap", "sample-nsec-be.pcap", "sample.pcapng"])
def test_truncated_at_every_offset(tmp_path, samples, name):
    cap, sample = samples[name]
    paths = []
    for cut in range(len(cap.data) + 1):
        paths.append(write(tmp_path, f"cut{cut:05d}-{name}", cap.data[:cut]))
    results = run_cli_worker(paths)
    problems = []
    for cut, path in enumerate(paths):
        r = results[str(path)]
        problems += check_truncated_result(path, cap, sample, cut, r["rc"], r["stdout"], r["stderr"], r["streams"])
    assert not problems, f"{len(problems)} problems, first ones:\n" + "\n".join(problems[:15])


@pytest.mark.parametrize("name", ["sample.pcap", "sample.pcapng"])
def test_truncated_cli_process(tmp_path, samples, name):
    """The same, through `python3 -m warpsniff` processes, at every record
    boundary and in the middle of every record."""
    cap, sample = samples[name]
    cuts = {0, 1, 3, len(cap.data)} | {e for _, e in cap.records} | {(s + e) // 2 for s, e in cap.records}
    if cap.header_len:
        cuts |= {cap.header_len - 1, cap.header_len}

    def one(cut):
        path = write(tmp_path, f"cut{cut:05d}-{name}", cap.data[:cut])
        jpath = tmp_path / f"cut{cut:05d}.json"
        proc = cli(path, "--streams-json", jpath)
        streams = json.loads(jpath.read_text()) if jpath.exists() else None
        return cut, path, proc, streams

    problems = []
    with ThreadPoolExecutor(4) as ex:
        for cut, path, proc, streams in ex.map(one, sorted(cuts)):
            assert_not_crashed(proc, f"{name} cut at {cut}")
            problems += check_truncated_result(path, cap, sample, cut, proc.returncode, proc.stdout, proc.stderr,
                                               streams)
    assert not problems, "\n".join(problems[:15])


@pytest.mark.parametrize("name", ["sample.pcap", "sample.pcapng"])
def test_truncated_stdin_pipe(tmp_path, samples, name):
    """Standard input goes through the read() path, not the memory map."""
    cap, sample = samples[name]
    start, end = cap.records[-2]
    problems = []
    for cut in (end, (start + end) // 2, len(cap.data) - 1):
        proc = subprocess.run([PY, "-m", "warpsniff", "replay", "-", "--streams-json", "-"], input=cap.data[:cut],
                              capture_output=True, timeout=60, cwd=REPO)
        assert proc.returncode >= 0, f"cut {cut}: killed by signal {-proc.returncode}"
        want_rc, offset, want_streams, _ = expected_after_cut(cap, sample, cut)
        err = stderr_lines(proc.stderr.decode())
        if proc.returncode != want_rc:
            problems.append(f"cut {cut}: exit {proc.returncode}, expected {want_rc}: {err}")
        if want_rc == 2 and (len(err) != 1 or (offset is not None and f"offset {offset}" not in err[0])):
            problems.append(f"cut {cut}: expected one line naming offset {offset}, got {err}")
        got = rc.comparable(json.loads(proc.stdout))
        if got != want_streams:
            problems.append(f"cut {cut}: streams {got} != {want_streams}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# (b) files that are not captures


@pytest.mark.parametrize("content,pattern", [
    (b"\x00" * 100, "magic"),
    (b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n" * 3, "magic"),
    (b"\xd4\xc3\xb2", "short"),
    (b"", "empty"),
], ids=["zeros", "text", "three-bytes", "empty"])
def test_not_a_capture(tmp_path, content, pattern):
    path = write(tmp_path, "notacapture.pcap", content)
    jpath = tmp_path / "out.json"
    proc = cli(path, "--streams-json", jpath)
    assert_not_crashed(proc, pattern)
    assert proc.returncode == 2, proc.stderr
    line = assert_one_line(proc, path, pattern)
    assert pattern in line.lower(), line
    assert json.loads(jpath.read_text()) == []


def test_directory(tmp_path):
    d = tmp_path / "adir.pcap"
    d.mkdir()
    proc = cli(d)
    assert_not_crashed(proc, "directory")
    assert proc.returncode == 2
    assert "directory" in assert_one_line(proc, d, "directory").lower()


def test_missing_file(tmp_path):
    path = tmp_path / "does-not-exist.pcap"
    proc = cli(path)
    assert_not_crashed(proc, "missing")
    assert proc.returncode == 2
    line = assert_one_line(proc, path, "missing")
    assert "no such file" in line.lower(), line


@pytest.mark.parametrize("kind", ["pcap", "pcap-be-nsec", "pcapng-shb", "pcapng-shb-idb"])
def test_headers_only(tmp_path, kind):
    if kind == "pcap":
        data = rc.pcap_bytes([]).data
    elif kind == "pcap-be-nsec":
        data = rc.pcap_bytes([], nsec=True, big_endian=True).data
    elif kind == "pcapng-shb":
        data = rc.pcapng_shb()
    else:
        data = rc.pcapng_shb() + rc.pcapng_idb()
    path = write(tmp_path, f"{kind}.cap", data)
    jpath = tmp_path / "out.json"
    proc = cli(path, "--streams-json", jpath)
    assert_not_crashed(proc, kind)
    assert proc.returncode == 0, proc.stderr
    assert stderr_lines(proc.stderr) == []
    assert json.loads(jpath.read_text()) == []
    assert "0 frames" in proc.stdout


def test_bad_file_among_good_ones(tmp_path, samples):
    """A file that cannot be read does not hide the others' results."""
    cap, sample = samples["sample.pcap"]
    good = write(tmp_path, "good.pcap", cap.data)
    bad = write(tmp_path, "bad.pcap", b"\x01\x02\x03\x04" * 10)
    missing = tmp_path / "missing.pcap"
    jpath = tmp_path / "out.json"
    proc = cli(bad, good, missing, "--streams-json", jpath)
    assert_not_crashed(proc, "mixed")
    assert proc.returncode == 2
    lines = stderr_lines(proc.stderr)
    assert len(lines) == 2 and str(bad) in lines[0] and str(missing) in lines[1], lines
    assert rc.comparable(json.loads(jpath.read_text())) == rc.expected_streams(sample.rtp)


# --------------------------------------------------------------------------
# (c) impossible record and block headers


@pytest.mark.parametrize("case", rc.structural_cases(), ids=lambda c: c.name)
def test_structural_damage(tmp_path, case):
    path = write(tmp_path, case.name, case.data)
    jpath = tmp_path / "out.json"
    proc = cli(path, "--streams-json", jpath)
    assert_not_crashed(proc, case.name)
    assert proc.returncode == case.rc, proc.stderr
    if case.rc == 2:
        line = assert_one_line(proc, path, case.name)
        assert f"offset {case.offset}" in line, line
    else:
        assert stderr_lines(proc.stderr) == []
    assert rc.comparable(json.loads(jpath.read_text())) == rc.expected_streams(case.rtp)
    result = replay_file(path)
    assert result.counters["frames"] == case.frames
    assert result.counters["rtp_packets"] == sum(1 for p in case.rtp if p is not None)
    for key, value in case.decode_errors.items():
        assert result.decode_errors[key] == value, (key, result.decode_errors)


def test_spb_without_room_for_its_length(tmp_path):
    """A 12-byte Simple Packet Block has no original-length field and no data.
    It must be refused as corrupt, or yield an empty frame, never bytes from
    outside the block. The block that follows starts with 0x45, so a frame
    read from it would decode as an IPv4 header (an ip_header error)."""
    shb, idb = rc.pcapng_shb(), rc.pcapng_idb(rc.LINKTYPE_RAW, snaplen=0, tsresol=None)
    spb = struct.pack("<III", 3, 12, 12)
    after = rc.pcapng_block(0x45, b"\x45" * 40)  # an unknown block type: skipped when read as a block
    path = write(tmp_path, "spb12.pcapng", shb + idb + spb + after)
    proc = cli(path)
    assert_not_crashed(proc, "spb12")
    if proc.returncode == 2:
        assert f"offset {len(shb) + len(idb)}" in assert_one_line(proc, path, "spb12")
        return
    assert proc.returncode == 0, proc.stderr
    result = replay_file(path)
    assert result.counters["frames"] == 1
    errors = {k: v for k, v in result.decode_errors.items() if v}
    assert errors in ({"short_link_header": 1}, {"snapped": 1}), errors


# --------------------------------------------------------------------------
# (d) length fields that lie


@pytest.fixture(scope="module")
def lies():
    return rc.lying_frames()


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_lying_lengths_are_counted(tmp_path, lies, fmt):
    data = (rc.pcap_bytes if fmt == "pcap" else rc.pcapng_bytes)(lies.frames).data
    path = write(tmp_path, f"lies.{fmt}", data)
    result = replay_file(path)
    assert result.errors == []
    assert result.decode_errors == {k: lies.errors.get(k, 0) for k in DECODE_ERROR_KEYS}, lies.labels
    assert result.counters["decode_errors"] == len(lies.labels)
    assert result.counters["frames"] == len(lies.frames)
    assert result.counters["rtp_packets"] == len(lies.good)
    from warpsniff.report import streams_to_dicts

    assert rc.comparable(streams_to_dicts(result.streams)) == rc.expected_streams(lies.good)
    proc = cli(path, "-q")
    assert_not_crashed(proc, "lies")
    assert proc.returncode == 0, proc.stderr


def test_lying_lengths_each_alone(lies):
    """One lie per engine, through Engine.feed: each lands in its own counter."""
    from warpsniff._engine import Engine

    lying = [f for f in lies.frames if f[2] is not None]
    assert len(lying) == len(lies.labels)
    for label, counter, (ts, frame, origlen) in zip(lies.labels, lies.counters, lying):
        eng = Engine()
        eng.feed(frame, ts, 1, origlen)
        got = {k: v for k, v in eng.decode_errors().items() if v}
        assert got == {counter: 1}, (label, got)
        assert eng.counters()["rtp_packets"] == 0, label


def test_lying_lengths_never_read_past_the_frame(tmp_path, lies):
    path = write(tmp_path, "lies.pcap", rc.pcap_bytes(lies.frames).data)
    got = run_guard_worker([path])[str(path)]
    assert got["decode_errors"] == {k: lies.errors.get(k, 0) for k in DECODE_ERROR_KEYS}
    assert got["counters"]["rtp_packets"] == len(lies.good)


def test_fragments_with_a_hole_are_not_delivered():
    """Fragment 1 covers bytes 1000..1007 (more fragments follow), fragment
    2 is the last one and covers bytes 8..15: bytes 0..7, the UDP header,
    never arrived, so no datagram may come out of this."""
    from warpsniff._engine import Engine

    eng = Engine()
    far = rc.ether(rc.ipv4("192.0.2.1", "192.0.2.2", 17, b"A" * 8, ident=77, frag=0x2000 | 125))
    last = rc.ether(rc.ipv4("192.0.2.1", "192.0.2.2", 17, b"B" * 8, ident=77, frag=1))
    eng.feed(far, rc.T0_NS)
    eng.feed(last, rc.T0_NS + 1000)
    c = eng.counters()
    assert c["fragments"] == 2
    assert c["reassembled"] == 0, c
    assert c["other_udp"] + c["rtp_packets"] + c["rtcp_packets"] + c["sip_udp"] == 0, c


def test_empty_udp_payload_on_rtp_ports_not_read(tmp_path):
    """Regression: the TURN ChannelData check once read the first payload
    byte of an empty datagram (ws_engine.c, p[0] before n >= 16)."""
    frame = rc.ether(rc.ipv4("192.0.2.1", "192.0.2.2", 17, rc.udp(40000, 50000, b"")))
    path = write(tmp_path, "empty-udp.pcap", rc.pcap_bytes([(rc.T0_NS, frame)]).data)
    got = run_guard_worker([path])[str(path)]
    assert got["counters"]["other_udp"] == 1


# --------------------------------------------------------------------------
# (e) garbage


GARBAGE_SEED = 0x5EED_0BAD


@pytest.fixture(scope="module")
def garbage_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("garbage")
    rng = random.Random(GARBAGE_SEED)
    files = {}
    for lt in rc.LINKTYPES_DECODED + rc.LINKTYPES_UNDECODED:
        p = d / f"garbage-lt{lt}.pcap"
        p.write_bytes(rc.garbage_link_capture(rng, lt, 1500))
        files[lt] = p
    data, counts = rc.garbage_payload_capture(rng, 1500)
    p = d / "garbage-payloads.pcap"
    p.write_bytes(data)
    return {"links": files, "payloads": (p, counts), "per_link": 1500}


def test_garbage_payloads_on_rtp_and_sip_ports(garbage_files):
    path, counts = garbage_files["payloads"]
    result = replay_file(path)
    c = result.counters
    assert result.errors == []
    assert c["frames"] == sum(counts.values())
    assert c["decode_errors"] == 0 and not any(result.decode_errors.values())
    assert c["sip_udp"] == counts["udp_sip"]
    assert c["tcp_segments"] == counts["tcp_sip"]
    assert c["rtp_packets"] + c["rtcp_packets"] + c["other_udp"] == counts["udp_rtp"]
    assert_counters_conserved(c, "payloads")
    proc = cli(path, "-q")
    assert_not_crashed(proc, "garbage payloads")
    assert proc.returncode == 0, proc.stderr


def test_garbage_frames_every_linktype(garbage_files):
    links = garbage_files["links"]
    n = garbage_files["per_link"]
    for lt, path in links.items():
        result = replay_file(path)
        assert result.errors == [], lt
        assert result.counters["frames"] == n, lt
        assert_counters_conserved(result.counters, f"linktype {lt}")
        if lt in rc.LINKTYPES_UNDECODED:
            assert result.decode_errors["unsupported_linktype"] == n, (lt, result.decode_errors)
        else:
            assert result.decode_errors["unsupported_linktype"] == 0, lt
    proc = cli(*links.values(), "-q")
    assert_not_crashed(proc, "garbage frames")
    assert proc.returncode == 0, proc.stderr


def test_garbage_never_read_past_the_frame(garbage_files):
    """Engine.feed with the frame's last byte just before an inaccessible
    page, and the same counters as reading the file."""
    paths = list(garbage_files["links"].values()) + [garbage_files["payloads"][0]]
    got = run_guard_worker(paths)
    for path in paths:
        want = replay_file(path)
        g = got[str(path)]
        assert g["decode_errors"] == want.decode_errors, path.name
        same = {k: v for k, v in want.counters.items() if k not in ("first_ns", "last_ns")}
        assert {k: g["counters"][k] for k in same} == same, path.name


def test_sip_scanner_garbage_never_read_past_the_message(tmp_path):
    """The native SIP scanner on every prefix of a few messages and on
    seeded mutations, each ending just before an inaccessible page."""
    messages = rc.sip_garbage(random.Random(GARBAGE_SEED), 3000)
    path = tmp_path / "sip-messages.bin"
    path.write_bytes(b"".join(struct.pack("<I", len(m)) + m for m in messages))
    proc = subprocess.run([PY, "-c", SIP_GUARD_WORKER, str(path)], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert proc.returncode == 0, f"parse_sip crashed (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got["messages"] == len(messages)
    assert got["outside"] == [], got["outside"]
    assert got["statuses"].get("ok", 0) > 0, got["statuses"]


# --------------------------------------------------------------------------
# (f) command line


@pytest.mark.parametrize("args", [
    ["--rtp-ports", "abc"],
    ["--rtp-ports", "70000-80000"],
    ["--rtp-ports", "2000-1000"],
    ["--rtp-ports", "1-2-3"],
    ["--sip-ports", "0"],
    ["--sip-ports", "x"],
    ["--payload-type", "96"],
    ["--payload-type", "200=8000"],
    ["--max-streams", "0"],
    ["--max-streams", "many"],
    ["--idle-timeout", "soon"],
    ["--bogus-option"],
    [],  # FILE argument is missing below
], ids=lambda a: " ".join(a) or "no-file")
def test_usage_errors(tmp_path, samples, args):
    path = write(tmp_path, "ok.pcap", samples["sample.pcap"][0].data)
    proc = cli(*args, *([path] if args else []))
    assert_not_crashed(proc, args)
    assert proc.returncode == 2, (args, proc.stderr)
    assert stderr_lines(proc.stderr), args
    assert proc.stdout == ""


@pytest.mark.parametrize("args", [
    ["--max-streams", str(1 << 32)],
    ["--payload-type", "96=-1"],
    ["--payload-type", f"96={1 << 32}"],
], ids=lambda a: " ".join(a))
def test_out_of_range_numbers_are_usage_errors(tmp_path, samples, args):
    path = write(tmp_path, "ok.pcap", samples["sample.pcap"][0].data)
    proc = cli(*args, path)
    assert proc.returncode == 2, (args, proc.stderr)
    assert len(stderr_lines(proc.stderr)) == 1


@pytest.mark.parametrize("target", ["missing-dir", "under-a-file", "a-directory"])
def test_streams_json_unwritable(tmp_path, samples, target):
    path = write(tmp_path, "ok.pcap", samples["sample.pcap"][0].data)
    if target == "missing-dir":
        out = tmp_path / "no" / "such" / "dir" / "streams.json"
    elif target == "under-a-file":
        out = path / "streams.json"
    else:
        out = tmp_path / "adir"
        out.mkdir()
    proc = cli(path, "-q", "--streams-json", out)
    assert_not_crashed(proc, target)
    assert proc.returncode == 2, proc.stderr
    assert_one_line(proc, out, target)
