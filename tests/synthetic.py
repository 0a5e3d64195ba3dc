"""Synthetic DICOM inputs made with pydicom: CT/MR series of any size, in any encoding, for tests and benches."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def image_dataset(
    sop_class: str = CTImageStorage,
    rows: int = 64,
    cols: int = 64,
    patient_name: str = "DOE^JANE",
    patient_id: str = "PAT001",
    study_uid: str | None = None,
    series_uid: str | None = None,
    instance_number: int = 1,
    charset: str | None = None,
    seed: int = 0,
) -> Dataset:
    """A valid single-frame CT/MR image with signed 16-bit noise pixels and every Type 1 key set."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if charset:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240115"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101500"
    ds.AccessionNumber = "ACC001"
    ds.Modality = "CT" if sop_class == CTImageStorage else "MR"
    ds.Manufacturer = "dicommedia tests"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Synthetic study"
    ds.SeriesDescription = "Synthetic series"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number
    ds.Laterality = ""
    ds.PatientPosition = "HFS"
    ds.FrameOfReferenceUID = generate_uid()
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = [0, 0, float(instance_number)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.5]
    ds.SliceThickness = 1.0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1
    if sop_class == CTImageStorage:
        ds.KVP = 120
        ds.AcquisitionNumber = 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
    else:
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "SE", "NONE", ""
        ds.MRAcquisitionType, ds.EchoTime, ds.RepetitionTime = "2D", 10, 500
        ds.EchoTrainLength = 1
    rng = np.random.default_rng(seed + instance_number)
    ds.PixelData = rng.integers(-1000, 3000, size=(rows, cols), dtype=np.int16).tobytes()
    return ds


def write_series(folder: Path, count: int, rows: int = 64, cols: int = 64, **kwargs) -> list[Path]:
    """Write one series of ``count`` slices as Part 10 Explicit VR LE files; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = kwargs.pop("study_uid", None) or generate_uid()
    series_uid = kwargs.pop("series_uid", None) or generate_uid()
    paths = []
    for n in range(1, count + 1):
        ds = image_dataset(
            rows=rows, cols=cols, study_uid=study_uid, series_uid=series_uid, instance_number=n, **kwargs
        )
        path = folder / f"slice{n:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def today() -> str:
    """Today as DA."""
    return _dt.date.today().strftime("%Y%m%d")
