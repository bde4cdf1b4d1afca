"""Prometheus collectors: metric families built at scrape time from the
pipeline's state (engine counters, the call tracker, the aggregator).
Nothing here runs per packet; docs/metrics.md defines every family."""
from __future__ import annotations

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from warpsniff.metrics.aggregate import F_ANSWERED, F_ATTEMPTS, F_NER, F_SECONDS, F_TIMED

NER_WINDOW = "1h"          # the seed's NER and short-call gauges carry no window label
SHORT_WINDOW = "1h"


def _histograms(name, doc, labels, table):
    fam = HistogramMetricFamily(name, doc, labels=labels)
    for key, h in table.items():
        fam.add_metric(list(key), h.cumulative(), sum_value=h.sum)
    return fam


def _counters(name, doc, labels, table):
    fam = CounterMetricFamily(name, doc, labels=labels)
    for key, v in table.items():
        fam.add_metric(list(key), v)
    return fam


class WarpCollector:
    """The platform's call, quality and media families."""

    def __init__(self, pipeline):
        self.p = pipeline
        self.active_keys: set = set()   # label sets of warp_active_calls seen so far: 0, not absent

    def collect(self):
        p = self.p
        with p.lock:
            agg = p.aggregator
            now = p.tracker.now
            yield from self._calls(agg)
            yield from self._ratios(agg, now)
            yield self._active_calls(p)
            yield from self._media(agg, p.live_media())
            yield from self._usage(agg)

    def _calls(self, agg):
        yield _counters("warp_call_attempts", "Initial INVITEs (attempts), counted when they start.",
                        ["account", "trunk", "direction", "zone", "destination_country", "origination_country"],
                        agg.attempts)
        yield _histograms("warp_call_duration_seconds", "Answer to end of finished attempts; 0 when not answered.",
                          ["account", "trunk", "direction", "zone", "status"], agg.durations)
        yield _histograms("warp_pdd_milliseconds", "INVITE to first 180/181/182/183, else to the 2xx.",
                          ["account", "trunk", "provider", "zone"], agg.pdd)
        yield _counters("warp_call_terminations", "Finished attempts by termination reason and final code.",
                        ["account", "trunk", "reason", "sip_code"], agg.terminations)
        labels4 = ["account", "trunk", "provider", "zone"]
        finished = CounterMetricFamily("warp_call_finished", "Attempts whose outcome is known.", labels=labels4)
        answered = CounterMetricFamily("warp_call_answered", "Attempts answered with a 2xx.", labels=labels4)
        ner = CounterMetricFamily("warp_call_ner_attempts", "Attempts counted as NER successes (E.425).",
                                  labels=labels4)
        seconds = CounterMetricFamily("warp_call_answered_duration_seconds",
                                      "Summed duration of answered calls that ended.", labels=labels4)
        for key, (n, a, e, s, _timed) in agg.outcomes.items():
            finished.add_metric(list(key), n)
            answered.add_metric(list(key), a)
            ner.add_metric(list(key), e)
            seconds.add_metric(list(key), s)
        yield from (finished, answered, ner, seconds)
        yield _counters("warp_short_calls", "Answered calls shorter than threshold_seconds.",
                        ["account", "trunk", "threshold_seconds"], agg.short_calls)

    def _ratios(self, agg, now):
        asr = GaugeMetricFamily("warp_asr_ratio", "Answered / finished attempts in the window.",
                                labels=["account", "trunk", "provider", "zone", "window"])
        acd = GaugeMetricFamily("warp_acd_seconds", "Mean duration of answered calls that ended in the window.",
                                labels=["account", "trunk", "provider", "zone", "window"])
        ner = GaugeMetricFamily("warp_ner_ratio", f"NER successes / finished attempts over the last {NER_WINDOW}.",
                                labels=["account", "trunk", "provider"])
        short = GaugeMetricFamily("warp_short_call_ratio",
                                  f"Answered calls under threshold_seconds / answered calls, last {SHORT_WINDOW}.",
                                  labels=["account", "trunk", "threshold_seconds"])
        ner_rows: dict = {}
        short_rows: dict = {}
        for key, window, t in agg.window_ratios(now):
            account, trunk, provider, zone = key
            if t[F_ATTEMPTS]:
                asr.add_metric([account, trunk, provider, zone, window], t[F_ANSWERED] / t[F_ATTEMPTS])
            if t[F_TIMED]:
                acd.add_metric([account, trunk, provider, zone, window], t[F_SECONDS] / t[F_TIMED])
            if window == NER_WINDOW:
                row = ner_rows.setdefault((account, trunk, provider), [0.0, 0.0])
                row[0] += t[F_NER]
                row[1] += t[F_ATTEMPTS]
            if window == SHORT_WINDOW:
                for i, threshold in enumerate(agg.thresholds):
                    row = short_rows.setdefault((account, trunk, str(threshold)), [0.0, 0.0])
                    row[0] += t[F_TIMED + 1 + i]
                    row[1] += t[F_TIMED]
        for key, (num, den) in ner_rows.items():
            if den:
                ner.add_metric(list(key), num / den)
        for key, (num, den) in short_rows.items():
            if den:
                short.add_metric(list(key), num / den)
        yield from (asr, acd, ner, short)

    def _active_calls(self, p):
        fam = GaugeMetricFamily("warp_active_calls", "Calls answered and not yet ended.",
                                labels=["account", "trunk", "direction"])
        counts: dict = {}
        for call in p.tracker.calls.values():
            if call.answered and call.end_ts is None:
                lb = call.labels
                key = (lb.account, lb.trunk, lb.direction)
                counts[key] = counts.get(key, 0) + 1
        if len(self.active_keys) < p.label_config.max_label_sets:
            self.active_keys.update(counts)
        for key in self.active_keys | set(counts):
            fam.add_metric(list(key), counts.get(key, 0))
        return fam

    def _media(self, agg, live_media):
        loss = GaugeMetricFamily("warp_rtp_packet_loss_ratio", "Lost / expected RTP packets of the call so far.",
                                 labels=["account", "call_id", "direction", "codec"])
        jitter = GaugeMetricFamily("warp_rtp_jitter_ms", "Largest RFC 3550 jitter of the call's streams (ms).",
                                   labels=["account", "call_id", "direction"])
        mos = GaugeMetricFamily("warp_mos_score", "E-model MOS: last interval while up, whole call once ended.",
                                labels=["account", "call_id"])
        merged = dict(live_media)
        merged.update(agg.media)  # a call that ended shows its whole-call figures
        for media in merged.values():
            worst_jitter: dict = {}
            for (direction, codec), (lost, expected, jitter_ms) in media.streams.items():
                if expected > 0:
                    loss.add_metric([media.account, media.call_id, direction, codec], lost / expected)
                worst_jitter[direction] = max(worst_jitter.get(direction, 0.0), jitter_ms)
            for direction, j in worst_jitter.items():
                jitter.add_metric([media.account, media.call_id, direction], j)
            if media.mos is not None:
                mos.add_metric([media.account, media.call_id], media.mos)
        yield from (loss, jitter, mos)
        yield _histograms("warp_rtp_jitter_seconds", "Largest jitter of each finished call's streams.",
                          ["account", "trunk", "zone"], agg.jitter)
        yield _histograms("warp_call_mos", "MOS of finished calls (worse direction).",
                          ["account", "trunk", "zone"], agg.mos)

    def _usage(self, agg):
        yield _counters("warp_minutes_used", "Minutes of answered calls, by whether they bill.",
                        ["account", "trunk", "zone", "billable"], agg.minutes)


class SnifferCollector:
    """warpsniff's own health: what it saw, dropped, and could not decode."""

    def __init__(self, pipeline):
        self.p = pipeline

    def collect(self):
        p = self.p
        with p.lock:
            c = p.engine.counters()
            errors = p.engine.decode_errors()
            sip = p.tracker.stats
            tcp = p.correlator.tcp.stats
            overflows = dict(p.aggregator.overflows)
            dialogs = len(p.tracker.calls)
            call_media_dropped = p.ended_rows_dropped
            call_series_dropped = p.aggregator.call_series_dropped
            sctp_dropped = p.correlator.sctp.dropped
            rings = p.capture_stats()
        yield CounterMetricFamily("warpsniff_packets", "Frames seen.", value=c["frames"])
        yield CounterMetricFamily("warpsniff_bytes", "Bytes on the wire of frames seen.", value=c["bytes"])
        by_kind = CounterMetricFamily("warpsniff_packets_by_kind", "Packets by what they carried.", labels=["kind"])
        for kind in ("rtp_packets", "rtcp_packets", "sip_udp", "tcp_segments", "sctp_packets", "other_udp",
                     "other_tcp", "ignored"):
            by_kind.add_metric([kind.replace("_packets", "")], c[kind])
        yield by_kind
        yield _counters("warpsniff_decode_errors", "Frames that could not be decoded, by reason.", ["kind"],
                        {(kind,): n for kind, n in errors.items()})
        yield CounterMetricFamily("warpsniff_sip_parse_errors", "SIP messages the scanner refused.",
                                  value=sip.parse_errors)
        yield CounterMetricFamily("warpsniff_sip_messages", "SIP messages seen.", value=sip.messages)
        yield CounterMetricFamily("warpsniff_sip_retransmissions", "SIP retransmissions seen.",
                                  value=sip.retransmissions)
        yield GaugeMetricFamily("warpsniff_active_dialogs", "Call attempts being tracked.", value=dialogs)
        yield GaugeMetricFamily("warpsniff_active_streams", "RTP streams in the engine table.",
                                value=c["streams_active"])
        bound = CounterMetricFamily("warpsniff_streams_bound", "RTP streams bound to a call, by when: at_start "
                                    "(an SDP or a latch covered their destination when they began) or adopted "
                                    "(the binding came after their first packet).", labels=["how"])
        bound.add_metric(["at_start"], c["bound_streams"] - c["adopted_streams"])
        bound.add_metric(["adopted"], c["adopted_streams"])
        yield bound
        yield CounterMetricFamily("warpsniff_latched_addresses", "Media source addresses no SDP announced, bound "
                                  "to a call because its media came from them (NAT latching).",
                                  value=c["latched_bindings"])
        ev = CounterMetricFamily("warpsniff_table_evictions", "Entries pushed out of a full table.",
                                 labels=["table"])
        ev.add_metric(["streams"], c["stream_evictions"])
        ev.add_metric(["calls"], sip.evicted)
        ev.add_metric(["media_bindings"], c["bindings_dropped"])
        ev.add_metric(["tcp_streams"], tcp.streams_evicted)
        ev.add_metric(["call_media"], call_media_dropped)
        ev.add_metric(["call_series"], call_series_dropped)
        yield ev
        drops = CounterMetricFamily("warpsniff_reassembly_drops", "Data lost by fragment or TCP reassembly.",
                                    labels=["kind"])
        drops.add_metric(["fragment_timeout"], errors.get("fragment_timeout", 0))
        drops.add_metric(["fragment_table_full"], errors.get("fragment_table_full", 0))
        drops.add_metric(["tcp_gap"], tcp.gaps_skipped)
        drops.add_metric(["tcp_buffer_overflow"], tcp.buffer_overflows)
        drops.add_metric(["signalling_batch"], c["signalling_dropped"])
        drops.add_metric(["sctp_message"], sctp_dropped)
        yield drops
        yield _counters("warpsniff_websocket", "SIP over WebSocket (RFC 7118) on TCP connections, by event.",
                        ["event"], {(event,): getattr(tcp, f"websocket_{event}") for event in
                                    ("upgrades", "joined", "not_sip", "messages", "control_frames", "errors",
                                     "oversize")})
        yield _counters("warpsniff_label_overflows", "Label sets folded into \"other\" by the guard.", ["metric"],
                        {(metric,): n for metric, n in overflows.items()})
        yield CounterMetricFamily("warpsniff_capture_drops", "Packets the kernel dropped before capture.",
                                  value=sum(r["drops"] for r in rings.values()))
        if rings:  # live: each ring (interface, or interface#worker) on its own
            for name, key, text in (("packets", "packets", "Packets the kernel put in the ring."),
                                    ("drops", "drops", "Packets the kernel dropped because the ring was full."),
                                    ("full", "freezes", "Times the ring was full (the kernel froze the queue).")):
                yield _counters(f"warpsniff_ring_{name}", text, ["ring"],
                                {(ring,): stats[key] for ring, stats in rings.items()})
        yield GaugeMetricFamily("warpsniff_replay_lag_seconds",
                                "How far a paced replay is behind capture time.", value=p.replay_lag_s)
