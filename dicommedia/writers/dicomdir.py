"""The DICOMDIR writer (PS3.10 8.6, PS3.3 Annex F): records built from the plan, offsets from the real encoding.

Record keys are the files' own encoded values, copied byte for byte (character sets and ISO 2022 escapes
included); invented keys are the values written into the files.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from dicommedia.part10.encode import element, encode_raw, raw_of
from dicommedia.part10.header import RawValue
from dicommedia.plan.hierarchy import Plan, PlannedInstance
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


@dataclass
class Record:
    """One directory record: its elements (tag -> raw value), and the records of the next level down."""

    elements: dict[int, RawValue]
    children: list[Record] = field(default_factory=list)


def _has_value(raw: RawValue | None) -> bool:
    if raw is None:
        return False
    return bool(raw.value) if raw.vr == "SQ" else bool(raw.value.strip(b" \x00"))


def _record(record_type: str, source: PlannedInstance) -> Record:
    """A record of ``record_type`` whose keys (PS3.3 F.5) come from ``source`` as it will be written."""
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
    return Record(elements)


def _leaf(inst: PlannedInstance) -> Record:
    rec = _record(inst.record_type, inst)
    rec.elements[TAGS["ReferencedFileID"][0]] = raw_of("CS", list(inst.file_id))
    rec.elements[TAGS["ReferencedSOPClassUIDInFile"][0]] = raw_of("UI", inst.header.sop_class_uid)
    rec.elements[TAGS["ReferencedSOPInstanceUIDInFile"][0]] = raw_of("UI", inst.sop_instance_uid)
    rec.elements[TAGS["ReferencedTransferSyntaxUIDInFile"][0]] = raw_of("UI", inst.target_syntax)
    rec.elements[TAGS["SOPInstanceUID"][0]] = raw_of("UI", inst.sop_instance_uid)  # the seed's App D extra key
    return rec


def build_records(plan: Plan) -> list[Record]:
    """The record tree: PATIENT -> STUDY -> SERIES -> leaf, keys as the files will carry them."""
    roots = []
    for patient in plan.patients.values():
        p_rec = None
        for study in patient.studies.values():
            s_rec = None
            for series in study.series.values():
                first = plan.as_written(patient, study, series, series.instances[0])
                p_rec = p_rec or _record("PATIENT", first)
                s_rec = s_rec or _record("STUDY", first)
                se_rec = _record("SERIES", first)
                se_rec.children = [_leaf(plan.as_written(patient, study, series, i)) for i in series.instances]
                s_rec.children.append(se_rec)
            p_rec.children.append(s_rec)
        roots.append(p_rec)
    return roots


def _encode(rec: Record) -> bytearray:
    return bytearray(b"".join(encode_raw(tag, rec.elements[tag]) for tag in sorted(rec.elements)))


def _flatten(records: list[Record], out: list[Record]) -> list[Record]:
    for rec in records:
        out.append(rec)
        _flatten(rec.children, out)
    return out


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


def encode_dicomdir(roots: list[Record], fileset_id: str) -> bytes:
    """Encode the DICOMDIR file: Explicit VR LE, offsets counted from the file's first byte (PS3.3 F.3.2.1)."""
    header = encode_header(MEDIA_STORAGE_DIRECTORY, new_uid(), EXPLICIT_VR_LE)
    ordered = _flatten(roots, [])
    blobs = {id(rec): _encode(rec) for rec in ordered}
    # The top-level elements have a fixed size whatever the offsets: size them with zeros first.
    position = len(header) + len(_top(fileset_id, 0, 0)) + 12  # 12: (0004,1220) tag, 'SQ', reserved, length
    offsets: dict[int, int] = {}
    for rec in ordered:
        offsets[id(rec)] = position
        position += 8 + len(blobs[id(rec)])

    def link(records: list[Record]) -> None:
        for i, rec in enumerate(records):
            blob = blobs[id(rec)]
            nxt = offsets[id(records[i + 1])] if i + 1 < len(records) else 0
            lower = offsets[id(rec.children[0])] if rec.children else 0
            blob[_NEXT_AT : _NEXT_AT + 4] = struct.pack("<I", nxt)
            blob[_LOWER_AT : _LOWER_AT + 4] = struct.pack("<I", lower)
            link(rec.children)

    link(roots)
    first = offsets[id(roots[0])] if roots else 0
    last = offsets[id(roots[-1])] if roots else 0
    top = _top(fileset_id, first, last)
    items = b"".join(_ITEM + struct.pack("<I", len(blobs[id(r)])) + bytes(blobs[id(r)]) for r in ordered)
    sequence = element(TAGS["DirectoryRecordSequence"][0], "SQ", items)
    return header + top + sequence
