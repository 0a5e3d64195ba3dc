"""Tolerant reading of a DICOMDIR (PS3.10 8.5, PS3.3 F.3): follow the offsets, fall back to sequence order.

The records are linked by byte offsets from the first byte of the file (PS3.3 F.3.2.1): the root
directory entity starts at (0004,1200); each record points to its next sibling (0004,1400) and to the
first record of its lower-level entity (0004,1420). Zero means "none".
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.sequence import Sequence

from dicommedia.errors import one_line
from dicommedia.media.findings import Finding
from dicommedia.media.plain_dicomdir import LEVELS, active_in_tree_order
from dicommedia.part10 import Part10Error
from dicommedia.part10.meta import without_stray_meta
from dicommedia.part10.structure import meta_end, walk_dataset
from dicommedia.profile import EXPLICIT_VR_LE
from dicommedia.standard.file_id import split_file_id

# What pydicom raises on damaged input (struct.error escapes it on a truncated element header; RecursionError on
# sequences nested thousands deep; MemoryError on a length it tries to allocate under a memory limit).
READ_ERRORS = (
    RecursionError,
    MemoryError,
    InvalidDicomError,
    BytesLengthException,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
    NotImplementedError,
    OverflowError,
    struct.error,
)
INACTIVE = 0x0000


@dataclass(eq=False)
class Record:
    """One directory record: its values by keyword, where it sits in the file, and its place in the tree."""

    index: int
    offset: int | None
    ds: dict[str | int, Any]
    parent: Record | None = None
    children: list[Record] = field(default_factory=list)

    @property
    def record_type(self) -> str:
        """Directory Record Type (0004,1430), upper case ("" when absent)."""
        return str(self.ds.get("DirectoryRecordType", "") or "").strip().upper()

    @property
    def in_use(self) -> bool:
        """False when Record In-use Flag (0004,1410) says the record is inactive (PS3.3 F.3.2.2)."""
        return self.ds.get("RecordInUseFlag", 0xFFFF) != INACTIVE

    @property
    def file_id(self) -> tuple[str, ...] | None:
        """Referenced File ID components, or None when the record references no file."""
        value = self.ds.get("ReferencedFileID")
        if value is None or value == "" or value == []:
            return None
        return split_file_id(value)

    def key(self, keyword: str) -> str | None:
        """A key's value as text (None when absent or empty)."""
        value = self.ds.get(keyword)
        if value is None or value == "":
            return None
        return str(value).strip() or None

    def has(self, keyword: str) -> bool:
        """True when the record holds the element, empty or not."""
        return keyword in self.ds

    def is_empty(self, keyword: str) -> bool:
        """True when the element is absent or has no value (an empty string, no values, a sequence with no item)."""
        value = self.ds.get(keyword)
        if value is None:
            return True
        if hasattr(value, "__len__"):
            return len(value) == 0 or not str(value).strip()
        return False

    def describe(self) -> str:
        """How messages name this record."""
        where = f" at offset {self.offset}" if self.offset is not None else ""
        return f"{self.record_type or 'untyped'} record #{self.index + 1}{where}"


@dataclass
class Directory:
    """A parsed DICOMDIR: header, records in sequence order, the tree, and what was wrong with the links."""

    dataset: FileDataset
    records: list[Record]
    roots: list[Record]
    findings: list[Finding]
    followed_offsets: bool

    @property
    def fileset_id(self) -> str | None:
        """File-set ID (0004,1130), or None when absent or empty."""
        value = str(self.dataset.get("FileSetID", "") or "").strip()
        return value or None

    @property
    def transfer_syntax(self) -> str | None:
        """Transfer syntax the DICOMDIR was written in."""
        meta = getattr(self.dataset, "file_meta", None)
        return str(meta.TransferSyntaxUID) if meta is not None and "TransferSyntaxUID" in meta else None

    @property
    def sop_class(self) -> str | None:
        """Media Storage SOP Class UID of the File Meta Information."""
        meta = getattr(self.dataset, "file_meta", None)
        return meta.get("MediaStorageSOPClassUID") if meta is not None else None

    @property
    def consistency_flag(self) -> int | None:
        """File-set Consistency Flag (0004,1212): 0 when absent, None when empty."""
        return self.dataset.get("FileSetConsistencyFlag", 0)

    def has_header(self, keyword: str) -> bool:
        """True when the DICOMDIR's data set (not a record) holds the element."""
        return keyword in self.dataset

    def active_records(self) -> list[Record]:
        """Records in tree order (depth first) whose In-use Flag is not cleared; children of inactive ones skipped."""
        return active_in_tree_order(self.roots)


def read_checked(fp: BinaryIO, mend: bool = True, **kwargs) -> FileDataset:
    """``dcmread`` that converts every value now, so damage raises here (one of READ_ERRORS), not at first use;
    File Meta elements a data set repeats are not taken for the File Meta (see ``part10.meta.walk_file_meta``)
    unless ``mend`` is False (the caller has looked for them already)."""
    ds = dcmread((without_stray_meta(fp) if mend else None) or fp, **kwargs)
    ds.file_meta.walk(lambda _ds, _elem: None)
    ds.walk(lambda _ds, _elem: None)
    return ds


class DicomdirError(Exception):
    """The DICOMDIR cannot be parsed at all."""


def read_dicomdir(fp: BinaryIO, label: str) -> Directory:
    """Parse a DICOMDIR from an open binary file; raise DicomdirError when it cannot be parsed.

    The file is read once into memory (its size is bounded by the media): no length inside it allocates more.
    """
    data = io.BytesIO(fp.read())
    try:
        ds = read_checked(data)
        seq = ds.get("DirectoryRecordSequence")
    except READ_ERRORS as exc:
        raise DicomdirError(f"cannot be parsed: {one_line(exc)}") from None
    if seq is None:
        raise DicomdirError("has no Directory Record Sequence (0004,1220): not a DICOMDIR")
    if not isinstance(seq, Sequence) or not all(isinstance(item, Dataset) for item in seq):
        raise DicomdirError("its Directory Record Sequence (0004,1220) is not a sequence of items")
    _check_structure(data, str(ds.file_meta.get("TransferSyntaxUID", EXPLICIT_VR_LE)))
    records = [Record(i, getattr(item, "seq_item_tell", None), _values(item)) for i, item in enumerate(seq)]
    # Only the values stay: pydicom's element objects of every record would grow with the disc (flat memory).
    ds.DirectoryRecordSequence = Sequence()
    findings: list[Finding] = []
    roots = _tree_from_offsets(ds, records, findings, label)
    followed = roots is not None
    if roots is None:
        for rec in records:
            rec.parent, rec.children = None, []
        roots = _tree_from_sequence(records)
    return Directory(ds, records, roots, findings, followed)


def _values(item: Dataset) -> dict[str | int, Any]:
    """A record's values by keyword (by tag for elements without one)."""
    return {elem.keyword or elem.tag: elem.value for elem in item}


def _check_structure(fp: BinaryIO, transfer_syntax: str) -> None:
    """pydicom stops quietly at a truncated DICOMDIR: walk its elements to the end to be sure."""
    size = fp.seek(0, 2)
    try:
        walk_dataset(fp, size, meta_end(fp, size), transfer_syntax)
    except Part10Error as exc:
        raise DicomdirError(f"is truncated or has bad lengths: {exc}") from None
    except ValueError:  # not a transfer syntax pydicom knows: nothing to walk with
        pass


def _offset(ds: Dataset, keyword: str) -> int:
    value = ds.get(keyword, 0)
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return -1


def _tree_from_offsets(ds: Dataset, records: list[Record], findings: list[Finding], label: str) -> list[Record] | None:
    """Link the records by their offsets; None (with bad-offset findings) when the links are broken.

    Iterative (a work list of entities to link), each record linked once: loops and deep chains are findings.
    """
    by_offset = {rec.offset: rec for rec in records if rec.offset is not None}
    seen: set[int] = set()
    broken = False
    roots: list[Record] = []
    # (first offset of an entity, its parent record, how messages name the link, where its records go)
    pending: list[tuple[int, Record | None, str, list[Record]]] = [
        (_offset(ds, "OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity"), None, "root directory entity", roots)
    ]
    while pending:
        offset, parent, what, out = pending.pop()
        lowers: list[tuple[int, Record | None, str, list[Record]]] = []
        while offset:
            rec = by_offset.get(offset)
            if rec is None:
                broken = True
                findings.append(
                    Finding("bad-offset", f"{what}: offset {offset} does not land on a directory record", label)
                )
                break
            if rec.index in seen:
                broken = True
                findings.append(Finding("bad-offset", f"{what}: offset {offset} loops back to {rec.describe()}", label))
                break
            seen.add(rec.index)
            rec.parent = parent
            out.append(rec)
            lower = _offset(rec.ds, "OffsetOfReferencedLowerLevelDirectoryEntity")
            rec.children = []
            if lower:
                lowers.append((lower, rec, f"lower level of {rec.describe()}", rec.children))
            what = f"next record after {rec.describe()}"
            offset = _offset(rec.ds, "OffsetOfTheNextDirectoryRecord")
        pending.extend(reversed(lowers))  # the first record's lower level is linked first, as PS3.3 F.3 reads
    if roots:
        last = _offset(ds, "OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity")
        if last and last != roots[-1].offset:
            findings.append(
                Finding(
                    "bad-offset", f"last root record offset {last} is not the last record of the root entity", label
                )
            )
    unreachable = [rec for rec in records if rec.index not in seen and rec.in_use]
    for rec in unreachable:
        broken = True
        findings.append(Finding("bad-offset", f"{rec.describe()} is not reachable through the offsets", label))
    return None if broken else roots


def _tree_from_sequence(records: list[Record]) -> list[Record]:
    """Rebuild the hierarchy from sequence order: each record hangs under the last record one level up."""
    roots: list[Record] = []
    current: dict[int, Record] = {}
    for rec in records:
        level = LEVELS.get(rec.record_type, 3)
        parent = next((current[lv] for lv in range(level - 1, -1, -1) if lv in current), None)
        if parent is None:
            roots.append(rec)
        else:
            rec.parent = parent
            parent.children.append(rec)
        current[level] = rec
        for deeper in [lv for lv in current if lv > level]:
            del current[deeper]
    return roots
