"""`honnin ops`: find, understand and replay what failed — the CLI face of orchestrator.operations
(`/ops/v1` is the other), so both list, replay and audit alike.

Lists are tab-separated on stdout (ids, states, codes, times; never a personal fact nor a message
body); hints and the progress bar go to stderr. Every action is audited under the operator's name:
HONNIN_OPERATOR_NAME, else the system user's.
"""

from __future__ import annotations

import json
import os
import pwd
import sys
from dataclasses import asdict
from datetime import datetime
from typing import Any

import click

from honnin.bootstrap import App
from honnin.cli_app import with_app
from orchestrator.errors import InvalidRequestError
from orchestrator.listing import AuditRecord, RegistrationQuery, RegistrationSummary
from orchestrator.model import State
from orchestrator.operations_views import (
    Actor,
    DeadLetterSummary,
    ReplayItem,
    ReplayReport,
    ReplaySelection,
    parse_age,
    parse_instant,
)

STATES = tuple(s.value for s in State if s is not State.NEW)
VERIFICATIONS = ("pending", "retrying", "passed", "failed", "parked")


def actor(app: App) -> Actor:
    """The audit's who on the command line."""
    return Actor(app.settings.operator_name or pwd.getpwuid(os.getuid()).pw_name, "cli")


def when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


def rate_of(text: str | None) -> float | None:
    """`20`, `20/s` or `0.5/s`: replays a second."""
    if text is None:
        return None
    number = text.strip().removesuffix("/s")
    try:
        rate = float(number)
    except ValueError:
        raise click.BadParameter("replays a second, e.g. 20/s", param_hint="--rate") from None
    if not 0 < rate <= 1000:
        raise click.BadParameter("between 0 and 1000 a second", param_hint="--rate")
    return rate


@click.group()
def ops() -> None:
    """Operators: list registrations, show one, dead letters, replay, the audit."""


def summary_line(r: RegistrationSummary) -> str:
    fields = [r.id, r.state, r.verification or "-", r.code or "-", str(r.retries), r.facility_id, r.profile]
    return "\t".join([*fields, when(r.created_at), when(r.updated_at)])


@ops.command("registrations")
@click.option("--state", type=click.Choice(STATES), default=None)
@click.option("--verification", type=click.Choice(VERIFICATIONS), default=None, help="e.g. parked")
@click.option("--code", default=None, help="the current failure, park or retry code, e.g. 42")
@click.option("--facility", default=None, help="a facility id")
@click.option("--profile", default=None, help="facility or xid")
@click.option("--older-than", default=None, help="created longer ago than this: 30m, 2h, 7d")
@click.option("--newer-than", default=None, help="created more recently than this")
@click.option("--updated-before", default=None, help="last changed before (ISO 8601; UTC without a zone)")
@click.option("--updated-after", default=None, help="last changed at or after (ISO 8601)")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--after", default=None, help="the cursor a previous page printed")
def registrations(
    state: str | None,
    verification: str | None,
    code: str | None,
    facility: str | None,
    profile: str | None,
    older_than: str | None,
    newer_than: str | None,
    updated_before: str | None,
    updated_after: str | None,
    limit: int,
    after: str | None,
) -> None:
    """Registrations by creation time: id, state, verification, code, retries, facility, profile,
    created, updated. The next page's cursor goes to stderr."""

    async def work(app: App) -> tuple[list[str], str | None, int]:
        now = app.clock.now()
        query = RegistrationQuery(
            state=state,
            verification=verification,
            code=code,
            facility_id=facility,
            profile=profile,
            created_before=now - parse_age(older_than, "--older-than") if older_than else None,
            created_after=now - parse_age(newer_than, "--newer-than") if newer_than else None,
            updated_before=parse_instant(updated_before, "--updated-before") if updated_before else None,
            updated_after=parse_instant(updated_after, "--updated-after") if updated_after else None,
        )
        page = await app.operations.list_registrations(query, after, limit)
        unindexed = (await app.operations.counts()).unindexed
        return [summary_line(r) for r in page.items], page.next_cursor, unindexed

    lines, cursor, unindexed = with_app(work)
    click.echo("\n".join(lines) if lines else "no registrations")
    if cursor:
        click.echo(f"more: --after {cursor}", err=True)
    if unindexed:
        click.echo(
            f"{unindexed} registrations were written before these lists: run `honnin migrate`", err=True
        )


@ops.command("counts")
def counts() -> None:
    """Counts by state, verification status and code, as JSON."""

    async def work(app: App) -> dict[str, Any]:
        return asdict(await app.operations.counts())

    click.echo(json.dumps(with_app(work), indent=2, sort_keys=True))


@ops.command("show")
@click.argument("registration_id")
def show(registration_id: str) -> None:
    """One registration with its whole history and every verification decision, as JSON (ids,
    states, codes, reasons and times; never a personal fact)."""

    async def work(app: App) -> dict[str, Any]:
        return asdict(await app.operations.show(registration_id))

    click.echo(json.dumps(with_app(work), indent=2, ensure_ascii=False, default=_json_default))


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


@ops.command("dead-letters")
@click.option("--queue", default=None, help="only this queue's, e.g. honnin.orchestrator")
@click.option("--after", type=int, default=0, show_default=True, help="list letters with a larger id")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
def dead_letters(queue: str | None, after: int, limit: int) -> None:
    """Dead letters kept in the store: id, queue, message id, routing key, attempts, first seen,
    last seen, reason (never the body). RabbitMQ's wait in `<queue>.dead` until
    `honnin dead-letters collect`."""

    async def work(app: App) -> list[str]:
        return [letter_line(d) for d in await app.operations.dead_letters(queue, after, limit)]

    lines = with_app(work)
    click.echo("\n".join(lines) if lines else "no dead letters")


@ops.command("replay")
@click.argument("registration_ids", nargs=-1)
@click.option("--dead-letter", "letters", type=int, multiple=True, help="a dead letter's id (repeatable)")
@click.option("--code", default=None, help="every parked registration with this code, e.g. 42")
@click.option("--since", default=None, help="every one parked at or after (ISO 8601; UTC without a zone)")
@click.option("--until", default=None, help="… and before this")
@click.option("--dry-run", is_flag=True, help="say what would happen; change nothing (still audited)")
@click.option("--rate", default=None, help="replays a second, e.g. 20/s (default HONNIN_REPLAY_RATE)")
@click.option("--reason", default=None, help="why, for the history")
def replay(
    registration_ids: tuple[str, ...],
    letters: tuple[int, ...],
    code: str | None,
    since: str | None,
    until: str | None,
    dry_run: bool,
    rate: str | None,
    reason: str | None,
) -> None:
    """Replay parked verifications (by id, --code, --since/--until) and dead letters (--dead-letter).
    Idempotent: what is not parked any more (activated, replayed already) is skipped unchanged.
    Each line: kind, target, outcome, detail; a summary last."""
    per_second = rate_of(rate)

    async def work(app: App) -> ReplayReport:
        selection = ReplaySelection(
            registration_ids,
            letters,
            code,
            parse_instant(since, "--since") if since else None,
            parse_instant(until, "--until") if until else None,
        )
        return await run_replay(app, selection, dry_run=dry_run, rate=per_second, reason=reason)

    report = with_app(work)
    for item in report.items:
        click.echo(item_line(item))
    click.echo(summary(report))


async def run_replay(
    app: App, selection: ReplaySelection, *, dry_run: bool, rate: float | None, reason: str | None
) -> ReplayReport:
    """The replay with a progress bar on stderr, sized by the targets listed first."""
    targets = await app.operations.targets(selection)
    if not targets and not selection.by_query:
        raise InvalidRequestError(
            "name registrations, --dead-letter, --code or --since/--until", code="no_selection"
        )
    label = "dry run" if dry_run else f"replaying at {rate or app.operations.rate:g}/s"
    with click.progressbar(length=len(targets), label=label, file=sys.stderr) as bar:
        return await app.operations.replay(
            selection,
            actor(app),
            dry_run=dry_run,
            rate=rate,
            reason=reason,
            progress=lambda _: bar.update(1),
            targets=targets,
        )


def item_line(item: ReplayItem) -> str:
    return "\t".join([item.kind, item.target, item.outcome, item.detail])


def summary(report: ReplayReport) -> str:
    verb = "would replay" if report.dry_run else "replayed"
    return f"{verb} {report.affected} of {len(report.items)} (audit {report.audit_id})"


@ops.command("audit")
@click.option("--operator", default=None, help="only this operator's")
@click.option("--before", type=int, default=None, help="records with a smaller id (the next page)")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
def audit(operator: str | None, before: int | None, limit: int) -> None:
    """Every operator action, newest first: id, when, who, channel, action, dry run, affected,
    parameters (JSON)."""

    async def work(app: App) -> list[str]:
        return [audit_line(r) for r in await app.operations.audit(before, limit, operator)]

    lines = with_app(work)
    click.echo("\n".join(lines) if lines else "no operator actions recorded")


def letter_line(d: DeadLetterSummary) -> str:
    head = [str(d.id), d.queue, d.message_id, d.routing_key, str(d.attempts)]
    return "\t".join([*head, when(d.first_seen_at), when(d.last_seen_at), d.reason])


def audit_line(r: AuditRecord) -> str:
    head = [str(r.id), when(r.at), r.operator, r.channel, r.action, "dry-run" if r.dry_run else "-"]
    return "\t".join([*head, str(r.affected), json.dumps(r.parameters, sort_keys=True, ensure_ascii=False)])
