"""Re-encoding an instance for the media: Explicit VR Little Endian, decompressed, keys coerced, references fixed."""

from __future__ import annotations

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
)

from dicommedia.errors import MediaError, one_line

# DCT processes are lossy whatever the data set says (PS3.5 8.2.1); the method term of PS3.3 C.7.6.1.1.5.
_LOSSY_PROCESSES = {JPEGBaseline8Bit: "ISO_10918_1", JPEGExtended12Bit: "ISO_10918_1"}
_JPEG_PROCESSES = (JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1)
_SWAP_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
# Attributes that point at other instances by SOP Instance UID (PS3.3 C.12.1, C.17.3, C.8.8.5 ...).
_REFERENCE_KEYWORDS = ("ReferencedSOPInstanceUID", "ReferencedSOPInstanceUIDInFile", "ReferencedFrameOfReferenceUID")


def _swap_big_endian_values(ds: Dataset) -> None:
    """Byte-swap OW/OF/OL/OD/OV values read from Explicit VR Big Endian (PS3.5 7.3): pydicom does not.

    Pixel Data of 32 or 64 bits per sample is swapped by sample, not by OW word (PS3.5 8.1.1)."""
    bits = ds.get("BitsAllocated")
    for elem in ds.iterall():
        width = _SWAP_WIDTH.get(elem.VR)
        if elem.tag == 0x7FE00010 and bits in (32, 64):
            width = bits // 8
        if width and isinstance(elem.value, (bytes, bytearray)) and len(elem.value) % width == 0:
            import numpy as np

            elem.value = np.frombuffer(elem.value, dtype=f">u{width}").astype(f"<u{width}").tobytes()


def to_explicit_vr_little_endian(ds: Dataset, label: str) -> list[str]:
    """Turn any readable encoding into native Explicit VR Little Endian in place; return notes."""
    notes = []
    ts = UID(str(ds.file_meta.get("TransferSyntaxUID", ExplicitVRLittleEndian)))
    if ts.is_compressed:
        if "PixelData" in ds:
            encoded, frames = len(ds.PixelData), ds.get("NumberOfFrames")
            try:
                ds.decompress(as_rgb=True, generate_instance_uid=False)
            except Exception as exc:  # decoders raise many types on damaged or unsupported data
                if not _decode_jpeg_leniently(ds, ts):
                    raise MediaError(f"pixel data cannot be decoded from {ts.name}: {one_line(exc)}", label) from None
            if ds.get("NumberOfFrames") != frames:  # pydicom found fewer frames than the data set holds
                raise MediaError(
                    f"{frames} frames in Number of Frames, {ds.NumberOfFrames} found in the {ts.name} pixel data",
                    label,
                    "the file is damaged; decompress it with the tool that made it",
                )
            _keep_lossy_history(ds, ts, len(ds.PixelData) / max(1, encoded))
        notes += _decode_nested_pixels(ds, ts, label)
        notes.append(f"{label}: decompressed from {ts.name}")
    elif not ds.original_encoding[1]:
        _swap_big_endian_values(ds)
        notes.append(f"{label}: converted from {ts.name}")
    elif ts != ExplicitVRLittleEndian:
        notes.append(f"{label}: converted from {ts.name}")
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return notes


def _decode_jpeg_leniently(ds: Dataset, ts: UID) -> bool:
    """Decode a JPEG stream pydicom's plugins refuse with libjpeg-turbo (imagecodecs), as DCMTK and GDCM do for
    streams with minor header slips (e.g. scan parameters of a sequential process); False when it cannot."""
    if ts not in _JPEG_PROCESSES:
        return False
    import imagecodecs
    import numpy as np
    from pydicom.encaps import generate_frames

    count = int(ds.get("NumberOfFrames") or 1)
    rows, columns, samples = ds.Rows, ds.Columns, ds.SamplesPerPixel
    try:
        frames = [imagecodecs.jpeg8_decode(f) for f in generate_frames(ds.PixelData, number_of_frames=count)]
    except Exception:  # a stream libjpeg-turbo refuses too
        return False
    shape = (rows, columns) if samples == 1 else (rows, columns, samples)
    if len(frames) != count or any(f.shape != shape for f in frames):
        return False
    width = 1 if ds.BitsAllocated <= 8 else 2
    ds.PixelData = np.stack(frames).astype(f"<u{width}").tobytes()
    ds["PixelData"].VR, ds["PixelData"].is_undefined_length = ("OB" if width == 1 else "OW"), False
    ds.BitsAllocated = 8 * width
    if samples == 3:  # libjpeg-turbo hands colour over as RGB, interleaved
        ds.PhotometricInterpretation, ds.PlanarConfiguration = "RGB", 0
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return True


def _keep_lossy_history(ds: Dataset, ts: UID, ratio: float) -> None:
    """Decompressed DCT JPEG data stays lossy (PS3.3 C.7.6.1.1.5) even when the data set never said so."""
    if ts in _LOSSY_PROCESSES and ds.get("LossyImageCompression") != "01":
        from dicommedia.transforms.coercion import add_lossy_step

        add_lossy_step(ds, _LOSSY_PROCESSES[ts], ratio)


def _decode_nested_pixels(ds: Dataset, ts: UID, label: str) -> list[str]:
    """Pixel Data inside items (an Icon Image Sequence (0088,0200), a vendor's private thumbnail) is encoded in the
    data set's transfer syntax (PS3.5 A.4): decode it with the data set, or leave out the sequence holding it when
    it cannot be (icons are Type 3), so that no encapsulated value stays in a native data set."""
    notes: list[str] = []
    for elem in list(ds):
        if elem.VR != "SQ":
            continue
        for item in elem.value:
            notes += _decode_nested_pixels(item, ts, label)
            pixels = item.get("PixelData")
            if pixels is None or not item["PixelData"].is_undefined_length or _decode_item(item, ts):
                continue
            del ds[elem.tag]
            what = "icon" if elem.tag == 0x00880200 else "pixel data"
            notes.append(f"{label}: its {ts.name} {what} does not decode; {elem.name} {elem.tag} left out")
            break
    return notes


def _decode_item(item: Dataset, ts: UID) -> bool:
    """Decode the item's encapsulated Pixel Data in place; False when it cannot be."""
    image = Dataset(item)
    image.file_meta = FileMetaDataset()
    image.file_meta.TransferSyntaxUID = ts
    try:
        image.decompress(as_rgb=True, generate_instance_uid=False)
    except Exception:  # decoders raise many types on damaged or unsupported data
        return False
    for elem in image:
        item[elem.tag] = elem
    return True


def apply_coercions(ds: Dataset, coercions: dict[str, object]) -> None:
    """Set the planned values (repaired keys, new UIDs) in the dataset."""
    for keyword, value in coercions.items():
        setattr(ds, keyword, value)


def remap_references(ds: Dataset, remap: dict[str, str]) -> int:
    """Point references at instances whose UID changed (lossy compression, --fix-uids); return how many."""
    changed = 0
    if not remap:
        return 0
    for elem in ds.iterall():
        if elem.keyword in _REFERENCE_KEYWORDS and elem.VR == "UI":
            values = list(elem.value) if elem.VM > 1 else [elem.value]
            new = [remap.get(str(v), v) for v in values]
            if new != values:
                elem.value = new if elem.VM > 1 else new[0]
                changed += 1
    return changed


# Longest value of each text VR, in characters (PS3.5 Table 6.2-1); multi-valued VRs are split on "\".
_MAX_CHARS = {"AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "LO": 64, "PN": 64, "SH": 16}
_MAX_CHARS |= {"TM": 14, "UI": 64, "ST": 1024, "LT": 10240}
_SINGLE_VALUED = ("ST", "LT", "UT", "UR")
_TEXT_CONTROLS = {0x09, 0x0A, 0x0C, 0x0D, 0x1B}  # TAB LF FF CR (ST, LT, UT) and ESC (code extensions)
_BINARY_WIDTH = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "AT": 4, "FD": 8, "SV": 8, "UV": 8}


def value_fits(vr: str, value: bytes | None) -> bool:
    """True when an encoded value is valid for ``vr`` (length, characters, binary width; PS3.5 6.2)."""
    if value is None or vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ", "UC", "UT", "UR"):
        return True
    if vr in _BINARY_WIDTH:
        return len(value) % _BINARY_WIDTH[vr] == 0
    text = value.rstrip(b"\0 ") if vr == "UI" else value.rstrip(b" ")
    if any(byte < 0x20 and byte not in _TEXT_CONTROLS for byte in text):
        return False
    parts = [text] if vr in _SINGLE_VALUED else text.split(b"\\")
    return all(len(part) <= _MAX_CHARS.get(vr, len(part)) for part in parts)


def private_vr_hook(raw, data: dict, **kwargs) -> None:
    """pydicom's VR lookup for raw elements, except that a private element read without a VR (Implicit VR, or
    UN) keeps UN when its value does not fit the private dictionary's VR (PS3.5 6.2.2): a 21-character value
    is no SH, and rewriting it under that VR would make a valid file invalid."""
    from pydicom.hooks import raw_element_vr

    raw_element_vr(raw, data, **kwargs)
    tag = raw.tag
    if tag.is_private and not tag.is_private_creator and raw.VR in (None, "UN") and data["VR"] != "UN":
        if not value_fits(data["VR"], raw.value):
            data["VR"] = "UN"
