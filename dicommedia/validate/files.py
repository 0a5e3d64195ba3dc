"""Checks of one referenced file: Part 10 form, structure to the end, Image Pixel module, profile rules."""

from __future__ import annotations

import math

from pydicom.dataset import Dataset
from pydicom.uid import UID

from dicommedia.errors import one_line
from dicommedia.media import MediaFile
from dicommedia.media.dicomdir import READ_ERRORS, read_checked
from dicommedia.media.findings import Finding, show_file_id, warning
from dicommedia.part10 import Part10Error, has_dicm
from dicommedia.part10.meta import without_stray_meta
from dicommedia.part10.structure import PixelInfo, meta_end, walk_dataset
from dicommedia.profile import Action, Profile

REQUIRED_META = ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID")
PIXEL_KEYS = (
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PixelRepresentation",
)
# PS3.3 C.7.6.3.1.2: samples per pixel of each photometric interpretation.
SAMPLES = {
    "MONOCHROME1": 1,
    "MONOCHROME2": 1,
    "PALETTE COLOR": 1,
    "RGB": 3,
    "YBR_FULL": 3,
    "YBR_FULL_422": 3,
    "YBR_PARTIAL_420": 3,
    "YBR_PARTIAL_422": 3,
    "YBR_ICT": 3,
    "YBR_RCT": 3,
    "HSV": 3,
    "ARGB": 4,
    "CMYK": 4,
}
DEFLATED = "1.2.840.10008.1.2.1.99"
_STRAY_META = (
    "group 0002 elements repeated at the start of the data set, past the end the File Meta Information Group "
    "Length declares: only the File Meta may hold them (PS3.10 7.1); read as the File Meta says"
)


def check_file(media_file: MediaFile) -> tuple[list[Finding], Dataset | None]:
    """Findings for one file (the profile's rules aside: see check_profile), and its header (None when unreadable)."""
    where = show_file_id(media_file.file_id)
    try:
        return _check_file(media_file, where)
    except OSError as exc:  # the media itself: an extent past the image's end, scattered extents, a read error
        return [Finding("corrupt-file", f"cannot be read from the media: {one_line(exc)}", where)], None


def _check_file(media_file: MediaFile, where: str | None) -> tuple[list[Finding], Dataset | None]:
    with media_file.open() as fp:
        if not has_dicm(fp):
            return [Finding("not-part10", "lacks the 128-byte preamble and 'DICM' prefix (PS3.10 7.1)", where)], None
        fp.seek(0)
        findings = []
        mended = without_stray_meta(fp)
        if mended is not None:
            findings.append(Finding("file-meta", _STRAY_META, where))
            fp, size = mended, len(mended.getbuffer())
        else:
            size = media_file.size
        try:
            ds = read_checked(fp, mend=False, stop_before_pixels=True)
        except READ_ERRORS as exc:
            return [Finding("corrupt-file", f"cannot be parsed: {one_line(exc)}", where)], None
        findings += _check_meta(ds, where)
        if any(f.code == "not-part10" for f in findings):
            return findings, ds
        ts = str(ds.file_meta.TransferSyntaxUID)
        pixel = None
        if ts != DEFLATED and UID(ts).is_transfer_syntax:
            try:
                pixel = walk_dataset(fp, size, meta_end(fp, size), ts)
            except Part10Error as exc:
                findings.append(Finding("corrupt-file", f"truncated or bad lengths: {exc}", where))
    if pixel is not None:
        findings += [_located(f, where) for f in check_pixel_module(ds, pixel, UID(ts))]
    return findings, ds


def encoding_of(ds: Dataset) -> tuple[str, str] | None:
    """(SOP class, transfer syntax) of a file whose File Meta names both, else None."""
    meta = ds.file_meta
    sop_class, syntax = meta.get("MediaStorageSOPClassUID"), meta.get("TransferSyntaxUID")
    if not sop_class or not syntax or any(f.code == "not-part10" for f in _check_meta(ds, None)):
        return None
    return str(sop_class), str(syntax)


def _located(finding: Finding, where: str | None) -> Finding:
    return Finding(finding.code, finding.message, where, finding.severity)


def _check_meta(ds: Dataset, where: str | None) -> list[Finding]:
    """File Meta Information present, complete, and agreeing with the data set (PS3.10 7.1)."""
    meta = ds.file_meta
    missing = [k for k in REQUIRED_META if not str(meta.get(k, "") or "").strip()]
    if missing:
        return [Finding("not-part10", f"File Meta Information lacks {', '.join(missing)}", where)]
    findings = []
    if "ImplementationClassUID" not in meta:
        findings.append(warning("file-meta", "File Meta Information lacks Implementation Class UID", where))
    for meta_kw, ds_kw in (
        ("MediaStorageSOPClassUID", "SOPClassUID"),
        ("MediaStorageSOPInstanceUID", "SOPInstanceUID"),
    ):
        inside = str(ds.get(ds_kw, "") or "").strip()
        if inside and inside != str(meta[meta_kw].value).strip():
            findings.append(
                Finding("not-part10", f"{meta_kw} {meta[meta_kw].value} differs from {ds_kw} {inside}", where)
            )
    return findings


def check_pixel_module(ds: Dataset, pixel: PixelInfo, ts: UID) -> list[Finding]:
    """Image Pixel module attributes consistent with each other and with the pixel data (PS3.3 C.7.6.3)."""
    missing = [k for k in PIXEL_KEYS if ds.get(k) is None or ds.get(k) == ""]
    if missing:
        return [Finding("corrupt-file", f"Image Pixel module lacks {', '.join(missing)}")]
    try:
        rows, cols, alloc, stored, high, samples, rep = (
            int(ds[k].value)
            for k in (
                "Rows",
                "Columns",
                "BitsAllocated",
                "BitsStored",
                "HighBit",
                "SamplesPerPixel",
                "PixelRepresentation",
            )
        )
        frames = int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError) as exc:
        return [Finding("corrupt-file", f"Image Pixel module value unreadable: {one_line(exc)}")]
    photometric = str(ds.PhotometricInterpretation).strip().upper()
    errors = []
    if alloc not in (1, 8, 16, 32, 64) and alloc % 8:
        errors.append(f"Bits Allocated {alloc}")
    if not 0 < stored <= alloc:
        errors.append(f"Bits Stored {stored} with Bits Allocated {alloc}")
    if high >= alloc:
        errors.append(f"High Bit {high} with Bits Allocated {alloc}")
    if rep not in (0, 1):
        errors.append(f"Pixel Representation {rep}")
    if photometric in SAMPLES and samples != SAMPLES[photometric]:
        errors.append(f"{photometric} with Samples per Pixel {samples}")
    findings = [Finding("corrupt-file", f"inconsistent Image Pixel module: {e}") for e in errors]
    if high != stored - 1:
        findings.append(warning("pixel-module", f"High Bit {high} is not Bits Stored - 1 ({stored - 1})"))
    if photometric not in SAMPLES:
        findings.append(warning("pixel-module", f"unknown Photometric Interpretation {photometric!r}"))
    if samples > 1 and "PlanarConfiguration" not in ds:
        findings.append(warning("pixel-module", "Planar Configuration missing with Samples per Pixel > 1"))
    if errors:
        return findings
    if pixel.length is not None and not ts.is_encapsulated:
        per_pixel = 2 if photometric in ("YBR_FULL_422", "YBR_PARTIAL_422") and samples == 3 else samples
        needed = math.ceil(rows * cols * frames * per_pixel * alloc / 8)
        if pixel.length < needed:
            findings.append(Finding("corrupt-file", f"Pixel Data holds {pixel.length} bytes, the image needs {needed}"))
        elif pixel.length > needed + 1:
            findings.append(warning("pixel-module", f"Pixel Data holds {pixel.length} bytes, the image needs {needed}"))
    elif pixel.fragments is not None:
        # PS3.5 A.4: a Basic Offset Table item, then at least one fragment per frame.
        if pixel.fragments - 1 < frames:
            findings.append(
                Finding(
                    "corrupt-file",
                    f"encapsulated Pixel Data has {max(pixel.fragments - 1, 0)} fragment(s) for {frames} frame(s)",
                )
            )
    elif ts.is_encapsulated:
        findings.append(Finding("corrupt-file", f"{ts.name} requires encapsulated Pixel Data, found native"))
    return findings


def check_profile(profile: Profile, sop_class: str, ts: str, where: str | None) -> list[Finding]:
    """The profile's rule for this SOP class, and the transfer syntaxes it allows."""
    decision = profile.decide(sop_class, ts)
    if decision.action is Action.REFUSE:
        return [Finding("sop-class-not-allowed", decision.reason, where)]
    if decision.action is Action.CONVERT:
        allowed = ", ".join(UID(t).name for t in decision.allowed)
        return [
            Finding(
                "transfer-syntax-not-allowed",
                f"{UID(ts).name} ({ts}) not allowed under {profile.name} for {UID(sop_class).name}; allowed: {allowed}",
                where,
            )
        ]
    return []
