"""The media view over discs made by other tools: DCMTK dcmmkdir + genisoimage, pydicom's bundled DICOMDIRs."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dicommedia.errors import MediaError
from dicommedia.media import open_media
from tests.conftest import require_tool, run
from tests.media_fixtures import (
    dcmmkdir,
    dcmtk_disc,
    genisoimage,
    mount_as,
    patch_record,
    record_offsets,
    rewrite_dicomdir,
    write_ct_study,
)

PYDICOM_DIRTESTS = Path(get_testdata_file("DICOMDIR")).parent


def codes(view) -> list[str]:
    return sorted(p.code for p in view.problems if p.is_error)


@pytest.fixture
def disc(tmp_path: Path) -> Path:
    return dcmtk_disc(tmp_path, count=3)


def test_iso_by_dcmtk_and_genisoimage(disc: Path, tmp_path: Path):
    iso = genisoimage(disc, tmp_path / "x.iso", "TESTSET")
    with open_media(iso) as view:
        files = list(view.files())
        assert (view.kind, view.fileset_id, codes(view)) == ("iso", "TESTSET", [])
        assert len(files) == 3
        for f in files:
            source = disc.joinpath(*f.file_id)
            assert f.media_path.endswith(".;1")
            with f.open() as fp:
                assert fp.read() == source.read_bytes()
            assert f.size == source.stat().st_size
            ds = dcmread(source, stop_before_pixels=True)
            assert (f.sop_instance_uid, f.series_instance_uid, f.patient_id) == (
                ds.SOPInstanceUID,
                ds.SeriesInstanceUID,
                ds.PatientID,
            )
            assert (f.modality, f.study_date, f.transfer_syntax_uid) == (
                "CT",
                "20240102",
                ds.file_meta.TransferSyntaxUID,
            )


@pytest.mark.parametrize("style", ["lower", "dot", "lower-dot", "version"])
def test_mounted_name_forms(disc: Path, tmp_path: Path, style: str):
    mounted = mount_as(disc, tmp_path / f"mnt-{style}", style)
    view = open_media(mounted)
    files = list(view.files())
    assert (view.kind, len(files), codes(view)) == ("folder", 3, [])
    assert all(f.file_id[0] == "DICOM" for f in files)
    with files[0].open() as fp:
        assert fp.read(132)[128:] == b"DICM"


def test_dicomdir_path_and_scan(disc: Path):
    assert open_media(disc / "DICOMDIR").kind == "dicomdir"
    assert len(list(open_media(disc / "DICOMDIR").files())) == 3
    os.remove(disc / "DICOMDIR")
    shutil.copy(PYDICOM_DIRTESTS / "DICOMDIR", disc / "DICOM" / "DICOMDIR")  # a DICOMDIR met while scanning
    (disc / "DICOM" / "NOTES.TXT").write_text("not dicom")
    view = open_media(disc)
    files = list(view.files())
    assert view.kind == "scan" and view.fileset_id is None
    assert sorted(f.file_id[-1] for f in files) == ["IM1", "IM2", "IM3"]
    assert {f.study_date for f in files} == {"20240102"}


def test_pydicom_bundled_dicomdirs():
    # pydicom's test folder also holds every other bundled file: only what its DICOMDIRs reference is checked here.
    view = open_media(PYDICOM_DIRTESTS, dicomdir_only=True)
    files = list(view.files())
    assert (view.kind, view.fileset_id, len(files), codes(view)) == ("folder", "PYDICOM_TEST", 31, [])
    assert {f.patient_id for f in files} == {"77654033", "98890234"}
    reordered = open_media(PYDICOM_DIRTESTS / "DICOMDIR-reordered", dicomdir_only=True)
    assert len(list(reordered.files())) == 31 and codes(reordered) == []
    nooffset = open_media(PYDICOM_DIRTESTS / "DICOMDIR-nooffset", dicomdir_only=True)
    assert len(list(nooffset.files())) == 31
    tiny = open_media(PYDICOM_DIRTESTS / "TINY_ALPHA")
    assert len(list(tiny.files())) == 50


def test_missing_file_is_reported_others_listed(disc: Path):
    next((disc / "DICOM").rglob("IM2")).unlink()
    view = open_media(disc)
    assert len(list(view.files())) == 2
    assert codes(view) == ["missing-file"]
    assert view.problems[0].file_id.endswith("IM2")


def test_broken_offset_falls_back_to_sequence_order(disc: Path):
    patch_record(disc / "DICOMDIR", 0, "OffsetOfReferencedLowerLevelDirectoryEntity", 12345)
    view = open_media(disc)
    assert len(list(view.files())) == 3
    assert "bad-offset" in codes(view)
    assert not view.directory.followed_offsets


def test_offset_loop_detected(disc: Path):
    offsets = record_offsets(disc / "DICOMDIR")
    images = [i for i, (kind, _) in enumerate(offsets) if kind == "IMAGE"]
    patch_record(disc / "DICOMDIR", images[-1], "OffsetOfTheNextDirectoryRecord", offsets[images[0]][1])
    view = open_media(disc)
    assert len(list(view.files())) == 3
    assert any("loops" in p.message for p in view.problems)


@pytest.mark.parametrize("keep", [0.15, 0.8, 0.97])
def test_unparseable_dicomdir_falls_back_to_scanning(disc: Path, keep: float):
    data = (disc / "DICOMDIR").read_bytes()
    (disc / "DICOMDIR").write_bytes(data[: int(len(data) * keep)])  # pydicom alone would read part quietly
    view = open_media(disc)
    assert len(list(view.files())) == 3
    assert codes(view) == ["dicomdir-corrupt"]


def snapshot(view) -> tuple:
    """Everything a reader of the view sees: files with their keys, problems, File-set ID."""
    files = [
        (
            f.file_id,
            f.size,
            f.patient_id,
            f.patient_name,
            f.study_instance_uid,
            f.study_date,
            f.study_description,
            f.series_instance_uid,
            f.modality,
            f.series_number,
            f.sop_instance_uid,
            f.sop_class_uid,
            f.transfer_syntax_uid,
        )
        for f in view.files()
    ]
    return files, [(p.code, p.message, p.file_id) for p in view.problems], view.fileset_id, view.kind


def deactivate_first_image(records):
    next(r for r in records if r.DirectoryRecordType == "IMAGE").RecordInUseFlag = 0


def damage(disc: Path, how: str) -> None:
    dicomdir = disc / "DICOMDIR"
    if how == "bad-offset":
        patch_record(dicomdir, 0, "OffsetOfReferencedLowerLevelDirectoryEntity", 12345)
    elif how == "loop":
        offsets = record_offsets(dicomdir)
        images = [i for i, (kind, _) in enumerate(offsets) if kind == "IMAGE"]
        patch_record(dicomdir, images[-1], "OffsetOfTheNextDirectoryRecord", offsets[images[0]][1])
    elif how.startswith("cut"):
        data = dicomdir.read_bytes()
        dicomdir.write_bytes(data[: int(len(data) * float(how[3:]))])
    elif how == "inactive":
        rewrite_dicomdir(dicomdir, deactivate_first_image)
    elif how == "missing":
        next((disc / "DICOM").rglob("IM2")).unlink()
    elif how == "latin1":  # a Patient's Name byte made 0xDC ("Ü" in ISO_IR 100): text that is not plain ASCII
        data = bytearray(dicomdir.read_bytes())
        at = data.index(b"\x10\x00\x10\x00PN") + 8
        data[at] = 0xDC
        dicomdir.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "how, plain",
    [
        ("none", True),
        ("inactive", True),
        ("missing", True),
        ("bad-offset", False),
        ("loop", False),
        ("cut0.15", False),
        ("cut0.8", False),
        ("cut0.97", False),
        ("latin1", False),
    ],
)
def test_plain_reader_agrees_with_pydicom(disc: Path, how: str, plain: bool):
    """``open_media(plain=True)`` reads a sound DICOMDIR without pydicom, and leaves any other to pydicom."""
    damage(disc, how)
    full, quick = open_media(disc), open_media(disc, plain=True)
    assert snapshot(quick) == snapshot(full)
    assert (type(quick.directory).__name__ == "PlainDirectory") == plain


@pytest.mark.parametrize(
    "name",
    [
        "DICOMDIR",
        "DICOMDIR-reordered",
        "DICOMDIR-nooffset",
        "DICOMDIR-implicit",
        "DICOMDIR-bigEnd",
        "TINY_ALPHA/DICOMDIR",
    ],
)
def test_plain_reader_on_pydicom_bundled_dicomdirs(name: str):
    path = PYDICOM_DIRTESTS / name
    assert snapshot(open_media(path, plain=True)) == snapshot(open_media(path))


def test_inactive_record_is_skipped(disc: Path):
    def deactivate(records):
        next(r for r in records if r.DirectoryRecordType == "IMAGE").RecordInUseFlag = 0

    rewrite_dicomdir(disc / "DICOMDIR", deactivate)
    files = list(open_media(disc).files())
    assert [f.unreferenced for f in files] == [False, False, True]  # the file is still there: listed, flagged


def test_file_id_leaving_the_media_is_refused(tmp_path: Path):
    outside = tmp_path / "SECRET"
    outside.write_bytes(b"\0" * 128 + b"DICM" + b"private")
    disc = tmp_path / "d"
    write_ct_study(disc, 3, patient_id="P")
    dcmmkdir(disc)
    # The File IDs are DICOM\P\ST1\SE1\IMn (19 chars): rewrite them at the same length.
    escapes = ["..\\SECRET\\..\\SECRET", "/etc/passwd\\X\\Y\\ZZZ"]

    def escape(records):
        leaves = [r for r in records if r.DirectoryRecordType == "IMAGE"]
        for leaf, bad in zip(leaves, escapes):
            assert len(bad) == len("\\".join(leaf.ReferencedFileID))
            leaf.ReferencedFileID = bad.split("\\")

    rewrite_dicomdir(disc / "DICOMDIR", escape)
    view = open_media(disc, dicomdir_only=True)
    files = list(view.files())
    assert len(files) == 1 and files[0].file_id[-1] == "IM3"
    assert codes(view) == ["bad-file-id", "bad-file-id"]
    assert all("refused" in p.message for p in view.problems)


def test_link_inside_the_media_is_refused(disc: Path, tmp_path: Path):
    victim = next((disc / "DICOM").rglob("IM1"))
    outside = tmp_path / "outside.dcm"
    shutil.move(victim, outside)
    victim.symlink_to(outside)
    view = open_media(disc)
    assert len(list(view.files())) == 2
    assert codes(view) == ["bad-file-id"] and "link" in view.problems[0].message
    os.remove(disc / "DICOMDIR")
    scanned = open_media(disc)
    assert len(list(scanned.files())) == 2
    assert [p.code for p in scanned.problems] == ["link-skipped"]


@pytest.mark.parametrize("extensions", [["-R"], ["-J", "-R"]])
def test_rock_ridge_link_in_an_iso_is_refused(disc: Path, tmp_path: Path, extensions: list[str]):
    victim = next((disc / "DICOM").rglob("IM1"))
    outside = tmp_path / "outside.dcm"
    shutil.move(victim, outside)
    victim.symlink_to(outside)
    iso = tmp_path / "rr.iso"
    result = run([require_tool("genisoimage"), "-quiet", *extensions, "-V", "TESTSET", "-o", str(iso), str(disc)])
    assert result.returncode == 0, result.stderr
    with open_media(iso) as view:
        assert len(list(view.files())) == 2
        assert codes(view) == ["bad-file-id"] and "link" in view.problems[0].message
        assert view.store.iso.has_rock_ridge()  # pycdlib agrees that the image carries Rock Ridge


def test_truncated_iso_is_one_error(disc: Path, tmp_path: Path):
    iso = genisoimage(disc, tmp_path / "t.iso", "TESTSET")
    truncated = tmp_path / "cut.iso"
    truncated.write_bytes(iso.read_bytes()[: 16 * 2048 + 100])
    with pytest.raises(MediaError, match="not a readable ISO 9660 image"):
        open_media(truncated)


def test_pread_into_fills_every_slot_or_says_the_file_is_short(tmp_path: Path):
    from dicommedia.media.store import pread_into

    data = os.urandom(3000)
    (tmp_path / "f").write_bytes(data)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        buffer = bytearray(2000)
        view = memoryview(buffer)
        slots = [view[n : n + 1] for n in range(1500)] + [view[1500:1500], view[1500:2000]]  # over IOV_MAX, one empty
        pread_into(fd, 1000, slots, available=2000)
        assert bytes(buffer) == data[1000:]
        with pytest.raises(OSError):
            pread_into(fd, 2500, [view[:400], view[400:800]])  # the file ends first
        with pytest.raises(OSError):
            pread_into(fd, 0, [view[:100]], available=99)
    finally:
        os.close(fd)


def test_not_media(tmp_path: Path):
    with pytest.raises(MediaError):
        open_media(tmp_path / "nothing-here")
    bogus = tmp_path / "bogus.iso"
    bogus.write_bytes(b"\0" * 40000)
    with pytest.raises(MediaError):
        open_media(bogus)


def test_iso_files_read_from_several_threads(disc: Path, tmp_path: Path):
    iso = genisoimage(disc, tmp_path / "t.iso", "TESTSET")
    with open_media(iso) as view:
        files = list(view.files()) * 8
        expected = {f.file_id: disc.joinpath(*f.file_id).read_bytes() for f in files}
        wrong = []

        def read_all(chunk):
            for f in chunk:
                with f.open() as fp:
                    data = b"".join(iter(lambda: fp.read(97), b""))
                if data != expected[f.file_id]:
                    wrong.append(f.file_id)

        threads = [threading.Thread(target=read_all, args=(files[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wrong == []


@pytest.mark.parametrize(
    "value, components",
    [("DICOM\\IM1", ("DICOM", "IM1")), (["DICOM", "IM1"], ("DICOM", "IM1")), (7, ("7",)), (b"A\\B", ("A", "B"))],
)
def test_file_id_of_any_vr_is_read_as_text(value, components):
    """A Referenced File ID a damaged record holds in another VR (a number: fuzzed ISO, seed 20261206 case 607)
    names no file on the media (then reported as missing), never a TypeError."""
    from dicommedia.media.dicomdir import Record

    assert Record(0, None, {"ReferencedFileID": value}).file_id == components
