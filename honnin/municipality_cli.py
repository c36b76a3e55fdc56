"""`honnin municipality ADDRESS`: the 自治体 a certificate's address lies in."""

from __future__ import annotations

import click

from orchestrator.municipality import resolve


@click.command()
@click.argument("address")
@click.option(
    "--substituted",
    default="",
    metavar="FLAGS",
    help="The certificate's 代替文字 flags for the address: one digit per character, 1 = substituted.",
)
def municipality(address: str, substituted: str) -> None:
    """Print CODE<TAB>NAME: the 全国地方公共団体コード and the name (the ward in a designated city)."""
    found = resolve(address, substituted)
    if found is None:
        # the address is a personal fact: the message does not repeat it
        raise click.ClickException(
            "no municipality: the address names none in Honnin's table, or more than one could fit"
            + (" (or FLAGS do not have one digit, 0 or 1, per character)" if substituted else "")
        )
    click.echo(f"{found.code}\t{found.name}")
