"""HTTP serving of /metrics (prometheus-client: OpenMetrics negotiation and
gzip) and /healthz, with optional TLS and basic auth.

Default port 10780: Prometheus' exporter range 9100-9999 is fully allocated,
so warpsniff sits outside it and below Linux's ephemeral ports.
"""
from __future__ import annotations

import base64
import hmac
import socket
import ssl
import threading
from socketserver import ThreadingMixIn
from typing import Optional
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

DEFAULT_PORT = 10780


def parse_listen(text: str) -> tuple[str, int]:
    """"[host]:port", ":port" or "port" -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "0.0.0.0"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"bad listen address {text!r} (expected HOST:PORT)")
    return host, int(port)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # scrapes every few seconds would flood stderr
        pass


def _app(registry: CollectorRegistry, auth: Optional[str]):
    metrics = make_wsgi_app(registry)
    expected = ("Basic " + base64.b64encode(auth.encode()).decode()) if auth else None

    def app(environ, start_response):
        if expected is not None:
            given = environ.get("HTTP_AUTHORIZATION", "")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="warpsniff"'),
                                                    ("Content-Type", "text/plain")])
                return [b"unauthorized\n"]
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path in ("/metrics", "/"):
            return metrics(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


class Exporter:
    """Serves a registry in a background thread until stopped."""

    def __init__(self, registry: CollectorRegistry, listen: str, basic_auth: Optional[str] = None,
                 tls_cert: Optional[str] = None, tls_key: Optional[str] = None):
        host, port = parse_listen(listen)
        if ":" in host:
            _Server.address_family = socket.AF_INET6
        self.server = make_server(host, port, _app(registry, basic_auth), server_class=_Server,
                                  handler_class=_QuietHandler)
        if tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls_cert, tls_key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="warpsniff-exporter", daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> "Exporter":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def registry_for(pipeline, relay=None) -> CollectorRegistry:
    from warpsniff.metrics.collector import SnifferCollector, WarpCollector

    pipeline.serving = True  # per-call series want interval MOS while calls are up
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WarpCollector(pipeline))
    registry.register(SnifferCollector(pipeline))
    if relay is not None:  # rtpengine / Kamailio (warpsniff/relay), when the config lists instances
        registry.register(relay.collector())
    return registry
