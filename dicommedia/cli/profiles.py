"""``dicommedia profiles [NAME]``: list the profiles, or show one."""

from __future__ import annotations

import click
from rich.table import Table

from dicommedia.cli.render import emit_json, out_console
from dicommedia.profile import Profile, load_profile, load_profile_file, profile_names
from dicommedia.standard.uids import uid_name


def _syntax_names(syntaxes: tuple[str, ...]) -> str:
    return ", ".join(uid_name(ts) for ts in syntaxes)


def _rule_json(r) -> dict:
    return {"transfer_syntaxes": list(r.transfer_syntaxes), "fsc": r.fsc, "fsr": r.fsr, "fsu": r.fsu}


def _profile_json(profile: Profile) -> dict:
    return {
        "name": profile.name,
        "title": profile.title,
        "media": profile.media,
        "capacity_bytes": profile.capacity,
        "file_system": profile.file_system,
        "augments": profile.augments,
        "default": _rule_json(profile.default) if profile.default else None,
        "image_default": _rule_json(profile.image_default) if profile.image_default else None,
        "sop_classes": {uid: {"name": r.name or uid_name(uid), **_rule_json(r)} for uid, r in profile.rules.items()},
    }


@click.command()
@click.argument("name", required=False)
@click.option("--profile-file", type=click.Path(exists=True, dir_okay=False), help="Show a custom profile definition.")
@click.option("--json", "as_json", is_flag=True, help="Output as JSON.")
def profiles(name: str | None, profile_file: str | None, as_json: bool) -> None:
    """List the media application profiles, or show one in full."""
    if name is None and profile_file is None:
        loaded = [load_profile(n) for n in profile_names()]
        if as_json:
            emit_json([_profile_json(p) for p in loaded])
            return
        table = Table(title="Media application profiles")
        for column in ("profile", "title", "media", "capacity", "augments"):
            table.add_column(column)
        for p in loaded:
            capacity = "no limit" if p.capacity is None else f"{p.capacity / 1e6:,.0f} MB"
            table.add_row(p.name, p.title, p.media, capacity, p.augments or "")
        out_console.print(table)
        return
    profile = load_profile_file(profile_file) if profile_file else load_profile(name)
    if as_json:
        emit_json(_profile_json(profile))
        return
    capacity = "no limit" if profile.capacity is None else f"{profile.capacity:,} bytes"
    out_console.print(f"[bold]{profile.name}[/] — {profile.title}")
    out_console.print(f"media {profile.media} ({capacity}), file system {profile.file_system}")
    if profile.augments:
        out_console.print(f"augments {profile.augments}")
    table = Table(title="SOP classes")
    for column in ("SOP class", "UID", "transfer syntaxes", "FSC", "FSR", "FSU"):
        table.add_column(column)
    for uid, rule in profile.rules.items():
        table.add_row(
            rule.name or uid_name(uid), uid, _syntax_names(rule.transfer_syntaxes), rule.fsc, rule.fsr, rule.fsu
        )
    if profile.image_default:
        r = profile.image_default
        table.add_row("(any other image Storage class)", "", _syntax_names(r.transfer_syntaxes), r.fsc, r.fsr, r.fsu)
    if profile.default:
        r = profile.default
        table.add_row("(any other Storage class)", "", _syntax_names(r.transfer_syntaxes), r.fsc, r.fsr, r.fsu)
    out_console.print(table)
