"""Tag coercion on compression, attribute by attribute against the seed's Appendix B.1 and B.2."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import SecondaryCaptureImageStorage, generate_uid

from dicommedia.transforms.compression import CannotCompress, compress
from tests.codec_fixtures import dciodvfy_errors, native, psnr, shown, synthetic_ct
from tests.conftest import require_tool, run

PALETTE_TAGS = ("(0028,1101)", "(0028,1102)", "(0028,1103)", "(0028,1201)", "(0028,1202)", "(0028,1203)")
SEED_CODE_EXTRAS = {"MappingResource": "DCMR", "ContextGroupVersion": "20020904", "ContextGroupExtensionFlag": "N"}


def dcmdump(path) -> str:
    """dcmdump's listing of a written file."""
    result = run([require_tool("dcmdump"), str(path)])
    assert result.returncode == 0, result.stderr
    return result.stdout


def written(ds: Dataset, tmp_path, name: str = "out.dcm"):
    """Save as a Part 10 file and return its path."""
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


# ---- B.1: every compression -------------------------------------------------------------------------------------


@pytest.mark.interop
@pytest.mark.parametrize(
    ("codec", "photometric"),
    [
        ("rle", "RGB"),
        ("jpeg-lossless", "RGB"),
        ("jpeg-lossless-sv1", "RGB"),
        ("j2k-lossless", "YBR_RCT"),
        ("jpeg-baseline", "YBR_FULL_422"),
        ("jpeg-extended", "YBR_FULL_422"),
        ("j2k", "YBR_ICT"),
    ],
)
def test_palette_expanded_luts_dropped_photometric_per_codec(codec, photometric, pydicom_files, tmp_path):
    ds = native(pydicom_files["examples_palette.dcm"])
    warnings = compress(ds, codec)
    assert "PALETTE COLOR expanded to RGB" in warnings
    dump = dcmdump(written(ds, tmp_path))
    assert ds.SamplesPerPixel == 3 and ds.PhotometricInterpretation == photometric and ds.PlanarConfiguration == 0
    assert f"[{photometric}]" in dump
    for tag in PALETTE_TAGS + ("(0028,1199)",):
        assert tag not in dump


def test_planar_configuration_coerced_to_colour_by_pixel(pydicom_files, tmp_path):
    ds = native(pydicom_files["examples_rgb_color.dcm"])
    rgb = ds.pixel_array
    ds.PixelData = rgb.transpose(2, 0, 1).tobytes()  # colour-by-plane
    ds.PlanarConfiguration = 1
    for codec in ("rle", "jpeg-lossless", "j2k-lossless"):
        out = native(pydicom_files["examples_rgb_color.dcm"])
        out.PixelData, out.PlanarConfiguration = ds.PixelData, 1
        compress(out, codec)
        back = dcmread(written(out, tmp_path))
        assert back.PlanarConfiguration == 0
        assert np.array_equal(back.pixel_array, rgb)


@pytest.mark.interop
def test_signed_ct_under_jpeg_is_unsigned_with_rescale_keeping_hu(pydicom_files, tmp_path):
    ds = native(pydicom_files["CT_small.dcm"])
    hu = shown(ds)
    padding = ds.PixelPaddingValue
    compress(ds, "jpeg-lossless")
    # B.1 Pixel Representation row; B.2 Rescale rows: the Modality LUT output (HU) is unchanged.
    assert ds.PixelRepresentation == 0
    assert float(ds.RescaleIntercept) == -1024 - 2**15 and float(ds.RescaleSlope) == 1
    assert ds.PixelPaddingValue == padding + 2**15
    dump = dcmdump(written(ds, tmp_path))
    assert f"(0028,0120) US {padding + 2**15}" in dump
    assert np.array_equal(shown(dcmread(tmp_path / "out.dcm")), hu)


def test_signed_data_under_j2k_keeps_pixel_representation(pydicom_files):
    ds = native(pydicom_files["CT_small.dcm"])
    intercept = ds.RescaleIntercept
    compress(ds, "j2k-lossless")
    assert ds.PixelRepresentation == 1 and ds.RescaleIntercept == intercept


@pytest.mark.parametrize(
    ("codec", "allocated", "stored"),
    [
        ("jpeg-baseline", 8, 8),
        ("jpeg-extended", 16, 12),
        ("jpeg-lossless", 16, 13),
        ("j2k", 16, 13),
        ("rle", 16, 13),
    ],
)
def test_bits_reflect_the_technique(codec, allocated, stored):
    ds = synthetic_ct(frames=1, sop_class=SecondaryCaptureImageStorage)  # SC: any Bits Allocated
    hu = shown(ds)
    compress(ds, codec)
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (allocated, stored, stored - 1)
    assert ds.PixelRepresentation == (1 if codec in ("j2k", "rle") else 0)
    if codec == "jpeg-baseline":
        # 13 bits into 8: Rescale follows so HU keep their range (within a quantisation step)
        assert abs(shown(ds).min() - hu.min()) < 40 and abs(shown(ds).max() - hu.max()) < 40


def test_enhanced_rescale_in_functional_groups_follows_the_shift():
    ds = synthetic_ct(frames=2)
    del ds.RescaleIntercept, ds.RescaleSlope
    transform = Dataset()
    transform.RescaleIntercept, transform.RescaleSlope, transform.RescaleType = "-1024", "1", "HU"
    shared = Dataset()
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    compress(ds, "jpeg-lossless-sv1")
    assert "RescaleIntercept" not in ds
    assert float(ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0].RescaleIntercept) == (
        -1024 - 2**12
    )


# ---- B.2: lossy ---------------------------------------------------------------------------------------------------


def lossy_input() -> Dataset:
    """A CT with a history: earlier derivation, source image item, lossy ratio/method, series extremes."""
    ds = synthetic_ct(frames=1)
    ds.DerivationDescription = "earlier processing"
    earlier = Dataset()
    earlier.ReferencedSOPClassUID, earlier.ReferencedSOPInstanceUID = ds.SOPClassUID, generate_uid()
    ds.SourceImageSequence = Sequence([earlier])
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = "2.5"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.SmallestPixelValueInSeries, ds.LargestPixelValueInSeries = -2000, 3070
    ds["SmallestPixelValueInSeries"].VR = ds["LargestPixelValueInSeries"].VR = "SS"
    return ds


@pytest.mark.parametrize(("codec", "method"), [("jpeg-extended", "ISO_10918_1"), ("j2k", "ISO_15444_1")])
def test_lossy_coercion_attribute_by_attribute(codec, method, tmp_path):
    ds = lossy_input()
    original_class, original_instance = ds.SOPClassUID, ds.SOPInstanceUID
    new_instance = generate_uid()
    compress(ds, codec, quality=80, new_sop_instance_uid=new_instance)
    back = dcmread(written(ds, tmp_path))

    assert list(back.ImageType) == ["DERIVED", "PRIMARY", "AXIAL"]
    assert back.SOPInstanceUID == new_instance == back.file_meta.MediaStorageSOPInstanceUID
    first, _, rest = back.DerivationDescription.partition("\n")
    assert first.startswith("DRS:") and method in first and rest == "earlier processing"

    assert len(back.SourceImageSequence) == 2  # appended, never replaced
    source = back.SourceImageSequence[1]
    assert (source.ReferencedSOPClassUID, source.ReferencedSOPInstanceUID) == (original_class, original_instance)
    purpose = source.PurposeOfReferenceCodeSequence[0]
    assert (purpose.CodeValue, purpose.CodingSchemeDesignator, purpose.CodeMeaning, purpose.ContextIdentifier) == (
        "121320",
        "DCM",
        "Uncompressed predecessor",
        "7202",
    )
    derivation = back.DerivationCodeSequence[0]
    assert (
        derivation.CodeValue,
        derivation.CodingSchemeDesignator,
        derivation.CodeMeaning,
        derivation.ContextIdentifier,
    ) == ("113040", "DCM", "Lossy Compression", "7203")
    for item in (purpose, derivation):
        assert {k: str(item.get(k)) for k in SEED_CODE_EXTRAS} == SEED_CODE_EXTRAS

    assert back.LossyImageCompression == "01"
    assert list(back.LossyImageCompressionMethod) == ["ISO_10918_1", method]
    ratios = [float(r) for r in back.LossyImageCompressionRatio]
    assert ratios[0] == 2.5 and ratios[1] > 1
    for keyword in ("PixelPaddingValue", "SmallestPixelValueInSeries", "LargestPixelValueInSeries"):
        assert keyword not in back


def test_lossy_enhanced_frame_type_becomes_derived():
    ds = synthetic_ct(frames=2, rows=40, columns=40)
    for keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        frame_type = Dataset()
        frame_type.FrameType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
        group = Dataset()
        group.CTImageFrameTypeSequence = Sequence([frame_type])
        setattr(ds, keyword, Sequence([group]))
    compress(ds, "j2k")
    for keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        item = ds[keyword][0].CTImageFrameTypeSequence[0]
        assert list(item.FrameType) == ["DERIVED", "PRIMARY", "AXIAL", "NONE"]


def test_lossy_without_history_gets_new_sequences_and_single_line(pydicom_files):
    ds = native(pydicom_files["CT_small.dcm"])
    for keyword in ("DerivationDescription", "SourceImageSequence", "DerivationCodeSequence"):
        ds.pop(keyword, None)
    compress(ds, "j2k")
    assert ds.DerivationDescription.startswith("DRS:") and "\n" not in ds.DerivationDescription
    assert len(ds.SourceImageSequence) == 1 and len(ds.DerivationCodeSequence) == 1
    assert ds.SOPInstanceUID != ds.SourceImageSequence[0].ReferencedSOPInstanceUID
    assert ds.LossyImageCompressionRatio and ds.LossyImageCompressionMethod == "ISO_15444_1"


def test_lossless_adds_no_lossy_history(pydicom_files):
    ds = native(pydicom_files["CT_small.dcm"])
    instance = ds.SOPInstanceUID
    compress(ds, "j2k-lossless", new_sop_instance_uid=generate_uid())
    assert ds.SOPInstanceUID == instance
    for keyword in ("SourceImageSequence", "DerivationCodeSequence", "LossyImageCompressionMethod"):
        assert keyword not in ds
    assert ds.get("LossyImageCompression", "00") == "00"


def modality_lut_input() -> Dataset:
    """Signed grey data mapped through a Modality LUT Sequence (no rescale)."""
    ds = synthetic_ct(frames=1)
    del ds.RescaleIntercept, ds.RescaleSlope, ds.PixelPaddingValue
    ds.PixelData = np.clip(ds.pixel_array, -1024, 3071).astype("<i2").tobytes()
    lut = Dataset()
    lut.LUTDescriptor = [4096, -1024, 16]
    lut["LUTDescriptor"].VR = "SS"
    lut.ModalityLUTType = "OD"
    lut.LUTData = (np.arange(4096, dtype="<u2") * 7 + 100).tobytes()
    lut["LUTData"].VR = "OW"
    ds.ModalityLUTSequence = Sequence([lut])
    return ds


def test_modality_lut_applied_and_removed_on_lossy(tmp_path):
    ds = modality_lut_input()
    expected = shown(ds)
    compress(ds, "j2k", quality=100)
    back = dcmread(written(ds, tmp_path))
    assert "ModalityLUTSequence" not in back
    assert back.PixelRepresentation == 0 and back.BitsStored == 16
    assert psnr(expected, shown(back), float(expected.max() - expected.min())) > 40


def test_modality_lut_kept_and_shifted_on_lossless_jpeg(tmp_path):
    ds = modality_lut_input()
    expected = shown(ds)
    compress(ds, "jpeg-lossless")
    back = dcmread(written(ds, tmp_path))
    assert back.ModalityLUTSequence[0].LUTDescriptor[1] == -1024 + 2**12
    assert np.array_equal(shown(back), expected)


def test_eight_bit_jpeg_refused_for_sixteen_bit_iods(pydicom_files):
    for name in ("CT_small.dcm", "MR_small.dcm"):  # PS3.3 C.8.2.1.1.4 / C.8.3.1.1.4: Bits Allocated 16
        ds = native(pydicom_files[name])
        with pytest.raises(CannotCompress, match="requires 16 bits"):
            compress(ds, "jpeg-baseline")
        assert ds.file_meta.TransferSyntaxUID.is_compressed is False


@pytest.mark.interop
@pytest.mark.parametrize("codec", ["jpeg-lossless", "jpeg-extended", "j2k", "j2k-lossless", "rle"])
def test_compressed_ct_adds_no_dciodvfy_errors(codec, pydicom_files, tmp_path):
    ds = native(pydicom_files["CT_small.dcm"])
    before = set(dciodvfy_errors(written(ds, tmp_path, "in.dcm")))
    compress(ds, codec)
    after = set(dciodvfy_errors(written(ds, tmp_path)))
    assert after <= before, sorted(after - before)


@pytest.mark.parametrize("codec", ["jpeg-lossless", "j2k-lossless", "rle"])
def test_modality_lut_with_negative_first_value_and_positive_pixels(codec, tmp_path):
    ds = modality_lut_input()
    ds.PixelData = np.clip(ds.pixel_array, 0, 3071).astype("<i2").tobytes()  # no negative stored value
    expected = shown(ds)
    compress(ds, codec)
    back = dcmread(written(ds, tmp_path))
    assert np.array_equal(shown(back), expected)
