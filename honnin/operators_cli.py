"""Operators' commands: the quarantine, dead letters, and `honnin migrate`.

Every line is tab-separated and carries ids, kinds, times and reasons only: a quarantined row's
blobs stay sealed, and a dead letter's body is never printed (it may hold personal facts).
"""

from __future__ import annotations

import click

from honnin.bootstrap import App
from honnin.cli_app import with_app
from honnin.ops_cli import actor
from orchestrator.operations_views import ReplaySelection
from orchestrator.ports import DeadLetter, QuarantineEntry, Store


def _when(entry_time: object) -> str:
    return entry_time.isoformat(timespec="seconds") if hasattr(entry_time, "isoformat") else "-"


# --- the quarantine -------------------------------------------------------------------------------


@click.group(invoke_without_command=True)
@click.option(
    "--kind", default=None, help="registration, history, outbox, feed, delivery, webhook, dead_letter"
)
@click.option("--after", type=int, default=0, show_default=True, help="list entries with a larger id")
@click.option("--limit", type=int, default=100, show_default=True)
@click.pass_context
def quarantine(ctx: click.Context, kind: str | None, after: int, limit: int) -> None:
    """Stored rows that could not be decoded, moved aside: id, kind, key, since, reason."""
    if ctx.invoked_subcommand is not None:
        return

    async def work(app: App) -> list[str]:
        return [_entry_line(e) for e in await app.store.list_quarantine(kind, after, limit)]

    lines = with_app(work)
    click.echo("\n".join(lines) if lines else "nothing in quarantine")


def _entry_line(e: QuarantineEntry) -> str:
    return "\t".join([str(e.id), e.kind, e.key, _when(e.quarantined_at), e.reason])


@quarantine.command("show")
@click.argument("entry_id", type=int)
def show_quarantined(entry_id: int) -> None:
    """One entry and the rows it holds, as JSON (sealed blobs stay sealed, base64)."""

    async def work(app: App) -> QuarantineEntry | None:
        return await app.store.quarantined(entry_id)

    entry = with_app(work)
    if entry is None:
        raise click.ClickException(f"no quarantine entry {entry_id}")
    click.echo(_entry_line(entry))
    click.echo(entry.raw)


@quarantine.command("release")
@click.argument("entry_id", type=int)
def release_quarantined(entry_id: int) -> None:
    """Put an entry's rows back (after fixing the key or upgrading the code); read again, a row that
    still does not decode comes back to the quarantine."""

    async def work(app: App) -> bool:
        released = await app.store.release_quarantined(entry_id)
        await app.operations.record(actor(app), "quarantine.release", {"entry": entry_id}, int(released))
        return released

    if not with_app(work):
        raise click.ClickException(f"no quarantine entry {entry_id}")
    click.echo(f"{entry_id}: released; its rows are read again from now on")


@quarantine.command("discard")
@click.argument("entry_id", type=int)
def discard_quarantined(entry_id: int) -> None:
    """Forget an entry and its rows for good."""

    async def work(app: App) -> bool:
        discarded = await app.store.discard_quarantined(entry_id)
        await app.operations.record(actor(app), "quarantine.discard", {"entry": entry_id}, int(discarded))
        return discarded

    if not with_app(work):
        raise click.ClickException(f"no quarantine entry {entry_id}")
    click.echo(f"{entry_id}: discarded")


# --- dead letters ---------------------------------------------------------------------------------


async def all_dead_letters(store: Store, queue: str | None = None) -> list[DeadLetter]:
    found: list[DeadLetter] = []
    while page := await store.dead_letters(queue, found[-1].id if found else 0, 500):
        found += page
    return found


@click.group("dead-letters", invoke_without_command=True)
@click.option("--queue", default=None, help="only this queue's, e.g. honnin.orchestrator")
@click.option("--after", type=int, default=0, show_default=True, help="list letters with a larger id")
@click.option("--limit", type=int, default=100, show_default=True)
@click.pass_context
def dead_letters(ctx: click.Context, queue: str | None, after: int, limit: int) -> None:
    """Messages a queue gave up on: id, queue, message id, routing key, attempts, first and last seen,
    reason (never the body). RabbitMQ keeps them in `<queue>.dead` until `collect` brings them here."""
    if ctx.invoked_subcommand is not None:
        return

    async def work(app: App) -> list[str]:
        return [_letter_line(d) for d in await app.store.dead_letters(queue, after, limit)]

    lines = with_app(work)
    click.echo("\n".join(lines) if lines else "no dead letters")


def _letter_line(d: DeadLetter) -> str:
    m = d.message
    return "\t".join(
        [
            str(d.id),
            d.queue,
            m.message_id,
            m.routing_key,
            str(d.attempts),
            _when(d.first_seen_at),
            _when(d.last_seen_at),
            d.reason,
        ]
    )


@dead_letters.command("replay")
@click.argument("letter_id", type=int)
def replay_dead_letter(letter_id: int) -> None:
    """Put a dead letter back on the queue that gave up on it. On RabbitMQ the running workers take
    it; on the embedded bus this command serves it as a worker until it is handled. It is forgotten
    unless it is dead-lettered again (`honnin ops replay --dead-letter ID` does the same)."""
    click.echo(with_app(lambda app: replay(app, letter_id)))


async def replay(app: App, letter_id: int) -> str:
    letter = await app.store.dead_letter(letter_id)
    if letter is None:
        raise click.ClickException(f"no dead letter {letter_id}")
    report = await app.operations.replay(ReplaySelection(dead_letter_ids=(letter_id,)), actor(app))
    [item] = report.items
    if item.outcome in ("failed", "not_found"):
        raise click.ClickException(item.detail)
    if item.outcome == "replayed":
        return f"{letter_id}: back on {letter.queue}"
    if item.outcome == "dead_lettered_again":
        return f"{letter_id}: dead-lettered again: {item.detail}"
    return f"{letter_id}: {'handled' if item.outcome == 'handled' else 'sent back, not handled yet'}"


@dead_letters.command("delete")
@click.argument("letter_id", type=int)
def delete_dead_letter(letter_id: int) -> None:
    """Forget a dead letter without replaying it."""

    async def work(app: App) -> bool:
        deleted = await app.store.delete_dead_letter(letter_id)
        await app.operations.record(
            actor(app), "dead_letter.delete", {"dead_letter": letter_id}, int(deleted)
        )
        return deleted

    if not with_app(work):
        raise click.ClickException(f"no dead letter {letter_id}")
    click.echo(f"{letter_id}: deleted")


@dead_letters.command("collect")
def collect_dead_letters() -> None:
    """RabbitMQ: move every `<queue>.dead` message into the store, where it is listed and replayed
    like the embedded bus's (each is acked on the broker only once the store has it)."""

    async def work(app: App) -> int:
        if getattr(app.bus, "collect_dead_letters", None) is None:
            raise click.ClickException("the embedded bus keeps its dead letters in the store already")
        return await app.operations.collect(actor(app), list(app.runtime.queues))

    click.echo(f"{with_app(work)} dead letters collected")


# --- migrations -----------------------------------------------------------------------------------


@click.command()
@click.option("--dry-run", is_flag=True, help="count what would be rewritten; change nothing")
@click.option("--batch", type=click.IntRange(1, 10_000), default=500, show_default=True)
def migrate(dry_run: bool, batch: int) -> None:
    """Rewrite registrations stored at an older schema version at the current one, in batches.

    Safe beside running workers (a row a worker rewrote meanwhile is left to it), resumable (only
    older rows are read) and idempotent (a second run finds nothing)."""

    async def work(app: App) -> list[str]:
        lines, totals, cursor = [], [0, 0, 0, 0], ""
        while (done := await app.store.migrate(cursor, batch, dry_run=dry_run)).scanned:
            cursor = done.last
            counts = (done.scanned, done.rewritten, done.changed, done.quarantined)
            totals = [t + c for t, c in zip(totals, counts, strict=True)]
            lines.append("batch\t" + "\t".join(str(c) for c in counts))
        parameters = {"batch": batch, "scanned": totals[0]}
        await app.operations.record(actor(app), "migrate", parameters, totals[1], dry_run=dry_run)
        verb = "would rewrite" if dry_run else "rewritten"
        lines.append(
            f"scanned {totals[0]}, {verb} {totals[1]}, changed meanwhile {totals[2]},"
            f" {'undecodable' if dry_run else 'quarantined'} {totals[3]}"
        )
        return lines

    click.echo("\n".join(with_app(work)))
