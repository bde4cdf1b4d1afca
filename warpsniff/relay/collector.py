"""Prometheus families of the media relay (rtpengine) and proxy (Kamailio)
(docs/metrics.md, "Media relay and proxy"). Built at scrape time from the
pollers' last state, the ng sniffer and the Kamailio health tracker, each
read under its own lock; no I/O happens here."""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from warpsniff.relay.kamailio import STATUSES
from warpsniff.relay.ng import ERROR_KINDS


class RelayCollector:
    def __init__(self, relay):
        self.relay = relay

    def collect(self):
        relay = self.relay
        polls = {p.instance.name: p.state() for p in relay.pollers}
        now = relay.capture_now()
        sniffed = relay.sniffer.snapshot(now)
        yield from self._rtpengine(relay.config.rtpengine, polls, sniffed)
        if relay.config.kamailio:
            yield from self._kamailio(relay.health.evaluate(now))

    def _rtpengine(self, instances, polls, sniffed):
        L = ["instance"]
        active = GaugeMetricFamily("warp_rtpengine_sessions_active",
                                   "Sessions rtpengine holds (polled when up, else as sniffed).", labels=L)
        capacity = GaugeMetricFamily("warp_rtpengine_capacity_percentage",
                                     "Active sessions / configured max_sessions * 100.", labels=L)
        up = GaugeMetricFamily("warp_rtpengine_up", "1 if the last ng ping was answered, else 0.", labels=L)
        used = GaugeMetricFamily("warp_rtpengine_ports_used", "Media ports in use, summed over interfaces.",
                                 labels=L)
        free = GaugeMetricFamily("warp_rtpengine_ports_free", "Media ports free, summed over interfaces.",
                                 labels=L)
        maximum = GaugeMetricFamily("warpsniff_rtpengine_max_sessions", "Configured max_sessions.", labels=L)
        poll_s = GaugeMetricFamily("warpsniff_rtpengine_poll_seconds", "Duration of the last poll.", labels=L)
        ended = CounterMetricFamily("warpsniff_rtpengine_ended_sessions",
                                    "Sessions rtpengine finished since it started (its own count).", labels=L)
        pps = GaugeMetricFamily("warpsniff_rtpengine_packets_per_second",
                                "rtpengine's current relayed packet rate.", labels=L)
        bps = GaugeMetricFamily("warpsniff_rtpengine_bytes_per_second",
                                "rtpengine's current relayed byte rate.", labels=L)
        opened = CounterMetricFamily("warpsniff_rtpengine_sniffed_sessions_opened",
                                     "Sessions opened by ng offer/answer seen in the capture.", labels=L)
        closed = CounterMetricFamily("warpsniff_rtpengine_sniffed_sessions_closed",
                                     "Sniffed sessions closed by ng delete, or idle past the timeout.", labels=L)
        sniffed_active = GaugeMetricFamily("warpsniff_rtpengine_sniffed_sessions_active",
                                           "Sniffed sessions opened and not closed.", labels=L)
        latency = HistogramMetricFamily("warpsniff_rtpengine_command_latency_seconds",
                                        "ng command to reply, from the capture.", labels=["instance", "command"])
        errors = CounterMetricFamily("warpsniff_rtpengine_errors",
                                     "Failed polls and ng problems, by kind.", labels=["instance", "kind"])
        for inst in instances:
            name = inst.name
            poll = polls.get(name)
            sn = sniffed[name]
            sessions = None
            if poll is not None and poll.polled:
                up.add_metric([name], 1.0 if poll.up else 0.0)
                poll_s.add_metric([name], poll.duration_s)
                sessions = poll.sessions      # None when the last poll could not read it
                if poll.ports_used is not None:
                    used.add_metric([name], poll.ports_used)
                if poll.ports_free is not None:
                    free.add_metric([name], poll.ports_free)
                if poll.ended_sessions is not None:
                    ended.add_metric([name], poll.ended_sessions)
                if poll.packet_rate is not None:
                    pps.add_metric([name], poll.packet_rate)
                if poll.byte_rate is not None:
                    bps.add_metric([name], poll.byte_rate)
            if sessions is None and sn["seen"]:
                sessions = float(sn["active"])
            if sessions is not None:
                active.add_metric([name], sessions)
                if inst.max_sessions:
                    capacity.add_metric([name], sessions / inst.max_sessions * 100.0)
            if inst.max_sessions:
                maximum.add_metric([name], inst.max_sessions)
            opened.add_metric([name], sn["opened"])
            closed.add_metric([name], sn["closed"])
            sniffed_active.add_metric([name], sn["active"])
            for command, (buckets, total) in sorted(sn["latency"].items()):
                latency.add_metric([name, command], buckets, sum_value=total)
            counts = dict(sn["errors"])
            if poll is not None:
                for kind, n in poll.errors.items():
                    counts[kind] = counts.get(kind, 0) + n
            for kind in ERROR_KINDS:
                errors.add_metric([name, kind], counts.get(kind, 0))
        yield from (active, capacity, up, used, free, maximum, poll_s, ended, pps, bps,
                    opened, closed, sniffed_active, latency, errors)

    def _kamailio(self, health):
        L = ["instance"]
        fam = GaugeMetricFamily("warp_kamailio_health",
                                "1 for the proxy's status (healthy, degraded, unhealthy), 0 for the others.",
                                labels=["instance", "status"])
        latency = GaugeMetricFamily("warpsniff_kamailio_options_latency_seconds",
                                    "Mean OPTIONS answer latency over the health window.", labels=L)
        loss = GaugeMetricFamily("warpsniff_kamailio_options_loss_ratio",
                                 "OPTIONS unanswered or answered 5xx/6xx / OPTIONS, over the window.", labels=L)
        failure = GaugeMetricFamily("warpsniff_kamailio_invite_failure_ratio",
                                    "INVITEs answered 5xx or not at all / INVITEs, over the window.", labels=L)
        for name, h in health.items():
            for status in STATUSES:
                fam.add_metric([name, status], 1.0 if h["status"] == status else 0.0)
            if h["options_latency"] is not None:
                latency.add_metric([name], h["options_latency"])
            if h["options_loss"] is not None:
                loss.add_metric([name], h["options_loss"])
            if h["invite_failure"] is not None:
                failure.add_metric([name], h["invite_failure"])
        yield from (fam, latency, loss, failure)
