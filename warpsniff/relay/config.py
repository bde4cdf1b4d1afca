"""The `rtpengine:` and `kamailio:` sections of the configuration file.

`LabelConfig` keeps both as raw lists of mappings ("their contents are the
collectors' business", docs/labels.md); they are checked here, with the
same checker and the same ``<file>: <path>: <problem>`` errors
(`warpsniff.labels.ConfigError`). docs/labels.md, "Media relay and proxy
health", documents every key.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import urlsplit

from warpsniff.labels import ConfigError, _Checker

RTPENGINE_KEYS = ("name", "ng", "http", "max_sessions", "poll_interval_seconds", "poll_timeout_seconds",
                  "sniffed_session_timeout_seconds")
KAMAILIO_KEYS = ("name", "address", "window_seconds", "options_timeout_seconds", "invite_timeout_seconds",
                 "latency_degraded_seconds", "latency_unhealthy_seconds", "options_loss_degraded",
                 "options_loss_unhealthy", "invite_failure_degraded", "invite_failure_unhealthy", "min_invites")

V4_MAPPED = bytes(10) + b"\xff\xff"


def addr16(ip) -> bytes:
    """An ipaddress object -> the engine's 16-byte form (IPv4 mapped)."""
    return V4_MAPPED + ip.packed if ip.version == 4 else ip.packed


@dataclass
class RtpengineInstance:
    name: str
    ng_host: str
    ng_port: int
    http: Optional[str] = None           # URL of its /metrics
    max_sessions: Optional[int] = None
    poll_interval_s: float = 5.0
    poll_timeout_s: float = 1.0
    sniffed_session_timeout_s: float = 14400.0
    addresses16: tuple = ()              # ng host's addresses, for matching sniffed traffic


@dataclass
class KamailioProxy:
    name: str
    address16: bytes
    port: Optional[int] = None           # None: any port of that address
    window_s: float = 60.0
    options_timeout_s: float = 5.0
    invite_timeout_s: float = 5.0
    latency_degraded_s: float = 0.25
    latency_unhealthy_s: float = 1.0
    options_loss_degraded: float = 0.01
    options_loss_unhealthy: float = 0.5
    invite_failure_degraded: float = 0.05
    invite_failure_unhealthy: float = 0.25
    min_invites: int = 10


@dataclass
class RelayConfig:
    rtpengine: list = field(default_factory=list)
    kamailio: list = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rtpengine or self.kamailio)


def _host_port(ck: _Checker, value, where: str, *, port_required: bool) -> tuple:
    text = ck.text(value, where, "HOST:PORT").strip()
    try:  # a bare IP (v6 has colons of its own)
        ipaddress.ip_address(text.strip("[]"))
        bare = True
    except ValueError:
        bare = False
    if bare:
        if port_required:
            hint = "; write an IPv6 address with a port as [ADDRESS]:PORT" if ":" in text else ""
            ck.fail(where, f"{text!r} has no port (expected HOST:PORT{hint})")
        return text.strip("[]"), None
    host, sep, port = text.rpartition(":")
    host = host.strip()
    if not sep and not port_required:
        return text, None
    if not sep or not host:
        ck.fail(where, f"{text!r} is not HOST:PORT")
    if host.startswith("["):
        if not host.endswith("]"):
            ck.fail(where, f"{text!r} is not HOST:PORT")
        host = host[1:-1]
    elif ":" in host:
        ck.fail(where, f"{text!r}: write an IPv6 address with a port as [ADDRESS]:PORT")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        ck.fail(where, f"port {port!r} is not 1-65535")
    return host, int(port)


def _resolve16(host: str) -> tuple:
    try:
        return (addr16(ipaddress.ip_address(host)),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except OSError:
        return ()   # matched by port alone; the poller reports it unreachable
    return tuple(dict.fromkeys(addr16(ipaddress.ip_address(i[4][0].split("%")[0])) for i in infos))


def _seconds(ck: _Checker, entry: dict, key: str, where: str, default: float) -> float:
    if entry.get(key) is None:
        return default
    return float(ck.number(entry[key], f"{where}.{key}", positive=True))


def _ratio(ck: _Checker, entry: dict, key: str, where: str, default: float) -> float:
    if entry.get(key) is None:
        return default
    value = float(ck.number(entry[key], f"{where}.{key}", minimum=0))
    if value > 1:
        ck.fail(f"{where}.{key}", f"must be a ratio from 0 to 1, not {value!r}")
    return value


def _ordered(ck: _Checker, where: str, low_key: str, low: float, high_key: str, high: float) -> None:
    if low > high:
        ck.fail(f"{where}.{low_key}", f"{low!r} is above {high_key} ({high!r})")


def _names(ck: _Checker, entry: dict, where: str, seen: dict) -> str:
    if "name" not in entry:
        ck.fail(where, "missing 'name'")
    name = ck.name(entry["name"], f"{where}.name")
    if name in seen:
        ck.fail(f"{where}.name", f"duplicate name {name!r} (also {seen[name]}.name)")
    seen[name] = where
    return name


def parse(label_config, resolve: bool = True) -> RelayConfig:
    """LabelConfig.rtpengine / .kamailio -> RelayConfig; ConfigError on any problem."""
    ck = _Checker(label_config.source)
    out = RelayConfig()
    seen: dict = {}
    for i, item in enumerate(label_config.rtpengine):
        where = f"rtpengine[{i}]"
        entry = ck.mapping(item, where, RTPENGINE_KEYS, none_ok=False)
        name = _names(ck, entry, where, seen)
        if "ng" not in entry:
            ck.fail(where, "missing 'ng' (HOST:PORT of its ng control socket)")
        host, port = _host_port(ck, entry["ng"], f"{where}.ng", port_required=True)
        inst = RtpengineInstance(name=name, ng_host=host, ng_port=port)
        if entry.get("http") is not None:
            url = ck.text(entry["http"], f"{where}.http", "a URL").strip()
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                ck.fail(f"{where}.http", f"{url!r} is not an http:// or https:// URL")
            inst.http = url if parts.path.rstrip("/").endswith("/metrics") else url.rstrip("/") + "/metrics"
        if entry.get("max_sessions") is not None:
            inst.max_sessions = ck.integer(entry["max_sessions"], f"{where}.max_sessions", 1, 10 ** 9)
        inst.poll_interval_s = _seconds(ck, entry, "poll_interval_seconds", where, inst.poll_interval_s)
        inst.poll_timeout_s = _seconds(ck, entry, "poll_timeout_seconds", where, inst.poll_timeout_s)
        inst.sniffed_session_timeout_s = _seconds(ck, entry, "sniffed_session_timeout_seconds", where,
                                                  inst.sniffed_session_timeout_s)
        inst.addresses16 = _resolve16(host) if resolve else ()
        out.rtpengine.append(inst)
    seen = {}
    for i, item in enumerate(label_config.kamailio):
        where = f"kamailio[{i}]"
        entry = ck.mapping(item, where, KAMAILIO_KEYS, none_ok=False)
        name = _names(ck, entry, where, seen)
        if "address" not in entry:
            ck.fail(where, "missing 'address' (the proxy's SIP IP address, optionally with :PORT)")
        host, port = _host_port(ck, entry["address"], f"{where}.address", port_required=False)
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is None:
            ck.fail(f"{where}.address", f"{host!r} is not an IP address (it is matched against captured packets)")
        proxy = KamailioProxy(name=name, address16=addr16(ip), port=port)
        for key, attr in (("window_seconds", "window_s"), ("options_timeout_seconds", "options_timeout_s"),
                          ("invite_timeout_seconds", "invite_timeout_s"),
                          ("latency_degraded_seconds", "latency_degraded_s"),
                          ("latency_unhealthy_seconds", "latency_unhealthy_s")):
            setattr(proxy, attr, _seconds(ck, entry, key, where, getattr(proxy, attr)))
        for key in ("options_loss_degraded", "options_loss_unhealthy", "invite_failure_degraded",
                    "invite_failure_unhealthy"):
            setattr(proxy, key, _ratio(ck, entry, key, where, getattr(proxy, key)))
        if entry.get("min_invites") is not None:
            proxy.min_invites = ck.integer(entry["min_invites"], f"{where}.min_invites", 1, 10 ** 9)
        _ordered(ck, where, "latency_degraded_seconds", proxy.latency_degraded_s,
                 "latency_unhealthy_seconds", proxy.latency_unhealthy_s)
        _ordered(ck, where, "options_loss_degraded", proxy.options_loss_degraded,
                 "options_loss_unhealthy", proxy.options_loss_unhealthy)
        _ordered(ck, where, "invite_failure_degraded", proxy.invite_failure_degraded,
                 "invite_failure_unhealthy", proxy.invite_failure_unhealthy)
        out.kamailio.append(proxy)
    return out


__all__ = ["ConfigError", "RelayConfig", "RtpengineInstance", "KamailioProxy", "parse"]
