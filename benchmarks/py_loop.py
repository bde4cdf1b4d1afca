"""Pure-Python peer of ref_loop.c: the same per-packet work (classic pcap,
Ethernet + 802.1Q, IPv4, UDP, RTP header check, a dict keyed by (src, dst,
sport, dport, SSRC), RFC 3550 A.1 sequence + A.3 loss + A.8 jitter), written
the way a careful Python programmer would: `struct` over one mmap, no
per-packet objects beyond the tuples struct returns.

    python -m benchmarks.py_loop capture.pcap            # struct
    python -m benchmarks.py_loop --parser dpkt capture.pcap

Prints one JSON line like ref_loop.
"""
from __future__ import annotations

import argparse
import json
import mmap
import struct
import sys
import time

MIN_SEQUENTIAL = 2
MAX_DROPOUT = 3000
MAX_MISORDER = 100
SEQ_MOD = 1 << 16
SIP_PORT = 5060
CLOCKS = {0: 8000, 3: 8000, 4: 8000, 5: 8000, 6: 16000, 7: 8000, 8: 8000, 9: 8000, 10: 44100,
          11: 44100, 12: 8000, 15: 8000, 16: 11025, 17: 22050, 18: 8000, 25: 90000, 26: 90000,
          28: 90000, 31: 90000, 32: 90000, 33: 90000, 34: 90000}

# stream state is a list, indexed by these
MAX_SEQ, PROBATION, CYCLES, BASE_SEQ, BAD_SEQ, RECEIVED, PACKETS, CLOCK, TRANSIT, JITTER, MAX_JITTER, \
    VALID, HAVE_TRANSIT = range(13)


def new_stream(seq: int) -> list:
    return [(seq - 1) & 0xFFFF, MIN_SEQUENTIAL, 0, seq, SEQ_MOD + 1, 0, 0, 0, 0, 0, 0, False, False]


def init_seq(s: list, seq: int) -> None:
    s[BASE_SEQ] = seq
    s[MAX_SEQ] = seq
    s[BAD_SEQ] = SEQ_MOD + 1
    s[CYCLES] = 0
    s[RECEIVED] = 0


def update_seq(s: list, seq: int) -> None:
    """RFC 3550 A.1."""
    max_seq = s[MAX_SEQ]
    udelta = (seq - max_seq) & 0xFFFF
    if s[PROBATION]:
        if seq == (max_seq + 1) & 0xFFFF:
            s[PROBATION] -= 1
            s[MAX_SEQ] = seq
            if s[PROBATION] == 0:
                init_seq(s, seq)
                s[RECEIVED] += 1
                s[VALID] = True
        else:
            s[PROBATION] = MIN_SEQUENTIAL - 1
            s[MAX_SEQ] = seq
        return
    if udelta < MAX_DROPOUT:
        if seq < max_seq:
            s[CYCLES] += SEQ_MOD
        s[MAX_SEQ] = seq
    elif udelta <= SEQ_MOD - MAX_MISORDER:
        if seq == s[BAD_SEQ]:
            init_seq(s, seq)
        else:
            s[BAD_SEQ] = (seq + 1) & 0xFFFF
            return
    s[RECEIVED] += 1


def run_struct(path: str) -> dict:
    rec_hdr = struct.Struct("<IIII").unpack_from
    u16 = struct.Struct("!H").unpack_from
    ip_fields = struct.Struct("!BxxxxxHxBxx4s4s").unpack_from   # vihl, frag, proto, src, dst
    udp_hdr = struct.Struct("!HHH").unpack_from
    rtp_hdr = struct.Struct("!BBHII").unpack_from
    streams: dict = {}
    frames = rtp = skipped = 0
    origin = None
    with open(path, "rb") as fh:
        m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        magic = struct.unpack_from("<I", m, 0)[0]
        if magic not in (0xA1B2C3D4, 0xA1B23C4D) or struct.unpack_from("<I", m, 20)[0] != 1:
            raise SystemExit(f"{path}: not a little-endian Ethernet classic pcap")
        frac_ns = 1 if magic == 0xA1B23C4D else 1000
        size = len(m)
        off = 24
        while off + 16 <= size:
            sec, frac, caplen, _ = rec_hdr(m, off)
            p = off + 16
            end = p + caplen
            off = end
            if end > size:
                break
            frames += 1
            if caplen < 14:
                skipped += 1
                continue
            et = u16(m, p + 12)[0]
            p += 14
            while (et == 0x8100 or et == 0x88A8) and p + 4 <= end:
                et = u16(m, p + 2)[0]
                p += 4
            if et != 0x0800 or p + 20 > end:
                skipped += 1
                continue
            vihl, frag, proto, src, dst = ip_fields(m, p)
            ihl = (vihl & 15) * 4
            if vihl >> 4 != 4 or proto != 17 or ihl < 20 or frag & 0x3FFF or p + ihl + 8 > end:
                skipped += 1
                continue
            u = p + ihl
            sport, dport, ulen = udp_hdr(m, u)
            if ulen < 8 or u + ulen > end:
                skipped += 1
                continue
            r = u + 8
            n = ulen - 8
            if sport == SIP_PORT or dport == SIP_PORT or sport < 1024 or dport < 1024 or n < 12:
                skipped += 1
                continue
            b0, b1, seq, rtp_ts, ssrc = rtp_hdr(m, r)
            if b0 & 0xC0 != 0x80 or 200 <= b1 <= 207 or 12 + 4 * (b0 & 15) > n:
                skipped += 1
                continue
            rtp += 1
            ts_ns = sec * 1_000_000_000 + frac * frac_ns
            if origin is None:
                origin = ts_ns
            key = (src, dst, sport, dport, ssrc)
            s = streams.get(key)
            if s is None:
                s = streams[key] = new_stream(seq)
            s[PACKETS] += 1
            update_seq(s, seq)
            clock = CLOCKS.get(b1 & 0x7F, 0)
            if clock:
                if clock != s[CLOCK]:
                    s[CLOCK] = clock
                    s[HAVE_TRANSIT] = False
                arrival = ((ts_ns - origin) * clock // 1_000_000_000) & 0xFFFFFFFF
                transit = (arrival - rtp_ts) & 0xFFFFFFFF
                if transit >= 1 << 31:
                    transit -= 1 << 32
                if s[HAVE_TRANSIT]:
                    d = abs(transit - s[TRANSIT])
                    s[JITTER] += d - ((s[JITTER] + 8) >> 4)
                    if s[JITTER] > s[MAX_JITTER]:
                        s[MAX_JITTER] = s[JITTER]
                s[TRANSIT] = transit
                s[HAVE_TRANSIT] = True
    finally:
        m.close()
    return summarize(streams, frames, rtp, skipped)


def run_dpkt(path: str) -> dict:
    import dpkt

    streams: dict = {}
    frames = rtp = skipped = 0
    origin = None
    with open(path, "rb") as fh:
        for ts, buf in dpkt.pcap.Reader(fh):
            frames += 1
            try:
                eth = dpkt.ethernet.Ethernet(buf)
            except dpkt.UnpackError:
                skipped += 1
                continue
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP) or not isinstance(ip.data, dpkt.udp.UDP) or ip.mf or ip.offset:
                skipped += 1
                continue
            udp = ip.data
            if SIP_PORT in (udp.sport, udp.dport) or udp.sport < 1024 or udp.dport < 1024:
                skipped += 1
                continue
            payload = bytes(udp.data)
            if len(payload) < 12 or payload[0] & 0xC0 != 0x80 or 200 <= payload[1] <= 207:
                skipped += 1
                continue
            try:
                r = dpkt.rtp.RTP(payload)
            except dpkt.UnpackError:
                skipped += 1
                continue
            rtp += 1
            ts_ns = int(round(ts * 1e9))
            if origin is None:
                origin = ts_ns
            key = (ip.src, ip.dst, udp.sport, udp.dport, r.ssrc)
            s = streams.get(key)
            if s is None:
                s = streams[key] = new_stream(r.seq)
            s[PACKETS] += 1
            update_seq(s, r.seq)
            clock = CLOCKS.get(r.pt, 0)
            if clock:
                if clock != s[CLOCK]:
                    s[CLOCK] = clock
                    s[HAVE_TRANSIT] = False
                arrival = ((ts_ns - origin) * clock // 1_000_000_000) & 0xFFFFFFFF
                transit = (arrival - r.ts) & 0xFFFFFFFF
                if transit >= 1 << 31:
                    transit -= 1 << 32
                if s[HAVE_TRANSIT]:
                    d = abs(transit - s[TRANSIT])
                    s[JITTER] += d - ((s[JITTER] + 8) >> 4)
                    s[MAX_JITTER] = max(s[MAX_JITTER], s[JITTER])
                s[TRANSIT] = transit
                s[HAVE_TRANSIT] = True
    return summarize(streams, frames, rtp, skipped)


def summarize(streams: dict, frames: int, rtp: int, skipped: int) -> dict:
    valid = [s for s in streams.values() if s[VALID]]
    expected = lost = received = 0
    max_jitter_ms = 0.0
    for s in valid:
        exp = s[CYCLES] + s[MAX_SEQ] - s[BASE_SEQ] + 1
        expected += exp
        lost += exp - s[RECEIVED]
        received += s[RECEIVED]
        if s[CLOCK]:
            max_jitter_ms = max(max_jitter_ms, (s[MAX_JITTER] >> 4) * 1000.0 / s[CLOCK])
    return {"frames": frames, "rtp_packets": rtp, "skipped": skipped, "candidates": len(streams),
            "streams": len(valid), "stream_packets": sum(s[PACKETS] for s in valid), "received": received,
            "expected": expected, "lost": lost, "max_jitter_ms": round(max_jitter_ms, 4)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.py_loop", description=__doc__.split("\n\n")[0])
    ap.add_argument("capture")
    ap.add_argument("--parser", choices=("struct", "dpkt"), default="struct")
    args = ap.parse_args(argv)
    t0, c0 = time.perf_counter(), time.process_time()
    out = run_struct(args.capture) if args.parser == "struct" else run_dpkt(args.capture)
    out = {"tool": f"py_loop/{args.parser}", "seconds": round(time.perf_counter() - t0, 6),
           "cpu_seconds": round(time.process_time() - c0, 6), **out}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
