"""Media application profiles (PS3.11): the model, the TOML loader, and the per-instance decision."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from dicommedia.errors import MediaError
from dicommedia.standard.records import leaf_record_type
from dicommedia.standard.uids import is_storage_sop_class, uid_name

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"

# Capacities in bytes: 2048-byte sectors of the nominal media (ECMA-130/ECMA-267/BD).
MEDIA_CAPACITY: dict[str, int | None] = {
    "cd-650": 333_000 * 2048,
    "cd-700": 360_000 * 2048,
    "dvd-4.7": 2_295_104 * 2048,
    "dvd-8.5": 4_173_824 * 2048,
    "bd-25": 12_219_392 * 2048,
    "bd-50": 24_438_784 * 2048,
    "usb": None,
}


@dataclass(frozen=True)
class Rule:
    """Transfer syntaxes a SOP class may use on the media, and the FSC/FSR/FSU requirement."""

    transfer_syntaxes: tuple[str, ...]
    fsc: str = "O"
    fsr: str = "O"
    fsu: str = "O"
    name: str = ""


class Action(str, Enum):
    """What the profile says about one instance."""

    KEEP = "keep"
    CONVERT = "convert"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Decision:
    """The profile's answer for one instance: keep it, convert it (to ``allowed``), or refuse it (``reason``)."""

    action: Action
    allowed: tuple[str, ...] = ()
    reason: str = ""


@dataclass
class Profile:
    """A media application profile: media, file system, and a rule per SOP class plus a default rule."""

    name: str
    title: str
    media: str
    file_system: str
    default: Rule | None
    image_default: Rule | None = None
    rules: dict[str, Rule] = field(default_factory=dict)
    augments: str | None = None
    udf: bool = False  # images carry a UDF bridge (PS3.12 DVD and BD media)

    @property
    def capacity(self) -> int | None:
        """Capacity of the profile's media in bytes (None: no limit)."""
        return MEDIA_CAPACITY[self.media]

    def rule_for(self, sop_class_uid: str) -> Rule | None:
        """The rule that governs a SOP class, or None when the profile does not allow it."""
        sop_class = str(sop_class_uid)
        if sop_class in self.rules:
            return self.rules[sop_class]
        if not is_storage_sop_class(sop_class):
            return None
        if self.image_default is not None and leaf_record_type(sop_class) == "IMAGE":
            return self.image_default
        return self.default

    def decide(self, sop_class_uid: str, transfer_syntax_uid: str) -> Decision:
        """May this instance go as it is, must it be converted (to what), or can it not go (why)?"""
        rule = self.rule_for(sop_class_uid)
        if rule is None:
            name = uid_name(str(sop_class_uid))
            label = f"{sop_class_uid} ({name})" if name != str(sop_class_uid) else f"{sop_class_uid}"
            kind = (
                "is not a standard Storage SOP class" if not is_storage_sop_class(sop_class_uid) else "is not allowed"
            )
            return Decision(Action.REFUSE, reason=f"SOP class {label} {kind} under {self.name}")
        if str(transfer_syntax_uid) in rule.transfer_syntaxes:
            return Decision(Action.KEEP, rule.transfer_syntaxes)
        return Decision(Action.CONVERT, rule.transfer_syntaxes)


def _rule(table: dict, sets: dict[str, list[str]], where: str) -> Rule:
    syntaxes = table.get("transfer_syntaxes")
    if isinstance(syntaxes, str):
        if syntaxes not in sets:
            raise MediaError(f"transfer syntax set {syntaxes!r} is not defined in [sets]", where)
        syntaxes = sets[syntaxes]
    if not syntaxes:
        raise MediaError("a rule needs transfer_syntaxes", where)
    return Rule(
        tuple(syntaxes), table.get("fsc", "O"), table.get("fsr", "O"), table.get("fsu", "O"), table.get("name", "")
    )


def parse_profile(data: dict, where: str, resolve: callable | None = None) -> Profile:
    """Build a profile from its TOML table; ``resolve(name)`` loads the profile it augments."""
    for key in ("name", "media"):
        if key not in data:
            raise MediaError(f"profile definition lacks {key!r}", where)
    if data["media"] not in MEDIA_CAPACITY:
        raise MediaError(f"unknown media {data['media']!r} (one of {', '.join(MEDIA_CAPACITY)})", where)
    sets = data.get("sets", {})
    base = resolve(data["augments"]) if data.get("augments") and resolve else None
    default = base.default if base else None
    image_default = base.image_default if base else None
    rules = dict(base.rules) if base else {}
    if "default" in data:
        table = data["default"]
        default = _rule(table, sets, where)
        if "image_transfer_syntaxes" in table:
            image_default = _rule({**table, "transfer_syntaxes": table["image_transfer_syntaxes"]}, sets, where)
    for table in data.get("rule", []):
        if "sop_class" not in table:
            raise MediaError("a [[rule]] lacks sop_class", where)
        rules[str(table["sop_class"])] = _rule(table, sets, where)
    if default is None and not rules:
        raise MediaError("profile allows no SOP class (no [default] and no [[rule]])", where)
    if not isinstance(data.get("udf", False), bool):
        raise MediaError("udf must be true or false", where)
    return Profile(
        name=data["name"],
        title=data.get("title", data["name"]),
        media=data["media"],
        file_system=data.get("file_system", "ISO 9660 level 1"),
        default=default,
        image_default=image_default,
        rules=rules,
        augments=data.get("augments"),
        udf=data.get("udf", False),
    )


def profiles_dir() -> Path:
    """Folder of the shipped profile TOMLs (inside the wheel, or the source tree's profiles/)."""
    packaged = Path(__file__).parent / "profiles"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "profiles"


def profile_names() -> list[str]:
    """Names of the shipped profiles."""
    return sorted(p.stem for p in profiles_dir().glob("*.toml"))


def load_profile(name: str) -> Profile:
    """Load a shipped profile by name (case-insensitive)."""
    wanted = name.upper()
    path = profiles_dir() / f"{wanted}.toml"
    if not path.is_file():
        raise MediaError(f"unknown profile {name!r}", hint=f"one of: {', '.join(profile_names())}")
    return load_profile_file(path)


def load_profile_file(path: str | Path) -> Profile:
    """Load a profile from a TOML file (the format of profiles/*.toml)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MediaError(f"cannot read profile definition: {exc}", str(path)) from None
    return parse_profile(data, str(path), load_profile)
