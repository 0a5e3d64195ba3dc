"""An optional portable viewer (IHE PDI: other content in a folder of its own), copied into VIEWER/ with 8.3 names."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from dicommedia.errors import MediaError
from dicommedia.writers.output import Part10Stream, VolumeFile

VIEWER = "VIEWER"
_NAME_83 = re.compile(r"^[A-Z0-9_]{1,8}(\.[A-Z0-9_]{0,3})?$")
_DIR_8 = re.compile(r"^[A-Z0-9_]{1,8}$")
_MAX_DEPTH = 8  # ISO 9660 level 1 directory levels (ECMA-119 6.8.2.1)


def _opener(path: Path, size: int) -> Callable[[], BinaryIO]:
    """Opened only when its bytes are read, like every file of the volume."""
    return lambda: Part10Stream(b"", lambda: path.open("rb"), 0, size, str(path))


def viewer_files(folder: Path) -> tuple[VolumeFile, ...]:
    """A portable viewer's files under VIEWER/, names upper-cased; refused when a name is not ISO 9660 8.3."""
    if not folder.is_dir():
        raise MediaError("is not a folder", str(folder), "--viewer takes the folder of a portable viewer")
    out = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(folder)
        parts = tuple(part.upper() for part in rel.parts)
        if path.is_symlink() or not path.is_file():
            raise MediaError("a link in the viewer folder cannot go on the disc", str(path))
        bad = [p for p in parts[:-1] if not _DIR_8.match(p)] + ([] if _NAME_83.match(parts[-1]) else [parts[-1]])
        if bad:
            raise MediaError(
                f"{bad[0]!r} is not an ISO 9660 8.3 name (A-Z 0-9 _, 8 characters, 3 for the extension)",
                str(path),
                "rename it, or use a viewer made for CDs",
            )
        if len(parts) + 1 > _MAX_DEPTH:
            raise MediaError("the viewer folder is nested deeper than ISO 9660 allows (8 levels)", str(path))
        if any(f.parts[1:] == parts for f in out):
            raise MediaError("two viewer files have the same upper-case name", str(path))
        size = path.stat().st_size
        out.append(VolumeFile((VIEWER, *parts), size, _opener(path, size)))
    if not out:
        raise MediaError("the viewer folder is empty", str(folder))
    return tuple(out)
