"""Helpers for the codec, coercion and secondary-capture tests: inputs, outside decoders, what a viewer shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, set_pixel_data
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from tests.conftest import require_tool, run

# Native inputs the judge names: signed CT, MR, RGB, odd sizes, palette colour, multi-frame.
LOSSLESS_INPUTS = [
    "CT_small.dcm",
    "MR_small.dcm",
    "SC_rgb_small_odd.dcm",
    "examples_palette.dcm",
    "SC_rgb_rle_2frame.dcm",
    "SC_rgb_rle_16bit.dcm",
    "examples_overlay.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "examples_ybr_color.dcm",
]


def native(path: Path) -> Dataset:
    """Read a file and decompress it to native Explicit VR Little Endian, as the create pipeline hands it over."""
    ds = dcmread(path)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def shown(ds: Dataset) -> np.ndarray:
    """What a viewer shows: colour as RGB, palette through its LUTs, grey through the Modality LUT."""
    arr = ds.pixel_array
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        return apply_color_lut(arr, ds)
    if ds.SamplesPerPixel == 1:
        return apply_modality_lut(arr, ds).astype(np.float64)
    return arr


def psnr(reference: np.ndarray, test: np.ndarray, peak: float) -> float:
    """Peak signal-to-noise ratio in dB."""
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def outside_decode(tool: str, src: Path, dst: Path) -> Dataset:
    """Decompress ``src`` with an outside decoder (dcmdjpeg, dcmdrle, gdcmconv) and read the result."""
    command = {
        "dcmdjpeg": [require_tool("dcmdjpeg"), str(src), str(dst)],
        "dcmdrle": [require_tool("dcmdrle"), str(src), str(dst)],
        "gdcmconv": [require_tool("gdcmconv"), "--raw", str(src), str(dst)],
    }[tool]
    result = run(command)
    assert result.returncode == 0, f"{tool} failed on {src.name}: {result.stderr or result.stdout}"
    decoded = dcmread(dst)
    assert not decoded.file_meta.TransferSyntaxUID.is_compressed
    return decoded


def dciodvfy_errors(path: Path) -> list[str]:
    """dciodvfy's Error lines for a file."""
    result = run([require_tool("dciodvfy"), str(path)])
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


def synthetic_ct(
    frames: int = 3, rows: int = 37, columns: int = 41, seed: int = 0, sop_class: str = CTImageStorage
) -> Dataset:
    """A signed multi-frame CT-like image (odd sizes, negative values, padding value) in native encoding."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(-1024, 3071, (frames, rows, columns), dtype=np.int16)
    arr[:, :3, :] = -2000  # padding outside the field of view
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.RescaleIntercept, ds.RescaleSlope = "0", "1"
    ds.PixelPaddingValue = -2000
    set_pixel_data(ds, arr if frames > 1 else arr[0], "MONOCHROME2", 13)
    ds["PixelPaddingValue"].VR = "SS"
    return ds


def minimal_pdf(title: str) -> bytes:
    """A small well-formed one-page PDF with an Info /Title (cross-reference table with real offsets)."""
    escaped = title.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>",
        b"<</Title (" + escaped.encode("latin-1") + b")>>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R/Info 4 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
