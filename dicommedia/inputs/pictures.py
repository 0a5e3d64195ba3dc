"""Non-DICOM pictures (JPEG, PNG, TIFF, BMP, GIF) as Secondary Capture instances (seed Appendix A)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import imagecodecs
import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import set_pixel_data

from dicommedia import __version__
from dicommedia.errors import MediaError
from dicommedia.standard.identity import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, new_uid

PICTURE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"BM", b"GIF87a", b"GIF89a")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DEVICE = "dicommedia"
# PS3.3 C.8.6.1: WSD = workstation (a picture file is neither a video capture nor a digitized film).
CONVERSION_TYPE = "WSD"
DEFAULT_FRAME_TIME_MS = 100.0  # GIF frames without a delay


def _now() -> datetime:
    """The local time of the conversion run."""
    return datetime.now()


@dataclass
class ScContext:
    """Demographics and identity shared by every picture and PDF converted in one run (one study)."""

    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_description: str = ""
    accession_number: str = ""
    study_instance_uid: str = field(default_factory=new_uid)
    series_instance_uid: str = field(default_factory=new_uid)  # pictures (Modality OT)
    started: datetime = field(default_factory=_now)
    study_id: str = "1"
    series_number: int = 1
    series_description: str = "Converted pictures"
    referring_physician_name: str = ""
    institution_name: str = ""
    patient_comments: str = ""
    # A series holds one modality (PS3.3 C.7.3.1): PDFs (Modality DOC) get a series of their own.
    document_series_instance_uid: str = field(default_factory=new_uid)
    document_series_number: int = 2
    document_series_description: str = "Converted documents"

    @property
    def study_date(self) -> str:
        """Study Date (DA): the day of the conversion run."""
        return self.started.strftime("%Y%m%d")

    @property
    def study_time(self) -> str:
        """Study Time (TM): the time of the conversion run."""
        return self.started.strftime("%H%M%S")

    def check(self) -> None:
        """Refuse demographics DICOM cannot carry (PS3.5 6.2 DA; PS3.3 C.7.1.1 Patient's Sex)."""
        if self.patient_birth_date and not re.fullmatch(r"\d{8}", self.patient_birth_date):
            raise MediaError("must be YYYYMMDD", subject=f"patient birth date {self.patient_birth_date!r}")
        if self.patient_sex and self.patient_sex.upper() not in ("M", "F", "O"):
            raise MediaError("must be M, F or O", subject=f"patient sex {self.patient_sex!r}")


def base_dataset(
    ctx: ScContext,
    sop_class: str,
    instance_number: int,
    *,
    modality: str,
    series_uid: str,
    series_number: int,
    series_description: str,
) -> Dataset:
    """The attributes seed Appendix A creates for every converted object (patient, study, series, equipment)."""
    ctx.check()
    now = _now()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = new_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    ds.file_meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME

    texts = (
        ctx.patient_name,
        ctx.patient_id,
        ctx.study_description,
        ctx.accession_number,
        ctx.referring_physician_name,
        ctx.institution_name,
        ctx.patient_comments,
        series_description,
    )
    if not all(t.isascii() for t in texts):
        ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.InstanceCreationDate, ds.InstanceCreationTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.StudyDate, ds.StudyTime = ctx.study_date, ctx.study_time
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.AccessionNumber = ctx.accession_number
    ds.Modality = modality
    ds.ConversionType = CONVERSION_TYPE
    ds.Manufacturer = DEVICE
    if ctx.institution_name:
        ds.InstitutionName = ctx.institution_name
    ds.ReferringPhysicianName = ctx.referring_physician_name
    ds.StationName = DEVICE
    if ctx.study_description:
        ds.StudyDescription = ctx.study_description
    ds.SeriesDescription = series_description
    ds.ManufacturerModelName = DEVICE
    ds.PatientName = ctx.patient_name
    ds.PatientID = ctx.patient_id
    ds.PatientBirthDate = ctx.patient_birth_date
    ds.PatientSex = ctx.patient_sex.upper()
    if ctx.patient_comments:
        ds.PatientComments = ctx.patient_comments
    ds.SoftwareVersions = __version__
    ds.SecondaryCaptureDeviceID = DEVICE
    ds.SecondaryCaptureDeviceManufacturer = DEVICE
    ds.SecondaryCaptureDeviceManufacturerModelName = DEVICE
    ds.SecondaryCaptureDeviceSoftwareVersions = __version__
    ds.StudyInstanceUID = ctx.study_instance_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = ctx.study_id
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    return ds


def is_picture(path: Path | str) -> bool:
    """True when the file starts like a JPEG, PNG, TIFF, BMP or GIF picture."""
    try:
        with open(path, "rb") as fp:
            return fp.read(8).startswith(PICTURE_MAGIC)
    except OSError:
        return False


def read_picture(path: Path | str) -> tuple[np.ndarray, float | None]:
    """The picture as decoded: frames (n, rows, columns[, 3]) as uint8/uint16, and the GIF frame time in ms.

    Colour is RGB (alpha dropped, palette expanded); EXIF orientation is applied as a viewer does.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fp:
            if fp.read(8) == PNG_MAGIC:  # libpng keeps 16-bit colour, which Pillow narrows to 8 bits
                return _channels(imagecodecs.png_decode(path.read_bytes()))[np.newaxis], None
        with Image.open(path) as image:
            durations = []
            frames = []
            for page in ImageSequence.Iterator(image):
                durations.append(page.info.get("duration"))
                frames.append(_page_array(ImageOps.exif_transpose(page)))
            frame_time = _frame_time(durations) if image.format == "GIF" and len(frames) > 1 else None
    except (
        OSError,
        UnidentifiedImageError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
        imagecodecs.PngError,
    ) as exc:
        raise MediaError(f"cannot read the picture ({exc})", subject=str(path)) from None
    if len({f.shape for f in frames}) > 1:
        raise MediaError("its pages differ in size or colour; give them as separate pictures", subject=str(path))
    return np.stack(frames), frame_time


def _channels(arr: np.ndarray) -> np.ndarray:
    """Grey or RGB samples: alpha dropped (grey+alpha -> grey, RGBA -> RGB)."""
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        arr = arr[..., : arr.shape[2] - 1]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return np.ascontiguousarray(arr)


def _page_array(page: Image.Image) -> np.ndarray:
    """One Pillow page as grey (uint8/uint16) or RGB uint8 samples."""
    if page.mode in ("L", "I;16", "I;16L", "I;16B"):
        return np.asarray(page).astype(np.uint8 if page.mode == "L" else np.uint16)
    if page.mode == "1":
        return np.asarray(page.convert("L"))
    if page.mode == "I":
        arr = np.asarray(page)
        if arr.min() < 0 or arr.max() > 0xFFFF:
            raise ValueError("32-bit integer samples do not fit 16 bits")
        return arr.astype(np.uint16)
    if page.mode == "F":
        raise ValueError("floating-point samples are not a picture DICOM Secondary Capture can carry")
    if page.mode in ("LA", "La"):
        return np.asarray(page.convert("L"))
    return np.asarray(page.convert("RGB"))


def _frame_time(durations: list) -> float:
    """GIF frame delay as DICOM Frame Time (ms), the mean when frames differ."""
    known = [d for d in durations if d]
    return float(np.mean(known)) if known else DEFAULT_FRAME_TIME_MS


def picture_to_dataset(path: Path | str, ctx: ScContext, instance_number: int) -> Dataset:
    """A picture as Secondary Capture (multi-frame SC for animated or multi-page input), native pixels."""
    frames, frame_time = read_picture(path)
    count, colour = frames.shape[0], frames.ndim == 4
    sixteen = frames.dtype == np.uint16
    if count == 1:
        sop_class = uid.SecondaryCaptureImageStorage
    elif colour:
        sop_class = uid.MultiFrameTrueColorSecondaryCaptureImageStorage
        if sixteen:  # PS3.3 A.8.5.4: true colour multi-frame SC is 8 bits per sample
            frames = (frames >> 8).astype(np.uint8)
    else:
        sop_class = (
            uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage
            if sixteen
            else uid.MultiFrameGrayscaleByteSecondaryCaptureImageStorage
        )
    ds = base_dataset(
        ctx,
        sop_class,
        instance_number,
        modality="OT",
        series_uid=ctx.series_instance_uid,
        series_number=ctx.series_number,
        series_description=ctx.series_description,
    )
    ds.Laterality = ""  # Type 2C; unknown for a picture (PS3.3 C.7.3.1)
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DateOfSecondaryCapture, ds.TimeOfSecondaryCapture = ds.ContentDate, ds.ContentTime  # SC Image module
    ds.AcquisitionNumber = 1
    ds.PatientOrientation = ""
    ds.BurnedInAnnotation = "YES"  # unknown for a picture: assume text may identify the patient
    set_pixel_data(
        ds,
        frames if count > 1 else frames[0],
        "RGB" if colour else "MONOCHROME2",
        16 if frames.dtype == np.uint16 else 8,
    )
    if count > 1:
        _multi_frame(ds, colour, frame_time)
    return ds


def _multi_frame(ds: Dataset, colour: bool, frame_time: float | None) -> None:
    """Multi-frame SC attributes (PS3.3 C.8.6.3): frame increment pointer, grey value transformation."""
    if frame_time is not None:
        ds.FrameTime = frame_time
        ds.FrameIncrementPointer = 0x00181063  # Frame Time (Cine module, PS3.3 C.7.6.5)
    else:
        ds.PageNumberVector = list(range(1, int(ds.NumberOfFrames) + 1))
        ds.FrameIncrementPointer = 0x00182001  # Page Number Vector
    if not colour:
        # PS3.3 C.8.6.3.1 (grey multi-frame SC): identity Rescale and Presentation LUT
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
        ds.PresentationLUTShape = "IDENTITY"
