"""/metrics over aiohttp: on the worker's HTTP app, or on a port of its own (HONNIN_METRICS_PORT)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from adapters.http.common import application
from adapters.metrics.prometheus import CONTENT_TYPE, PrometheusMetrics
from orchestrator.errors import RetryableError, failure_reason
from orchestrator.observations import Standing

log = structlog.get_logger("honnin.metrics")

ReadStanding = Callable[[], Awaitable[Standing]]


def metrics_handler(
    exporter: PrometheusMetrics, read: ReadStanding
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def metrics(_: web.Request) -> web.Response:
        try:
            standing: Standing | None = await read()
        except RetryableError as exc:  # the counters are still worth serving
            log.warning("metrics.store_unreadable", reason=failure_reason(exc))
            standing = None
        return web.Response(body=exporter.exposition(standing), headers={"Content-Type": CONTENT_TYPE})

    return metrics


def add_metrics_route(http: web.Application, exporter: PrometheusMetrics, read: ReadStanding) -> None:
    http.router.add_get("/metrics", metrics_handler(exporter, read), name="metrics")


def metrics_application(exporter: PrometheusMetrics, read: ReadStanding) -> web.Application:
    """A worker without the facility API still answers scrapes (HONNIN_METRICS_PORT)."""
    http = application()
    add_metrics_route(http, exporter, read)
    return http
