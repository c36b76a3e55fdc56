"""What every `honnin` command that needs a worker's adapters shares: settings from the environment,
the app bootstrapped around the work and closed after it, our errors as one clean line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from honnin import logs
from honnin.bootstrap import App, bootstrap, wait_idle
from honnin.settings import Settings
from orchestrator.errors import HonninError, failure_reason

T = TypeVar("T")
__all__ = ["settings_from_env", "wait_idle", "with_app"]


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
