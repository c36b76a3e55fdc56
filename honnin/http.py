"""The worker's HTTP face: the facility API, the card bridge, the xID app API, the operator API,
the console, OpenAPI, a health probe, the metrics."""

from __future__ import annotations

from aiohttp import web

from adapters.card_bridge.app import add_card_bridge_routes
from adapters.card_bridge.xid import add_xid_routes
from adapters.console.app import add_console_routes
from adapters.http.common import REQUEST_TIMEOUT, application, ok
from adapters.metrics.http import add_metrics_route
from adapters.ops.api import add_ops_routes
from adapters.web.app import add_web_routes
from adapters.web.feed import LONG_POLL_LIMIT, long_poll_aware
from adapters.web.webhooks import OutboundApi
from honnin.bootstrap import App
from honnin.openapi_routes import openapi_document


def build_http(app: App) -> web.Application:
    """Every route within the usual time limit but the feed's long poll, which may hold 30 s."""
    http = application(timeout=LONG_POLL_LIMIT)
    http.middlewares.insert(0, long_poll_aware(REQUEST_TIMEOUT))

    async def serving(_: web.Application) -> None:
        app.outbound.resume_waiting()

    async def stopping(_: web.Application) -> None:  # before aiohttp waits for the handlers
        app.outbound.release_waiting()

    http.on_startup.append(serving)
    http.on_shutdown.append(stopping)
    add_web_routes(
        http,
        orchestrator=app.orchestrator,
        links=app.links,
        clock=app.clock,
        facilities=app.settings.facilities(),
        outbound=OutboundApi(app.outbound, app.webhook_policy, app.feed_key),
    )
    simulator = None
    if app.settings.demo:  # development and demo mode only: the reference page and the simulator
        from honnin.demo_site import mount

        simulator = mount(http, app.settings)
    add_card_bridge_routes(
        http, orchestrator=app.orchestrator, links=app.links, clock=app.clock, simulator=simulator
    )
    add_xid_routes(
        http,
        orchestrator=app.orchestrator,
        clock=app.clock,
        clients=app.settings.app_client_secrets(),
        email_links=app.email_links,
    )
    operators = app.settings.operators()
    add_ops_routes(http, operations=app.operations, clock=app.clock, operators=operators)
    add_console_routes(
        http,
        operations=app.operations,
        store=app.store,
        clock=app.clock,
        operators=operators,
        key=app.console_key,
        session_seconds=app.settings.console_session_seconds,
    )
    document = openapi_document()

    async def openapi(_: web.Request) -> web.Response:
        return ok(document)

    async def healthz(_: web.Request) -> web.Response:
        return ok({"status": "ok", "outbox_backlog": await app.store.outbox_backlog()})

    http.router.add_get("/openapi.json", openapi, name="openapi")
    http.router.add_get("/healthz", healthz, name="healthz")
    add_metrics_route(http, app.metrics, app.standing)
    return http
