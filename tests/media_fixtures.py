"""Media made by other tools for the read and validate tests: DCMTK dcmmkdir + genisoimage, pydicom FileSet.

Also the ways to break them: patch an offset, rename files as a Linux mount shows them, write a File ID
that leaves the media.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.conftest import require_tool, run
from tests.synthetic import image_dataset

OFFSET_TAGS = {
    "OffsetOfTheNextDirectoryRecord": (0x0004, 0x1400),
    "OffsetOfReferencedLowerLevelDirectoryEntity": (0x0004, 0x1420),
}


def ct_slice(
    patient_id: str = "PID1",
    study_uid: str | None = None,
    series_uid: str | None = None,
    number: int = 1,
    size: int = 16,
    patient_name: str = "Doe^John",
) -> Dataset:
    """A small, valid CT Image Storage instance (Explicit VR LE, unsigned 12 bits) with every DICOMDIR Type 1 key."""
    ds = image_dataset(
        rows=size,
        cols=size,
        patient_name=patient_name,
        patient_id=patient_id,
        study_uid=study_uid,
        series_uid=series_uid,
        instance_number=number,
    )
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240102", "101500", "1", "ACC1"
    ds.StudyDescription, ds.SeriesDescription, ds.PatientSex = "CT HEAD", "AXIAL", "O"
    ds.PixelData = (np.arange(size * size, dtype=np.uint16) % 4096).tobytes()
    return ds


def write_ct_study(folder: Path, count: int = 3, patient_id: str = "PID1", size: int = 16) -> list[Path]:
    """Write one CT series of ``count`` slices as DICOM/P.../S.../SE.../IM... Part 10 files."""
    study, series = generate_uid(), generate_uid()
    target = folder / "DICOM" / patient_id[:8].upper() / "ST1" / "SE1"
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = target / f"IM{i + 1}"
        ct_slice(patient_id, study, series, i + 1, size).save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def dcmmkdir(folder: Path, fileset_id: str = "TESTSET", *extra: str) -> Path:
    """Write folder/DICOMDIR over folder/DICOM with DCMTK (inventing missing Type 1 keys)."""
    tool = require_tool("dcmmkdir")
    result = run([tool, "+r", "+I", "-Nxc", "+F", fileset_id, *extra, "+D", "DICOMDIR", "DICOM"], cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "DICOMDIR"


def genisoimage(folder: Path, iso: Path, volume_id: str) -> Path:
    """Master a folder into a plain ISO 9660 level 1 image with genisoimage (``NAME.;1`` names)."""
    tool = require_tool("genisoimage")
    result = run([tool, "-quiet", "-V", volume_id, "-o", str(iso), str(folder)])
    assert result.returncode == 0, result.stderr
    return iso


def dcmtk_disc(tmp: Path, count: int = 3, fileset_id: str = "TESTSET") -> Path:
    """A folder holding a DCMTK-made file-set (one CT series) with a README.TXT."""
    folder = tmp / "disc"
    write_ct_study(folder, count)
    dcmmkdir(folder, fileset_id)
    (folder / "README.TXT").write_text("Test disc\n")
    (folder / "INDEX.HTM").write_text("<html><body>Test disc</body></html>\n")
    return folder


def mount_as(src: Path, dst: Path, style: str) -> Path:
    """Copy a file-set the way a Linux mount may show it: ``lower``, ``dot`` (``IM1.``), ``version`` (``IM1;1``)."""
    rename = {
        "lower": str.lower,
        "dot": lambda n: n + "." if "." not in n else n,
        "lower-dot": lambda n: n.lower() + "." if "." not in n else n.lower(),
        "version": lambda n: (n if "." in n else n + ".") + ";1",
    }[style]
    dst.mkdir(parents=True)
    for path in src.iterdir():
        if path.is_dir():
            mount_as(path, dst / (path.name.lower() if "lower" in style else path.name), style)
        else:
            shutil.copy2(path, dst / rename(path.name))
    return dst


def record_offsets(dicomdir: Path) -> list[tuple[str, int]]:
    """(record type, file offset) of every directory record, in sequence order."""
    ds = dcmread(dicomdir)
    return [(item.DirectoryRecordType, item.seq_item_tell) for item in ds.DirectoryRecordSequence]


def patch_record(dicomdir: Path, index: int, keyword: str, value: int) -> None:
    """Overwrite one offset element of the record at ``index`` (Explicit VR LE, in place)."""
    data = bytearray(dicomdir.read_bytes())
    start = record_offsets(dicomdir)[index][1]
    group, element = OFFSET_TAGS[keyword]
    pattern = struct.pack("<HH", group, element) + b"UL" + struct.pack("<H", 4)
    at = data.index(pattern, start)
    data[at + 8 : at + 12] = struct.pack("<I", value)
    dicomdir.write_bytes(bytes(data))


def rewrite_dicomdir(dicomdir: Path, edit) -> None:
    """Apply ``edit(records)`` to the records' data sets and write the DICOMDIR back at the same length.

    Only for edits that keep every record's encoded length (so the offsets stay right): same-length values.
    """
    ds = dcmread(dicomdir)
    edit(list(ds.DirectoryRecordSequence))
    before = dicomdir.stat().st_size
    ds.save_as(dicomdir, enforce_file_format=True)
    assert dicomdir.stat().st_size == before, "edit changed the DICOMDIR length"


def pydicom_fileset(folder: Path, datasets: list[Dataset], fileset_id: str = "PYFS") -> Path:
    """Write a file-set with pydicom's FileSet (instances re-encoded Explicit VR LE, as STD-GEN wants)."""
    from pydicom.fileset import FileSet

    fs = FileSet()
    for ds in datasets:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        fs.add(ds)
    fs.ID = fileset_id
    fs.write(folder)
    (folder / "README.TXT").write_text("pydicom file-set\n")
    (folder / "INDEX.HTM").write_text("<html></html>\n")
    return folder
