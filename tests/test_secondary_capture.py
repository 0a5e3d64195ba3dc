"""Pictures and PDFs converted to Secondary Capture / Encapsulated PDF (seed Appendix A), judged by dciodvfy."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread, uid

from dicommedia.errors import MediaError
from dicommedia.inputs.pdf import is_pdf, pdf_to_dataset
from dicommedia.inputs.pictures import ScContext, is_picture, picture_to_dataset
from dicommedia.standard.identity import IMPLEMENTATION_CLASS_UID
from dicommedia.transforms.compression import CannotCompress, compress
from tests.codec_fixtures import dciodvfy_errors, minimal_pdf
from tests.conftest import require_tool, run

RNG = np.random.default_rng(7)


def rgb(rows: int, columns: int) -> np.ndarray:
    """Random 8-bit RGB samples."""
    return RNG.integers(0, 256, (rows, columns, 3), dtype=np.uint8)


@pytest.fixture
def ctx() -> ScContext:
    return ScContext(
        patient_name="Doe^Jane",
        patient_id="PID1",
        patient_birth_date="19700101",
        patient_sex="F",
        study_description="Outside pictures",
        accession_number="ACC1",
    )


def save_pictures(folder):
    """One picture of every kind the SPEC names, with the array a decoder gives back."""
    folder.mkdir(exist_ok=True)
    made = {}
    jpeg = rgb(31, 33)
    Image.fromarray(jpeg).save(folder / "photo.jpg", quality=95)
    made["photo.jpg"] = np.asarray(Image.open(folder / "photo.jpg").convert("RGB"))[np.newaxis]
    grey8 = RNG.integers(0, 256, (17, 19), dtype=np.uint8)
    Image.fromarray(grey8).save(folder / "grey8.png")
    made["grey8.png"] = grey8[np.newaxis]
    grey16 = RNG.integers(0, 65536, (17, 19), dtype=np.uint16)
    Image.fromarray(grey16).save(folder / "grey16.png")
    made["grey16.png"] = grey16[np.newaxis]
    rgba = np.dstack([rgb(9, 11), RNG.integers(0, 256, (9, 11, 1), dtype=np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "alpha.png")
    made["alpha.png"] = rgba[np.newaxis, ..., :3]
    bmp = rgb(11, 13)
    Image.fromarray(bmp).save(folder / "scan.bmp")
    made["scan.bmp"] = bmp[np.newaxis]
    pages = [RNG.integers(0, 256, (20, 21), dtype=np.uint8) for _ in range(3)]
    Image.fromarray(pages[0]).save(
        folder / "pages.tif", save_all=True, append_images=[Image.fromarray(p) for p in pages[1:]]
    )
    made["pages.tif"] = np.stack(pages)
    frames = [rgb(20, 21) for _ in range(3)]
    images = [Image.fromarray(f).quantize(64) for f in frames]
    images[0].save(folder / "cine.gif", save_all=True, append_images=images[1:], duration=80, loop=0)
    made["cine.gif"] = np.stack([np.asarray(i.convert("RGB")) for i in images])
    return made


@pytest.mark.interop
def test_every_picture_kind_passes_dciodvfy_and_keeps_its_pixels(ctx, tmp_path):
    made = save_pictures(tmp_path / "in")
    expected_class = {
        "pages.tif": uid.MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
        "cine.gif": uid.MultiFrameTrueColorSecondaryCaptureImageStorage,
    }
    for number, (name, pixels) in enumerate(made.items(), start=1):
        path = tmp_path / "in" / name
        assert is_picture(path)
        ds = picture_to_dataset(path, ctx, number)
        out = tmp_path / f"{number}.dcm"
        ds.save_as(out, enforce_file_format=True)
        assert dciodvfy_errors(out) == [], name
        back = dcmread(out)
        assert back.SOPClassUID == expected_class.get(name, uid.SecondaryCaptureImageStorage), name
        assert back.file_meta.TransferSyntaxUID == uid.ExplicitVRLittleEndian
        assert back.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
        arr = back.pixel_array
        assert np.array_equal(arr if pixels.shape[0] > 1 else arr[np.newaxis], pixels), name
        assert back.InstanceNumber == number


def test_appendix_a_attributes(ctx, tmp_path):
    made = save_pictures(tmp_path / "in")
    first = picture_to_dataset(tmp_path / "in" / "photo.jpg", ctx, 1)
    second = picture_to_dataset(tmp_path / "in" / "cine.gif", ctx, 2)
    for ds in (first, second):
        demographics = (ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex)
        assert demographics == ("Doe^Jane", "PID1", "19700101", "F")
        assert (ds.StudyDescription, ds.AccessionNumber) == ("Outside pictures", "ACC1")
        assert ds.StudyInstanceUID == ctx.study_instance_uid and ds.SeriesInstanceUID == ctx.series_instance_uid
        assert ds.StudyDate == ctx.study_date and ds.StudyTime == ctx.study_time
        assert ds.Modality == "OT" and ds.ConversionType == "WSD"
        for keyword in (
            "Manufacturer",
            "StationName",
            "ManufacturerModelName",
            "SoftwareVersions",
            "SecondaryCaptureDeviceID",
            "SecondaryCaptureDeviceManufacturer",
            "SecondaryCaptureDeviceManufacturerModelName",
            "SecondaryCaptureDeviceSoftwareVersions",
            "DateOfSecondaryCapture",
            "TimeOfSecondaryCapture",
            "ContentDate",
            "ContentTime",
            "StudyID",
        ):
            assert ds.get(keyword), keyword
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert first.SOPInstanceUID != second.SOPInstanceUID
    assert float(second.FrameTime) == 80 and second.FrameIncrementPointer == 0x00181063
    assert len(made) == 7


def test_sixteen_bit_colour_png_keeps_its_depth(ctx, tmp_path):
    import imagecodecs

    pixels = RNG.integers(0, 65536, (7, 9, 3), dtype=np.uint16)
    path = tmp_path / "deep.png"
    path.write_bytes(imagecodecs.png_encode(pixels))
    ds = picture_to_dataset(path, ctx, 1)
    assert (ds.BitsAllocated, ds.BitsStored, ds.PhotometricInterpretation) == (16, 16, "RGB")
    assert np.array_equal(ds.pixel_array, pixels)


@pytest.mark.interop
def test_non_ascii_demographics_declare_utf8(tmp_path):
    context = ScContext(patient_name="Müller^Jürgen", patient_id="Ä1")
    Image.fromarray(rgb(8, 8)).save(tmp_path / "p.png")
    ds = picture_to_dataset(tmp_path / "p.png", context, 1)
    ds.save_as(tmp_path / "p.dcm", enforce_file_format=True)
    dump = run([require_tool("dcmdump"), "+U8", str(tmp_path / "p.dcm")]).stdout
    assert "ISO_IR 192" in dump and "Müller^Jürgen" in dump
    assert dciodvfy_errors(tmp_path / "p.dcm") == []


def test_bad_demographics_refused():
    with pytest.raises(MediaError, match="YYYYMMDD"):
        ScContext(patient_birth_date="1970-01-01").check()
    with pytest.raises(MediaError, match="M, F or O"):
        ScContext(patient_sex="X").check()


def test_unreadable_pictures_name_the_file(ctx, tmp_path):
    Image.fromarray(rgb(64, 64)).save(tmp_path / "whole.jpg")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((tmp_path / "whole.jpg").read_bytes()[:300])
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    for path in (truncated, garbage):
        with pytest.raises(MediaError) as caught:
            picture_to_dataset(path, ctx, 1)
        assert str(path) in str(caught.value)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert not is_picture(text) and not is_pdf(text)


@pytest.mark.interop
def test_pdf_becomes_encapsulated_pdf(ctx, tmp_path):
    source = tmp_path / "report.pdf"
    source.write_bytes(minimal_pdf("Discharge (final) letter"))
    assert is_pdf(source)
    ds = pdf_to_dataset(source, ctx, 3)
    out = tmp_path / "pdf.dcm"
    ds.save_as(out, enforce_file_format=True)
    assert dciodvfy_errors(out) == []
    back = dcmread(out)
    data = source.read_bytes()
    assert back.SOPClassUID == uid.EncapsulatedPDFStorage and back.Modality == "DOC"
    assert back.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert back.EncapsulatedDocumentLength == len(data)
    assert back.EncapsulatedDocument[: len(data)] == data and len(back.EncapsulatedDocument) % 2 == 0
    assert back.DocumentTitle == "Discharge (final) letter"
    # same study as the pictures, its own series: a series holds one modality
    assert back.StudyInstanceUID == ctx.study_instance_uid
    assert back.SeriesInstanceUID == ctx.document_series_instance_uid != ctx.series_instance_uid


def test_truncated_pdf_refused(ctx, tmp_path):
    path = tmp_path / "cut.pdf"
    path.write_bytes(minimal_pdf("x")[:60])
    with pytest.raises(MediaError, match="truncated") as caught:
        pdf_to_dataset(path, ctx, 1)
    assert str(path) in str(caught.value)


@pytest.mark.interop
@pytest.mark.parametrize("codec", ["jpeg-baseline", "j2k-lossless", "rle", "jpeg-lossless"])
def test_converted_pictures_compress_and_stay_valid(codec, ctx, tmp_path):
    made = save_pictures(tmp_path / "in")
    for number, name in enumerate(("photo.jpg", "cine.gif", "grey16.png"), start=1):
        ds = picture_to_dataset(tmp_path / "in" / name, ctx, number)
        try:
            compress(ds, codec)
        except CannotCompress as exc:  # noise pictures: a lossy form larger than the pixels is not kept
            assert codec.startswith("jpeg-b") and "larger than" in str(exc), exc
            assert not ds.file_meta.TransferSyntaxUID.is_compressed
        out = tmp_path / f"{number}.dcm"
        ds.save_as(out, enforce_file_format=True)
        assert dciodvfy_errors(out) == [], f"{codec} {name}"
        if not codec.startswith("jpeg-b"):
            decoded = dcmread(out).pixel_array
            assert np.array_equal(decoded if decoded.ndim == made[name].ndim else decoded[np.newaxis], made[name])


def test_exif_orientation_applied_as_a_viewer_does(ctx, tmp_path):
    pixels = rgb(10, 30)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # EXIF Orientation: rotate 90 degrees clockwise to display
    image.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    ds = picture_to_dataset(tmp_path / "phone.jpg", ctx, 1)
    assert (ds.Rows, ds.Columns) == (30, 10)


@pytest.mark.interop
def test_sixteen_bit_multi_page_tiff_is_word_sc(ctx, tmp_path):
    pages = [RNG.integers(0, 65536, (12, 14), dtype=np.uint16) for _ in range(2)]
    Image.fromarray(pages[0]).save(tmp_path / "deep.tif", save_all=True, append_images=[Image.fromarray(pages[1])])
    ds = picture_to_dataset(tmp_path / "deep.tif", ctx, 1)
    ds.save_as(tmp_path / "deep.dcm", enforce_file_format=True)
    assert ds.SOPClassUID == uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    assert ds.NumberOfFrames == 2 and list(ds.PageNumberVector) == [1, 2]
    assert np.array_equal(dcmread(tmp_path / "deep.dcm").pixel_array, np.stack(pages))
    assert dciodvfy_errors(tmp_path / "deep.dcm") == []
