"""Helpers for tests that run warpsniff's exporter and a real Prometheus.

- `Proc`/`start_warpsniff`: `python3 -m warpsniff replay ... --listen ... --keep-serving`
  as a subprocess, waited for until the input is done, terminated by `stop()`.
- `start_prometheus`: a real `prometheus` scraping one target every second,
  and `Prometheus.query()` over its HTTP API.
- `fetch`: plain urllib GETs (optionally HTTPS with a given CA, basic auth,
  headers) returning (status, headers, body).
- `parse_exposition`: text exposition -> [(sample name, labels, value)].
- `udp_frame`: an Ethernet/IPv4/UDP frame built with struct (fast enough for
  tens of thousands of packets, where scapy takes seconds).

Only loopback addresses are used.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def need_binary(name: str) -> str:
    """The path of a required tool; a missing one fails the test (CI installs it)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (apt package 'prometheus'; scripts/setup.sh installs it)")
    return path


# --------------------------------------------------------------------------
# HTTP


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def fetch(url: str, headers: Optional[dict] = None, auth: Optional[tuple] = None,
          cafile: Optional[str] = None, timeout: float = 10.0) -> Response:
    """GET without any automatic decoding; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, headers=dict(headers or {}))
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    ctx = None
    if url.startswith("https:"):
        ctx = ssl.create_default_context(cafile=cafile)
    # no proxies, ever: everything here is loopback
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=ctx))
    try:
        with opener.open(req, timeout=timeout) as r:
            return Response(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


# --------------------------------------------------------------------------
# processes


class Proc:
    """A subprocess with stdout/stderr in files, stopped by `stop()`."""

    def __init__(self, argv: list, workdir: Path, name: str, env: Optional[dict] = None):
        self.argv = argv
        self.name = name
        self.out_path = workdir / f"{name}.stdout"
        self.err_path = workdir / f"{name}.stderr"
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.popen = subprocess.Popen(argv, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
                                      env=env, start_new_session=True)

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def describe(self) -> str:
        return (f"{self.name}: {' '.join(map(str, self.argv))}\n  exit: {self.popen.poll()}\n"
                f"  stderr (tail):\n{self.stderr()[-3000:]}")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL; only this process (it leads its own session)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._out.close()
        self._err.close()


def wait_for(what: str, check, timeout: float, proc: Optional[Proc] = None, interval: float = 0.1):
    """Polls `check()` until it returns something truthy; fails with context after `timeout`."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            pytest.fail(f"{proc.name} exited while waiting for {what}\n{proc.describe()}")
        try:
            got = check()
        except (OSError, ValueError, KeyError) as exc:
            got, last_exc = None, exc
        if got:
            return got
        time.sleep(interval)
    extra = f"\nlast error: {last_exc!r}" if last_exc else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}{extra}\n" + (proc.describe() if proc else ""))


DONE_LINE = "input done; still serving"


@dataclass
class Warpsniff:
    proc: Proc
    port: int
    scheme: str = "http"

    @property
    def base(self) -> str:
        return f"{self.scheme}://{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        self.proc.stop()


def start_warpsniff(pcap: Path, config: Path, workdir: Path, name: str = "warpsniff", extra=(),
                    scheme: str = "http", timeout: float = 60.0) -> Warpsniff:
    """Runs the replay with --keep-serving and waits until the input is done."""
    port = free_port()
    argv = [sys.executable, "-m", "warpsniff", "replay", str(pcap), "--config", str(config),
            "--listen", f"{LOOPBACK}:{port}", "--keep-serving", "-q", *map(str, extra)]
    env = dict(os.environ)
    env.pop("http_proxy", None)
    env.pop("HTTP_PROXY", None)
    proc = Proc(argv, workdir, name, env=env)
    w = Warpsniff(proc, port, scheme)
    try:
        wait_for(f"{name} to finish its input", lambda: DONE_LINE in proc.stderr(), timeout, proc)
    except BaseException:
        proc.stop()
        raise
    return w


class Prometheus:
    def __init__(self, proc: Proc, port: int):
        self.proc = proc
        self.port = port

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def api(self, path: str, **params) -> dict:
        url = f"{self.base}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        r = fetch(url)
        doc = json.loads(r.body)
        if doc.get("status") != "success":
            raise AssertionError(f"Prometheus {path} {params}: HTTP {r.status}: {doc}")
        return doc["data"]

    def query(self, promql: str) -> list:
        """Instant vector -> [(labels without __name__, float value)]."""
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector", (promql, data)
        out = []
        for item in data["result"]:
            labels = {k: v for k, v in item["metric"].items() if k != "__name__"}
            out.append((labels, float(item["value"][1])))
        return out

    def scalar(self, promql: str) -> float:
        """A query expected to give exactly one sample."""
        result = self.query(promql)
        assert len(result) == 1, f"{promql}: expected one sample, got {result}"
        return result[0][1]

    def stop(self) -> None:
        self.proc.stop()


def start_prometheus(target: str, workdir: Path, job: str = "warpsniff", timeout: float = 30.0) -> Prometheus:
    """A real Prometheus scraping `target` (HOST:PORT) every second; returns
    once the target is up and a scrape has stored samples."""
    binary = need_binary("prometheus")
    port = free_port()
    cfg = workdir / "prometheus.yml"
    cfg.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: {job}\n"
        "    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    data = workdir / "prometheus-data"
    data.mkdir(exist_ok=True)
    argv = [binary, f"--config.file={cfg}", f"--storage.tsdb.path={data}",
            f"--web.listen-address={LOOPBACK}:{port}", "--log.level=warn"]
    prom = Prometheus(Proc(argv, workdir, "prometheus"), port)
    try:
        def target_up():
            targets = prom.api("targets")["activeTargets"]
            return any(t["health"] == "up" and t["scrapeUrl"].startswith(f"http://{target}/") for t in targets)

        wait_for("Prometheus to scrape warpsniff (target health up)", target_up, timeout, prom.proc, 0.25)
        wait_for("Prometheus to return scraped samples",
                 lambda: prom.query(f'up{{job="{job}"}} == 1') and prom.query("warpsniff_packets_total"),
                 timeout, prom.proc, 0.25)
    except BaseException:
        prom.stop()
        raise
    return prom


# --------------------------------------------------------------------------
# exposition text


def _unescape(value: str) -> str:
    return value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def parse_labels(text: str) -> dict:
    """`a="x",b="y"` (with escapes) -> dict."""
    labels = {}
    i = 0
    while i < len(text):
        eq = text.index("=", i)
        name = text[i:eq].strip().lstrip(",").strip()
        assert text[eq + 1] == '"', text
        j = eq + 2
        buf = []
        while text[j] != '"':
            if text[j] == "\\":
                buf.append(text[j:j + 2])
                j += 2
            else:
                buf.append(text[j])
                j += 1
        labels[name] = _unescape("".join(buf))
        i = j + 1
        while i < len(text) and text[i] in ", ":
            i += 1
    return labels


def parse_exposition(text: str) -> list:
    """Prometheus text format (0.0.4 or OpenMetrics) -> [(name, labels, value)]."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            lbl, rest = rest.rsplit("}", 1)
            labels = parse_labels(lbl)
        else:
            name, rest = line.split(" ", 1)
            labels = {}
        value = rest.split()[0]
        out.append((name, labels, float(value)))
    return out


def family_types(text: str) -> dict:
    """# TYPE lines -> {family: type}."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, fam, typ = line.split(" ", 3)
            out[fam] = typ
    return out


# --------------------------------------------------------------------------
# frames without scapy


MAC_SRC = bytes.fromhex("02000000000a")
MAC_DST = bytes.fromhex("02000000000b")


def _ip_checksum(header: bytes) -> int:
    s = sum(struct.unpack("!10H", header))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def udp_frame(src: tuple, dst: tuple, payload: bytes, ident: int = 0) -> bytes:
    """Ethernet + IPv4 + UDP (checksum 0: none) around `payload`."""
    payload = bytes(payload)
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0x4000, 64, 17, 0,
                      socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
    hdr = hdr[:10] + struct.pack("!H", _ip_checksum(hdr)) + hdr[12:]
    return MAC_DST + MAC_SRC + b"\x08\x00" + hdr + udp
