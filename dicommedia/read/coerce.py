"""Attribute coercion in the bytes of a data set, keeping the values it replaces (PS3.3 C.12.1).

The send path rewrites only the head of a data set: its top-level elements are walked up to the first one past
the last tag to change, the changed elements are re-encoded, an item recording the values they held is added to
the Original Attributes Sequence (0400,0561), and the rest of the data set (pixel data) goes out untouched. No
pydicom: a 512 KiB slice costs a walk of its ~2 KB header and one small join.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from operator import itemgetter

from dicommedia.part10.errors import Part10Error
from dicommedia.part10.positions import Element, encode_element, value_of, walk
from dicommedia.part10.vr import UNDEFINED

ORIGINAL_ATTRIBUTES = 0x04000561
MODIFIED_ATTRIBUTES = 0x04000550
MODIFICATION_DATETIME = 0x04000562
MODIFYING_SYSTEM = 0x04000563
SOURCE_OF_PREVIOUS_VALUES = 0x04000564
MODIFICATION_REASON = 0x04000565
SPECIFIC_CHARACTER_SET = 0x00080005

_TAG = struct.Struct("<HH")
_TAG_OF = itemgetter(0)  # of a walked Element
_UL = struct.Struct("<I")
_TEXT_ENCODINGS = {None: "ascii", "ISO_IR 6": "ascii", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}


_MAX_ENCODED = 1024  # distinct stored values remembered per coercion


class CoercionError(ValueError):
    """The data set cannot be rewritten: why, in words."""


def _item(body: bytes) -> bytes:
    return _TAG.pack(0xFFFE, 0xE000) + _UL.pack(len(body)) + body


@dataclass(frozen=True)
class Coercion:
    """The local values to write (tag -> (VR, text)) and how to record the change."""

    values: Mapping[int, tuple[str, str]]
    modified_at: str  # DT of the modification (the import's start)
    modifying_system: str
    source: str = ""  # Source of Previous Values (0400,0564): who issued the outside values, when known
    # The encoded new elements by (encoding, the stored elements they replace): a series shares one entry
    _encoded: dict[tuple, dict[int, bytes]] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def last_tag(self) -> int:
        """The highest tag the rewrite touches."""
        return max([ORIGINAL_ATTRIBUTES, *self.values])

    @cached_property
    def reads(self) -> frozenset[int]:
        """The elements whose stored values decide the rewrite."""
        return frozenset({SPECIFIC_CHARACTER_SET, ORIGINAL_ATTRIBUTES, *self.values})

    @cached_property
    def wanted(self) -> frozenset[int]:
        """:attr:`reads`, and the Group Length (PS3.5 7.2) of each of their groups."""
        return self.reads | {tag & 0xFFFF0000 for tag in self.reads}


def _charset(elements: dict[int, Element], data: bytes | memoryview) -> str | None:
    el = elements.get(SPECIFIC_CHARACTER_SET)
    text = value_of(el, data).decode("ascii", "replace").strip(" \0") if el else ""
    return text or None


def _encode_text(value: str, charset: str | None) -> tuple[bytes, str | None]:
    """The value in the data set's character set, and the Specific Character Set to write when it must change."""
    if value.isascii():
        return value.encode("ascii"), None
    codec = _TEXT_ENCODINGS.get(charset)
    if charset in (None, "ISO_IR 6"):
        return value.encode("utf-8"), "ISO_IR 192"  # the default repertoire is a subset of UTF-8 (PS3.5 6.1.2.1)
    if codec is None:
        raise CoercionError(f"cannot write {value!r} in the data set's character set {charset}")
    try:
        return value.encode(codec), None
    except UnicodeEncodeError:
        raise CoercionError(f"{value!r} cannot be written in the data set's character set {charset}") from None


def coerce_head(
    head: bytes | memoryview, explicit: bool, coercion: Coercion, walked: tuple[list[Element], int] | None = None
) -> tuple[bytes, int] | None:
    """The rewritten head of a data set and how many bytes of the original it replaces; None: nothing changes.

    ``head`` is the start of the data set (Explicit or Implicit VR Little Endian); :class:`NeedMore` when it
    ends before the last element to change. ``walked``: the elements and cut of a walk at least that far, when
    the caller has walked already. Each changed or added element is recorded, as it was (added ones
    empty), in a new Original Attributes Sequence item (PS3.3 C.12.1.1.9), Reason COERCE; existing items stay.
    """
    try:
        listed, cut = walked or walk(head, explicit, coercion.last_tag)
    except Part10Error as exc:
        raise CoercionError(str(exc)) from None
    wanted, reads = coercion.wanted, coercion.reads
    elements = {el[0]: el for el in listed if el[0] in wanted}
    key = (explicit, *[bytes(head[el[2] : el[4]]) for tag, el in elements.items() if tag in reads])
    new = coercion._encoded.get(key)
    if new is None:
        new = _encode_changes(head, explicit, coercion, elements)
        if len(coercion._encoded) < _MAX_ENCODED:
            coercion._encoded[key] = new
    if not new:
        return None
    # Edits as (start, end, bytes): a replaced element, an inserted one (before the first larger tag), or a retired
    # Group Length (PS3.5 7.2) of a group we change, which would now be wrong and is dropped.
    edits = []
    for tag, encoded in new.items():
        old = elements.get(tag)
        if old is not None:
            edits.append((old[2], old[4], tag, encoded))
        else:
            at = bisect.bisect_right(listed, tag, key=_TAG_OF)
            start = listed[at][2] if at < len(listed) else cut
            edits.append((start, start, tag, encoded))
    touched = {tag >> 16 for tag in new}
    edits += [(el[2], el[4], tag, b"") for tag, el in elements.items() if not tag & 0xFFFF and tag >> 16 in touched]
    parts = []
    pos = 0
    for start, end, _, encoded in sorted(edits):
        parts += (head[pos:start], encoded)
        pos = end
    parts.append(head[pos:cut])
    return b"".join(parts), cut


def _encode_changes(
    head: bytes | memoryview, explicit: bool, coercion: Coercion, elements: dict[int, Element]
) -> dict[int, bytes]:
    """The changed and added elements, encoded, with the Original Attributes Sequence that records them."""
    charset = _charset(elements, head)
    new: dict[int, bytes] = {}
    originals: dict[int, bytes] = {}
    for tag, (vr, text) in sorted(coercion.values.items()):
        value, new_charset = _encode_text(text, charset)
        old = elements.get(tag)
        if old is not None and value_of(old, head).rstrip(b" \0") == value:
            continue
        if new_charset and SPECIFIC_CHARACTER_SET not in new:
            new[SPECIFIC_CHARACTER_SET] = encode_element(SPECIFIC_CHARACTER_SET, "CS", new_charset.encode(), explicit)
            originals[SPECIFIC_CHARACTER_SET] = _original(elements, SPECIFIC_CHARACTER_SET, "CS", head, explicit)
        new[tag] = encode_element(tag, vr, value, explicit)
        originals[tag] = _original(elements, tag, vr, head, explicit)
    if not new:
        return new
    record = _item(
        encode_element(MODIFIED_ATTRIBUTES, "SQ", _item(b"".join(originals[t] for t in sorted(originals))), explicit)
        + encode_element(MODIFICATION_DATETIME, "DT", coercion.modified_at.encode(), explicit)
        + encode_element(MODIFYING_SYSTEM, "LO", coercion.modifying_system.encode("ascii", "replace"), explicit)
        + encode_element(SOURCE_OF_PREVIOUS_VALUES, "LO", coercion.source.encode("ascii", "replace"), explicit)
        + encode_element(MODIFICATION_REASON, "CS", b"COERCE", explicit)
    )
    new[ORIGINAL_ATTRIBUTES] = _extend_sequence(elements.get(ORIGINAL_ATTRIBUTES), head, record, explicit)
    return new


def _original(elements: dict[int, Element], tag: int, vr: str, head: bytes | memoryview, explicit: bool) -> bytes:
    """The element as the data set had it, or empty when it was absent (so the addition is recorded)."""
    old = elements.get(tag)
    return bytes(head[old[2] : old[4]]) if old is not None else encode_element(tag, vr, b"", explicit)


def _extend_sequence(old: Element | None, head: bytes | memoryview, item: bytes, explicit: bool) -> bytes:
    """The Original Attributes Sequence with ``item`` appended to the items it already has."""
    if old is None:
        return encode_element(ORIGINAL_ATTRIBUTES, "SQ", item, explicit)
    raw = bytes(head[old[2] : old[4]])
    value_offset = old[3] - old[2]
    (length,) = _UL.unpack_from(raw, value_offset - 4)
    if length == UNDEFINED:  # items, then the Sequence Delimitation Item: the new item goes before it
        return raw[:-8] + item + raw[-8:]
    return raw[: value_offset - 4] + _UL.pack(length + len(item)) + raw[value_offset:] + item
