"""Where the top-level elements of a data set held in memory are, for rewriting some of them in place.

Explicit or Implicit VR Little Endian (PS3.5 7.1), undefined lengths followed through nested sequences and items
(the content of an undefined-length UN is Implicit VR, PS3.5 6.2.2), nesting bounded. Used on the send path for
every instance: one struct unpack per element, a plain tuple per element, no pydicom.
"""

from __future__ import annotations

import struct

from dicommedia.part10.encode import pad
from dicommedia.part10.errors import Malformed
from dicommedia.part10.vr import ITEM, ITEM_END, LONG_VRS_BYTES, MAX_DEPTH, SEQ_END, UNDEFINED

_TAG = struct.Struct("<HH")
_EXPLICIT = struct.Struct("<HH2sH")  # group, element, VR, 16-bit length (PS3.5 7.1.2)
_IMPLICIT = struct.Struct("<HHI")  # group, element, 32-bit length (PS3.5 7.1.3)
_UL = struct.Struct("<I")


class NeedMore(Exception):
    """The bytes given end before the walk could finish: read more of the data set."""


# A top-level element: (tag, VR or None in Implicit VR, start, value start, end) — a plain tuple, made per element
Element = tuple[int, bytes | None, int, int, int]


def value_of(element: Element, data: bytes | memoryview) -> bytes:
    """The raw value bytes of an element."""
    return bytes(data[element[3] : element[4]])


def _header(data: bytes | memoryview, pos: int, explicit: bool) -> tuple[int, bytes | None, int, int]:
    """Tag, VR, value length and value offset of the element at ``pos`` (PS3.5 7.1)."""
    if pos + 8 > len(data):
        raise NeedMore
    group, element = _TAG.unpack_from(data, pos)
    tag = group << 16 | element
    if tag in (ITEM, ITEM_END, SEQ_END) or not explicit:
        return tag, None, _UL.unpack_from(data, pos + 4)[0], pos + 8
    vr = bytes(data[pos + 4 : pos + 6])
    if vr in LONG_VRS_BYTES:
        if pos + 12 > len(data):
            raise NeedMore
        return tag, vr, _UL.unpack_from(data, pos + 8)[0], pos + 12
    return tag, vr, struct.unpack_from("<H", data, pos + 6)[0], pos + 8


def _skip_undefined(data: bytes | memoryview, pos: int, explicit: bool) -> int:
    """The end of an undefined-length sequence whose content starts at ``pos`` (PS3.5 7.5.2)."""
    stack = [explicit]  # per open sequence or item: Explicit VR or not (UN content is Implicit, PS3.5 6.2.2)
    while stack:
        tag, vr, length, value = _header(data, pos, stack[-1])
        if tag in (ITEM_END, SEQ_END):
            stack.pop()
            pos = value
        elif length == UNDEFINED:
            if len(stack) >= MAX_DEPTH:
                raise Malformed(f"sequences nested deeper than {MAX_DEPTH} levels")
            stack.append(stack[-1] and vr != b"UN")
            pos = value
        else:
            pos = value + length
        if pos > len(data):
            raise NeedMore
    return pos


def walk(data: bytes | memoryview, explicit: bool, past: int) -> tuple[list[Element], int]:
    """The top-level elements up to ``past`` (inclusive), and where the first element after it starts.

    Raises :class:`NeedMore` when ``data`` ends before that point (and before the data set's end is known).
    The send path runs this for every instance: one struct unpack per element, no per-element call.
    """
    elements = []
    pos, size = 0, len(data)
    unpack_explicit, unpack_implicit, unpack_ul = _EXPLICIT.unpack_from, _IMPLICIT.unpack_from, _UL.unpack_from
    while pos < size:
        if pos + 8 > size:
            raise NeedMore
        if explicit:
            group, number, vr, length = unpack_explicit(data, pos)
            value = pos + 8
            if vr in LONG_VRS_BYTES:
                if pos + 12 > size:
                    raise NeedMore
                (length,), value = unpack_ul(data, value), pos + 12
        else:
            (group, number, length), vr, value = unpack_implicit(data, pos), None, pos + 8
        tag = group << 16 | number
        if tag > past:
            return elements, pos
        if group == 0xFFFE:
            raise Malformed(f"a delimiter (FFFE,{number:04X}) at the top level of the data set")
        end = _skip_undefined(data, value, explicit and vr != b"UN") if length == UNDEFINED else value + length
        if end > size:
            raise NeedMore
        elements.append((tag, vr, pos, value, end))
        pos = end
    return elements, pos


def encode_element(tag: int, vr: str, value: bytes, explicit: bool) -> bytes:
    """One element in Explicit or Implicit VR Little Endian, its value padded to even length (PS3.5 7.1)."""
    value = pad(vr, value)
    group, element = tag >> 16, tag & 0xFFFF
    if not explicit:
        return _TAG.pack(group, element) + _UL.pack(len(value)) + value
    if vr.encode() in LONG_VRS_BYTES:
        return _TAG.pack(group, element) + vr.encode() + b"\0\0" + _UL.pack(len(value)) + value
    if len(value) > 0xFFFF:
        raise ValueError(f"({group:04X},{element:04X}) {vr} value of {len(value)} bytes is too long for its VR")
    return _TAG.pack(group, element) + vr.encode() + struct.pack("<H", len(value)) + value
