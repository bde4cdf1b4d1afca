"""Background polling of one rtpengine instance, off the packet path.

Every `poll_interval_seconds` (first poll at start): ng ``ping`` (up or not),
ng ``statistics`` (own sessions, ports used/free per interface, sessions
ended since start, packet and byte rates) and, when the instance has
``http``, its /metrics (rtpengine_sessions{type="own"},
rtpengine_ports_used, rtpengine_ports_free), which then win over the ng
values. Each request is bounded by `poll_timeout_seconds`; every failure is
caught, counted by kind and leaves up=0 (ping failed) or the value absent.
Nothing here ever raises into the exporter: the collector only reads the
last `PollState` under the poller's lock.
"""
from __future__ import annotations

import math
import threading
import time
import urllib.request
from dataclasses import dataclass, field, replace
from typing import Optional

from warpsniff.relay.ng import MalformedBencode, NgClient, NgErrorReply, NgTimeout

MAX_HTTP_BYTES = 4 << 20


@dataclass
class PollState:
    polled: bool = False                  # a poll has completed
    up: bool = False                      # the last ng ping was answered
    duration_s: float = 0.0               # how long the last poll took (wall clock)
    finished_at: float = 0.0              # time.time() when it completed
    sessions: Optional[float] = None      # own sessions
    sessions_source: str = ""             # "http" or "ng"
    ports_used: Optional[float] = None
    ports_free: Optional[float] = None
    ended_sessions: Optional[float] = None
    packet_rate: Optional[float] = None
    byte_rate: Optional[float] = None
    errors: dict = field(default_factory=dict)   # kind -> count (monotonic)


def _number(value) -> Optional[float]:
    if isinstance(value, bytes):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


def from_statistics(reply: dict) -> dict:
    """The fields of an ng statistics reply we export (missing ones absent)."""
    out: dict = {}
    stats = reply.get(b"statistics")
    if not isinstance(stats, dict):
        return out
    current = stats.get(b"currentstatistics")
    if isinstance(current, dict):
        for key, name in ((b"sessionsown", "sessions"), (b"packetrate", "packet_rate"), (b"byterate", "byte_rate")):
            v = _number(current.get(key))
            if v is not None:
                out[name] = v
    total = stats.get(b"totalstatistics")
    if isinstance(total, dict):
        v = _number(total.get(b"managedsessions"))
        if v is not None:
            out["ended_sessions"] = v
    interfaces = stats.get(b"interfaces")
    if isinstance(interfaces, list):
        used = free = 0.0
        found = False
        for iface in interfaces:
            ports = iface.get(b"ports") if isinstance(iface, dict) else None
            if isinstance(ports, dict):
                u, f = _number(ports.get(b"used")), _number(ports.get(b"free"))
                if u is not None and f is not None:
                    used, free, found = used + u, free + f, True
        if found:
            out["ports_used"], out["ports_free"] = used, free
    return out


def from_metrics_text(body: str) -> dict:
    """rtpengine's own /metrics -> sessions and ports (summed over interfaces)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict = {}
    used = free = None
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == "rtpengine_sessions" and s.labels.get("type") == "own":
                out["sessions"] = float(s.value)
            elif s.name == "rtpengine_ports_used":
                used = (used or 0.0) + float(s.value)
            elif s.name == "rtpengine_ports_free":
                free = (free or 0.0) + float(s.value)
    if used is not None:
        out["ports_used"] = used
    if free is not None:
        out["ports_free"] = free
    return out


class Poller:
    """One thread per instance; `state()` is a copy taken under the lock."""

    def __init__(self, instance):
        self.instance = instance
        self.lock = threading.Lock()
        self._state = PollState()
        self._stop = threading.Event()
        self.thread: Optional[threading.Thread] = None

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        if self.thread is not None:
            return
        self._stop.clear()
        self.thread = threading.Thread(target=self._run, name=f"warpsniff-rtpengine-{self.instance.name}",
                                       daemon=True)
        self.thread.start()

    def stop(self, wait: float = 5.0) -> None:
        self._stop.set()
        if self.thread is not None:
            self.thread.join(wait)
            self.thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.instance.poll_interval_s)

    # -- reading --------------------------------------------------------------

    def state(self) -> PollState:
        with self.lock:
            return replace(self._state, errors=dict(self._state.errors))

    # -- one poll -------------------------------------------------------------

    def poll_once(self) -> None:
        """Never raises; the outcome lands in the state."""
        inst = self.instance
        t0 = time.monotonic()
        values: dict = {}
        errors: list = []
        up = False
        try:
            with NgClient(inst.ng_host, inst.ng_port, inst.poll_timeout_s) as client:
                up = client.ping()
                if not up:
                    errors.append("poll_error_reply")
                else:
                    values.update(from_statistics(client.statistics()))
                    if "sessions" in values:
                        values["sessions_source"] = "ng"
        except NgTimeout:
            errors.append("poll_timeout")
        except MalformedBencode:
            errors.append("poll_malformed")
        except NgErrorReply:
            errors.append("poll_error_reply")
        except OSError:
            errors.append("poll_unreachable")
        except Exception:       # never into the exporter
            errors.append("poll_internal")
        if inst.http:
            try:
                values.update(self._http(inst))
            except Exception:
                errors.append("http_failed")
        state = PollState(polled=True, up=up, duration_s=time.monotonic() - t0, finished_at=time.time())
        for key, value in values.items():
            setattr(state, key, value)
        with self.lock:
            state.errors = dict(self._state.errors)
            for kind in errors:
                state.errors[kind] = state.errors.get(kind, 0) + 1
            self._state = state

    @staticmethod
    def _http(inst) -> dict:
        request = urllib.request.Request(inst.http, headers={"Accept": "text/plain"})
        with urllib.request.urlopen(request, timeout=inst.poll_timeout_s) as resp:
            body = resp.read(MAX_HTTP_BYTES + 1)
        if len(body) > MAX_HTTP_BYTES:
            raise ValueError("metrics page too large")
        values = from_metrics_text(body.decode("utf-8", "replace"))
        if "sessions" in values:
            values["sessions_source"] = "http"
        return values
