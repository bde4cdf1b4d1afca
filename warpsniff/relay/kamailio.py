"""Kamailio (SIP proxy) health from what the sniffer sees.

For each configured proxy address (docs/labels.md, ``kamailio:``), over the
last ``window_seconds`` of capture time (default 60):

- **OPTIONS keepalives** sent *to* the proxy: answered (any response below
  500 from the proxy, latency = response - request), or lost (no response
  within ``options_timeout_seconds``, default 5, or a 5xx/6xx answer).
  ``options_loss`` = lost / (answered + lost); ``options_latency`` = mean
  latency of the answered ones.
- **INVITEs** sent to the proxy (initial and re-INVITEs): failed when the
  proxy's final answer is 5xx, or when the proxy sent no response at all
  (not even 100 Trying) within ``invite_timeout_seconds`` (default 5).
  ``invite_failure`` = failed / INVITEs with an outcome, considered only
  from ``min_invites`` (default 10) INVITEs in the window. A 5xx the proxy
  relays from downstream counts too: it is what the proxy's callers got.

Status, one-hot in warp_kamailio_health{instance,status}:

- **unhealthy** if options_loss >= options_loss_unhealthy (0.5), or
  options_latency >= latency_unhealthy_seconds (1.0), or invite_failure >=
  invite_failure_unhealthy (0.25);
- else **degraded** if options_loss >= options_loss_degraded (0.01: any
  lost keepalive among fewer than 100), or options_latency >=
  latency_degraded_seconds (0.25), or invite_failure >=
  invite_failure_degraded (0.05);
- else **healthy**, if the window holds any outcome at all;
- no outcome in the window: all three statuses are 0 (nothing to judge).

Outcomes are dated when they are known (the answer, or the timeout's
deadline), bucketed per capture second. The observer runs on the packet
path under the pipeline lock; state is also guarded by its own lock.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from typing import Optional

STATUSES = ("healthy", "degraded", "unhealthy")
PENDING_LIMIT = 50_000          # requests awaiting an answer, per proxy and kind
DONE_KEEP_S = 32.0              # answered requests remembered this long (64*T1)
ANSWERED_INVITE_LIMIT_S = 300.0  # an INVITE with provisional answers only is forgotten after this

# bucket fields
OPT_OK, OPT_LOST, OPT_LATENCY, INV_OK, INV_FAILED = range(5)


class _Proxy:
    def __init__(self, cfg):
        self.cfg = cfg
        self.options: "OrderedDict[tuple, float]" = OrderedDict()   # key -> request time
        self.invites: "OrderedDict[tuple, list]" = OrderedDict()    # key -> [request time, responded]
        self.done: "OrderedDict[tuple, float]" = OrderedDict()      # answered keys -> time, for retransmissions
        # [second, opt_ok, opt_lost, latency_sum, inv_ok, inv_failed], oldest first
        self.buckets: deque = deque()

    def remember(self, key: tuple, ts: float) -> None:
        """An answered transaction; its retransmissions (within 32 s, Timer B) are not new requests."""
        self.done[key] = ts
        while self.done:
            old_key, old_ts = next(iter(self.done.items()))
            if ts - old_ts <= DONE_KEEP_S and len(self.done) <= PENDING_LIMIT:
                break
            self.done.popitem(last=False)

    def add(self, when: float, field: int, value: float = 1.0) -> None:
        second = math.floor(when)
        for b in reversed(self.buckets):    # usually the newest
            if b[0] == second:
                b[1 + field] += value
                return
            if b[0] < second:
                break
        bucket = [second, 0, 0, 0.0, 0, 0]
        bucket[1 + field] += value
        self.buckets.append(bucket)
        if len(self.buckets) > 1 and self.buckets[-2][0] > second:   # out of order: keep sorted
            self.buckets = deque(sorted(self.buckets, key=lambda b: b[0]))


class KamailioHealth:
    def __init__(self, proxies):
        self.lock = threading.Lock()
        self.proxies = [_Proxy(p) for p in proxies]
        self.now = 0.0

    def _match(self, endpoint) -> Optional[_Proxy]:
        addr, port = bytes(endpoint[0]), endpoint[1]
        for p in self.proxies:
            if p.cfg.address16 == addr and (p.cfg.port is None or p.cfg.port == port):
                return p
        return None

    # -- tracker observer: f(h, ts, src, dst) ----------------------------------

    def observe(self, h, ts: float, src: tuple, dst: tuple) -> None:
        if h.is_request:
            if h.method not in ("OPTIONS", "INVITE"):
                return
            proxy = self._match(dst)
            if proxy is None:
                return
            with self.lock:
                self.now = max(self.now, ts)
                key = (h.call_id, h.via_branch, h.cseq, h.method)
                table = proxy.options if h.method == "OPTIONS" else proxy.invites
                if key in table or key in proxy.done:    # retransmission: the first one counts
                    return
                table[key] = ts if h.method == "OPTIONS" else [ts, False]
                if len(table) > PENDING_LIMIT:
                    table.popitem(last=False)
            return
        if h.cseq_method not in ("OPTIONS", "INVITE"):
            return
        proxy = self._match(src)
        if proxy is None:
            return
        with self.lock:
            self.now = max(self.now, ts)
            key = (h.call_id, h.via_branch, h.cseq, h.cseq_method)
            code = h.code
            if h.cseq_method == "OPTIONS":
                if code < 200:
                    return
                t0 = proxy.options.pop(key, None)
                if t0 is None:
                    return
                proxy.remember(key, ts)
                if code >= 500:
                    proxy.add(ts, OPT_LOST)
                else:
                    proxy.add(ts, OPT_OK)
                    proxy.add(ts, OPT_LATENCY, max(0.0, ts - t0))
            else:
                entry = proxy.invites.get(key)
                if entry is None:
                    return
                if code < 200:
                    entry[1] = True
                    return
                del proxy.invites[key]
                proxy.remember(key, ts)
                proxy.add(ts, INV_FAILED if 500 <= code <= 599 else INV_OK)

    # -- evaluation -----------------------------------------------------------

    def _expire(self, proxy: _Proxy, now: float) -> None:
        cfg = proxy.cfg
        while proxy.options:
            key, t0 = next(iter(proxy.options.items()))
            if now < t0 + cfg.options_timeout_s:
                break
            proxy.options.popitem(last=False)
            proxy.add(t0 + cfg.options_timeout_s, OPT_LOST)
        for key in list(proxy.invites):
            t0, responded = proxy.invites[key]
            if not responded and now >= t0 + cfg.invite_timeout_s:
                del proxy.invites[key]
                proxy.add(t0 + cfg.invite_timeout_s, INV_FAILED)
            elif responded and now >= t0 + ANSWERED_INVITE_LIMIT_S:
                del proxy.invites[key]
            elif now < t0 + min(cfg.invite_timeout_s, ANSWERED_INVITE_LIMIT_S):
                break           # insertion order is time order: the rest are younger
        horizon = now - cfg.window_s
        while proxy.buckets and proxy.buckets[0][0] + 1 <= horizon:
            proxy.buckets.popleft()

    def evaluate(self, now: Optional[float] = None) -> dict:
        """name -> {status, options_loss, options_latency, invite_failure, ...}; status None without data.

        `now` is capture time (the pipeline's latest packet); timeouts fire
        against it, so a proxy that stops answering turns unhealthy even
        when it sends nothing more."""
        out = {}
        with self.lock:
            now = max(self.now, now or 0.0)
            for proxy in self.proxies:
                self._expire(proxy, now)
                ok = lost = inv_ok = inv_failed = 0
                latency_sum = 0.0
                lo = now - proxy.cfg.window_s
                for second, o, l_, lat, io, inf in proxy.buckets:
                    if second + 1 <= lo or second > now:
                        continue
                    ok, lost, latency_sum, inv_ok, inv_failed = (ok + o, lost + l_, latency_sum + lat,
                                                                 inv_ok + io, inv_failed + inf)
                out[proxy.cfg.name] = self._judge(proxy.cfg, ok, lost, latency_sum, inv_ok, inv_failed)
        return out

    @staticmethod
    def _judge(cfg, ok, lost, latency_sum, inv_ok, inv_failed) -> dict:
        loss = lost / (ok + lost) if ok + lost else None
        latency = latency_sum / ok if ok else None
        invites = inv_ok + inv_failed
        failure = inv_failed / invites if invites else None
        judged_failure = failure if invites >= cfg.min_invites else None

        def over(value, threshold):
            return value is not None and value >= threshold

        if not (ok or lost or invites):
            status = None
        elif (over(loss, cfg.options_loss_unhealthy) or over(latency, cfg.latency_unhealthy_s)
              or over(judged_failure, cfg.invite_failure_unhealthy)):
            status = "unhealthy"
        elif (over(loss, cfg.options_loss_degraded) or over(latency, cfg.latency_degraded_s)
              or over(judged_failure, cfg.invite_failure_degraded)):
            status = "degraded"
        else:
            status = "healthy"
        return {"status": status, "options_loss": loss, "options_latency": latency, "invite_failure": failure,
                "options": ok + lost, "invites": invites}
