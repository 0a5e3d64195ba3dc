"""PS3.10 section 8.2 File IDs and their ISO 9660 level 1 names (PS3.12 Annex F)."""

from __future__ import annotations

import re
from collections.abc import MutableSequence

MAX_COMPONENTS = 8
MAX_COMPONENT_LENGTH = 8
_COMPONENT = re.compile(r"^[A-Z0-9_]{1,8}$")


def is_valid_component(component: str) -> bool:
    """True when one File ID component is 1-8 of ``A-Z 0-9 _`` (PS3.10 8.2)."""
    return bool(_COMPONENT.match(component))


def file_id_problems(components: tuple[str, ...] | list[str]) -> list[str]:
    """Say what, if anything, makes these components an invalid PS3.10 File ID."""
    problems = []
    if not components:
        return ["the File ID is empty"]
    if len(components) > MAX_COMPONENTS:
        problems.append(f"{len(components)} components, at most {MAX_COMPONENTS} allowed")
    for part in components:
        if not is_valid_component(part):
            problems.append(f"component {part!r} is not 1-8 of A-Z 0-9 _")
    return problems


def split_file_id(value: object) -> tuple[str, ...]:
    """Return the components of a Referenced File ID value (multi-valued CS or a backslash string); a value of
    another VR (a damaged record: a number, bytes) is read as its text, which then names no file on the media."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1")
    if isinstance(value, str):
        parts = value.split("\\")
    elif isinstance(value, (list, tuple, MutableSequence)):
        parts = [str(p) for p in value]
    else:
        parts = [str(value)]
    return tuple(p.strip() for p in parts)


def iso_path(components: tuple[str, ...] | list[str]) -> str:
    """ISO 9660 level 1 path of a File ID: directories plain, the file ``NAME.;1`` (PS3.12 F.3.1)."""
    *dirs, name = components
    return "/" + "/".join([*dirs, f"{name}.;1"])
