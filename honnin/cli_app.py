"""What every `honnin` command that needs a worker's adapters shares: settings from the environment,
the app bootstrapped around the work and closed after it, our errors as one clean line."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from honnin import logs
from honnin.bootstrap import App, bootstrap
from honnin.settings import Settings
from orchestrator.errors import HonninError, failure_reason

T = TypeVar("T")


def settings_from_env() -> Settings:
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    return settings


def with_app(work: Callable[[App], Awaitable[T]], settings: Settings | None = None) -> T:
    async def main() -> T:
        app = await bootstrap(settings or settings_from_env())
        try:
            return await work(app)
        finally:
            await app.close()

    try:
        return asyncio.run(main())
    except HonninError as exc:
        raise click.ClickException(failure_reason(exc)) from None


async def wait_idle(app: App) -> None:
    """Every consumed queue idle and the outbox empty, at the same moment (a message that keeps
    failing holds this until its redelivery window has passed and it is dead-lettered)."""
    join = getattr(app.bus, "join", None)
    idle = getattr(app.bus, "idle", lambda: True)
    while True:
        if join is not None:
            with contextlib.suppress(TimeoutError):
                await join(within=60)
        if await app.store.outbox_backlog() == 0 and idle():
            return
        await asyncio.sleep(0.02)
