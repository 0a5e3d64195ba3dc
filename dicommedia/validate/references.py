"""Reference checks: File ID syntax (PS3.10 8.2), records against files, duplicates, unreferenced files."""

from __future__ import annotations

from pydicom.dataset import Dataset

from dicommedia.media import MediaFile, MediaView
from dicommedia.media.dicomdir import READ_ERRORS, read_checked
from dicommedia.media.findings import Finding, show_file_id, warning
from dicommedia.media.store import plain_name, unsafe_reason
from dicommedia.media.view import AnyRecord
from dicommedia.part10 import has_dicm
from dicommedia.profile import MEDIA_STORAGE_DIRECTORY
from dicommedia.standard.file_id import file_id_problems
from dicommedia.standard.records import RECORD_KEYS, leaf_record_type

# (record type, key in the record, attribute in the file); None record type means the leaf record itself.
MATCHED_KEYS = (
    (None, "ReferencedSOPInstanceUIDInFile", "SOPInstanceUID"),
    (None, "ReferencedSOPClassUIDInFile", "SOPClassUID"),
    (None, "ReferencedTransferSyntaxUIDInFile", "TransferSyntaxUID"),
    ("SERIES", "SeriesInstanceUID", "SeriesInstanceUID"),
    ("SERIES", "Modality", "Modality"),
    ("STUDY", "StudyInstanceUID", "StudyInstanceUID"),
    ("PATIENT", "PatientID", "PatientID"),
)


def check_file_ids(view: MediaView) -> list[Finding]:
    """Every Referenced File ID of an active record follows PS3.10 8.2 (refused ones are already reported)."""
    if view.directory is None:
        return []
    findings = []
    for rec in view.directory.active_records():
        components = rec.file_id
        if components is None or unsafe_reason(components):
            continue
        problems = file_id_problems(components)
        if problems:
            findings.append(
                Finding(
                    "bad-file-id", f"Referenced File ID breaks PS3.10: {'; '.join(problems)}", show_file_id(components)
                )
            )
    return findings


# The file values the reference checks compare: read per file, checked, and dropped (flat memory).
FILE_KEYWORDS = tuple(dict.fromkeys(file_kw for _, _, file_kw in MATCHED_KEYS))


def _file_value(ds: Dataset, keyword: str) -> str | None:
    source = ds.file_meta if keyword == "TransferSyntaxUID" else ds
    value = str(source.get(keyword, "") or "").strip()
    return value or None


class FileKeys(tuple):
    """The FILE_KEYWORDS values of one file, in that order (None when absent)."""

    __slots__ = ()

    def get(self, keyword: str) -> str | None:
        """One value by keyword."""
        return self[FILE_KEYWORDS.index(keyword)]


def file_keys(ds: Dataset) -> FileKeys:
    """The FILE_KEYWORDS values a file has."""
    return FileKeys(_file_value(ds, keyword) for keyword in FILE_KEYWORDS)


def _ancestor(rec: AnyRecord, record_type: str | None) -> AnyRecord | None:
    node: AnyRecord | None = rec
    while node is not None and record_type is not None and node.record_type != record_type:
        node = node.parent
    return node


def check_record_match(media_file: MediaFile, keys: FileKeys) -> list[Finding]:
    """The keys and referenced UIDs of a file's leaf record and its ancestors equal the file's (PS3.3 F.3.2.2)."""
    rec = media_file.record
    if rec is None:
        return []
    findings = []
    where = show_file_id(media_file.file_id)
    for record_type, record_kw, file_kw in MATCHED_KEYS:
        holder = _ancestor(rec, record_type)
        in_record = holder.key(record_kw) if holder is not None else None
        in_file = keys.get(file_kw)
        if in_record and in_file and in_record != in_file:
            level = f"{record_type} record" if record_type else f"{rec.record_type} record"
            findings.append(
                Finding("record-mismatch", f"{level} {record_kw} {in_record} but the file has {in_file}", where)
            )
    sop_class = keys.get("SOPClassUID")
    if sop_class and rec.record_type in RECORD_KEYS:
        expected = leaf_record_type(sop_class, keys.get("Modality"))
        if expected != rec.record_type:
            findings.append(
                warning(
                    "leaf-record-type",
                    f"{rec.record_type} record for a SOP class PS3.3 F.4 files under {expected}",
                    where,
                )
            )
    return findings


class Duplicates:
    """One SOP Instance UID per file: the first file of each UID, and the later ones of the UIDs seen twice."""

    def __init__(self) -> None:
        self.first: dict[str, MediaFile] = {}
        self.later: dict[str, list[MediaFile]] = {}

    def add(self, media_file: MediaFile, keys: FileKeys) -> None:
        """Note a file's SOP Instance UID (the record's string when equal: one copy of each UID)."""
        uid = keys.get("SOPInstanceUID")
        if not uid:
            return
        if uid == media_file.sop_instance_uid:
            uid = media_file.sop_instance_uid
        first = self.first.setdefault(uid, media_file)
        if first is not media_file:
            self.later.setdefault(uid, []).append(media_file)

    def findings(self) -> list[Finding]:
        """A finding for each later file, by UID in the order the UIDs were first met."""
        findings = []
        for uid, first in self.first.items():
            for other in self.later.get(uid, ()):
                findings.append(
                    Finding(
                        "duplicate-instance",
                        f"SOP Instance UID {uid} also in {show_file_id(first.file_id)}",
                        show_file_id(other.file_id),
                    )
                )
        return findings


def check_unreferenced(view: MediaView) -> list[Finding]:
    """DICOM files no record references; non-DICOM files inside the DICOM tree; nested file-sets."""
    if view.directory is None:
        return []
    referenced = {f.stored.names for f in view.files()}
    if view.dicomdir_file is not None:
        referenced.add(view.dicomdir_file.names)
    dicom_tops = {f.stored.names[0] for f in view.files() if len(f.stored.names) > 1}
    # Two passes over the media, no list of its files (flat memory); the first reports nothing the second does not.
    met = len(view.store.findings)
    nested = {
        names
        for names, entries in view.store.directories()
        if names and any(not e.is_dir and not e.is_link and plain_name(e.name).upper() == "DICOMDIR" for e in entries)
    }
    del view.store.findings[met:]
    findings = [
        warning("nested-fileset", "another file-set (its own DICOMDIR): not checked", "/".join(n))
        for n in sorted(nested)
    ]
    for stored in view.store.walk():
        folder = stored.names[:-1]
        if stored.names in referenced or any(folder[: len(n)] == n for n in nested):
            continue
        where = show_file_id(stored.file_id)
        kind = _dicom_kind(view, stored)
        if kind == "directory":
            findings.append(warning("stray-dicomdir", "a DICOMDIR copy, not part of the file-set", where))
        elif kind == "instance":
            findings.append(Finding("unreferenced-file", "a DICOM file no directory record references", where))
        elif folder and folder[0] in dicom_tops:
            findings.append(warning("non-dicom-file", "a non-DICOM file inside the DICOM folders", where))
    findings.extend(view.store.findings)
    view.store.findings.clear()
    return findings


def _dicom_kind(view: MediaView, stored) -> str | None:
    """``instance`` or ``directory`` for a Part 10 file, None for anything else."""
    try:
        with view.store.open(stored) as fp:
            if not has_dicm(fp):
                return None
            fp.seek(0)
            meta = read_checked(fp, stop_before_pixels=True, specific_tags=["SOPClassUID"]).file_meta
    except READ_ERRORS:
        return "instance"
    return "directory" if meta.get("MediaStorageSOPClassUID") == MEDIA_STORAGE_DIRECTORY else "instance"
