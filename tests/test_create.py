"""`dicommedia create` end to end, judged by outside tools: dciodvfy, dcmdump, dcmftest, isoinfo, xorriso, pydicom."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.fileset import FileSet
from pydicom.uid import ExplicitVRLittleEndian, GrayscaleSoftcopyPresentationStateStorage, generate_uid

from tests.conftest import require_tool, run
from tests.synthetic import image_dataset, write_series

# pydicom's bundled files: one instance in each encoding the STD-GEN profiles must convert.
ENCODINGS = [
    "CT_small.dcm",  # Explicit VR LE, signed, 179 private elements: copied verbatim
    "MR_small_implicit.dcm",  # Implicit VR LE
    "MR_small_bigendian.dcm",  # Explicit VR Big Endian, same object as MR_small: written once
    "MR_small.dcm",
    "image_dfl.dcm",  # Deflated
    "ExplVR_BigEnd.dcm",  # Big Endian RGB
    "MR_small_RLE.dcm",  # RLE
    "rtdose_rle.dcm",  # RLE, multi-frame
    "rtdose.dcm",  # Implicit VR, multi-frame, no Instance Number
    "JPEG2000.dcm",  # J2K
    "examples_jpeg2k.dcm",  # J2K lossless YBR_RCT
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS
    "SC_rgb_jpeg_gdcm.dcm",  # JPEG lossless SV1 RGB
    "SC_rgb_dcmtk_+eb+cy+np.dcm",  # JPEG baseline YBR
    "examples_ybr_color.dcm",  # JPEG baseline YBR_FULL_422, 30 frames
    "examples_palette.dcm",  # palette colour: stays palette
    "SC_rgb_small_odd.dcm",  # odd sizes
    "reportsi.dcm",  # SR
    "waveform_ecg.dcm",  # waveform
]


def _dicommedia(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    proc = run([sys.executable, "-m", "dicommedia", *args])
    if check:
        assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _extract(iso: Path, dest: Path) -> Path:
    xorriso = require_tool("xorriso")
    proc = run([xorriso, "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(dest)])
    assert proc.returncode == 0, proc.stderr
    return dest


def _disc_files(root: Path) -> dict[str, Path]:
    """SOP Instance UID -> file, for every file the DICOMDIR references (read with pydicom's FileSet)."""
    fs = FileSet(root / "DICOMDIR")
    out = {}
    for instance in fs:
        path = Path(instance.path)
        assert path.is_file(), path
        out[instance.SOPInstanceUID] = path
    return out


def _pixels(ds):
    from pydicom.pixels import apply_modality_lut

    arr = ds.pixel_array
    return apply_modality_lut(arr, ds) if ds.get("PhotometricInterpretation", "").startswith("MONO") else arr


@pytest.fixture(scope="module")
def mixed_disc(tmp_path_factory) -> dict:
    """One disc from every encoding, plus synthetic series in two character sets."""
    base = tmp_path_factory.mktemp("mixed")
    inputs = base / "in"
    inputs.mkdir()
    for name in ENCODINGS:
        shutil.copy(get_testdata_file(name), inputs / name)
    write_series(inputs / "latin1", 3, patient_name="MÜLLER^JÜRGEN", patient_id="P100", charset="ISO_IR 100")
    write_series(inputs / "utf8", 2, patient_name="山田^太郎", patient_id="P200", charset="ISO_IR 192")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in inputs.rglob("*") if p.is_file()}
    iso = base / "disc.iso"
    proc = _dicommedia("create", str(inputs), "-o", str(iso), "--fileset-id", "MIXED_1", "--json", check=True)
    summary = json.loads(proc.stdout)
    root = _extract(iso, base / "x")
    return {"inputs": inputs, "iso": iso, "root": root, "summary": summary, "before": before, "stderr": proc.stderr}


def test_disc_holds_exactly_the_inputs_with_their_pixels(mixed_disc):
    files = _disc_files(mixed_disc["root"])
    expected = {}
    for path in mixed_disc["inputs"].rglob("*.dcm"):
        ds = dcmread(path)
        expected.setdefault(ds.SOPInstanceUID, ds)
    assert set(files) == set(expected)
    # MR_small in five encodings and rtdose in two: the same objects, written once each
    assert mixed_disc["summary"]["duplicates"] == 5
    assert mixed_disc["summary"]["volumes"][0]["instances"] == len(expected)
    for uid, path in files.items():
        written = dcmread(path)
        assert written.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian, path
        source = expected[uid]
        if "PixelData" in source:
            assert np.array_equal(_pixels(written), _pixels(source)), f"pixels differ for {uid}"
            assert written.PhotometricInterpretation in (source.PhotometricInterpretation, "RGB")


def test_private_attributes_survive(mixed_disc):
    files = _disc_files(mixed_disc["root"])
    source = dcmread(get_testdata_file("CT_small.dcm"))
    written = dcmread(files[source.SOPInstanceUID])
    private = [e for e in source if e.tag.is_private]
    assert len(private) == 179
    for elem in private:
        assert written[elem.tag].value == elem.value
    palette_src = dcmread(get_testdata_file("examples_palette.dcm"))
    palette = dcmread(files[palette_src.SOPInstanceUID])
    assert palette.PhotometricInterpretation == "PALETTE COLOR"
    assert palette.RedPaletteColorLookupTableData == palette_src.RedPaletteColorLookupTableData


def test_inputs_are_never_modified(mixed_disc):
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in mixed_disc["inputs"].rglob("*") if p.is_file()}
    assert after == mixed_disc["before"]


def test_dicomdir_passes_dciodvfy_and_dcmdump(mixed_disc):
    dicomdir = mixed_disc["root"] / "DICOMDIR"
    proc = run([require_tool("dciodvfy"), str(dicomdir)])
    errors = [line for line in proc.stderr.splitlines() + proc.stdout.splitlines() if line.startswith("Error")]
    assert errors == []
    dump = run([require_tool("dcmdump"), "-q", str(dicomdir)])
    assert dump.returncode == 0, dump.stderr
    assert "FileSetID" in dump.stdout and "MIXED_1" in dump.stdout
    assert "2.25.62444645446951849998193461635087160769.1" in dump.stdout  # our Implementation Class UID
    assert dump.stdout.count("(0008,0005) CS [ISO_IR 100]") >= 1
    assert dump.stdout.count("(0008,0005) CS [ISO_IR 192]") >= 1


def test_dicomdir_offsets_are_the_real_positions(mixed_disc):
    """dcmdump prints each record's real byte position; every offset must be one of them (PS3.3 F.3.2.1)."""
    dump = run([require_tool("dcmdump"), "+L", "--print-all", str(mixed_disc["root"] / "DICOMDIR")]).stdout
    positions = {int(x) for x in re.findall(r"#  offset=\$(\d+)", dump)}
    offsets = {int(x) for x in re.findall(r"\(0004,1(?:200|202|400|420)\) up (\d+)", dump)}
    assert positions and (offsets - {0}) <= positions
    assert len(positions) == dump.count("DirectoryRecordType")  # one real position per record


def test_every_file_is_part10_and_readable_by_dcmtk(mixed_disc):
    dcmftest = require_tool("dcmftest")
    files = [str(p) for p in _disc_files(mixed_disc["root"]).values()]
    proc = run([dcmftest, *files])
    assert proc.stdout.count("yes:") == len(files), proc.stdout
    for path in files:
        assert run([require_tool("dcmdump"), "-q", path]).returncode == 0, path


def test_iso_is_level1_with_volume_id_and_no_extensions(mixed_disc):
    isoinfo = require_tool("isoinfo")
    info = run([isoinfo, "-d", "-i", str(mixed_disc["iso"])]).stdout
    assert "Volume id: MIXED_1" in info
    assert "NO Joliet present" in info and "NO Rock Ridge present" in info
    listing = run([isoinfo, "-l", "-i", str(mixed_disc["iso"])]).stdout
    assert "DICOMDIR.;1" in listing and "README.TXT;1" in listing and "INDEX.HTM;1" in listing
    names = [line.split()[-1] for line in listing.splitlines() if line.startswith("-")]
    assert names and all(re.fullmatch(r"[A-Z0-9_]{1,8}\.[A-Z0-9_]{0,3};1", n) for n in names), names
    found = run([require_tool("xorriso"), "-indev", str(mixed_disc["iso"]), "-find", "/DICOM", "-type", "f"])
    assert found.returncode == 0
    assert len([line for line in found.stdout.splitlines() if line.startswith("'/DICOM")]) == len(
        _disc_files(mixed_disc["root"])
    )


def test_index_htm_opens_in_chromium(mixed_disc, tmp_path):
    chromium = shutil.which("chromium") or require_tool("chromium")
    index = mixed_disc["root"] / "INDEX.HTM"
    proc = run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            index.as_uri(),
        ],
        timeout=120,
    )
    assert "山田^太郎".split("^")[0] in proc.stdout
    assert "MÜLLER" in proc.stdout and "README.TXT" in proc.stdout
    assert "<script" not in index.read_text(encoding="utf-8")


def _create(args: list[str]) -> subprocess.CompletedProcess:
    return _dicommedia("create", *args)


def test_missing_type1_keys_are_invented_in_record_and_file(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    ds = image_dataset(patient_id="")
    for keyword in ("StudyID", "SeriesNumber", "InstanceNumber", "StudyTime"):
        delattr(ds, keyword)
    ds.StudyDate = "2024-01-15"  # an odd date: normalised, not dropped
    ds.save_as(src / "a.dcm", enforce_file_format=True)
    iso = tmp_path / "a.iso"
    proc = _create([str(src), "-o", str(iso), "--json"])
    assert proc.returncode == 0, proc.stderr
    warnings = json.loads(proc.stdout)["warnings"]
    assert any("PatientID" in w for w in warnings) and any("StudyID" in w for w in warnings)
    root = _extract(iso, tmp_path / "x")
    fs = FileSet(root / "DICOMDIR")
    [instance] = list(fs)
    written = instance.load()
    record = instance.node
    series, study, patient = record.parent, record.parent.parent, record.parent.parent.parent
    assert patient._record.PatientID == written.PatientID != ""
    assert study._record.StudyID == written.StudyID != ""
    assert study._record.StudyDate == written.StudyDate == "20240115"
    assert study._record.StudyTime == written.StudyTime != ""
    assert str(series._record.SeriesNumber) == str(written.SeriesNumber) != ""
    assert str(record._record.InstanceNumber) == str(written.InstanceNumber) != ""


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2024-01-15", "20240115"),
        ("2024.01.15", "20240115"),
        ("20240115", "20240115"),
        ("20240230", None),
        ("0095.07.24", None),
        ("", None),
    ],
)
def test_key_dates_are_normalised_or_refused(value, expected):
    """A year before 1000 (a two-digit year padded, as old GDCM test files have) is refused like a 30th of
    February: dciodvfy calls it invalid and no century can be guessed."""
    from dicommedia.plan.values import normalize_date

    assert normalize_date(value) == expected


def test_bad_inputs_are_all_named_and_nothing_is_written(tmp_path):
    src = tmp_path / "in"
    write_series(src, 2)
    (src / "notes.txt").write_text("not an image")
    (src / "random.bin").write_bytes(os.urandom(4096))
    truncated = src / "truncated.dcm"
    data = (src / "slice00001.dcm").read_bytes()
    ds = image_dataset(instance_number=9)
    ds.save_as(truncated, enforce_file_format=True)
    truncated.write_bytes(truncated.read_bytes()[:-3000])
    iso = tmp_path / "out.iso"
    proc = _create([str(src), "-o", str(iso)])
    assert proc.returncode == 1
    for name in ("notes.txt", "random.bin", "truncated.dcm"):
        assert name in proc.stderr
    assert not iso.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left behind
    proc = _create([str(src), "-o", str(iso), "--skip-invalid", "--json"])
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert {Path(s["path"]).name for s in summary["skipped"]} == {"notes.txt", "random.bin", "truncated.dcm"}
    assert summary["volumes"][0]["instances"] == 2
    assert data == (src / "slice00001.dcm").read_bytes()


def test_only_bad_inputs_write_no_empty_fileset(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "notes.txt").write_text("hello")
    proc = _create([str(src), "-o", str(tmp_path / "o.iso"), "--skip-invalid"])
    assert proc.returncode == 1 and "no instance" in proc.stderr
    assert not (tmp_path / "o.iso").exists()


def test_existing_output_needs_overwrite(tmp_path):
    src = tmp_path / "in"
    write_series(src, 1)
    iso = tmp_path / "o.iso"
    iso.write_bytes(b"old")
    proc = _create([str(src), "-o", str(iso)])
    assert proc.returncode == 1 and "--overwrite" in proc.stderr
    assert iso.read_bytes() == b"old"
    assert _create([str(src), "-o", str(iso), "--overwrite"]).returncode == 0
    assert iso.stat().st_size > 2048


def _conflict_inputs(tmp_path: Path) -> tuple[Path, Path, str]:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    first = image_dataset(seed=1)
    first.save_as(a / "x.dcm", enforce_file_format=True)
    other = image_dataset(seed=2, study_uid=first.StudyInstanceUID, series_uid=first.SeriesInstanceUID)
    other.SOPInstanceUID = first.SOPInstanceUID  # same UID, other pixels: a conflict
    other.save_as(b / "x.dcm", enforce_file_format=True)
    pr = image_dataset(seed=3)
    pr.SOPClassUID = GrayscaleSoftcopyPresentationStateStorage
    del pr.PixelData
    from pydicom.dataset import Dataset

    ref = Dataset()
    ref.ReferencedSOPClassUID = other.SOPClassUID
    ref.ReferencedSOPInstanceUID = other.SOPInstanceUID
    series = Dataset()
    series.SeriesInstanceUID = other.SeriesInstanceUID
    series.ReferencedImageSequence = [ref]
    pr.ReferencedSeriesSequence = [series]
    pr.Modality = "PR"
    pr.ContentLabel = "PR1"
    pr.PresentationCreationDate, pr.PresentationCreationTime = "20240101", "101010"
    pr.SeriesInstanceUID = generate_uid()
    pr.save_as(b / "pr.dcm", enforce_file_format=True)
    return a, b, str(first.SOPInstanceUID)


def test_uid_conflict_is_refused_then_fixed_with_fix_uids(tmp_path):
    a, b, uid = _conflict_inputs(tmp_path)
    iso = tmp_path / "o.iso"
    proc = _create([str(a), str(b), "-o", str(iso)])
    assert proc.returncode == 1 and "--fix-uids" in proc.stderr and uid in proc.stderr
    proc = _create([str(a), str(b), "-o", str(iso), "--fix-uids", "--json"])
    assert proc.returncode == 0, proc.stderr
    files = _disc_files(_extract(iso, tmp_path / "x"))
    assert len(files) == 3 and uid in files
    new_uid = next(u for u in files if u != uid and dcmread(files[u]).Modality != "PR")
    pr = next(dcmread(p) for p in files.values() if dcmread(p).Modality == "PR")
    assert pr.ReferencedSeriesSequence[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID == new_uid


def test_dicomdir_in_input_folder_is_not_an_instance(tmp_path):
    src = tmp_path / "in"
    shutil.copytree(Path(get_testdata_file("DICOMDIR")).parent / "77654033", src / "77654033")
    shutil.copy(get_testdata_file("DICOMDIR"), src / "DICOMDIR")
    iso = tmp_path / "o.iso"
    proc = _create([str(src), "-o", str(iso), "--json"])
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert any("DICOMDIR inside an input folder" in w for w in summary["warnings"])
    files = _disc_files(_extract(iso, tmp_path / "x"))
    assert len(files) == len([p for p in (src / "77654033").rglob("*") if p.is_file()])


def test_remaster_a_disc_and_write_a_folder(tmp_path):
    src = tmp_path / "in"
    write_series(src, 3)
    first = tmp_path / "first.iso"
    assert _create([str(src), "-o", str(first)]).returncode == 0
    out = tmp_path / "copy"
    proc = _create([str(first), "-o", str(out), "--format", "dir", "--profile", "STD-GEN-DVD-RAM"])
    assert proc.returncode == 0, proc.stderr
    assert (out / "DICOMDIR").is_file() and (out / "README.TXT").is_file()
    uids = {dcmread(p).SOPInstanceUID for p in src.iterdir()}
    assert set(_disc_files(out)) == uids


def test_capacity_and_span(tmp_path, monkeypatch):
    from dicommedia import create as creator
    from dicommedia.profile import load_profile

    src = tmp_path / "in"
    for n in range(3):
        write_series(src / f"s{n}", 4, rows=512, cols=512, study_uid="1.2.3.4", patient_id="SPAN")
    monkeypatch.setitem(creator.MEDIA_CAPACITY, "cd-650", 3 * 1024 * 1024)
    options = creator.CreateOptions(
        inputs=[str(src)], output=tmp_path / "big.iso", profile=load_profile("STD-GEN-CD"), media="cd-650", jobs=1
    )
    with pytest.raises(creator.MediaError, match="needs"):
        creator.create_fileset(options)
    assert not (tmp_path / "big.iso").exists()
    options.span = True
    result = creator.create_fileset(options)
    assert len(result.volumes) >= 2
    seen = set()
    for vol in result.volumes:
        assert vol.bytes <= 3 * 1024 * 1024
        root = _extract(Path(vol.path), tmp_path / Path(vol.path).stem)
        series = {dcmread(p).SeriesInstanceUID for p in _disc_files(root).values()}
        assert not series & seen  # a series never spans volumes
        seen |= series
    assert len(seen) == 3


def test_profiles_command_lists_and_shows(tmp_path):
    proc = _dicommedia("profiles", "--json", check=True)
    names = {p["name"] for p in json.loads(proc.stdout)}
    assert {"STD-GEN-CD", "STD-GEN-DVD-RAM", "AUG-GEN-DRS-CD", "AUG-GEN-DRS-DVD-RAM"} <= names
    aug = json.loads(_dicommedia("profiles", "AUG-GEN-DRS-CD", "--json", check=True).stdout)
    assert "1.2.840.10008.1.2.4.70" in aug["sop_classes"]["1.2.840.10008.5.1.4.1.1.2"]["transfer_syntaxes"]
    assert "1.2.840.10008.5.1.4.1.1.128" in aug["sop_classes"]  # the seed's PET UID slip, corrected
    custom = tmp_path / "mine.toml"
    custom.write_text('name = "MINE"\nmedia = "usb"\n[default]\ntransfer_syntaxes = ["1.2.840.10008.1.2.1"]\n')
    assert (
        json.loads(_dicommedia("profiles", "--profile-file", str(custom), "--json", check=True).stdout)["name"]
        == "MINE"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [")
    proc = _dicommedia("profiles", "--profile-file", str(bad))
    assert proc.returncode == 1 and "bad.toml" in proc.stderr


def test_profile_engine_answers_keep_convert_refuse():
    from dicommedia.profile import Action, load_profile

    std, aug = load_profile("STD-GEN-CD"), load_profile("AUG-GEN-DRS-CD")
    ct, jpeg = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.4.70"
    assert std.decide(ct, "1.2.840.10008.1.2.1").action is Action.KEEP
    assert std.decide(ct, jpeg).action is Action.CONVERT
    assert aug.decide(ct, jpeg).action is Action.KEEP
    refused = std.decide("1.3.12.2.1107.5.99.3.10", "1.2.840.10008.1.2.1")  # Siemens private SOP class
    assert refused.action is Action.REFUSE and "not a standard Storage SOP class" in refused.reason
    # AUG augments STD: anything STD accepts, AUG accepts too
    assert aug.decide("1.2.840.10008.5.1.4.1.1.481.2", "1.2.840.10008.1.2.1").action is Action.KEEP


def test_leaf_record_types_follow_the_sop_class(mixed_disc):
    fs = FileSet(mixed_disc["root"] / "DICOMDIR")
    types = {inst.SOPClassUID: inst.node.record_type for inst in fs}
    assert types["1.2.840.10008.5.1.4.1.1.481.2"] == "RT DOSE"
    assert types["1.2.840.10008.5.1.4.1.1.88.11"] == "SR DOCUMENT"
    assert types["1.2.840.10008.5.1.4.1.1.9.1.1"] == "WAVEFORM"
    assert types["1.2.840.10008.5.1.4.1.1.2"] == "IMAGE"


def test_private_attributes_survive_implicit_to_explicit(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    ds = image_dataset()
    block = ds.private_block(0x0029, "ACME 1.0", create=True)
    block.add_new(0x10, "LO", "kept as it was")
    block.add_new(0x11, "OB", b"\x01\x02\x03\x04")
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2"
    ds.save_as(src / "implicit.dcm", enforce_file_format=True, implicit_vr=True)
    iso = tmp_path / "o.iso"
    assert _create([str(src), "-o", str(iso)]).returncode == 0
    written = dcmread(next(iter(_disc_files(_extract(iso, tmp_path / "x")).values())))
    assert written.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert written[0x00290010].value == "ACME 1.0"
    assert bytes(written[0x00291010].value).rstrip(b" ") == b"kept as it was"
    assert bytes(written[0x00291011].value) == b"\x01\x02\x03\x04"


def test_dicomdir_given_as_input_is_remastered(tmp_path):
    src = tmp_path / "in"
    write_series(src, 3)
    folder = tmp_path / "first"
    assert _create([str(src), "-o", str(folder), "--format", "dir"]).returncode == 0
    iso = tmp_path / "second.iso"
    proc = _create([str(folder / "DICOMDIR"), "-o", str(iso)])
    assert proc.returncode == 0, proc.stderr
    assert set(_disc_files(_extract(iso, tmp_path / "x"))) == {dcmread(p).SOPInstanceUID for p in src.iterdir()}


def test_entities_stay_consistent_for_dcentvfy(tmp_path):
    src = tmp_path / "in"
    write_series(src / "a", 3, patient_id="P1")
    write_series(src / "b", 2, patient_id="P1", patient_name="DOE^JANE")
    iso = tmp_path / "o.iso"
    assert _create([str(src), "-o", str(iso)]).returncode == 0
    files = [str(p) for p in _disc_files(_extract(iso, tmp_path / "x")).values()]
    proc = run([require_tool("dcentvfy"), *files])
    assert [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")] == []


def _series_with_presentation_state(folder: Path) -> tuple[list[str], str]:
    paths = write_series(folder, 2, rows=32, cols=32)
    first = dcmread(paths[0])
    pr = image_dataset(study_uid=first.StudyInstanceUID, patient_id=first.PatientID)
    del pr.PixelData
    from pydicom.dataset import Dataset

    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = first.SOPClassUID, first.SOPInstanceUID
    series = Dataset()
    series.SeriesInstanceUID, series.ReferencedImageSequence = first.SeriesInstanceUID, [ref]
    pr.SOPClassUID = GrayscaleSoftcopyPresentationStateStorage
    pr.Modality, pr.ContentLabel, pr.ReferencedSeriesSequence = "PR", "PR1", [series]
    pr.PresentationCreationDate, pr.PresentationCreationTime = "20240101", "101010"
    pr.save_as(folder / "pr.dcm", enforce_file_format=True)
    return [dcmread(p).SOPInstanceUID for p in paths], str(first.SOPInstanceUID)


def test_lossy_compression_moves_references_to_the_new_uids(tmp_path):
    uids, referenced = _series_with_presentation_state(tmp_path / "in")
    iso = tmp_path / "o.iso"
    proc = _create(
        [
            str(tmp_path / "in"),
            "-o",
            str(iso),
            "-p",
            "AUG-GEN-DRS-CD",
            "--compress-for",
            "CT=j2k",
            "--quality",
            "80",
            "--json",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    files = _disc_files(_extract(iso, tmp_path / "x"))
    images = {u: dcmread(p) for u, p in files.items() if dcmread(p).Modality == "CT"}
    assert len(images) == 2 and not set(images) & set(uids)  # lossy: new SOP Instance UIDs (App B.2)
    new = next(u for u, ds in images.items() if ds.SourceImageSequence[-1].ReferencedSOPInstanceUID == referenced)
    pr = next(dcmread(p) for p in files.values() if dcmread(p).Modality == "PR")
    assert pr.ReferencedSeriesSequence[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID == new


def test_a_lossy_request_that_cannot_be_met_keeps_uids_and_references(tmp_path):
    uids, referenced = _series_with_presentation_state(tmp_path / "in")
    iso = tmp_path / "o.iso"
    proc = _create(
        [str(tmp_path / "in"), "-o", str(iso), "-p", "AUG-GEN-DRS-CD", "--compress-for", "CT=jpeg-baseline", "--json"]
    )
    assert proc.returncode == 0, proc.stderr
    assert any("kept uncompressed" in w for w in json.loads(proc.stdout)["warnings"])
    files = _disc_files(_extract(iso, tmp_path / "x"))
    assert set(uids) <= set(files)
    pr = next(dcmread(p) for p in files.values() if dcmread(p).Modality == "PR")
    assert pr.ReferencedSeriesSequence[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID == referenced


def test_progress_bars_on_a_terminal(tmp_path):
    """Under a terminal (util-linux `script` gives one) create draws rich progress bars and still succeeds."""
    script = require_tool("script")
    src = tmp_path / "in"
    write_series(src, 3)
    iso = tmp_path / "o.iso"
    command = f"{sys.executable} -m dicommedia create {src} -o {iso}"
    proc = run([script, "-qec", command, "/dev/null"], timeout=120)
    assert proc.returncode == 0, proc.stdout
    assert "wrote" in proc.stdout and "internal error" not in proc.stdout and "Traceback" not in proc.stdout
    assert iso.is_file()


def test_a_pipe_among_the_inputs_is_named_not_waited_on(tmp_path):
    src = tmp_path / "in"
    write_series(src, 1)
    os.mkfifo(src / "pipe")
    proc = _create([str(src), "-o", str(tmp_path / "o.iso")])
    assert proc.returncode == 1 and "pipe" in proc.stderr and "not a regular file" in proc.stderr


def test_outputs_get_ordinary_permissions(tmp_path):
    src = tmp_path / "in"
    write_series(src, 1)
    assert _create([str(src), "-o", str(tmp_path / "o.iso")]).returncode == 0
    assert _create([str(src), "-o", str(tmp_path / "folder"), "--format", "dir"]).returncode == 0
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "o.iso").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o777 & ~umask
