"""The deploy kit (deploy/, docs/deploy.md) with real components.

- promtool: `check config` on every Prometheus configuration shipped (alone and
  with each long-term store's remote_write appended), `check rules` on every
  rule file, `test rules` on the unit tests (every alert fires and stays
  silent, every recording rule's value is checked).
- A real Prometheus, configured from deploy/prometheus/ (only intervals and
  addresses changed), scrapes three warpsniff replays of pcaps/sample-calls.pcap:
  an HA pair (sniffer span1, replicas a and b) and a second sniffer (span2).
  Every dashboard query is run against it: it parses, and returns data where
  warpsniff produces the metrics; a few give the exact values the capture
  implies. The rules load and evaluate without error.
- remote_write end to end: that Prometheus writes to four real VictoriaMetrics
  (the retention tiers of deploy/longterm/victoriametrics/remote-write.yml) on
  loopback, and queries against them return warpsniff's series, routed by tier
  and labelled with their account shard.

A missing prometheus, promtool or victoria-metrics fails the tests: CI installs
them through scripts/setup.sh.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from promutil import Proc as _Proc
from promutil import free_port

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PROM_DIR = DEPLOY / "prometheus"
RULES_DIR = PROM_DIR / "rules"
UNIT_TESTS = sorted((PROM_DIR / "tests").glob("*.test.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
LONGTERM = DEPLOY / "longterm"
DOC = ROOT / "docs" / "deploy.md"
PCAP = ROOT / "pcaps" / "sample-calls.pcap"
PCAP_CONFIG = ROOT / "pcaps" / "sample-calls.yml"
TRUTH = json.loads((ROOT / "pcaps" / "sample-calls.json").read_text())
LOOPBACK = "127.0.0.1"

# tiers of deploy/longterm/victoriametrics/remote-write.yml: name -> default port
VM_TIERS = {"vm-raw-7d": 8428, "vm-5m-30d": 8429, "vm-1h-90d": 8430, "vm-1d-365d": 8431}
# the other stores' remote_write sections, sent to a VictoriaMetrics of their own in the
# end-to-end test: it stores the labels they compute (tenant, shard) as they arrive
LABEL_CHECKS = {"thanos": LONGTERM / "thanos" / "remote-write.yml",
                "mimir": LONGTERM / "mimir" / "remote-write.yml",
                "vmcluster": LONGTERM / "victoriametrics" / "remote-write-cluster.yml"}


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed (scripts/setup.sh installs the Debian packages "
                    f"'prometheus' and 'victoria-metrics')")
    return path


def run(argv, timeout=120, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def prometheus_hashmod(value: str, modulus: int) -> int:
    """Prometheus' relabel `hashmod`: md5, last 8 bytes big-endian, modulo."""
    return int.from_bytes(hashlib.md5(value.encode()).digest()[8:], "big") % modulus


# ------------------------------------------------------------------ PromQL text helpers

METRIC_RE = re.compile(r"(?<![\w:$\"'.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=[{\[)\s]|$)")
KEYWORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "rate", "increase", "histogram_quantile", "label_replace",
    "max_over_time", "avg_over_time", "sort_desc", "topk", "bottomk", "absent", "vector", "time",
}


def metric_names(expr: str) -> set:
    """Metric names an expression selects (identifiers that are not functions, keywords or labels)."""
    expr = re.sub(r'"[^"]*"', '""', expr)                       # drop string contents
    expr = re.sub(r"\{[^}]*\}", "{}", expr)                     # drop matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for m in METRIC_RE.finditer(expr):
        name = m.group(1)
        tail = expr[m.end():].lstrip()
        if name in KEYWORDS or tail.startswith("("):
            continue
        if re.fullmatch(r"\d+[smhdwy]?", name):
            continue
        names.add(name)
    return names


def catalogue() -> set:
    """Families of docs/metrics.md (histograms with their _bucket/_sum/_count series)."""
    text = (ROOT / "docs" / "metrics.md").read_text()
    names = set()
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) < 2:
            continue
        for name in re.findall(r"`(warp(?:sniff)?_[a-z0-9_]+)`", cells[0]):
            names.add(name)
            if "histogram" in cells[1:3]:
                names.update({name + "_bucket", name + "_sum", name + "_count"})
    return names


# produced by others: the billing system (seed), warpsniff's RTPEngine/Kamailio collectors
# (being built with exactly these names), the standard exporters, Prometheus itself
BILLING = {"warp_spend_cents_total", "warp_account_balance_dollars", "warp_credit_limit_dollars"}
COLLECTORS = {"warp_rtpengine_sessions_active", "warp_rtpengine_capacity_percentage", "warp_rtpengine_up",
              "warp_kamailio_health"}
EXPORTERS = {"up", "pg_up", "pg_stat_activity_count", "redis_up", "redis_memory_used_bytes", "rtpengine_sessions"}
NOT_FROM_WARPSNIFF = re.compile(
    r"warp_spend|warp_account_balance|warp_credit_limit|warp_rtpengine|warp_kamailio|"
    r"\bpg_|\bredis_|\brtpengine_|job=~\"kamailio")
# warpsniff families with no series in the sample capture: a labelled counter appears with
# its first event, and no label set overflows there
ABSENT_IN_SAMPLE = {"warpsniff_label_overflows_total"}


def rule_groups() -> list:
    groups = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        groups += load_yaml(path)["groups"]
    return groups


def recorded_names() -> set:
    return {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}


def dashboard_targets():
    """(dashboard file, panel title, target) for every query of every dashboard."""
    for path in DASHBOARDS:
        doc = json.loads(path.read_text())
        for panel in doc["panels"]:
            for t in panel.get("targets", []):
                yield path.name, panel["title"], t


def grafana_expr(expr: str, rate_interval: str = "1m") -> str:
    """A dashboard query as Grafana sends it with every variable at "All"."""
    expr = expr.replace("$__rate_interval", rate_interval)
    return re.sub(r"\$\{?(account|trunk|provider|sniffer)\}?", ".*", expr)


# ================================================================== static checks


def test_setup_installs_prometheus_and_victoria_metrics():
    text = (ROOT / "scripts" / "setup.sh").read_text()
    m = re.search(r"^APT_PACKAGES=\(([^)]*)\)", text, re.M)
    assert m, "scripts/setup.sh has no APT_PACKAGES list"
    assert {"prometheus", "victoria-metrics"} <= set(m.group(1).split())


def _prometheus_tree(tmp_path: Path, remote_write: Path = None, targets_from: Path = None) -> Path:
    """A copy of deploy/prometheus/ (relative paths kept), prometheus.yml optionally
    with a long-term store's remote_write fragment appended, as a user installs it."""
    tree = tmp_path / "prometheus"
    shutil.copytree(PROM_DIR, tree)
    cfg = tree / "prometheus.yml"
    if remote_write is not None:
        cfg.write_text(cfg.read_text() + "\n" + remote_write.read_text())
    if targets_from is not None:
        for f in (tree / "targets").glob("warpsniff*.yml"):
            f.unlink()
        for f in targets_from.glob("warpsniff*.yml"):
            shutil.copy(f, tree / "targets" / f.name)
    return cfg


REMOTE_WRITES = sorted(LONGTERM.glob("*/remote-write*.yml"))


@pytest.mark.parametrize("fragment", [None, *REMOTE_WRITES, "examples"],
                         ids=lambda f: "base" if f is None else (f if isinstance(f, str) else
                                                                  str(f.relative_to(LONGTERM))))
def test_promtool_check_config(tmp_path, fragment):
    promtool = need("promtool")
    if fragment == "examples":
        cfg = _prometheus_tree(tmp_path, targets_from=PROM_DIR / "targets" / "examples")
    else:
        cfg = _prometheus_tree(tmp_path, fragment)
    r = run([promtool, "check", "config", cfg])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout
    if fragment not in (None, "examples"):
        doc = load_yaml(cfg)
        assert doc.get("remote_write"), f"{fragment}: no remote_write after appending it"


def test_all_three_long_term_stores_are_covered():
    stores = {p.parent.name for p in REMOTE_WRITES}
    assert {"thanos", "mimir", "victoriametrics"} <= stores, stores


def test_promtool_check_config_federation(tmp_path):
    promtool = need("promtool")
    tree = tmp_path / "prometheus"
    shutil.copytree(PROM_DIR, tree)
    r = run([promtool, "check", "config", tree / "federate.yml"])
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_check_rules():
    promtool = need("promtool")
    files = sorted(RULES_DIR.glob("*.yml"))
    assert {f.name for f in files} >= {"warp-recording.yml", "warp-alerts.yml"}
    r = run([promtool, "check", "rules", *files])
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_unit_tests_pass():
    promtool = need("promtool")
    assert UNIT_TESTS
    r = run([promtool, "test", "rules", *UNIT_TESTS])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == len(UNIT_TESTS), r.stdout


def test_generated_rules_and_dashboards_are_fresh():
    for script in (PROM_DIR / "gen_recording.py", DEPLOY / "grafana" / "gen_dashboards.py"):
        r = run([sys.executable, script, "--check"])
        assert r.returncode == 0, f"{script.name}: {r.stderr}"


def test_every_recording_rule_value_is_checked_by_a_unit_test():
    checked = set()
    for path in UNIT_TESTS:
        for group in load_yaml(path)["tests"]:
            for t in group.get("promql_expr_test", []):
                if t.get("exp_samples"):
                    checked.add(t["expr"].strip())
    missing = recorded_names() - checked
    assert not missing, f"recording rules without a value check: {sorted(missing)}"


def test_every_alert_fires_and_stays_silent_in_unit_tests():
    alerts = {r["alert"] for g in rule_groups() for r in g["rules"] if "alert" in r}
    fires, silent = set(), set()
    for path in UNIT_TESTS:
        for group in load_yaml(path)["tests"]:
            for t in group.get("alert_rule_test", []):
                (fires if t.get("exp_alerts") else silent).add(t["alertname"])
    assert alerts - fires == set(), f"never seen firing: {sorted(alerts - fires)}"
    assert alerts - silent == set(), f"never seen silent: {sorted(alerts - silent)}"
    required = {"HighSpendRate", "LowASR", "HighShortCalls", "ApproachingCreditLimit",  # the seed's
                "LowMOS", "HighPDD", "SIP5xxStorm", "RTPEngineCapacityHigh", "WarpsniffCaptureDrops",
                "WarpsniffDown", "SpendSpike"}
    assert required <= alerts, sorted(required - alerts)


def test_seed_alerts_keep_their_thresholds_and_durations():
    rules = {r["alert"]: r for g in rule_groups() for r in g["rules"] if "alert" in r}
    seed = {"HighSpendRate": ("> 10000", "5m"), "LowASR": ("< 0.3", "10m"),
            "HighShortCalls": ("> 0.5", "15m"), "ApproachingCreditLimit": ("< 0.1", "5m")}
    for name, (threshold, duration) in seed.items():
        expr = " ".join(rules[name]["expr"].split())
        assert threshold in expr, (name, expr)
        assert rules[name]["for"] == duration, name
    # the fraud alert keeps the seed's subquery: average of the 5m rate over 1h at 5m steps
    assert "[1h:5m]" in rules["SpendSpike"]["expr"]


def test_queries_use_only_known_metric_names():
    known = catalogue() | BILLING | COLLECTORS | EXPORTERS | recorded_names()
    assert {"warp_call_answered_total", "warp_pdd_milliseconds_bucket", "warpsniff_capture_drops_total"} <= known
    exprs = [(f"rule {r.get('record') or r.get('alert')}", r["expr"]) for g in rule_groups() for r in g["rules"]]
    exprs += [(f"{d}: {title}", t["expr"]) for d, title, t in dashboard_targets()]
    unknown = {}
    for where, expr in exprs:
        for name in metric_names(expr) - known:
            unknown.setdefault(name, []).append(where)
    assert not unknown, f"metric names in no catalogue: {unknown}"


def test_dashboards_structure():
    docs = {p.name: json.loads(p.read_text()) for p in DASHBOARDS}
    assert set(docs) == {"account-overview.json", "quality-monitoring.json", "sniffer-health.json"}
    uids = [d["uid"] for d in docs.values()]
    assert len(set(uids)) == len(uids)
    titles = {name: {p["title"] for p in d["panels"]} for name, d in docs.items()}
    # the seed's panels
    assert {"Current Spend Rate", "Active Calls", "Call Volume (24h)", "ASR Trend"} <= titles["account-overview.json"]
    assert any("PDD" in t or "Post-dial" in t for t in titles["account-overview.json"])
    assert {"ASR by Provider", "Short Call Percentage", "Network Effectiveness",
            "RTP Quality Issues"} <= titles["quality-monitoring.json"]
    for name, d in docs.items():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        wanted = {"sniffer"} if name == "sniffer-health.json" else {"account", "trunk", "provider"}
        assert wanted <= set(variables), name
        for v in wanted:
            assert variables[v]["includeAll"] and variables[v]["allValue"] == ".*"
        ids = [p["id"] for p in d["panels"]]
        assert len(set(ids)) == len(ids)
        for p in d["panels"]:
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24, (name, p["title"])
            if p["type"] == "row":
                continue
            assert p["datasource"]["uid"] == "${datasource}", (name, p["title"])
            assert p["targets"], (name, p["title"])
            for t in p["targets"]:
                assert t["expr"].strip() and t["refId"], (name, p["title"])
        boxes = [(p["title"], p["gridPos"]) for p in d["panels"]]
        for i, (t1, a) in enumerate(boxes):
            for t2, b in boxes[i + 1:]:
                overlap = (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
                           and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])
                assert not overlap, (name, t1, t2)
        # every filter variable is used by some query
        exprs = " ".join(t["expr"] for p in d["panels"] for t in p.get("targets", []))
        for v in wanted:
            assert f"${v}" in exprs, (name, v)


def test_grafana_provisioning():
    prov = DEPLOY / "grafana" / "provisioning"
    ds = load_yaml(prov / "datasources" / "warp-prometheus.yml")
    assert ds["apiVersion"] == 1
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"].startswith("http://")
    boards = load_yaml(prov / "dashboards" / "warp.yml")
    (provider,) = boards["providers"]
    assert provider["type"] == "file"
    # docs/deploy.md copies the JSON files to the provider's path
    assert provider["options"]["path"] in DOC.read_text()


def test_long_term_store_configs_are_consistent():
    """The store-side files agree with the remote_write sections and the seed's tiers."""
    shards = range(16)
    # Thanos: every account shard and daily shard in exactly one hashring, plus a default
    rings = json.loads((LONGTERM / "thanos" / "hashrings.json").read_text())
    tenants = [t for r in rings for t in r.get("tenants", [])]
    assert sorted(tenants) == sorted([f"shard-{i}" for i in shards] + [f"daily-shard-{i}" for i in shards])
    assert [r for r in rings if not r.get("tenants")], "no default hashring for warp-infra"
    assert all(r["endpoints"] for r in rings)
    main = load_yaml(LONGTERM / "thanos" / "compact-main.relabel.yml")
    daily = load_yaml(LONGTERM / "thanos" / "compact-daily.relabel.yml")
    assert (main[0]["action"], daily[0]["action"]) == ("drop", "keep")
    assert main[0]["regex"] == daily[0]["regex"] == "daily-.*"
    thanos_rw = (LONGTERM / "thanos" / "remote-write.yml").read_text()
    assert "'daily-$1'" in thanos_rw and "'shard-$1'" in thanos_rw
    # Mimir: per-tenant retention of the aggregate tiers; raw tier = the default
    overrides = load_yaml(LONGTERM / "mimir" / "runtime-overrides.yml")["overrides"]
    want = {f"warp-{tier}-shard-{i}": days for tier, days in (("5m", "30d"), ("1h", "90d"), ("1d", "365d"))
            for i in shards}
    assert {k: v["compactor_blocks_retention_period"] for k, v in overrides.items()} == want
    mimir = load_yaml(LONGTERM / "mimir" / "mimir.yml")
    assert mimir["limits"]["compactor_blocks_retention_period"] == "7d"
    prom = load_yaml(PROM_DIR / "prometheus.yml")
    assert mimir["limits"]["ha_cluster_label"] in prom["global"]["external_labels"]
    assert mimir["limits"]["ha_replica_label"] in prom["global"]["external_labels"]
    assert mimir["tenant_federation"]["enabled"] and mimir["distributor"]["ha_tracker"]["enable_ha_tracker"]
    proxy = load_yaml(LONGTERM / "mimir" / "cortex-tenant.yml")
    assert proxy["tenant"]["label"] == "warp_tenant" and proxy["tenant"]["label_remove"]
    assert proxy["listen"] in (LONGTERM / "mimir" / "remote-write.yml").read_text()
    # VictoriaMetrics: the tier instances' retention as documented
    text = DOC.read_text()
    for port, days in zip(VM_TIERS.values(), ("7d", "30d", "90d", "365d")):
        assert re.search(rf"httpListenAddr=127\.0\.0\.1:{port} -retentionPeriod={days}\b", text), (port, days)
    assert "--retention.resolution-raw=7d --retention.resolution-5m=30d --retention.resolution-1h=90d" in text
    assert "-downsampling.period=7d:5m,30d:1h,90d:1d" in text


def test_docs_list_the_seed_corrections():
    text = DOC.read_text()
    section = text[text.index("## Corrections to the seed's queries"):]
    for original in ("histogram_quantile(0.95, warp_pdd_milliseconds)",
                     "warp_asr_ratio{window='5m'} by (provider)",
                     'avg_over_time(warp_asr_ratio{window="1h"}[24h]) by (provider)',
                     "rate(warp_spend_cents_total[5m]) > 10000",
                     "warp_account_balance_dollars / warp_credit_limit_dollars < 0.1",
                     "warp_short_call_ratio > 0.5"):
        assert original in section, original
    assert "cannot be averaged" in text or "can't be averaged" in text


# ================================================================== the running stack


def Proc(argv, workdir: Path, name: str) -> _Proc:
    """promutil's process handle, without proxy settings (all traffic here is loopback)."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
    return _Proc([str(a) for a in argv], workdir, name, env=env)


def http_get(url: str, timeout: float = 10.0):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def api(base: str, path: str, **params):
    status, body = http_get(f"{base}/api/v1/{path}?" + urllib.parse.urlencode(params, doseq=True))
    doc = json.loads(body)
    if status != 200 or doc.get("status") != "success":
        raise AssertionError(f"{base} {path} {params}: HTTP {status}: {doc}")
    return doc["data"]


def query(base: str, promql: str) -> list:
    data = api(base, "query", query=promql)
    assert data["resultType"] == "vector", (promql, data)
    return [({k: v for k, v in s["metric"].items() if k != "__name__"}, float(s["value"][1]), s["metric"])
            for s in data["result"]]


def wait_for(what: str, check, timeout: float, procs=(), interval: float = 0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for p in procs:
            if not p.alive():
                pytest.fail(f"{p.name} exited while waiting for {what}:\n{p.stderr()[-3000:]}")
        try:
            got = check()
        except (OSError, ValueError, KeyError, AssertionError) as exc:
            got, last = None, exc
        if got:
            return got
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last!r})")


def _without_intervals(src: Path, dst: Path):
    """A rule file with its groups' own intervals removed, so that every group runs at the
    test's 1 s evaluation interval (the daily group is hourly in production)."""
    doc = load_yaml(src)
    for g in doc["groups"]:
        g.pop("interval", None)
    dst.write_text(yaml.safe_dump(doc, sort_keys=False))


class Stack:
    """VictoriaMetrics x4 <- Prometheus (deploy config) <- warpsniff x3."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.procs = []
        self.vm = {}

    def start(self):
        prometheus, vm_binary = need("prometheus"), need("victoria-metrics")
        w = self.workdir
        # long-term tiers, and one VictoriaMetrics per other store's relabelling
        for name in [*VM_TIERS, *LABEL_CHECKS]:
            port = free_port()
            data = w / f"{name}-data"
            retention = name.rsplit("-", 1)[1] if name in VM_TIERS else "7d"
            p = self._spawn([vm_binary, f"-storageDataPath={data}", f"-httpListenAddr={LOOPBACK}:{port}",
                             f"-retentionPeriod={retention}", "-dedup.minScrapeInterval=1s",
                             "-search.latencyOffset=0s", "-search.disableCache", "-loggerLevel=ERROR"], name)
            self.vm[name] = f"http://{LOOPBACK}:{port}"
            wait_for(f"{name} to start", lambda base=self.vm[name]: http_get(f"{base}/health")[0] == 200, 30, [p])

        # Prometheus from deploy/prometheus: same jobs, relabelling, rules and remote_write
        self.sniffer_ports = {key: free_port() for key in ("span1-a", "span1-b", "span2")}
        targets = w / "warpsniff-targets.yml"
        targets.write_text(yaml.safe_dump([
            {"targets": [f"{LOOPBACK}:{self.sniffer_ports['span1-a']}"], "labels": {"sniffer": "span1", "replica": "a"}},
            {"targets": [f"{LOOPBACK}:{self.sniffer_ports['span1-b']}"], "labels": {"sniffer": "span1", "replica": "b"}},
            {"targets": [f"{LOOPBACK}:{self.sniffer_ports['span2']}"], "labels": {"sniffer": "span2"}},
        ]))
        rules_dir = w / "rules"
        rules_dir.mkdir()
        for f in RULES_DIR.glob("*.yml"):
            _without_intervals(f, rules_dir / f.name)
        cfg = load_yaml(PROM_DIR / "prometheus.yml")
        cfg["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
        cfg.pop("alerting")
        cfg["rule_files"] = [str(rules_dir / "*.yml")]
        prom_port = free_port()
        self.prom = f"http://{LOOPBACK}:{prom_port}"
        for job in cfg["scrape_configs"]:
            for sd in job.get("file_sd_configs", []):
                if job["job_name"] == "warpsniff":
                    sd["files"] = [str(targets)]
                else:
                    sd["files"] = [str(PROM_DIR / f) for f in sd["files"]]
            if job["job_name"] == "prometheus":
                job["static_configs"] = [{"targets": [f"{LOOPBACK}:{prom_port}"]}]
        rw = load_yaml(LONGTERM / "victoriametrics" / "remote-write.yml")["remote_write"]
        assert [e["name"] for e in rw] == list(VM_TIERS)
        for entry in rw:
            entry["url"] = urllib.parse.urlsplit(entry["url"])._replace(
                netloc=urllib.parse.urlsplit(self.vm[entry["name"]]).netloc).geturl()
            entry["queue_config"] = {**entry.get("queue_config", {}), "batch_send_deadline": "1s"}
        for store, fragment in LABEL_CHECKS.items():
            for entry in load_yaml(fragment)["remote_write"]:
                entry.pop("headers", None)
                entry["name"] = f"{store}-{entry['name']}"
                entry["url"] = f"{self.vm[store]}/api/v1/write"
                entry["queue_config"] = {**entry.get("queue_config", {}), "batch_send_deadline": "1s"}
                rw.append(entry)
        cfg["remote_write"] = rw
        (w / "prometheus.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        prom = self._spawn([prometheus, f"--config.file={w / 'prometheus.yml'}",
                            f"--storage.tsdb.path={w / 'prometheus-data'}",
                            f"--web.listen-address={LOOPBACK}:{prom_port}", "--log.level=warn"], "prometheus")
        wait_for("Prometheus to be ready", lambda: http_get(f"{self.prom}/-/ready")[0] == 200, 30, [prom])
        # Prometheus applies new targets every 5 s: start the sniffers once it scrapes them
        # (down for now), so that it sees their counters from the start of the replay
        wait_for("Prometheus to scrape the (not yet started) sniffers",
                 lambda: len(query(self.prom, 'up{job="warpsniff"}')) == 3, 30, [prom])

        # the sniffers: paced replays (1x), so that Prometheus sees counters grow
        self.sniffers = []
        for key, port in self.sniffer_ports.items():
            self.sniffers.append(self._spawn(
                [sys.executable, "-m", "warpsniff", "replay", PCAP, "--config", PCAP_CONFIG,
                 "--listen", f"{LOOPBACK}:{port}", "--keep-serving", "-q", "--speed", "1"], f"warpsniff-{key}"))
        self.t_start = time.time()
        for s in self.sniffers:
            wait_for(f"{s.name} to finish its input", lambda s=s: "input done" in s.stderr(), 90, [s])
        frames = TRUTH["totals"]["frames"]
        wait_for("Prometheus to scrape the final state of the three sniffers",
                 lambda: [v for _, v, _ in query(self.prom, "sum(warpsniff_packets_total)")] == [3.0 * frames], 30)
        # a few rule evaluations over the final state, and a remote_write flush
        time.sleep(4)
        wait_for("the raw tier to receive warpsniff's final state",
                 lambda: [v for _, v, _ in query(self.vm["vm-raw-7d"], "sum(warpsniff_packets_total)")]
                 == [3.0 * frames], 30)
        self.t_end = time.time()

    def _spawn(self, argv, name):
        p = Proc(argv, self.workdir, name)
        self.procs.append(p)
        return p

    def stop(self):
        for p in reversed(self.procs):
            p.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("deploy-stack"))
    try:
        s.start()
        yield s
    finally:
        s.stop()


def test_rules_load_and_evaluate_without_errors(stack):
    groups = api(stack.prom, "rules")["groups"]
    names = {g["name"] for g in groups}
    assert {g["name"] for g in rule_groups()} == names
    bad = [(g["name"], r.get("name"), r.get("lastError")) for g in groups for r in g["rules"]
           if r.get("health") != "ok"]
    assert not bad, bad


def test_dashboard_variables_resolve(stack):
    def values(metric, label):
        return {s[label] for s in api(stack.prom, "series", **{"match[]": metric}) if label in s}

    assert values("warp_call_attempts_total", "account") == {"acme"}
    assert values('warp_call_attempts_total{account=~".*"}', "trunk") == {"demo_carrier"}
    assert values('warp_call_finished_total{account=~".*", trunk=~".*"}', "provider") == {"demo_provider"}
    assert values('up{job="warpsniff"}', "sniffer") == {"span1", "span2"}


def test_every_dashboard_query_runs_and_warpsniff_queries_return_data(stack):
    start, end = int(stack.t_start) - 5, int(time.time())
    empty, failed = [], []
    targets = list(dashboard_targets())
    assert len(targets) > 40
    for board, title, t in targets:
        expr = grafana_expr(t["expr"])
        try:
            data = api(stack.prom, "query_range", query=expr, start=start, end=end, step=1)
        except AssertionError as exc:
            failed.append((board, title, expr, str(exc)[:300]))
            continue
        if not NOT_FROM_WARPSNIFF.search(expr) and not metric_names(expr) & ABSENT_IN_SAMPLE \
                and not data["result"]:
            empty.append((board, title, expr))
    assert not failed, "queries Prometheus refused:\n" + "\n".join(map(str, failed))
    assert not empty, "queries without data although warpsniff produces their metrics:\n" + \
        "\n".join(map(str, empty))


def _panel_expr(board: str, title: str, ref: str = "A") -> str:
    for name, t_title, t in dashboard_targets():
        if name == board and t_title == title and t["refId"] == ref:
            return grafana_expr(t["expr"])
    raise KeyError((board, title, ref))


def test_dashboard_values_match_the_capture(stack):
    calls = TRUTH["calls"]
    answered = [c for c in calls if c["answer_ns"] is not None]
    frames, sip, rtp = (TRUTH["totals"][k] for k in ("frames", "sip_messages", "rtp_packets"))
    instances = {("span1", "a"), ("span1", "b"), ("span2", None)}

    def per_sniffer(expr):
        got = {(lb.get("sniffer"), lb.get("replica")): v for lb, v, _ in query(stack.prom, expr)}
        assert set(got) == instances, (expr, got)
        return got

    # Sniffer Health, "Totals since start": every sniffer saw the whole capture
    sh = "sniffer-health.json"
    for ref, total in (("A", frames), ("B", sip), ("C", rtp)):
        assert set(per_sniffer(_panel_expr(sh, "Totals since start", ref)).values()) == {float(total)}

    # Quality Monitoring, per-sniffer windows: 18 of 20 calls answered, 17 of the 18 under 6 s
    q = "quality-monitoring.json"
    assert set(per_sniffer(_panel_expr(q, "Windowed KPIs per sniffer", "A")).values()) == \
        {len(answered) / len(calls)}
    short = [c for c in answered if (c["end_ns"] - c["answer_ns"]) < 6e9]
    for v in per_sniffer(_panel_expr(q, "Windowed KPIs per sniffer", "D")).values():
        assert v == pytest.approx(len(short) / len(answered))
    acd = sum(c["end_ns"] - c["answer_ns"] for c in answered) / len(answered) / 1e9
    for v in per_sniffer(_panel_expr(q, "Windowed KPIs per sniffer", "B")).values():
        assert v == pytest.approx(acd, abs=0.01)

    # RTP Quality Issues: exactly call 5's caller->callee stream, 3 of 300 packets lost
    lossy = [c for c in calls if c["call"] == 5][0]
    rows = query(stack.prom, _panel_expr(q, "RTP Quality Issues"))
    assert {(lb["call_id"], lb["direction"], lb["codec"]) for lb, _, _ in rows} == \
        {(lossy["call_id"], "outbound", lossy["codec"])}
    assert len(rows) == 3 and {v for _, v, _ in rows} == {3 / 300}

    # NER from the summed counters: every finished attempt here is an NER success
    # (18 answered, 486 busy, 487 after ringing), so the ratio is exactly 1 whatever the
    # extrapolation of increase()
    assert [v for _, v, _ in query(stack.prom, _panel_expr(q, "Network Effectiveness"))] == [1.0]

    # Account Overview, ASR trend from the counters: increase() over a paced replay is
    # extrapolated and misses what happened before the first scrape, so only roughly 0.9
    (asr,) = [v for _, v, _ in query(stack.prom, _panel_expr("account-overview.json", "ASR Trend"))]
    assert 0.8 <= asr <= 1.0


def test_ha_pair_counts_once_and_sniffers_add_up(stack):
    attempts = len(TRUTH["calls"])
    total = query(stack.prom, "sum(warp_call_attempts_total)")[0][1]
    dedup = query(stack.prom, "sum(max without (replica) (warp_call_attempts_total))")[0][1]
    assert total == 3 * attempts          # span1 a, span1 b, span2
    assert dedup == 2 * attempts          # span1 once, plus span2
    # both replicas of the HA pair share instance="span1"; span2 keeps its address
    up = {(lb["instance"], lb.get("replica")) for lb, _, _ in query(stack.prom, 'up{job="warpsniff"}')}
    assert up == {("span1", "a"), ("span1", "b"), (f"{LOOPBACK}:{stack.sniffer_ports['span2']}", None)}
    # the recorded 5m increase counts two sniffers' worth (about 2 x 19: the first scraped
    # value of a new series is not an increase), not three
    (v,) = [v for _, v, _ in query(stack.prom, "sum(account_trunk_direction_zone:warp_call_attempts:increase5m)")]
    assert 1.5 * attempts <= v <= 2.4 * attempts, v


def test_remote_write_reaches_victoriametrics_by_tier(stack):
    raw = stack.vm["vm-raw-7d"]
    frames = TRUTH["totals"]["frames"]
    assert [v for _, v, _ in query(raw, "sum(warpsniff_packets_total)")] == [3.0 * frames]
    rows = query(raw, 'warp_call_attempts_total{sniffer="span2"}')
    assert len(rows) == 1
    labels, value, _ = rows[0]
    assert value == len(TRUTH["calls"])
    # account shard (hashmod 16), cluster kept, Prometheus replica label and scratch labels gone
    assert labels["account_shard"] == str(prometheus_hashmod("acme", 16))
    assert labels["cluster"] == "site1"
    assert "prometheus_replica" not in labels
    names = set(api(raw, "labels"))
    assert not {n for n in names if n.startswith("__tmp")}, names
    # series without an account (the sniffer's own) get no shard
    (pk,) = query(raw, 'warpsniff_packets_total{sniffer="span2"}')
    assert "account_shard" not in pk[0]

    # aggregate tiers hold only their own recording rules
    for tier, suffix in (("vm-5m-30d", "5m"), ("vm-1h-90d", "1h"), ("vm-1d-365d", "1d")):
        base = stack.vm[tier]
        series_names = wait_for(
            f"{tier} to receive its recording rules",
            lambda base=base: set(api(base, "label/__name__/values")), 30)
        assert f"account_trunk_provider_zone:warp_asr:ratio{suffix}" in series_names, (tier, series_names)
        assert all(re.fullmatch(rf"[^:]+:[^:]+:[a-z0-9_]*{suffix}", n) for n in series_names), (tier, series_names)
        (asr,) = query(base, f"account:warp_asr:ratio{suffix}")
        assert asr[0]["account"] == "acme" and 0.8 <= asr[1] <= 1.0
        assert asr[0]["account_shard"] == str(prometheus_hashmod("acme", 16))


def _vm_labels(base: str, promql: str) -> list:
    rows = wait_for(f"{promql} in {base}", lambda: query(base, promql), 30)
    return [lb for lb, _, _ in rows]


def test_other_stores_relabelling_computes_tenants_and_shards(stack):
    """The Thanos, Mimir and VictoriaMetrics-cluster remote_write sections, run by the real
    Prometheus: the tenant / shard labels they add are what their stores route on."""
    shard = prometheus_hashmod("acme", 16)
    # Thanos Receive: warp_tenant is the tenant (--receive.split-tenant-label-name)
    th = stack.vm["thanos"]
    assert {lb["warp_tenant"] for lb in _vm_labels(th, "warp_call_attempts_total")} == {f"shard-{shard}"}
    assert {lb["warp_tenant"] for lb in _vm_labels(th, "account:warp_asr:ratio5m")} == {f"shard-{shard}"}
    assert {lb["warp_tenant"] for lb in _vm_labels(th, "account:warp_asr:ratio1d")} == {f"daily-shard-{shard}"}
    assert all("warp_tenant" not in lb for lb in _vm_labels(th, "warpsniff_packets_total"))
    # Mimir via cortex-tenant: warp_tenant = warp-<tier>-shard-<N>
    mi = stack.vm["mimir"]
    for expr, tier in (("warp_call_attempts_total", "raw"), ("account:warp_asr:ratio5m", "5m"),
                       ("account:warp_asr:ratio1h", "1h"), ("account:warp_asr:ratio1d", "1d"),
                       ("account:warp_call_finished:increase5m", "5m")):
        assert {lb["warp_tenant"] for lb in _vm_labels(mi, expr)} == {f"warp-{tier}-shard-{shard}"}, expr
    assert all("warp_tenant" not in lb for lb in _vm_labels(mi, "warpsniff_packets_total"))
    # VictoriaMetrics cluster: vm_account_id is the tenant; 16 for series without an account
    vc = stack.vm["vmcluster"]
    assert {lb["vm_account_id"] for lb in _vm_labels(vc, "warp_call_attempts_total")} == {str(shard)}
    assert {lb["vm_account_id"] for lb in _vm_labels(vc, "warpsniff_packets_total")} == {"16"}
    for base in (th, mi, vc):
        names = set(api(base, "labels"))
        assert not {n for n in names if n.startswith("__tmp")}, (base, names)


def test_systemd_unit_runs_a_valid_live_command():
    """The unit's ExecStart, with its Environment= defaults and the env file
    docs/deploy.md shows, is a command line warpsniff accepts; it grants
    exactly the two capabilities live capture needs."""
    from warpsniff.cli import build_parser

    unit = (ROOT / "deploy" / "systemd" / "warpsniff@.service").read_text()
    settings = [line.partition("=") for line in unit.splitlines() if "=" in line and not line.startswith("#")]
    env = dict(v.partition("=")[::2] for k, _, v in settings if k == "Environment")
    docs = (ROOT / "docs" / "deploy.md").read_text()
    env_file = docs.split("/etc/warpsniff/eth1.env <<'EOF'\n", 1)[1].split("\nEOF", 1)[0]
    for line in env_file.splitlines():
        key, _, value = line.split("#")[0].strip().partition("=")
        env[key] = value
    exec_start = next(v for k, _, v in settings if k == "ExecStart").replace("%i", "eth1")
    argv = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], exec_start).split()
    assert argv[0].endswith("/warpsniff")
    args = build_parser().parse_args(argv[1:])
    assert (args.command, args.interface, args.workers) == ("live", ["eth1"], 1)
    caps = {k: set(v.split()) for k, _, v in settings if k in ("AmbientCapabilities", "CapabilityBoundingSet")}
    assert caps == {"AmbientCapabilities": {"CAP_NET_RAW", "CAP_NET_ADMIN"},
                    "CapabilityBoundingSet": {"CAP_NET_RAW", "CAP_NET_ADMIN"}}
