"""``dicommedia create INPUT... -o OUTPUT`` (SPEC 2.1)."""

from __future__ import annotations

import click

from dicommedia.cli.render import fail


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(), help="X.iso, or a folder with --format dir.")
def create(inputs: tuple[str, ...], output: str) -> None:
    """Create a DICOM File-set on a burnable ISO 9660 image (or a folder)."""
    fail("create is not implemented yet")
