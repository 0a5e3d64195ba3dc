"""An image as a viewer shows it by default: 8-bit grey or RGB pixels, ready for a baseline JPEG.

Grey: Modality LUT, then the first VOI window or VOI LUT (PS3.3 C.11.2), an automatic window when the file has
none, MONOCHROME1 inverted (PS3.3 C.7.6.3.1.2). Colour: RGB as decoded, palette colour through its LUTs
(C.7.6.3.1.5). Overlays (C.9.2) burned in white.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, pixel_array

# Automatic window: the central 99% of the values, so a few hot or padding pixels do not flatten the image.
_AUTO_PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class Frame:
    """One displayed frame: uint8 pixels (rows x columns, or x 3 for RGB) and the window that made them."""

    pixels: np.ndarray
    window: str


def frame_count(ds: Dataset) -> int:
    """Number of frames (1 when the attribute is absent or malformed)."""
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def _scale(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map [low, high] linearly onto 0..255, clipping outside."""
    if high <= low:
        high = low + 1
    out = (values.astype(np.float64) - low) * (255.0 / (high - low))
    return np.clip(out, 0, 255).astype(np.uint8)


def _describe_window(ds: Dataset) -> str | None:
    """The VOI the file carries, as a viewer would print it; None when there is none."""
    if "VOILUTSequence" in ds and len(ds.VOILUTSequence):
        item = ds.VOILUTSequence[0]
        return f"VOI LUT {item.get('LUTExplanation') or ''}".strip()
    if "WindowCenter" in ds and "WindowWidth" in ds:
        centre = ds.WindowCenter[0] if ds["WindowCenter"].VM > 1 else ds.WindowCenter
        width = ds.WindowWidth[0] if ds["WindowWidth"].VM > 1 else ds.WindowWidth
        return f"W {float(width):g} / C {float(centre):g}"
    return None


def _grey(ds: Dataset, raw: np.ndarray) -> Frame:
    values = apply_modality_lut(raw, ds)
    window = _describe_window(ds)
    if window is not None:
        # apply_voi_lut keeps its own output range (C.11.2.1.2); values far outside any window or LUT find its ends
        probe = np.array([-(2**31), 2**31 - 1], dtype=np.float64)
        try:
            low, high = (float(v) for v in apply_voi_lut(probe, ds, index=0))
            pixels = _scale(apply_voi_lut(values, ds, index=0), min(low, high), max(low, high))
        except (ValueError, TypeError, AttributeError, IndexError):  # a malformed window: fall back to automatic
            window = None
    if window is None:
        low, high = np.percentile(values, _AUTO_PERCENTILES)
        pixels = _scale(values, float(low), float(high))
        window = f"automatic W {high - low:g} / C {(high + low) / 2:g}"
    if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        pixels = 255 - pixels
    return Frame(pixels, window)


def _colour(ds: Dataset, raw: np.ndarray) -> Frame:
    if str(ds.get("PhotometricInterpretation", "")).strip() == "PALETTE COLOR":
        rgb = apply_color_lut(raw, ds)
        bits = 16 if rgb.max(initial=0) > 255 else 8
    else:
        rgb = raw
        bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 8)
    if bits > 8:
        rgb = rgb >> (bits - 8)
    return Frame(np.clip(rgb, 0, 255).astype(np.uint8), "")


def _overlays(ds: Dataset, frame: np.ndarray, index: int) -> np.ndarray:
    """Burn every overlay plane (groups 6000-601E) of this frame into the pixels, white."""
    for group in range(0x6000, 0x6020, 2):
        if (group, 0x3000) not in ds:
            continue
        try:
            planes = ds.overlay_array(group)
        except (ValueError, TypeError, AttributeError, KeyError):  # malformed overlay: shown without it
            continue
        plane = planes[min(index, len(planes) - 1)] if planes.ndim == 3 else planes
        origin = ds.get((group, 0x0050))
        top, left = (int(origin.value[0]) - 1, int(origin.value[1]) - 1) if origin is not None else (0, 0)
        rows = slice(max(top, 0), max(top, 0) + plane.shape[0])
        cols = slice(max(left, 0), max(left, 0) + plane.shape[1])
        target = frame[rows, cols]
        mask = plane[: target.shape[0], : target.shape[1]].astype(bool)
        target[mask] = 255
    return frame


def display_frame(ds: Dataset, index: int) -> Frame:
    """Frame ``index`` of the image as a viewer shows it by default."""
    raw = pixel_array(ds, index=index if frame_count(ds) > 1 else None)
    if raw.ndim == 3 and int(ds.get("SamplesPerPixel") or 1) == 1:
        raw = raw[0]
    if int(ds.get("SamplesPerPixel") or 1) > 1 or str(ds.get("PhotometricInterpretation", "")) == "PALETTE COLOR":
        frame = _colour(ds, raw)
    else:
        frame = _grey(ds, raw)
    pixels = np.ascontiguousarray(frame.pixels)
    return Frame(_overlays(ds, pixels, index), frame.window)
