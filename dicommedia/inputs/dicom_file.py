"""Read what planning needs from a DICOM input — header only — and check it can be carried whole.

Explicit VR Little Endian Part 10 files (the usual case) are read by the fast raw reader without pydicom;
every other encoding goes through pydicom. Either way the keys come out as raw Explicit VR LE values.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from dicommedia.errors import MediaError, one_line
from dicommedia.part10 import Truncated
from dicommedia.part10.header import RawValue, read_elements, read_raw_header
from dicommedia.part10.meta import without_stray_meta
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
_KEYWORD_AND_VR = {TAGS[k][0]: (k, TAGS[k][1]) for k in KEY_KEYWORDS}
# Leaf types whose record keys are derived, not copied (PS3.3 F.5.19.1): read through pydicom.
_DERIVED_KEY_RECORDS = ("SR DOCUMENT", "KEY OBJECT DOC")


# Compact keys (a disc holds up to ~100,000 instances). Instances with the same attributes and the same
# patient, study and series values share one _Shape: the keyword -> position table and those values. Each
# instance holds only the values that change from one instance to the next, in one bytes object: its UID and
# number, and those of the attributes below that differ from the previous input's of its series.
K = TypeVar("K")
T = TypeVar("T")
_OWN_KEYWORDS = frozenset({"SOPInstanceUID", "InstanceNumber"})
_VARYING_KEYWORDS = frozenset(
    {
        "ContentDate",
        "ContentTime",
        "AcquisitionDate",
        "AcquisitionTime",
        "InstanceCreationDate",
        "InstanceCreationTime",
        "NumberOfFrames",
        "ReferencedImageSequence",
    }
)
# The latest values of those by Series Instance UID (in whatever order the inputs come); a stale or missing one
# only costs memory, never a value.
_PREVIOUS: dict[bytes, dict[str, RawValue]] = {}
_MAX_PREVIOUS = 64
_LENGTH = struct.Struct("<I")
_LONG = 255
_LAYOUTS: dict[tuple[str, ...], dict[str, int]] = {}
_MAX_LAYOUTS = 1024
_RECENT: dict[tuple[str, bytes, bool], RawValue] = {}  # by its fields: hashed and compared without Python calls
_RECENT_NUMBERS: dict[int, int] = {}  # file sizes: equal for the slices of a series
_RECENT_ENCODINGS: dict[tuple, tuple] = {}
_MAX_RECENT = 4096
_SHAPES: dict[tuple, _Shape] = {}
_OWN_TABLES: dict[tuple, dict[int, tuple[int, str, bool]]] = {}  # shared by shapes whose own values sit alike
_MAX_SHAPES = 4096
_LAST_SHAPE: list = [None, None]  # the key and shape of the latest input: most often the next one's too


def _layout(names: tuple[str, ...]) -> dict[str, int]:
    """The shared keyword -> position table for inputs holding exactly ``names``."""
    index = _LAYOUTS.get(names)
    if index is None:
        index = {name: i for i, name in enumerate(names)}
        if len(_LAYOUTS) < _MAX_LAYOUTS:
            _LAYOUTS[names] = index
    return index


def _shared(key: K, value: T, recent: dict[K, T], limit: int = _MAX_RECENT) -> T:
    """An equal value already held by another instance, else this one (remembered for the next instances)."""
    found = recent.get(key)
    if found is None:
        if len(recent) >= limit:
            recent.clear()
        recent[key] = found = value
    return found


def shared_number(value: int) -> int:
    """An equal int already held by another instance, else this one: one object for the thousands of equal sizes."""
    return _shared(value, value, _RECENT_NUMBERS)


@dataclass(frozen=True, slots=True, eq=False)
class _Shape:
    """What instances with the same attributes and upper-level values share: the keyword -> position table,
    the shared values (None where each instance has its own), and each own value's slot, VR and length kind."""

    index: dict[str, int]
    values: tuple[RawValue | None, ...]
    own: dict[int, tuple[int, str, bool]]


def _shape(names: tuple[str, ...], values: tuple[RawValue | None, ...], own: list[RawValue]) -> _Shape:
    """The shared shape for these attributes and shared values (made once, remembered while there is room)."""
    kinds = tuple((v.vr, v.undefined_length) for v in own)
    key = (names, values, kinds)
    if key == _LAST_SHAPE[0]:  # the shared values are the same objects: compared without hashing them
        return _LAST_SHAPE[1]
    found = _SHAPES.get(key)
    if found is None:
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.clear()
        positions = tuple(i for i, v in enumerate(values) if v is None)
        slots = {p: (slot, *kind) for slot, (p, kind) in enumerate(zip(positions, kinds))}
        _SHAPES[key] = found = _Shape(_layout(names), values, _shared((positions, kinds), slots, _OWN_TABLES))
    _LAST_SHAPE[:] = key, found
    return found


def _same(a: RawValue | None, b: RawValue) -> bool:
    return a is not None and a.value == b.value and a.vr == b.vr and a.undefined_length == b.undefined_length


def _length(length: int) -> bytes:
    """How an own value's length is kept: one byte, or 255 and four bytes."""
    return bytes((length,)) if length < _LONG else bytes((_LONG,)) + _LENGTH.pack(length)


class Keys:
    """Raw attribute values by keyword, as Explicit VR LE bytes, with text access for planning."""

    __slots__ = ("_shape", "_own")

    def __init__(self, values: dict[str, RawValue]):
        series = values.get("SeriesInstanceUID")
        previous = _shared(b"" if series is None else series.value, {}, _PREVIOUS, _MAX_PREVIOUS)
        shared: list[RawValue | None] = []
        own: list[RawValue] = []
        for keyword, v in values.items():
            if keyword in _VARYING_KEYWORDS:
                changed = not _same(previous.get(keyword), v)
                previous[keyword] = v
            else:
                changed = keyword in _OWN_KEYWORDS
            if changed:
                own.append(v)
                shared.append(None)
            else:
                shared.append(_shared((v.vr, v.value, v.undefined_length), v, _RECENT))
        self._shape = _shape(tuple(values), tuple(shared), own)
        self._own = b"".join([_length(len(v.value)) + v.value for v in own])

    def raw(self, keyword: str) -> RawValue | None:
        """The encoded value, or None when absent."""
        shape = self._shape
        position = shape.index.get(keyword)
        if position is None:
            return None
        value = shape.values[position]
        if value is not None:
            return value
        slot, vr, undefined = shape.own[position]
        own, start = self._own, 0
        while True:
            length, start = own[start], start + 1
            if length == _LONG:
                length, start = _LENGTH.unpack_from(own, start)[0], start + _LENGTH.size
            if not slot:
                return RawValue(vr, own[start : start + length], undefined)
            start, slot = start + length, slot - 1

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


class InstanceHeader(Keys):
    """One DICOM input as planning sees it: identity, encoding, where its dataset starts, and its keys (it is
    its own Keys: one object per input, not two)."""

    __slots__ = ("source", "_encoding", "image_sector")

    def __init__(
        self,
        source: Source,
        sop_class_uid: str,
        transfer_syntax_uid: str,
        body_offset: int | None,
        keys: Keys,
        has_pixel_data: bool,
    ):
        self._shape, self._own, self.source = keys._shape, keys._own, source
        encoding = (sop_class_uid, transfer_syntax_uid, body_offset, has_pixel_data)
        self._encoding = _shared(encoding, encoding, _RECENT_ENCODINGS)  # one tuple for the slices of a series
        self.image_sector = 0  # where writers/early_copy.py put its bytes in the image (0: not copied early)

    @property
    def sop_class_uid(self) -> str:
        """SOP Class UID."""
        return self._encoding[0]

    @property
    def transfer_syntax_uid(self) -> str:
        """Transfer Syntax UID of the file."""
        return self._encoding[1]

    @property
    def body_offset(self) -> int | None:
        """First byte after File Meta when the body can be copied verbatim, else None."""
        return self._encoding[2]

    @property
    def has_pixel_data(self) -> bool:
        """Whether the file has Pixel Data."""
        return self._encoding[3]

    @property
    def keys(self) -> Keys:
        """Its record keys and the attributes planning reads."""
        return self

    @property
    def sop_instance_uid(self) -> str:
        """SOP Instance UID of the file (decoded when asked: one copy of it is kept, in the keys)."""
        raw = self.raw("SOPInstanceUID")
        return "" if raw is None else raw.text()


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
        keyword, vr = _KEYWORD_AND_VR[tag]
        if raw.vr != vr:
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
        mended = without_stray_meta(fp)
        size = len(mended.getbuffer()) if mended else source.size
        ds = dcmread(mended or fp, force=True, defer_size=4096)
        syntax = _detected_syntax(ds)
        # Deflated files are inflated while read: positions are in the inflated stream (PS3.5 A.5).
        short = _cut_short(ds, None if syntax == DEFLATED_EXPLICIT_VR_LE else size)
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
    if not sop_class:
        raise MediaError("no SOP Class UID (0008,0016): not a DICOM composite object", source.label)
    if sop_class == MEDIA_STORAGE_DIRECTORY:
        raise MediaError(
            "a DICOMDIR is not an instance (give it as an input of its own to re-master its disc)", source.label
        )
    header = InstanceHeader(source, sop_class, syntax, body_offset, keys, has_pixels)
    if not header.sop_instance_uid:
        raise MediaError("no SOP Instance UID (0008,0018)", source.label)
    return header


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
    return Source(label=name, size=shared_number(os.stat(name).st_size), path=name, origin=origin)
