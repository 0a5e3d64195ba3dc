"""One view over DICOM media: an ISO image, a mounted disc, a DICOMDIR, or a folder of Part 10 files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Union

from dicommedia.errors import MediaError, one_line
from dicommedia.media.findings import Finding, show_file_id, warning
from dicommedia.media.plain_dicomdir import PlainDirectory, PlainRecord, read_plain_dicomdir
from dicommedia.media.store import (
    FolderStore,
    LocateError,
    Store,
    StoredFile,
    is_iso_image,
    is_udf_image,
    open_image,
    plain_name,
)
from dicommedia.part10 import has_dicm
from dicommedia.standard.uids import MEDIA_STORAGE_DIRECTORY

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicommedia.media.dicomdir import Directory, Record

# pydicom (~0.5 s to import) is loaded only where a file must really be parsed: a command that sends or lists a
# well-formed disc never needs it (see PlainDirectory).


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
# Leaf keys that many instances repeat: kept once per view.
_REPEATED = ("sop_class_uid", "transfer_syntax_uid")
# Keys without which an instance cannot be placed in the listing or sent: read from the file when absent.
_ESSENTIAL = ("study_instance_uid", "series_instance_uid", "sop_instance_uid", "sop_class_uid", "transfer_syntax_uid")


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


# A DICOMDIR is read whole into memory: 1.6 million records of 300 bytes fit; a larger one is refused, not loaded.
MAX_DICOMDIR_BYTES = 512 << 20
# Both readers' records and directories answer the same questions (pydicom's only for a DICOMDIR the plain refuses).
AnyRecord = Union["Record", PlainRecord]
AnyDirectory = Union["Directory", PlainDirectory]


@dataclass(eq=False, slots=True)
class MediaFile:
    """An instance on the media: where it is, how big, and its DICOMDIR keys (None when unknown).

    Slots, and values shared with the other files of the view where they repeat: a disc holds 100,000 of them.
    """

    file_id: tuple[str, ...]
    size: int
    stored: StoredFile = field(repr=False)
    store: Store = field(repr=False)
    record: AnyRecord | None = field(default=None, repr=False)
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
    # True for a Part 10 file of media with a DICOMDIR that no record of it references (found by walking the media).
    unreferenced: bool = False

    def open(self) -> BinaryIO:
        """Open the file for binary reading; the caller closes it."""
        return self.store.open(self.stored)

    def read_into(self, offset: int, slots: list[memoryview]) -> None:
        """Fill ``slots`` in order with the file's bytes from ``offset`` on (no intermediate copy)."""
        self.store.read_into(self.stored, offset, slots)

    @property
    def media_path(self) -> str:
        """Path of the file as it appears on the media (``DICOM/P1/IM1.;1``)."""
        return self.stored.media_path

    def read_header(self) -> Dataset:
        """The file's data set up to (not including) the pixel data, with its File Meta Information."""
        from dicommedia.media.dicomdir import read_checked

        with self.open() as fp:
            return read_checked(fp, stop_before_pixels=True)

    def fill_from(self, ds: Dataset) -> None:
        """Fill the keys still unknown from a data set read from the file."""
        for name, (_, _, file_kw) in _KEYS.items():
            if getattr(self, name) is None:
                value = ds.get(file_kw) if file_kw else ds.file_meta.get("TransferSyntaxUID") if ds.file_meta else None
                setattr(self, name, _text(value))


def _keys_from_records(
    leaf: AnyRecord, inherited: dict[int, dict[str, str | None]] | None = None, shared: dict[str, str] | None = None
) -> dict[str, str | None]:
    """Keys of an instance gathered from its leaf record and its PATIENT/STUDY/SERIES ancestors.

    ``inherited``: a cache of the ancestors' keys by parent record, for the many leaves of one series.
    ``shared``: one string for equal values of many leaves (the SOP class, the transfer syntax).
    """
    parent = leaf.parent
    cached = inherited.get(id(parent)) if inherited is not None else None
    if cached is None:
        by_type: dict[str, AnyRecord] = {}
        node: AnyRecord | None = parent
        while node is not None:
            by_type.setdefault(node.record_type, node)
            node = node.parent
        cached = {}
        for name, (record_type, keyword, _) in _KEYS.items():
            if record_type is not None:
                rec = by_type.get(record_type)
                cached[name] = rec.key(keyword) if rec is not None else None
        if inherited is not None:
            inherited[id(parent)] = cached
    keys = dict(cached)
    for name, (record_type, keyword, _) in _KEYS.items():
        if record_type is None:
            value = leaf.key(keyword)
            if shared is not None and value is not None and name in _REPEATED:
                value = shared.setdefault(value, value)
            keys[name] = value
    return keys


class MediaView:
    """What a disc holds: ``kind``, ``fileset_id``, ``files()`` and the ``problems`` met on the way."""

    def __init__(
        self,
        path: Path,
        kind: str,
        store: Store,
        dicomdir: StoredFile | None,
        plain: bool = False,
        dicomdir_only: bool = False,
    ):
        self.path = path
        self.kind = kind
        self.store = store
        self.dicomdir_file = dicomdir
        self.plain = plain
        self.dicomdir_only = dicomdir_only
        self.directory: AnyDirectory | None = None
        self.fileset_id: str | None = None
        self.problems: list[Finding] = []
        self.refused: list[Finding] = []  # instances the media references or holds that cannot be taken (errors)
        self._files: list[MediaFile] | None = None
        if dicomdir is not None:
            self._load_dicomdir(dicomdir)

    def _load_dicomdir(self, stored: StoredFile) -> None:
        label = show_file_id(stored.file_id)
        if stored.size > MAX_DICOMDIR_BYTES:
            reason = f"DICOMDIR of {stored.size:,} bytes: larger than any real one; scanning the media instead"
            self.problems.append(Finding("dicomdir-corrupt", reason, label))
            return
        if self.plain and self._load_plain(stored):
            return
        from dicommedia.media.dicomdir import DicomdirError, read_dicomdir

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

    def _load_plain(self, stored: StoredFile) -> bool:
        """Read the DICOMDIR without pydicom when :func:`read_plain_dicomdir` takes it; False otherwise."""
        try:
            with self.store.open(stored) as fp:
                directory = read_plain_dicomdir(fp.read())
        except OSError:
            return False  # the tolerant reader meets the same error and reports it
        if directory is None:
            return False
        self.directory, self.fileset_id = directory, directory.fileset_id
        return True

    def files(self) -> Iterator[MediaFile]:
        """Every instance the media holds: those the DICOMDIR references, then the Part 10 files it does not.

        Without a usable DICOMDIR every Part 10 file found is listed; with ``dicomdir_only`` the files no record
        references are left out.
        """
        if self._files is None:
            if self.directory is None:
                self._files = list(self._walk_instances(set(), unreferenced=False))
            else:
                self._files = list(self._referenced())
                if not self.dicomdir_only:
                    taken = {f.stored.names for f in self._files}
                    self._files += self._walk_instances(taken, unreferenced=True)
        return iter(self._files)

    def _referenced(self) -> Iterator[MediaFile]:
        assert self.directory is not None
        seen: dict[tuple[str, ...], AnyRecord] = {}
        inherited: dict[int, dict[str, str | None]] = {}  # records live as long as the directory: ids stay valid
        shared: dict[str, str] = {}  # one string for the values many files repeat (File ID components...)
        for rec in self.directory.active_records():
            components = rec.file_id
            if components is None:
                if rec.record_type not in ("PATIENT", "STUDY", "SERIES") and not rec.children:
                    self.problems.append(warning("record-without-file", f"{rec.describe()} references no file"))
                continue
            components = tuple([shared.setdefault(c, c) for c in components])
            try:
                stored = self.store.locate(components)
            except LocateError as exc:
                self._refuse(Finding(exc.code, f"{rec.describe()}: {exc.message}", show_file_id(components)))
                continue
            if stored.names in seen:
                self.problems.append(
                    Finding(
                        "duplicate-instance",
                        f"{rec.describe()} and {seen[stored.names].describe()} reference one file",
                        show_file_id(components),
                    )
                )
                continue
            seen[stored.names] = rec
            media_file = MediaFile(
                components, stored.size, stored, self.store, rec, **_keys_from_records(rec, inherited, shared)
            )
            if any(getattr(media_file, name) is None for name in _ESSENTIAL):
                self._complete(media_file)
            yield media_file

    def _refuse(self, finding: Finding) -> None:
        """An instance that cannot be taken: a problem, and one of ``refused`` (extract and send count it failed)."""
        self.problems.append(finding)
        self.refused.append(finding)

    def _complete(self, media_file: MediaFile) -> None:
        from dicommedia.media.dicomdir import READ_ERRORS

        try:
            media_file.fill_from(media_file.read_header())
        except READ_ERRORS as exc:
            self.problems.append(
                Finding("corrupt-file", f"cannot read the header: {one_line(exc)}", show_file_id(media_file.file_id))
            )

    def _walk_instances(self, taken: set[tuple[str, ...]], unreferenced: bool) -> Iterator[MediaFile]:
        """The Part 10 instances found by walking the media, except ``taken`` files and DICOMDIRs."""
        for stored in self.store.walk():
            if stored.names in taken or plain_name(stored.names[-1]).upper() == "DICOMDIR":
                continue
            label = show_file_id(stored.file_id)
            try:
                header = read_instance_header(self.store, stored)
            except CorruptPart10 as exc:
                self._refuse(Finding("corrupt-file", f"its header cannot be read: {exc}", label))
                continue
            if header is None or header.file_meta.get("MediaStorageSOPClassUID") == MEDIA_STORAGE_DIRECTORY:
                continue
            media_file = MediaFile(stored.file_id, stored.size, stored, self.store, unreferenced=unreferenced)
            media_file.fill_from(header)
            if unreferenced:
                self.problems.append(
                    warning("unreferenced-file", "a DICOM file no directory record references: listed too", label)
                )
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


class CorruptPart10(Exception):
    """A file with the Part 10 prefix whose header cannot be read: the cause."""


def read_instance_header(store: Store, stored: StoredFile) -> Dataset | None:
    """The header of a Part 10 file (None when the file is not Part 10); CorruptPart10 when it cannot be read.

    pydicom is loaded only for a file with the Part 10 prefix: the IHE PDI files of a disc cost 132 bytes each.
    """
    try:
        with store.open(stored) as fp:
            if not has_dicm(fp):
                return None
    except OSError as exc:
        raise CorruptPart10(one_line(exc)) from None
    from dicommedia.media.dicomdir import READ_ERRORS, read_checked

    try:
        with store.open(stored) as fp:
            return read_checked(fp, stop_before_pixels=True, specific_tags=HEADER_TAGS)
    except READ_ERRORS as exc:
        raise CorruptPart10(one_line(exc)) from None


def _refuse_non_dicomdir(path: Path) -> None:
    """A file given as media must be an ISO image or a DICOMDIR (even a damaged one), not an instance or else."""
    if plain_name(path.name).upper() == "DICOMDIR":
        return
    from dicommedia.media.dicomdir import READ_ERRORS, read_checked

    try:
        with open(path, "rb") as fp:
            part10 = has_dicm(fp)
            fp.seek(0)
            meta = read_checked(fp, stop_before_pixels=True, specific_tags=[]).file_meta if part10 else None
    except READ_ERRORS as exc:
        raise MediaError(f"cannot be read as a DICOMDIR: {one_line(exc)}", str(path), code="dicomdir-corrupt") from None
    if meta is None:
        raise MediaError("not an ISO image, a DICOMDIR or a folder", str(path))
    if meta.get("MediaStorageSOPClassUID") != MEDIA_STORAGE_DIRECTORY:
        raise MediaError("a single DICOM instance, not media", str(path), hint="give the folder or its DICOMDIR")


def open_media(
    path: str | Path, plain: bool = False, dicomdir_only: bool = False, file_system: str | None = None
) -> MediaView:
    """Open an .iso image, a folder (mounted disc, with or without DICOMDIR) or a DICOMDIR file.

    ``plain=True``: a DICOMDIR that :func:`read_plain_dicomdir` takes is read without pydicom (``view.directory``
    is then a :class:`PlainDirectory`); any other goes through the tolerant pydicom reader as usual.
    ``dicomdir_only=True``: list only the files the DICOMDIR references (not the Part 10 files it forgot).
    ``file_system``: ``iso9660`` or ``udf`` reads that side of a bridge image (default: ISO 9660 when present).
    """
    path = Path(path)
    if not path.exists():
        raise MediaError("no such file or folder", str(path))
    if path.is_dir():
        store: Store = FolderStore(path)
        kind = "folder"
    elif file_system or is_iso_image(path) or is_udf_image(path):
        store = open_image(path, file_system)
        kind = store.kind
    else:
        _refuse_non_dicomdir(path)
        store = FolderStore(path.parent)
        dicomdir = StoredFile((path.name,), path.stat().st_size)
        return MediaView(path, "dicomdir", store, dicomdir, plain, dicomdir_only)
    try:
        entry = store.find((), "DICOMDIR")
    except OSError as exc:
        raise MediaError(f"cannot list the media: {one_line(exc)}", str(path), code="iso-structure") from None
    if entry is None or entry.is_dir or entry.is_link:
        view = MediaView(path, "scan" if kind == "folder" else kind, store, None, plain, dicomdir_only)
        if kind != "folder":
            view.problems.append(
                Finding("no-dicomdir", "no DICOMDIR in the root directory; scanning the image", str(path))
            )
        return view
    return MediaView(path, kind, store, StoredFile((entry.name,), entry.size, entry.start), plain, dicomdir_only)


def select(
    files: Iterable[MediaFile],
    patient_ids: Iterable[str] = (),
    study_uids: Iterable[str] = (),
    series_uids: Iterable[str] = (),
) -> list[MediaFile]:
    """The files that pass every given filter (an empty filter lets everything through)."""
    wanted = [
        (set(patient_ids), "patient_id"),
        (set(study_uids), "study_instance_uid"),
        (set(series_uids), "series_instance_uid"),
    ]
    return [f for f in files if all(not values or getattr(f, attr) in values for values, attr in wanted)]
