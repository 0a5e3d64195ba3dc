"""Re-encoding an instance for the media: Explicit VR Little Endian, decompressed, keys coerced, references fixed."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from dicommedia.errors import MediaError, one_line

_SWAP_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
# Attributes that point at other instances by SOP Instance UID (PS3.3 C.12.1, C.17.3, C.8.8.5 ...).
_REFERENCE_KEYWORDS = ("ReferencedSOPInstanceUID", "ReferencedSOPInstanceUIDInFile", "ReferencedFrameOfReferenceUID")


def _swap_big_endian_values(ds: Dataset) -> None:
    """Byte-swap OW/OF/OL/OD/OV values read from Explicit VR Big Endian (PS3.5 7.3): pydicom does not."""
    for elem in ds.iterall():
        width = _SWAP_WIDTH.get(elem.VR)
        if width and isinstance(elem.value, (bytes, bytearray)) and len(elem.value) % width == 0:
            import numpy as np

            elem.value = np.frombuffer(elem.value, dtype=f">u{width}").astype(f"<u{width}").tobytes()


def to_explicit_vr_little_endian(ds: Dataset, label: str) -> list[str]:
    """Turn any readable encoding into native Explicit VR Little Endian in place; return notes."""
    notes = []
    ts = UID(str(ds.file_meta.get("TransferSyntaxUID", ExplicitVRLittleEndian)))
    if ts.is_compressed:
        try:
            ds.decompress(as_rgb=True, generate_instance_uid=False)
        except Exception as exc:  # decoders raise many types on damaged or unsupported data
            raise MediaError(f"pixel data cannot be decoded from {ts.name}: {one_line(exc)}", label) from None
        notes.append(f"{label}: decompressed from {ts.name}")
    elif not ds.original_encoding[1]:
        _swap_big_endian_values(ds)
        notes.append(f"{label}: converted from {ts.name}")
    elif ts != ExplicitVRLittleEndian:
        notes.append(f"{label}: converted from {ts.name}")
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return notes


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


def encode_body(ds: Dataset, implicit_vr: bool = False) -> bytes:
    """The dataset (without File Meta) in Explicit VR Little Endian (or Implicit VR where a profile keeps it)."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = implicit_vr
    # Iterating converts raw elements (VRs looked up for Implicit VR input); ambiguous VRs are then
    # resolved by write_dataset because the body has no original encoding (PS3.5 Annex A.1).
    body = Dataset({elem.tag: elem for elem in ds if elem.tag.group != 0x0002})
    write_dataset(fp, body)
    return fp.getvalue()
