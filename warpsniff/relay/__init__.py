"""Media relay (rtpengine) and SIP proxy (Kamailio) metrics.

- `ng`: rtpengine's ng protocol (client, cookie framing) and the decoder of
  ng traffic in the capture (`NgSniffer`: sessions opened/closed, latency);
- `poller`: one background thread per rtpengine instance (ping, statistics,
  optional HTTP /metrics), with timeouts, never raising into the exporter;
- `kamailio`: proxy health from the SIP messages the tracker sees;
- `collector`: the Prometheus families (docs/metrics.md, "Media relay and
  proxy");
- `config`: the ``rtpengine:`` and ``kamailio:`` sections (docs/labels.md).

`Relay` ties them together::

    relay = Relay.from_config(label_config)      # None when neither section lists anything
    options.control_ports = relay.control_ports  # before the Pipeline builds its engine
    relay.attach(pipeline)                       # sniffer + observer on the packet path
    registry.register(relay.collector())
    relay.start() ... relay.stop()               # pollers, with the exporter
"""
from __future__ import annotations

from typing import Optional

from warpsniff.relay.collector import RelayCollector
from warpsniff.relay.config import ConfigError, RelayConfig, parse
from warpsniff.relay.kamailio import KamailioHealth
from warpsniff.relay.ng import NgClient, NgSniffer
from warpsniff.relay.poller import Poller

__all__ = ["Relay", "RelayCollector", "ConfigError", "NgClient"]


class Relay:
    def __init__(self, config: RelayConfig):
        self.config = config
        self.sniffer = NgSniffer(config.rtpengine)
        self.health = KamailioHealth(config.kamailio)
        self.pollers = [Poller(inst) for inst in config.rtpengine]
        self.pipeline = None

    @classmethod
    def from_config(cls, label_config, resolve: bool = True) -> Optional["Relay"]:
        """ConfigError on a bad section; None when there is nothing to watch."""
        config = parse(label_config, resolve=resolve)
        return cls(config) if config else None

    @property
    def control_ports(self) -> tuple:
        """UDP ports the engine hands to the ng sniffer (EngineOptions.control_ports)."""
        return self.sniffer.ports

    def attach(self, pipeline) -> None:
        """Sniffs ng datagrams and observes SIP messages of this pipeline."""
        self.pipeline = pipeline
        if self.config.rtpengine:
            pipeline.correlator.control_handlers.append(self.sniffer.datagram)
        if self.config.kamailio:
            pipeline.tracker.observers.append(self.health.observe)

    def capture_now(self) -> float:
        """The latest capture time of the attached pipeline (0 without one)."""
        p = self.pipeline
        if p is None:
            return 0.0
        with p.lock:
            return p.engine.capture_time_ns / 1e9

    def collector(self) -> RelayCollector:
        return RelayCollector(self)

    def start(self) -> None:
        for poller in self.pollers:
            poller.start()

    def stop(self) -> None:
        for poller in self.pollers:
            poller._stop.set()
        for poller in self.pollers:
            poller.stop()
