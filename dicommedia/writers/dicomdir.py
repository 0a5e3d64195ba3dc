"""The DICOMDIR writer (PS3.10 8.6, PS3.3 Annex F): records built from the plan, offsets from the real encoding."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence

from dicommedia.plan.hierarchy import Plan, PlannedInstance, PlannedPatient, PlannedSeries, PlannedStudy
from dicommedia.standard.identity import new_uid
from dicommedia.standard.records import concept_modifiers, record_type_keys
from dicommedia.writers.part10 import encode_header, file_meta

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
_ITEM = b"\xfe\xff\x00\xe0"
_HEADER_TAGS = ("OffsetOfTheNextDirectoryRecord", "RecordInUseFlag", "OffsetOfReferencedLowerLevelDirectoryEntity")


@dataclass
class Record:
    """One directory record: its dataset, and the records of the next level down."""

    dataset: Dataset
    children: list["Record"] = field(default_factory=list)


def _has_non_ascii(ds: Dataset) -> bool:
    for elem in ds.iterall():
        if elem.VR in ("PN", "LO", "SH", "ST", "LT", "UT", "UC") and elem.value is not None:
            values = elem.value if elem.VM > 1 else [elem.value]
            if any(not str(v).isascii() for v in values):
                return True
    return False


def _record(record_type: str, source: PlannedInstance, keys_of: str) -> Dataset:
    """A record of ``record_type`` whose keys (PS3.3 F.5) come from ``source`` as it will be written."""
    ds = Dataset()
    ds.OffsetOfTheNextDirectoryRecord = 0
    ds.RecordInUseFlag = 0xFFFF
    ds.OffsetOfReferencedLowerLevelDirectoryEntity = 0
    ds.DirectoryRecordType = record_type
    for key in record_type_keys(keys_of):
        value = source.key(key.keyword)
        present = value is not None and not (isinstance(value, (str, list, Sequence)) and len(value) == 0)
        if key.keyword == "ContentSequence":
            continue
        if present:
            setattr(ds, key.keyword, value)
        elif key.type in ("1", "2"):
            setattr(ds, key.keyword, None)  # Type 2: present, zero length
    if keys_of == "SR DOCUMENT" and str(ds.get("VerificationFlag", "")).upper() == "VERIFIED":
        # Verification DateTime (1C when VERIFIED) is the latest verifying observer's (PS3.3 F.5.19).
        times = [str(item.get("VerificationDateTime", "")) for item in source.key("VerifyingObserverSequence") or []]
        if any(times):
            ds.VerificationDateTime = max(times)
    if keys_of in ("SR DOCUMENT", "KEY OBJECT DOC"):
        # Content Sequence (1C): only the root items that modify the title (PS3.3 F.5.19.1).
        modifiers = concept_modifiers(source.header.keys)
        if modifiers:
            ds.ContentSequence = Sequence(modifiers)
    charset = source.key("SpecificCharacterSet")
    if charset and _has_non_ascii(ds):
        ds.SpecificCharacterSet = charset  # Type 1C: keys use characters outside the default repertoire
    return ds


def _leaf(inst: PlannedInstance) -> Dataset:
    ds = _record(inst.record_type, inst, inst.record_type)
    ds.ReferencedFileID = list(inst.file_id)
    ds.ReferencedSOPClassUIDInFile = inst.header.sop_class_uid
    ds.ReferencedSOPInstanceUIDInFile = inst.sop_instance_uid
    ds.ReferencedTransferSyntaxUIDInFile = inst.target_syntax
    ds.SOPInstanceUID = inst.sop_instance_uid  # the seed's Appendix D extra leaf key
    return ds


def _with_level(inst: PlannedInstance, *levels: dict[str, object]) -> PlannedInstance:
    merged = {}
    for level in levels:
        merged.update(level)
    merged.update(inst.coercions)
    return PlannedInstance(inst.header, inst.record_type, merged, inst.target_syntax, inst.codec, inst.file_id)


def build_records(plan: Plan) -> list[Record]:
    """The record tree: PATIENT -> STUDY -> SERIES -> leaf, keys as the files will carry them."""
    roots = []
    for patient in plan.patients.values():
        p_rec = None
        for study in patient.studies.values():
            s_rec = None
            for series in study.series.values():
                first = _with_level(series.instances[0], patient.coercions, study.coercions, series.coercions)
                p_rec = p_rec or Record(_record("PATIENT", first, "PATIENT"))
                s_rec = s_rec or Record(_record("STUDY", first, "STUDY"))
                se_rec = Record(_record("SERIES", first, "SERIES"))
                for inst in series.instances:
                    full = _with_level(inst, patient.coercions, study.coercions, series.coercions)
                    se_rec.children.append(Record(_leaf(full)))
                s_rec.children.append(se_rec)
            p_rec.children.append(s_rec)
        roots.append(p_rec)
    return roots


def _encode(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_dataset(fp, ds)
    return fp.getvalue()


def _flatten(records: list[Record]) -> list[Record]:
    out = []
    for rec in records:
        out.append(rec)
        out.extend(_flatten(rec.children))
    return out


def _link(records: list[Record], offsets: dict[int, int]) -> None:
    for i, rec in enumerate(records):
        nxt = records[i + 1] if i + 1 < len(records) else None
        rec.dataset.OffsetOfTheNextDirectoryRecord = offsets[id(nxt.dataset)] if nxt else 0
        first_child = rec.children[0] if rec.children else None
        rec.dataset.OffsetOfReferencedLowerLevelDirectoryEntity = offsets[id(first_child.dataset)] if first_child else 0
        _link(rec.children, offsets)


def encode_dicomdir(roots: list[Record], fileset_id: str) -> bytes:
    """Encode the DICOMDIR file: Explicit VR LE, offsets counted from the file's first byte (PS3.3 F.3.2.1)."""
    header = encode_header(file_meta(MEDIA_STORAGE_DIRECTORY, new_uid(), EXPLICIT_VR_LE))
    top = Dataset()
    top.FileSetID = fileset_id
    top.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
    top.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
    top.FileSetConsistencyFlag = 0x0000
    ordered = _flatten(roots)
    # Offsets are UL: the encoded sizes do not depend on their values, so one sizing pass is exact.
    encoded = [_encode(rec.dataset) for rec in ordered]
    top_bytes = _encode(top)
    seq_header = 12  # (0004,1220) tag, 'SQ', 2 reserved bytes, 4-byte length
    position = len(header) + len(top_bytes) + seq_header
    offsets: dict[int, int] = {}
    for rec, blob in zip(ordered, encoded):
        offsets[id(rec.dataset)] = position
        position += 8 + len(blob)
    _link(roots, offsets)
    top.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = offsets[id(roots[0].dataset)] if roots else 0
    top.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = offsets[id(roots[-1].dataset)] if roots else 0
    top_bytes = _encode(top)
    items = []
    for rec in ordered:
        blob = _encode(rec.dataset)
        items.append(_ITEM + struct.pack("<I", len(blob)) + blob)
    body = b"".join(items)
    sequence = struct.pack("<HH", 0x0004, 0x1220) + b"SQ\x00\x00" + struct.pack("<I", len(body))
    return header + top_bytes + sequence + body
