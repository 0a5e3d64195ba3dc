"""A well-formed DICOMDIR read without pydicom (PS3.10 8.6, PS3.3 F.3): the fast path of the media view.

Taken only when the DICOMDIR is Explicit VR Little Endian to its last byte, its text single values in ASCII,
ISO_IR 100 or ISO_IR 192 (no code extensions), and its record offsets link every record in use exactly once: the
case where the tolerant pydicom reader (``media/dicomdir.py``) finds nothing to report. Anything else returns
None and goes to that reader. Each record keeps few raw values and, shared between records of one shape, which
elements it holds and which of them are empty: what the validator's Type 1 checks need (flat memory at scale).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from dicommedia.media.findings import Finding
from dicommedia.part10 import Part10Error, read_file_meta
from dicommedia.part10.vr import ITEM, ITEM_END, LONG_VRS_BYTES, MAX_DEPTH, SEQ_END, UNDEFINED
from dicommedia.standard.dictionary import tag_of
from dicommedia.standard.file_id import split_file_id
from dicommedia.standard.uids import EXPLICIT_VR_LE

_UL = struct.Struct("<I")
_ELEMENT = struct.Struct("<HH2sH")  # Explicit VR element header: group, element, VR, 16-bit length (PS3.5 7.1.2)

# DICOMDIR elements the plain reader keeps (PS3.3 F.3.2.1/F.3.2.2, and the MediaFile keys): keyword -> tag.
_TAGS = {
    "FileSetID": 0x00041130,
    "FileSetConsistencyFlag": 0x00041212,
    "SpecificCharacterSet": 0x00080005,
    "OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity": 0x00041200,
    "OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity": 0x00041202,
    "OffsetOfTheNextDirectoryRecord": 0x00041400,
    "RecordInUseFlag": 0x00041410,
    "OffsetOfReferencedLowerLevelDirectoryEntity": 0x00041420,
    "DirectoryRecordType": 0x00041430,
    "ReferencedFileID": 0x00041500,
    "ReferencedSOPClassUIDInFile": 0x00041510,
    "ReferencedSOPInstanceUIDInFile": 0x00041511,
    "ReferencedTransferSyntaxUIDInFile": 0x00041512,
    "PatientID": 0x00100020,
    "PatientName": 0x00100010,
    "StudyInstanceUID": 0x0020000D,
    "StudyDate": 0x00080020,
    "StudyDescription": 0x00081030,
    "SeriesInstanceUID": 0x0020000E,
    "Modality": 0x00080060,
    "SeriesNumber": 0x00200011,
    "SeriesDescription": 0x0008103E,
}
_KEPT = set(_TAGS.values())
_BINARY = {_TAGS[k] for k in _TAGS if k.startswith("Offset") or k in ("RecordInUseFlag", "FileSetConsistencyFlag")}
_RECORD_SEQUENCE = 0x00041220
# Levels of the records that build the tree (PS3.3 F.4).
LEVELS = {"PATIENT": 0, "STUDY": 1, "SERIES": 2}
# VRs whose value is not text: empty only when of length zero (PS3.5 6.2).
_BINARY_VRS = frozenset(
    vr.encode()
    for vr in ("AT", "FD", "FL", "OB", "OD", "OF", "OL", "OV", "OW", "SL", "SS", "SV", "UL", "UN", "US", "UV")
)
# Specific Character Set (0008,0005) values read here, as Python codecs (PS3.3 C.12.1.1.2); no code extensions.
_CODECS = {"": "ascii", "ISO_IR 6": "ascii", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf_8"}
# The kept text that may hold characters beyond ASCII (PN, LO); the others are CS and UI values.
_NATIONAL = {_TAGS[k] for k in ("PatientName", "PatientID", "StudyDescription", "SeriesDescription")}


def active_in_tree_order(roots: list) -> list:
    """Records in tree order (depth first) whose In-use Flag is not cleared; children of inactive ones skipped.

    Iterative: a crafted DICOMDIR thousands of levels deep does not exhaust the stack.
    """
    out = []
    stack = list(reversed(roots))
    while stack:
        rec = stack.pop()
        if rec.in_use:
            out.append(rec)
            stack.extend(reversed(rec.children))
    return out


class NotPlain(Exception):
    """The DICOMDIR needs the tolerant pydicom reader: the reason (damage, encoding, non-ASCII text...)."""


def _number(raw: bytes) -> int:
    return int.from_bytes(raw[:4], "little") if raw else 0


class Shape:
    """Which elements a record holds: kept ones (whose values it stores, in this order), all, and the empty ones.

    One object for all the records of one shape: thousands of IMAGE records share a few.
    """

    __slots__ = ("empty", "kept", "present", "where")

    def __init__(self, kept: tuple[int, ...], present: tuple[int, ...], empty: tuple[int, ...]):
        self.kept, self.present, self.empty = kept, present, empty
        self.where = {tag: n for n, tag in enumerate(kept)}  # kept tag -> its index in a record's values


@dataclass(eq=False, slots=True)
class PlainRecord:
    """A directory record as the plain reader keeps it: the _TAGS values it holds, raw; the same API as ``Record``."""

    index: int
    offset: int
    shape: Shape
    values: tuple[bytes, ...]  # of shape.kept, in that order
    codec: str = "ascii"
    parent: PlainRecord | None = None
    children: list[PlainRecord] | tuple[()] = ()  # a list only under records that have a lower level

    def raw(self, tag: int) -> bytes | None:
        """The raw value of a kept element (None when the record does not hold it)."""
        index = self.shape.where.get(tag)
        return None if index is None else self.values[index]

    @property
    def record_type(self) -> str:
        """Directory Record Type (0004,1430), upper case ("" when absent)."""
        return (self.raw(_TAGS["DirectoryRecordType"]) or b"").decode("ascii").strip(" \0").upper()

    @property
    def in_use(self) -> bool:
        """False when Record In-use Flag (0004,1410) is 0x0000 (PS3.3 F.3.2.2)."""
        flag = self.raw(_TAGS["RecordInUseFlag"])
        return flag is None or int.from_bytes(flag[:2], "little") != 0

    @property
    def file_id(self) -> tuple[str, ...] | None:
        """Referenced File ID components, or None when the record references no file."""
        value = self.key("ReferencedFileID")
        return None if value is None else split_file_id(value)

    def key(self, keyword: str) -> str | None:
        """A text element's value (None when absent or empty)."""
        raw = self.raw(_TAGS[keyword])
        return (raw.decode(self.codec).strip(" \0").strip() or None) if raw else None

    def has(self, keyword: str) -> bool:
        """True when the record holds the element, empty or not."""
        return tag_of(keyword) in self.shape.present

    def is_empty(self, keyword: str) -> bool:
        """True when the element is absent or has no value."""
        tag = tag_of(keyword)
        return tag not in self.shape.present or tag in self.shape.empty

    def describe(self) -> str:
        """How messages name this record (as ``Record.describe``)."""
        return f"{self.record_type or 'untyped'} record #{self.index + 1} at offset {self.offset}"


@dataclass
class PlainDirectory:
    """A DICOMDIR read without pydicom: what the view needs of a ``Directory``, with no findings by construction."""

    fileset_id: str | None
    records: list[PlainRecord]
    roots: list[PlainRecord]
    sop_class: str | None = None
    header_present: tuple[int, ...] = ()
    consistency_flag: int | None = 0
    transfer_syntax: str = EXPLICIT_VR_LE
    findings: list[Finding] = field(default_factory=list)
    followed_offsets: bool = True

    def active_records(self) -> list[PlainRecord]:
        """Records in tree order (depth first) whose In-use Flag is not cleared; children of inactive ones skipped."""
        return active_in_tree_order(self.roots)

    def has_header(self, keyword: str) -> bool:
        """True when the DICOMDIR's data set (not a record) holds the element."""
        return tag_of(keyword) in self.header_present


class _Item:
    """What the walk keeps of one data set: the _KEPT values, the tags present, the tags without a value."""

    __slots__ = ("empty", "present", "values")

    def __init__(self) -> None:
        self.values: dict[int, bytes] = {}
        self.present: list[int] = []
        self.empty: list[int] = []


# Kept values unique to a record; every other kept value is stored once for all the records that carry it.
_UNIQUE = {_TAGS["ReferencedFileID"], _TAGS["ReferencedSOPInstanceUIDInFile"]}
_NEXT, _LOWER = _TAGS["OffsetOfTheNextDirectoryRecord"], _TAGS["OffsetOfReferencedLowerLevelDirectoryEntity"]


class _PlainWalk:
    """Explicit VR Little Endian elements of a DICOMDIR (PS3.10 8.6 mandates that encoding), bounds checked.

    Each item of the Directory Record Sequence becomes a compact PlainRecord as soon as it is walked.
    """

    def __init__(self, data: bytes):
        self.data = data
        self.records: list[PlainRecord] = []  # the items of (0004,1220), codec "" when they name no character set
        self.links: list[tuple[int, int]] = []  # (next, lower-level) offsets of each record: for linking only
        self.depth = 0  # sequences open around the current element (bounded: no deep recursion)
        self._shared: dict = {}  # one object per distinct shared value
        self._shapes: dict[tuple, Shape] = {}  # one per distinct (kept, present, empty)

    def header(self, pos: int) -> tuple[int, bytes, int, int]:
        """(tag, VR, value start, value length) of the element at ``pos``."""
        data = self.data
        if pos + 8 > len(data):
            raise NotPlain("the file ends inside an element header")
        group, element, vr, short = _ELEMENT.unpack_from(data, pos)
        if group == 0xFFFE:  # item and delimiters carry no VR (PS3.5 7.5)
            return group << 16 | element, b"", pos + 8, _UL.unpack_from(data, pos + 4)[0]
        if vr in LONG_VRS_BYTES:
            return group << 16 | element, vr, pos + 12, _UL.unpack_from(data, pos + 8)[0]
        if not vr.isalpha() or not vr.isupper():
            raise NotPlain(f"no explicit VR at byte {pos}")
        return group << 16 | element, vr, pos + 8, short

    def elements(self, pos: int, end: int | None, item: _Item | None, top: bool = False) -> int:
        """Walk elements from ``pos`` to ``end`` (or to an item delimiter when None); note them in ``item``.

        ``top``: the data set itself, whose Directory Record Sequence items become ``records``.
        """
        data = self.data
        size = len(data)
        limit = size if end is None else end
        bound = min(limit, size)  # an item's declared end may itself lie past the file's end
        unpack = _ELEMENT.unpack_from
        present, empty, values = (item.present, item.empty, item.values) if item is not None else (None, None, None)
        while pos < limit:
            if pos + 8 > size:
                raise NotPlain("the file ends inside an element header")
            group, element, vr, length = unpack(data, pos)  # the common case inline: one call per element
            if group == 0xFFFE or vr in LONG_VRS_BYTES:
                tag, vr, start, length = self.header(pos)
            else:
                tag, start = group << 16 | element, pos + 8
                if not vr.isalpha() or not vr.isupper():
                    raise NotPlain(f"no explicit VR at byte {pos}")
            if tag == ITEM_END and end is None:
                return start
            if tag >> 16 == 0xFFFE:
                raise NotPlain(f"unexpected delimiter at byte {pos}")
            if vr == b"SQ":
                pos = self.sequence(start, length, top and tag == _RECORD_SEQUENCE and not self.records)
                if present is not None:
                    present.append(tag)
                    if pos == start + (8 if length == UNDEFINED else 0):  # no item (PS3.5 7.5.1)
                        empty.append(tag)
                continue
            if length == UNDEFINED:
                raise NotPlain(f"undefined length outside a sequence at byte {pos}")
            pos = start + length
            if pos > bound:
                raise NotPlain(f"element at byte {start - 8} runs past its end")
            if present is not None:
                present.append(tag)
                if not length or (
                    vr not in _BINARY_VRS and data[start] in b" \0" and not data[start:pos].strip(b" \0")
                ):
                    empty.append(tag)
                if tag in _KEPT:
                    values[tag] = data[start:pos]
        if end is None:
            raise NotPlain("an item of undefined length has no delimiter")
        if pos != end:
            raise NotPlain("an element runs past its item")
        return pos

    def sequence(self, start: int, length: int, records: bool) -> int:
        """Walk a sequence's items; with ``records``, each item becomes a record."""
        if self.depth >= MAX_DEPTH:
            raise NotPlain(f"sequences nested deeper than {MAX_DEPTH} levels")
        self.depth += 1
        try:
            return self._items(start, length, records)
        finally:
            self.depth -= 1

    def _items(self, start: int, length: int, records: bool) -> int:
        end = None if length == UNDEFINED else start + length
        pos = start
        while end is None or pos < end:
            tag, _, body, item_length = self.header(pos)
            if tag == SEQ_END and end is None:
                return body
            if tag != ITEM:
                raise NotPlain(f"no item tag at byte {pos}")
            item = _Item() if records else None
            item_end = None if item_length == UNDEFINED else body + item_length
            after = self.elements(body, item_end, item)
            if item is not None:
                self._add_record(pos, item)
            pos = after
        if pos != end:
            raise NotPlain("an item runs past its sequence")
        return pos

    def _add_record(self, offset: int, item: _Item) -> None:
        """The record of one item: offsets apart for linking, values shared where records repeat them."""
        values = item.values
        self.links.append((_number(values.pop(_NEXT, b"")), _number(values.pop(_LOWER, b""))))
        share = self._shared.setdefault
        kept = tuple(values)
        layout = (kept, tuple(item.present), tuple(item.empty))
        shape = self._shapes.get(layout)
        if shape is None:
            shape = self._shapes[layout] = Shape(*(share(t, t) for t in layout))
        stored = tuple([value if tag in _UNIQUE else share(value, value) for tag, value in values.items()])
        codec = _codec(values, "")
        self.records.append(PlainRecord(len(self.records), offset, shape, stored, codec))


def _codec(values: dict[int, bytes], inherited: str) -> str:
    """The codec of a data set's text: its Specific Character Set, else the one around it (PS3.5 6.1.2.5)."""
    raw = values.get(_TAGS["SpecificCharacterSet"])
    if raw is None:
        return inherited
    codec = _CODECS.get(raw.decode("ascii").strip(" \0"))
    if codec is None:
        raise NotPlain("a character set other than ASCII, ISO_IR 100 or ISO_IR 192, or code extensions")
    return codec


def _check_text(values: Iterable[tuple[int, bytes]], codec: str) -> None:
    """Text values must decode in ``codec``, with no code extension escapes and a single value."""
    for tag, value in values:
        if tag in _BINARY:
            continue
        if b"\x1b" in value or b"\x7f" in value or (b"\\" in value and tag != _TAGS["ReferencedFileID"]):
            raise NotPlain("text with code extensions, or multi-valued")
        if not value.isascii():
            if tag not in _NATIONAL:
                raise NotPlain("a code string or UID that is not ASCII")
            value.decode(codec)  # UnicodeDecodeError: not in that character set


def read_plain_dicomdir(data: bytes) -> PlainDirectory | None:
    """A well-formed DICOMDIR read without pydicom, or None when it needs the tolerant reader.

    Taken only when it is Explicit VR Little Endian to its last byte, its text single values in a character set
    of _CODECS, and its record offsets (PS3.3 F.3.2.1) link every record in use exactly once: the case where the
    tolerant reader finds nothing to report. Anything else (damage, other encodings, character sets) goes to
    pydicom.
    """
    try:
        meta, pos = read_file_meta(data)
        if meta.get("TransferSyntaxUID") != EXPLICIT_VR_LE:
            return None
        walk = _PlainWalk(data)
        header = _Item()
        walk.elements(pos, len(data), header, top=True)
        records = walk.records
        if not records:
            return None
        values = header.values
        codec = _codec(values, "ascii")
        _check_text(values.items(), codec)
        for rec in records:
            rec.codec = rec.codec or codec
            _check_text(zip(rec.shape.kept, rec.values), rec.codec)
    except (NotPlain, Part10Error, struct.error, UnicodeDecodeError):
        return None
    first = _number(values.get(_TAGS["OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity"], b""))
    roots = _link_plain(records, walk.links, first)
    if roots is None:
        return None
    last = _number(values.get(_TAGS["OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity"], b""))
    if last and roots and last != roots[-1].offset:
        return None
    fileset = values.get(_TAGS["FileSetID"], b"").decode("ascii").strip(" \0") or None
    flag = values.get(_TAGS["FileSetConsistencyFlag"])
    return PlainDirectory(
        fileset,
        records,
        roots,
        sop_class=meta.get("MediaStorageSOPClassUID"),
        header_present=tuple(header.present),
        consistency_flag=0 if flag is None else int.from_bytes(flag[:2], "little") if flag else None,
    )


def _link_plain(records: list[PlainRecord], links: list[tuple[int, int]], first: int) -> list[PlainRecord] | None:
    """The record tree by offsets; None when an offset misses, loops, or leaves a record in use unreachable.

    ``links``: the (next, lower-level) offsets of each record. Iterative (a work list of entities), in the order
    PS3.3 F.3 reads them: no recursion to exhaust.
    """
    by_offset = {rec.offset: rec for rec in records}
    seen: set[int] = set()
    roots: list[PlainRecord] = []
    pending: list[tuple[int, PlainRecord | None, list[PlainRecord]]] = [(first, None, roots)]
    while pending:
        offset, parent, out = pending.pop()
        lowers = []
        while offset:
            rec = by_offset.get(offset)
            if rec is None or rec.index in seen:
                return None
            seen.add(rec.index)
            rec.parent = parent
            out.append(rec)
            offset, lower = links[rec.index]
            if lower:
                rec.children = []
                lowers.append((lower, rec, rec.children))
        pending.extend(reversed(lowers))
    if any(rec.index not in seen and rec.in_use for rec in records):
        return None
    return roots
