"""Read what planning needs from a DICOM input — header only — and check it can be carried whole."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from dicommedia.errors import MediaError
from dicommedia.standard.records import RECORD_KEYS

PIXEL_DATA = Tag(0x7FE0, 0x0010)
_UNDEFINED = 0xFFFFFFFF
_VALID_VRS = {
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"OB", b"OD", b"OF",
    b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM", b"UC", b"UI", b"UL", b"UN",
    b"UR", b"US", b"UT", b"UV",
}
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}

# Attributes planning reads besides the record keys: to group, to invent missing keys, to name things.
_PLANNING_KEYWORDS = {
    "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "SeriesDate", "SeriesTime", "AcquisitionDate",
    "AcquisitionTime", "ContentDate", "ContentTime", "InstanceCreationDate", "InstanceCreationTime",
    "PatientBirthDate", "PatientSex", "Modality", "BodyPartExamined", "NumberOfFrames", "Rows", "Columns",
    "VerifyingObserverSequence",
}
_KEY_KEYWORDS = sorted(_PLANNING_KEYWORDS | {k.keyword for keys in RECORD_KEYS.values() for k in keys})


@dataclass(frozen=True)
class Source:
    """Where an input's bytes come from: a file on disk, or a file on a disc being re-mastered."""

    label: str
    size: int
    path: Path | None = None
    opener: Callable[[], BinaryIO] | None = None
    origin: str = ""  # the input argument it came from (references are fixed within one origin)

    def open(self) -> BinaryIO:
        """Open the bytes for reading."""
        if self.path is not None:
            return self.path.open("rb")
        assert self.opener is not None
        return self.opener()

    def read_bytes(self) -> bytes:
        """All the bytes (only for the few inputs that must be decoded)."""
        with self.open() as fp:
            return fp.read()


@dataclass
class InstanceHeader:
    """One DICOM input as planning sees it: identity, encoding, where its dataset starts, and its keys."""

    source: Source
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    body_offset: int | None  # first byte after File Meta when the body can be copied verbatim, else None
    keys: Dataset  # the attributes directory records and planning need, as read from the file
    has_pixel_data: bool


def _meta_end(fp: BinaryIO) -> int | None:
    """Offset of the first dataset byte after a well-formed Part 10 File Meta group (PS3.10 7.1), else None."""
    fp.seek(128)
    if fp.read(4) != b"DICM":
        return None
    pos = 132
    while True:
        head = fp.read(8)
        if len(head) < 8:
            return None
        group, _element = struct.unpack("<HH", head[:4])
        if group != 0x0002:
            return pos
        vr = head[4:6]
        if vr not in _VALID_VRS:
            return None
        if vr in _LONG_VRS:
            extra = fp.read(4)
            if len(extra) < 4:
                return None
            length = struct.unpack("<I", extra)[0]
            header = 12
        else:
            length = struct.unpack("<H", head[6:8])[0]
            header = 8
        if length == _UNDEFINED:
            return None
        pos += header + length
        fp.seek(pos)


def _body_is_explicit_le(fp: BinaryIO, offset: int) -> bool:
    """True when the dataset really starts with an Explicit VR Little Endian element."""
    fp.seek(offset)
    head = fp.read(6)
    return len(head) == 6 and struct.unpack("<H", head[:2])[0] >= 0x0008 and head[4:6] in _VALID_VRS


def _detected_syntax(ds: Dataset) -> str:
    meta_ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if meta_ts:
        return str(meta_ts)
    if ds.original_encoding[0]:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if ds.original_encoding[1] else ExplicitVRBigEndian


def expected_pixel_bytes(ds: Dataset) -> int | None:
    """Bytes native Pixel Data needs for Rows x Columns x Samples x Frames at Bits Allocated (PS3.5 8.1.1)."""
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.BitsAllocated)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return None
    total_bits = rows * cols * samples * frames * bits
    return (total_bits + 7) // 8


def _check_pixel_data(ds: Dataset, size: int, ts: str) -> None:
    raw = ds.get_item(PIXEL_DATA, keep_deferred=True)
    if raw is None:
        return
    if isinstance(raw, RawDataElement):
        if raw.length == _UNDEFINED:
            return
        # Deflated files are inflated while read: positions are in the inflated stream (PS3.5 A.5).
        if ts != DeflatedExplicitVRLittleEndian and raw.value_tell + raw.length > size:
            raise MediaError(
                f"truncated: Pixel Data needs {raw.value_tell + raw.length} bytes, the file has {size}",
                hint="the file was cut short; copy it again from its source",
            )
        length = raw.length
    else:
        if ds[PIXEL_DATA].is_undefined_length or UID(ts).is_compressed:
            return
        length = len(ds[PIXEL_DATA].value or b"")
    if UID(ts).is_compressed:
        return
    needed = expected_pixel_bytes(ds)
    if needed is not None and length < needed:
        raise MediaError(f"Pixel Data holds {length} bytes, the image needs {needed}", hint="the file is damaged")


def _keys_of(ds: Dataset) -> Dataset:
    keys = Dataset()
    for keyword in _KEY_KEYWORDS:
        if keyword in ds:
            keys[keyword] = ds[keyword]
    return keys


def read_header(source: Source) -> InstanceHeader:
    """Read an input's header (pixel data skipped, large values deferred); raise MediaError if it is unusable."""
    try:
        with source.open() as fp:
            body_offset = _meta_end(fp)
            fp.seek(0)
            ds = dcmread(fp, force=True, defer_size=4096)
            ts = _detected_syntax(ds)
            if body_offset is not None and not (
                ts == ExplicitVRLittleEndian and _body_is_explicit_le(fp, body_offset)
            ):
                body_offset = None
            _check_pixel_data(ds, source.size, ts)
            keys = _keys_of(ds)
    except MediaError as exc:
        raise MediaError(exc.message, source.label, exc.hint) from None
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError, struct.error, IndexError) as exc:
        raise MediaError(f"not a readable DICOM file ({type(exc).__name__}: {exc})", source.label) from None
    sop_class = str(keys.get("SOPClassUID", "") or "")
    sop_instance = str(keys.get("SOPInstanceUID", "") or "")
    if not sop_class:
        raise MediaError("no SOP Class UID (0008,0016): not a DICOM composite object", source.label)
    if sop_class == "1.2.840.10008.1.3.10":
        raise MediaError("a DICOMDIR is not an instance (give it as an input of its own to re-master its disc)", source.label)
    if not sop_instance:
        raise MediaError("no SOP Instance UID (0008,0018)", source.label)
    return InstanceHeader(
        source=source,
        sop_class_uid=sop_class,
        sop_instance_uid=sop_instance,
        transfer_syntax_uid=ts,
        body_offset=body_offset,
        keys=keys,
        has_pixel_data=PIXEL_DATA in ds,
    )


def file_source(path: Path, origin: str = "") -> Source:
    """A source for a file on disk."""
    return Source(label=str(path), size=path.stat().st_size, path=path, origin=origin)


def read_dataset(source: Source) -> Dataset:
    """Read a whole input dataset (pixels included), for the instances that must be re-encoded."""
    try:
        with source.open() as fp:
            data = fp.read()
        return dcmread(io.BytesIO(data), force=True)
    except Exception as exc:  # pydicom raises many types on damaged input
        raise MediaError(f"cannot be decoded ({type(exc).__name__}: {exc})", source.label) from None
