"""rtpengine capacity and Kamailio health (warpsniff/relay, issue 7).

The rtpengine tests start the real daemon (Debian rtpengine-daemon,
userspace forwarding only, everything on loopback) as a child process, drive
it with ng commands and check the exporter's gauges follow it; they fail,
not skip, when the binary is missing (scripts/setup.sh installs it). ng
traffic recorded from the daemon, plus crafted datagrams, goes through a
capture to check the sniffed counts and latencies. Kamailio health comes
from crafted OPTIONS/INVITE traffic with known answers and delays.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sipgen import Capture, Dialog, response
from warpsniff.cli import main
from warpsniff.exporter import Exporter, registry_for
from warpsniff.labels import ConfigError, LabelConfig
from warpsniff.pipeline import Pipeline
from warpsniff.relay import Relay, ng
from warpsniff.relay.ng import MalformedBencode, NgClient
from warpsniff.replay import EngineOptions, replay

LOOP = "127.0.0.1"
RTP_PORTS = 100   # the daemon's media port range in these tests
SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


# ----------------------------------------------------------------------------- helpers


def free_port(kind=socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((LOOP, 0))
        return s.getsockname()[1]


def relay_for(tmp_path, text: str, resolve: bool = True) -> Relay:
    path = tmp_path / "warpsniff.yml"
    path.write_text(text)
    return Relay.from_config(LabelConfig.load(str(path)), resolve=resolve)


def samples(text: str) -> dict:
    """exposition text -> {(sample name, frozenset(labels)): value}"""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text_or_samples, name: str, **labels):
    table = samples(text_or_samples) if isinstance(text_or_samples, str) else text_or_samples
    return table.get((name, frozenset(labels.items())))


def wait_for(what: str, predicate, timeout: float = 10.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class Rtpengine:
    """The real daemon, foreground child process, loopback only."""

    def __init__(self, tmp_path: Path, *, http: bool = False):
        binary = shutil.which("rtpengine") or ("/usr/bin/rtpengine" if os.path.exists("/usr/bin/rtpengine") else None)
        if binary is None:
            pytest.fail("rtpengine is not installed: apt-get install rtpengine-daemon (scripts/setup.sh does)")
        self.ng_port = free_port()
        self.http_port = free_port(socket.SOCK_STREAM) if http else None
        base = random.randrange(20000, 29000, 2)   # below Linux's ephemeral ports
        args = [binary, "--config-file=none", "--foreground", "--log-stderr", "--table=-1",
                f"--interface={LOOP}", f"--listen-ng={LOOP}:{self.ng_port}",
                f"--port-min={base}", f"--port-max={base + RTP_PORTS - 1}",
                "--delete-delay=0", "--log-level=6"]
        if http:
            args.append(f"--listen-http={LOOP}:{self.http_port}")
        self.log = tmp_path / f"rtpengine-{self.ng_port}.log"
        self.proc = subprocess.Popen(args, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"rtpengine exited with {self.proc.returncode}:\n{self.log.read_text()[-2000:]}")
            try:
                with NgClient(LOOP, self.ng_port, 0.2) as c:
                    if c.ping():
                        break
            except (OSError, ng.NgError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"rtpengine did not answer ng ping:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def command(self, **message) -> dict:
        with NgClient(LOOP, self.ng_port, 2.0) as c:
            return c.command(message)

    def open_session(self, i: int) -> None:
        assert self.command(command="offer", **{"call-id": f"call-{i}", "from-tag": f"ft-{i}"},
                            sdp=SDP)[b"result"] == b"ok"
        answer_sdp = SDP.replace(b"40000", b"40010")
        assert self.command(command="answer", **{"call-id": f"call-{i}", "from-tag": f"ft-{i}", "to-tag": f"tt-{i}"},
                            sdp=answer_sdp)[b"result"] == b"ok"

    def close_session(self, i: int) -> None:
        assert self.command(command="delete", **{"call-id": f"call-{i}", "from-tag": f"ft-{i}"})[b"result"] == b"ok"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def rtpengine_factory(tmp_path):
    started = []

    def start(**kw) -> Rtpengine:
        daemon = Rtpengine(tmp_path, **kw)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


# ----------------------------------------------------------------------------- configuration


def test_config_parsed_with_defaults(tmp_path):
    relay = relay_for(tmp_path, """
rtpengine:
  - {name: rtp1, ng: "127.0.0.1:2223", http: "http://127.0.0.1:2225", max_sessions: 500}
  - {name: rtp2, ng: "[::1]:2223", http: "http://[::1]:2225/metrics", poll_interval_seconds: 2.5,
     poll_timeout_seconds: 0.5, sniffed_session_timeout_seconds: 600}
kamailio:
  - {name: kam1, address: 192.0.2.5:5060}
  - {name: kam2, address: "2001:db8::5", window_seconds: 30, min_invites: 3, latency_degraded_seconds: 0.1}
""")
    r1, r2 = relay.config.rtpengine
    assert (r1.name, r1.ng_host, r1.ng_port, r1.http, r1.max_sessions) == \
        ("rtp1", LOOP, 2223, "http://127.0.0.1:2225/metrics", 500)
    assert (r1.poll_interval_s, r1.poll_timeout_s, r1.sniffed_session_timeout_s) == (5.0, 1.0, 14400.0)
    assert r1.addresses16 == (bytes(10) + b"\xff\xff" + bytes([127, 0, 0, 1]),)
    assert (r2.ng_host, r2.http, r2.max_sessions, r2.poll_interval_s, r2.poll_timeout_s) == \
        ("::1", "http://[::1]:2225/metrics", None, 2.5, 0.5)
    k1, k2 = relay.config.kamailio
    assert (k1.port, k1.window_s, k1.options_timeout_s, k1.invite_timeout_s, k1.min_invites) == \
        (5060, 60.0, 5.0, 5.0, 10)
    assert (k1.latency_degraded_s, k1.latency_unhealthy_s) == (0.25, 1.0)
    assert (k1.options_loss_degraded, k1.options_loss_unhealthy) == (0.01, 0.5)
    assert (k1.invite_failure_degraded, k1.invite_failure_unhealthy) == (0.05, 0.25)
    assert (k2.port, k2.window_s, k2.min_invites, k2.latency_degraded_s) == (None, 30.0, 3, 0.1)
    assert relay.control_ports == (2223,)
    assert relay_for(tmp_path, "rtpengine: []\nkamailio: []\n") is None


NG = 'ng: "127.0.0.1:2223"'
BAD_RELAY_CONFIGS = [
    ("rtpengine: [{ng: '127.0.0.1:2223'}]", "rtpengine[0]", "missing 'name'"),
    ("rtpengine: [{name: a}]", "rtpengine[0]", "missing 'ng'"),
    ("rtpengine: [{name: a, ng: 127.0.0.1}]", "rtpengine[0].ng", "has no port"),
    ("rtpengine: [{name: a, ng: '127.0.0.1:70000'}]", "rtpengine[0].ng", "is not 1-65535"),
    ("rtpengine: [{name: a, ng: '::1:2223'}]", "rtpengine[0].ng", "[ADDRESS]:PORT"),
    ("rtpengine: [{name: a, %s, max_sessions: 0}]" % NG, "rtpengine[0].max_sessions", "out of range"),
    ("rtpengine: [{name: a, %s, http: 'ftp://x'}]" % NG, "rtpengine[0].http", "not an http:// or https:// URL"),
    ("rtpengine: [{name: a, %s, poll_interval_seconds: 0}]" % NG, "rtpengine[0].poll_interval_seconds", "positive"),
    ("rtpengine: [{name: a, %s, url: x}]" % NG, "rtpengine[0]", "unknown key url"),
    ("rtpengine: [{name: other, %s}]" % NG, "rtpengine[0].name", "reserved"),
    ("rtpengine: [{name: a, %s}, {name: a, %s}]" % (NG, NG), "rtpengine[1].name", "duplicate name 'a'"),
    ("kamailio: [{name: k}]", "kamailio[0]", "missing 'address'"),
    ("kamailio: [{name: k, address: proxy.example.com}]", "kamailio[0].address", "is not an IP address"),
    ("kamailio: [{name: k, address: 10.0.0.1, options_loss_unhealthy: 1.5}]",
     "kamailio[0].options_loss_unhealthy", "ratio from 0 to 1"),
    ("kamailio: [{name: k, address: 10.0.0.1, latency_degraded_seconds: 2}]",
     "kamailio[0].latency_degraded_seconds", "above latency_unhealthy_seconds"),
    ("kamailio: [{name: k, address: 10.0.0.1, min_invites: 0}]", "kamailio[0].min_invites", "out of range"),
]


@pytest.mark.parametrize("text,where,problem", BAD_RELAY_CONFIGS, ids=[b[1] + ":" + b[2] for b in BAD_RELAY_CONFIGS])
def test_config_errors_name_file_path_and_problem(tmp_path, text, where, problem):
    path = tmp_path / "bad.yml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as err:
        Relay.from_config(LabelConfig.load(str(path)), resolve=False)
    message = str(err.value)
    assert message.startswith(f"{path}: {where}: "), message
    assert problem in message, message


def test_cli_reports_a_bad_relay_section_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yml"
    path.write_text("rtpengine: [{name: a}]\n")
    assert main(["replay", "--config", str(path), str(tmp_path / "none.pcap")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"warpsniff: {path}: rtpengine[0]: missing 'ng' (HOST:PORT of its ng control socket)"]


# ----------------------------------------------------------------------------- ng codec


def test_ng_framing_and_lenient_decoding():
    datagram = ng.frame(b"5_1", {"command": "offer", "call-id": "abc", "flags": ["trust-address"]})
    assert datagram == b"5_1 d7:call-id3:abc7:command5:offer5:flagsl13:trust-addressee"
    assert ng.split(datagram) == (b"5_1", {b"command": b"offer", b"call-id": b"abc", b"flags": [b"trust-address"]})
    # rtpengine writes keys in insertion order, as its real replies do
    assert ng.split(b"x d3:sdp3:v=06:result2:oke") == (b"x", {b"sdp": b"v=0", b"result": b"ok"})
    for bad in (b"", b"nocookie", b"c ", b" d6:result2:oke", b"c d6:result2:ok", b"c i5e", b"c l1:ae",
                b"c d1:ai1e1:ai2ee", b"c d6:result99:oke", b"c d6:result-1:e", b"c " + b"l" * 100 + b"e" * 100,
                b"c d6:result2:okee", b"c di1ei2ee", b"c \xff\xfe"):
        with pytest.raises(MalformedBencode):
            ng.split(bad)


# ----------------------------------------------------------------------------- polling the real daemon


def test_polled_gauges_follow_the_real_rtpengine(tmp_path, rtpengine_factory):
    daemon = rtpengine_factory(http=True)
    relay = relay_for(tmp_path, f"""
rtpengine:
  - {{name: fast_ng, ng: "{LOOP}:{daemon.ng_port}", max_sessions: 10, poll_interval_seconds: 0.2,
     poll_timeout_seconds: 0.3}}
  - {{name: fast_http, ng: "{LOOP}:{daemon.ng_port}", http: "http://{LOOP}:{daemon.http_port}", max_sessions: 20,
     poll_interval_seconds: 0.2, poll_timeout_seconds: 0.3}}
  - {{name: default, ng: "{LOOP}:{daemon.ng_port}", max_sessions: 10}}
""")
    pipeline = Pipeline(EngineOptions(control_ports=relay.control_ports))
    relay.attach(pipeline)
    exporter = Exporter(registry_for(pipeline, relay=relay), f"{LOOP}:0").start()
    relay.start()
    url = f"http://{LOOP}:{exporter.port}"

    def scrape() -> dict:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
            return samples(resp.read().decode())

    def gauges(name):
        m = scrape()
        return tuple(value(m, name, instance=i) for i in ("fast_ng", "fast_http", "default"))

    try:
        started = time.monotonic()
        # every instance, the default 5 s interval too, shows up within 10 s of start
        wait_for("first polls", lambda: gauges("warp_rtpengine_up") == (1.0, 1.0, 1.0))
        wait_for("zero sessions", lambda: gauges("warp_rtpengine_sessions_active") == (0.0, 0.0, 0.0))
        assert time.monotonic() - started < 10
        m = scrape()
        assert value(m, "warp_rtpengine_capacity_percentage", instance="fast_ng") == 0.0
        assert value(m, "warpsniff_rtpengine_max_sessions", instance="fast_http") == 20.0
        assert value(m, "warp_rtpengine_ports_free", instance="fast_ng") == RTP_PORTS
        assert value(m, "warp_rtpengine_ports_used", instance="fast_http") == 0.0
        assert 0 < value(m, "warpsniff_rtpengine_poll_seconds", instance="fast_ng") < 0.3
        assert value(m, "warpsniff_rtpengine_packets_per_second", instance="fast_ng") == 0.0

        for i in range(4):
            daemon.open_session(i)
        wait_for("4 sessions", lambda: gauges("warp_rtpengine_sessions_active")[:2] == (4.0, 4.0))
        m = scrape()
        assert value(m, "warp_rtpengine_capacity_percentage", instance="fast_ng") == pytest.approx(40.0)
        assert value(m, "warp_rtpengine_capacity_percentage", instance="fast_http") == pytest.approx(20.0)
        used_ng, used_http = (value(m, "warp_rtpengine_ports_used", instance=i) for i in ("fast_ng", "fast_http"))
        free_ng = value(m, "warp_rtpengine_ports_free", instance="fast_ng")
        assert used_ng > 0 and used_ng + free_ng == RTP_PORTS
        assert used_http == used_ng    # rtpengine's /metrics and its ng statistics agree

        daemon.close_session(0)
        daemon.close_session(1)
        wait_for("2 sessions", lambda: gauges("warp_rtpengine_sessions_active")[:2] == (2.0, 2.0))
        m = scrape()
        assert value(m, "warp_rtpengine_capacity_percentage", instance="fast_ng") == pytest.approx(20.0)
        assert value(m, "warp_rtpengine_capacity_percentage", instance="fast_http") == pytest.approx(10.0)
        assert value(m, "warp_rtpengine_ports_used", instance="fast_ng") < used_ng
        assert value(m, "warpsniff_rtpengine_ended_sessions_total", instance="fast_ng") == 2.0
        assert value(m, "warpsniff_rtpengine_errors_total", instance="fast_ng", kind="poll_timeout") == 0.0

        # the daemon goes away: up drops to 0, sessions are no longer claimed, the exporter keeps serving
        daemon.stop()
        wait_for("up=0", lambda: gauges("warp_rtpengine_up")[:2] == (0.0, 0.0), timeout=5)
        wait_for("sessions gone", lambda: gauges("warp_rtpengine_sessions_active")[:2] == (None, None), timeout=5)
        m = scrape()
        assert value(m, "warp_rtpengine_capacity_percentage", instance="fast_ng") is None
        failures = sum(value(m, "warpsniff_rtpengine_errors_total", instance="fast_ng", kind=k)
                       for k in ("poll_unreachable", "poll_timeout"))
        assert failures >= 1
        assert value(m, "warpsniff_rtpengine_errors_total", instance="fast_http", kind="http_failed") >= 1
        assert value(m, "warpsniff_rtpengine_poll_seconds", instance="fast_ng") < 1.0   # bounded by the timeout
        with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:
            assert resp.status == 200
        time.sleep(0.5)
        assert gauges("warp_rtpengine_up")[:2] == (0.0, 0.0)   # still serving, still polling
    finally:
        relay.stop()
        exporter.stop()
    assert all(p.thread is None for p in relay.pollers)


def test_unreachable_instance_never_blocks_a_scrape(tmp_path):
    dead = free_port()   # nothing listens there
    relay = relay_for(tmp_path, f"""
rtpengine:
  - {{name: gone, ng: "{LOOP}:{dead}", http: "http://{LOOP}:{free_port(socket.SOCK_STREAM)}", max_sessions: 5,
     poll_interval_seconds: 0.1, poll_timeout_seconds: 0.2}}
  - {{name: blackhole, ng: "192.0.2.1:2223", max_sessions: 5, poll_interval_seconds: 0.1, poll_timeout_seconds: 0.3}}
""")
    registry = registry_for(Pipeline(EngineOptions(control_ports=relay.control_ports)), relay=relay)
    relay.start()
    try:
        wait_for("both polled", lambda: all(p.state().polled for p in relay.pollers), timeout=5)
        t0 = time.monotonic()
        for _ in range(20):
            text = generate_latest(registry).decode()
        assert time.monotonic() - t0 < 1.0         # scrapes read state, never wait on the network
        assert value(text, "warp_rtpengine_up", instance="gone") == 0.0
        assert value(text, "warp_rtpengine_up", instance="blackhole") == 0.0
        assert value(text, "warp_rtpengine_sessions_active", instance="gone") is None
    finally:
        relay.stop()


def test_poller_counts_malformed_and_foreign_replies(tmp_path):
    """A fake ng peer: garbage to the first ping, a wrong cookie to the second
    (a timeout), then a proper pong with a statistics reply missing fields."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((LOOP, 0))
    server.settimeout(5)
    replies = [lambda c: c + b" d6:result4:pong",                      # truncated bencode
               lambda c: b"someone-else d6:result4:ponge",             # not our cookie
               lambda c: c + b" d6:result4:ponge",
               lambda c: c + b" d6:result2:ok10:statisticsd17:currentstatisticsd11:sessionsowni7eeee"]

    def serve():
        for reply in replies:
            try:
                data, peer = server.recvfrom(65535)
            except OSError:
                return
            server.sendto(reply(data.partition(b" ")[0]), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    relay = relay_for(tmp_path, f"""
rtpengine: [{{name: fake, ng: "{LOOP}:{server.getsockname()[1]}", max_sessions: 70, poll_timeout_seconds: 0.3}}]
""")
    poller = relay.pollers[0]
    try:
        poller.poll_once()
        poller.poll_once()
        poller.poll_once()
    finally:
        thread.join(5)
        server.close()
    state = poller.state()
    assert state.up and state.sessions == 7 and state.ports_used is None
    assert state.errors == {"poll_malformed": 1, "poll_timeout": 1}
    text = generate_latest(registry_for(Pipeline(EngineOptions()), relay=relay)).decode()
    assert value(text, "warp_rtpengine_capacity_percentage", instance="fake") == pytest.approx(10.0)
    assert value(text, "warp_rtpengine_ports_used", instance="fake") is None
    assert value(text, "warpsniff_rtpengine_errors_total", instance="fake", kind="poll_malformed") == 1


# ----------------------------------------------------------------------------- sniffed ng traffic


def test_sniffed_sessions_and_latency_from_recorded_real_ng_traffic(tmp_path, rtpengine_factory):
    """ng traffic exchanged with the real daemon, written to a capture (with its
    real replies: keys unsorted), plus crafted datagrams of known timing."""
    daemon = rtpengine_factory()
    proxy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    proxy.bind((LOOP, 0))
    proxy.settimeout(2)
    proxy_ep = (LOOP, proxy.getsockname()[1])
    ng_ep = (LOOP, daemon.ng_port)
    recorded = []   # (wall time, src, dst, bytes)

    def exchange(cookie: str, **message):
        data = ng.frame(cookie.encode(), message)
        recorded.append((time.time(), proxy_ep, ng_ep, data))
        proxy.sendto(data, ng_ep)
        reply = proxy.recv(65535)
        recorded.append((time.time(), ng_ep, proxy_ep, reply))
        return ng.split(reply)[1]

    def ids(i):
        return {"call-id": f"rec-{i}", "from-tag": f"ft-{i}"}

    try:
        assert exchange("r0", command="ping")[b"result"] == b"pong"
        for i in range(3):
            assert exchange(f"o{i}", command="offer", sdp=SDP, **ids(i))[b"result"] == b"ok"
            assert exchange(f"a{i}", command="answer", sdp=SDP.replace(b"40000", b"40010"),
                            **ids(i), **{"to-tag": f"tt-{i}"})[b"result"] == b"ok"
        # a re-INVITE's offer: the same session, not a new one
        assert exchange("re0", command="offer", sdp=SDP.replace(b"1 1 IN", b"1 2 IN"), **ids(0))[b"result"] == b"ok"
        assert exchange("d0", command="delete", **ids(0))[b"result"] == b"ok"
        # rtpengine answers ok (with a warning) to deleting an unknown call, error to querying one
        assert exchange("d9", command="delete", **ids(9))[b"warning"]
        assert exchange("q9", command="query", **ids(9))[b"result"] == b"error"
    finally:
        proxy.close()
    real_latencies = {}
    for (t_cmd, *_c), (t_rep, *_r) in zip(recorded[0::2], recorded[1::2]):
        label = ng.command_label(ng.split(_c[-1])[1][b"command"])
        real_latencies.setdefault(label, []).append(t_rep - t_cmd)

    cap = Capture()
    w0 = recorded[0][0]
    for wall, src, dst, data in recorded:
        cap.udp(wall - w0, src, dst, data)
    t = 10.0
    other_proxy = ("127.0.0.2", 40000)
    crafted = ng.frame(b"c1", {"command": "offer", "call-id": "crafted-1", "from-tag": "x", "sdp": "v=0"})
    cap.udp(t, other_proxy, ng_ep, crafted)
    cap.udp(t + 0.0042, ng_ep, other_proxy, b"c1 d3:sdp3:v=06:result2:oke")
    cap.udp(t + 0.01, ng_ep, other_proxy, b"c1 d3:sdp3:v=06:result2:oke")    # repeated reply: no effect
    cap.udp(t + 0.02, other_proxy, ng_ep, b"c2 d7:command5:offer")            # truncated bencode
    cap.udp(t + 0.03, other_proxy, ng_ep, b"no cookie here")
    cap.udp(t + 0.04, other_proxy, ng_ep, ng.frame(b"c3", {"command": "delete", "call-id": "never"}))  # unanswered
    cap.fillers(t + 1, t + 45, step=5)     # capture time moves past the reply timeout
    pcap = cap.write(tmp_path / "ng.pcap")

    relay = relay_for(tmp_path, f"""
rtpengine:
  - {{name: sniffed, ng: "{LOOP}:{daemon.ng_port}", max_sessions: 8}}
""")
    pipeline = Pipeline(EngineOptions(control_ports=relay.control_ports))
    relay.attach(pipeline)
    result = replay([str(pcap)], pipeline=pipeline)
    assert result.counters["control_udp"] == len(recorded) + 6
    text = generate_latest(registry_for(pipeline, relay=relay)).decode()
    m = samples(text)

    def v(name, **labels):
        return value(m, name, instance="sniffed", **labels)

    assert v("warpsniff_rtpengine_sniffed_sessions_opened_total") == 4      # rec-0..2, crafted-1
    assert v("warpsniff_rtpengine_sniffed_sessions_closed_total") == 1      # rec-0
    assert v("warpsniff_rtpengine_sniffed_sessions_active") == 3
    # never polled (no pollers started): the gauges come from the capture
    assert v("warp_rtpengine_up") is None
    assert v("warp_rtpengine_sessions_active") == 3
    assert v("warp_rtpengine_capacity_percentage") == pytest.approx(37.5)
    assert v("warpsniff_rtpengine_errors_total", kind="sniffed_malformed") == 2
    assert v("warpsniff_rtpengine_errors_total", kind="sniffed_error_reply") == 1
    assert v("warpsniff_rtpengine_errors_total", kind="sniffed_unanswered") == 1
    counts = {c: v("warpsniff_rtpengine_command_latency_seconds_count", command=c)
              for c in ("ping", "offer", "answer", "delete", "query")}
    assert counts == {"ping": 1, "offer": 5, "answer": 3, "delete": 2, "query": 1}
    for command, real in real_latencies.items():
        crafted_part = 0.0042 if command == "offer" else 0.0
        got = v("warpsniff_rtpengine_command_latency_seconds_sum", command=command)
        assert got == pytest.approx(sum(real) + crafted_part, abs=2e-6 * (len(real) + 1))
    # the crafted offer's 4.2 ms lands in the 5 ms bucket, not below
    below = v("warpsniff_rtpengine_command_latency_seconds_bucket", command="offer", le="0.0025")
    at5 = v("warpsniff_rtpengine_command_latency_seconds_bucket", command="offer", le="0.005")
    assert at5 - below >= 1


def test_sniffed_sessions_expire_when_idle(tmp_path):
    ng_ep = ("192.0.2.30", 2223)
    kam = ("192.0.2.31", 34567)   # the proxy's rtpengine module talks from its own port, not 5060
    cap = Capture()
    for i, t in enumerate((0.0, 1.0)):
        cap.udp(t, kam, ng_ep, ng.frame(b"o%d" % i, {"command": "offer", "call-id": f"c{i}", "from-tag": "f"}))
        cap.udp(t + 0.001, ng_ep, kam, ng.frame(b"o%d" % i, {"result": "ok"}))
    cap.udp(50.0, kam, ng_ep, ng.frame(b"q", {"command": "query", "call-id": "c1", "from-tag": "f"}))
    cap.udp(50.001, ng_ep, kam, ng.frame(b"q", {"result": "ok"}))
    cap.fillers(51, 70, step=1)
    relay = relay_for(tmp_path, f"""
rtpengine: [{{name: r, ng: "{ng_ep[0]}:{ng_ep[1]}", sniffed_session_timeout_seconds: 60}}]
""")
    pipeline = Pipeline(EngineOptions(control_ports=relay.control_ports))
    relay.attach(pipeline)
    replay([str(cap.write(tmp_path / "idle.pcap"))], pipeline=pipeline)
    assert relay.sniffer.snapshot(70.0 + 1.7e9)["r"]["active"] == 1     # c0 idle 70 s, c1 refreshed at 50
    snap = relay.sniffer.snapshot(200.0 + 1.7e9)
    assert (snap["r"]["opened"], snap["r"]["closed"], snap["r"]["active"]) == (2, 2, 0)


def test_cli_replay_serves_relay_metrics_with_an_unreachable_rtpengine(tmp_path):
    """`warpsniff replay --config --listen`: the ng port is sniffed, the poller
    cannot reach the instance (up=0), capacity still comes from the capture."""
    dead = free_port()
    ng_ep = (LOOP, dead)
    kam = ("192.0.2.40", 5060)
    kam_ng = ("192.0.2.40", 34567)
    monitor = ("192.0.2.41", 5060)
    cap = Capture()
    for i in range(3):
        cap.udp(i, kam_ng, ng_ep, ng.frame(b"o%d" % i, {"command": "offer", "call-id": f"c{i}", "from-tag": "f"}))
        cap.udp(i + 0.002, ng_ep, kam_ng, b"o%d d3:sdp3:v=06:result2:oke" % i)
    cap.udp(5, kam_ng, ng_ep, ng.frame(b"d0", {"command": "delete", "call-id": "c0", "from-tag": "f"}))
    cap.udp(5.001, ng_ep, kam_ng, b"d0 d6:result2:oke")
    options = Dialog("ka-1", caller=monitor, callee=kam).request("OPTIONS", 1)
    cap.udp(6, monitor, kam, options)
    cap.udp(6.003, kam, monitor, response(options, 200))
    pcap = cap.write(tmp_path / "cli.pcap")
    cfg = tmp_path / "warpsniff.yml"
    cfg.write_text(f"""
rtpengine:
  - {{name: edge, ng: "{LOOP}:{dead}", max_sessions: 4, poll_interval_seconds: 0.2, poll_timeout_seconds: 0.2}}
kamailio:
  - {{name: kam, address: "{kam[0]}:{kam[1]}"}}
""")
    port = free_port(socket.SOCK_STREAM)
    proc = subprocess.Popen([sys.executable, "-m", "warpsniff", "replay", str(pcap), "--config", str(cfg),
                             "--listen", f"{LOOP}:{port}", "--keep-serving", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def scrape():
            try:
                with urllib.request.urlopen(f"http://{LOOP}:{port}/metrics", timeout=2) as resp:
                    m = samples(resp.read().decode())
            except OSError:
                return None
            return m if value(m, "warp_rtpengine_up", instance="edge") is not None and \
                value(m, "warpsniff_rtpengine_sniffed_sessions_opened_total", instance="edge") == 3 else None

        m = wait_for("the exporter with relay metrics", scrape, timeout=15)
        assert value(m, "warp_rtpengine_up", instance="edge") == 0.0
        assert value(m, "warp_rtpengine_sessions_active", instance="edge") == 2.0
        assert value(m, "warp_rtpengine_capacity_percentage", instance="edge") == 50.0
        assert value(m, "warpsniff_rtpengine_sniffed_sessions_closed_total", instance="edge") == 1.0
        assert value(m, "warpsniff_rtpengine_command_latency_seconds_count", instance="edge", command="offer") == 3
        assert value(m, "warp_kamailio_health", instance="kam", status="healthy") == 1.0
        assert value(m, "warpsniff_kamailio_options_latency_seconds", instance="kam") == pytest.approx(0.003, abs=1e-6)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    assert proc.returncode == 0, err.decode()


# ----------------------------------------------------------------------------- Kamailio health


def kamailio_capture(tmp_path) -> Path:
    """Six proxies, known answers and delays, 0-50 s of capture time."""
    monitor = ("192.0.2.100", 5060)
    caller = ("192.0.2.101", 5060)
    cap = Capture()
    n = [0]

    def keepalives(proxy, delay, code=200, every=10.0, until=40.0):
        t = 0.0
        while t <= until:
            n[0] += 1
            req = Dialog(f"ka-{n[0]}", caller=monitor, callee=proxy).request("OPTIONS", 1)
            cap.udp(t, monitor, proxy, req)
            if delay is not None:
                cap.udp(t + delay, proxy, monitor, response(req, code))
            t += every

    def invites(proxy, codes, start=1.0, retransmit_first=False):
        for i, code in enumerate(codes):
            n[0] += 1
            t = start + i
            d = Dialog(f"inv-{n[0]}", caller=caller, callee=proxy)
            req = d.invite(1)
            cap.udp(t, caller, proxy, req)
            if retransmit_first and i == 0:
                cap.udp(t + 0.005, caller, proxy, req)      # before any answer
                cap.udp(t + 0.5, caller, proxy, req)        # after the final answer
            if code is None:
                continue            # the proxy never answers
            cap.udp(t + 0.01, proxy, caller, response(req, 100))
            cap.udp(t + 0.2, proxy, caller, response(req, code, to_tag=f"tt{i}"))

    healthy, slow, failing, mute, stuck = (("10.0.0.1", 5060), ("10.0.0.2", 5060), ("10.0.0.3", 5060),
                                           ("10.0.0.4", 5060), ("10.0.0.5", 5060))
    keepalives(healthy, 0.005)
    invites(healthy, [200] * 12 + [486] * 6 + [487] * 6 + [503], retransmit_first=True)   # 1/25 = 4% 5xx
    keepalives(slow, 0.4)                                                           # 400 ms answers
    invites(slow, [200] * 10)
    keepalives(failing, 0.004)
    invites(failing, [200] * 6 + [503] * 3 + [500])                                 # 40% 5xx
    keepalives(mute, None)                                                          # OPTIONS never answered
    keepalives(stuck, 0.004, code=503)                                              # answers, with 503
    invites(stuck, [None, None, 200], start=20.0)                                   # 2 of 3 unanswered
    cap.fillers(0, 50, step=1)
    return cap.write(tmp_path / "kamailio.pcap")


def test_kamailio_health_from_crafted_options_and_invites(tmp_path):
    relay = relay_for(tmp_path, """
kamailio:
  - {name: healthy, address: "10.0.0.1:5060"}
  - {name: slow, address: 10.0.0.2}
  - {name: failing, address: 10.0.0.3}
  - {name: mute, address: 10.0.0.4}
  - {name: stuck, address: 10.0.0.5, min_invites: 3, options_loss_unhealthy: 1.0}
  - {name: idle, address: 10.0.0.6}
  - {name: wrong_port, address: "10.0.0.1:5080"}
""")
    assert relay.control_ports == ()
    pipeline = Pipeline(EngineOptions())
    relay.attach(pipeline)
    replay([str(kamailio_capture(tmp_path))], pipeline=pipeline)
    text = generate_latest(registry_for(pipeline, relay=relay)).decode()
    m = samples(text)

    def status(name):
        one_hot = {s: value(m, "warp_kamailio_health", instance=name, status=s)
                   for s in ("healthy", "degraded", "unhealthy")}
        up = [s for s, v in one_hot.items() if v == 1.0]
        assert sum(one_hot.values()) == len(up) <= 1, one_hot
        return up[0] if up else None

    assert status("healthy") == "healthy"
    assert value(m, "warpsniff_kamailio_options_latency_seconds", instance="healthy") == pytest.approx(0.005, abs=1e-6)
    assert value(m, "warpsniff_kamailio_options_loss_ratio", instance="healthy") == 0.0
    assert value(m, "warpsniff_kamailio_invite_failure_ratio", instance="healthy") == pytest.approx(1 / 25)

    assert status("slow") == "degraded"             # 0.4 s >= latency_degraded_seconds 0.25
    assert value(m, "warpsniff_kamailio_options_latency_seconds", instance="slow") == pytest.approx(0.4, abs=1e-6)

    assert status("failing") == "unhealthy"         # 40% >= invite_failure_unhealthy 25%
    assert value(m, "warpsniff_kamailio_invite_failure_ratio", instance="failing") == pytest.approx(0.4)

    assert status("mute") == "unhealthy"            # every keepalive timed out
    assert value(m, "warpsniff_kamailio_options_loss_ratio", instance="mute") == 1.0
    assert value(m, "warpsniff_kamailio_options_latency_seconds", instance="mute") is None

    # 503 to every OPTIONS (loss 1.0 >= its unhealthy 1.0) and 2 of 3 INVITEs never answered
    assert status("stuck") == "unhealthy"
    assert value(m, "warpsniff_kamailio_options_loss_ratio", instance="stuck") == 1.0
    assert value(m, "warpsniff_kamailio_invite_failure_ratio", instance="stuck") == pytest.approx(2 / 3)

    assert status("idle") is None and status("wrong_port") is None   # nothing seen: no status
    assert value(m, "warp_kamailio_health", instance="idle", status="healthy") == 0.0

    # 120 s later nothing is left in the 60 s window
    later = relay.health.evaluate(relay.capture_now() + 120)
    assert all(h["status"] is None for h in later.values())


def test_kamailio_thresholds_are_inclusive_and_degraded_below_unhealthy(tmp_path):
    relay = relay_for(tmp_path, """
kamailio:
  - {name: k, address: 10.0.0.1, min_invites: 20}
""")
    health = relay.health
    judge = health._judge
    cfg = relay.config.kamailio[0]
    assert judge(cfg, 10, 0, 10 * 0.25, 0, 0)["status"] == "degraded"          # latency == 0.25
    assert judge(cfg, 10, 0, 10 * 0.2499, 0, 0)["status"] == "healthy"
    assert judge(cfg, 10, 0, 10 * 1.0, 0, 0)["status"] == "unhealthy"          # latency == 1.0
    assert judge(cfg, 99, 1, 0.0, 0, 0)["status"] == "degraded"                 # any loss among < 100
    assert judge(cfg, 1, 1, 0.0, 0, 0)["status"] == "unhealthy"                 # half lost
    assert judge(cfg, 0, 0, 0.0, 19, 1)["status"] == "degraded"                 # 5% of 20 INVITEs
    assert judge(cfg, 0, 0, 0.0, 15, 5)["status"] == "unhealthy"                # 25%
    assert judge(cfg, 0, 0, 0.0, 5, 5)["status"] == "healthy"                   # 50%, but < min_invites
    assert judge(cfg, 0, 0, 0.0, 0, 0)["status"] is None
