"""``--new-uids``: every Study/Series/SOP Instance UID of the set replaced, the same way in every instance, so a
presentation state still points at its images; the old UIDs recorded; a second run gives other UIDs."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.network_fixtures import orthanc_web, storescp  # noqa: F401  (fixtures)
from tests.synthetic import write_series
from tests.test_reconcile import dicommedia

GSPS = "1.2.840.10008.5.1.4.1.1.11.1"


def presentation_state(images: list[Dataset]) -> Dataset:
    """A Grayscale Softcopy Presentation State referencing ``images`` (one series) in a new series of their study."""
    first = images[0]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = GSPS, generate_uid()
    ds.Modality = "PR"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = first.StudyInstanceUID, generate_uid()
    ds.PatientID, ds.PatientName = first.PatientID, first.PatientName
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber = first.StudyDate, first.StudyTime, first.AccessionNumber
    ds.SeriesNumber, ds.InstanceNumber = 99, 1
    ds.ContentLabel, ds.PresentationCreationDate, ds.PresentationCreationTime = "PS", "20240115", "101500"
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.ReferencedImageSequence = Sequence()
    for image in images:
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = image.SOPClassUID, image.SOPInstanceUID
        series.ReferencedImageSequence.append(ref)
    ds.ReferencedSeriesSequence = Sequence([series])
    ds.FrameOfReferenceUID = first.get("FrameOfReferenceUID", generate_uid())
    return ds


@pytest.fixture
def outside(tmp_path: Path) -> dict[str, Dataset]:
    """A CT series and a presentation state referencing every slice: SOP Instance UID -> data set."""
    folder = tmp_path / "in"
    images = [dcmread(p) for p in write_series(folder / "ct", 4, rows=16, cols=16)]
    ps = presentation_state(images)
    ps.save_as(folder / "ps.dcm", enforce_file_format=True)
    return {ds.SOPInstanceUID: ds for ds in [*images, ps]}


@pytest.fixture
def disc(tmp_path: Path, outside: dict[str, Dataset]) -> Path:
    """The outside set burnt by dicommedia create."""
    iso = tmp_path / "disc.iso"
    made = dicommedia("create", str(tmp_path / "in"), "-o", str(iso))
    assert made.returncode == 0, made.stderr
    return iso


def extract_new(disc: Path, dest: Path) -> tuple[dict[str, Dataset], dict]:
    result = dicommedia("read", str(disc), "--extract", str(dest), "--new-uids", "--json")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((dest / "MANIFEST.json").read_text())
    return {e["original_sop_instance_uid"]: dcmread(dest / e["path"]) for e in manifest["files"]}, manifest


def assert_renumbered(got: dict[str, Dataset], outside: dict[str, Dataset]) -> None:
    """Every UID of the set new, old ones recorded, references resolving to the new UIDs, the rest unchanged."""
    old = {uid for ds in outside.values() for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)}
    assert set(got) == set(outside)
    for old_uid, ds in got.items():
        was = outside[old_uid]
        assert ds.SOPInstanceUID != old_uid and ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert not {ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID} & old
        assert ds.FrameOfReferenceUID == was.FrameOfReferenceUID  # not a study UID: unchanged
        assert ds.get("PixelData") == was.get("PixelData")
        original = ds.OriginalAttributesSequence[-1]
        assert original.ReasonForTheAttributeModification == "COERCE"
        recorded = original.ModifiedAttributesSequence[0]
        assert (recorded.StudyInstanceUID, recorded.SeriesInstanceUID, recorded.SOPInstanceUID) == (
            was.StudyInstanceUID,
            was.SeriesInstanceUID,
            old_uid,
        )
    ps = next(ds for ds in got.values() if ds.Modality == "PR")
    images = {ds.SOPInstanceUID: ds for ds in got.values() if ds.Modality == "CT"}
    assert len({ds.StudyInstanceUID for ds in got.values()}) == 1  # one study, one new Study UID
    referenced = ps.ReferencedSeriesSequence[0]
    assert {ds.SeriesInstanceUID for ds in images.values()} == {referenced.SeriesInstanceUID}
    assert {r.ReferencedSOPInstanceUID for r in referenced.ReferencedImageSequence} == set(images)


def received(folder: Path) -> dict[str, Dataset]:
    """Old SOP Instance UID -> data set, of what storescp wrote."""
    got = [dcmread(p) for p in folder.iterdir() if p.is_file()]
    return {ds.OriginalAttributesSequence[-1].ModifiedAttributesSequence[0].SOPInstanceUID: ds for ds in got}


def test_send_with_new_uids_into_storescp(disc: Path, outside: dict[str, Dataset], storescp):
    scp = storescp()
    result = dicommedia("read", str(disc), "--send", scp.address, "--new-uids", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 5
    first = received(scp.folder)
    assert_renumbered(first, outside)

    again = storescp()
    assert dicommedia("read", str(disc), "--send", again.address, "--new-uids").returncode == 0
    second = received(again.folder)
    assert {ds.SOPInstanceUID for ds in second.values()}.isdisjoint(ds.SOPInstanceUID for ds in first.values())


def test_extract_with_new_uids_keeps_references(tmp_path: Path, disc: Path, outside: dict[str, Dataset]):
    first, manifest = extract_new(disc, tmp_path / "one")
    assert_renumbered(first, outside)
    assert set(first) == set(outside)
    entry = {e["original_sop_instance_uid"]: e for e in manifest["files"]}
    assert all(entry[u]["sop_instance_uid"] == ds.SOPInstanceUID for u, ds in first.items())

    second, _ = extract_new(disc, tmp_path / "two")
    assert {ds.SOPInstanceUID for ds in second.values()}.isdisjoint(ds.SOPInstanceUID for ds in first.values())
    assert {ds.StudyInstanceUID for ds in second.values()} != {ds.StudyInstanceUID for ds in first.values()}


def test_stow_with_new_uids_into_orthanc(disc: Path, outside: dict[str, Dataset], orthanc_web):
    orthanc_web.clear()
    result = dicommedia("read", str(disc), "--stow", orthanc_web.web_url, "--new-uids", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["sent"] == 5 and report["failed"] == []  # Orthanc's response names the new UIDs
    got = [dcmread(BytesIO(blob)) for blob in orthanc_web.instances().values()]
    assert_renumbered(
        {ds.OriginalAttributesSequence[-1].ModifiedAttributesSequence[0].SOPInstanceUID: ds for ds in got}, outside
    )


def test_new_uids_with_skip_existing_is_a_usage_error(disc: Path):
    result = dicommedia("read", str(disc), "--send", "A@127.0.0.1:1", "--new-uids", "--skip-existing")
    assert result.returncode == 2 and "cannot be combined" in result.stderr
