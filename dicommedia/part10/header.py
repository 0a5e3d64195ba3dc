"""A fast reader of Part 10 headers (PS3.10 7.1, PS3.5 7.1.2): the raw bytes of the attributes we need.

It reads Explicit VR Little Endian files element by element, skipping every value it does not need, and
stops at Pixel Data. Values are kept as encoded, so directory records copy them byte for byte (character
sets, ISO 2022 escapes included). Anything else (other encodings, structure it does not follow) returns
``None`` and the caller falls back to pydicom; only a file that ends before a value it announces raises.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from dicommedia.part10.errors import Malformed, Truncated
from dicommedia.part10.meta import META_WINDOW, read_file_meta
from dicommedia.part10.vr import (
    ITEM,
    ITEM_END,
    LONG_VRS_BYTES,
    MAX_DEPTH,
    NUMBER_FORMATS,
    PIXEL_DATA,
    SEQ_END,
    SHORT_VRS_BYTES,
    UNDEFINED,
)
from dicommedia.standard.uids import EXPLICIT_VR_LE

_HEAD = struct.Struct("<HH2sH")
_IMPLICIT_HEAD = struct.Struct("<HHI")
_LEN = struct.Struct("<I")
_IN_SEQUENCE, _IN_ITEM = 0, 1


@dataclass(slots=True, unsafe_hash=True)  # never changed once made; not frozen: three times faster to make
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
        fmt = NUMBER_FORMATS.get(self.vr)
        if fmt is not None and len(self.value) >= struct.calcsize(fmt):
            return struct.unpack_from(fmt, self.value)[0]
        if fmt is not None:
            return None
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

    def element(self, implicit: bool = False) -> tuple[int, bytes, int]:
        """Read one element header: (tag, VR, length); ``implicit``: Implicit VR LE (no VR, b"")."""
        if implicit:
            group, elem, length = _IMPLICIT_HEAD.unpack(self.read(8))
            return (group << 16) | elem, b"", length
        group, elem, vr, short = _HEAD.unpack(self.read(8))
        tag = (group << 16) | elem
        if tag in (ITEM, ITEM_END, SEQ_END):
            return tag, b"", _LEN.unpack(vr + struct.pack("<H", short))[0]
        if vr in LONG_VRS_BYTES:
            return tag, vr, _LEN.unpack(self.read(4))[0]
        if vr in SHORT_VRS_BYTES:
            return tag, vr, short
        raise Malformed(f"element ({group:04X},{elem:04X}) has no valid VR")

    def skip_undefined(self, implicit: bool = False) -> None:
        """Skip the items of an undefined-length value up to and including its Sequence Delimitation Item.

        ``implicit``: the items hold Implicit VR LE data sets, as a UN value of undefined length does (PS3.5 6.2.2).
        Walked with an explicit stack, bounded in depth: no recursion a crafted file could exhaust.
        """
        stack = [(_IN_SEQUENCE, implicit)]
        while stack:
            where, implicit = stack[-1]
            tag, vr, length = self.element(implicit)
            if where == _IN_SEQUENCE:
                if tag == SEQ_END:
                    stack.pop()
                elif tag != ITEM:
                    raise Malformed("a sequence holds something other than items")
                elif length == UNDEFINED:
                    stack.append((_IN_ITEM, implicit))
                else:
                    self.skip(length)
            elif tag == ITEM_END:
                stack.pop()
            elif length == UNDEFINED:  # a sequence, or a UN value of undefined length (Implicit VR LE inside)
                if len(stack) >= 2 * MAX_DEPTH:
                    raise Malformed(f"sequences nested deeper than {MAX_DEPTH} levels")
                stack.append((_IN_SEQUENCE, implicit or vr == b"UN"))
            else:
                self.skip(length)


def _meta(reader: _Reader) -> tuple[str, int]:
    """Parse the File Meta group (always Explicit VR LE): return (transfer syntax, offset of the data set)."""
    meta, body = read_file_meta(reader.peek(META_WINDOW))  # Truncated: a group longer than any real one
    reader.pos += body
    return meta["TransferSyntaxUID"], reader.pos


def read_raw_header(fp: BinaryIO, size: int, wanted: set[int]) -> ParsedHeader | None:
    """Read an Explicit VR LE Part 10 file's header; None when it is not Part 10 or not a structure this reader
    follows (the caller then reads it with pydicom); an other transfer syntax gives its File Meta part only.

    Raises ``Truncated`` when the file ends before a value it announces.
    """
    reader = _Reader(fp, size)
    try:
        syntax, body = _meta(reader)
    except (Malformed, Truncated):
        return None
    parsed = ParsedHeader(syntax, body)
    if syntax == EXPLICIT_VR_LE:
        try:
            _read_dataset(reader, parsed, wanted)
        except Malformed:
            return None
    return parsed


def read_elements(data: bytes, wanted: set[int] | None = None) -> dict[int, RawValue]:
    """The elements of an Explicit VR LE data set held in memory (all of them when ``wanted`` is None)."""
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
        if tag >> 16 == 0x0002 or tag in (ITEM, ITEM_END, SEQ_END):
            raise Malformed("a File Meta or item element inside the data set")
        if length == UNDEFINED:
            if vr not in (b"SQ", b"UN", b"OB"):
                raise Malformed("undefined length outside a sequence")
            start = reader.pos
            reader.skip_undefined(implicit=vr == b"UN")
            if wanted is None or tag in wanted:
                parsed.values[tag] = RawValue(vr.decode(), reader.between(start, reader.pos), True)
        elif wanted is None or tag in wanted:
            parsed.values[tag] = RawValue(vr.decode(), reader.read(length))
        else:
            reader.skip(length)
