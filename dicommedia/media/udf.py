"""UDF volumes (ECMA-167 / OSTA UDF): the UDF side of a bridge disc, or a UDF-only disc, read without mounting.

Read: the Anchor at sector 256, the Main Volume Descriptor Sequence (Partition and Logical Volume Descriptors),
type 1 (physical) partition maps, the File Set Descriptor, (Extended) File Entries with short, long or embedded
allocation descriptors, and File Identifier Descriptors. Not read, each with a one-line cause: virtual (VAT,
CD-R/BD-R incremental), sparable (DVD-RW, CD-RW) and metadata (UDF 2.50+) partitions, extended allocation
descriptors, ICB strategy 4096. Every position and length read from the image is bounded by the image.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dicommedia.errors import MediaError
from dicommedia.media.findings import warning
from dicommedia.media.store import Entry, NamedReader, RegionReader, Store, StoredFile, pread_into

_SECTOR = 2048  # the Volume Recognition Sequence's unit (ECMA-167 2/8.4)
_ANCHOR_SECTOR = 256  # ECMA-167 3/8.4.2.1
_BLOCK_SIZES = (2048, 512, 1024, 4096)  # optical discs use 2048; hard disks and USB sticks 512 or 4096
# Descriptor tag identifiers (ECMA-167 3/7.2.1, 4/7.2.1)
_ANCHOR, _POINTER, _PARTITION, _LOGICAL_VOLUME, _TERMINATOR = 2, 3, 5, 6, 8
_FILE_SET, _FILE_ID, _FILE_ENTRY, _EXTENDED_FILE_ENTRY = 256, 257, 261, 266
# ICB file types (ECMA-167 4/14.6.6)
_DIRECTORY, _SYMLINK = 4, 12
_MAX_CHAIN = 4096  # allocation descriptor continuations and descriptor sequence sectors followed at most
_TAG = struct.Struct("<HHBBHHHI")
_LONG_AD = struct.Struct("<IIH")


class UdfError(OSError):
    """The UDF structures cannot be read (damaged, or a feature this reader does not support)."""


def _tag_checksum(data: bytes) -> int:
    return (sum(data[0:4]) + sum(data[5:16])) & 0xFF


def _dstring(field: bytes) -> str:
    """An OSTA CS0 d-string (UDF 2.1.2, 2.1.3): compression ID 8 (one byte) or 16 (UTF-16BE), length last."""
    length = field[-1]
    return _cs0(field[:length] if 0 < length < len(field) else b"").rstrip("\x00 ")


def _cs0(data: bytes) -> str:
    if not data:
        return ""
    if data[0] == 8:
        return data[1:].decode("latin-1")
    if data[0] == 16:
        return data[1 : 1 + (len(data) - 1) // 2 * 2].decode("utf-16-be", "replace")
    raise UdfError(f"a name with OSTA CS0 compression ID {data[0]} (only 8 and 16 exist)")


@dataclass(frozen=True)
class _Piece:
    """A run of a file's bytes: ``offset`` in the image, or -1 for an unrecorded run that reads as zeros."""

    offset: int
    length: int


@dataclass(frozen=True)
class _Node:
    """A file or folder as its (Extended) File Entry describes it."""

    file_type: int
    size: int
    pieces: tuple[_Piece, ...]
    embedded: bytes | None  # the data itself, when it lives inside the File Entry (allocation type 3)


class UdfVolume:
    """The logical volume of a UDF image: partitions, File Set, and File Entries by long_ad address."""

    def __init__(self, fd: int, size: int):
        self._fd, self._size = fd, size
        self._partitions: dict[int, tuple[int, int]] = {}  # partition number -> (first byte, length in bytes)
        self._maps: list[int] = []  # partition number of each partition reference
        self.block = _SECTOR  # the sector size, found where the Anchor is
        self.logical_volume_id = ""
        self._read_volume_descriptors()
        self.root = self._read_file_set()

    # -- raw reads, bounded by the image

    def read(self, offset: int, length: int) -> bytes:
        """Bytes of the image; a position or length beyond its end is an UdfError, never a short read."""
        if offset < 0 or length < 0 or offset + length > self._size:
            raise UdfError(f"a structure at byte {offset:,} (+{length:,}) lies beyond the end of the image")
        data = os.pread(self._fd, length, offset)
        if len(data) != length:
            raise UdfError(f"the image ends early at byte {offset + len(data):,}")
        return data

    def _descriptor(self, data: bytes, location: int, wanted: tuple[int, ...] | None, what: str) -> int:
        """Check a descriptor tag (ECMA-167 3/7.2): checksum, location; return its identifier."""
        ident, _version, checksum, _, _serial, _crc, _crc_len, tag_location = _TAG.unpack_from(data, 0)
        if checksum != _tag_checksum(data) or tag_location != location:
            raise UdfError(f"{what}: no valid descriptor tag at block {location}")
        if wanted is not None and ident not in wanted:
            raise UdfError(f"{what}: descriptor {ident} where {'/'.join(map(str, wanted))} was expected")
        return ident

    # -- volume structure (ECMA-167 part 3)

    def _read_volume_descriptors(self) -> None:
        anchor = b""
        for block in _BLOCK_SIZES:  # the Anchor is at sector 256 of the sector size in use
            if (_ANCHOR_SECTOR + 1) * block <= self._size:
                candidate = self.read(_ANCHOR_SECTOR * block, block)
                ident, *_, location = _TAG.unpack_from(candidate)
                if ident == _ANCHOR and location == _ANCHOR_SECTOR:
                    anchor, self.block = candidate, block
                    break
        if not anchor:
            raise UdfError("no Anchor Volume Descriptor Pointer at sector 256 (damaged, or not UDF)")
        self._descriptor(anchor, _ANCHOR_SECTOR, (_ANCHOR,), "Anchor Volume Descriptor Pointer")
        length, location = struct.unpack_from("<II", anchor, 16)
        logical_volume = None
        for index in range(min(length // self.block, _MAX_CHAIN)):
            sector = location + index
            data = self.read(sector * self.block, self.block)
            ident = self._descriptor(data, sector, None, "Main Volume Descriptor Sequence")
            if ident == _TERMINATOR:
                break
            if ident == _POINTER:
                raise UdfError("UDF feature not supported: a Volume Descriptor Pointer (continued sequence)")
            if ident == _PARTITION:
                number, start, blocks = struct.unpack_from("<H", data, 22)[0], *struct.unpack_from("<II", data, 188)
                self._partitions[number] = (start * self.block, blocks * self.block)
            elif ident == _LOGICAL_VOLUME:
                logical_volume = data
        if logical_volume is None or not self._partitions:
            raise UdfError("no Logical Volume or Partition Descriptor in the Main Volume Descriptor Sequence")
        logical_block = struct.unpack_from("<I", logical_volume, 212)[0]
        if logical_block != self.block:
            raise UdfError(f"UDF feature not supported: logical block size {logical_block} != sector size {self.block}")
        self.logical_volume_id = _dstring(logical_volume[84:212])
        self._fsd_address = _LONG_AD.unpack_from(logical_volume, 248)
        self._read_partition_maps(logical_volume)

    def _read_partition_maps(self, lvd: bytes) -> None:
        table_length, count = struct.unpack_from("<II", lvd, 264)
        table = lvd[440 : 440 + min(table_length, len(lvd) - 440)]
        pos = 0
        for _ in range(count):
            if pos + 2 > len(table) or table[pos + 1] < 6:
                raise UdfError("a partition map lies outside the Logical Volume Descriptor")
            kind, length = table[pos], table[pos + 1]
            entry = table[pos : pos + length]
            if kind == 1:  # ECMA-167 3/10.7.2: a physical partition
                self._maps.append(struct.unpack_from("<H", entry, 4)[0])
            elif kind == 2 and len(entry) >= 64:  # virtual, sparable, metadata (UDF 2.2.8-2.2.10): not read
                ident = entry[5:28].rstrip(b"\x00").decode("ascii", "replace")
                raise UdfError(f"UDF feature not supported: a {ident.lstrip('*')} map")
            else:
                raise UdfError(f"UDF feature not supported: partition map type {kind}")
            pos += length
        if not self._maps:
            raise UdfError("the Logical Volume has no partition map")

    def _read_file_set(self) -> tuple[int, int]:
        length, block, ref = self._fsd_address
        data = self.read_block(block, ref, self.block)
        self._descriptor(data, block, (_FILE_SET,), "File Set Descriptor")
        _, root_block, root_ref = _LONG_AD.unpack_from(data, 400)
        return root_block, root_ref

    # -- addresses

    def address(self, block: int, ref: int, length: int) -> _Piece:
        """The image bytes of ``length`` bytes from a logical block of a partition reference."""
        if ref >= len(self._maps):
            raise UdfError(f"partition reference {ref} is not in the Logical Volume")
        number = self._maps[ref]
        if number not in self._partitions:
            raise UdfError(f"partition {number} has no Partition Descriptor")
        first, size = self._partitions[number]
        start = block * self.block
        if start + length > size:
            raise UdfError(f"block {block} (+{length:,} bytes) lies outside partition {number}")
        return _Piece(first + start, length)

    def read_block(self, block: int, ref: int, length: int) -> bytes:
        """Bytes at a logical block address."""
        piece = self.address(block, ref, length)
        return self.read(piece.offset, piece.length)

    # -- files (ECMA-167 part 4)

    def node(self, icb: tuple[int, int]) -> _Node:
        """The File Entry or Extended File Entry at an ICB address (block, partition reference)."""
        block, ref = icb
        data = self.read_block(block, ref, self.block)
        ident = self._descriptor(data, block, (_FILE_ENTRY, _EXTENDED_FILE_ENTRY), "File Entry")
        strategy, file_type = struct.unpack_from("<H", data, 20)[0], data[27]
        flags = struct.unpack_from("<H", data, 34)[0]
        if strategy != 4:
            raise UdfError(f"UDF feature not supported: ICB strategy {strategy} (only 4 is read)")
        size = struct.unpack_from("<Q", data, 56)[0]
        if size > self._size:  # unrecorded extents could claim any length: a disc holds no file longer than it
            raise UdfError(f"the File Entry at block {block} claims {size:,} bytes, more than the image holds")
        head = 176 if ident == _FILE_ENTRY else 216
        ea_length, ad_length = struct.unpack_from("<II", data, head - 8)
        if head + ea_length + ad_length > len(data):
            raise UdfError(f"the File Entry at block {block} is longer than its block")
        ads = data[head + ea_length : head + ea_length + ad_length]
        kind = flags & 7
        if kind == 3:  # embedded: the data is in the entry (ECMA-167 4/14.6.8)
            if size > len(ads):
                raise UdfError(f"the File Entry at block {block} embeds fewer bytes than its length")
            return _Node(file_type, size, (), ads[:size])
        if kind not in (0, 1):
            raise UdfError("UDF feature not supported: extended allocation descriptors")
        pieces = self._pieces(ads, kind, ref, size)
        if sum(p.length for p in pieces) < size:
            raise UdfError(f"the File Entry at block {block} records fewer bytes than its length")
        return _Node(file_type, size, _trim(pieces, size), None)

    def _pieces(self, ads: bytes, kind: int, ref: int, size: int) -> list[_Piece]:
        """Follow short (0) or long (1) allocation descriptors, continuation extents included."""
        step = 8 if kind == 0 else 16
        pieces: list[_Piece] = []
        total = 0
        for _ in range(_MAX_CHAIN):
            follow = None
            for pos in range(0, len(ads) - step + 1, step):
                raw_length, block = struct.unpack_from("<II", ads, pos)
                part = ref if kind == 0 else struct.unpack_from("<H", ads, pos + 8)[0]
                extent_type, length = raw_length >> 30, raw_length & 0x3FFFFFFF
                if length == 0:
                    break
                if extent_type == 3:  # the next extent of allocation descriptors (ECMA-167 4/12)
                    follow = (block, part, length)
                    break
                if extent_type == 0:
                    pieces.append(self.address(block, part, length))
                else:  # allocated or not, but not recorded: reads as zeros
                    pieces.append(_Piece(-1, length))
                total += length
                if total >= size:
                    return pieces
            if follow is None:
                return pieces
            ads = self.read_block(follow[0], follow[1], follow[2])[24:]  # after the Allocation Extent Descriptor
        raise UdfError("allocation descriptors continue too many times")

    def directory(self, node: _Node) -> list[tuple[str, int, tuple[int, int]]]:
        """Entries of a directory: (name, characteristics, ICB address), parent and deleted ones left out."""
        data = self.content(node)
        entries, pos = [], 0
        while pos + 38 <= len(data):
            ident = struct.unpack_from("<H", data, pos)[0]
            if ident != _FILE_ID:
                raise UdfError(f"a File Identifier Descriptor is damaged (byte {pos} of a directory)")
            characteristics, name_length = data[pos + 18], data[pos + 19]
            _, block, ref = _LONG_AD.unpack_from(data, pos + 20)
            use_length = struct.unpack_from("<H", data, pos + 36)[0]
            end = pos + 38 + use_length + name_length
            if end > len(data):
                raise UdfError("a File Identifier Descriptor runs past the end of its directory")
            if not characteristics & 0x0C:  # bit 2 deleted, bit 3 parent (ECMA-167 4/14.4.3)
                entries.append((_cs0(data[pos + 38 + use_length : end]), characteristics, (block, ref)))
            pos = (end + 3) & ~3
        return entries

    def content(self, node: _Node) -> bytes:
        """A whole (small) file's or directory's bytes."""
        if node.embedded is not None:
            return node.embedded
        return b"".join(self.read(p.offset, p.length) if p.offset >= 0 else bytes(p.length) for p in node.pieces)


def _trim(pieces: list[_Piece], size: int) -> tuple[_Piece, ...]:
    """The runs holding the first ``size`` bytes, contiguous runs merged."""
    out: list[_Piece] = []
    left = size
    for piece in pieces:
        if left <= 0:
            break
        take = min(left, piece.length)
        last = out[-1] if out else None
        if last and piece.offset >= 0 and last.offset >= 0 and last.offset + last.length == piece.offset:
            out[-1] = _Piece(last.offset, last.length + take)
        else:
            out.append(_Piece(piece.offset, take))
        left -= take
    return tuple(out)


class _PiecesReader(RegionReader):
    """A file's bytes gathered from its runs in the image (positioned reads; zeros for unrecorded runs)."""

    def __init__(self, volume: UdfVolume, node: _Node):
        super().__init__()
        self._volume, self._node, self._size, self._pos = volume, node, node.size, 0

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._node.size - self._pos)
        if want <= 0:
            return 0
        if self._node.embedded is not None:
            view[:want] = self._node.embedded[self._pos : self._pos + want]
        else:
            done, at = 0, 0
            for piece in self._node.pieces:
                if done == want:
                    break
                if at + piece.length > self._pos + done:
                    skip = self._pos + done - at
                    take = min(piece.length - skip, want - done)
                    chunk = self._volume.read(piece.offset + skip, take) if piece.offset >= 0 else bytes(take)
                    view[done : done + take] = chunk
                    done += take
                at += piece.length
        self._pos += want
        return want


class UdfStore(Store):
    """A disc image read through its UDF file system (names as UDF records them)."""

    kind = "udf"

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise MediaError(f"cannot open the image: {exc.strerror or exc}", str(path)) from None
        try:
            self.volume = UdfVolume(self._fd, os.fstat(self._fd).st_size)
            self._dirs = {(): self.volume.node(self.volume.root)}
            self._icbs = {(): self.volume.root}  # each directory's File Entry address: a loop meets one twice
        except (OSError, ValueError, struct.error) as exc:
            os.close(self._fd)
            raise MediaError(f"not a readable UDF volume: {exc}", str(path)) from None
        self._files: dict[tuple[str, ...], _Node] = {}

    def _scan_dir(self, names: tuple[str, ...]) -> list[Entry]:
        directory = self._dirs.get(names)
        if directory is None:
            raise OSError(f"{'/'.join(names)} is not a directory of the UDF volume")
        entries = []
        for name, characteristics, icb in self.volume.directory(directory):
            try:
                node = self.volume.node(icb)
            except UdfError as exc:  # one damaged File Entry: that entry is left out and reported, not its folder
                self.findings.append(warning("unreadable-file", f"left out: {exc}", "/".join((*names, name))))
                continue
            is_dir = bool(characteristics & 0x02) or node.file_type == _DIRECTORY
            if is_dir:
                self._dirs[(*names, name)] = node
                self._icbs[(*names, name)] = icb
            else:
                self._files[(*names, name)] = node
            start = node.pieces[0].offset if len(node.pieces) == 1 and node.embedded is None else -1
            entries.append(Entry(name, is_dir, node.file_type == _SYMLINK, 0 if is_dir else node.size, start))
        return entries

    def directory_key(self, names: tuple[str, ...]) -> object:
        """The directory's File Entry address."""
        if names not in self._icbs:
            raise OSError(f"{'/'.join(names)} is not a directory of the UDF volume")
        return self._icbs[names]

    def _node(self, stored: StoredFile) -> _Node:
        node = self._files.get(stored.names)
        if node is None:
            raise OSError(f"{stored.media_path} is not a file of the UDF volume")
        return node

    def open(self, stored: StoredFile) -> BinaryIO:
        """Stream a file out of the UDF volume (positioned reads, safe from several threads)."""
        return NamedReader(_PiecesReader(self.volume, self._node(stored)), f"{self.label}:{stored.media_path}")

    def read_into(self, stored: StoredFile, offset: int, slots: list[memoryview]) -> None:
        """Fill ``slots`` with the file's bytes from ``offset`` on."""
        if stored.start >= 0:
            pread_into(self._fd, stored.start + offset, slots, stored.size - offset)
            return
        with self.open(stored) as fp:
            fp.seek(offset)
            for slot in slots:
                if fp.readinto(slot) != len(slot):
                    raise OSError("the file is shorter than the bytes asked for")

    def total_bytes(self) -> int:
        """Size of the image file."""
        return self.path.stat().st_size

    def volume_identifier(self) -> str:
        """The UDF Logical Volume Identifier (what a mounted disc shows as its label)."""
        return self.volume.logical_volume_id

    def close(self) -> None:
        """Close the image."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
