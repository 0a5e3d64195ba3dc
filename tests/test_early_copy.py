"""Unchanged instances are copied into the image while the inputs are read (writers/early_copy.py).

Judged by isoinfo (every file of the image equals the same file-set written as a folder), by the image's own
bytes (no stale copy of a changed or duplicate instance), and by what a failing copy reports.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from dicommedia.create import CreateOptions, create_fileset
from dicommedia.errors import MediaError
from dicommedia.profile import load_profile
from dicommedia.progress import Progress
from dicommedia.writers.web.content import PdiRequest
from tests.conftest import run
from tests.synthetic import write_series

SECTOR = 2048


def _create(*args: str) -> subprocess.CompletedProcess:
    proc = run([sys.executable, "-m", "dicommedia", "create", *args, "--web", "none"])
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc


def _iso_files(isoinfo: str, image: Path) -> dict[str, bytes]:
    """Every file of the image by path (no version suffix), read by isoinfo."""
    listing = subprocess.run([isoinfo, "-f", "-i", str(image)], capture_output=True, text=True, check=True).stdout
    out = {}
    for name in listing.split():
        if ";" not in name:
            continue  # a directory
        data = subprocess.run([isoinfo, "-i", str(image), "-x", name], capture_output=True, check=True).stdout
        out[name.split(";")[0].rstrip(".").lstrip("/")] = data
    return out


def test_early_copies_equal_the_same_file_set_written_as_a_folder(tmp_path, tool):
    inputs = tmp_path / "in"
    write_series(inputs / "a", 40, rows=96, cols=96)
    write_series(inputs / "b", 7, rows=32, cols=32)
    image, folder = tmp_path / "x.iso", tmp_path / "x"
    _create(str(inputs), "-o", str(image), "--fileset-id", "EARLY")
    _create(str(inputs), "-o", str(folder), "--fileset-id", "EARLY", "--format", "dir")
    on_disc = _iso_files(tool("isoinfo"), image)
    written = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert set(on_disc) == set(written) and sum(n.startswith("DICOM/") for n in written) == 47
    for name, data in written.items():
        if name != "DICOMDIR":  # the DICOMDIR's offsets are its own; its records are compared below
            assert on_disc[name] == data, name
    with open(image, "rb") as fp:  # data first: the first instance starts right after the descriptors
        fp.seek(18 * SECTOR + 128)
        assert fp.read(4) == b"DICM"
    records = pydicom.dcmread(pydicom.filebase.DicomBytesIO(on_disc["DICOMDIR"])).DirectoryRecordSequence
    assert sum(r.DirectoryRecordType == "IMAGE" for r in records) == 47


def _count(image: Path, needle: bytes) -> int:
    return image.read_bytes().count(needle)


def test_a_copied_instance_that_planning_changes_leaves_no_stale_copy(tmp_path, tool):
    """The study's first instance has no Study ID: the study gets one, so the others (copied early, with their
    own Study ID "1") change too. The image is written afresh: only the changed bytes are on it."""
    paths = write_series(tmp_path / "in", 3)
    first = pydicom.dcmread(paths[0])
    del first.StudyID
    first.save_as(paths[0])
    second = pydicom.dcmread(paths[1])
    image = tmp_path / "x.iso"
    _create(str(tmp_path / "in"), "-o", str(image))
    files = _iso_files(tool("isoinfo"), image)
    written = [pydicom.dcmread(pydicom.filebase.DicomBytesIO(d)) for n, d in files.items() if n.startswith("DICOM/")]
    assert {ds.StudyID for ds in written} == {"ACC001"}  # invented from the accession number, in every file
    uid = second.SOPInstanceUID.encode()
    assert _count(image, uid) == sum(d.count(uid) for d in files.values()) > 0  # in its files, nowhere else


def test_an_input_given_twice_is_written_once(tmp_path, tool):
    write_series(tmp_path / "in", 5)
    (tmp_path / "copy.dcm").write_bytes((tmp_path / "in" / "slice00003.dcm").read_bytes())
    image = tmp_path / "x.iso"
    proc = _create(str(tmp_path / "in"), str(tmp_path / "copy.dcm"), "-o", str(image))
    assert "1 duplicate(s) written once" in proc.stdout + proc.stderr
    uid = pydicom.dcmread(tmp_path / "in" / "slice00003.dcm").SOPInstanceUID.encode()
    assert _count(image, uid) == sum(d.count(uid) for d in _iso_files(tool("isoinfo"), image).values()) > 0


class _ShrinkFirst(Progress):
    """Cuts the first input short once the second is being read: after its header, before its copy."""

    def __init__(self, victim: Path):
        self.victim, self.steps = victim, 0

    def advance(self, steps: int = 1) -> None:
        self.steps += steps
        if self.steps == 2:
            with open(self.victim, "r+b") as fp:
                fp.truncate(1000)


def test_an_input_that_shrinks_before_its_copy_is_named_and_nothing_is_left(tmp_path):
    paths = write_series(tmp_path / "in", 40)
    out = tmp_path / "out"
    out.mkdir()
    options = CreateOptions(
        inputs=[str(tmp_path / "in")],
        output=out / "x.iso",
        profile=load_profile("STD-GEN-CD"),
        fileset_id="SHRINK",
        pdi=PdiRequest(web="none"),
    )
    with pytest.raises(MediaError) as failed:
        create_fileset(options, _ShrinkFirst(paths[0]))
    assert "shrank" in failed.value.message and failed.value.subject == str(paths[0])
    assert list(out.iterdir()) == []


def test_nothing_is_copied_past_the_media_capacity(tmp_path):
    from dicommedia.inputs.dicom_file import file_source, read_header
    from dicommedia.writers.early_copy import EarlyCopy

    headers = [read_header(file_source(p)) for p in write_series(tmp_path / "in", 4, rows=64, cols=64)]
    with open(tmp_path / "image", "wb") as image:
        early = EarlyCopy(image.fileno(), limit=18 * SECTOR + 2 * 5 * SECTOR)  # room for two 9 KB instances
        try:
            for header in headers:
                early.offer(header)
            early.finish()
        finally:
            early.close()
    assert [h.image_sector for h in headers] == [18, 23, 0, 0]
    assert (tmp_path / "image").read_bytes()[23 * SECTOR + 128 : 23 * SECTOR + 132] == b"DICM"


def test_an_instance_said_to_need_no_repair_is_not_changed_by_planning(pydicom_files):
    """The early copy's predicate against planning itself, over files many tools wrote."""
    from dicommedia.inputs.dicom_file import file_source, read_header
    from dicommedia.plan.hierarchy import PlannedInstance, build_plan, needs_no_repair

    verdicts = []
    for path in sorted(pydicom_files.values()):
        try:
            header = read_header(file_source(path))
        except MediaError:
            continue
        plan = build_plan([PlannedInstance(header=header, record_type="")])
        changed = bool(plan.refused) or any(
            plan.coercions_for(patient, study, series, inst)
            for patient in plan.patients.values()
            for study in patient.studies.values()
            for series in study.series.values()
            for inst in series.instances
        )
        verdicts.append(needs_no_repair(header))
        assert not (verdicts[-1] and changed), path.name
    assert 0 < sum(verdicts) < len(verdicts)  # both kinds among them
