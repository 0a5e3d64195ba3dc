"""Byte-level structure walk of a Part 10 file (PS3.10 7.1, PS3.5 7.1, 7.5, A.4): does every element fit in the file?

pydicom stops quietly at a truncated file; this walk reads only element headers and seeks over values,
so a truncated value, a runaway length or a missing delimiter is found without loading pixel data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from pydicom.uid import UID

from dicommedia.part10.errors import Malformed, Truncated
from dicommedia.part10.vr import ITEM, ITEM_END, LONG_VRS_BYTES, MAX_DEPTH, PIXEL_DATA, SEQ_END, UNDEFINED


@dataclass
class PixelInfo:
    """Where the top-level Pixel Data sits: its defined length, or its fragment count when encapsulated."""

    length: int | None
    fragments: int | None


class _Walker:
    def __init__(self, fp: BinaryIO, size: int, implicit: bool, little: bool):
        self.fp, self.size, self.implicit = fp, size, implicit
        self.u16, self.u32 = ("<H", "<I") if little else (">H", ">I")
        self.pixel: PixelInfo | None = None
        self.depth = 0  # sequences open around the current element

    def read(self, n: int, what: str) -> bytes:
        data = self.fp.read(n)
        if len(data) != n:
            raise Truncated(f"file ends inside {what}")
        return data

    def skip(self, length: int, what: str) -> None:
        pos = self.fp.tell()
        if pos + length > self.size:
            raise Truncated(f"{what} needs {length} bytes, only {self.size - pos} remain")
        self.fp.seek(pos + length)

    def tag(self, what: str) -> tuple[int, bytes]:
        head = self.read(4, what)
        group, element = struct.unpack(self.u16 + "H", head)
        return (group << 16) | element, head

    def element(self, top: bool) -> int:
        """Read one element header, then skip (or walk) its value; return its tag."""
        tag, _ = self.tag("an element header")
        name = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if self.implicit or tag >> 16 == 0xFFFE:
            length = struct.unpack(self.u32, self.read(4, name))[0]
        else:
            vr = self.read(2, name)
            if vr == b"UN" and self.u32 == "<I":
                self.read(2, name)
                length = struct.unpack(self.u32, self.read(4, name))[0]
                if length == UNDEFINED:  # PS3.5 6.2.2: UN of undefined length holds Implicit VR LE items
                    self.implicit = True
                    try:
                        self.items(name, encapsulated=False)
                    finally:
                        self.implicit = False
                    return tag
            elif vr in LONG_VRS_BYTES:
                self.read(2, name)
                length = struct.unpack(self.u32, self.read(4, name))[0]
            else:
                length = struct.unpack(self.u16, self.read(2, name))[0]
        if tag == ITEM_END:
            return tag
        if length != UNDEFINED:
            self.skip(length, name)
            if top and tag == PIXEL_DATA:
                self.pixel = PixelInfo(length, None)
        elif tag == PIXEL_DATA:
            fragments = self.items(name, encapsulated=True)
            if top:
                self.pixel = PixelInfo(None, fragments)
        else:
            self.items(name, encapsulated=False)
        return tag

    def dataset(self, top: bool) -> None:
        """Walk elements until the end of file (top level) or an item delimiter (an undefined-length item)."""
        while not (top and self.fp.tell() >= self.size):
            if self.element(top) == ITEM_END and not top:
                return

    def items(self, name: str, encapsulated: bool) -> int:
        """Walk the items of an undefined-length sequence or encapsulated pixel data; return their count."""
        if self.depth >= MAX_DEPTH:
            raise Malformed(f"{name}: sequences nested deeper than {MAX_DEPTH} levels")
        self.depth += 1
        try:
            return self._items(name, encapsulated)
        finally:
            self.depth -= 1

    def _items(self, name: str, encapsulated: bool) -> int:
        count = 0
        while True:
            tag, _ = self.tag(f"an item of {name}")
            length = struct.unpack(self.u32, self.read(4, f"an item of {name}"))[0]
            if tag == SEQ_END:
                return count
            if tag != ITEM:
                raise Malformed(f"{name}: expected an item, found ({tag >> 16:04X},{tag & 0xFFFF:04X})")
            count += 1
            if length == UNDEFINED:
                if encapsulated:
                    raise Malformed(f"{name}: a fragment of undefined length")
                self.dataset(top=False)
            else:
                self.skip(length, f"an item of {name}")


def meta_end(fp: BinaryIO, size: int) -> int:
    """Offset of the first data set byte: after the group 0002 elements (always Explicit VR LE, PS3.10 7.1)."""
    fp.seek(132)
    walker = _Walker(fp, size, implicit=False, little=True)
    while fp.tell() < size:
        pos = fp.tell()
        if walker.tag("the File Meta Information")[0] >> 16 != 0x0002:
            break
        fp.seek(pos)
        walker.element(top=False)
    else:
        return fp.tell()
    fp.seek(pos)
    return pos


def walk_dataset(fp: BinaryIO, size: int, start: int, transfer_syntax: str) -> PixelInfo | None:
    """Walk the data set from ``start`` to the end of the file; Truncated when it does not fit, Malformed when its
    structure is broken (both Part10Error)."""
    ts = UID(transfer_syntax)
    fp.seek(start)
    walker = _Walker(fp, size, implicit=ts.is_implicit_VR, little=ts.is_little_endian)
    walker.dataset(top=True)
    return walker.pixel
