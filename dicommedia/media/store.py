"""Where the media's bytes live: a folder (a mounted disc) or an ISO 9660 image read with pycdlib.

Both stores resolve a File ID the same tolerant way and refuse any File ID that would leave the media.
"""

from __future__ import annotations

import io
import os
import re
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from dicommedia.errors import MediaError
from dicommedia.media.findings import Finding, show_file_id, warning

_VERSION = re.compile(r";\d*$")


def plain_name(name: str) -> str:
    """A media name without its ISO 9660 version (``;1``) and trailing dot: ``IM1.;1`` -> ``IM1``."""
    return _VERSION.sub("", name).rstrip(".")


def name_variants(component: str) -> list[str]:
    """Names a File ID component may show on a mounted disc, in DCMTK's lookup order, then with ``;1``."""
    base = [component, component + ".", component.lower(), component.lower() + "."]
    return base + [name + ";1" for name in base] + [component + ".;1", component.lower() + ".;1"]


def unsafe_reason(components: tuple[str, ...]) -> str | None:
    """Why this File ID would leave the media (``..``, absolute, separators), or None when it stays inside."""
    if not components:
        return "the File ID is empty"
    for part in components:
        if part in (".", ".."):
            return f"component {part!r} leaves the media"
        if not part:
            return "an empty component (absolute path)"
        if any(ch in part for ch in "/\\:\x00"):
            return f"component {part!r} is a path, not a name (absolute or leaving the media)"
    return None


@dataclass(frozen=True)
class Entry:
    """One directory entry as the store lists it."""

    name: str
    is_dir: bool
    is_link: bool
    size: int


@dataclass(frozen=True)
class StoredFile:
    """A regular file on the media: its names as on the media and its size."""

    names: tuple[str, ...]
    size: int

    @property
    def file_id(self) -> tuple[str, ...]:
        """The names without ISO versions or trailing dots."""
        return tuple(plain_name(n) for n in self.names)

    @property
    def media_path(self) -> str:
        """Path on the media as it appears there (``DICOM/P1/IM1.;1``)."""
        return "/".join(self.names)


class LocateError(Exception):
    """A File ID that cannot be resolved: ``code`` is ``bad-file-id`` (refused) or ``missing-file``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class Store:
    """Directory listing, lookup and reading common to folders and ISO images."""

    kind = ""

    def __init__(self, label: str):
        self.label = label
        self.findings: list[Finding] = []
        self._listings: dict[tuple[str, ...], dict[str, Entry]] = {}

    def _scan_dir(self, names: tuple[str, ...]) -> list[Entry]:
        raise NotImplementedError

    def open(self, stored: StoredFile) -> BinaryIO:
        """Open a file of the media for binary reading (the caller closes it)."""
        raise NotImplementedError

    def total_bytes(self) -> int:
        """Bytes the media occupies."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the store."""

    def listing(self, names: tuple[str, ...] = ()) -> dict[str, Entry]:
        """Entries of a directory (given by its names as on the media), cached."""
        if names not in self._listings:
            self._listings[names] = {e.name: e for e in self._scan_dir(names)}
        return self._listings[names]

    def find(self, names: tuple[str, ...], component: str) -> Entry | None:
        """The entry of a directory that a File ID component denotes, trying the mounted-disc name forms."""
        entries = self.listing(names)
        for variant in name_variants(component):
            if variant in entries:
                return entries[variant]
        wanted = component.upper()
        for name, entry in entries.items():
            if plain_name(name).upper() == wanted:
                return entry
        return None

    def locate(self, components: tuple[str, ...]) -> StoredFile:
        """Resolve a Referenced File ID to a file of the media; raise LocateError when refused or absent."""
        reason = unsafe_reason(components)
        if reason:
            raise LocateError("bad-file-id", f"refused: {reason}")
        names: tuple[str, ...] = ()
        for depth, component in enumerate(components):
            try:
                entry = self.find(names, component)
            except OSError as exc:
                raise LocateError("missing-file", f"cannot list {'/'.join(names) or 'the root'}: {exc}") from None
            if entry is None:
                raise LocateError("missing-file", "the referenced file is not on the media")
            if entry.is_link:
                raise LocateError("bad-file-id", f"refused: {'/'.join((*names, entry.name))} is a link")
            names = (*names, entry.name)
            last = depth == len(components) - 1
            if last and entry.is_dir:
                raise LocateError("missing-file", "the File ID names a folder, not a file")
            if not last and not entry.is_dir:
                raise LocateError("missing-file", f"{'/'.join(names)} is a file, not a folder")
        return StoredFile(names, entry.size)

    def walk(self, names: tuple[str, ...] = ()) -> Iterator[StoredFile]:
        """Every regular file of the media, depth first in name order; links are skipped and reported."""
        try:
            entries = sorted(self.listing(names).values(), key=lambda e: e.name)
        except OSError as exc:
            self.findings.append(warning("unreadable-folder", f"cannot list: {exc}", show_file_id(names)))
            return
        for entry in entries:
            path = (*names, entry.name)
            if entry.is_link:
                self.findings.append(warning("link-skipped", "a link: not followed", "/".join(path)))
            elif entry.is_dir:
                yield from self.walk(path)
            else:
                yield StoredFile(path, entry.size)


class FolderStore(Store):
    """A folder: a mounted disc, a copied file-set, or a vendor export."""

    kind = "folder"

    def __init__(self, root: Path):
        super().__init__(str(root))
        self.root = Path(os.path.realpath(root))

    def _path(self, names: tuple[str, ...]) -> Path:
        path = self.root.joinpath(*names)
        # Defence in depth: names come from our own listings, but never hand out a path outside the root.
        if os.path.commonpath([self.root, os.path.realpath(path)]) != str(self.root):
            raise LocateError("bad-file-id", f"refused: {'/'.join(names)} resolves outside the media")
        return path

    def _scan_dir(self, names: tuple[str, ...]) -> list[Entry]:
        entries = []
        with os.scandir(self._path(names)) as it:
            for e in it:
                is_link = e.is_symlink()
                is_dir = not is_link and e.is_dir(follow_symlinks=False)
                size = 0 if (is_link or is_dir) else e.stat(follow_symlinks=False).st_size
                entries.append(Entry(e.name, is_dir, is_link, size))
        return entries

    def open(self, stored: StoredFile) -> BinaryIO:
        """Open a file of the folder."""
        return open(self._path(stored.names), "rb")

    def path_of(self, stored: StoredFile) -> Path:
        """The file's path on the local file system."""
        return self._path(stored.names)

    def total_bytes(self) -> int:
        """Bytes of all files, each rounded up to 2048-byte sectors as on a disc."""
        return sum(-(-f.size // 2048) * 2048 for f in self.walk())


class _LockedRaw(io.RawIOBase):
    """A pycdlib file stream whose seek+read pairs on the image's shared descriptor are made atomic."""

    def __init__(self, inner: io.RawIOBase, lock: threading.Lock):
        super().__init__()
        self._inner, self._lock = inner, lock

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        with self._lock:
            return self._inner.readinto(buffer)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        with self._lock:
            return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


class _IsoFile(io.BufferedReader):
    """A buffered stream over a pycdlib file, with the ``name`` pydicom asks for."""

    def __init__(self, raw: io.RawIOBase, name: str):
        super().__init__(raw, buffer_size=64 * 1024)
        self._name = name

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._name


class IsoStore(Store):
    """An ISO 9660 image read through pycdlib's primary volume (plain ISO 9660 names), never mounted."""

    kind = "iso"

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path
        self._lock = threading.Lock()
        self.iso = pycdlib.PyCdlib()
        try:
            self.iso.open(str(path))
        except (PyCdlibException, OSError, ValueError, IndexError, struct.error) as exc:
            raise MediaError(f"not a readable ISO 9660 image: {exc}", str(path)) from None

    def _scan_dir(self, names: tuple[str, ...]) -> list[Entry]:
        entries = []
        for rec in self.iso.list_children(iso_path="/" + "/".join(names)):
            if rec.is_dot() or rec.is_dotdot():
                continue
            name = rec.file_identifier().decode("ascii", "replace")
            is_link = rec.rock_ridge is not None and rec.rock_ridge.is_symlink()
            is_dir = rec.is_dir()
            entries.append(Entry(name, is_dir, is_link, 0 if is_dir else rec.get_data_length()))
        return entries

    def open(self, stored: StoredFile) -> BinaryIO:
        """Stream a file out of the image; safe from several threads (reads on the shared descriptor are locked)."""
        with self._lock:
            raw = self.iso.open_file_from_iso(iso_path="/" + "/".join(stored.names)).__enter__()
        return _IsoFile(_LockedRaw(raw, self._lock), f"{self.label}:{stored.media_path}")

    def total_bytes(self) -> int:
        """Size of the image file."""
        return self.path.stat().st_size

    def volume_identifier(self) -> str:
        """The Primary Volume Descriptor's Volume Identifier, without padding."""
        return self.iso.pvd.volume_identifier.decode("ascii", "replace").rstrip(" \x00")

    def close(self) -> None:
        """Close the image."""
        try:
            self.iso.close()
        except PyCdlibException:
            pass


def is_iso_image(path: Path) -> bool:
    """True when the file carries an ISO 9660 Primary Volume Descriptor at sector 16 (ECMA-119 8.4)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(16 * 2048)
            head = fh.read(6)
    except OSError:
        return False
    return head[1:6] == b"CD001" or path.suffix.lower() == ".iso"
