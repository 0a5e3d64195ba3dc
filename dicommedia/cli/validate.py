"""``dicommedia validate MEDIA``: conformance check of a disc image for CI (SPEC 2.3)."""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import Progress

from dicommedia.cli.render import emit_json, err_console, out_console
from dicommedia.profile import load_profile, load_profile_file
from dicommedia.validate import Report, validate_media
from dicommedia.validate.report import FAMILIES, TITLES


def render_report(report: Report, console) -> None:
    """Human report: findings grouped by check family and code, with the file concerned, then the verdict."""
    for family in FAMILIES:
        found = sorted(report.by_family(family), key=lambda f: (not f.is_error, f.code))
        if not found:
            continue
        console.print(f"[bold]{TITLES[family]}[/]")
        for (code, is_error), group in groupby(found, key=lambda f: (f.code, f.is_error)):
            items = list(group)
            colour = "red" if is_error else "yellow"
            console.print(f"  [{colour}]{'error' if is_error else 'warning'}[/] [bold]{code}[/] ({len(items)})")
            for f in items:
                where = f"{escape(f.file_id)}: " if f.file_id else ""
                console.print(f"    {where}{escape(f.message)}", soft_wrap=True)
    verdict = "[bold green]VALID[/]" if report.valid else "[bold red]INVALID[/]"
    console.print(
        f"{verdict} {escape(report.media)} under {report.profile}: {report.instances} instance(s), "
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    )


@click.command()
@click.argument("media", type=click.Path(exists=True))
@click.option(
    "-p",
    "--profile",
    "profile_name",
    default="STD-GEN-CD",
    show_default=True,
    help="Profile to check against; 'auto': the one the disc's content fits best.",
)
@click.option("--profile-file", type=click.Path(exists=True, dir_okay=False), help="A custom profile definition.")
@click.option("--json", "as_json", is_flag=True, help="Report as JSON.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="Also write a JUnit XML report.")
def validate(media: str, profile_name: str, profile_file: str | None, as_json: bool, junit_path: str | None) -> None:
    """Check a disc image, mounted disc or DICOMDIR against a media application profile."""
    if profile_file:
        profile = load_profile_file(profile_file)
    else:
        profile = None if profile_name.lower() == "auto" else load_profile(profile_name)
    with Progress(console=err_console, transient=True, disable=not err_console.is_terminal) as progress:
        task = progress.add_task("validating", total=None)
        report = validate_media(media, profile, progress=lambda _f: progress.advance(task))
    if junit_path:
        report.write_junit(Path(junit_path))
    if as_json:
        emit_json(report.as_json())
        render_report(report, err_console)
    else:
        render_report(report, out_console)
    if not report.valid:
        raise SystemExit(1)
