"""--write-pcap: one pcap per call that ended badly (docs/write-pcap.md).

A call is bad when its final code is in the configured classes or codes
(default 5xx) or its MOS (the worse direction, as in the CDR) is below a
threshold. Its frames are written natively (`_engine.extract_calls`): the SIP
messages carrying its Call-ID, the TCP connections that carried them, and the
UDP datagrams to or from its media endpoints (SDP and the streams seen; RTCP
at port + 1), within [INVITE - margin, end + margin].

- Replay: the calls are collected while the files run, then written in one
  pass over the same files.
- Live: a call is only known to be bad when it ends, so every engine spools
  what its ring delivers (ext/capture/ws_spool.c, rolling, capped), and a
  background thread extracts each bad call from the spool segments once its
  window is on disk. Several engines (one per capture thread) each have their
  own spool directory; extraction merges them by capture time.

Nothing is dropped silently: every call chosen ends up written, written but
truncated (its window reaches back before what the spool still holds), or
skipped with the reason, on stderr and in `stats`. The output directory is
bounded: the oldest of our files go first.
"""
from __future__ import annotations

import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from warpsniff._engine import extract_calls

NS = 1_000_000_000
SPOOL_SEGMENT = re.compile(r"^spool-(\d{10})-(\d{19})\.pcap$")
OUR_FILE = re.compile(r"^\d{8}T\d{6}Z_[^/]*\.pcap$")
FLUSH_SLACK_S = 2.0      # the spool writes out at least once per second of capture time, or when idle
REORDER_NS = NS          # kernel timestamps of one ring are monotonic to well within this
CALLS_PER_PASS = 512     # one open file per call whose window is open: stay well under the fd limit


def parse_codes(text: str) -> tuple[frozenset, frozenset]:
    """'5xx,6xx,408' -> ({5, 6}, {408}); ValueError on anything else."""
    classes, codes = set(), set()
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        if re.fullmatch(r"[1-6]xx", part):
            classes.add(int(part[0]))
        elif re.fullmatch(r"[1-6]\d\d", part):
            codes.add(int(part))
        else:
            raise ValueError(f"not a SIP code or class: {part!r} (e.g. 5xx,6xx,408)")
    if not classes and not codes:
        raise ValueError("no SIP code or class given")
    return frozenset(classes), frozenset(codes)


def safe_name(text: str, limit: int = 96) -> str:
    """A Call-ID as a file-name part: letters, digits and . _ @ - only."""
    name = re.sub(r"[^A-Za-z0-9._@-]", "_", text)[:limit].lstrip(".")
    return name or "call"


@dataclass
class Pending:
    call_id: str
    reason: str                # "503" or "mos 2.41"
    from_ns: int
    to_ns: int
    media: list                # [(addr16, port)]
    invite_ts: float


@dataclass
class WriterStats:
    chosen: int = 0            # calls that ended badly
    written: int = 0           # files written (truncated ones included)
    truncated: int = 0         # written, but part of the window was no longer (or never) spooled
    skipped: int = 0           # no file: no frames, or the window is gone
    failed: int = 0            # the file could not be written
    frames: int = 0
    frames_cut: int = 0        # over the per-file bound
    removed_files: int = 0     # oldest files removed to keep the directory bound
    removed_bytes: int = 0
    reasons: dict = field(default_factory=dict)  # skip/truncation reason -> count


class BadCallWriter:
    def __init__(self, directory, codes: str = "5xx", mos_below: float = 3.1, max_bytes: int = 1 << 30,
                 margin_s: float = 5.0, log=None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.classes, self.codes = parse_codes(codes)
        self.mos_below = mos_below
        self.max_bytes = max_bytes
        self.margin_ns = int(margin_s * NS)
        self.log = log if log is not None else (lambda line: print(f"warpsniff: write-pcap: {line}", file=sys.stderr))
        self.stats = WriterStats()
        self.pending: list[Pending] = []
        self.lock = threading.Lock()       # pending is appended by the capture thread
        self.spool_dirs: list[Path] = []
        self.engines: list = []            # whose spools those are (for their error state)
        self.spool_started_ns: Optional[int] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()

    # -- choosing -------------------------------------------------------------

    def why_bad(self, call, streams, quality) -> Optional[str]:
        code = call.final_code
        if code is not None and (code // 100 in self.classes or code in self.codes):
            return str(code)
        if self.mos_below > 0 and quality is not None and len(streams):
            scores = [m for _, m in (quality.default_mos(rec) for rec in streams) if m is not None]
            if scores and min(scores) < self.mos_below:
                return f"mos {min(scores):.2f}"
        return None

    def on_call(self, call, streams, quality) -> None:
        """Pipeline's on_call hook: remembers a bad call's window and media."""
        reason = self.why_bad(call, streams, quality)
        if reason is None:
            return
        media = set(call.media)
        last = max(call.end_ts or 0.0, call.last_sip_ts or 0.0, call.last_rtp_ts or 0.0, call.invite_ts)
        for rec in streams:
            media.add((bytes(rec["src"]), int(rec["sport"])))
            media.add((bytes(rec["dst"]), int(rec["dport"])))
            last = max(last, int(rec["last_ns"]) / NS)
        item = Pending(call.call_id, reason, int(call.invite_ts * NS) - self.margin_ns,
                       int(last * NS) + self.margin_ns, sorted(media), call.invite_ts)
        with self.lock:
            self.stats.chosen += 1
            self.pending.append(item)

    # -- replay ---------------------------------------------------------------

    def extract_from_files(self, paths) -> None:
        """Writes every bad call collected so far from the capture files themselves."""
        with self.lock:
            batch, self.pending = self.pending, []
        self._extract([str(p) for p in paths], batch, {})

    # -- live -----------------------------------------------------------------

    def open_spools(self, engines, root, total_bytes: int, segment_bytes: int) -> None:
        """One spool per engine (capture thread) under root/worker-<i>; the cap is shared out."""
        root = Path(root)
        share = total_bytes // max(1, len(engines))
        segment = min(segment_bytes, share // 2)
        self.spool_started_ns = time.time_ns()
        self.engines = list(engines)
        for i, engine in enumerate(engines):
            d = root / f"worker-{i}"
            d.mkdir(parents=True, exist_ok=True)
            removed = engine.open_spool(str(d), segment, share)
            if removed:
                self.log(f"removed {removed} spool segments of an earlier run from {d}")
            self.spool_dirs.append(d)

    def collector(self) -> "WritePcapCollector":
        return WritePcapCollector(self)

    def start(self) -> "BadCallWriter":
        """Live: extracts calls in the background once their window is on disk."""
        self._thread = threading.Thread(target=self._run, name="write-pcap", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.extract_due(time.time())

    def extract_due(self, now: float, everything: bool = False) -> None:
        with self.lock:
            due = [p for p in self.pending if everything or p.to_ns / NS + FLUSH_SLACK_S <= now]
            if not due:
                return
            taken = {id(p) for p in due}
            self.pending = [p for p in self.pending if id(p) not in taken]
        segments, notes = self._spool_window(due)
        inputs = sorted({s for paths in segments.values() for s in paths})
        self._extract(inputs, due, notes, per_call_inputs=segments)

    def close(self, engines=()) -> None:
        """Live shutdown, after the capture loop stopped: flush the spools and
        write every call still waiting."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for engine in engines:
            engine.spool_flush()
        if self.spool_dirs:
            self.extract_due(0, everything=True)
        for engine in engines:
            s = engine.spool_stats()
            if s and (s["write_errors"] or s["frames_lost"]):
                self.log(f"spool {s['directory']}: {s['error']}; {s['frames_lost']} frames not spooled")
        self.log_summary()

    def log_summary(self) -> None:
        st = self.stats
        self.log(f"{st.chosen} bad calls: {st.written} written ({st.truncated} truncated), {st.skipped} skipped, "
                 f"{st.failed} failed; {st.removed_files} old files removed")

    def _spool_window(self, items: list[Pending]):
        """The spool segments each call's window needs, and what is missing."""
        listing = []  # per spool dir: [(seq, first_ns, path)] by seq
        for d in self.spool_dirs:
            segs = []
            try:
                names = os.listdir(d)
            except OSError:
                names = []
            for name in names:
                m = SPOOL_SEGMENT.match(name)
                if m:
                    segs.append((int(m.group(1)), int(m.group(2)), str(d / name)))
            listing.append(sorted(segs))
        stopped = []
        for engine in self.engines:
            st = engine.spool_stats()
            if st and st["error"]:
                stopped.append(f"{st['error']}, {st['frames_lost']} frames not spooled")
        segments, notes = {}, {}
        for item in items:
            paths, missing = [], list(stopped)
            if self.spool_started_ns is not None and item.from_ns < self.spool_started_ns:
                missing.append("the call began before the spool started")
            for d, segs in zip(self.spool_dirs, listing):
                if segs and segs[0][0] > 0 and item.from_ns < segs[0][1]:
                    missing.append(f"{d} no longer holds frames before {_iso(segs[0][1])}")
                for k, (seq, first, path) in enumerate(segs):
                    nxt = segs[k + 1][1] if k + 1 < len(segs) else None
                    if first <= item.to_ns and (nxt is None or nxt + REORDER_NS >= item.from_ns):
                        paths.append(path)
            segments[id(item)] = paths
            if missing:
                notes[id(item)] = "; ".join(missing)
        return segments, notes

    # -- writing --------------------------------------------------------------

    def _out_path(self, item: Pending) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(item.invite_ts))
        tag = item.reason.replace(" ", "")
        base = f"{stamp}Z_{tag}_{safe_name(item.call_id)}"
        path = self.directory / f"{base}.pcap"
        n = 1
        while path.exists():
            n += 1
            path = self.directory / f"{base}-{n}.pcap"
        return path

    def _extract(self, inputs: list, items: list[Pending], notes: dict, per_call_inputs=None) -> None:
        if not items:
            return
        runnable, requests = [], []
        for item in items:
            if per_call_inputs is not None and not per_call_inputs.get(id(item)):
                why = notes.get(id(item)) or "nothing in the spool for its window"
                self._skip(item, f"window {_iso(item.from_ns)}..{_iso(item.to_ns)} not in the spool: {why}")
                continue
            out = self._out_path(item)
            runnable.append((item, out))
            requests.append({"call_id": item.call_id.encode(), "from_ns": item.from_ns, "to_ns": item.to_ns,
                             "media": item.media, "out_path": str(out), "max_bytes": self.max_bytes})
        if not requests:
            return
        order = sorted(range(len(requests)), key=lambda k: requests[k]["from_ns"])
        for start in range(0, len(order), CALLS_PER_PASS):
            chunk = order[start:start + CALLS_PER_PASS]
            results, input_stats = extract_calls(inputs, [requests[k] for k in chunk])
            input_note = None
            if input_stats["inputs_unreadable"] or input_stats["inputs_corrupt"]:
                input_note = (f"{input_stats['inputs_unreadable'] + input_stats['inputs_corrupt']} input(s) "
                              f"unreadable: {input_stats['error']}")
            if input_stats["fragments_forgotten"]:
                self.log(f"{input_stats['fragments_forgotten']} IP fragments could not be held for their datagram "
                         f"(too many datagrams in reassembly at once): a call's file may lack some")
            for k, res in zip(chunk, results):
                item, out = runnable[k]
                self._report(item, out, res, notes.get(id(item)), input_note)
            self._enforce_bound()

    def _count(self, **fields) -> None:
        """Counters move together under the lock: a scrape never sees a call twice."""
        with self.lock:
            for name, n in fields.items():
                setattr(self.stats, name, getattr(self.stats, name) + n)

    def _count_reasons(self, problems) -> None:
        with self.lock:
            for p in problems:
                key = p.split(":")[0]
                self.stats.reasons[key] = self.stats.reasons.get(key, 0) + 1

    def _skip(self, item: Pending, why: str) -> None:
        self._count(skipped=1)
        self._count_reasons([why])
        self.log(f"call {item.call_id} ({item.reason}) skipped: {why}")

    def _report(self, item: Pending, out: Path, res: dict, note: Optional[str], input_note: Optional[str]) -> None:
        if res["state"] == "failed":
            self._count(failed=1)
            self.log(f"call {item.call_id} ({item.reason}) not written: {res['error']}")
            return
        if res["state"] == "empty":
            self._skip(item, "no frames of the call found" + (f" ({note})" if note else "")
                       + (f" ({input_note})" if input_note else ""))
            return
        frames = res["sip_frames"] + res["tcp_frames"] + res["media_frames"] + res["fragment_frames"]
        problems = [p for p in (note, input_note) if p]
        if res["frames_cut"]:
            problems.append(f"{res['frames_cut']} frames cut at the {self.max_bytes} byte file bound")
        if res["linktype_skipped"]:
            problems.append(f"{res['linktype_skipped']} frames of another link type left out")
        self._count(written=1, truncated=1 if problems else 0, frames=frames, frames_cut=res["frames_cut"])
        self._count_reasons(problems)
        line = (f"{out}: call {item.call_id} ({item.reason}): {frames} frames (SIP {res['sip_frames']}, "
                f"TCP {res['tcp_frames']}, media {res['media_frames']}, fragments {res['fragment_frames']})")
        if problems:
            line += " TRUNCATED: " + "; ".join(problems)
        self.log(line)

    def _enforce_bound(self) -> None:
        """Our files in the directory stay under max_bytes: the oldest go first."""
        files = []
        for entry in os.scandir(self.directory):
            if entry.is_file() and OUR_FILE.match(entry.name):
                st = entry.stat()
                files.append((st.st_mtime_ns, entry.name, st.st_size, entry.path))
        files.sort()
        total = sum(f[2] for f in files)
        removed = removed_bytes = 0
        while files and total > self.max_bytes:
            _, _, size, path = files.pop(0)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            total -= size
            removed += 1
            removed_bytes += size
        if removed:
            self._count(removed_files=removed, removed_bytes=removed_bytes)
            self.log(f"removed the {removed} oldest files ({removed_bytes} bytes) to keep {self.directory} "
                     f"under {self.max_bytes} bytes")


class WritePcapCollector:
    """/metrics for --write-pcap: what happened to each bad call, and the spool."""

    def __init__(self, writer: BadCallWriter):
        self.w = writer

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        w = self.w
        with w.lock:
            st = w.stats
            outcomes = {"written": st.written - st.truncated, "truncated": st.truncated,
                        "skipped": st.skipped, "failed": st.failed}
            pending = len(w.pending)
            removed = st.removed_files
        calls = CounterMetricFamily("warpsniff_write_pcap_calls",
                                    "Calls that ended badly, by what --write-pcap made of them.", labels=["outcome"])
        for outcome, n in outcomes.items():
            calls.add_metric([outcome], n)
        yield calls
        yield GaugeMetricFamily("warpsniff_write_pcap_pending", "Bad calls waiting for their window to be spooled.",
                                value=pending)
        yield CounterMetricFamily("warpsniff_write_pcap_removed_files",
                                  "Oldest files removed to keep the directory bound.", value=removed)
        spools = [s for s in (e.spool_stats() for e in w.engines) if s]
        if spools:
            yield GaugeMetricFamily("warpsniff_spool_bytes", "Bytes in the live spool's segments, all capture threads.",
                                    value=sum(s["on_disk_bytes"] for s in spools))
            yield CounterMetricFamily("warpsniff_spool_frames_lost",
                                      "Frames not spooled because a spool write failed.",
                                      value=sum(s["frames_lost"] for s in spools))


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / NS)) + f".{ns % NS // 1_000_000:03d}Z"
