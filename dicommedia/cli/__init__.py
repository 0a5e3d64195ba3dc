"""Command line: parses options and renders results; the work is done in the library modules."""

from __future__ import annotations

import importlib
import warnings

import click

from dicommedia import __version__
from dicommedia.cli.render import run_guarded

# Each command loads its module (and pydicom, numpy, ...) only when it runs: start-up stays short.
# name -> (module defining a click command of that name, its one-line help for the command list).
_COMMANDS: dict[str, tuple[str, str]] = {
    "create": ("dicommedia.cli.create", "Create a DICOM File-set on an ISO 9660 image or in a folder."),
    "read": ("dicommedia.cli.read", "List, extract or import a disc, DICOMDIR or folder."),
    "validate": ("dicommedia.cli.validate", "Check a disc image, mounted disc or DICOMDIR against a profile."),
    "profiles": ("dicommedia.cli.profiles", "List the media application profiles, or show one in full."),
    "burn": ("dicommedia.cli.burn", "Burn a disc image to a drive (xorriso), with copies and verification."),
    "serve": ("dicommedia.cli.serve", "Run the disc station: a Storage and Media Creation Management SCP."),
    "catalog": ("dicommedia.cli.catalog", "Which disc holds a study, patient or accession (the station's catalog)."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _COMMANDS:
            return None
        return getattr(importlib.import_module(_COMMANDS[name][0]), name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the mapping's short help: no command module is imported for --help."""
        rows = [(name, _COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


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
