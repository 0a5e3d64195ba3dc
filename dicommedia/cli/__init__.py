"""Command line: parses options and renders results; the work is done in the library modules."""

from __future__ import annotations

import warnings

import click

from dicommedia import __version__
from dicommedia.cli.create import create
from dicommedia.cli.profiles import profiles
from dicommedia.cli.read import read
from dicommedia.cli.render import run_guarded
from dicommedia.cli.validate import validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dicommedia")
def cli() -> None:
    """DICOM removable media: create, read and validate disc images (PS3.10/3.11/3.12, IHE PDI)."""


cli.add_command(create)
cli.add_command(read)
cli.add_command(validate)
cli.add_command(profiles)


def main() -> None:
    """Console-script entry point."""
    # pydicom warns about every odd value it meets; our own checks report what matters, one line each.
    warnings.filterwarnings("ignore", module=r"pydicom(\..*)?$")
    warnings.filterwarnings("ignore", category=UserWarning, message=r".*(VR|Invalid value|Expected explicit).*")
    run_guarded(cli)
