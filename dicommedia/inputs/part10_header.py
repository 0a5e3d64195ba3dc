"""A fast reader of Part 10 headers (PS3.10 7.1, PS3.5 7.1.2): the raw bytes of the attributes we need.

It reads Explicit VR Little Endian files element by element, skipping every value it does not need, and
stops at Pixel Data. Values are kept as encoded, so directory records copy them byte for byte (character
sets, ISO 2022 escapes included). Anything else (other encodings, odd structure) returns ``None`` and the
caller falls back to pydicom.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
PIXEL_DATA = 0x7FE00010
UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
_SHORT_VRS = {
    b"AE",
    b"AS",
    b"AT",
    b"CS",
    b"DA",
    b"DS",
    b"DT",
    b"FL",
    b"FD",
    b"IS",
    b"LO",
    b"LT",
    b"PN",
    b"SH",
    b"SL",
    b"SS",
    b"ST",
    b"TM",
    b"UI",
    b"UL",
    b"US",
}
_HEAD = struct.Struct("<HH2sH")
_LEN = struct.Struct("<I")


class Malformed(Exception):
    """The bytes do not follow PS3.5 7.1.2 where the fast reader expected them to."""


class Truncated(Exception):
    """The file ends before a value it announces."""


@dataclass(frozen=True, slots=True)
class RawValue:
    """One attribute as encoded in Explicit VR Little Endian: VR, value bytes, and undefined length (SQ)."""

    vr: str
    value: bytes
    undefined_length: bool = False

    def text(self) -> str:
        """The value as text for planning (padding stripped); non-ASCII bytes are kept as Latin-1 code points."""
        return self.value.decode("latin-1").rstrip(" \x00").lstrip(" ")

    def number(self) -> int | None:
        """A US/UL/SS/SL value, or an IS value, as an int (None when empty or invalid)."""
        if self.vr in ("US", "SS", "UL", "SL") and len(self.value) >= 2:
            fmt = {"US": "<H", "SS": "<h", "UL": "<I", "SL": "<i"}[self.vr]
            return struct.unpack_from(fmt, self.value)[0]
        try:
            return int(self.text().split("\\")[0])
        except ValueError:
            return None


@dataclass
class ParsedHeader:
    """What the fast reader found: transfer syntax, where the data set starts, the values asked for, Pixel Data."""

    transfer_syntax: str
    body_offset: int
    values: dict[int, RawValue] = field(default_factory=dict)
    pixel_offset: int | None = None
    pixel_length: int | None = None


class _Reader:
    """Sequential reads over a file through one prefetch buffer: skipped values cost no system call."""

    _CHUNK = 65536

    def __init__(self, fp: BinaryIO, size: int):
        self.fp = fp
        self.size = size
        self.pos = fp.tell()
        self.buf = b""
        self.buf_start = self.pos

    def read(self, n: int) -> bytes:
        off = self.pos - self.buf_start
        if off < 0 or off + n > len(self.buf):
            self.fp.seek(self.pos)
            self.buf = self.fp.read(max(n, self._CHUNK))
            self.buf_start, off = self.pos, 0
            if len(self.buf) < n:
                raise Truncated(f"the file ends at byte {self.pos + len(self.buf)} inside an element")
        self.pos += n
        return self.buf[off : off + n]

    def peek(self, n: int) -> bytes:
        """Up to ``n`` bytes from the current position, without moving it."""
        start = self.pos
        try:
            return self.read(min(n, self.size - start))
        finally:
            self.pos = start

    def skip(self, n: int) -> None:
        if self.pos + n > self.size:
            raise Truncated(f"a value needs {self.pos + n} bytes, the file has {self.size}")
        self.pos += n

    def between(self, start: int, end: int) -> bytes:
        """The bytes from ``start`` to ``end``; the position ends at ``end``."""
        self.pos = start
        return self.read(end - start)

    def element(self) -> tuple[int, bytes, int]:
        """Read one element header: (tag, VR, length)."""
        group, elem, vr, short = _HEAD.unpack(self.read(8))
        tag = (group << 16) | elem
        if tag in (_ITEM, _ITEM_END, _SEQ_END):
            return tag, b"", _LEN.unpack(vr + struct.pack("<H", short))[0]
        if vr in _LONG_VRS:
            return tag, vr, _LEN.unpack(self.read(4))[0]
        if vr in _SHORT_VRS:
            return tag, vr, short
        raise Malformed(f"element ({group:04X},{elem:04X}) has no valid VR")

    def skip_undefined(self) -> None:
        """Skip the items of an undefined-length value up to and including its Sequence Delimitation Item."""
        while True:
            tag, _vr, length = self.element()
            if tag == _SEQ_END:
                return
            if tag != _ITEM:
                raise Malformed("a sequence holds something other than items")
            if length == UNDEFINED:
                self.skip_item()
            else:
                self.skip(length)

    def skip_item(self) -> None:
        """Skip the elements of an undefined-length item up to and including its Item Delimitation Item."""
        while True:
            tag, _vr, length = self.element()
            if tag == _ITEM_END:
                return
            if length == UNDEFINED:
                self.skip_undefined()
            else:
                self.skip(length)


def _meta(reader: _Reader) -> tuple[str, int]:
    """Parse the File Meta group (always Explicit VR LE): return (transfer syntax, offset of the data set)."""
    if reader.read(132)[128:] != b"DICM":
        raise Malformed("no 'DICM' prefix")
    syntax = None
    while True:
        start = reader.pos
        head = reader.peek(8)
        if len(head) < 8 or struct.unpack_from("<H", head)[0] != 0x0002:
            if syntax is None:
                raise Malformed("the File Meta Information has no Transfer Syntax UID")
            return syntax, start
        tag, _vr, length = reader.element()
        if length == UNDEFINED:
            raise Malformed("undefined length in the File Meta Information")
        value = reader.read(length)
        if tag == 0x00020010:
            syntax = value.decode("ascii", "replace").rstrip(" \x00")


def read_part10_header(fp: BinaryIO, size: int, wanted: set[int]) -> ParsedHeader | None:
    """Read an Explicit VR LE Part 10 file's header; None when it is another encoding or not Part 10.

    Raises ``Truncated`` when the file ends before a value it announces, ``Malformed`` on broken structure.
    """
    reader = _Reader(fp, size)
    try:
        syntax, body = _meta(reader)
    except (Malformed, Truncated):
        return None
    parsed = ParsedHeader(syntax, body)
    if syntax == EXPLICIT_VR_LE:
        _read_dataset(reader, parsed, wanted)
    return parsed


def read_elements(data: bytes, wanted: set[int] | None = None) -> dict[int, RawValue]:
    """The elements of an Explicit VR LE data set held in memory (all of them when ``wanted`` is None)."""
    import io

    parsed = ParsedHeader(EXPLICIT_VR_LE, 0)
    _read_dataset(_Reader(io.BytesIO(data), len(data)), parsed, wanted)
    return parsed.values


def _read_dataset(reader: _Reader, parsed: ParsedHeader, wanted: set[int] | None) -> None:
    size = reader.size
    while reader.pos < size:
        tag, vr, length = reader.element()
        if tag == PIXEL_DATA:
            parsed.pixel_offset, parsed.pixel_length = reader.pos, length
            if length != UNDEFINED and reader.pos + length > size:
                raise Truncated(f"Pixel Data needs {reader.pos + length} bytes, the file has {size}")
            break
        if tag >> 16 == 0x0002 or tag in (_ITEM, _ITEM_END, _SEQ_END):
            raise Malformed("a File Meta or item element inside the data set")
        if length == UNDEFINED:
            if vr not in (b"SQ", b"UN", b"OB"):
                raise Malformed("undefined length outside a sequence")
            start = reader.pos
            reader.skip_undefined()
            if wanted is None or tag in wanted:
                parsed.values[tag] = RawValue(vr.decode(), reader.between(start, reader.pos), True)
        elif wanted is None or tag in wanted:
            parsed.values[tag] = RawValue(vr.decode(), reader.read(length))
        else:
            reader.skip(length)
