"""The `honnin` command: run the orchestrator, look at registrations, export the schemas."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import structlog

from honnin import logs
from honnin.anchors_cli import anchors
from honnin.bootstrap import App
from honnin.cli_app import settings_from_env, wait_idle, with_app
from honnin.devca_cli import dev_ca
from honnin.municipality_cli import municipality
from honnin.operators_cli import all_dead_letters, dead_letters, migrate, quarantine
from honnin.ops_cli import actor, ops, when
from honnin.settings import Settings
from orchestrator.errors import HonninError, QuarantinedError, failure_reason
from orchestrator.operations import PARKED
from orchestrator.operations_views import ReplaySelection
from orchestrator.ports import BusMessage
from schemas.events import Envelope, EnvelopeError, parse_event

T = TypeVar("T")


_settings = settings_from_env
_with_app = with_app


@click.group()
@click.version_option(package_name="honnin")
def main() -> None:
    """Honnin: My Number Card registrations as persisted state machines."""


@main.command()
@click.option(
    "--events",
    "events_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON lines of event envelopes to feed in after start-up.",
)
@click.option("--until-idle", is_flag=True, help="Stop once every event is applied and the outbox is empty.")
def run(events_file: Path | None, until_idle: bool) -> None:
    """Run an orchestrator worker (embedded default: SQLite + in-process bus)."""

    async def work(app: App) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await app.runtime.start()
        since = datetime.now(UTC)
        fed = await _feed(app, events_file) if events_file else []
        if until_idle:
            await _wait_idle(app)
            await _summarise(fed, app, since)
            await _print_states(app, fed)
            return
        async with contextlib.AsyncExitStack() as listening:
            await _listen(app, listening)
            await app.runtime.wait(stop)

    settings = _settings()
    if settings.strict_startup:  # production (compose): fail fast rather than start unusable
        from honnin.readiness import require_ready

        try:
            require_ready(settings)
        except HonninError as exc:
            raise click.ClickException(exc.message) from None
    _with_app(work, settings)


async def _listen(app: App, stack: contextlib.AsyncExitStack) -> None:
    """The facility API and the card bridge (with /metrics), and /metrics on a port of its own."""
    from adapters.http.common import serve

    settings = app.settings
    limits = {
        "header_timeout": settings.http_header_timeout_seconds,
        "keepalive_timeout": settings.http_keepalive_seconds,
    }
    logger = structlog.get_logger("honnin.http")
    if settings.http_enabled:
        from honnin.http import build_http

        server = await stack.enter_async_context(
            serve(build_http(app), settings.http_host, settings.http_port, **limits)
        )
        logger.info("http.listening", url=server.url, public_url=settings.public_url)
    if settings.metrics_port is not None:
        from adapters.metrics.http import metrics_application

        http = metrics_application(app.metrics, app.standing)
        server = await stack.enter_async_context(
            serve(http, settings.metrics_host, settings.metrics_port, **limits)
        )
        logger.info("metrics.listening", url=f"{server.url}/metrics")


async def _feed(app: App, path: Path) -> list[Envelope]:
    """Publish each valid line once the previous one has settled (a replay keeps its order);
    report each invalid one by line number, without its content."""
    fed: list[Envelope] = []
    text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            event = parse_event(line)
        except EnvelopeError as exc:
            click.echo(f"{path}:{number}: {exc.message}", err=True)
            continue
        await app.bus.publish(BusMessage(event.type, line.encode(), str(event.event_id)))
        fed.append(event)
        await _wait_idle(app)
    return fed


_wait_idle = wait_idle


async def _summarise(fed: list[Envelope], app: App, since: datetime) -> None:
    if app.settings.bus == "rabbitmq":  # kept in the <queue>.dead queues: `honnin dead-letters collect`
        click.echo(f"fed {len(fed)} events; dead letters wait in the broker's .dead queues")
        return
    dead = [d for d in await all_dead_letters(app.store) if d.last_seen_at and d.last_seen_at >= since]
    click.echo(f"fed {len(fed)} events; {len(dead)} dead-lettered")
    for letter in dead:
        click.echo(f"  dead letter {letter.message.message_id}: {letter.reason}")


async def _print_states(app: App, fed: list[Envelope]) -> None:
    for registration_id in dict.fromkeys(e.registration_id for e in fed):
        try:
            stored = await app.store.load(registration_id)
        except QuarantinedError:
            click.echo(f"  {registration_id}: in the quarantine")
            continue
        click.echo(f"  {registration_id}: {stored.registration.state.value if stored else 'not created'}")


@main.command()
@click.argument("registration_id")
def status(registration_id: str) -> None:
    """Show one registration's state; personal facts stay masked."""

    async def work(app: App) -> dict[str, Any]:
        stored = await app.orchestrator.status(registration_id)
        return _status_view(stored.registration.model_dump(mode="json"), stored.version)

    click.echo(json.dumps(_with_app(work), ensure_ascii=False, indent=2))


def _status_view(reg: dict[str, Any], version: int) -> dict[str, Any]:
    verification = reg.get("verification") or {}
    return {
        "registration_id": reg["id"],
        "state": reg["state"],
        "version": version,
        "profile": reg["profile"],
        "facility_id": reg["facility_id"],
        "created_at": reg["created_at"],
        "updated_at": reg["updated_at"],
        "expires_at": reg["expires_at"],
        "activated_at": reg["activated_at"],
        "ended_at": reg["ended_at"],
        "card_read": reg["card"] is not None,
        "challenge_attempt": reg["challenge_attempt"],
        "verification": {
            k: verification.get(k) for k in ("attempt", "status", "retries", "retry_at", "code", "message")
        }
        if verification
        else None,
    }


@main.command()
@click.argument("registration_id")
def history(registration_id: str) -> None:
    """List every event applied to or refused by a registration, oldest first."""

    async def work(app: App) -> list[str]:
        entries = await app.orchestrator.history(registration_id)
        return [
            "\t".join(
                [
                    e.recorded_at.isoformat(timespec="seconds"),
                    e.event_type,
                    e.source,
                    e.outcome,
                    f"{e.from_state}->{e.to_state}",
                    e.code or "",
                    e.message or "",
                ]
            )
            for e in entries
        ]

    lines = _with_app(work)
    if not lines:
        raise click.ClickException(f"no history for {registration_id}")
    click.echo("\n".join(lines))


@main.command()
@click.option(
    "--serve", "serve_page", is_flag=True, help="Serve the facility page and the simulator at /demo/."
)
@click.option("--host", default=None, help="with --serve: the address (default HONNIN_HTTP_HOST)")
@click.option("--port", type=int, default=None, help="with --serve: the port (default HONNIN_HTTP_PORT)")
@click.option(
    "--folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="with --serve: keep the dev CA, the token and the store here (default: a temporary folder)",
)
def demo(serve_page: bool, host: str | None, port: int | None, folder: Path | None) -> None:
    """Play the seed manual's flow and its failures over HTTP with a development CA's cards;
    with --serve, let a person click through it in a browser (demo mode, never production)."""
    if not serve_page:
        from honnin.demo import run_demo

        logs.configure("ERROR", "console")
        asyncio.run(run_demo(click.echo))
        return
    from honnin.demo_site.serve import serve_until_stopped

    settings = Settings()
    chosen = settings.model_fields_set
    logs.configure(
        settings.log_level if "log_level" in chosen else "WARNING",
        settings.log_format if "log_format" in chosen else "console",
    )
    try:
        asyncio.run(serve_until_stopped(settings, folder, host, port, click.echo))
    except HonninError as exc:
        raise click.ClickException(failure_reason(exc)) from None


@main.command()
def check() -> None:
    """Readiness: the store and the bus answer (compose's health check)."""

    async def work(app: App) -> str:
        backlog = await app.store.outbox_backlog()
        quarantined = await app.store.quarantine_count()
        dead = await app.store.dead_letter_count()
        return (
            f"ok store={app.settings.store} bus={app.settings.bus} outbox_backlog={backlog}"
            f" quarantined={quarantined} dead_letters={dead}"
        )

    click.echo(_with_app(work))


@main.command()
@click.option("--limit", type=int, default=100, show_default=True)
def parked(limit: int) -> None:
    """List registrations whose verification was parked after its retries ran out: id, code,
    retries, last change (deprecated: `honnin ops registrations --verification parked`)."""

    async def work(app: App) -> list[str]:
        page = await app.operations.list_registrations(PARKED, None, max(1, min(limit, 1000)))
        return ["\t".join([r.id, r.code or "", str(r.retries), when(r.updated_at)]) for r in page.items]

    lines = _with_app(work)
    click.echo("\n".join(lines) if lines else "no parked verifications")


@main.command()
@click.argument("registration_id")
@click.option("--reason", default=None, help="why, for the history")
def replay(registration_id: str, reason: str | None) -> None:
    """Send a parked verification's kept signature to the verifier again (a running worker relays it;
    deprecated: `honnin ops replay ID`)."""

    async def work(app: App) -> str:
        report = await app.operations.replay(ReplaySelection((registration_id,)), actor(app), reason=reason)
        [item] = report.items
        if item.outcome != "replayed":
            raise click.ClickException(item.detail)
        return f"{registration_id}: verification requested again"

    click.echo(_with_app(work))


@main.group()
def schemas() -> None:
    """The wire formats."""


@schemas.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export_schemas(directory: Path) -> None:
    """Write one JSON Schema per event type into DIRECTORY."""
    from schemas.export import export

    for path in export(directory):
        click.echo(str(path))


main.add_command(dev_ca)
main.add_command(municipality)
main.add_command(anchors)
main.add_command(quarantine)
main.add_command(dead_letters)
main.add_command(migrate)
main.add_command(ops)


@main.group()
def webhooks() -> None:
    """Facilities' webhook endpoints and their deliveries."""


@webhooks.command("list")
def list_webhooks() -> None:
    """Every endpoint: facility, state, deliveries not yet delivered, the last attempt (no secret)."""

    async def work(app: App) -> list[str]:
        lines = []
        for e in await app.store.webhooks():
            pending = await app.store.delivery_backlog(e.facility_id)
            last = e.last_attempt_at.isoformat(timespec="seconds") if e.last_attempt_at else "-"
            status = str(e.last_status) if e.last_status is not None else (e.last_error or "-")
            lines.append("\t".join([e.facility_id, e.state, str(pending), last, status, e.url]))
        return lines

    lines = _with_app(work)
    click.echo("\n".join(lines) if lines else "no webhook endpoints")


async def replay_webhooks(app: App, facility: str, since: datetime | None) -> int:
    """Every undelivered delivery of the facility (since `since`) due now, on a fresh schedule."""
    if await app.store.webhook(facility) is None:
        raise click.ClickException(f"facility {facility} has no webhook endpoint")
    count = await app.store.replay_deliveries(facility, since, app.clock.now())
    app.orchestrator.facility_heard.notify()
    parameters = {"facility": facility, **({"since": since.isoformat()} if since else {})}
    await app.operations.record(actor(app), "webhooks.replay", parameters, count)
    return count


def _instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            "an ISO 8601 time, e.g. 2026-11-23T09:00:00+09:00", param_hint="--since"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@webhooks.command("replay")
@click.option("--facility", required=True, help="the facility whose deliveries wait")
@click.option("--since", default=None, help="only events from this time on (ISO 8601; UTC without a zone)")
def replay_webhooks_command(facility: str, since: str | None) -> None:
    """Send a facility's undelivered webhooks again (after its endpoint failed or was disabled);
    running workers pick them up."""
    start = _instant(since)
    count = _with_app(lambda app: replay_webhooks(app, facility, start))
    click.echo(f"{facility}: {count} deliveries due again")


@main.command()
def keygen() -> None:
    """Print a new data key for HONNIN_DATA_KEY."""
    from adapters.store.codec import new_key

    click.echo(new_key())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
