"""Compress native pixel data frame by frame with one registry codec, coercing tags per seed App B.1/B.2.

Lossless output is verified bit-exact by decoding every written frame (SPEC 6).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, encapsulate_extended
from pydicom.pixels import apply_color_lut, apply_modality_lut, iter_pixels

from dicommedia.errors import one_line
from dicommedia.standard.identity import new_uid
from dicommedia.transforms.codecs import CODECS, NATIVE_SYNTAXES, Codec, FrameSpec
from dicommedia.transforms.coercion import (
    STORED_VALUE_KEYWORDS,
    PixelModule,
    StoredValueMap,
    coerce_lossy,
    coerce_pixel_module,
    coerce_stored_values,
    drop_modality_lut,
)

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
IMAGE_PIXEL_KEYWORDS = (
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
)
RGB_LIKE = ("RGB", "YBR_FULL", "YBR_FULL_422")  # pydicom hands these over as RGB
# IODs fixing Bits Allocated (PS3.3 C.8.2.1.1.4 CT, C.8.3.1.1.4 MR, C.8.9.4.1.3 PET): no 8-bit JPEG for them.
IOD_BITS_ALLOCATED = {uid.CTImageStorage: 16, uid.MRImageStorage: 16, uid.PositronEmissionTomographyImageStorage: 16}


class CannotCompress(Exception):
    """The codec cannot carry this pixel data: keep it in a form the profile allows, with a warning."""


class LosslessMismatch(CannotCompress):
    """A lossless encoding did not decode to exactly what was encoded (the data set is left untouched)."""


@dataclass(frozen=True)
class CompressionPlan:
    """What ``compress`` writes for one data set: codec, Image Pixel attributes and per-frame sample mapping."""

    codec: Codec
    pixel: PixelModule
    vmap: StoredValueMap  # grey stored values -> written values (Rescale follows)
    palette: bool  # expand PALETTE COLOR through its LUTs (seed App B.1)
    modality_lut: bool  # apply the Modality LUT Sequence before coding (seed App B.2, lossy)
    colour_scale: float  # RGB samples multiplied by this (lossy codecs narrower than the source colour depth)

    def frame_spec(self, ds: Dataset) -> FrameSpec:
        """The layout of each frame handed to the encoder."""
        p = self.pixel
        return FrameSpec(
            ds.Rows, ds.Columns, p.samples_per_pixel, p.bits_allocated, p.bits_stored, p.signed, p.photometric
        )


def compress(
    ds: Dataset, codec: str, *, quality: int | None = None, new_sop_instance_uid: str | None = None
) -> list[str]:
    """Compress ``ds`` (native pixel data, with file_meta) in place with ``codec``; return warnings.

    Raises CannotCompress, leaving ``ds`` untouched, when the codec cannot carry the data. Lossy codecs give
    the instance ``new_sop_instance_uid`` (or a fresh UID) and the seed's App B.2 derivation attributes.
    """
    chosen = CODECS[codec]
    if quality is not None and not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1-100, not {quality}")
    transfer_syntax = ds.file_meta.TransferSyntaxUID
    if transfer_syntax not in NATIVE_SYNTAXES:
        raise ValueError(f"compress needs native pixel data, not {uid.UID(transfer_syntax).name}")
    if chosen.name == "none":
        ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
        return []
    if "PixelData" not in ds:
        raise CannotCompress(f"{chosen.name} needs integer Pixel Data; this object has none")

    missing = [k for k in IMAGE_PIXEL_KEYWORDS if ds.get(k) is None]
    if missing:
        raise CannotCompress(f"{chosen.name} needs {', '.join(missing)}, missing in this object")
    plan, warnings = plan_compression(ds, chosen)
    spec = plan.frame_spec(ds)
    encoded: list[bytes] = []
    expected: list[np.ndarray] = []
    try:
        for frame in iter_pixels(ds):
            written = _written_frame(frame, ds, plan)
            encoded.append(chosen.encode(written, spec, quality))
            if not chosen.lossy:
                expected.append(written)
    except Exception as exc:  # the codec libraries raise assorted types; the instance stays as it was
        raise CannotCompress(f"{chosen.name} failed on this pixel data: {one_line(exc)}") from None

    pixel_data, offsets = _encapsulate(encoded)
    if not chosen.lossy:
        _verify(ds, plan, pixel_data, offsets, expected)

    source_bytes = ds.Rows * ds.Columns * ds.SamplesPerPixel * _frame_count(ds) * ds.BitsAllocated // 8
    ratio = source_bytes / max(1, sum(len(f) for f in encoded))
    if chosen.lossy and ratio < 1:  # data lost for nothing: the exact pixels are smaller
        raise CannotCompress(f"{chosen.name} output is larger than the pixels it encodes (ratio {ratio:.2f}:1)")
    lut_type = drop_modality_lut(ds) if plan.modality_lut else "US"
    coerce_pixel_module(ds, plan.pixel)
    coerce_stored_values(ds, plan.vmap, plan.pixel.signed, rescale_type=lut_type)
    _store(ds, pixel_data, offsets, chosen.transfer_syntax)
    if chosen.lossy:
        coerce_lossy(ds, method=chosen.method, ratio=ratio, new_sop_instance_uid=new_sop_instance_uid or new_uid())
    return warnings


def plan_compression(ds: Dataset, codec: Codec) -> tuple[CompressionPlan, list[str]]:
    """Decide how ``codec`` carries this pixel data (raise CannotCompress when it cannot)."""
    photometric = str(ds.PhotometricInterpretation)
    samples, bits_allocated, bits_stored = ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored
    reason = codec.why_not(bits_allocated, bits_stored, samples)
    if reason:
        raise CannotCompress(reason)
    if photometric in MONOCHROME:
        plan, warnings = _plan_grey(ds, codec)
        required = IOD_BITS_ALLOCATED.get(ds.get("SOPClassUID"))
        if required and plan.pixel.bits_allocated != required:
            raise CannotCompress(
                f"{codec.name} writes {plan.pixel.bits_allocated}-bit pixels; this IOD requires {required} bits"
            )
        return plan, warnings
    if photometric == "PALETTE COLOR":
        depth = int(ds.RedPaletteColorLookupTableDescriptor[2])
        depth = 8 if depth <= 8 else 16  # pydicom's apply_color_lut yields uint8 or uint16 samples
        return _plan_colour(codec, depth, palette=True)
    if photometric in RGB_LIKE and samples == 3:
        return _plan_colour(codec, 8 if photometric.startswith("YBR") else bits_stored, palette=False)
    raise CannotCompress(f"{codec.name} cannot carry {photometric} pixel data")


def _plan_colour(codec: Codec, depth: int, *, palette: bool) -> tuple[CompressionPlan, list[str]]:
    """RGB (or palette expanded to RGB) written with the codec's colour photometric interpretation."""
    warnings = ["PALETTE COLOR expanded to RGB"] if palette else []
    # PS3.5 8.2.1: lossy JPEG carries 8-bit colour only; lossless codecs keep the depth.
    limit = 8 if codec.transfer_syntax in (uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit) else codec.bits_stored[1]
    if depth > limit:
        if not codec.lossy:
            raise CannotCompress(f"{codec.name} carries at most {limit}-bit colour, this data has {depth}")
        warnings.append(f"{depth}-bit colour reduced to {limit} bits for {codec.name}")
    bits = min(depth, limit)
    pixel = PixelModule(3, codec.photometric_for("RGB"), codec.bits_allocated_for(bits), bits, signed=False)
    scale = (2**bits - 1) / (2**depth - 1)
    return CompressionPlan(codec, pixel, StoredValueMap(), palette, False, scale), warnings


def _plan_grey(ds: Dataset, codec: Codec) -> tuple[CompressionPlan, list[str]]:
    """Grey pixels: signed or too deep data is shifted/rescaled for JPEG with Rescale following (seed App B)."""
    modality_lut = codec.lossy and "ModalityLUTSequence" in ds
    if modality_lut:
        bits, signed = int(ds.ModalityLUTSequence[0].LUTDescriptor[2]), False
    else:
        bits, signed = ds.BitsStored, ds.PixelRepresentation == 1
    photometric = str(ds.PhotometricInterpretation)
    warnings: list[str] = []
    vmap = StoredValueMap()
    if codec.signed:
        out_bits, out_signed = bits, signed
    elif not codec.lossy:  # JPEG lossless: unsigned, same depth (seed App B.1 Pixel Representation row)
        out_bits, out_signed = max(bits, codec.bits_stored[0]), False
        if signed and min([_extremes(ds, modality_lut)[0], *_stored_value_attributes(ds)]) < 0:
            vmap = StoredValueMap(low=-(2 ** (bits - 1)))
    else:  # DCT JPEG: unsigned 8 (baseline) or 12 (extended) bits
        out_bits, out_signed = (8 if bits <= 8 and not signed else codec.bits_stored[1]), False
        low, high = _extremes(ds, modality_lut) if signed or bits > out_bits else (0, 0)
        if low < 0 or high >= 2**out_bits:
            span = high - low
            vmap = StoredValueMap(low=low, scale=1.0 if span < 2**out_bits else span / (2**out_bits - 1))
            if vmap.scale != 1:
                warnings.append(f"{bits}-bit pixel data rescaled to {out_bits} bits for {codec.name}")
    if not vmap.is_identity and "DoseGridScaling" in ds:
        raise CannotCompress(f"{codec.name} would have to rescale RT Dose values, which Dose Grid Scaling forbids")
    pixel = PixelModule(1, photometric, codec.bits_allocated_for(out_bits), out_bits, out_signed)
    return CompressionPlan(codec, pixel, vmap, False, modality_lut, 1.0), warnings


def _extremes(ds: Dataset, modality_lut: bool) -> tuple[int, int]:
    """Smallest and largest grey value over all frames (after the Modality LUT Sequence when applied)."""
    low, high = None, None
    for frame in _grey_frames(ds, modality_lut):
        f_low, f_high = int(frame.min()), int(frame.max())
        low = f_low if low is None else min(low, f_low)
        high = f_high if high is None else max(high, f_high)
    return (low or 0, high or 0)


def _stored_value_attributes(ds: Dataset) -> list[int]:
    """Stored values named by attributes (padding, extremes, mapped ranges): they must stay representable."""
    values = [ds[k].value for k in STORED_VALUE_KEYWORDS if k in ds and ds[k].value is not None]
    values += [lut.LUTDescriptor[1] for lut in ds.get("ModalityLUTSequence", []) if "LUTDescriptor" in lut]
    for mapping in ds.get("RealWorldValueMappingSequence", []):
        values += [mapping.get(k) for k in ("RealWorldValueFirstValueMapped", "RealWorldValueLastValueMapped")]
    return [int(v) for v in values if v is not None]


def _grey_frames(ds: Dataset, modality_lut: bool) -> Iterator[np.ndarray]:
    """Grey frames as stored, or through the Modality LUT Sequence."""
    for frame in iter_pixels(ds):
        yield apply_modality_lut(frame, ds) if modality_lut else frame


def _written_frame(frame: np.ndarray, ds: Dataset, plan: CompressionPlan) -> np.ndarray:
    """One frame as handed to the encoder: palette expanded, LUT applied, values mapped, right dtype."""
    pixel = plan.pixel
    if plan.palette:
        frame = apply_color_lut(frame, ds)
    elif plan.modality_lut:
        frame = apply_modality_lut(frame, ds)
    if plan.colour_scale != 1:
        frame = np.rint(frame * plan.colour_scale)
    elif not plan.vmap.is_identity:
        frame = frame.astype(np.int64) - int(plan.vmap.low)
        if plan.vmap.scale != 1:
            frame = np.rint(frame / plan.vmap.scale)
    kind = "i" if pixel.signed else "u"
    return np.ascontiguousarray(frame, dtype=f"<{kind}{pixel.bits_allocated // 8}")


def _frame_count(ds: Dataset) -> int:
    """Number of Frames (1 when absent)."""
    return int(ds.get("NumberOfFrames") or 1)


def _encapsulate(frames: list[bytes]) -> tuple[bytes, tuple[bytes, bytes] | None]:
    """PS3.5 A.4 encapsulation: one fragment per frame; an Extended Offset Table when 32-bit offsets overflow."""
    if sum(len(f) + 8 for f in frames[:-1]) > 2**32 - 1:
        data, offsets, lengths = encapsulate_extended(frames)
        return data, (offsets, lengths)
    return encapsulate(frames), None


def _store(ds: Dataset, pixel_data: bytes, offsets: tuple[bytes, bytes] | None, transfer_syntax: str) -> None:
    """Put encapsulated Pixel Data (OB, undefined length) in ``ds`` under ``transfer_syntax``."""
    ds.PixelData = pixel_data
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    if offsets:
        ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = offsets
    else:
        ds.pop("ExtendedOffsetTable", None)
        ds.pop("ExtendedOffsetTableLengths", None)
    ds.file_meta.TransferSyntaxUID = transfer_syntax


def _verify(ds: Dataset, plan: CompressionPlan, pixel_data: bytes, offsets, expected: list[np.ndarray]) -> None:
    """Decode every written frame (pydicom and its plugins) and require it equal to what was encoded."""
    probe = Dataset()
    probe.file_meta = Dataset()
    for keyword in ("Rows", "Columns", "NumberOfFrames"):
        if keyword in ds:
            setattr(probe, keyword, ds[keyword].value)
    coerce_pixel_module(probe, plan.pixel)
    _store(probe, pixel_data, offsets, plan.codec.transfer_syntax)
    frames = iter_pixels(probe, raw=True)
    for index, wanted in enumerate(expected):
        try:
            decoded = next(frames)
        except Exception as exc:  # a decoder refusing our own output is a failed verification too
            raise LosslessMismatch(
                f"{plan.codec.name} output of frame {index + 1} does not decode: {one_line(exc)}"
            ) from None
        if decoded.shape != wanted.shape or not np.array_equal(decoded, wanted):
            raise LosslessMismatch(f"{plan.codec.name} output of frame {index + 1} does not decode to its input")
