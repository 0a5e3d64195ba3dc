"""One view over DICOM media: an ISO image, a mounted disc, a DICOMDIR, or a folder of Part 10 files."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Union

from dicommedia.errors import MediaError
from dicommedia.media.findings import Finding, one_line, show_file_id, warning
from dicommedia.media.store import FolderStore, LocateError, Store, StoredFile, is_iso_image, plain_name
from dicommedia.media.udf import is_udf_image, open_image
from dicommedia.part10 import read_file_meta
from dicommedia.part10.vr import LONG_VRS_BYTES
from dicommedia.standard.file_id import split_file_id
from dicommedia.standard.uids import EXPLICIT_VR_LE, MEDIA_STORAGE_DIRECTORY

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
# Keys without which an instance cannot be placed in the listing or sent: read from the file when absent.
_ESSENTIAL = ("study_instance_uid", "series_instance_uid", "sop_instance_uid", "sop_class_uid", "transfer_syntax_uid")


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


_LONG_VRS = LONG_VRS_BYTES
_UL = struct.Struct("<I")
_ELEMENT = struct.Struct("<HH2sH")  # Explicit VR element header: group, element, VR, 16-bit length (PS3.5 7.1.2)
split_part10 = read_file_meta  # the name read/send.py imports

# DICOMDIR elements the plain reader keeps (PS3.3 F.3.2.1/F.3.2.2, and the keys of _KEYS): keyword -> tag.
_TAGS = {
    "FileSetID": 0x00041130,
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
_BINARY = {_TAGS[k] for k in _TAGS if k.startswith("Offset") or k == "RecordInUseFlag"}
_RECORD_SEQUENCE, _ITEM, _ITEM_END, _SEQ_END = 0x00041220, 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF


class NotPlain(Exception):
    """The DICOMDIR needs the tolerant pydicom reader: the reason (damage, encoding, non-ASCII text...)."""


def _number(raw: bytes) -> int:
    return int.from_bytes(raw[:4], "little") if raw else 0


@dataclass(eq=False)
class PlainRecord:
    """A directory record as the plain reader keeps it: the elements of _TAGS, raw; the same API as ``Record``."""

    index: int
    offset: int
    values: dict[int, bytes]
    parent: PlainRecord | None = None
    children: list[PlainRecord] = field(default_factory=list)

    @property
    def record_type(self) -> str:
        """Directory Record Type (0004,1430), upper case ("" when absent)."""
        return self.values.get(_TAGS["DirectoryRecordType"], b"").decode("ascii").strip(" \0").upper()

    @property
    def in_use(self) -> bool:
        """False when Record In-use Flag (0004,1410) is 0x0000 (PS3.3 F.3.2.2)."""
        flag = self.values.get(_TAGS["RecordInUseFlag"])
        return flag is None or int.from_bytes(flag[:2], "little") != 0

    @property
    def file_id(self) -> tuple[str, ...] | None:
        """Referenced File ID components, or None when the record references no file."""
        value = self.key("ReferencedFileID")
        return None if value is None else split_file_id(value)

    def key(self, keyword: str) -> str | None:
        """A text element's value (None when absent or empty)."""
        raw = self.values.get(_TAGS[keyword])
        return (raw.decode("ascii").strip(" \0").strip() or None) if raw else None

    def offset_of(self, keyword: str) -> int:
        """An offset element's value (0 when absent)."""
        return _number(self.values.get(_TAGS[keyword], b""))

    def describe(self) -> str:
        """How messages name this record (as ``Record.describe``)."""
        return f"{self.record_type or 'untyped'} record #{self.index + 1} at offset {self.offset}"


@dataclass
class PlainDirectory:
    """A DICOMDIR read without pydicom: what the view needs of a ``Directory``, with no findings by construction."""

    fileset_id: str | None
    records: list[PlainRecord]
    roots: list[PlainRecord]
    findings: list[Finding] = field(default_factory=list)
    followed_offsets: bool = True

    def active_records(self) -> list[PlainRecord]:
        """Records in tree order (depth first) whose In-use Flag is not cleared; children of inactive ones skipped."""
        out: list[PlainRecord] = []
        stack = list(reversed(self.roots))
        while stack:
            rec = stack.pop()
            if rec.in_use:
                out.append(rec)
                stack.extend(reversed(rec.children))
        return out


AnyRecord = Union["Record", PlainRecord]


class _PlainWalk:
    """Explicit VR Little Endian elements of a DICOMDIR (PS3.10 8.6 mandates that encoding), bounds checked."""

    def __init__(self, data: bytes):
        self.data = data
        self.records: list[tuple[int, dict[int, bytes]]] = []  # (item offset, kept values) of (0004,1220)

    def header(self, pos: int) -> tuple[int, bytes, int, int]:
        """(tag, VR, value start, value length) of the element at ``pos``."""
        data = self.data
        if pos + 8 > len(data):
            raise NotPlain("the file ends inside an element header")
        group, element, vr, short = _ELEMENT.unpack_from(data, pos)
        if group == 0xFFFE:  # item and delimiters carry no VR (PS3.5 7.5)
            return group << 16 | element, b"", pos + 8, _UL.unpack_from(data, pos + 4)[0]
        if vr in _LONG_VRS:
            return group << 16 | element, vr, pos + 12, _UL.unpack_from(data, pos + 8)[0]
        if not vr.isalpha() or not vr.isupper():
            raise NotPlain(f"no explicit VR at byte {pos}")
        return group << 16 | element, vr, pos + 8, short

    def elements(self, pos: int, end: int | None, values: dict[int, bytes] | None, top: bool = False) -> int:
        """Walk elements from ``pos`` to ``end`` (or to an item delimiter when None); keep _KEPT ones in ``values``.

        ``top``: the data set itself, whose Directory Record Sequence items go to ``records``.
        """
        data = self.data
        limit = len(data) if end is None else end
        unpack = _ELEMENT.unpack_from
        while pos < limit:
            if pos + 8 > len(data):
                raise NotPlain("the file ends inside an element header")
            group, element, vr, length = unpack(data, pos)  # the common case inline: one call per element
            if group == 0xFFFE or vr in _LONG_VRS:
                tag, vr, start, length = self.header(pos)
            else:
                tag, start = group << 16 | element, pos + 8
                if not vr.isalpha() or not vr.isupper():
                    raise NotPlain(f"no explicit VR at byte {pos}")
            if tag == _ITEM_END and end is None:
                return start
            if tag >> 16 == 0xFFFE:
                raise NotPlain(f"unexpected delimiter at byte {pos}")
            if vr == b"SQ":
                keep = top and tag == _RECORD_SEQUENCE and not self.records
                pos = self.sequence(start, length, self.records if keep else None)
                continue
            if length == _UNDEFINED:
                raise NotPlain(f"undefined length outside a sequence at byte {pos}")
            pos = start + length
            if pos > limit:
                raise NotPlain(f"element at byte {start - 8} runs past its end")
            if values is not None and tag in _KEPT:
                value = data[start:pos]
                if tag not in _BINARY and (
                    not value.isascii()
                    or b"\x1b" in value
                    or b"\x7f" in value
                    or (b"\\" in value and tag != _TAGS["ReferencedFileID"])
                ):
                    raise NotPlain("text that is not plain ASCII, or multi-valued")
                values[tag] = value
        if end is None:
            raise NotPlain("an item of undefined length has no delimiter")
        if pos != end:
            raise NotPlain("an element runs past its item")
        return pos

    def sequence(self, start: int, length: int, items: list[tuple[int, dict[int, bytes]]] | None) -> int:
        """Walk a sequence's items; with ``items``, keep (item offset, kept values) of each."""
        end = None if length == _UNDEFINED else start + length
        pos = start
        while end is None or pos < end:
            tag, _, body, item_length = self.header(pos)
            if tag == _SEQ_END and end is None:
                return body
            if tag != _ITEM:
                raise NotPlain(f"no item tag at byte {pos}")
            values: dict[int, bytes] | None = {} if items is not None else None
            item_end = None if item_length == _UNDEFINED else body + item_length
            after = self.elements(body, item_end, values)
            if items is not None:
                items.append((pos, values))  # type: ignore[arg-type]
            pos = after
        if pos != end:
            raise NotPlain("an item runs past its sequence")
        return pos


def read_plain_dicomdir(data: bytes) -> PlainDirectory | None:
    """A well-formed DICOMDIR read without pydicom, or None when it needs the tolerant reader.

    Taken only when it is Explicit VR Little Endian to its last byte, its text plain ASCII single values, and its
    record offsets (PS3.3 F.3.2.1) link every record in use exactly once: the case where the tolerant reader
    finds nothing to report. Anything else (damage, other encodings, character sets) goes to pydicom.
    """
    try:
        meta, pos = read_file_meta(data)
        if meta.get("TransferSyntaxUID") != EXPLICIT_VR_LE:
            return None
        walk = _PlainWalk(data)
        header: dict[int, bytes] = {}
        walk.elements(pos, len(data), header, top=True)
        items = walk.records
        if not items:
            return None
    except (NotPlain, ValueError, struct.error, UnicodeDecodeError):
        return None
    records = [PlainRecord(index, offset, values) for index, (offset, values) in enumerate(items)]
    roots = _link_plain(
        records, _number(header.get(_TAGS["OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity"], b""))
    )
    if roots is None:
        return None
    last = _number(header.get(_TAGS["OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity"], b""))
    if last and roots and last != roots[-1].offset:
        return None
    fileset = header.get(_TAGS["FileSetID"], b"").decode("ascii").strip(" \0") or None
    return PlainDirectory(fileset, records, roots)


def _link_plain(records: list[PlainRecord], first: int) -> list[PlainRecord] | None:
    """The record tree by offsets; None when an offset misses, loops, or leaves a record in use unreachable."""
    by_offset = {rec.offset: rec for rec in records}
    seen: set[int] = set()

    def chain(offset: int, parent: PlainRecord | None) -> list[PlainRecord] | None:
        out = []
        while offset:
            rec = by_offset.get(offset)
            if rec is None or rec.index in seen:
                return None
            seen.add(rec.index)
            rec.parent = parent
            out.append(rec)
            offset = rec.offset_of("OffsetOfTheNextDirectoryRecord")
        for rec in out:
            lower = rec.offset_of("OffsetOfReferencedLowerLevelDirectoryEntity")
            children = chain(lower, rec) if lower else []
            if children is None:
                return None
            rec.children = children
        return out

    roots = chain(first, None)
    if roots is None or any(rec.index not in seen and rec.in_use for rec in records):
        return None
    return roots


@dataclass(eq=False)
class MediaFile:
    """An instance on the media: where it is, how big, and its DICOMDIR keys (None when unknown)."""

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
    leaf: AnyRecord, inherited: dict[int, dict[str, str | None]] | None = None
) -> dict[str, str | None]:
    """Keys of an instance gathered from its leaf record and its PATIENT/STUDY/SERIES ancestors.

    ``inherited``: a cache of the ancestors' keys by parent record, for the many leaves of one series.
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
            keys[name] = leaf.key(keyword)
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
        self.directory: Directory | PlainDirectory | None = None
        self.fileset_id: str | None = None
        self.problems: list[Finding] = []
        self.refused: list[Finding] = []  # instances the media references or holds that cannot be taken (errors)
        self._files: list[MediaFile] | None = None
        if dicomdir is not None:
            self._load_dicomdir(dicomdir)

    def _load_dicomdir(self, stored: StoredFile) -> None:
        if self.plain and self._load_plain(stored):
            return
        from dicommedia.media.dicomdir import DicomdirError, read_dicomdir

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
                self._refuse(Finding(exc.code, f"{rec.describe()}: {exc.message}", label))
                continue
            if stored.names in seen:
                self.problems.append(
                    Finding(
                        "duplicate-instance",
                        f"{rec.describe()} and {seen[stored.names].describe()} reference one file",
                        label,
                    )
                )
                continue
            seen[stored.names] = rec
            media_file = MediaFile(
                components, stored.size, stored, self.store, rec, **_keys_from_records(rec, inherited)
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
                Finding("corrupt-file", f"cannot read the header: {exc}", show_file_id(media_file.file_id))
            )

    def _walk_instances(self, taken: set[tuple[str, ...]], unreferenced: bool) -> Iterator[MediaFile]:
        """The Part 10 instances found by walking the media, except ``taken`` files and DICOMDIRs."""
        for stored in self.store.walk():
            if stored.names in taken or plain_name(stored.names[-1]).upper() == "DICOMDIR":
                continue
            label = show_file_id(stored.file_id)
            try:
                header = read_part10_header(self.store, stored)
            except CorruptPart10 as exc:
                self.problems.append(
                    Finding("corrupt-file", f"a Part 10 file whose header cannot be read: {exc}", label)
                )
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


def has_dicm(fp: BinaryIO) -> bool:
    """True when the file has a 128-byte preamble followed by ``DICM`` (PS3.10 7.1)."""
    head = fp.read(132)
    return len(head) == 132 and head[128:] == b"DICM"


class CorruptPart10(Exception):
    """A file with the Part 10 prefix whose header cannot be read: the cause."""


def read_part10_header(store: Store, stored: StoredFile) -> Dataset | None:
    """The header of a Part 10 file (None when the file is not Part 10); CorruptPart10 when it cannot be read."""
    from dicommedia.media.dicomdir import READ_ERRORS, read_checked

    try:
        with store.open(stored) as fp:
            if not has_dicm(fp):
                return None
            fp.seek(0)
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
        raise MediaError(f"cannot be read as a DICOMDIR: {exc}", str(path)) from None
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
        raise MediaError(f"cannot list the media: {exc}", str(path)) from None
    if entry is None or entry.is_dir or entry.is_link:
        view = MediaView(path, "scan" if kind == "folder" else kind, store, None, plain, dicomdir_only)
        if kind != "folder":
            view.problems.append(
                Finding("no-dicomdir", "no DICOMDIR in the root directory; scanning the image", str(path))
            )
        return view
    return MediaView(path, kind, store, StoredFile((entry.name,), entry.size, entry.start), plain, dicomdir_only)
