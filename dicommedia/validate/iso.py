"""ISO 9660 checks (ECMA-119, PS3.12 Annex F): level 1 names, directory depth, Volume Identifier."""

from __future__ import annotations

import gc
import re
from pathlib import Path

from dicommedia.errors import one_line
from dicommedia.media.findings import Finding, warning
from dicommedia.media.store import Entry, IsoStore

# ECMA-119 7.5/7.6 with level 1 (10.1): d-characters, 8.3 file names with both separators, 8-char directories.
_FILE = re.compile(r"^[A-Z0-9_]{0,8}\.[A-Z0-9_]{0,3};([1-9][0-9]{0,4})$")
_DIR = re.compile(r"^[A-Z0-9_]{1,8}$")
MAX_DIR_LEVELS = 8  # ECMA-119 6.8.2.1: at most 8 levels of directories, the root included


def name_problem(name: str, is_dir: bool) -> str | None:
    """Why a name breaks ISO 9660 level 1, or None."""
    if is_dir:
        return None if _DIR.match(name) else "directory name is not 1-8 of A-Z 0-9 _"
    match = _FILE.match(name)
    if not match or name.split(";")[0] == ".":
        if ";" not in name:
            return "file name lacks the ';1' version"
        if "." not in name.split(";")[0]:
            return "file name lacks the separator dot (NAME.;1)"
        return "file name is not 8.3 of A-Z 0-9 _ with ';1'"
    if int(match.group(1)) > 32767:
        return "version number above 32767"
    return None


def extent_problem(store: IsoStore, entry: Entry) -> str | None:
    """Why a file's data is not one extent inside the image (ECMA-119 6.5, level 1: one extent per file)."""
    if entry.start < 0:
        return "interleaved, or recorded in several extents (ISO 9660 level 3): not level 1"
    if entry.start + entry.size > store.image_size:
        return f"its extent (bytes {entry.start}-{entry.start + entry.size}) runs past the end of the image"
    return None


def check_iso(store: IsoStore, fileset_id: str | None) -> list[Finding]:
    """Level 1 names and depth of every entry, and the Volume Identifier (see also check_extensions)."""
    findings: list[Finding] = []
    for names, entries in store.directories():
        for entry in entries:
            path = (*names, entry.name)
            problem = name_problem(entry.name, entry.is_dir)
            if problem:
                findings.append(Finding("iso-structure", f"not an ISO 9660 level 1 name: {problem}", "/".join(path)))
            if not entry.is_dir:
                problem = extent_problem(store, entry)
                if problem:
                    findings.append(Finding("iso-structure", problem, "/".join(path)))
            if entry.is_dir and len(path) + 1 > MAX_DIR_LEVELS:
                findings.append(
                    Finding(
                        "iso-structure", f"directory nested {len(path) + 1} levels deep (at most 8)", "/".join(path)
                    )
                )
    volume_id = store.volume_identifier()
    if fileset_id and volume_id != fileset_id:
        findings.append(
            Finding(
                "volume-id-mismatch",
                f"Volume Identifier {volume_id!r} differs from File-set ID {fileset_id!r}",
                store.label,
            )
        )
    return findings


def check_extensions(image: Path) -> list[Finding]:
    """What pycdlib finds wrong with the volume as a whole, and the extensions it carries (Joliet, Rock Ridge).

    pycdlib holds the whole directory tree (~1 KB a file): it is closed here, and its records (linked both ways:
    reference cycles) are collected at once.
    """
    import pycdlib

    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(image))
        present = (("Joliet", iso.has_joliet()), ("Rock Ridge", iso.has_rock_ridge()))
        iso.close()
    except Exception as exc:  # pycdlib raises many kinds (its own, struct.error, IndexError...) on a damaged image
        return [Finding("iso-structure", f"not a well-formed ISO 9660 volume: {one_line(exc)}", str(image))]
    finally:
        del iso
        gc.collect()
    # A UDF bridge is allowed on DVD/BD (SPEC 4); Joliet and Rock Ridge are not part of the profiles.
    extensions = [name for name, found in present if found]
    if not extensions:
        return []
    return [
        warning(
            "iso-extension",
            f"carries {', '.join(extensions)}: readers must use the plain ISO 9660 names",
            str(image),
        )
    ]
