"""One view over DICOM media: an ISO image, a mounted disc, a DICOMDIR, or a folder of Part 10 files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from pydicom.dataset import Dataset

from dicommedia.errors import MediaError
from dicommedia.media.dicomdir import READ_ERRORS, Directory, DicomdirError, Record, read_checked, read_dicomdir
from dicommedia.media.findings import Finding, show_file_id, warning
from dicommedia.media.store import FolderStore, IsoStore, LocateError, Store, StoredFile, is_iso_image, plain_name
from dicommedia.profile import MEDIA_STORAGE_DIRECTORY


# MediaFile key -> (record type holding it, record keyword, file keyword)
_KEYS = {
    "patient_id": ("PATIENT", "PatientID", "PatientID"),
    "patient_name": ("PATIENT", "PatientName", "PatientName"),
    "study_instance_uid": ("STUDY", "StudyInstanceUID", "StudyInstanceUID"),
    "study_date": ("STUDY", "StudyDate", "StudyDate"),
    "study_description": ("STUDY", "StudyDescription", "StudyDescription"),
    "series_instance_uid": ("SERIES", "SeriesInstanceUID", "SeriesInstanceUID"),
    "modality": ("SERIES", "Modality", "Modality"),
    "series_number": ("SERIES", "SeriesNumber", "SeriesNumber"),
    "series_description": ("SERIES", "SeriesDescription", "SeriesDescription"),
    "sop_instance_uid": (None, "ReferencedSOPInstanceUIDInFile", "SOPInstanceUID"),
    "sop_class_uid": (None, "ReferencedSOPClassUIDInFile", "SOPClassUID"),
    "transfer_syntax_uid": (None, "ReferencedTransferSyntaxUIDInFile", None),
}
HEADER_TAGS = [file_kw for _, _, file_kw in _KEYS.values() if file_kw]
# Keys without which an instance cannot be placed in the listing or sent: read from the file when absent.
_ESSENTIAL = ("study_instance_uid", "series_instance_uid", "sop_instance_uid", "sop_class_uid", "transfer_syntax_uid")


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


@dataclass(eq=False)
class MediaFile:
    """An instance on the media: where it is, how big, and its DICOMDIR keys (None when unknown)."""

    file_id: tuple[str, ...]
    size: int
    stored: StoredFile = field(repr=False)
    store: Store = field(repr=False)
    record: Record | None = field(default=None, repr=False)
    patient_id: str | None = None
    patient_name: str | None = None
    study_instance_uid: str | None = None
    study_date: str | None = None
    study_description: str | None = None
    series_instance_uid: str | None = None
    modality: str | None = None
    series_number: str | None = None
    series_description: str | None = None
    sop_instance_uid: str | None = None
    sop_class_uid: str | None = None
    transfer_syntax_uid: str | None = None

    def open(self) -> BinaryIO:
        """Open the file for binary reading; the caller closes it."""
        return self.store.open(self.stored)

    @property
    def media_path(self) -> str:
        """Path of the file as it appears on the media (``DICOM/P1/IM1.;1``)."""
        return self.stored.media_path

    def read_header(self) -> Dataset:
        """The file's data set up to (not including) the pixel data, with its File Meta Information."""
        with self.open() as fp:
            return read_checked(fp, stop_before_pixels=True)

    def fill_from(self, ds: Dataset) -> None:
        """Fill the keys still unknown from a data set read from the file."""
        for name, (_, _, file_kw) in _KEYS.items():
            if getattr(self, name) is None:
                value = ds.get(file_kw) if file_kw else ds.file_meta.get("TransferSyntaxUID") if ds.file_meta else None
                setattr(self, name, _text(value))


def _keys_from_records(leaf: Record) -> dict[str, str | None]:
    """Keys of an instance gathered from its leaf record and its PATIENT/STUDY/SERIES ancestors."""
    by_type: dict[str, Record] = {}
    node: Record | None = leaf.parent
    while node is not None:
        by_type.setdefault(node.record_type, node)
        node = node.parent
    keys = {}
    for name, (record_type, keyword, _) in _KEYS.items():
        rec = leaf if record_type is None else by_type.get(record_type)
        keys[name] = rec.key(keyword) if rec is not None else None
    return keys


class MediaView:
    """What a disc holds: ``kind``, ``fileset_id``, ``files()`` and the ``problems`` met on the way."""

    def __init__(self, path: Path, kind: str, store: Store, dicomdir: StoredFile | None):
        self.path = path
        self.kind = kind
        self.store = store
        self.dicomdir_file = dicomdir
        self.directory: Directory | None = None
        self.fileset_id: str | None = None
        self.problems: list[Finding] = []
        self._files: list[MediaFile] | None = None
        if dicomdir is not None:
            self._load_dicomdir(dicomdir)

    def _load_dicomdir(self, stored: StoredFile) -> None:
        label = show_file_id(stored.file_id)
        try:
            with self.store.open(stored) as fp:
                self.directory = read_dicomdir(fp, label)
        except (DicomdirError, OSError) as exc:
            self.problems.append(Finding("dicomdir-corrupt", f"DICOMDIR {exc}; scanning the media instead", label))
            return
        self.fileset_id = self.directory.fileset_id
        self.problems.extend(self.directory.findings)
        if not self.directory.followed_offsets:
            self.problems.append(warning("offsets-ignored", "records read in sequence order instead", label))

    def files(self) -> Iterator[MediaFile]:
        """Every instance the media references (or, without a usable DICOMDIR, every Part 10 file found)."""
        if self._files is None:
            self._files = list(self._scan() if self.directory is None else self._referenced())
        return iter(self._files)

    def _referenced(self) -> Iterator[MediaFile]:
        assert self.directory is not None
        seen: dict[tuple[str, ...], Record] = {}
        for rec in self.directory.active_records():
            components = rec.file_id
            if components is None:
                if rec.record_type not in ("PATIENT", "STUDY", "SERIES") and not rec.children:
                    self.problems.append(warning("record-without-file", f"{rec.describe()} references no file"))
                continue
            label = show_file_id(components)
            try:
                stored = self.store.locate(components)
            except LocateError as exc:
                self.problems.append(Finding(exc.code, f"{rec.describe()}: {exc.message}", label))
                continue
            if stored.names in seen:
                self.problems.append(
                    Finding("duplicate-instance", f"{rec.describe()} and {seen[stored.names].describe()} reference one file", label)
                )
                continue
            seen[stored.names] = rec
            media_file = MediaFile(components, stored.size, stored, self.store, rec, **_keys_from_records(rec))
            if any(getattr(media_file, name) is None for name in _ESSENTIAL):
                self._complete(media_file)
            yield media_file

    def _complete(self, media_file: MediaFile) -> None:
        try:
            media_file.fill_from(media_file.read_header())
        except READ_ERRORS as exc:
            self.problems.append(Finding("corrupt-file", f"cannot read the header: {exc}", show_file_id(media_file.file_id)))

    def _scan(self) -> Iterator[MediaFile]:
        for stored in self.store.walk():
            if plain_name(stored.names[-1]).upper() == "DICOMDIR":
                continue
            header = read_part10_header(self.store, stored)
            if header is None or header.file_meta.get("MediaStorageSOPClassUID") == MEDIA_STORAGE_DIRECTORY:
                continue
            media_file = MediaFile(stored.file_id, stored.size, stored, self.store)
            media_file.fill_from(header)
            yield media_file
        self.problems.extend(self.store.findings)
        self.store.findings.clear()

    def close(self) -> None:
        """Release the media (the ISO image's descriptor)."""
        self.store.close()

    def __enter__(self) -> MediaView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def has_dicm(fp: BinaryIO) -> bool:
    """True when the file has a 128-byte preamble followed by ``DICM`` (PS3.10 7.1)."""
    head = fp.read(132)
    return len(head) == 132 and head[128:] == b"DICM"


def read_part10_header(store: Store, stored: StoredFile) -> Dataset | None:
    """The header of a Part 10 file (None when the file is not Part 10 or cannot be read)."""
    try:
        with store.open(stored) as fp:
            if not has_dicm(fp):
                return None
            fp.seek(0)
            return read_checked(fp, stop_before_pixels=True, specific_tags=HEADER_TAGS)
    except READ_ERRORS:
        return None


def _refuse_non_dicomdir(path: Path) -> None:
    """A file given as media must be an ISO image or a DICOMDIR (even a damaged one), not an instance or else."""
    if plain_name(path.name).upper() == "DICOMDIR":
        return
    try:
        with open(path, "rb") as fp:
            part10 = has_dicm(fp)
            fp.seek(0)
            meta = read_checked(fp, stop_before_pixels=True, specific_tags=[]).file_meta if part10 else None
    except READ_ERRORS as exc:
        raise MediaError(f"cannot be read as a DICOMDIR: {exc}", str(path)) from None
    if meta is None:
        raise MediaError("not an ISO image, a DICOMDIR or a folder", str(path))
    if meta.get("MediaStorageSOPClassUID") != MEDIA_STORAGE_DIRECTORY:
        raise MediaError("a single DICOM instance, not media", str(path), hint="give the folder or its DICOMDIR")


def open_media(path: str | Path) -> MediaView:
    """Open an .iso image, a folder (mounted disc, with or without DICOMDIR) or a DICOMDIR file."""
    path = Path(path)
    if not path.exists():
        raise MediaError("no such file or folder", str(path))
    if path.is_dir():
        store: Store = FolderStore(path)
        kind = "folder"
    elif is_iso_image(path):
        store = IsoStore(path)
        kind = "iso"
    else:
        _refuse_non_dicomdir(path)
        store = FolderStore(path.parent)
        return MediaView(path, "dicomdir", store, StoredFile((path.name,), path.stat().st_size))
    try:
        entry = store.find((), "DICOMDIR")
    except OSError as exc:
        raise MediaError(f"cannot list the media: {exc}", str(path)) from None
    if entry is None or entry.is_dir or entry.is_link:
        view = MediaView(path, "scan" if kind == "folder" else kind, store, None)
        if kind == "iso":
            view.problems.append(Finding("no-dicomdir", "no DICOMDIR in the root directory; scanning the image", str(path)))
        return view
    return MediaView(path, kind, store, StoredFile((entry.name,), entry.size, entry.start))

