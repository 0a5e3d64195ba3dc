"""Compact per-instance state (flat memory at 100,000 instances): shared key tables and values, the DICOMDIR
encoded in one pass with its links patched in place, files pycdlib holds opened only when written."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from pydicom import dcmread
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

from dicommedia.inputs import dicom_file
from dicommedia.inputs.dicom_file import Keys
from dicommedia.part10.encode import raw_of
from dicommedia.part10.header import RawValue
from dicommedia.writers.output import Part10Stream, VolumeFile, _Deferred
from tests.conftest import run
from tests.synthetic import write_series


def _keys(uid: str, name: str = "DOE^JANE") -> Keys:
    return Keys({"PatientName": raw_of("PN", name), "SOPInstanceUID": raw_of("UI", uid), "Rows": raw_of("US", 512)})


def test_keys_share_their_table_and_equal_values():
    first, second = _keys("1.2.3.1"), _keys("1.2.3.2")
    assert first._shape is second._shape  # one table and one set of shared values for both
    assert first.raw("PatientName") is second.raw("PatientName")
    assert first.get("SOPInstanceUID") == "1.2.3.1" and second.get("SOPInstanceUID") == "1.2.3.2"
    assert first.get("Rows") == 512
    assert first.raw("StudyDate") is None and first.get("StudyDate") is None
    assert first.display("PatientName") == "DOE^JANE"


def test_keys_give_back_their_own_values_as_read():
    values = {
        "PatientName": raw_of("PN", "DOE^JANE"),
        "SOPInstanceUID": raw_of("UI", "1.2.3.4"),
        "InstanceNumber": raw_of("IS", "12"),
        "ReferencedImageSequence": RawValue("SQ", b"\xfe\xff\x00\xe0\x00\x00\x00\x00", True),
        "NumberOfFrames": RawValue("IS", b""),
        "AcquisitionTime": RawValue("TM", b"1" * 300),  # a length kept in five bytes
        "Rows": raw_of("US", 512),
    }
    keys = Keys(dict(values))
    assert {k: keys.raw(k) for k in values} == values


def test_keys_keep_a_varying_value_only_when_it_varies():
    def keys(uid: str, time: str) -> Keys:
        return Keys(
            {
                "SeriesInstanceUID": raw_of("UI", "1.2.9"),
                "SOPInstanceUID": raw_of("UI", uid),
                "ContentTime": raw_of("TM", time),
            }
        )

    first, second, third = keys("1.2.3.1", "101500"), keys("1.2.3.2", "101500"), keys("1.2.3.3", "101501")
    assert second.raw("ContentTime") is second.raw("ContentTime")  # repeated: held once, by the shape
    assert third.raw("ContentTime") is not third.raw("ContentTime")  # changed: held by the instance
    assert [k.get("ContentTime") for k in (first, second, third)] == ["101500", "101500", "101501"]
    assert third.get("SOPInstanceUID") == "1.2.3.3"


def test_keys_tables_stay_bounded():
    for n in range(dicom_file._MAX_LAYOUTS + 50):
        keys = Keys({f"kw{n}": raw_of("LO", "x")})  # a new set of attributes every time
        assert keys.get(f"kw{n}") == "x"
    assert len(dicom_file._LAYOUTS) <= dicom_file._MAX_LAYOUTS
    assert len(dicom_file._RECENT) <= dicom_file._MAX_RECENT
    assert len(dicom_file._SHAPES) <= dicom_file._MAX_SHAPES
    assert len(dicom_file._PREVIOUS) <= dicom_file._MAX_PREVIOUS


def test_dicomdir_links_follow_the_tree(tmp_path: Path):
    """Two patients, one with two studies, one study with two series: pydicom's FileSet follows our offsets."""
    inputs = tmp_path / "in"
    study = generate_uid()
    write_series(inputs / "a1", 3, patient_id="A", study_uid=study)
    write_series(inputs / "a2", 2, patient_id="A", study_uid=study)
    write_series(inputs / "a3", 1, patient_id="A")
    write_series(inputs / "b1", 4, patient_id="B", patient_name="ROE^RICHARD")
    out = tmp_path / "out"
    done = run([sys.executable, "-m", "dicommedia", "create", str(inputs), "-o", str(out), "--format", "dir"])
    assert done.returncode == 0, done.stderr
    fs = FileSet(dcmread(out / "DICOMDIR"))
    assert sorted(fs.find_values("PatientID")) == ["A", "B"]
    assert len(fs.find(PatientID="A")) == 6 and len(fs.find(PatientID="B")) == 4
    assert len(fs.find_values("StudyInstanceUID", fs.find(PatientID="A"))) == 2
    assert len(fs.find(StudyInstanceUID=study)) == 5
    assert len(fs.find_values("SeriesInstanceUID", fs.find(StudyInstanceUID=study))) == 2
    for instance in fs:
        assert instance.load().SOPInstanceUID == instance.ReferencedSOPInstanceUIDInFile


def test_deferred_file_opens_late_and_lets_go(tmp_path: Path):
    source = tmp_path / "src"
    source.write_bytes(b"H" * 10 + b"body" * 100)
    opened = []

    def opener() -> Part10Stream:
        opened.append(1)
        return Part10Stream(b"meta", lambda: source.open("rb"), 10, 400)

    deferred = _Deferred(VolumeFile(("IM1",), 404, opener))
    assert not opened  # nothing made until pycdlib reads
    deferred.seek(0)
    data = deferred.read(404)
    assert data == b"meta" + b"body" * 100
    assert deferred._stream is None  # dropped once read
    deferred.seek(0)
    assert deferred.read(8) == b"metabody" and len(opened) == 2
    plain = _Deferred(VolumeFile(("README",), 3, lambda: io.BytesIO(b"abc")))
    assert plain.read(-1) == b"abc" and plain._stream is None
