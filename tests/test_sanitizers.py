"""The native engine under AddressSanitizer and UndefinedBehaviorSanitizer.

tests/native/harness.c (the engine over whole files, as shipped) and
tests/native/exact_frames.c (every frame copied into a heap block of exactly
its captured length, so ASan sees any read past the captured bytes) are
built with every ext/*/*.c source and run over: the third-party captures in
../shared/pcaps/public (when present), the damaged files of
test_bad_input.py, and a seeded mutation corpus. No sanitizer report is
allowed and the exit code must be 0 or 2. tests/native/sip_messages.c does
the same for the native SIP scanner, which the Python side calls.

Many files go to one process; when a report aborts it, the file being read
is known from the per-file lines printed so far, and the rest are rerun.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import robust_captures as rc
from oracle import SHARED_PCAPS

REPO = Path(__file__).resolve().parents[1]
NATIVE = Path(__file__).resolve().parent / "native"
SAN_FLAGS = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
MUTATION_SEED = 20240607
MUTANTS = 600
BATCH = 400
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"

# Per-file progress lines must reach the pipe before a sanitizer aborts the
# process, so stdout is made line-buffered by a constructor linked in.
LINE_BUFFERED_C = """#include <stdio.h>
__attribute__((constructor)) static void ws_test_line_buffered_stdout(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
}
"""

REPORT_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|AddressSanitizer:DEADLYSIGNAL|"
                       r"UndefinedBehaviorSanitizer")


@dataclass
class Tool:
    path: Path
    marker: str  # start of the line printed once per input file
    env: dict


@dataclass
class Finding:
    what: str       # file (or batch) that triggered it
    exit: int
    report: str

    def summary(self) -> str:
        lines = [ln for ln in self.report.splitlines()
                 if REPORT_RE.search(ln) or ln.lstrip().startswith(("#0", "#1", "#2", "SUMMARY"))]
        lines = lines or self.report.splitlines()[-5:]
        return f"{self.what} (exit {self.exit}):\n  " + "\n  ".join(lines[:12])


def _compile(out: Path, driver: Path, build_dir: Path) -> Path:
    sources = sorted(str(p) for p in (REPO / "ext").glob("*/*.c"))
    assert sources, "no engine sources under ext/*/*.c"
    build_dir.mkdir(exist_ok=True)
    unbuf = build_dir / "line_buffered.c"
    unbuf.write_text(LINE_BUFFERED_C)
    cmd = ["gcc", *SAN_FLAGS, "-std=c11", "-D_GNU_SOURCE", "-I", str(REPO / "ext"), str(driver),
           str(unbuf), *sources, "-lm", "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"sanitizer build failed:\n{' '.join(cmd)}\n{proc.stderr[-4000:]}")
    return out


def _env(detect_leaks: bool) -> dict:
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = f"detect_leaks={int(detect_leaks)}:abort_on_error=0:handle_segv=1:handle_sigbus=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    return env


@pytest.fixture(scope="module")
def tools(tmp_path_factory) -> dict[str, Tool]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: cannot build the sanitizer harness")
    d = tmp_path_factory.mktemp("sanitizers")
    with ThreadPoolExecutor(3) as ex:
        harness, exact, sip, sdp = ex.map(lambda a: _compile(*a), [
            (d / "harness", NATIVE / "harness.c", d / "harness.d"),
            (d / "exact_frames", NATIVE / "exact_frames.c", d / "exact_frames.d"),
            (d / "sip_messages", NATIVE / "sip_messages.c", d / "sip_messages.d"),
            (d / "sdp_bodies", NATIVE / "sdp_bodies.c", d / "sdp_bodies.d"),
        ])
    # LeakSanitizer needs ptrace; where it cannot run it says so on every exit
    probe = subprocess.run([str(harness)], capture_output=True, text=True, env=_env(True), timeout=60)
    leaks = "LeakSanitizer has encountered a fatal error" not in probe.stderr
    env = _env(leaks)
    return {"harness": Tool(harness, "frames=", env), "exact": Tool(exact, "done frames=", env),
            "sip": Tool(sip, "done messages=", env), "sdp": Tool(sdp, "done bodies=", env)}


def run_tool(tool: Tool, paths: list, args: tuple = ()) -> tuple[list[Finding], set[int]]:
    """Runs the tool over paths in batches. Returns (findings, exit codes of the
    clean batches)."""
    pending = [str(p) for p in paths]
    findings, exits = [], set()
    while pending:
        chunk, pending = pending[:BATCH], pending[BATCH:]
        proc = subprocess.run([str(tool.path), *args, *chunk], capture_output=True, text=True, errors="replace",
                              env=tool.env, timeout=120)
        done = sum(1 for line in proc.stdout.splitlines() if line.startswith(tool.marker))
        if REPORT_RE.search(proc.stderr) or proc.returncode not in (0, 2):
            if done < len(chunk):
                findings.append(Finding(chunk[done], proc.returncode, proc.stderr + proc.stdout[-1000:]))
                pending = chunk[done + 1:] + pending
            else:  # after the last file: a leak report at exit
                findings.append(Finding(f"batch {chunk[0]} .. {chunk[-1]}", proc.returncode,
                                        proc.stderr + proc.stdout[-1000:]))
        else:
            assert done == len(chunk), (done, len(chunk), proc.stdout[-2000:])
            exits.add(proc.returncode)
    return findings, exits


def assert_clean(findings: list[Finding], exits: set[int]):
    assert not findings, f"{len(findings)} sanitizer findings:\n" + "\n".join(f.summary() for f in findings[:8])
    assert exits <= {0, 2}, exits


# --------------------------------------------------------------------------
# corpora


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> dict[str, list[Path]]:
    """The damaged inputs of test_bad_input.py, written to files."""
    d = tmp_path_factory.mktemp("damaged")
    out: dict[str, list[Path]] = {"truncated": [], "structural": [], "other": [], "garbage": []}

    def put(group, name, data):
        p = d / name
        p.write_bytes(data)
        out[group].append(p)

    for name, (cap, _sample) in rc.sample_captures().items():
        for cut in range(len(cap.data) + 1):
            put("truncated", f"cut{cut:05d}-{name}", cap.data[:cut])
    for case in rc.structural_cases():
        put("structural", case.name, case.data)
    lies = rc.lying_frames()
    put("other", "lies.pcap", rc.pcap_bytes(lies.frames).data)
    put("other", "lies.pcapng", rc.pcapng_bytes(lies.frames).data)
    put("other", "zeros.pcap", b"\0" * 100)
    put("other", "headers-only.pcap", rc.pcap_bytes([]).data)
    put("other", "headers-only.pcapng", rc.pcapng_shb() + rc.pcapng_idb())
    (d / "a-directory.pcap").mkdir()
    out["other"].append(d / "a-directory.pcap")
    out["other"].append(d / "missing.pcap")
    rng = random.Random(0x5EED_0BAD)
    for lt in rc.LINKTYPES_DECODED + rc.LINKTYPES_UNDECODED:
        put("garbage", f"garbage-lt{lt}.pcap", rc.garbage_link_capture(rng, lt, 1500))
        # the same frames in pcapng, whose per-interface link type is 16 bits
        frames = [(rc.T0_NS + i, *rc.garbage_frame(rng, lt)) for i in range(300)]
        put("garbage", f"garbage-lt{lt}.pcapng", rc.pcapng_bytes(frames, linktype=lt).data)
    put("garbage", "garbage-payloads.pcap", rc.garbage_payload_capture(rng, 1500)[0])
    return out


@pytest.fixture(scope="module")
def mutants(tmp_path_factory) -> list[Path]:
    """A seeded mutation corpus: bytes flipped, overwritten, inserted and
    deleted in valid captures built here."""
    d = tmp_path_factory.mktemp("mutants")
    lies = rc.lying_frames()
    rng = random.Random(MUTATION_SEED)
    sip_rtp = rc.sample_packets(payload_len=160)
    bases = [cap.data for cap, _ in rc.sample_captures().values()] + [
        rc.pcap_bytes(lies.frames).data,
        rc.pcapng_bytes(lies.frames).data,
        rc.pcap_bytes(sip_rtp.frames, linktype=rc.LINKTYPE_ETHERNET).data,
        rc.pcap_bytes(rc.garbage_udp_frames(rng, 40, 50000)).data,
        rc.pcap_bytes(rc.rich_frames()).data,
        rc.pcapng_bytes(rc.rich_frames()).data,
    ]
    paths = []
    for k in range(MUTANTS):
        base = bases[k % len(bases)]
        data = rc.mutate(base, rng, rng.choice((1, 1, 2, 3, 5, 8, 16, 40)))
        ext = "pcapng" if base[:4] == PCAPNG_MAGIC else "pcap"
        p = d / f"mutant{k:04d}.{ext}"
        p.write_bytes(data)
        paths.append(p)
    return paths


def public_captures() -> list[Path]:
    if not SHARED_PCAPS.is_dir():
        pytest.skip(f"third-party captures not present at {SHARED_PCAPS}")
    magics = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a")
    found = []
    for p in sorted(SHARED_PCAPS.rglob("*")):
        if p.is_file():
            with open(p, "rb") as fh:
                if fh.read(4) in magics:
                    found.append(p)
    assert found, f"no pcap/pcapng files in {SHARED_PCAPS}"
    return found


# --------------------------------------------------------------------------
# the sanitizers themselves


def test_sanitizer_reports_are_detected(tmp_path, tools):
    """A deliberate heap over-read must be caught by this setup, or every
    'clean' result below would mean nothing."""
    src = tmp_path / "oob.c"
    src.write_text("#include <stdlib.h>\n#include <stdio.h>\nint main(int c, char **v)\n"
                   "{ char *p = malloc(4); p[0] = 1; printf(\"%d\\n\", p[c + 3]); free(p); return 0; }\n")
    exe = tmp_path / "oob"
    subprocess.run(["gcc", *SAN_FLAGS, str(src), "-o", str(exe)], check=True, capture_output=True, timeout=120)
    findings, _ = run_tool(Tool(exe, "never", tools["harness"].env), ["x"])
    assert len(findings) == 1 and findings[0].exit != 0
    assert re.search(r"heap-buffer-overflow|runtime error: load of address", findings[0].report)


# --------------------------------------------------------------------------
# corpus runs


@pytest.fixture(scope="module")
def corpus_run(tools, damaged, mutants):
    def run(corpus: str, tool: str):
        if corpus == "public":
            paths = public_captures()
        elif corpus == "mutants":
            paths = mutants
        else:
            paths = damaged[corpus]
        return run_tool(tools[tool], paths)

    return run


@pytest.mark.parametrize("tool", ["harness", "exact"])
@pytest.mark.parametrize("corpus", ["public", "truncated", "structural", "other", "garbage", "mutants"])
def test_corpus(corpus_run, corpus, tool):
    """Third-party captures, the damaged files of test_bad_input.py (every
    truncation, impossible headers, lying lengths, garbage for every link
    type) and 600 seeded mutants: no sanitizer report, exit 0 or 2."""
    assert_clean(*corpus_run(corpus, tool))


def test_mutation_corpus_size(mutants):
    assert len(mutants) >= 300


def test_harness_reads_whole_files(tools, tmp_path):
    """The harness must follow every status of the run loop to the end of the
    file (it once stopped at the first one-second tick): its frame count is
    the number of records each capture was built with."""
    rng = random.Random(7)
    built = {
        "sample.pcap": rc.pcap_bytes(rc.sample_packets().frames),
        "rich.pcapng": rc.pcapng_bytes(rc.rich_frames()),
        "long.pcap": rc.pcap_bytes([(rc.T0_NS + i * 700_000_000, f) for i, (_, f) in
                                    enumerate(rc.garbage_udp_frames(rng, 200, 50000))]),
        "garbage-lt1.pcap": rc.Capture(rc.garbage_link_capture(rng, 1, 3000), packet_records=list(range(3000))),
    }
    paths = []
    for name, cap in built.items():
        paths.append(tmp_path / name)
        paths[-1].write_bytes(cap.data)
    proc = subprocess.run([str(tools["harness"].path), *map(str, paths)], capture_output=True, text=True,
                          env=tools["harness"].env, timeout=120)
    assert not REPORT_RE.search(proc.stderr), proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stdout[-2000:]
    got = [int(line.split()[0].split("=")[1]) for line in proc.stdout.splitlines() if line.startswith("frames=")]
    assert got == [len(cap.packet_records) for cap in built.values()]


def test_sip_scanner(tools, tmp_path):
    """Every prefix of a few SIP messages and seeded mutations of them."""
    messages = rc.sip_garbage(random.Random(MUTATION_SEED), 3000)
    rng = random.Random(MUTATION_SEED + 1)
    messages += [bytes(rng.randrange(256) for _ in range(rng.randrange(300))) for _ in range(300)]
    path = tmp_path / "sip-messages.bin"
    path.write_bytes(b"".join(struct.pack("<I", len(m)) + m for m in messages))
    findings, exits = run_tool(tools["sip"], [path])
    assert_clean(findings, exits)
    assert exits == {0}, "a span of a parsed message lies outside the message"


def test_sdp_scanner(tools, tmp_path):
    """Generated SDP bodies, every prefix of a few, seeded byte mutations,
    random bytes, and bodies past every limit of the scan (ws_sdp.h)."""
    from test_sdp import _body
    rng = random.Random(MUTATION_SEED + 2)
    bodies = [_body(rng) for _ in range(3000)]
    sample = (b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP6 2001:db8::1/64\r\nt=0 0\r\n"
              b"m=audio 49170/2 RTP/AVP 0 8 96 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n"
              b"a=ptime:20\r\na=rtcp:49171 IN IP4 192.0.2.1\r\na=rtcp-mux\r\na=sendonly\r\n")
    bodies += [sample[:i] for i in range(len(sample) + 1)]
    for _ in range(2000):
        b = bytearray(rng.choice(bodies[:3000]) or b"v=0")
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.choice([rng.randrange(256), 0x20, 0x2f, 0x3a, 0x3d, 0x0d, 0x0a, 0x30])
        bodies.append(bytes(b))
    bodies += [bytes(rng.randrange(256) for _ in range(rng.randrange(400))) for _ in range(300)]
    bodies += [b"v=0\r\n" + b"m=audio 1 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n" * 5000,
               b"v=0\r\nm=audio 1 RTP/AVP " + b"96 " * 100000,
               b"v=0\r\nm=audio 1 RTP/AVP 0\r\n" + b"".join(b"a=rtpmap:%d X/1\r\n" % i for i in range(1000)),
               b"v=0\r\nc=IN IP4 " + b"9" * 70000, b"v=0\r\n" + b"a" * 200000]
    path = tmp_path / "sdp-bodies.bin"
    path.write_bytes(b"".join(struct.pack("<I", len(m)) + m for m in bodies))
    findings, exits = run_tool(tools["sdp"], [path])
    assert_clean(findings, exits)
    assert exits == {0}, "a span or count of a scanned body lies outside the body or its arrays"


# --------------------------------------------------------------------------
# regression tests: reproducers of the bugs these tests found


def _run_one(tools, tool, tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return run_tool(tools[tool], [p])


def test_spb_of_12_bytes(tools, tmp_path):
    """A 12-byte SPB once made `len - 16` wrap in next_pcapng, so its frame
    was the 12 bytes after the block (past the end of the file here).
    exact_frames checks that every frame lies inside the bytes the reader
    consumed, which does not depend on what is mapped after the file."""
    assert_clean(*_run_one(tools, "exact", tmp_path, "spb12.pcapng", rc.spb_len12_case()))


def test_ipip_inner_fragment_reusing_the_outer_slot(tools, tmp_path):
    """An inner IPv4 fragment (IP-in-IP) with the outer datagram's id,
    addresses and protocol once matched the outer's still-busy reassembly
    slot in frag_add and memcpy()d that buffer onto itself."""
    a, b, ident, total = "203.0.113.1", "203.0.113.2", 0x4242, 64
    inner = rc.ipv4(a, b, 4, b"\xab" * (total - 4 - 20), ident=ident, frag=3)  # offset 24, last fragment
    inner += b"\xcd" * (total - len(inner))
    f1 = rc.ether(rc.ipv4(a, b, 4, inner[:32], ident=ident, frag=0x2000))
    f2 = rc.ether(rc.ipv4(a, b, 4, inner[32:], ident=ident, frag=32 // 8))
    data = rc.pcap_bytes([(rc.T0_NS, f1), (rc.T0_NS + 1000, f2)]).data
    assert_clean(*_run_one(tools, "harness", tmp_path, "ipip-self-overlap.pcap", data))


def test_timestamp_near_int64_max(tools, tmp_path):
    """`ts + SWEEP_INTERVAL_NS` and other capture-time arithmetic once
    overflowed int64 (UBSan) for wild pcapng time stamps."""
    frame = rc.ether(rc.ipv4("192.0.2.1", "192.0.2.2", 17, rc.udp(4000, 4002, rc.rtp(1, 1, 7))))
    data = rc.pcapng_shb() + rc.pcapng_idb() + rc.pcapng_epb(0x7FFFFFFFFFFFFFF0, frame)
    assert_clean(*_run_one(tools, "harness", tmp_path, "ts-max.pcapng", data))


def test_huge_if_tsoffset(tools, tmp_path):
    """if_tsoffset * 1e9 once overflowed int64 in parse_idb (UBSan)."""
    frame = rc.ether(rc.ipv4("192.0.2.1", "192.0.2.2", 17, rc.udp(4000, 4002, rc.rtp(1, 1, 7))))
    opts = struct.pack("<HHQ", 14, 8, 1 << 62) + struct.pack("<HH", 0, 0)
    idb = rc.pcapng_block(1, struct.pack("<HHI", 1, 0, 0) + opts)
    data = rc.pcapng_shb() + idb + rc.pcapng_epb(1, frame)
    assert_clean(*_run_one(tools, "harness", tmp_path, "tsoffset.pcapng", data))


def test_empty_udp_payload_on_rtp_ports(tools, tmp_path):
    """The TURN ChannelData check once read p[0] of an empty UDP payload."""
    frame = rc.ether(rc.ipv4("192.0.2.1", "192.0.2.2", 17, rc.udp(40000, 50000, b"")))
    data = rc.pcap_bytes([(rc.T0_NS, frame)]).data
    assert_clean(*_run_one(tools, "exact", tmp_path, "empty-udp.pcap", data))


# --------------------------------------------------------------------------
# The whole extension (engine and the Cython call tracker over it) built with
# the sanitizers, in a Python process: the tracker walks the scanner's spans
# and the SDP scan's arrays itself, so it is checked where it runs.

ASAN_REPLAY = r"""
import ctypes, sys
if sys.argv[1] == "--probe":
    # a heap read past the end, through an intercepted memcpy: must be reported
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    ctypes.string_at(libc.malloc(16), 64)
    sys.exit(0)
import os
import warpsniff._engine
assert warpsniff._engine.__file__.startswith(os.environ["PYTHONPATH"]), warpsniff._engine.__file__
from warpsniff.replay import replay
for path in sys.argv[1:]:
    r = replay([path])
    print("replayed", path, len(r.calls), r.sip["messages"], flush=True)
"""


def _mutated_sip_captures(out: Path, count: int, seed: int) -> list[Path]:
    """Calls over UDP and TCP whose every SIP message has a few random edits
    (lengths, tags, bodies, SDP lines), with their media."""
    from sipgen import Capture, Dialog, TcpConn, response, sdp

    rng = random.Random(seed)
    paths = []
    for k in range(count):
        cap = Capture()
        messages = []
        for c in range(8):
            d = Dialog(f"fuzz-{k}-{c}@192.0.2.10", from_tag=f"t{c}")
            inv = d.invite(1, body=sdp("192.0.2.10", 4000 + 2 * c, pts=((0, "PCMU", 8000), (101, "telephone-event", 8000))))
            messages += [inv, response(inv, 100), response(inv, 183, to_tag="b", body=sdp("198.51.100.20", 5000 + 2 * c)),
                         response(inv, 200, to_tag="b", body=sdp("198.51.100.20", 5000 + 2 * c, direction="sendonly")),
                         d.request("ACK", 1, to_tag="b"), d.request("UPDATE", 2, to_tag="b", body=sdp("192.0.2.10", 4100)),
                         d.request("BYE", 3, to_tag="b")]
            messages.append(response(messages[-1], 200))
        conn = TcpConn(cap, ("192.0.2.10", 40000 + k), ("198.51.100.20", 5060))
        conn.handshake(0.0)
        t = 0.01
        for msg in messages:
            raw = rc.mutate(bytes(msg), rng, rng.randint(0, 6))
            t += 0.01
            if rng.random() < 0.3:
                conn.send(t, rng.random() < 0.5, raw)
            else:
                cap.udp(t, ("192.0.2.10", 5060), ("198.51.100.20", 5060), raw)
        cap.rtp_flow(("198.51.100.20", 5000), ("192.0.2.10", 4000), 0x1234 + k, 0.05, 50)
        paths.append(cap.write(out / f"sip-fuzz-{k}.pcap"))
    return paths


@pytest.fixture(scope="module")
def sanitized_package(tmp_path_factory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: cannot build the sanitized extension")
    target = tmp_path_factory.mktemp("asan-pkg")
    env = dict(os.environ, WARPSNIFF_SANITIZE="1")
    proc = subprocess.run([os.sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                           str(REPO)], capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"sanitized build failed:\n{proc.stderr[-4000:]}")
    return target


def _run_sanitized(package: Path, args: list) -> subprocess.CompletedProcess:
    libs = [subprocess.run(["gcc", f"-print-file-name={lib}"], capture_output=True, text=True).stdout.strip()
            for lib in ("libasan.so", "libubsan.so")]
    env = _env(False)   # Python itself keeps memory to the end: leaks are not the question here
    # PYTHONMALLOC=malloc: each bytes object in a block of its own, as the messages framed in
    # Python (TCP) are, so ASan sees a read past one
    env.update(LD_PRELOAD=":".join(libs), PYTHONPATH=str(package), PYTHONMALLOC="malloc")
    return subprocess.run([os.sys.executable, "-c", ASAN_REPLAY, *map(str, args)], capture_output=True,
                          text=True, errors="replace", env=env, timeout=900, cwd=package)


def test_call_tracker_under_sanitizers(sanitized_package, tmp_path):
    probe = _run_sanitized(sanitized_package, ["--probe"])
    assert "heap-buffer-overflow" in probe.stderr, probe.stderr[-2000:]   # reports are seen
    inputs = [REPO / "pcaps" / "sample-calls.pcap"]
    inputs += _mutated_sip_captures(tmp_path, 12, MUTATION_SEED)
    if SHARED_PCAPS.is_dir():
        inputs += sorted(p for p in SHARED_PCAPS.iterdir() if p.suffix in (".pcap", ".pcapng", ".cap"))
    proc = _run_sanitized(sanitized_package, inputs)
    assert not REPORT_RE.search(proc.stderr), proc.stderr[-4000:]
    assert proc.returncode == 0, proc.stderr[-4000:]
    replayed = [line for line in proc.stdout.splitlines() if line.startswith("replayed")]
    assert len(replayed) == len(inputs)
    assert sum(int(line.split()[-1]) for line in replayed) > 1000   # SIP messages went through the tracker
