"""Regenerates the bundled sample capture and its description.

    python tools/make_sample.py            # or: python -m benchmarks.synth --sample

writes pcaps/sample-calls.pcap, pcaps/sample-calls.json (ground truth) and
pcaps/README.md. The output is deterministic (seeded), so running it again
gives the same bytes with the same numpy version.
"""
from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from benchmarks import synth  # noqa: E402

SEED = 7
JITTER_MS = 2.0


def _ms(ns):
    return "-" if ns is None else f"{ns / 1e6:.0f}"


def write_readme(doc: dict, pcap_path: str) -> str:
    path = os.path.join(os.path.dirname(pcap_path), "README.md")
    name = os.path.basename(pcap_path)
    truth = os.path.splitext(name)[0] + ".json"
    t = doc["totals"]
    origin = min(c["invite_ns"] for c in doc["calls"])
    lines = [
        "# Bundled captures",
        "",
        f"## `{name}`",
        "",
        "A synthetic, deterministic capture of 20 SIP calls with G.711 media, made for tests and",
        "demos. Regenerate it (same bytes with the same numpy version) with",
        "",
        "```",
        "python tools/make_sample.py          # or: python -m benchmarks.synth --sample",
        "```",
        "",
        f"which runs `benchmarks/synth.py` with the call plan of `sample_specs(seed={SEED})`, arrival jitter",
        f"uniform in 0..{JITTER_MS:g} ms, and writes the capture, its ground truth (`{truth}`) and this file.",
        "",
        f"- {t['frames']} frames, {t['bytes']:,} bytes, classic pcap (microsecond timestamps), Ethernet,",
        "  IPv4, UDP; SIP on port 5060 between caller 10.1.0.N and callee 10.2.0.N (N = call + 1).",
        f"- {t['sip_messages']} SIP messages, {t['streams']} RTP streams, {t['rtp_packets']} RTP packets "
        f"({t['rtp_dropped']} dropped before capture).",
        "- Every call: INVITE with an SDP offer (PCMU and PCMA with `a=rtpmap`, telephone-event 101 with",
        "  `a=fmtp:101 0-16`, ptime 20), 100 Trying, 180 Ringing, 200 OK with the SDP answer (one G.711",
        "  codec + 101), ACK, RTP both ways every 20 ms with 160-byte payloads, BYE, 200 OK.",
        "- RTP: random SSRC, initial sequence number and timestamp per stream; marker bit on the first",
        "  packet; UDP checksum 0 (allowed for IPv4); IP checksums valid.",
        "- Variants: call 3 is refused with 486 Busy Here (INVITE, 100, 486, ACK; no media); call 7 is",
        "  CANCELled while ringing (INVITE, 100, 180, CANCEL, 200 for the CANCEL, 487, ACK; no media);",
        "  call 11 answers with 183 Session Progress carrying SDP, and the callee's media starts before",
        "  the 200 OK (early media, same SSRC afterwards); call 5's caller->callee stream loses exactly",
        "  3 of its 300 packets (1 %); call 14's caller sends DTMF `1` and `#` as RFC 4733 events",
        "  (PT 101, 3 updates + 3 end packets each, in the voice stream's sequence space).",
        "",
        "### Calls",
        "",
        "| call | kind | final | codec | caller -> callee | INVITE at (ms) | answer (ms) | end (ms) | note |",
        "|---:|---|---:|---|---|---:|---:|---:|---|",
    ]
    for c in doc["calls"]:
        rel = lambda v: None if v is None else v - origin  # noqa: E731
        lines.append(
            f"| {c['call']} | {c['kind']} | {c['final']} | {c['codec']} | {c['caller']} -> {c['callee']} | "
            f"{_ms(rel(c['invite_ns']))} | {_ms(rel(c['answer_ns']))} | {_ms(rel(c['end_ns']))} | {c['note']} |")
    lines += [
        "",
        "### RTP streams (ground truth)",
        "",
        "`packets` are the packets in the capture; `lost` is what RFC 3550 A.3 counts (drops between the",
        "first and last packet received); `dtmf` counts RFC 4733 packets within `packets`.",
        "",
        "| # | call | src | dst | SSRC | codec | sent | packets | lost | reordered | dtmf |",
        "|---:|---:|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for i, s in enumerate(doc["streams"]):
        lines.append(
            f"| {i} | {s['call']} | {s['src']} | {s['dst']} | 0x{s['ssrc']:08X} | {s['codec']} | {s['sent']} | "
            f"{s['packets']} | {s['lost']} | {s['reordered']} | {s['dtmf_packets']} |")
    lines += [
        "",
        f"Totals: {t['rtp_packets']} RTP packets, {t['rtp_lost']} lost, {t['streams']} streams.",
        "",
    ]
    with open(path, "w") as fh:
        fh.write("\n".join(lines))
    return path


def make_sample(pcap_path: str = synth.SAMPLE_PCAP) -> dict:
    doc = synth.generate(synth.sample_specs(SEED), pcap_path, seed=SEED, jitter_ms=JITTER_MS,
                         params={"sample": True})
    write_readme(doc, pcap_path)
    return doc


if __name__ == "__main__":
    make_sample(sys.argv[1] if len(sys.argv) > 1 else synth.SAMPLE_PCAP)
