"""DICOMDIR checks: header (PS3.10 8.5, PS3.3 F.3.2.1), hierarchy (F.4) and record keys (F.3.2.2, F.5)."""

from __future__ import annotations

from collections import Counter

from dicommedia.media.findings import Finding, show_file_id, warning
from dicommedia.media.plain_dicomdir import LEVELS
from dicommedia.media.view import AnyDirectory, AnyRecord
from dicommedia.profile import EXPLICIT_VR_LE, MEDIA_STORAGE_DIRECTORY
from dicommedia.standard.records import RECORD_KEYS, type1_keys

# PS3.3 Table F.4-1: record types that may sit in the root entity or under a PATIENT / STUDY record.
ROOT_TYPES = {
    "PATIENT",
    "TOPIC",
    "PRIVATE",
    "HANGING PROTOCOL",
    "HL7 STRUC DOC",
    "PALETTE",
    "IMPLANT",
    "IMPLANT ASSY",
    "IMPLANT GROUP",
    "PRINT QUEUE",
}
UNDER = {
    "PATIENT": {"STUDY", "PRIVATE", "HL7 STRUC DOC"},
    "STUDY": {"SERIES", "PRIVATE", "FILM SESSION", "RESULTS", "VISIT"},
}
# Leaf types retired from F.4 that old discs still carry (PS3.3 2004: OVERLAY, MODALITY LUT, ...).
RETIRED_LEAVES = {
    "OVERLAY",
    "MODALITY LUT",
    "VOI LUT",
    "CURVE",
    "STORED PRINT",
    "BASIC FILM SESSION",
    "FILM BOX",
    "IMAGE BOX",
    "INTERPRETATION",
    "FILM SESSION",
    "RESULTS",
    "VISIT",
    "STUDY COMPONENT",
    "MRDR",
}
KNOWN_TYPES = set(RECORD_KEYS) | ROOT_TYPES | RETIRED_LEAVES
# Type 1 elements of every directory record (PS3.3 F.3.2.2).
RECORD_TYPE1 = (
    "OffsetOfTheNextDirectoryRecord",
    "RecordInUseFlag",
    "OffsetOfReferencedLowerLevelDirectoryEntity",
    "DirectoryRecordType",
)
REFERENCE_KEYS = ("ReferencedSOPClassUIDInFile", "ReferencedSOPInstanceUIDInFile", "ReferencedTransferSyntaxUIDInFile")
HEADER_TYPE1 = (
    "OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity",
    "OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity",
    "FileSetConsistencyFlag",
    "DirectoryRecordSequence",
)


def check_header(directory: AnyDirectory, label: str) -> list[Finding]:
    """Encoding, SOP class and Type 1 header elements of the DICOMDIR."""
    findings = []
    ts = directory.transfer_syntax
    if ts != EXPLICIT_VR_LE:
        findings.append(
            Finding(
                "dicomdir-corrupt",
                f"encoded in {ts or 'an unknown transfer syntax'}, not Explicit VR Little Endian",
                label,
            )
        )
    sop_class = directory.sop_class
    if sop_class != MEDIA_STORAGE_DIRECTORY:
        findings.append(
            Finding("dicomdir-corrupt", f"Media Storage SOP Class is {sop_class}, not Media Storage Directory", label)
        )
    if not directory.has_header("FileSetID"):
        findings.append(Finding("dicomdir-corrupt", "lacks File-set ID (0004,1130)", label))
    elif directory.fileset_id is None:
        findings.append(warning("no-fileset-id", "File-set ID is empty", label))
    for keyword in HEADER_TYPE1:
        if not directory.has_header(keyword):
            findings.append(Finding("dicomdir-corrupt", f"lacks {keyword}", label))
    if directory.consistency_flag != 0:
        findings.append(
            warning(
                "fileset-consistency", "File-set Consistency Flag is set: readers must assume inconsistencies", label
            )
        )
    if not directory.records:
        findings.append(warning("no-records", "the DICOMDIR holds no directory record", label))
    return findings


def _is_leaf(record_type: str) -> bool:
    return record_type not in LEVELS and record_type not in ROOT_TYPES - {"PRIVATE"}


def hierarchy_problem(parent: AnyRecord | None, child: AnyRecord) -> str | None:
    """Why ``child`` may not sit under ``parent`` (None: root), or None when it may."""
    kind = child.record_type
    if parent is None:
        return None if kind in ROOT_TYPES else f"{kind} record in the root directory entity"
    above = parent.record_type
    if above in UNDER:
        return None if kind in UNDER[above] else f"{kind} record under a {above} record"
    if above == "SERIES":
        return None if _is_leaf(kind) else f"{kind} record under a SERIES record"
    if _is_leaf(above) and above != "PRIVATE":
        return None if kind == "PRIVATE" else f"{kind} record under a {above} record"
    return None


def check_records(directory: AnyDirectory, label: str) -> list[Finding]:
    """Hierarchy, record types and keys of every active record."""
    findings = []
    active = directory.active_records()
    inactive = len(directory.records) - len([r for r in directory.records if r.in_use])
    if inactive:
        findings.append(
            warning(
                "inactive-record", f"{inactive} record(s) marked inactive (Record In-use Flag 0000H): ignored", label
            )
        )
    for rec in active:
        where = show_file_id(rec.file_id) or label
        # Without working offsets the tree is rebuilt from sequence order: its shape proves nothing.
        problem = hierarchy_problem(rec.parent, rec) if directory.followed_offsets else None
        if problem:
            findings.append(Finding("bad-hierarchy", f"{rec.describe()}: {problem}", where))
        if rec.record_type not in KNOWN_TYPES:
            findings.append(warning("unknown-record-type", f"{rec.describe()}: unknown Directory Record Type", where))
        missing = [k for k in RECORD_TYPE1 if not rec.has(k)]
        missing += [k for k in type1_keys(rec.record_type) if rec.is_empty(k)]
        if rec.file_id is not None:
            missing += [k for k in REFERENCE_KEYS if rec.is_empty(k)]
        # F.5.2: Study Instance UID is 1C, required whenever the files below carry one, i.e. always for
        # composite instances; a STUDY record without it makes importers drop the study.
        if rec.record_type == "STUDY" and rec.is_empty("StudyInstanceUID"):
            missing.append("StudyInstanceUID")
        if missing:
            findings.append(
                Finding("missing-key", f"{rec.describe()}: Type 1 key(s) missing or empty: {', '.join(missing)}", where)
            )
    patients = Counter(rec.key("PatientID") for rec in active if rec.record_type == "PATIENT" and rec.key("PatientID"))
    for patient_id, count in patients.items():
        if count > 1:
            findings.append(
                warning("duplicate-patient-id", f"{count} PATIENT records share Patient ID {patient_id!r}", label)
            )
    return findings
