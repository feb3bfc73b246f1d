"""The metrics listener: Prometheus' text format at ``/metrics`` on metrics_host:metrics_port.

A listener of its own (not a path of the API) so that Prometheus needs no API credentials
and the API's authentication never sees scrapes; like the API it is an eventlet WSGI server
on the controller's hub.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import make_wsgi_app

from ryu_sched.api.server import ApiServer
from ryu_sched.observability.metrics import Metrics

PATHS = ("/metrics", "/")


def metrics_app(metrics: Metrics) -> Callable[..., Iterable[bytes]]:
    """``/metrics`` (and ``/``) in the text format (or OpenMetrics, as the scraper asks);
    404 elsewhere."""
    exposition = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "/") not in PATHS:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not found: metrics are at /metrics\n"]
        return exposition(environ, start_response)  # type: ignore[no-any-return]

    return app


class MetricsServer(ApiServer):
    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        super().__init__(metrics_app(metrics), host, port, name="Prometheus metrics")
