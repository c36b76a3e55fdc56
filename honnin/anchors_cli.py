"""`honnin anchors`: J-LIS's signing root generations, which are present, and installing a missing one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from adapters.ca_revocation.anchors import (
    JLIS_SIGNING_GENERATIONS,
    generation_states,
    install_anchor,
    installed_anchors,
    jpki_trust_anchors,
)
from honnin.settings import Settings
from orchestrator.errors import ConfigurationError


@click.group("anchors")
def anchors() -> None:
    """J-LIS's signing roots: each generation, and `add` for one not shipped (signca02)."""


@anchors.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def add(file: Path) -> None:
    """Install FILE (DER or PEM, the J-LIS .cer) if its SHA-256 is a published root's."""
    folder = Settings().anchors_folder
    try:
        generation, target = install_anchor(file, folder)
    except ConfigurationError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(
        f"installed {generation.name} (serial {generation.serial}, valid {generation.not_before} – "
        f"{generation.not_after}) as {target}; restart the workers to use it"
    )


@anchors.command("list")
def list_generations() -> None:
    """Each generation: present (shipped, installed) or missing, and valid today or not."""
    settings = Settings()
    today = datetime.now(UTC).date()
    try:
        installed = installed_anchors(settings.anchors_folder)
    except ConfigurationError as exc:
        raise click.ClickException(exc.message) from None
    for state in generation_states(jpki_trust_anchors("signing"), installed, JLIS_SIGNING_GENERATIONS):
        generation = state.generation
        if generation.valid_on(today):
            validity = "valid today"
        else:
            validity = "expired" if today > generation.not_after else "not yet valid"
        click.echo(
            "\t".join(
                [
                    generation.name,
                    f"serial {generation.serial}",
                    f"{generation.not_before} – {generation.not_after}",
                    validity,
                    state.where or "MISSING",
                    generation.cards,
                ]
            )
        )
    if settings.trust_anchor_files:
        click.echo("note: HONNIN_TRUST_ANCHOR_FILES is set, so verification trusts those files instead")
