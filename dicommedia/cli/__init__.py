"""Command line: parses options and renders results; the work is done in the library modules."""

from __future__ import annotations

import importlib
import warnings

import click

from dicommedia import __version__
from dicommedia.cli.render import run_guarded

# Each command loads its module (and pydicom, numpy, ...) only when it runs: start-up stays short.
_COMMANDS = {
    "create": "dicommedia.cli.create",
    "read": "dicommedia.cli.read",
    "validate": "dicommedia.cli.validate",
    "profiles": "dicommedia.cli.profiles",
    "serve": "dicommedia.cli.serve",
    "catalog": "dicommedia.cli.catalog",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _COMMANDS:
            return None
        return getattr(importlib.import_module(_COMMANDS[name]), name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dicommedia")
def cli() -> None:
    """DICOM removable media: create, read and validate disc images (PS3.10/3.11/3.12, IHE PDI)."""


def main() -> None:
    """Console-script entry point."""
    # pydicom warns about every odd value it meets; our own checks report what matters, one line each.
    warnings.filterwarnings("ignore", module=r"pydicom(\..*)?$")
    warnings.filterwarnings("ignore", category=UserWarning, message=r".*(VR|Invalid value|Expected explicit).*")
    run_guarded(cli)
