"""``dicommedia burn IMAGE --drive DEV|stdio:FILE`` (SPEC 2.4): parse options, burn, report each copy."""

from __future__ import annotations

from pathlib import Path

import click

from dicommedia.burn.job import BurnInterrupted, BurnOptions, CopyReport, burn_copies
from dicommedia.cli.create import _progress as progress_bars
from dicommedia.cli.render import emit_json


def _say(text: str) -> None:
    click.echo(text, err=True)


def ask_for_medium(text: str) -> None:
    """Wait for the operator to load the next blank medium (Enter); end of input aborts."""
    click.prompt(f"{text}, then press Enter", default="", show_default=False, err=True, prompt_suffix=" ")


def report_json(image: Path, reports: list[CopyReport]) -> dict:
    """The ``--json`` report of a burn."""
    return {"image": str(image), "copies": [vars(r) for r in reports]}


@click.command()
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--drive",
    "drives",
    multiple=True,
    required=True,
    metavar="DEV|stdio:FILE",
    help="Burner (/dev/sr0) or xorriso pseudo-drive; repeat for several burners (copies go round them).",
)
@click.option("--copies", type=click.IntRange(1, 1000), default=1, show_default=True, help="How many discs.")
@click.option("--no-prompt", is_flag=True, help="Do not wait for a blank medium between copies (a robot loads).")
@click.option("--speed", help="Write speed as xorriso takes it: max, min, 8x, 4 ...")
@click.option("--eject", is_flag=True, help="Eject each medium when done.")
@click.option("--verify", is_flag=True, help="Read each medium back and compare every block with the image.")
@click.option("--json", "as_json", is_flag=True, help="Report as JSON on stdout.")
def burn(
    image: str,
    drives: tuple[str, ...],
    copies: int,
    no_prompt: bool,
    speed: str | None,
    eject: bool,
    verify: bool,
    as_json: bool,
) -> None:
    """Burn a disc image through xorriso, checking each medium first; optionally verify and make copies."""
    with progress_bars() as progress:
        options = BurnOptions(
            Path(image),
            list(drives),
            copies,
            verify,
            speed,
            eject,
            prompt=None if no_prompt else ask_for_medium,
            say=_say,
            progress=progress,
        )
        try:
            reports = burn_copies(options)
        except BurnInterrupted as exc:
            _say(f"error: {exc}")
            raise SystemExit(130) from None
    if as_json:
        emit_json(report_json(Path(image), reports))
    _say(
        f"{len(reports)} cop{'y' if len(reports) == 1 else 'ies'} of {image} written" + (", verified" if verify else "")
    )
