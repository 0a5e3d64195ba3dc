"""Find and classify the inputs: DICOM files, discs to re-master, pictures, PDFs — and what cannot be used."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


class InputKind(str, Enum):
    """What one input file is."""

    DICOM = "dicom"
    PICTURE = "picture"
    PDF = "pdf"
    DISC = "disc"  # an ISO image or a DICOMDIR given as input: its instances are re-mastered
    UNUSABLE = "unusable"


@dataclass(frozen=True, slots=True)
class InputFile:
    """One file found among the inputs, with its kind (and why it is unusable, if it is)."""

    name: str  # its path, as a str: many thousand are held until read
    kind: InputKind
    reason: str = ""
    origin: str = ""  # the input argument under which it was found

    @property
    def path(self) -> Path:
        """Its path."""
        return Path(self.name)


@dataclass
class Discovery:
    """Everything found: the usable files in a stable order, and notes on what was passed over on purpose."""

    files: list[InputFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_PICTURE_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"II*\x00",  # TIFF little endian
    b"MM\x00*",  # TIFF big endian
    b"BM",  # BMP
    b"GIF87a",
    b"GIF89a",
)
_ISO_MAGIC_OFFSET = 16 * 2048 + 1  # ECMA-119 8.1: "CD001" in the first volume descriptor


def is_dicomdir_name(path: Path) -> bool:
    """True for a file named DICOMDIR in any of the forms a mounted disc shows."""
    return path.name.upper().rstrip(".").split(";")[0] == "DICOMDIR"


def _is_iso(path: Path) -> bool:
    try:
        with path.open("rb") as fp:
            fp.seek(_ISO_MAGIC_OFFSET)
            return fp.read(5) == b"CD001"
    except OSError:
        return False


def sniff(path: Path, head: bytes) -> InputKind:
    """Kind of a file from its first bytes (DICOM Part 10, picture, PDF, ISO 9660 image)."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return InputKind.DICOM
    if head.startswith(b"%PDF-"):
        return InputKind.PDF
    if head.startswith(_PICTURE_MAGIC):
        return InputKind.PICTURE
    if _is_iso(path):
        return InputKind.DISC
    if _looks_like_raw_dataset(head):
        return InputKind.DICOM
    return InputKind.UNUSABLE


def _looks_like_raw_dataset(head: bytes) -> bool:
    """A dataset without preamble (ACR-NEMA style or stripped Part 10): starts with a group 0002/0008 tag."""
    if len(head) < 8:
        return False
    group_le = int.from_bytes(head[0:2], "little")
    group_be = int.from_bytes(head[0:2], "big")
    return group_le in (0x0002, 0x0008) or group_be == 0x0008


def _classify(path: Path, given: bool, origin: str) -> InputFile | None:
    if is_dicomdir_name(path):
        if given:
            return InputFile(str(path), InputKind.DISC, origin=origin)
        return None  # met inside a folder: never an instance; its instances are found by the walk
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return InputFile(str(path), InputKind.UNUSABLE, "not a regular file (a pipe, socket or device)", origin)
        with path.open("rb") as fp:
            head = fp.read(132)
    except OSError as exc:
        return InputFile(str(path), InputKind.UNUSABLE, f"cannot be read: {exc.strerror or exc}", origin)
    kind = sniff(path, head)
    if kind is InputKind.DISC and not given:
        reason = "an ISO image inside an input folder (give it as an input of its own)"
        return InputFile(str(path), InputKind.UNUSABLE, reason, origin)
    if kind is InputKind.UNUSABLE:
        reason = "empty file" if not head else "not a DICOM file, picture (JPEG/PNG/TIFF/BMP/GIF) or PDF"
        return InputFile(str(path), kind, reason, origin)
    return InputFile(str(path), kind, origin=origin)


def _walk(root: Path, found: Discovery) -> Iterator[Path]:
    """The files under ``root`` in name order. Linked folders are followed, each folder read once (a link back
    up is a loop, noted); a folder that cannot be read is an unusable input, so it is never silently missing."""

    def unreadable(exc: OSError) -> None:
        reason = f"folder cannot be read: {exc.strerror or exc}"
        found.files.append(InputFile(str(Path(exc.filename or root)), InputKind.UNUSABLE, reason, str(root)))

    read: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=unreadable):
        try:
            info = os.stat(dirpath)
        except OSError as exc:
            unreadable(exc)
            dirnames.clear()
            continue
        if (info.st_dev, info.st_ino) in read:
            found.notes.append(f"{dirpath}: a link to a folder already read (a loop or a second link); not read again")
            dirnames.clear()
            continue
        read.add((info.st_dev, info.st_ino))
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def discover(inputs: list[str | Path]) -> Discovery:
    """Walk the inputs (folders recursively, in name order) and classify every file."""
    found = Discovery()
    seen: set[str] = set()  # real paths: a file given twice (or through a link) is read once
    for given in inputs:
        root = Path(given)
        if root.is_dir() and not is_dicomdir_name(root):
            for path in _walk(root, found):
                if path.is_symlink() and not path.exists():
                    found.files.append(InputFile(str(path), InputKind.UNUSABLE, "a broken symbolic link", str(root)))
                    continue
                item = _classify(path, given=False, origin=str(root))
                if item is None:
                    found.notes.append(f"{path}: a DICOMDIR inside an input folder is not an instance; left out")
                    continue
                real = os.path.realpath(path)
                if real not in seen:
                    seen.add(real)
                    found.files.append(item)
        elif root.exists():
            item = _classify(root, given=True, origin=str(root))
            if item is not None and os.path.realpath(root) not in seen:
                seen.add(os.path.realpath(root))
                found.files.append(item)
        else:
            found.files.append(InputFile(str(root), InputKind.UNUSABLE, "does not exist", str(root)))
    return found
