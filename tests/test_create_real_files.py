"""Real-world objects that `create` once refused or damaged, each judged by pydicom, dcmdump and dciodvfy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian as EXPLICIT
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from tests.conftest import require_tool, run
from tests.crafted import with_file_meta_repeated
from tests.synthetic import image_dataset


def _create(*args: str) -> subprocess.CompletedProcess:
    proc = run([sys.executable, "-m", "dicommedia", "create", *args])
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    return proc


def _written(out: Path) -> list[Path]:
    return sorted(p for p in (out / "DICOM").rglob("*") if p.is_file())


def _dciodvfy_errors(path: Path) -> set[str]:
    """dciodvfy's errors, values left out (a decoded icon says RGB where its input said YBR_FULL_422)."""
    proc = run([require_tool("dciodvfy"), "-new", str(path)])
    lines = (proc.stdout + proc.stderr).splitlines()
    return {re.sub(r"= <[^>]*>", "", line) for line in lines if line.startswith("Error")}


@pytest.mark.interop
def test_enhanced_sr_with_concept_modifier_goes_on_with_its_title_modifier(tmp_path):
    ds = dcmread(get_testdata_file("reportsi.dcm"))
    modifier = Dataset()
    modifier.RelationshipType, modifier.ValueType = "HAS CONCEPT MOD", "CODE"
    name, value = Dataset(), Dataset()
    name.CodeValue, name.CodingSchemeDesignator, name.CodeMeaning = "121049", "DCM", "Language of Content Item"
    value.CodeValue, value.CodingSchemeDesignator, value.CodeMeaning = "eng", "RFC5646", "English"
    modifier.ConceptNameCodeSequence, modifier.ConceptCodeSequence = Sequence([name]), Sequence([value])
    ds.ContentSequence.insert(0, modifier)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"  # Enhanced SR
    ds.save_as(tmp_path / "esr.dcm")
    assert run([require_tool("dcmdump"), str(tmp_path / "esr.dcm")]).returncode == 0
    proc = _create(str(tmp_path / "esr.dcm"), "-o", str(tmp_path / "out"), "--format", "dir")
    assert proc.returncode == 0, proc.stderr
    record = dcmread(tmp_path / "out" / "DICOMDIR").DirectoryRecordSequence[-1]
    assert record.DirectoryRecordType == "SR DOCUMENT"
    assert record.ContentSequence[0].ConceptCodeSequence[0].CodeValue == "eng"  # PS3.3 F.5.19.1


@pytest.mark.parametrize("profile", ["STD-GEN-CD", "AUG-GEN-DRS-CD"])
def test_palette_sc_without_transfer_syntax_in_its_meta(tmp_path, profile):
    ds = dcmread(get_testdata_file("examples_palette.dcm"))
    expected = ds.pixel_array
    del ds.file_meta.TransferSyntaxUID
    path = tmp_path / "pal.dcm"
    ds.save_as(path, implicit_vr=False, little_endian=True)
    proc = _create(str(path), "-o", str(tmp_path / "out"), "--format", "dir", "-p", profile)
    assert proc.returncode == 0, proc.stderr
    [written] = _written(tmp_path / "out")
    out = dcmread(written)
    assert out.PhotometricInterpretation == "PALETTE COLOR"
    assert np.array_equal(out.pixel_array, expected)


def _jpeg_baseline_without_lossy_history(tmp_path: Path) -> Dataset:
    ds = dcmread(get_testdata_file("SC_rgb_dcmtk_+eb+cy+np.dcm"))
    for keyword in ("LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod"):
        del ds[keyword]
    return ds


@pytest.mark.interop
def test_jpeg_baseline_decompressed_keeps_its_lossy_history(tmp_path):
    ds = _jpeg_baseline_without_lossy_history(tmp_path)
    ds.save_as(tmp_path / "jpeg.dcm")
    proc = _create(str(tmp_path / "jpeg.dcm"), "-o", str(tmp_path / "out"), "--format", "dir")
    assert proc.returncode == 0, proc.stderr
    [written] = _written(tmp_path / "out")
    out = dcmread(written)
    assert not out.file_meta.TransferSyntaxUID.is_compressed
    assert out.LossyImageCompression == "01"  # PS3.3 C.7.6.1.1.5: once lossy, always lossy
    assert out.LossyImageCompressionMethod == "ISO_10918_1" and float(out.LossyImageCompressionRatio) > 1
    assert _dciodvfy_errors(written) <= _dciodvfy_errors(tmp_path / "jpeg.dcm")


def _with_icon(ds: Dataset, pixel_data: bytes) -> Dataset:
    icon = Dataset()
    for keyword in ("SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration", "Rows", "Columns"):
        setattr(icon, keyword, ds[keyword].value)
    for keyword in ("BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation"):
        setattr(icon, keyword, ds[keyword].value)
    icon.PixelData = pixel_data
    icon["PixelData"].VR, icon["PixelData"].is_undefined_length = "OB", True
    ds.IconImageSequence = Sequence([icon])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    return ds


@pytest.mark.interop
def test_compressed_icon_is_decoded_or_dropped_when_the_data_set_is_decompressed(tmp_path):
    ds = _jpeg_baseline_without_lossy_history(tmp_path)
    _with_icon(ds, ds.PixelData).save_as(tmp_path / "icon.dcm")
    broken = b"\xfe\xff\x00\xe0\x00\x00\x00\x00\xfe\xff\x00\xe0\x04\x00\x00\x00\xff\xd8\xff\xd9"
    _with_icon(ds, broken).save_as(tmp_path / "broken_icon.dcm")
    out = tmp_path / "out"
    proc = _create(str(tmp_path / "icon.dcm"), str(tmp_path / "broken_icon.dcm"), "-o", str(out), "--format", "dir")
    assert proc.returncode == 0, proc.stderr
    assert f"{tmp_path / 'broken_icon.dcm'}: its JPEG Baseline (Process 1) icon does not decode" in proc.stderr
    icons = {}
    for written in _written(out):
        result = dcmread(written)
        icons[str(result.SOPInstanceUID)] = result.get("IconImageSequence")
        assert not _dciodvfy_errors(written) - _dciodvfy_errors(tmp_path / "icon.dcm"), written
    decoded = [seq for seq in icons.values() if seq]
    assert len(decoded) == 1 and len(icons) == 2  # the broken icon was dropped, the other decoded
    assert not decoded[0][0]["PixelData"].is_undefined_length
    assert len(decoded[0][0].PixelData) == ds.Rows * ds.Columns * 3


def test_private_value_too_long_for_its_dictionary_vr_stays_un(tmp_path):
    ds = image_dataset()
    ds.add_new(0x00190010, "LO", "SIEMENS MR HEADER")
    ds.add_new(0x0019100F, "UN", b"FAST_GRADIENT_MODE_21")  # GradientMode: SH in the private dictionary
    ds.add_new(0x00191011, "UN", b"NO")  # FlowCompensation: SH, and the value fits
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(tmp_path / "siemens.dcm", implicit_vr=True, little_endian=True)
    proc = _create(str(tmp_path / "siemens.dcm"), "-o", str(tmp_path / "out"), "--format", "dir")
    assert proc.returncode == 0, proc.stderr
    [written] = _written(tmp_path / "out")
    out = dcmread(written)
    too_long, fits = out.get_item(0x0019100F), out.get_item(0x00191011)  # as written (pydicom would remap UN)
    assert too_long.VR == "UN" and too_long.value.rstrip(b"\0") == b"FAST_GRADIENT_MODE_21"
    assert fits.VR == "SH" and fits.value == b"NO"


def test_lossy_form_larger_than_the_pixels_is_not_kept(tmp_path):
    image_dataset(rows=3, cols=3).save_as(tmp_path / "tiny.dcm", enforce_file_format=True)
    out = tmp_path / "out"
    proc = _create(
        str(tmp_path / "tiny.dcm"), "-o", str(out), "--format", "dir", "-p", "AUG-GEN-DRS-CD", "--compress", "j2k"
    )
    assert proc.returncode == 0, proc.stderr
    assert "kept uncompressed: j2k output is larger than the pixels it encodes" in proc.stderr
    [written] = _written(out)
    result = dcmread(written)
    assert not result.file_meta.TransferSyntaxUID.is_compressed and "LossyImageCompression" not in result
    assert result.SOPInstanceUID == dcmread(tmp_path / "tiny.dcm").SOPInstanceUID


def test_truncated_implicit_vr_file_is_refused_not_cut_short(tmp_path):
    source = get_testdata_file("rtplan_truncated.dcm")
    proc = _create(source, "-o", str(tmp_path / "o.iso"))
    assert proc.returncode == 1
    assert f"{source}: truncated: BeamSequence needs 976 bytes, the file ends after 711" in proc.stderr


def test_undecodable_pixels_are_one_line_without_exception_names(tmp_path):
    data = bytearray(Path(get_testdata_file("SC_rgb_dcmtk_+eb+cy+np.dcm")).read_bytes())
    data[data.index(b"\xff\xc0") + 4] = 3  # JPEG SOF0 sample precision 3: no decoder takes it
    (tmp_path / "bad.dcm").write_bytes(bytes(data))
    proc = _create(str(tmp_path / "bad.dcm"), "-o", str(tmp_path / "o.iso"))
    assert proc.returncode == 1
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("refused:")]
    assert "pixel data cannot be decoded from JPEG Baseline (Process 1): Unable to decode" in line
    assert not re.search(r"\w+(Error|Exception)\b", line), line


@pytest.mark.interop
def test_jpeg_stream_pydicom_refuses_is_decoded_as_dcmtk_does(tmp_path):
    source = get_testdata_file("JPEG-lossy.dcm")  # 12-bit JPEG extended whose scan header pylibjpeg rejects
    peer = tmp_path / "dcmdjpeg.dcm"
    assert run([require_tool("dcmdjpeg"), source, str(peer)]).returncode == 0
    proc = _create(source, "-o", str(tmp_path / "out"), "--format", "dir")
    assert proc.returncode == 0, proc.stderr
    [written] = _written(tmp_path / "out")
    out = dcmread(written)
    assert np.array_equal(out.pixel_array, dcmread(peer).pixel_array)
    assert out.LossyImageCompression == "01"
    assert _dciodvfy_errors(written) <= _dciodvfy_errors(peer)


@pytest.mark.interop
@pytest.mark.parametrize("profile, kept", [("STD-GEN-CD", False), ("AUG-GEN-DRS-CD", True)])
def test_file_meta_repeated_in_the_data_set_is_not_taken_for_the_file_meta(tmp_path, profile, kept):
    source = Path(get_testdata_file("MR_small_RLE.dcm"))
    (tmp_path / "stray.dcm").write_bytes(with_file_meta_repeated(source.read_bytes(), EXPLICIT, generate_uid()))
    proc = _create(str(tmp_path / "stray.dcm"), "-o", str(tmp_path / "out"), "--format", "dir", "-p", profile)
    assert proc.returncode == 0, proc.stderr
    [written] = _written(tmp_path / "out")
    out = dcmread(written)
    assert (out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.5") is kept  # RLE, as the real File Meta says
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID == dcmread(source).SOPInstanceUID
    assert not [tag for tag in out.keys() if tag.group == 0x0002]
    assert np.array_equal(out.pixel_array, dcmread(get_testdata_file("MR_small.dcm")).pixel_array)
    dump = run([require_tool("dcmdump"), str(written)])
    assert dump.returncode == 0 and "Invalid Element" not in dump.stdout + dump.stderr
    assert _dciodvfy_errors(written) <= _dciodvfy_errors(source)


@pytest.mark.interop
def test_compressed_pixel_data_in_a_private_item_is_decoded_or_left_out(tmp_path):
    ds = dcmread(get_testdata_file("MR_small_RLE.dcm"))
    thumbnail = Dataset()
    for keyword in ("SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns"):
        setattr(thumbnail, keyword, ds[keyword].value)
    for keyword in ("BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation"):
        setattr(thumbnail, keyword, ds[keyword].value)
    broken = b"\xfe\xff\x00\xe0\x00\x00\x00\x00\xfe\xff\x00\xe0\x04\x00\x00\x00\x01\x00\x00\x00"
    for name, pixels in (("thumb.dcm", ds.PixelData), ("broken.dcm", broken)):
        thumbnail.PixelData = pixels
        thumbnail["PixelData"].VR, thumbnail["PixelData"].is_undefined_length = "OB", True
        block = ds.private_block(0x0029, "ACME THUMBNAIL", create=True)
        block.add_new(0x01, "SQ", Sequence([thumbnail]))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(tmp_path / name)
    out = tmp_path / "out"
    proc = _create(str(tmp_path / "thumb.dcm"), str(tmp_path / "broken.dcm"), "-o", str(out), "--format", "dir")
    assert proc.returncode == 0, proc.stderr
    assert f"{tmp_path / 'broken.dcm'}: its RLE Lossless pixel data does not decode;" in proc.stderr
    kept = []
    for written in _written(out):
        result = dcmread(written)
        assert not result.file_meta.TransferSyntaxUID.is_compressed
        assert "PixelData" in result and not result["PixelData"].is_undefined_length
        sequence = result.get((0x0029, 0x1001))
        if sequence is not None:
            kept.append(sequence[0]["PixelData"])
        dump = run([require_tool("dcmdump"), str(written)])
        assert dump.returncode == 0 and "u/l" not in dump.stdout  # no encapsulated value in a native data set
    [pixels] = kept  # the thumbnail that decodes is kept, decoded; the broken one's sequence is left out
    assert not pixels.is_undefined_length and pixels.value == dcmread(get_testdata_file("MR_small.dcm")).PixelData


@pytest.mark.interop
def test_retired_ambiguous_vrs_get_the_vr_implicit_vr_gives_them(tmp_path):
    """Curve Data (50xx,3000) and Audio Sample Data (50xx,200C) are "OB or OW", which pydicom does not settle, nor
    LUT Data without its LUT Descriptor: in Explicit VR they are written as Implicit VR LE read them (PS3.5 A.1)."""
    ds = dcmread(get_testdata_file("MR_small_implicit.dcm"))
    ds.add_new(0x50003000, "OW", b"\x01\x02\x03\x04")  # saved Implicit: read back as "OB or OW"
    ds.add_new(0x5000200C, "OW", b"\x05\x06")
    lut = Dataset()
    lut.add_new(0x00283006, "OW", b"\x01\x00\x02\x00")  # LUT Data with no LUT Descriptor beside it
    ds.VOILUTSequence = Sequence([lut])
    ds.save_as(tmp_path / "curve.dcm", implicit_vr=True, little_endian=True)
    proc = _create(str(tmp_path / "curve.dcm"), "-o", str(tmp_path / "out"), "--format", "dir")
    assert proc.returncode == 0, proc.stderr
    [written] = _written(tmp_path / "out")
    out = dcmread(written)
    assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert (out[0x50003000].VR, out[0x50003000].value) == ("OW", b"\x01\x02\x03\x04")
    assert (out[0x5000200C].VR, out[0x5000200C].value) == ("OW", b"\x05\x06")
    assert (out.VOILUTSequence[0][0x00283006].VR, out.VOILUTSequence[0][0x00283006].value) == (
        "OW",
        b"\x01\x00\x02\x00",
    )
    assert np.array_equal(out.pixel_array, dcmread(get_testdata_file("MR_small.dcm")).pixel_array)
