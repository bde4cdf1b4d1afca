"""Several capture workers: one native engine per live ring, one thread each.

    kernel --PACKET_FANOUT (flow hash, IP fragments reassembled first)--> ring 1..N
    ring k -> Engine k: its own stream table, run without the GIL in thread k
    SIP from every worker -> the one CallTracker (under Pipeline.lock)
    CallTracker.bind/unbind -> EngineGroup -> queued for every engine, applied
                               by the engine's own thread between runs
    snapshots, counters -> EngineGroup: every engine's, merged

A stream's packets share one flow hash, so each stream lives in exactly one
engine; a call's streams may live in several. Media that starts on one worker
before the SIP seen on another has bound it is adopted when the binding
arrives (Engine(adopt_unbound=True)), so nothing depends on which thread won.
"""
from __future__ import annotations

import os
import socket
import threading
from collections import deque
from typing import Callable, Optional

import numpy as np

from warpsniff._engine import Engine


def fanout_group_id(interface: str) -> int:
    """A PACKET_FANOUT group id of our own for this interface: rings of another
    process on the same interface must not join our group."""
    try:
        index = socket.if_nametoindex(interface)
    except OSError:
        index = 0  # the ring's open says what is wrong with the name
    return ((os.getpid() * 131 + index) & 0xFFFF) or 1


class CaptureWorker:
    """One engine and the live ring it reads. Only the worker's thread runs
    the engine; anyone else touching it holds `lock`."""

    def __init__(self, engine: Engine, name: str):
        self.engine = engine
        self.name = name
        self.lock = threading.RLock()
        self.pending: deque = deque()   # (method, args) from the call tracker, in order
        self.opened = False

    def apply_pending(self) -> None:
        """Caller holds `lock`."""
        engine, pending = self.engine, self.pending
        while pending:
            method, args = pending.popleft()
            method(engine, *args)


class EngineGroup:
    """The face of one Engine that the Pipeline and CallTracker use, over
    several workers' engines."""

    def __init__(self, engines: list[Engine], names: list[str]):
        self.workers = [CaptureWorker(e, n) for e, n in zip(engines, names)]

    def _each(self, read: Callable[[Engine], object]) -> list:
        out = []
        for w in self.workers:
            with w.lock:
                w.apply_pending()
                out.append(read(w.engine))
        return out

    # -- bindings from SIP: every engine may see the call's media -------------

    def bind(self, addr16: bytes, port: int, call_ref: int, payload_types=(), since_ns: int = 0) -> bool:
        payload_types = tuple(payload_types)
        for w in self.workers:
            w.pending.append((Engine.bind, (addr16, port, call_ref, payload_types, since_ns)))
        return True  # a full table counts in bindings_dropped, engine by engine

    def unbind(self, addr16: bytes, port: int, call_ref: int) -> None:
        for w in self.workers:
            w.pending.append((Engine.unbind, (addr16, port, call_ref)))

    # -- results, merged -------------------------------------------------------

    def streams(self) -> np.ndarray:
        return np.concatenate(self._each(Engine.streams))

    def streams_of_calls(self, refs, valid_only: bool = True) -> np.ndarray:
        refs = list(refs)
        return np.concatenate(self._each(lambda e: e.streams_of_calls(refs, valid_only)))

    def last_rtp_of_calls(self, refs) -> dict:
        refs = list(refs)
        latest: dict = {}
        for part in self._each(lambda e: e.last_rtp_of_calls(refs)):
            for ref, t in part.items():
                if t > latest.get(ref, -1.0):
                    latest[ref] = t
        return latest

    def drain_ended(self) -> np.ndarray:
        return np.concatenate(self._each(Engine.drain_ended))

    def rtcp_sources(self) -> np.ndarray:
        return np.concatenate(self._each(Engine.rtcp_sources))

    def round_trips(self, ssrcs) -> dict:
        """Engine.round_trips over every engine: the latest report wins, on a
        tie the later engine's (as in rtcp_sources' order)."""
        ssrcs = list(ssrcs)
        latest: dict = {}
        for part in self._each(lambda e: e.round_trips(ssrcs)):
            for ssrc, (arrival, rtt) in part.items():
                if ssrc not in latest or arrival >= latest[ssrc][0]:
                    latest[ssrc] = (arrival, rtt)
        return latest

    def counters(self) -> dict:
        return _merge_counts(self._each(Engine.counters))

    def decode_errors(self) -> dict:
        return _merge_counts(self._each(Engine.decode_errors))

    def live_stats_by_worker(self) -> dict:
        return dict(zip((w.name for w in self.workers), self._each(Engine.live_stats)))

    @property
    def capture_time_ns(self) -> int:
        return max(self._each(lambda e: e.capture_time_ns))


def claim_unbound_media(streams: np.ndarray, calls) -> np.ndarray:
    """Streams no binding reached, given to the finished call whose SDP named
    their destination. A worker adopts a stream when its next packet follows
    the binding; a call replayed faster than the bindings travel (its last
    packet came first) is claimed here, when its media is joined. Media never
    precedes the call's INVITE."""
    unbound = np.flatnonzero(streams["call_ref"] == 0)
    if not len(unbound) or not any(call.media for call in calls):
        return streams
    # destinations as two 64-bit words per row: one vector compare per SDP endpoint
    dst = np.frombuffer(streams["dst"][unbound].tobytes(), dtype=np.uint64).reshape(-1, 2)
    dport, first_ns = streams["dport"][unbound], streams["first_ns"][unbound]
    refs = streams["call_ref"].copy()
    for call in calls:
        for addr, port in call.media:
            words = np.frombuffer(addr, dtype=np.uint64)
            mine = ((dst[:, 0] == words[0]) & (dst[:, 1] == words[1]) & (dport == port)
                    & (first_ns >= call.invite_ts * 1e9))
            refs[unbound[mine]] = call.call_ref
    streams = streams.copy()
    streams["call_ref"] = refs
    return streams


def _merge_counts(parts: list[dict]) -> dict:
    out: dict = {}
    for part in parts:
        for key, value in part.items():
            if value is None:
                out.setdefault(key, None)
            elif key == "first_ns":
                out[key] = value if out.get(key) is None else min(out[key], value)
            elif key == "last_ns":
                out[key] = value if out.get(key) is None else max(out[key], value)
            else:
                out[key] = out.get(key, 0) + value
    return out


def worker_names(interfaces: list[str], workers: int) -> list[str]:
    return [f"{iface}#{k}" if workers > 1 else iface for iface in interfaces for k in range(workers)]
