"""The viewer's default display of an image (transforms/display.py), checked against pydicom's own LUT functions."""

from __future__ import annotations

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut

from dicommedia.transforms.display import display_frame
from dicommedia.transforms.web import key_frames
from tests.synthetic import image_dataset


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(np.float64).ravel(), b.astype(np.float64).ravel())[0, 1])


def test_monochrome1_is_inverted():
    ds = image_dataset()
    ds.WindowCenter, ds.WindowWidth = 500, 3000
    mono2 = display_frame(ds, 0)
    ds.PhotometricInterpretation = "MONOCHROME1"
    mono1 = display_frame(ds, 0)
    assert mono2.window == mono1.window == "W 3000 / C 500"
    assert np.array_equal(mono1.pixels, 255 - mono2.pixels)


def test_voi_lut_sequence_is_used_before_a_window():
    ds = image_dataset()
    ds.RescaleIntercept, ds.RescaleSlope = 0, 1
    ds.WindowCenter, ds.WindowWidth = 1000, 4000  # present, but the VOI LUT comes first
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 12]
    item.LUTExplanation = "DESCENDING"
    item.LUTData = list(range(4095, -1, -1))  # a descending ramp: bright where the values are low
    ds.VOILUTSequence = [item]
    frame = display_frame(ds, 0)
    values = np.frombuffer(ds.PixelData, dtype=np.int16).reshape(64, 64).clip(0, 4095)
    assert frame.window == "VOI LUT DESCENDING"
    assert _correlation(frame.pixels, values) < -0.99


def test_automatic_window_ignores_a_few_outliers():
    ds = image_dataset()
    pixels = np.frombuffer(ds.PixelData, dtype=np.int16).reshape(64, 64).copy()
    pixels[0, :4] = 32000  # four hot pixels
    ds.PixelData = pixels.tobytes()
    frame = display_frame(ds, 0)
    assert frame.window.startswith("automatic")
    body = frame.pixels[1:]
    assert body.min() < 10 and body.max() > 245 and body.std() > 40  # the noise uses the whole grey range


def test_palette_colour_becomes_rgb(pydicom_files):
    ds = dcmread(pydicom_files["examples_palette.dcm"])
    frame = display_frame(ds, 0)
    expected = apply_color_lut(ds.pixel_array, ds) >> 8
    assert frame.pixels.shape == (*ds.pixel_array.shape, 3) and frame.pixels.dtype == np.uint8
    assert np.array_equal(frame.pixels, expected.astype(np.uint8))


def test_key_frames_are_evenly_spaced_first_to_last():
    assert key_frames(30, 8) == [0, 4, 8, 12, 17, 21, 25, 29]
    assert key_frames(5, 8) == [0, 1, 2, 3, 4]
