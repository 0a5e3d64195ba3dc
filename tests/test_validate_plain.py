"""validate reads a sound DICOMDIR with the compact plain reader: the same findings as through pydicom's reader."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from dicommedia.media import open_media
from dicommedia.profile import load_profile
from dicommedia.validate import validate_media
from dicommedia.validate.directory import check_header, check_records
from dicommedia.validate.references import check_file_ids
from tests.conftest import run
from tests.media_fixtures import dcmtk_disc, rewrite_dicomdir

REPO = Path(__file__).resolve().parent.parent
PYDICOM_DIRTESTS = Path(get_testdata_file("DICOMDIR")).parent
STD = load_profile("STD-GEN-CD")


def _blank(keyword: str, record_type: str):
    """An edit that blanks a key of the first record of a type (spaces: same length, so the offsets hold)."""

    def edit(records):
        record = next(r for r in records if r.DirectoryRecordType == record_type)
        record[keyword].value = " " * len(str(record[keyword].value))

    return edit


def _in_use_ffff(records):
    records[0].RecordInUseFlag = 0xFFFF  # in use, spelled otherwise


def _deactivate_image(records):
    next(r for r in records if r.DirectoryRecordType == "IMAGE").RecordInUseFlag = 0


EDITS = {
    "sound": None,
    "empty-study-date": _blank("StudyDate", "STUDY"),
    "empty-instance-number": _blank("InstanceNumber", "IMAGE"),
    "empty-modality": _blank("Modality", "SERIES"),
    "empty-patient-id": _blank("PatientID", "PATIENT"),
    "in-use-ffff": _in_use_ffff,
    "inactive-image": _deactivate_image,
}


def _directory_findings(view) -> list[tuple[str, str, str | None]]:
    findings = check_header(view.directory, "DICOMDIR") + check_records(view.directory, "DICOMDIR")
    findings += check_file_ids(view)
    return [(f.code, f.message.replace(" at offset None", ""), f.file_id) for f in findings]


@pytest.mark.parametrize("edit", list(EDITS))
def test_plain_and_pydicom_readers_find_the_same(tmp_path: Path, edit: str):
    disc = dcmtk_disc(tmp_path, count=3)
    if EDITS[edit]:
        rewrite_dicomdir(disc / "DICOMDIR", EDITS[edit])
    full, quick = open_media(disc, dicomdir_only=True), open_media(disc, plain=True, dicomdir_only=True)
    assert type(quick.directory).__name__ == "PlainDirectory"
    assert _directory_findings(quick) == _directory_findings(full)
    if edit.startswith("empty"):
        assert any(code == "missing-key" for code, _, _ in _directory_findings(quick))
    report = validate_media(disc, STD)
    assert report.valid == (edit in ("sound", "in-use-ffff"))  # an inactive record leaves its file unreferenced


def test_national_names_take_the_plain_reader_and_validate_alike(tmp_path: Path):
    iso = tmp_path / "small.iso"
    done = run([sys.executable, "-m", "dicommedia", "create", str(REPO / "samples"), "-o", str(iso)], cwd=REPO)
    assert done.returncode == 0, done.stderr
    full, quick = open_media(iso, dicomdir_only=True), open_media(iso, plain=True, dicomdir_only=True)
    assert type(quick.directory).__name__ == "PlainDirectory"
    assert _directory_findings(quick) == _directory_findings(full)
    assert validate_media(iso, None).valid


@pytest.mark.parametrize("name", ["DICOMDIR", "DICOMDIR-reordered", "DICOMDIR-nooffset", "TINY_ALPHA/DICOMDIR"])
def test_pydicom_bundled_dicomdirs_alike(name: str):
    path = PYDICOM_DIRTESTS / name
    full, quick = open_media(path, dicomdir_only=True), open_media(path, plain=True, dicomdir_only=True)
    assert _directory_findings(quick) == _directory_findings(full)
