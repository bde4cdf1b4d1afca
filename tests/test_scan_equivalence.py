"""The SIP and SDP scans (ext/sip/ws_sip.c, ws_sdp.c) against the scans they
replaced, kept as the oracle in tests/native/scan_reference/ (commit a17f81c,
byte for byte): tests/native/scan_diff.c runs both on every input and every
seeded mutant of it, and every field of ws_sip_msg and ws_sdp must come out
the same, byte for byte, from the same prefilled bytes (see scan_diff.c).

Inputs: every UDP, TCP and SCTP payload of the third-party captures
(../shared/pcaps/public) and of pcaps/; the messages and bodies the test
suites generate (robust_captures, sipgen, test_sdp's body generator, the
sanitizer test's bodies past every limit); hand-made edge cases (compact and
odd-case names, folds, tabs, quotes and escapes, control bytes, bare CR/LF,
huge lines and header sections, every IPv4 address form inet_pton judges).
Mutants flip, insert, delete and repeat bytes, truncate, fold, change case,
swap header names and tokens, and insert NULs and huge runs (scan_diff.c).

Built three ways: as setup.py builds the engine (SSE2), with the
byte-at-a-time searches (WS_SCAN_SCALAR), and under AddressSanitizer and
UndefinedBehaviorSanitizer. And the harness must notice a scan broken on
purpose: a few seeded breakages of the new code each make it fail.
"""
from __future__ import annotations

import json
import random
import struct
import subprocess
from pathlib import Path

import pytest

import native_build
import robust_captures as rc
import sipgen
from oracle import SHARED_PCAPS

REPO = Path(__file__).resolve().parents[1]
NATIVE = REPO / "tests" / "native"
SOURCES = ["tests/native/scan_diff.c", "tests/native/scan_reference.c", "ext/sip/ws_sip.c", "ext/sip/ws_sdp.c",
           "ext/capture/ws_pcap.c", "ext/decode/ws_decode.c"]
INCLUDES = ["ext", "ext/sip"]
BUILDS = {"sse2": native_build.RELEASE, "scalar": [*native_build.RELEASE, "-DWS_SCAN_SCALAR"],
          "sanitized": native_build.SANITIZED}
SEED = 20251127


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> dict:
    native_build.require_gcc()
    return native_build.build_each(REPO, SOURCES, INCLUDES, tmp_path_factory.mktemp("scan_diff"), "scan_diff", BUILDS)


def run(exe: Path, files: list, mutants: int, seed: int = SEED) -> tuple[int, dict, str]:
    proc = subprocess.run([str(exe), "--mutants", str(mutants), "--seed", str(seed), *map(str, files)],
                          capture_output=True, text=True, errors="replace", timeout=600)
    lines = proc.stdout.strip().splitlines()
    counts = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return proc.returncode, counts, proc.stdout[-6000:] + proc.stderr[-6000:]


def assert_same(exe: Path, files: list, mutants: int) -> dict:
    rc_, counts, out = run(exe, files, mutants)
    assert rc_ == 0 and counts.get("differences") == 0, out
    return counts


# --------------------------------------------------------------------------
# inputs


def _records(path: Path, items: list) -> Path:
    path.write_bytes(b"".join(struct.pack("<I", len(m)) + m for m in items))
    return path


def _generated_messages(rng: random.Random) -> list:
    """SIP messages and SDP bodies as the test suites write them."""
    from test_sdp import _body

    out = list(rc.sip_messages()) + rc.sip_garbage(rng, 3000)
    for i in range(300):
        d = sipgen.Dialog(f"gen-{i}@example.test", from_tag=f"ft{i}", transport=rng.choice(["UDP", "TCP", "TLS"]))
        body = sipgen.sdp(rng.choice(["192.0.2.10", "2001:db8::5", "198.51.100.7"]), 4000 + 2 * i,
                          rng.choice([((0, "PCMU", 8000),), ((8, "PCMA", 8000), (101, "telephone-event", 8000)),
                                      ((96, "opus", 48000), (0, "PCMU", 8000))]),
                          direction=rng.choice([None, "sendonly", "recvonly", "inactive"]), pad_attrs=rng.randrange(3))
        inv = d.invite(body=body, extra=[("X-CID", f"corr-{i}")] if i % 2 else ())
        out += [inv.encode(), sipgen.response(inv, rng.choice([100, 180, 183, 200, 486]), to_tag="tt",
                                              body=body if i % 3 == 0 else b"").encode(),
                d.request("BYE", 2, to_tag="tt").encode(), d.request("ACK", 1, to_tag="tt").encode()]
    bodies = [_body(rng) for _ in range(3000)]
    bodies += [b"v=0\r\n" + b"m=audio 1 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n" * 5000,
               b"v=0\r\nm=audio 1 RTP/AVP " + b"96 " * 100000,
               b"v=0\r\nm=audio 1 RTP/AVP 0\r\n" + b"".join(b"a=rtpmap:%d X/1\r\n" % i for i in range(1000)),
               b"v=0\r\nc=IN IP4 " + b"9" * 70000, b"v=0\r\n" + b"a" * 200000]
    return out + bodies


def _ipv4_forms(rng: random.Random) -> list:
    """c= lines with every kind of IPv4 text inet_pton accepts or refuses."""
    parts = ["0", "1", "9", "10", "99", "100", "199", "200", "249", "250", "255", "256", "299", "300", "999",
             "1000", "00", "01", "007", "010", "0255", "", "a", "1a", "-1", "+1", " 1"]
    out = []
    for _ in range(4000):
        k = rng.choice([1, 2, 3, 4, 4, 4, 4, 5])
        addr = ".".join(rng.choice(parts) for _ in range(k))
        addr += rng.choice(["", "", "", ".", "/24", "/127/2", "..", ":", "x"])
        fam = rng.choice(["IP4", "IP4", "IP4", "ip4", "IP6", "XY"])
        out.append(f"v=0\r\nc=IN {fam} {addr}\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 {addr}\r\n".encode())
    return out


def _edge_messages() -> list:
    """Hand-made forms each rule of the SIP scan has to get right."""
    head = b"INVITE sip:b@example.test SIP/2.0\r\n"
    tail = b"Call-ID: e@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    lines = [
        b"From: <sip:a@x>;tag=1", b"f: sip:a@x;tag=1", b"FROM:\t<sip:a@x> ; tag = 2", b"From: \"A;tag=no\" <sip:a@x>;tag=3",
        b"From: \"A\\\"<b>\" <sip:a@x>;tag=4", b"From: <sip:a;tag=in@x>;tag=5", b"From: sip:a@x,<sip:b@x>;tag=6",
        b"From: \"<\" <sip:a@x>;TAG=7", b"From: <sip:a@x", b"From: \"unclosed <sip:a@x>;tag=8", b"From : <sip:a@x>;tag=9",
        b"To: <sip:b@x>;tag=1;tag=2", b"t: <sip:b@x>\r\n ;tag=folded", b"To: <sip:b@x>;tag=", b"To: <sip:b@x>;tag",
        b"Via: SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/UDP g;branch=z9hG4bK2", b"v: SIP/2.0/UDP h;BRANCH=z9hG4bK3",
        b"Via: SIP/2.0/UDP \"h,\";branch=x", b"Via: SIP/2.0/UDP <h,>;branch=y,z", b"Via: a\r\n\t,b,c",
        b"CSeq: 4294967295 INVITE", b"CSeq: 4294967296 INVITE", b"CSeq:  7   BYE  ", b"CSEQ: 7", b"cseq: x INVITE",
        b"Content-Length: 12a", b"l: 99999999999", b"Content-Length:", b"Content-Type: application/sdp",
        b"c: text/plain", b"Session-Expires: 1800;refresher=uac", b"x: 90", b"X-CID: abc", b"x-cid:\tdef",
        b"Max-Forwards: 70", b"Subject: hi", b"k: 100rel", b"i: other-call-id", b"Call-ID:", b"Call-ID:   ",
        b"NoColonHere", b" leading-fold: x", b"Tab\there: x", b"Bare\rCR: x", b"Nul\x00here: x", b"Esc\x1b: x",
        b"Hi\x7fgh: \x80\xff", b"Long: " + b"y" * 5000, b"Via: " + b"SIP/2.0/UDP h;branch=b," * 2000,
    ]
    out = []
    for ln in lines:
        out.append(head + ln + b"\r\n" + tail)
        out.append(head + tail.replace(b"\r\n\r\n", b"\r\n" + ln + b"\r\n\r\n"))
        out.append((head + ln + b"\r\n" + tail).replace(b"\r\n", b"\n"))
    starts = [b"SIP/2.0 200 OK", b"SIP/2.0 099 Low", b"SIP/2.0 700 High", b"SIP/2.0 20 Short", b"SIP/2.0 2000 Long",
              b"SIP/2.0 200", b"SIP/2.0  200 Space", b"invite sip:x SIP/2.0", b"INVITE  sip:x SIP/2.0",
              b"INVITE sip:x SIP/2.1", b"INVITE sip:x  SIP/2.0", b"IN VITE sip:x SIP/2.0", b"X-CUSTOM.m!%*_+`'~ sip:x SIP/2.0",
              b"OPTIONS sip:x SIP/2.0", b"SUBSCRIBE sip:x SIP/2.0", b"REGISTER sip:x SIP/2.0", b"FOO", b"",
              b"\r\n\r\nINVITE sip:x SIP/2.0"]
    for st in starts:
        out.append(st + b"\r\n" + b"Via: SIP/2.0/UDP h;branch=z\r\nFrom: <sip:a@x>;tag=1\r\n" + tail + b"v=0\r\n")
    big = head + b"".join(b"X-Pad-%05d: %s\r\n" % (i, b"p" * 60) for i in range(1200)) + tail
    out += [big, big[:65535], big[:65536], big[:65537], head + b"X: " + b"z" * 70000 + b"\r\n" + tail]
    out += [b"\r\n", b"\r\n\r\n", b"\n", b"", b"INVITE", head, head + b"Call-ID: x\r\n", head + tail[:-2]]
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("scan_corpus")
    rng = random.Random(SEED)
    items = _generated_messages(rng) + _ipv4_forms(rng) + _edge_messages()
    return _records(d / "generated.bin", items)


def captures() -> list:
    found = sorted(p for p in (REPO / "pcaps").glob("*.pcap*"))
    if SHARED_PCAPS.is_dir():
        found += sorted(p for p in SHARED_PCAPS.rglob("*") if p.is_file() and p.suffix in (".pcap", ".pcapng", ".cap"))
    return found


# --------------------------------------------------------------------------


def test_every_capture_payload_and_its_mutants(harness):
    files = captures()
    if not any(SHARED_PCAPS in p.parents for p in files):
        pytest.skip(f"third-party captures not present at {SHARED_PCAPS}")
    counts = assert_same(harness["sse2"], files, mutants=60)
    # the captures hold real SIP and SDP, and the mutants reach every status
    assert counts["sip_ok"] >= 2000 and counts["sip_bodies"] >= 300 and counts["sdp_ok"] >= 1000, counts
    assert counts["mutants"] >= 50000 and all(n > 0 for n in counts["sip_status"]), counts


def test_generated_messages_and_their_mutants(harness, corpus):
    counts = assert_same(harness["sse2"], [corpus], mutants=40)
    assert counts["inputs"] >= 12000 and counts["mutants"] >= 300000, counts
    assert counts["sip_ok"] >= 20000 and counts["sdp_ok"] >= 20000 and all(n > 0 for n in counts["sip_status"]), counts


def test_byte_at_a_time_build_gives_the_same(harness, corpus):
    assert_same(harness["scalar"], [corpus, *captures()], mutants=10)


def test_sanitized_build(harness, corpus):
    """No sanitizer report: the 16-byte loads stay inside each message (the
    harness hands every input over in a heap block of exactly its size)."""
    rc_, counts, out = run(harness["sanitized"], [corpus, *captures()], mutants=5)
    assert rc_ == 0 and "runtime error" not in out and "Sanitizer" not in out, out
    assert counts["differences"] == 0, out


# Breakages of the new scans, one at a time: the harness must report each.
BREAKAGES = [
    ("ext/sip/ws_sip.c", "if (c == '\"' && (q == p || q[-1] != '\\\\')) quote = !quote;\n        if (uri_state",
     "if (c == '\"') quote = !quote;\n        if (uri_state"),
    ("ext/sip/ws_sip.c", "            control |= more_control;\n", ""),
    ("ext/sip/ws_sip.c", "bad |= c != '\\r' && c != '\\t';", "bad |= c != '\\r' && c != '\\t' && c != 0x0b;"),
    ("ext/sip/ws_sip.c", "else if (c == ',' && !angle) branch_done = 1;", "else if (c == ',') branch_done = 1;"),
    ("ext/sip/ws_sdp.c", "            if (saw_digit && part == 0) return 0;\n", ""),
    ("ext/sip/ws_sdp.c", "if (ne - v == 8) {", "if (ne - v == 8 && v[0] != 'i') {"),
]


@pytest.mark.parametrize("path,find,replace", BREAKAGES, ids=[f"{p.split('/')[-1]}-{i}" for i, (p, _, _) in
                                                                  enumerate(BREAKAGES)])
def test_a_broken_scan_is_caught(tmp_path, harness, corpus, path, find, replace):
    tree = native_build.broken_copy(REPO, tmp_path / "tree", path, find, replace)
    exe = native_build.build(tree, SOURCES, INCLUDES, tmp_path / "scan_diff_broken", BUILDS["sse2"])
    rc_, counts, out = run(exe, [corpus], mutants=40)
    assert rc_ == 1 and counts["differences"] > 0 and "DIFFERENCE" in out, out
