"""Where the media's bytes live: a folder (a mounted disc) or an ISO 9660 image, read without mounting it.

Both stores resolve a File ID the same tolerant way and refuse any File ID that would leave the media.
"""

from __future__ import annotations

import io
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from dicommedia.errors import MediaError, one_line
from dicommedia.media.findings import Finding, show_file_id, warning

_VERSION = re.compile(r";\d*$")
_SEPARATORS = re.compile(r"[/\\:\x00]")


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
        if _SEPARATORS.search(part):
            return f"component {part!r} is a path, not a name (absolute or leaving the media)"
    return None


class Entry(NamedTuple):
    """One directory entry as the store lists it."""

    name: str
    is_dir: bool
    is_link: bool
    size: int
    start: int = 0  # ISO image: byte offset of the file's data (-1: not readable as one span); folder: unused


class StoredFile(NamedTuple):
    """A regular file on the media: its names as on the media and its size."""

    names: tuple[str, ...]
    size: int
    start: int = 0  # as Entry.start

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
        self._found: dict[tuple[tuple[str, ...], str], Entry | None] = {}  # the folders of 400 slices, looked up once

    def _scan_dir(self, names: tuple[str, ...]) -> list[Entry]:
        raise NotImplementedError

    def open(self, stored: StoredFile) -> BinaryIO:
        """Open a file of the media for binary reading (the caller closes it)."""
        raise NotImplementedError

    def read_into(self, stored: StoredFile, offset: int, slots: list[memoryview]) -> None:
        """Fill ``slots`` in order with the file's bytes from ``offset`` on (OSError when the file is shorter)."""
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
        key = (names, component)
        if key not in self._found:
            self._found[key] = self._find(names, component)
        return self._found[key]

    def _find(self, names: tuple[str, ...], component: str) -> Entry | None:
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
                raise LocateError(
                    "missing-file", f"cannot list {'/'.join(names) or 'the root'}: {one_line(exc)}"
                ) from None
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
        return StoredFile(names, entry.size, entry.start)

    def directory_key(self, names: tuple[str, ...]) -> object:
        """What makes a directory itself (an extent, an inode): a directory met twice is a loop."""
        return names

    def directories(self) -> Iterator[tuple[tuple[str, ...], list[Entry]]]:
        """Every directory of the media with its entries, depth first in name order, each directory once.

        Iterative, with a visited set: a directory that points back at an ancestor (or any directory already
        walked) is reported and not followed; an unreadable one is reported and skipped.
        """
        seen: set[object] = set()
        stack: list[tuple[str, ...]] = [()]
        while stack:
            names = stack.pop()
            try:
                key = self.directory_key(names)
                if key in seen:
                    self.findings.append(
                        Finding("iso-structure", "a directory met twice (a loop): not followed", "/".join(names))
                    )
                    continue
                seen.add(key)
                entries = sorted(self.listing(names).values(), key=lambda e: e.name)
            except OSError as exc:
                self.findings.append(
                    warning("unreadable-folder", f"cannot list: {one_line(exc)}", show_file_id(names) or "/")
                )
                continue
            yield names, entries
            stack.extend((*names, e.name) for e in reversed(entries) if e.is_dir and not e.is_link)

    def walk(self) -> Iterator[StoredFile]:
        """Every regular file of the media, depth first in name order; links are skipped and reported."""
        for names, entries in self.directories():
            for entry in entries:
                path = (*names, entry.name)
                if entry.is_link:
                    self.findings.append(warning("link-skipped", "a link: not followed", "/".join(path)))
                elif not entry.is_dir:
                    yield StoredFile(path, entry.size, entry.start)


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
                if not (is_link or is_dir or e.is_file(follow_symlinks=False)):  # a FIFO would block its reader
                    self.findings.append(
                        warning("special-file", "not a regular file: skipped", "/".join((*names, e.name)))
                    )
                    continue
                size = 0 if (is_link or is_dir) else e.stat(follow_symlinks=False).st_size
                entries.append(Entry(e.name, is_dir, is_link, size))
        return entries

    def open(self, stored: StoredFile) -> BinaryIO:
        """Open a file of the folder."""
        return open(self._path(stored.names), "rb")

    def read_into(self, stored: StoredFile, offset: int, slots: list[memoryview]) -> None:
        """Fill ``slots`` with the file's bytes from ``offset`` on."""
        fd = os.open(self._path(stored.names), os.O_RDONLY)
        try:
            pread_into(fd, offset, slots)
        finally:
            os.close(fd)

    def directory_key(self, names: tuple[str, ...]) -> object:
        """The folder's device and inode."""
        info = os.stat(self._path(names))
        return info.st_dev, info.st_ino

    def path_of(self, stored: StoredFile) -> Path:
        """The file's path on the local file system."""
        return self._path(stored.names)

    def total_bytes(self) -> int:
        """Bytes of all files, each rounded up to 2048-byte sectors as on a disc."""
        return sum(-(-f.size // 2048) * 2048 for f in self.walk())


def pread_into(fd: int, offset: int, slots: list[memoryview], available: int | None = None) -> None:
    """Fill the slots in order with a descriptor's bytes from ``offset`` (positioned reads: no shared file offset).

    ``available``: bytes the file holds from ``offset`` on; asking for more is an OSError.
    """
    total = sum(map(len, slots))
    if available is not None and total > available:
        raise OSError("the file is shorter than the bytes asked for")
    if not total:
        return
    got = os.preadv(fd, slots[:1024], offset)  # IOV_MAX is 1024 on Linux; one call reads it all as a rule
    pending = slots
    while got < total:
        if got == 0:
            raise OSError("the file ends early")
        total -= got
        offset += got
        pending = [s for s in pending if len(s)]
        while got >= len(pending[0]):
            got -= len(pending[0])
            pending.pop(0)
        if got:
            pending[0] = pending[0][got:]
        got = os.preadv(fd, pending[:1024], offset)


_SECTOR = 2048
_SUSP_ENTRY = struct.Struct("<2sBB")
_S_IFMT, _S_IFLNK = 0o170000, 0o120000


class RegionReader(io.RawIOBase):
    """A raw, seekable reader of ``_size`` bytes at position ``_pos``: subclasses say how the bytes are read."""

    _size: int
    _pos: int = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError("negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos


class NamedReader(io.BufferedReader):
    """A buffered stream over a file of an image, with the ``name`` pydicom asks for."""

    def __init__(self, raw: io.RawIOBase, name: str):
        super().__init__(raw, buffer_size=64 * 1024)
        self._name = name

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._name


class _SpanReader(RegionReader):
    """A file's bytes within the image: ``os.pread`` on the image's descriptor (thread-safe, no shared offset)."""

    def __init__(self, fd: int, start: int, size: int):
        super().__init__()
        self._fd, self._start, self._size, self._pos = fd, start, size, 0

    def readinto(self, buffer) -> int:  # type: ignore[override]
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        view = memoryview(buffer).cast("B")[:want]
        got = os.preadv(self._fd, [view], self._start + self._pos)
        self._pos += got
        return got

    def readall(self) -> bytes:
        data = os.pread(self._fd, max(self._size - self._pos, 0), self._start + self._pos)
        self._pos += len(data)
        return data


class _DirRecord(NamedTuple):
    """The fields of an ISO 9660 directory record we use (ECMA-119 9.1)."""

    name: bytes
    start: int  # byte offset of the data in the image (after any extended attribute record)
    size: int
    is_dir: bool
    more: bool  # multi-extent: not the last record of this file (ECMA-119 9.1.6 bit 7)
    interleaved: bool
    system_use: bytes


class IsoStore(Store):
    """An ISO 9660 image read through its Primary Volume Descriptor (plain ISO 9660 names), never mounted.

    The directory hierarchy is read directly (ECMA-119 8.4, 9.1); Joliet is ignored and Rock Ridge is read only
    to refuse symbolic links (RRIP SL / PX entries). Files are read with ``os.pread`` on one descriptor.
    """

    kind = "iso"

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path
        self._pycdlib = None
        try:
            self._fd = os.open(path, os.O_RDONLY)
            self.image_size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise MediaError(f"cannot open the image: {exc.strerror or exc}", str(path), code="iso-structure") from None
        try:
            self._read_pvd()
        except (OSError, ValueError, struct.error) as exc:
            os.close(self._fd)
            raise MediaError(
                f"not a readable ISO 9660 image: {one_line(exc)}", str(path), code="iso-structure"
            ) from None
        self._dirs: dict[tuple[str, ...], _DirRecord] = {(): self._root}

    def _read_pvd(self) -> None:
        for sector in range(16, 16 + 64):  # ECMA-119 6.7.1: descriptors from sector 16 to the terminator
            desc = os.pread(self._fd, _SECTOR, sector * _SECTOR)
            if len(desc) < _SECTOR or desc[1:6] != b"CD001":
                raise ValueError(f"no volume descriptor at sector {sector}")
            if desc[0] == 255:
                break
            if desc[0] == 1:
                self._block = struct.unpack_from("<H", desc, 128)[0]
                if self._block not in (512, 1024, 2048):
                    raise ValueError(f"logical block size {self._block}")
                self._volume_id = desc[40:72]
                self._root = self._record(desc, 156)
                if not self._root.is_dir:
                    raise ValueError("the root directory record is not a directory")
                root_records = self._records(self._root)
                self._susp_skip = self._susp_skip_of(root_records[0].system_use) if root_records else None
                return
        raise ValueError("no Primary Volume Descriptor")

    def _pread(self, size: int, start: int, what: str) -> bytes:
        """Bytes of the image, every size bounded by the image (a declared 0xFFFFFFFF allocates nothing)."""
        if start < 0 or size < 0 or start + size > self.image_size:
            raise OSError(f"{what} (bytes {start}-{start + size}) runs past the end of the image ({self.image_size})")
        data = os.pread(self._fd, size, start)
        if len(data) < size:
            raise OSError(f"the image ends inside {what}")
        return data

    def _record(self, buf: bytes, pos: int) -> _DirRecord:
        """The directory record at ``pos`` (ECMA-119 9.1); ValueError when it does not fit its length."""
        if pos + 34 > len(buf):
            raise ValueError(f"bad directory record at byte {pos}: cut short")
        length, xar = buf[pos], buf[pos + 1]
        extent, size = struct.unpack_from("<I", buf, pos + 2)[0], struct.unpack_from("<I", buf, pos + 10)[0]
        flags, unit, gap, name_len = buf[pos + 25], buf[pos + 26], buf[pos + 27], buf[pos + 32]
        if length < 34 or 33 + name_len > length or pos + length > len(buf):
            raise ValueError(f"bad directory record at byte {pos}")
        use_at = 33 + name_len + (1 - name_len % 2)  # a padding byte follows an even-length name
        return _DirRecord(
            bytes(buf[pos + 33 : pos + 33 + name_len]),
            (extent + xar) * self._block,
            size,
            bool(flags & 0x02),
            bool(flags & 0x80),
            bool(unit or gap),
            bytes(buf[pos + use_at : pos + length]),
        )

    def _records(self, directory: _DirRecord) -> list[_DirRecord]:
        """The records of a directory's extent, ``.`` and ``..`` included (records never cross a sector)."""
        data = self._pread(directory.size, directory.start, "a directory")
        records, pos = [], 0
        while pos < len(data):
            if data[pos] == 0:
                pos = (pos // _SECTOR + 1) * _SECTOR
                continue
            records.append(self._record(data, pos))
            pos += data[pos]
        return records

    @staticmethod
    def _susp_skip_of(system_use: bytes) -> int | None:
        """SUSP's SP entry in the root's ``.`` record: present when Rock Ridge may be used; its bytes to skip."""
        if system_use[:2] == b"SP" and len(system_use) >= 7 and system_use[4:6] == b"\xbe\xef":
            return system_use[6]
        return None

    def _is_link(self, rec: _DirRecord) -> bool:
        """A Rock Ridge symbolic link: an SL entry, or a PX mode of S_IFLNK (RRIP 4.1.1, 4.1.3), CE followed."""
        if self._susp_skip is None:
            return False
        area, hops = rec.system_use[self._susp_skip :], 0
        while area and hops < 16:
            continuation, pos = None, 0
            while pos + 4 <= len(area):
                sig, length, _ = _SUSP_ENTRY.unpack_from(area, pos)
                if length < 4:
                    break
                if sig == b"SL":
                    return True
                if sig == b"PX" and length >= 12 and struct.unpack_from("<I", area, pos + 4)[0] & _S_IFMT == _S_IFLNK:
                    return True
                if sig == b"CE" and length >= 28:
                    block, offset, size = (
                        struct.unpack_from("<I", area, pos + 4)[0],
                        *(struct.unpack_from("<I", area, pos + at)[0] for at in (12, 20)),
                    )
                    continuation = (block * self._block + offset, size)
                if sig == b"ST":
                    break
                pos += length
            if continuation is None:
                break
            # SUSP 5.1: a continuation area lies within one logical block
            area, hops = self._pread(min(continuation[1], self._block), continuation[0], "a SUSP area"), hops + 1
        return False

    def directory_key(self, names: tuple[str, ...]) -> object:
        """The directory's extent."""
        directory = self._dirs.get(names)
        if directory is None:
            raise OSError(f"{'/'.join(names)} is not a directory of the image")
        return directory.start

    def _scan_dir(self, names: tuple[str, ...]) -> list[Entry]:
        directory = self._dirs.get(names)
        if directory is None:
            raise OSError(f"{'/'.join(names)} is not a directory of the image")
        try:
            records = self._records(directory)
        except (ValueError, struct.error) as exc:
            raise OSError(f"not a readable directory: {exc}") from None
        entries: list[Entry] = []
        pending: _DirRecord | None = None  # the first record of a multi-extent file
        for rec in records:
            if rec.name in (b"\x00", b"\x01"):  # "." and ".."
                continue
            name = rec.name.decode("ascii", "replace")
            if pending is not None and rec.name != pending.name:  # its last extent never came: not readable
                entries.append(Entry(pending.name.decode("ascii", "replace"), False, False, pending.size, -1))
                pending = None
            if pending is not None:  # a multi-extent file's next part: contiguous ones read as one span
                contiguous = rec.start == pending.start + pending.size
                pending = _DirRecord(
                    pending.name,
                    pending.start if contiguous else -1,
                    pending.size + rec.size,
                    False,
                    rec.more,
                    pending.interleaved,
                    pending.system_use,
                )
                if rec.more:
                    continue
                rec, pending = pending, None
            elif rec.more:
                pending = rec
                continue
            if rec.is_dir:
                self._dirs[(*names, name)] = rec
            start = -1 if rec.interleaved else rec.start  # interleaved or scattered extents: not read (-1)
            entries.append(Entry(name, rec.is_dir, self._is_link(rec), 0 if rec.is_dir else rec.size, start))
        if pending is not None:  # a multi-extent file whose last extent never came: listed, not readable
            entries.append(Entry(pending.name.decode("ascii", "replace"), False, False, pending.size, -1))
        return entries

    def _check_span(self, stored: StoredFile) -> None:
        """The file is one span inside the image (OSError otherwise: nothing is read past the image's end)."""
        if stored.start < 0:
            raise OSError("interleaved or in scattered extents: not supported")
        if stored.start + stored.size > self.image_size:
            raise OSError(
                f"its extent (bytes {stored.start}-{stored.start + stored.size}) runs past the end of the image"
            )

    def open(self, stored: StoredFile) -> BinaryIO:
        """Stream a file out of the image; safe from several threads (positioned reads, no shared offset)."""
        self._check_span(stored)
        return NamedReader(_SpanReader(self._fd, stored.start, stored.size), f"{self.label}:{stored.media_path}")

    def read_into(self, stored: StoredFile, offset: int, slots: list[memoryview]) -> None:
        """Fill ``slots`` with the file's bytes from ``offset`` on, straight from the image (thread-safe)."""
        self._check_span(stored)
        pread_into(self._fd, stored.start + offset, slots, stored.size - offset)

    def total_bytes(self) -> int:
        """Size of the image file."""
        return self.image_size

    def volume_identifier(self) -> str:
        """The Primary Volume Descriptor's Volume Identifier, without padding."""
        return self._volume_id.decode("ascii", "replace").rstrip(" \x00")

    @property
    def iso(self):  # type: ignore[no-untyped-def]
        """The image opened with pycdlib, for checks of its extensions (opened on first use)."""
        if self._pycdlib is None:
            import pycdlib

            iso = pycdlib.PyCdlib()
            iso.open(str(self.path))
            self._pycdlib = iso
        return self._pycdlib

    def close(self) -> None:
        """Close the image."""
        if self._pycdlib is not None:
            from pycdlib.pycdlibexception import PyCdlibException

            try:
                self._pycdlib.close()
            except PyCdlibException:
                pass
            self._pycdlib = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def is_iso_image(path: Path) -> bool:
    """True when the file carries an ISO 9660 Primary Volume Descriptor at sector 16 (ECMA-119 8.4)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(16 * 2048)
            head = fh.read(6)
    except OSError:
        return False
    return head[1:6] == b"CD001" or path.suffix.lower() == ".iso"


def recognition(path: Path) -> set[str]:
    """Identifiers of the Volume Recognition Sequence (ECMA-167 2/9.1): ``CD001``, ``BEA01``, ``NSR02``, ..."""
    found: set[str] = set()
    try:
        with open(path, "rb") as fh:
            for sector in range(16, 16 + 32):
                fh.seek(sector * _SECTOR)
                head = fh.read(7)
                ident = head[1:6].decode("ascii", "replace")
                if len(head) < 7 or ident not in ("CD001", "BEA01", "NSR02", "NSR03", "TEA01", "BOOT2", "CDW02"):
                    break
                found.add(ident)
    except OSError:
        return set()
    return found


def is_udf_image(path: Path) -> bool:
    """True when the file's Volume Recognition Sequence announces a UDF volume (NSR02 or NSR03)."""
    return bool(recognition(path) & {"NSR02", "NSR03"})


def open_image(path: Path, file_system: str | None = None) -> Store:
    """The store of a disc image: its ISO 9660 side unless ``file_system`` is ``udf`` or there is no ISO 9660."""
    found = recognition(path)
    udf = bool(found & {"NSR02", "NSR03"})
    if file_system == "udf" or (file_system is None and udf and "CD001" not in found):
        if not udf:
            raise MediaError("no UDF volume on this image (no NSR02/NSR03 descriptor)", str(path))
        from dicommedia.media.udf import UdfStore  # loaded only for a UDF volume

        return UdfStore(path)
    if file_system == "iso9660" and "CD001" not in found:
        raise MediaError("no ISO 9660 volume on this image (no CD001 descriptor)", str(path))
    return IsoStore(path)
