#!/usr/bin/env python3
"""Writes the Grafana dashboards of deploy/grafana/dashboards/.

    python3 deploy/grafana/gen_dashboards.py          # rewrite the JSON files
    python3 deploy/grafana/gen_dashboards.py --check  # exit 1 if they are stale

Three dashboards: the seed's Account Overview and Quality Monitoring, and
Sniffer Health (warpsniff itself plus the platform's infrastructure rows).
Each has a Prometheus data source variable and account / trunk / provider
variables (multi-value, "All" = `.*`). Queries read the recording rules
(deploy/prometheus/rules/warp-recording.yml) where one exists, and
deduplicate HA sniffer pairs (`max without (replica)`) where they read raw
series. Every query is run against a real Prometheus by
tests/test_deploy.py.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # deploy/, for generated.py
from generated import write_or_check  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}

A = 'account=~"$account"'
AT = 'account=~"$account", trunk=~"$trunk"'
ATP = 'account=~"$account", trunk=~"$trunk", provider=~"$provider"'
D = "max without (replica)"


def target(expr, legend="", ref="A", instant=False, fmt="time_series"):
    t = {"refId": ref, "datasource": DS, "expr": expr, "legendFormat": legend or "__auto",
         "range": not instant, "instant": instant, "format": fmt}
    return t


class Board:
    def __init__(self, uid, title, description):
        self.uid, self.title, self.description = uid, title, description
        self.panels = []
        self.y = 0
        self.x = 0
        self.row_h = 0

    def row(self, title):
        self._newline()
        self.panels.append({"type": "row", "title": title, "collapsed": False, "panels": [],
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}})
        self.y += 1

    def _newline(self):
        if self.x:
            self.y += self.row_h
            self.x, self.row_h = 0, 0

    def panel(self, kind, title, targets, description="", unit=None, w=8, h=8, options=None,
              thresholds=None, decimals=None, min_=None, max_=None, stack=False):
        if self.x + w > 24:
            self._newline()
        defaults = {}
        if unit:
            defaults["unit"] = unit
        if decimals is not None:
            defaults["decimals"] = decimals
        if min_ is not None:
            defaults["min"] = min_
        if max_ is not None:
            defaults["max"] = max_
        if thresholds:
            defaults["thresholds"] = {"mode": "absolute", "steps": [
                {"color": c, "value": v} for v, c in thresholds]}
        if kind == "timeseries":
            defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                                  "showPoints": "never", "spanNulls": False,
                                  "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
        p = {"type": kind, "title": title, "description": description, "datasource": DS,
             "gridPos": {"x": self.x, "y": self.y, "w": w, "h": h},
             "targets": targets,
             "fieldConfig": {"defaults": defaults, "overrides": []},
             "options": options or {}}
        if kind == "timeseries":
            p["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                            "tooltip": {"mode": "multi", "sort": "desc"}, **(options or {})}
        if kind == "stat":
            p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                            "colorMode": "value", "graphMode": "area", "textMode": "auto",
                            **(options or {})}
        if kind == "table":
            p["transformations"] = [{"id": "merge", "options": {}}] if len(targets) > 1 else []
        self.panels.append(p)
        self.x += w
        self.row_h = max(self.row_h, h)

    def render(self, variables):
        for i, p in enumerate(self.panels, 1):
            p["id"] = i
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["warp", "warpsniff"],
            "timezone": "browser",
            "editable": True,
            "graphTooltip": 1,
            "schemaVersion": 38,
            "version": 1,
            "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "timepicker": {},
            "annotations": {"list": [{
                "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
                "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
                "type": "dashboard"}]},
            "links": [{"type": "dashboards", "tags": ["warp"], "asDropdown": False, "title": "WARP dashboards",
                       "includeVars": True, "keepTime": True}],
            "templating": {"list": variables},
            "panels": self.panels,
        }


def query_var(name, label, query, refresh_on_time=False):
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "query": {"query": query, "refId": f"{name}-var"}, "definition": query,
        "refresh": 2 if refresh_on_time else 1, "includeAll": True, "multi": True, "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [], "regex": "", "sort": 1, "hide": 0,
    }


def variables():
    out = [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "options": [], "refresh": 1, "regex": ""},
        query_var("account", "Account", "label_values(warp_call_attempts_total, account)"),
        query_var("trunk", "Trunk", 'label_values(warp_call_attempts_total{account=~"$account"}, trunk)'),
    ]
    out.append(query_var("provider", "Provider",
                         'label_values(warp_call_finished_total{account=~"$account", trunk=~"$trunk"}, provider)'))
    return out


def ratio(num, den, by, sel):
    return (f"sum by ({by}) ({num}{{{sel}}})\n"
            f"  / (sum by ({by}) ({den}{{{sel}}}) > 0)")


L = "account_trunk_provider_zone"
PCT = [(None, "red"), (0.3, "orange"), (0.5, "green")]


def account_overview():
    b = Board("warp-account-overview", "WARP / Account Overview",
              "Spend, calls and call quality per account (seed: Account Overview).")
    b.row("Spend (exported by the billing system)")
    b.panel("timeseries", "Current Spend Rate",
            [target(f"sum by (account) (account:warp_spend_cents:rate5m{{{A}}}) * 36", "{{account}}")],
            "Dollars per hour over the last 5 minutes (cents/s x 3600 / 100). Seed: rate(warp_spend_cents_total[5m]).",
            unit="currencyUSD")
    b.panel("stat", "Spend (24h)",
            [target(f"sum by (account) (increase(warp_spend_cents_total{{{A}}}[24h])) / 100", "{{account}}")],
            "Dollars spent in the last 24 hours.", unit="currencyUSD")
    b.panel("gauge", "Balance / credit limit",
            [target(f"max by (account) (warp_account_balance_dollars{{{A}}})\n"
                    f"  / max by (account) (warp_credit_limit_dollars{{{A}}} > 0)", "{{account}}")],
            "ApproachingCreditLimit fires under 10 %.", unit="percentunit", min_=0, max_=1,
            thresholds=[(None, "red"), (0.1, "orange"), (0.25, "green")])
    b.row("Calls")
    b.panel("timeseries", "Active Calls",
            [target(f"sum by (account, direction) ({D} (warp_active_calls{{{AT}}}))", "{{account}} {{direction}}")],
            "Answered calls in progress (seed: warp_active_calls), HA pairs counted once.", unit="short")
    b.panel("stat", "Peak concurrent calls (1h)",
            [target(f"account:warp_active_calls:max1h{{{A}}}", "{{account}}")],
            "Highest number of simultaneous calls in the last hour, per account.", unit="short")
    b.panel("stat", "Call Volume (24h)",
            [target(f"sum by (account) ({D} (increase(warp_call_attempts_total{{{AT}}}[24h])))", "{{account}}")],
            "Call attempts in the last 24 hours (seed: increase(warp_call_attempts_total[24h])).", unit="short",
            decimals=0)
    b.panel("timeseries", "Call attempts per minute",
            [target(f"sum by (direction) (account_trunk_direction_zone:warp_call_attempts:increase5m{{{AT}}}) / 5",
                    "{{direction}}")], unit="short")
    b.panel("timeseries", "Terminations by reason (5m)",
            [target(f"sum by (reason) (account_trunk_reason:warp_call_terminations:increase5m{{{AT}}})", "{{reason}}")],
            unit="short", stack=True)
    b.panel("stat", "Minutes used (24h)",
            [target(f"sum by (billable) ({D} (increase(warp_minutes_used_total{{{AT}}}[24h])))",
                    "billable={{billable}}")], unit="short", decimals=1)
    b.row("Quality")
    b.panel("timeseries", "ASR Trend",
            [target(ratio(f"{L}:warp_call_answered:increase5m", f"{L}:warp_call_finished:increase5m", "account", ATP),
                    "{{account}}")],
            "Answered / finished attempts over 5 minutes, from the summed counters "
            "(seed: warp_asr_ratio{window='5m'}, which cannot be combined across sniffers).",
            unit="percentunit", min_=0, max_=1, thresholds=PCT)
    b.panel("timeseries", "ACD",
            [target(ratio(f"{L}:warp_call_answered_duration_seconds:increase5m", f"{L}:warp_call_answered:increase5m",
                          "account", ATP), "{{account}}")],
            "Average duration of the answered calls that ended in the last 5 minutes.", unit="s")
    b.panel("timeseries", "NER",
            [target(ratio(f"{L}:warp_call_ner_success:increase5m", f"{L}:warp_call_finished:increase5m", "account", ATP),
                    "{{account}}")],
            "Network effectiveness ratio (E.425) over 5 minutes.", unit="percentunit", min_=0, max_=1)
    b.panel("timeseries", "Post-dial delay (p95 and average)",
            [target(f"histogram_quantile(0.95, sum by (le) ({L}:warp_pdd_milliseconds_bucket:rate5m{{{ATP}}}))", "p95"),
             target(f"sum ({D} (rate(warp_pdd_milliseconds_sum{{{ATP}}}[$__rate_interval])))\n"
                    f"  / sum ({D} (rate(warp_pdd_milliseconds_count{{{ATP}}}[$__rate_interval])))", "average", "B")],
            "Seed: histogram_quantile(0.95, warp_pdd_milliseconds), which selects no series (a histogram is "
            "stored as _bucket/_sum/_count) and was titled 'Average PDD'.", unit="ms", w=24)
    return b.render(variables())


def quality():
    b = Board("warp-quality", "WARP / Quality Monitoring",
              "ASR, NER, short calls, PDD and media quality by provider and trunk (seed: Quality Metrics).")
    b.row("Signalling")
    b.panel("timeseries", "ASR by Provider",
            [target(ratio(f"{L}:warp_call_answered:increase5m", f"{L}:warp_call_finished:increase5m", "provider", ATP),
                    "{{provider}}")],
            "Seed: warp_asr_ratio{window='5m'} by (provider), not valid PromQL (by needs an aggregation) and "
            "ratios cannot be averaged: answered and finished are summed per provider first.",
            unit="percentunit", min_=0, max_=1, thresholds=PCT)
    b.panel("timeseries", "Network Effectiveness",
            [target(ratio(f"{L}:warp_call_ner_success:increase5m", f"{L}:warp_call_finished:increase5m", "provider",
                          ATP), "{{provider}}")],
            "NER (E.425) by provider over 5 minutes. Seed: warp_ner_ratio.", unit="percentunit", min_=0, max_=1)
    b.panel("timeseries", "Short Call Percentage",
            [target("100 * sum by (account, trunk, threshold_seconds) "
                    f"(account_trunk_threshold_seconds:warp_short_calls:increase1h{{{AT}}})\n"
                    "  / on (account, trunk) group_left ()\n"
                    f"  (sum by (account, trunk) (account_trunk:warp_call_ended_answered:increase1h{{{AT}}}) > 0)",
                    "{{account}}/{{trunk}} < {{threshold_seconds}} s")],
            "Answered calls shorter than each threshold, last hour (seed: warp_short_call_ratio * 100). "
            "HighShortCalls watches the 6 s threshold.", unit="percent", min_=0, max_=100)
    b.panel("timeseries", "PDD by provider (p50, p95, p99)",
            [target(f"histogram_quantile(0.{q}, sum by (provider, le) "
                    f"({L}:warp_pdd_milliseconds_bucket:rate5m{{{ATP}}}))", f"{{{{provider}}}} p{q}", ref)
             for q, ref in (("50", "A"), ("95", "B"), ("99", "C"))], unit="ms")
    b.panel("timeseries", "SIP failures by class (5m)",
            [target(f'sum by (sip_class) (account_trunk_sip_class:warp_call_terminations:increase5m{{{AT}, sip_class!="2xx"}})',
                    "{{sip_class}}")],
            "Final answers other than 2xx. SIP5xxStorm fires over 20 % 5xx.", unit="short", stack=True)
    b.panel("table", "Provider ranking (ASR, 24h)",
            [target(f"sort_desc(\n  sum by (provider) ({D} (increase(warp_call_answered_total{{{ATP}}}[24h])))\n"
                    f"  / (sum by (provider) ({D} (increase(warp_call_finished_total{{{ATP}}}[24h]))) > 0)\n)",
                    "{{provider}}", instant=True, fmt="table")],
            "Seed query example: sort_desc(avg_over_time(warp_asr_ratio{window=\"1h\"}[24h]) by (provider)), "
            "not valid PromQL; recomputed from the counters.", unit="percentunit")
    b.row("Media")
    b.panel("table", "RTP Quality Issues",
            [target(f"warp_rtp_packet_loss_ratio{{{A}}} >= 0.01", "", instant=True, fmt="table")],
            "Live and recent calls (kept 5 minutes after they end) losing 1 % of their RTP packets or more "
            "(seed: warp_rtp_packet_loss_ratio > 0.01).", unit="percentunit", w=12)
    b.panel("table", "Worst MOS (live and recent calls)",
            [target(f"bottomk(10, warp_mos_score{{{A}}})", "", instant=True, fmt="table")],
            "E-model MOS of the worse direction.", decimals=2, w=12)
    b.panel("table", "Highest jitter (live and recent calls)",
            [target(f"topk(10, warp_rtp_jitter_ms{{{A}}})", "", instant=True, fmt="table")], unit="ms", w=12)
    b.panel("timeseries", "Mean MOS of finished calls",
            [target(f"account_trunk_zone:warp_call_mos:mean5m{{{AT}}}", "{{account}}/{{trunk}} {{zone}}")],
            "LowMOS fires under 3.6 for 10 minutes.", min_=1, max_=5,
            thresholds=[(None, "red"), (3.6, "orange"), (4.0, "green")], w=12)
    b.panel("timeseries", "Jitter p95 (streams of finished calls)",
            [target(f"account_trunk_zone:warp_rtp_jitter_seconds:p95_5m{{{AT}}}", "{{account}}/{{trunk}} {{zone}}")],
            unit="s", w=12)
    b.panel("timeseries", "Packet loss (worst live call per account)",
            [target(f"max by (account, direction) (warp_rtp_packet_loss_ratio{{{A}}})", "{{account}} {{direction}}")],
            unit="percentunit", w=12)
    b.row("Per-sniffer windows (warpsniff's own gauges: compare sniffers, never average them)")
    b.panel("table", "Windowed KPIs per sniffer",
            [target(f'warp_asr_ratio{{window="5m", {ATP}}}', "", "A", instant=True, fmt="table"),
             target(f'warp_acd_seconds{{window="5m", {ATP}}}', "", "B", instant=True, fmt="table"),
             target(f"warp_ner_ratio{{{ATP}}}", "", "C", instant=True, fmt="table"),
             target(f'warp_short_call_ratio{{{AT}, threshold_seconds="6"}}', "", "D", instant=True, fmt="table")],
            "ASR (5m), ACD (5m), NER (1h) and short-call ratio (< 6 s, 1h) as each sniffer computes them.",
            w=24)
    return b.render(variables())


def sniffer_health():
    b = Board("warp-sniffer-health", "WARP / Sniffer Health",
              "warpsniff capture and decoding, and the platform's infrastructure (RTPEngine, Kamailio, "
              "PostgreSQL, Redis).")
    S = "sniffer, replica"
    SN = 'sniffer=~"$sniffer"'
    b.row("Sniffers")
    b.panel("stat", "Sniffers up", [target(f'up{{job="warpsniff", {SN}}}', "{{sniffer}} {{replica}}")],
            "1 = scraped. WarpsniffDown fires after 2 minutes at 0.", thresholds=[(None, "red"), (1, "green")])
    b.panel("timeseries", "Packets per second by kind",
            [target(f"sum by ({S}, kind) (rate(warpsniff_packets_by_kind_total{{{SN}}}[$__rate_interval]))",
                    "{{sniffer}} {{replica}} {{kind}}")], unit="pps")
    b.panel("timeseries", "Capture throughput",
            [target(f"sum by ({S}) (8 * rate(warpsniff_bytes_total{{{SN}}}[$__rate_interval]))", "{{sniffer}} {{replica}}")],
            unit="bps")
    b.panel("timeseries", "Capture drops per second",
            [target(f"sum by ({S}) (rate(warpsniff_capture_drops_total{{{SN}}}[$__rate_interval]))", "{{sniffer}} {{replica}}")],
            "Packets the kernel dropped (WarpsniffCaptureDrops over 0.1 %).", unit="pps")
    b.panel("timeseries", "Decode errors per second",
            [target(f"sum by ({S}, kind) (rate(warpsniff_decode_errors_total{{{SN}}}[$__rate_interval]))",
                    "{{sniffer}} {{replica}} {{kind}}")], unit="pps")
    b.panel("timeseries", "Reassembly drops per second",
            [target(f"sum by ({S}, kind) (rate(warpsniff_reassembly_drops_total{{{SN}}}[$__rate_interval]))",
                    "{{sniffer}} {{replica}} {{kind}}")], unit="pps")
    b.panel("timeseries", "SIP messages per second",
            [target(f"sum by ({S}) (rate(warpsniff_sip_messages_total{{{SN}}}[$__rate_interval]))", "{{sniffer}} {{replica}} messages"),
             target(f"sum by ({S}) (rate(warpsniff_sip_parse_errors_total{{{SN}}}[$__rate_interval]))",
                    "{{sniffer}} {{replica}} parse errors", "B"),
             target(f"sum by ({S}) (rate(warpsniff_sip_retransmissions_total{{{SN}}}[$__rate_interval]))",
                    "{{sniffer}} {{replica}} retransmissions", "C")], unit="short")
    b.panel("timeseries", "Table evictions and label overflows",
            [target(f"sum by ({S}, table) (increase(warpsniff_table_evictions_total{{{SN}}}[$__rate_interval]))",
                    "{{sniffer}} {{replica}} evicted from {{table}}"),
             target(f"sum by ({S}, metric) (increase(warpsniff_label_overflows_total{{{SN}}}[$__rate_interval]))",
                    "{{sniffer}} {{replica}} overflow {{metric}}", "B")], unit="short")
    b.panel("timeseries", "Dialogs and RTP streams tracked",
            [target(f"sum by ({S}) (warpsniff_active_dialogs{{{SN}}})", "{{sniffer}} {{replica}} dialogs"),
             target(f"sum by ({S}) (warpsniff_active_streams{{{SN}}})", "{{sniffer}} {{replica}} streams", "B")], unit="short")
    b.panel("timeseries", "Replay lag", [target(f"warpsniff_replay_lag_seconds{{{SN}}}", "{{sniffer}} {{replica}}")],
            "Paced replays (--speed) only.", unit="s")
    b.panel("table", "Totals since start",
            [target(f"warpsniff_packets_total{{{SN}}}", "", "A", instant=True, fmt="table"),
             target(f"warpsniff_sip_messages_total{{{SN}}}", "", "B", instant=True, fmt="table"),
             target(f'warpsniff_packets_by_kind_total{{kind="rtp", {SN}}}', "", "C", instant=True, fmt="table")],
            "Frames, SIP messages and RTP packets seen by each sniffer since it started.", w=16)
    b.row("RTPEngine and Kamailio")
    b.panel("timeseries", "RTPEngine capacity",
            [target("max by (instance) (warp_rtpengine_capacity_percentage)", "{{instance}}")],
            "RTPEngineCapacityHigh fires over 80 %.", unit="percent", min_=0, max_=100,
            thresholds=[(None, "green"), (80, "red")])
    b.panel("timeseries", "RTPEngine sessions",
            [target("max by (instance) (warp_rtpengine_sessions_active)", "{{instance}} (warpsniff)"),
             target('sum by (instance) (rtpengine_sessions{type="own"})', "{{instance}} (own endpoint)", "B")],
            unit="short")
    b.panel("state-timeline", "RTPEngine up", [target("max by (instance) (warp_rtpengine_up)", "{{instance}}")],
            thresholds=[(None, "red"), (1, "green")])
    b.panel("state-timeline", "Kamailio health",
            [target("max by (instance, status) (warp_kamailio_health) == 1", "{{instance}} {{status}}")],
            "One-hot status from what the sniffers see (OPTIONS keepalives, INVITE failures).")
    b.panel("stat", "Exporters up", [target('up{job=~"kamailio|rtpengine|postgres|redis"}', "{{job}} {{instance}}")],
            thresholds=[(None, "red"), (1, "green")], w=16)
    b.row("Databases")
    b.panel("timeseries", "PostgreSQL connections",
            [target("sum by (instance, datname, state) (pg_stat_activity_count)", "{{instance}} {{datname}} {{state}}")],
            "postgres_exporter (seed: warp_db_connections_active).", unit="short")
    b.panel("timeseries", "Redis memory", [target("redis_memory_used_bytes", "{{instance}}")],
            "redis_exporter (seed: warp_redis_memory_used_bytes).", unit="bytes")
    b.panel("stat", "Database up",
            [target("pg_up", "postgres {{instance}}"), target("redis_up", "redis {{instance}}", "B")],
            thresholds=[(None, "red"), (1, "green")])
    return b.render(variables()[:1] + [query_var("sniffer", "Sniffer", 'label_values(up{job="warpsniff"}, sniffer)')])


def outputs() -> dict:
    boards = {
        "account-overview.json": account_overview(),
        "quality-monitoring.json": quality(),
        "sniffer-health.json": sniffer_health(),
    }
    return {OUT / name: json.dumps(doc, indent=2) + "\n" for name, doc in boards.items()}


def main(argv=None) -> int:
    return write_or_check(outputs(), __doc__.splitlines()[0], "deploy/grafana/gen_dashboards.py", argv)


if __name__ == "__main__":
    sys.exit(main())
