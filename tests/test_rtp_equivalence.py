"""The RTP table (ext/rtp/ws_rtp.c) against the table as it was before bound
streams stopped reading their binding's generation on every packet, kept as
the oracle in tests/native/rtp_reference/ (commit a17f81c, byte for byte):
tests/native/rtp_diff.c drives both builds through the same seeded random
scenarios (packets in and out of order, telephone-events and comfort noise,
bindings made, re-made for the same or another call, released, latched and
swept, streams expired and evicted, the payload type map changed) and after
every step compares every stream record (active and ended), every counter and
every return code, byte for byte.

Built as setup.py builds the engine and under AddressSanitizer and
UndefinedBehaviorSanitizer; and the harness must notice the new binding code
broken on purpose.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import native_build

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["tests/native/rtp_diff.c", "tests/native/rtp_current.c", "tests/native/rtp_reference.c"]
INCLUDES = ["ext/rtp"]   # the reference's header finds ../ws_common.h through it
BUILDS = {"release": native_build.RELEASE, "sanitized": native_build.SANITIZED}


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> dict:
    native_build.require_gcc()
    return native_build.build_each(REPO, SOURCES, INCLUDES, tmp_path_factory.mktemp("rtp_diff"), "rtp_diff", BUILDS)


def run(exe: Path, scenarios: int, steps: int, seed: int = 20251128) -> tuple[int, dict, str]:
    proc = subprocess.run([str(exe), "--scenarios", str(scenarios), "--steps", str(steps), "--seed", str(seed)],
                          capture_output=True, text=True, errors="replace", timeout=300)
    lines = proc.stdout.strip().splitlines()
    counts = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return proc.returncode, counts, proc.stdout[:3000] + proc.stdout[-1000:] + proc.stderr[-4000:]


def test_same_records_and_counters_at_every_step(harness):
    rc, counts, out = run(harness["release"], 600, 3000)
    assert rc == 0 and counts["differences"] == 0, out
    # the scenarios reach what changed: bound streams, their bindings re-made
    # for another call (a new stream) and released (the stream keeps its call)
    assert counts["steps"] == 1_800_000 and counts["packets"] > 1_000_000, counts
    assert counts["bound_seen"] > 1_000_000 and counts["ended_rebound"] > 10_000, counts
    assert counts["unbound_by_release"] > 100_000 and counts["sweeps"] > 1000, counts


def test_sanitized_build(harness):
    rc, counts, out = run(harness["sanitized"], 60, 3000, seed=7)
    assert rc == 0 and "runtime error" not in out and "Sanitizer" not in out, out
    assert counts["differences"] == 0, out


# Breakages of the new binding code, one at a time: the harness must report each.
BREAKAGES = [
    ("    t->bind_gens[slot] = t->bind_gen_next++;\n    bound_mark_rebind(t, slot);",
     "    t->bind_gens[slot] = t->bind_gen_next++;"),
    ("    t->bind_gens[slot] = 0;\n    bound_mark_rebind(t, slot);", "    t->bind_gens[slot] = 0;"),
    ("    s->cached_pt.pt = 0xff;\n    bound_link", "    bound_link"),
    ("        s->flags &= (uint8_t)~WS_STREAM_REBIND;\n        s->cached_pt.pt = 0xff;",
     "        s->flags &= (uint8_t)~WS_STREAM_REBIND;"),
    ("        bound_unlink(t, slot, s->binding);\n        s->flags &= (uint8_t)~(WS_STREAM_BOUND | WS_STREAM_REBIND);",
     "        s->flags &= (uint8_t)~WS_STREAM_REBIND;"),
    ("    r->flags = s->flags & WS_STREAM_RECORD_FLAGS;", "    r->flags = s->flags;"),
]


@pytest.mark.parametrize("find,replace", BREAKAGES, ids=[str(i) for i in range(len(BREAKAGES))])
def test_a_broken_table_is_caught(tmp_path, find, replace):
    native_build.require_gcc()
    tree = native_build.broken_copy(REPO, tmp_path / "tree", "ext/rtp/ws_rtp.c", find, replace)
    exe = native_build.build(tree, SOURCES, INCLUDES, tmp_path / "rtp_diff_broken", BUILDS["release"])
    rc, counts, out = run(exe, 300, 3000)
    assert rc == 1 and counts["differences"] > 0 and "DIFFERENCE" in out, out
