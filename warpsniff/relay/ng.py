"""rtpengine's ng control protocol: client, cookie framing, and the decoder of
ng traffic seen in the capture.

An ng message is one UDP datagram ``<cookie> <bencoded dictionary>``; the
reply carries the same cookie. Commands have a ``command`` key (``ping``,
``offer``, ``answer``, ``delete``, ``statistics``, ...), replies a ``result``
(``pong``, ``ok``, ``error`` with ``error-reason``, ``load limit``).

Bencode is fastbencode's. One wrinkle: BEP 3 wants dictionary keys sorted,
and fastbencode's decoders refuse any other order, but rtpengine and
Kamailio's rtpengine module write keys in insertion order (every rtpengine
reply has ``sdp``/``statistics`` before ``result``). `decode()` therefore
tries fastbencode's strict decoder first and, only when that fails, the same
library's pure-Python decoder with the key-order check relaxed (duplicate
keys are still refused). Anything neither accepts is `MalformedBencode`.
"""
from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections import OrderedDict
from typing import Optional

import fastbencode

try:  # the library's own decoder, minus the key-order check (see above)
    from fastbencode._bencode_py import BDecoder as _BDecoder
except ImportError:  # pragma: no cover - only if fastbencode drops its Python decoder
    _BDecoder = None

MAX_DEPTH = 32
MAX_DATAGRAM = 65535

# command label values: a closed set (docs/metrics.md)
COMMANDS = ("offer", "answer", "delete", "ping", "query", "other")

# histogram buckets for ng command latency (seconds)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# warpsniff_rtpengine_errors_total{kind}: a closed set
ERROR_KINDS = ("poll_timeout", "poll_unreachable", "poll_malformed", "poll_error_reply", "poll_internal",
               "http_failed", "sniffed_malformed", "sniffed_error_reply", "sniffed_unanswered")


class NgError(Exception):
    """Base of the ng client's failures."""


class MalformedBencode(NgError, ValueError):
    """Not a cookie followed by a bencoded dictionary."""


class NgTimeout(NgError):
    """No reply with our cookie before the timeout."""


class NgErrorReply(NgError):
    """rtpengine answered result=error."""


if _BDecoder is not None:
    class _LenientDecoder(_BDecoder):
        """fastbencode's decoder accepting dictionary keys in any order."""

        def decode_dict(self, x, f):
            if self._max_depth is not None and self._depth >= self._max_depth:
                raise RecursionError("maximum bencode nesting depth exceeded")
            self._depth += 1
            r, f = {}, f + 1
            while x[f:f + 1] != b"e":
                k, f = self.decode_bytes(x, f)
                if k in r:
                    raise ValueError(f"duplicate key {k!r}")
                r[k], f = self.decode_func[x[f:f + 1]](x, f)
            self._depth -= 1
            return r, f + 1

        def decode_bytes(self, x, f):
            colon = x.index(b":", f)
            n = int(x[f:colon])
            if n < 0 or colon + 1 + n > len(x):
                raise ValueError("string runs past the end")
            return super().decode_bytes(x, f)

    _lenient = _LenientDecoder()
else:  # pragma: no cover
    _lenient = None


def decode(body: bytes) -> dict:
    """A bencoded dictionary -> dict (bytes keys); MalformedBencode otherwise."""
    try:
        value = fastbencode.bdecode(body)
    except Exception:
        if _lenient is None:
            raise MalformedBencode("not valid bencode") from None
        try:
            value = _lenient.bdecode(bytes(body), max_depth=MAX_DEPTH)
        except Exception as exc:
            raise MalformedBencode(f"not valid bencode ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise MalformedBencode("not a bencoded dictionary")
    return value


def encode(message: dict) -> bytes:
    """dict (str or bytes keys and values) -> bencode, keys sorted."""
    return fastbencode.bencode(_to_bytes(message))


def _to_bytes(value):
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict):
        return {_to_bytes(k): _to_bytes(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_bytes(v) for v in value]
    return value


def frame(cookie: bytes, message: dict) -> bytes:
    return cookie + b" " + encode(message)


def split(datagram: bytes) -> tuple[bytes, dict]:
    """``cookie SP bencode`` -> (cookie, dict); MalformedBencode otherwise."""
    cookie, sep, body = bytes(datagram).partition(b" ")
    if not sep or not cookie or not body:
        raise MalformedBencode("no cookie")
    return cookie, decode(body)


def text(value, default: str = "") -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None:
        return default
    return str(value)


def command_label(name) -> str:
    name = text(name).lower()
    return name if name in COMMANDS else "other"


# ----------------------------------------------------------------------------- client

_cookies = itertools.count(1)


class NgClient:
    """One UDP socket to one rtpengine ng port; every call bounded by `timeout`.

    `command()` raises NgTimeout, MalformedBencode, NgErrorReply or OSError
    (unreachable: refused, no route, name not resolved)."""

    def __init__(self, host: str, port: int, timeout: float = 1.0):
        self.host, self.port, self.timeout = host, port, timeout
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, _, _, _, self.address = infos[0]
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.connect(self.address)   # ICMP unreachable comes back as ECONNREFUSED
        except OSError:
            self.sock.close()
            raise

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "NgClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def command(self, message: dict, *, check: bool = True) -> dict:
        cookie = f"{os.getpid()}_{next(_cookies)}".encode()
        self.sock.send(frame(cookie, message))
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NgTimeout(f"no reply from {self.host}:{self.port} within {self.timeout:g} s")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(MAX_DATAGRAM)
            except socket.timeout:
                continue
            got, sep, body = data.partition(b" ")
            if got != cookie:          # a late reply to an earlier request
                continue
            reply = decode(body)
            if check and reply.get(b"result") == b"error":
                raise NgErrorReply(text(reply.get(b"error-reason"), "error"))
            return reply

    def ping(self) -> bool:
        return self.command({"command": "ping"}).get(b"result") == b"pong"

    def statistics(self) -> dict:
        return self.command({"command": "statistics"})


# ----------------------------------------------------------------------------- sniffed traffic


class _Histogram:
    __slots__ = ("counts", "sum", "count")

    def __init__(self):
        self.counts = [0] * len(LATENCY_BUCKETS)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, le in enumerate(LATENCY_BUCKETS):
            if value <= le:
                self.counts[i] += 1
                break
        self.sum += value
        self.count += 1

    def cumulative(self) -> list:
        out, acc = [], 0
        for le, n in zip(LATENCY_BUCKETS, self.counts):
            acc += n
            out.append((repr(float(le)), acc))
        out.append(("+Inf", self.count))
        return out


class _Sniffed:
    """What the capture showed of one instance's ng traffic."""

    def __init__(self):
        self.seen = False
        self.opened = 0
        self.closed = 0
        self.sessions: "OrderedDict[bytes, float]" = OrderedDict()   # call-id -> last command time
        self.pending: "OrderedDict[tuple, tuple]" = OrderedDict()    # (peer, cookie) -> (ts, label, call-id, branch)
        self.latency: dict = {}                                      # command label -> _Histogram
        self.errors: dict = {}


class NgSniffer:
    """Decodes ng datagrams the engine hands to control handlers.

    A datagram goes to the instance whose ng address it was sent to (a
    command) or came from (a reply); when the address is not an exact match,
    to the one instance whose ng port it is (if the port is unique). A
    command waits for its reply (same cookie, same proxy endpoint); the pair
    gives the latency and, for successful replies, the session accounting:
    an offer or answer opens the Call-ID's session if it is not open, a
    delete without via-branch closes it. Sessions idle (no command) for an
    instance's ``sniffed_session_timeout_seconds`` are closed too.

    Runs on the packet path, under the pipeline lock; `snapshot()` is read
    under the sniffer's own lock."""

    PENDING_LIMIT = 10_000        # commands awaiting a reply, per instance
    SESSION_LIMIT = 200_000       # open sessions, per instance
    REPLY_TIMEOUT_S = 30.0        # a command unanswered this long (capture time) counts as unanswered
    SWEEP_EVERY_S = 1.0

    def __init__(self, instances):
        self.lock = threading.Lock()
        self.instances = {i.name: i for i in instances}
        self.state = {i.name: _Sniffed() for i in instances}
        self.by_endpoint: dict = {}
        ports: dict = {}
        for inst in instances:
            for addr16 in inst.addresses16:
                self.by_endpoint.setdefault((addr16, inst.ng_port), inst.name)   # the first listed wins
            ports.setdefault(inst.ng_port, []).append(inst.name)
        self.by_port = {p: names[0] for p, names in ports.items() if len(names) == 1}
        self.next_sweep = 0.0
        self.unattributed = 0

    @property
    def ports(self) -> tuple:
        return tuple(sorted({i.ng_port for i in self.instances.values()}))

    def _instance(self, endpoint) -> Optional[str]:
        addr, port = endpoint
        return self.by_endpoint.get((bytes(addr), port)) or self.by_port.get(port)

    def _error(self, st: _Sniffed, kind: str, n: int = 1) -> None:
        st.errors[kind] = st.errors.get(kind, 0) + n

    def datagram(self, payload: bytes, ts: float, src: tuple, dst: tuple) -> None:
        """A control handler: f(payload, ts, (src16, sport), (dst16, dport))."""
        with self.lock:
            self._datagram(payload, ts, (bytes(src[0]), src[1]), (bytes(dst[0]), dst[1]))

    def _datagram(self, payload, ts, src, dst) -> None:
        to_name, from_name = self._instance(dst), self._instance(src)
        try:
            cookie, msg = split(payload)
        except MalformedBencode:
            name = to_name or from_name
            if name is None:
                self.unattributed += 1
            else:
                self.state[name].seen = True
                self._error(self.state[name], "sniffed_malformed")
            return
        if ts >= self.next_sweep:
            self._sweep(ts)
            self.next_sweep = ts + self.SWEEP_EVERY_S
        if b"command" in msg and to_name is not None:
            st = self.state[to_name]
            st.seen = True
            key = (src, cookie)
            if key in st.pending:      # a retransmission: the latency runs from the first
                return
            call_id = msg.get(b"call-id")
            st.pending[key] = (ts, command_label(msg[b"command"]),
                               call_id if isinstance(call_id, bytes) else None, b"via-branch" in msg)
            if len(st.pending) > self.PENDING_LIMIT:
                st.pending.popitem(last=False)
                self._error(st, "sniffed_unanswered")
        elif b"result" in msg and from_name is not None:
            st = self.state[from_name]
            st.seen = True
            sent = st.pending.pop((dst, cookie), None)
            if sent is None:           # a repeated reply, or its command came before the capture
                return
            t0, label, call_id, branch = sent
            if ts >= t0:
                st.latency.setdefault(label, _Histogram()).observe(ts - t0)
            result = msg[b"result"]
            if result == b"error":
                self._error(st, "sniffed_error_reply")
            elif result == b"ok" and call_id is not None:
                self._account(st, label, call_id, branch, ts)
        else:
            name = to_name or from_name
            if name is None:
                self.unattributed += 1
            else:
                self.state[name].seen = True
                self._error(self.state[name], "sniffed_malformed")

    def _account(self, st: _Sniffed, label: str, call_id: bytes, branch: bool, ts: float) -> None:
        if label in ("offer", "answer"):
            if call_id in st.sessions:
                st.sessions.move_to_end(call_id)
            else:
                st.opened += 1
                if len(st.sessions) >= self.SESSION_LIMIT:
                    st.sessions.popitem(last=False)
                    st.closed += 1
            st.sessions[call_id] = ts
        elif label == "delete" and not branch:
            if st.sessions.pop(call_id, None) is not None:
                st.closed += 1
        elif call_id in st.sessions:
            st.sessions[call_id] = ts
            st.sessions.move_to_end(call_id)

    def _sweep(self, now: float) -> None:
        for name, st in self.state.items():
            while st.pending:
                key, (t0, *_rest) = next(iter(st.pending.items()))
                if now - t0 < self.REPLY_TIMEOUT_S:
                    break
                st.pending.popitem(last=False)
                self._error(st, "sniffed_unanswered")
            idle = self.instances[name].sniffed_session_timeout_s
            while st.sessions:
                call_id, last = next(iter(st.sessions.items()))
                if now - last < idle:
                    break
                st.sessions.popitem(last=False)
                st.closed += 1

    def snapshot(self, now: float = 0.0) -> dict:
        """name -> dict(seen, opened, closed, active, latency{label: (cumulative, sum)}, errors).
        `now` (capture time) first expires unanswered commands and idle sessions."""
        with self.lock:
            if now and now >= self.next_sweep:
                self._sweep(now)
            return {
                name: {
                    "seen": st.seen, "opened": st.opened, "closed": st.closed, "active": len(st.sessions),
                    "latency": {label: (h.cumulative(), h.sum) for label, h in st.latency.items()},
                    "errors": dict(st.errors),
                }
                for name, st in self.state.items()
            }
