"""The initial INVITEs of a capture as the tracker is handed them: SIP over
UDP from the engine's signalling batches, TCP, WebSocket and SCTP framed by
the same correlator a replay uses; each (payload, src addr16, sport, dst
addr16, dport), the form warpsniff._engine.InviteBatch takes."""
from __future__ import annotations

from warpsniff._engine import RUN_ENDED, RUN_EOF, SIG_UDP, parse_sip
from warpsniff.replay import EngineOptions
from warpsniff.sip.correlator import SignallingCorrelator


class _Collector:
    """Stands in for the tracker behind the correlator: keeps initial INVITEs."""
    corr_name = None

    def __init__(self):
        self.invites = []

    def message(self, h, payload, ts, src, dst):
        self.take(h, bytes(payload), src, dst)

    def take(self, h, payload, src, dst):
        if h.status_name == "ok" and h.is_request and h.method == "INVITE" and h.to_tag is None:
            self.invites.append((payload, bytes(src[0]), src[1], bytes(dst[0]), dst[1]))


def initial_invites(path) -> list:
    engine = EngineOptions().build()
    collector = _Collector()
    correlator = SignallingCorrelator(collector)
    engine.open(str(path))
    try:
        while True:
            rc = engine.run(1 << 16, None, None)
            if rc == RUN_ENDED:
                engine.drain_ended()
            records, arena = engine.drain_signalling()
            for r in records:
                payload = arena[r["offset"]:r["offset"] + r["length"]]
                src, dst = bytes(r["src"]), bytes(r["dst"])
                if r["kind"] == SIG_UDP:
                    if payload.startswith(b"INVITE "):   # the rest cannot be an initial INVITE
                        collector.take(parse_sip(payload), payload, (src, int(r["sport"])),
                                       (dst, int(r["dport"])))
                else:
                    correlator.record(r["ts_ns"] / 1e9, src, dst, int(r["sport"]), int(r["dport"]), int(r["kind"]),
                                      int(r["tcp_flags"]), int(r["tcp_seq"]), payload)
            if rc == RUN_EOF:
                break
    finally:
        engine.close()
    return collector.invites
