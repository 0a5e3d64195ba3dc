"""``dicommedia validate MEDIA``: conformance check of a disc image for CI (SPEC 2.3)."""

from __future__ import annotations

import click

from dicommedia.cli.render import fail


@click.command()
@click.argument("media", type=click.Path(exists=True))
@click.option("-p", "--profile", "profile_name", default="STD-GEN-CD", show_default=True, help="Profile to check against.")
@click.option("--profile-file", type=click.Path(exists=True, dir_okay=False), help="A custom profile definition.")
@click.option("--json", "as_json", is_flag=True, help="Report as JSON.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="Also write a JUnit XML report.")
def validate(media: str, profile_name: str, profile_file: str | None, as_json: bool, junit_path: str | None) -> None:
    """Check a disc image, mounted disc or DICOMDIR against a media application profile."""
    fail("validate is not implemented yet")
