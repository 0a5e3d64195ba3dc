"""The DICOMDIR writer (PS3.10 8.6, PS3.3 Annex F): records built from the plan, offsets from the real encoding.

Record keys are the files' own encoded values, copied byte for byte (character sets and ISO 2022 escapes
included); invented keys are the values written into the files.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from dicommedia.part10.encode import element, encode_raw, raw_of
from dicommedia.part10.header import RawValue
from dicommedia.plan.hierarchy import Plan, PlannedInstance, file_id
from dicommedia.standard.dictionary import TAGS
from dicommedia.standard.identity import new_uid
from dicommedia.standard.records import record_type_keys
from dicommedia.standard.uids import EXPLICIT_VR_LE, MEDIA_STORAGE_DIRECTORY
from dicommedia.writers.part10 import encode_header

_ITEM = b"\xfe\xff\x00\xe0"
_TEXT_VRS = {"PN", "LO", "SH", "ST", "LT", "UT", "UC"}
# Byte positions of the two offsets inside every encoded record: (0004,1400) UL comes first, then
# (0004,1410) US, then (0004,1420) UL — the lowest tags of a record, so always at the start.
_NEXT_AT, _LOWER_AT = 8, 30


def _has_value(raw: RawValue | None) -> bool:
    if raw is None:
        return False
    return bool(raw.value) if raw.vr == "SQ" else bool(raw.value.strip(b" \x00"))


def _record(record_type: str, source: PlannedInstance) -> dict[int, RawValue]:
    """The elements of a ``record_type`` record, keys (PS3.3 F.5) from ``source`` as it will be written."""
    elements = {
        TAGS["OffsetOfTheNextDirectoryRecord"][0]: raw_of("UL", 0),
        TAGS["RecordInUseFlag"][0]: raw_of("US", 0xFFFF),
        TAGS["OffsetOfReferencedLowerLevelDirectoryEntity"][0]: raw_of("UL", 0),
        TAGS["DirectoryRecordType"][0]: raw_of("CS", record_type),
    }
    keys_of = record_type if record_type in ("PATIENT", "STUDY", "SERIES") else source.record_type
    needs_charset = False
    for key in record_type_keys(keys_of):
        tag, vr = TAGS[key.keyword]
        raw = source.raw_key(key.keyword)
        if _has_value(raw):
            elements[tag] = raw
            needs_charset |= raw.vr in _TEXT_VRS and not raw.value.isascii()
        elif key.type in ("1", "2"):
            elements[tag] = RawValue(vr, b"")  # Type 2: present, zero length
    if keys_of in ("SR DOCUMENT", "KEY OBJECT DOC") and source.raw_key("ContentSequence"):
        elements[TAGS["ContentSequence"][0]] = source.raw_key("ContentSequence")  # title modifiers (F.5.19.1)
    charset = source.raw_key("SpecificCharacterSet")
    if needs_charset and charset is not None:
        elements[TAGS["SpecificCharacterSet"][0]] = charset  # Type 1C: keys outside the default repertoire
    return elements


def _leaf(inst: PlannedInstance, file_id: tuple[str, ...]) -> dict[int, RawValue]:
    elements = _record(inst.record_type, inst)
    elements[TAGS["ReferencedFileID"][0]] = raw_of("CS", list(file_id))
    uid = raw_of("UI", inst.sop_instance_uid)
    elements[TAGS["ReferencedSOPClassUIDInFile"][0]] = raw_of("UI", inst.header.sop_class_uid)
    elements[TAGS["ReferencedSOPInstanceUIDInFile"][0]] = uid
    elements[TAGS["ReferencedTransferSyntaxUIDInFile"][0]] = raw_of("UI", inst.target_syntax)
    elements[TAGS["SOPInstanceUID"][0]] = uid  # the seed's App D extra key
    return elements


class _Items:
    """The DICOMDIR file, written as its records are encoded in tree order (nothing else is kept per record);
    each link is patched in place once the record it points to exists. The tail is buffered; a link into what
    was already written out is patched in the file."""

    _FLUSH_AT = 1 << 17

    def __init__(self, out: BinaryIO, head: bytes):
        self.out = out
        self.written = 0  # bytes already in the file: offsets are positions in the file
        self.tail = bytearray(head)
        self.last: list[int | None] = [None] * 4  # the latest record of each level (PATIENT, STUDY, SERIES, leaf)

    def add(self, level: int, elements: dict[int, RawValue]) -> int:
        """Append a record at ``level``, linked from its previous sibling or else its parent; return its offset."""
        at = self.written + len(self.tail)
        blob = b"".join(encode_raw(tag, elements[tag]) for tag in sorted(elements))
        self.tail += _ITEM + struct.pack("<I", len(blob)) + blob
        previous = self.last[level]
        if previous is not None:
            self._link(previous, _NEXT_AT, at)
        elif level:
            self._link(self.last[level - 1], _LOWER_AT, at)
        self.last[level:] = [at] + [None] * (3 - level)
        if len(self.tail) >= self._FLUSH_AT:
            self.out.write(self.tail)
            self.written += len(self.tail)
            self.tail.clear()
        return at

    def patch(self, position: int, data: bytes) -> None:
        """Overwrite bytes already encoded, in the buffer or in the file."""
        if position >= self.written:
            self.tail[position - self.written : position - self.written + len(data)] = data
        else:
            os.pwrite(self.out.fileno(), data, position)

    def finish(self) -> int:
        """Write what is buffered; return the size of the file."""
        self.out.write(self.tail)
        self.out.flush()
        self.written += len(self.tail)
        self.tail.clear()
        return self.written

    def _link(self, record: int, field: int, target: int) -> None:
        self.patch(record + 8 + field, struct.pack("<I", target))  # 8: the item's tag and length


def _top(fileset_id: str, first: int, last: int) -> bytes:
    """File-set ID, root offsets and the consistency flag 0000H (PS3.3 F.3.2.1)."""
    return b"".join(
        (
            element(TAGS["FileSetID"][0], "CS", fileset_id.encode("ascii")),
            element(TAGS["OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity"][0], "UL", struct.pack("<I", first)),
            element(TAGS["OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity"][0], "UL", struct.pack("<I", last)),
            element(TAGS["FileSetConsistencyFlag"][0], "US", struct.pack("<H", 0)),
        )
    )


def _sequence_head(length: int) -> bytes:
    """Tag, VR, reserved bytes and explicit length of the Directory Record Sequence (0004,1220)."""
    group, elem = divmod(TAGS["DirectoryRecordSequence"][0], 0x10000)
    return struct.pack("<HH2sHI", group, elem, b"SQ", 0, length)


def write_dicomdir(plan: Plan, fileset_id: str, out: BinaryIO) -> int:
    """Write the DICOMDIR file to ``out``: records PATIENT -> STUDY -> SERIES -> leaf with keys as the files will
    carry them, Explicit VR LE, offsets counted from the file's first byte (PS3.3 F.3.2.1). Return its size."""
    header = encode_header(MEDIA_STORAGE_DIRECTORY, new_uid(), EXPLICIT_VR_LE)
    # The top-level elements have a fixed size whatever the offsets: written with zeros, patched at the end.
    top_at, sequence_at = len(header), len(header) + len(_top(fileset_id, 0, 0))
    items = _Items(out, header + _top(fileset_id, 0, 0) + _sequence_head(0))
    roots = []
    last_patient = last_study = None
    for folder, patient, study, series in plan.series_folders():
        first = plan.as_written(patient, study, series, series.instances[0])
        if patient is not last_patient:
            roots.append(items.add(0, _record("PATIENT", first)))
        if study is not last_study:
            items.add(1, _record("STUDY", first))
        last_patient, last_study = patient, study
        items.add(2, _record("SERIES", first))
        for number, inst in enumerate(series.instances, 1):
            items.add(3, _leaf(plan.as_written(patient, study, series, inst), file_id(folder, number)))
    size = items.finish()
    os.pwrite(out.fileno(), _top(fileset_id, roots[0] if roots else 0, roots[-1] if roots else 0), top_at)
    os.pwrite(out.fileno(), _sequence_head(size - sequence_at - 12), sequence_at)
    return size
