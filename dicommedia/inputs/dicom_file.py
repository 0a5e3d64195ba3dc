"""Read what planning needs from a DICOM input — header only — and check it can be carried whole.

Explicit VR Little Endian Part 10 files (the usual case) are read by the fast raw reader without pydicom;
every other encoding goes through pydicom. Either way the keys come out as raw Explicit VR LE values.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dicommedia.errors import MediaError, one_line
from dicommedia.part10 import Truncated
from dicommedia.part10.header import RawValue, read_elements, read_raw_header
from dicommedia.part10.vr import UNDEFINED
from dicommedia.standard.dictionary import KEYWORDS, TAGS
from dicommedia.standard.records import RECORD_KEYS, leaf_record_type
from dicommedia.standard.uids import DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_LE, MEDIA_STORAGE_DIRECTORY, is_compressed

# Attributes planning reads besides the record keys: to group, to invent missing keys, to check pixels.
_PLANNING_KEYWORDS = {
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "SeriesDate",
    "SeriesTime",
    "AcquisitionDate",
    "AcquisitionTime",
    "ContentDate",
    "ContentTime",
    "InstanceCreationDate",
    "InstanceCreationTime",
    "PatientBirthDate",
    "PatientSex",
    "Modality",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "BitsAllocated",
    "PhotometricInterpretation",
}
KEY_KEYWORDS = frozenset(_PLANNING_KEYWORDS | {k.keyword for keys in RECORD_KEYS.values() for k in keys})
_WANTED_TAGS = {TAGS[k][0] for k in KEY_KEYWORDS}
# Leaf types whose record keys are derived, not copied (PS3.3 F.5.19.1): read through pydicom.
_DERIVED_KEY_RECORDS = ("SR DOCUMENT", "KEY OBJECT DOC")


# Compact keys (a disc holds up to ~100,000 instances): the keyword -> position table is shared by every input
# with the same attributes, and values seen recently (patient, study, series keys) are shared between instances.
_LAYOUTS: dict[tuple[str, ...], dict[str, int]] = {}
_MAX_LAYOUTS = 1024
_RECENT: dict[RawValue, RawValue] = {}
_MAX_RECENT = 4096


def _layout(names: tuple[str, ...]) -> dict[str, int]:
    """The shared keyword -> position table for inputs holding exactly ``names``."""
    index = _LAYOUTS.get(names)
    if index is None:
        index = {name: i for i, name in enumerate(names)}
        if len(_LAYOUTS) < _MAX_LAYOUTS:
            _LAYOUTS[names] = index
    return index


def _shared(value: RawValue) -> RawValue:
    """An equal value already held by another instance, else this one (remembered for the next instances)."""
    found = _RECENT.get(value)
    if found is None:
        if len(_RECENT) >= _MAX_RECENT:
            _RECENT.clear()
        _RECENT[value] = found = value
    return found


class Keys:
    """Raw attribute values by keyword, as Explicit VR LE bytes, with text access for planning."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: dict[str, RawValue]):
        self._index = _layout(tuple(values))
        self._values = tuple(_shared(v) for v in values.values())

    def raw(self, keyword: str) -> RawValue | None:
        """The encoded value, or None when absent."""
        position = self._index.get(keyword)
        return None if position is None else self._values[position]

    def get(self, keyword: str) -> str | int | RawValue | None:
        """Text, a number for binary integers, the raw value of a sequence; None when absent or empty."""
        raw = self.raw(keyword)
        if raw is None:
            return None
        if raw.vr in ("US", "SS", "UL", "SL"):
            return raw.number()
        if raw.vr == "SQ":
            return raw if raw.value else None
        return raw.text() or None

    def charsets(self) -> list[str]:
        """Specific Character Set values (empty: the default repertoire)."""
        value = self.get("SpecificCharacterSet")
        return [v.strip() for v in str(value).split("\\")] if value else []

    def display(self, keyword: str) -> str:
        """A text value decoded with the file's character set, for people to read."""
        raw = self.raw(keyword)
        if raw is None:
            return ""
        if raw.value.isascii() and b"\x1b" not in raw.value:  # ISO 2022 escapes are ASCII bytes too
            return raw.text()
        from pydicom.charset import convert_encodings, decode_bytes

        encodings = convert_encodings(self.charsets() or ["ISO_IR 100"])
        return decode_bytes(raw.value, encodings, set()).rstrip(" \x00")


@dataclass(frozen=True, slots=True)
class Source:
    """Where an input's bytes come from: a file on disk, or a file on a disc being re-mastered."""

    label: str
    size: int
    path: str | None = None  # a str, not a Path: many thousand are kept
    opener: Callable[[], BinaryIO] | None = None
    origin: str = ""  # the input argument it came from (references are fixed within one origin)

    def open(self) -> BinaryIO:
        """Open the bytes for reading."""
        if self.path is not None:
            return open(self.path, "rb")
        assert self.opener is not None
        return self.opener()

    def read_bytes(self) -> bytes:
        """All the bytes (only for the few inputs that must be decoded)."""
        with self.open() as fp:
            return fp.read()


@dataclass(slots=True)
class InstanceHeader:
    """One DICOM input as planning sees it: identity, encoding, where its dataset starts, and its keys."""

    source: Source
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    body_offset: int | None  # first byte after File Meta when the body can be copied verbatim, else None
    keys: Keys
    has_pixel_data: bool
    image_sector: int = 0  # where writers/early_copy.py put its bytes in the image (0: not copied early)


def expected_pixel_bytes(keys: Keys) -> int | None:
    """Bytes native Pixel Data needs for Rows x Columns x Samples x Frames at Bits Allocated (PS3.5 8.1.1)."""
    try:
        rows, cols, bits = int(keys.get("Rows")), int(keys.get("Columns")), int(keys.get("BitsAllocated"))
    except (TypeError, ValueError):
        return None
    samples = int(keys.get("SamplesPerPixel") or 1)
    frames = int(keys.get("NumberOfFrames") or 1) if str(keys.get("NumberOfFrames") or "1").isdigit() else 1
    if keys.get("PhotometricInterpretation") == "YBR_FULL_422":
        samples = 2  # two chroma samples shared by each pixel pair (PS3.3 C.7.6.3.1.2)
    return (rows * cols * samples * frames * bits + 7) // 8


def _check_native_length(keys: Keys, length: int | None, syntax: str) -> None:
    if length is None or length == UNDEFINED or is_compressed(syntax):
        return
    needed = expected_pixel_bytes(keys)
    if needed is not None and length < needed:
        raise MediaError(f"Pixel Data holds {length} bytes, the image needs {needed}", hint="the file is damaged")


def _fast_keys(values: dict[int, RawValue]) -> Keys | None:
    """Keys from the raw reader; None when a value's VR is not the dictionary's (then pydicom decides)."""
    out = {}
    for tag, raw in values.items():
        keyword = KEYWORDS[tag]
        if raw.vr != TAGS[keyword][1]:
            return None
        out[keyword] = raw
    return Keys(out)


def _pydicom_header(source: Source, body_offset: int | None) -> InstanceHeader:
    """The slow path: any encoding pydicom reads; record keys derived where PS3.3 F.5 says so."""
    from pydicom import dcmread
    from pydicom.dataset import Dataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    from pydicom.sequence import Sequence

    from dicommedia.standard.records import concept_modifiers

    with source.open() as fp:
        ds = dcmread(fp, force=True, defer_size=4096)
        syntax = _detected_syntax(ds)
        # Deflated files are inflated while read: positions are in the inflated stream (PS3.5 A.5).
        short = _cut_short(ds, None if syntax == DEFLATED_EXPLICIT_VR_LE else source.size)
        if short:
            raise MediaError(f"truncated: {short}", hint="the file was cut short; copy it again from its source")
        raw = ds.get_item(0x7FE00010, keep_deferred=True)
        has_pixels = raw is not None
        length = (
            getattr(raw, "length", None)
            if raw is not None and hasattr(raw, "value_tell")
            else (len(ds.PixelData) if has_pixels and ds["PixelData"].value is not None else None)
        )
        sub = Dataset()
        for keyword in sorted(KEY_KEYWORDS, key=lambda k: TAGS[k][0]):
            if keyword in ds and keyword != "ContentSequence":
                sub[keyword] = ds[keyword]
        record_type = leaf_record_type(str(ds.get("SOPClassUID", "")), str(ds.get("Modality", "")))
        if record_type in _DERIVED_KEY_RECORDS:
            modifiers = concept_modifiers(ds)
            if modifiers:
                sub.ContentSequence = Sequence(modifiers)
            if str(ds.get("VerificationFlag", "")).upper() == "VERIFIED":
                # Verification DateTime (1C when VERIFIED) is the latest verifying observer's (PS3.3 F.5.19).
                times = [str(i.get("VerificationDateTime", "")) for i in ds.get("VerifyingObserverSequence", [])]
                if any(times):
                    sub.VerificationDateTime = max(times)
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    write_dataset(out, sub)
    keys = Keys({KEYWORDS[tag]: value for tag, value in read_elements(out.getvalue()).items()})
    _check_native_length(keys, length, syntax)
    return _header(source, keys, syntax, body_offset if syntax == EXPLICIT_VR_LE else None, has_pixels)


def _cut_short(ds, size: int | None) -> str | None:
    """Which element the file ends inside, if any: pydicom reads a cut value short without a word."""
    from pydicom.datadict import keyword_for_tag
    from pydicom.dataelem import RawDataElement

    for tag in ds.keys():
        elem = ds.get_item(tag, keep_deferred=True)
        name = keyword_for_tag(tag) or f"({tag.group:04X},{tag.element:04X})"
        if isinstance(elem, RawDataElement):
            if elem.length == UNDEFINED:
                continue
            if elem.value is not None and len(elem.value) < elem.length:
                return f"{name} needs {elem.length} bytes, the file ends after {len(elem.value)}"
            if elem.value is None and size is not None and elem.value_tell + elem.length > size:
                return f"{name} needs {elem.value_tell + elem.length} bytes, the file has {size}"
        elif elem.VR == "SQ":
            for item in elem.value or []:
                short = _cut_short(item, size)
                if short:
                    return short
    return None


def _detected_syntax(ds) -> str:
    meta_ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if meta_ts:
        return str(meta_ts)
    if ds.original_encoding[0]:
        return "1.2.840.10008.1.2"
    return EXPLICIT_VR_LE if ds.original_encoding[1] else "1.2.840.10008.1.2.2"


def _header(source: Source, keys: Keys, syntax: str, body_offset: int | None, has_pixels: bool) -> InstanceHeader:
    sop_class = sys.intern(str(keys.get("SOPClassUID") or ""))  # one string for the thousands of a class
    sop_instance = str(keys.get("SOPInstanceUID") or "")
    if not sop_class:
        raise MediaError("no SOP Class UID (0008,0016): not a DICOM composite object", source.label)
    if sop_class == MEDIA_STORAGE_DIRECTORY:
        raise MediaError(
            "a DICOMDIR is not an instance (give it as an input of its own to re-master its disc)", source.label
        )
    if not sop_instance:
        raise MediaError("no SOP Instance UID (0008,0018)", source.label)
    return InstanceHeader(source, sop_class, sop_instance, syntax, body_offset, keys, has_pixels)


def read_header(source: Source) -> InstanceHeader:
    """Read an input's header (pixel data skipped); raise MediaError naming the file if it is unusable."""
    try:
        with source.open() as fp:
            parsed = read_raw_header(fp, source.size, _WANTED_TAGS)
        keys = _fast_keys(parsed.values) if parsed and parsed.transfer_syntax == EXPLICIT_VR_LE else None
        if (
            keys is not None
            and leaf_record_type(str(keys.get("SOPClassUID") or ""), str(keys.get("Modality") or ""))
            not in _DERIVED_KEY_RECORDS
        ):
            _check_native_length(keys, parsed.pixel_length, parsed.transfer_syntax)
            return _header(source, keys, EXPLICIT_VR_LE, parsed.body_offset, parsed.pixel_offset is not None)
        return _pydicom_header(source, parsed.body_offset if parsed else None)
    except Truncated as exc:
        raise MediaError(f"truncated: {exc}", source.label, "the file was cut short; copy it again") from None
    except MediaError as exc:
        raise MediaError(exc.message, exc.subject or source.label, exc.hint) from None
    except OSError as exc:
        raise MediaError(f"cannot be read: {exc.strerror or exc}", source.label) from None
    except Exception as exc:  # pydicom raises assorted types on damaged input
        raise MediaError(f"not a readable DICOM file: {one_line(exc)}", source.label) from None


def file_source(path: Path, origin: str = "") -> Source:
    """A source for a file on disk."""
    name = str(path)
    return Source(label=name, size=os.stat(name).st_size, path=name, origin=origin)
