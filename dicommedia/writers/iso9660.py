"""A streaming ISO 9660 level 1 writer (ECMA-119): the layout from a few bytes per file, then one sequential pass.

pycdlib keeps about a kilobyte of Python objects per file until the image is written (measured: 9 MB at
10,000 files, a BD holds ~100,000); it stays the writer of images with a UDF bridge. Here a directory is
encoded to its bytes as soon as its entries are known, and a file is only a start sector until its data is
copied. No Joliet, no Rock Ridge (PS3.12 F.3.1 needs neither).

Layout: the volume descriptors, then the files' data, then the path tables and directories (ECMA-119 lets
them be anywhere: the descriptor points at them). Data first lets files be copied into the image before the
directories are known (writers/early_copy.py): such files come "placed" at their sectors.
"""

from __future__ import annotations

import os
import re
import struct
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from dicommedia.errors import MediaError

SECTOR = 2048
FIRST_FREE = 18  # sectors 0-15 system area, 16 Primary Volume Descriptor, 17 Set Terminator (ECMA-119 6.2, 6.7)
_MAX_DEPTH = 8  # directory levels, the root counted (ECMA-119 6.8.2.1)
_D_CHARS = re.compile(r"[A-Z0-9_]{1,8}")  # level 1: 8 d-characters, and 3 for the extension (ECMA-119 10.1)
_EXTENSION = re.compile(r"[A-Z0-9_]{0,3}")


class SourceFile(Protocol):
    """What the writer needs of a file: its path components, its size and how to open it."""

    parts: tuple[str, ...]
    size: int
    open: Callable[[], BinaryIO]


def _both16(value: int) -> bytes:
    return struct.pack("<H", value) + struct.pack(">H", value)


def _both32(value: int) -> bytes:
    return struct.pack("<I", value) + struct.pack(">I", value)


def _sectors(size: int) -> int:
    return -(-size // SECTOR)


def _record_date(when: time.struct_time) -> bytes:
    """Recording date and time of a directory record (ECMA-119 9.1.5), in UTC."""
    return bytes((when.tm_year - 1900, when.tm_mon, when.tm_mday, when.tm_hour, when.tm_min, when.tm_sec, 0))


def _volume_date(when: time.struct_time | None) -> bytes:
    """A volume descriptor date (ECMA-119 8.4.26.1); None is "not specified": sixteen '0' and a zero offset."""
    if when is None:
        return b"0" * 16 + b"\0"
    return time.strftime("%Y%m%d%H%M%S00", when).encode() + b"\0"


def _a_field(text: str, size: int) -> bytes:
    return text.encode("ascii").ljust(size, b" ")[:size]


def check_name(part: str, is_dir: bool) -> None:
    """Refuse a name that ISO 9660 level 1 cannot hold (a bug of the caller: File IDs are checked earlier)."""
    if is_dir:
        ok = _D_CHARS.fullmatch(part) is not None
    else:
        name, _, ext = part.partition(".")
        ok = _D_CHARS.fullmatch(name) is not None and _EXTENSION.fullmatch(ext) is not None
    if not ok:
        raise MediaError(f"{part!r} is not an ISO 9660 level 1 name (8.3 characters A-Z 0-9 _)")


def _identifier(part: str, is_dir: bool) -> bytes:
    """File Identifier as recorded: ``NAME.EXT;1``, ``NAME.;1`` without extension (ECMA-119 7.5.1)."""
    if is_dir:
        return part.encode("ascii")
    name, _, ext = part.partition(".")
    return f"{name}.{ext};1".encode("ascii")


def _sort_key(identifier: bytes) -> tuple[bytes, bytes]:
    """ECMA-119 9.3: by name, then extension, each compared as if padded with spaces."""
    name, _, rest = identifier.partition(b".")
    return name.ljust(8, b" "), rest.partition(b";")[0].ljust(3, b" ")


def _record_length(identifier: bytes | str) -> int:
    return 33 + len(identifier) + (1 - len(identifier) % 2)


def _placed(lengths: list[int]) -> tuple[list[int], int]:
    """Offsets of a directory's records, none across a sector boundary (ECMA-119 6.8.1.1), and the size in
    whole sectors."""
    offsets, used = [], 0
    for length in lengths:
        if length > SECTOR - used % SECTOR:
            used += SECTOR - used % SECTOR
        offsets.append(used)
        used += length
    return offsets, _sectors(used) * SECTOR


def _path_record_length(d: _Directory) -> int:
    name = d.parts[-1] if d.parts else "\0"
    return 8 + len(name) + len(name) % 2


def _directory_record(identifier: bytes, extent: int, size: int, is_dir: bool, date: bytes) -> bytes:
    """One Directory Record (ECMA-119 9.1), padded to an even length."""
    length = _record_length(identifier)
    head = struct.pack("<BB", length, 0) + _both32(extent) + _both32(size) + date
    tail = bytes((2 if is_dir else 0, 0, 0)) + _both16(1) + bytes((len(identifier),)) + identifier
    return head + tail + b"\0" * (length - len(head) - len(tail))


@dataclass
class _Directory:
    """A directory being laid out: its entries until encoded, then only its place and size."""

    parts: tuple[str, ...]
    parent: _Directory | None
    number: int = 0  # its place in the path table, 1 for the root
    extent: int = 0
    size: int = 0
    subdirs: dict[str, _Directory] = field(default_factory=dict)
    files: array = field(default_factory=lambda: array("I"))  # indices in the file list


class IsoImage:
    """An ISO 9660 level 1 image laid out and ready to be written in one pass."""

    def __init__(
        self,
        files: Sequence[SourceFile],
        volume_id: str,
        application: str = "DICOMMEDIA",
        placed: Sequence[int] = (),
        first_free: int = FIRST_FREE,
    ):
        """``placed``: per file, the sector its data was already written at (0: not yet); ``first_free``: the
        first sector after those."""
        self._files = files
        self._volume_id = volume_id
        self._application = application
        self._when = time.gmtime()
        self._extents = array("I", placed or bytes(4 * len(files)))
        self._first_free = max(first_free, FIRST_FREE)
        root = _Directory((), None)
        self._directories = _tree(files, root)
        self._lay_out()

    @property
    def size(self) -> int:
        """Bytes of the image (the Volume Space Size, ECMA-119 8.4.8)."""
        return self._space * SECTOR

    def _lay_out(self) -> None:
        dirs = self._directories
        for number, d in enumerate(dirs, 1):
            d.number = number
        next_free = self._first_free
        for index, f in enumerate(self._files):
            if not self._extents[index]:
                self._extents[index] = next_free
                next_free += _sectors(f.size)
        self._path_table_size = sum(_path_record_length(d) for d in dirs)
        table_sectors = _sectors(self._path_table_size)
        self._l_table, self._m_table = next_free, next_free + table_sectors
        next_free = self._m_table + table_sectors
        for d in dirs:  # sizes first: a directory record holds its children's extents and sizes
            d.size = _directory_size(d, self._files)
            d.extent = next_free
            next_free += d.size // SECTOR
        self._space = next_free

    def _encoded_directory(self, d: _Directory, date: bytes) -> bytes:
        """The sectors of one directory: ``.``, ``..``, then entries in ECMA-119 9.3 order, none across a sector."""
        parent = d.parent or d
        entries = [(b"\0", d.extent, d.size, True), (b"\1", parent.extent, parent.size, True)]
        named = [(_identifier(name, True), sub.extent, sub.size, True) for name, sub in d.subdirs.items()]
        files = self._files
        named += [(_identifier(files[i].parts[-1], False), self._extents[i], files[i].size, False) for i in d.files]
        entries += sorted(named, key=lambda e: _sort_key(e[0]))
        offsets, size = _placed([_record_length(e[0]) for e in entries])
        out = bytearray(size)
        for offset, (ident, extent, length, is_dir) in zip(offsets, entries):
            record = _directory_record(ident, extent, length, is_dir, date)
            out[offset : offset + len(record)] = record
        return bytes(out)

    def _path_table(self, endian: str) -> bytes:
        """A Path Table (ECMA-119 9.4): directories in level order, each with its parent's number."""
        out = bytearray()
        for d in self._directories:
            ident = d.parts[-1].encode("ascii") if d.parts else b"\0"
            parent = (d.parent or d).number
            out += struct.pack(f"{endian}BBIH", len(ident), 0, d.extent, parent) + ident + bytes(len(ident) % 2)
        return bytes(out) + bytes(-len(out) % SECTOR)

    def _primary_descriptor(self) -> bytes:
        """The Primary Volume Descriptor (ECMA-119 8.4)."""
        root = self._directories[0]
        date = _volume_date(self._when)
        pvd = (
            b"\x01CD001\x01\0"
            + _a_field("", 32)
            + _a_field(self._volume_id, 32)
            + bytes(8)
            + _both32(self._space)
            + bytes(32)
            + _both16(1)  # volume set size
            + _both16(1)  # volume sequence number
            + _both16(SECTOR)
            + _both32(self._path_table_size)
            + struct.pack("<II", self._l_table, 0)
            + struct.pack(">II", self._m_table, 0)
            + _directory_record(b"\0", root.extent, root.size, True, _record_date(self._when))
            + _a_field("", 128)  # volume set
            + _a_field("", 128)  # publisher
            + _a_field(self._application, 128)  # data preparer
            + _a_field(self._application, 128)  # application
            + _a_field("", 37 * 3)  # copyright, abstract, bibliographic files
            + date
            + date
            + _volume_date(None)  # expiration
            + date  # effective
            + b"\x01\0"
        )
        return pvd + bytes(SECTOR - len(pvd))

    def close(self) -> None:
        """Drop the layout (the directories' entries): the image is written."""
        self._directories = []
        self._extents = array("I")

    def write(self, fd: int, progress: Callable[[int], None] | None = None) -> None:
        """Write the image from offset 0 of ``fd``, in order (placed files are already there); ``progress`` gets
        the bytes written so far."""
        date = _record_date(self._when)
        head = bytearray(16 * SECTOR)
        head += self._primary_descriptor()
        head += b"\xffCD001\x01" + bytes(SECTOR - 7)  # Volume Descriptor Set Terminator (ECMA-119 8.3)
        write_all(fd, head, 0)
        for index, f in enumerate(self._files):
            position = self._extents[index] * SECTOR
            if position < self._first_free * SECTOR:  # placed: already written
                continue
            _copy_file(f, fd, position)
            if progress:
                progress(position + f.size)
        write_all(fd, self._path_table("<") + self._path_table(">"), self._l_table * SECTOR)
        for d in self._directories:
            write_all(fd, self._encoded_directory(d, date), d.extent * SECTOR)
        os.ftruncate(fd, self.size)
        if progress:
            progress(self.size)


def _tree(files: Sequence[SourceFile], root: _Directory) -> list[_Directory]:
    """Every directory the files need, in path table order (ECMA-119 9.4.3: by level, parent, then name)."""
    for index, f in enumerate(files):
        if len(f.parts) > _MAX_DEPTH:
            raise MediaError(f"{'/'.join(f.parts)}: deeper than ISO 9660 allows ({_MAX_DEPTH} levels)")
        node = root
        for depth, part in enumerate(f.parts[:-1], 1):
            sub = node.subdirs.get(part)
            if sub is None:
                check_name(part, True)
                sub = node.subdirs[part] = _Directory(f.parts[:depth], node)
            node = sub
        check_name(f.parts[-1], False)
        node.files.append(index)
    ordered, level = [root], [root]
    while level:
        level = [sub for d in level for _, sub in sorted(d.subdirs.items(), key=lambda kv: _sort_key(kv[0].encode()))]
        ordered += level
    return ordered


def _directory_size(d: _Directory, files: Sequence[SourceFile]) -> int:
    """Bytes of a directory: its records placed in whole sectors."""
    lengths = [34, 34] + [_record_length(n) for n in d.subdirs]
    lengths += [_record_length(_identifier(files[i].parts[-1], False)) for i in d.files]
    return _placed(lengths)[1]


def write_all(fd: int, data: bytes | memoryview, position: int) -> None:
    """Write all of ``data`` at ``position`` of ``fd``."""
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, position)
        view, position = view[n:], position + n


def _copy_file(f: SourceFile, fd: int, position: int) -> None:
    """A file's bytes at ``position``: header and source region spliced by the kernel where possible."""
    stream = f.open()
    try:
        # A header then a region of a file on disk (writers/output.py Part10Stream): copied by the kernel.
        region = stream.source_region() if hasattr(stream, "source_region") else None
        if region is not None:
            header, path, offset, length = region
            write_all(fd, header, position)
            copy_region(path, offset, length, fd, position + len(header))
            return
        left = f.size
        while left > 0:
            data = stream.read(min(left, 1 << 20))
            if not data:
                raise MediaError("the file changed or shrank while the image was written", "/".join(f.parts))
            write_all(fd, data, position)
            position, left = position + len(data), left - len(data)
    finally:
        stream.close()


def copy_region(path: str, offset: int, count: int, out_fd: int, out_offset: int) -> None:
    """Copy a file region into the output inside the kernel; plain reads where copy_file_range cannot."""
    with open(path, "rb") as src:
        fd = src.fileno()
        while count > 0:
            try:
                n = os.copy_file_range(fd, out_fd, count, offset, out_offset)
            except OSError:  # another file system, an old kernel: copy through user space
                data = os.pread(fd, min(count, 1 << 20), offset)
                n = os.pwrite(out_fd, data, out_offset) if data else 0
            if n == 0:
                raise MediaError("the file changed or shrank while the image was written", path)
            offset, out_offset, count = offset + n, out_offset + n, count - n
