"""Directory record types and their keys: PS3.3 Annex F (F.4, F.5) plus the seed's Appendix D keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dicommedia.standard.uids import uid_name

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


@dataclass(frozen=True)
class Key:
    """One key of a directory record: its keyword and its type in PS3.3 F.5 ("1", "1C", "2", "3")."""

    keyword: str
    type: str


def _keys(spec: str) -> tuple[Key, ...]:
    """Parse ``"Keyword:1 Other:2"`` into keys."""
    return tuple(Key(*item.split(":")) for item in spec.split())


_CONTENT_ID = "ContentDate:1 ContentTime:1 InstanceNumber:1 ContentLabel:1 ContentDescription:2 ContentCreatorName:2"

# Keys per record type. Types from PS3.3 F.5; the extra Type 3 keys are the seed's Appendix D
# (Patient's Birth Date/Sex, Referring/Reading physicians, Series Description, Image Type,
# SOP Instance UID on leaves). Specific Character Set (1C) is handled by the record builder.
RECORD_KEYS: dict[str, tuple[Key, ...]] = {
    "PATIENT": _keys("PatientName:2 PatientID:1 PatientBirthDate:3 PatientSex:3"),
    "STUDY": _keys(
        "StudyDate:1 StudyTime:1 AccessionNumber:2 ReferringPhysicianName:3 StudyDescription:2 "
        "NameOfPhysiciansReadingStudy:3 StudyInstanceUID:1C StudyID:1"
    ),
    "SERIES": _keys("Modality:1 SeriesDescription:3 SeriesInstanceUID:1 SeriesNumber:1"),
    "IMAGE": _keys("ImageType:3 InstanceNumber:1 ReferencedImageSequence:3"),
    "RT DOSE": _keys("InstanceNumber:1 DoseSummationType:1 DoseComment:3"),
    "RT STRUCTURE SET": _keys("InstanceNumber:1 StructureSetLabel:1 StructureSetDate:2 StructureSetTime:2"),
    "RT PLAN": _keys("InstanceNumber:1 RTPlanLabel:1 RTPlanDate:2 RTPlanTime:2"),
    "RT TREAT RECORD": _keys("InstanceNumber:1 TreatmentDate:2 TreatmentTime:2"),
    "PRESENTATION": _keys(
        "PresentationCreationDate:1 PresentationCreationTime:1 InstanceNumber:1 ContentLabel:1 "
        "ContentDescription:2 ContentCreatorName:2 ReferencedSeriesSequence:1C BlendingSequence:1C"
    ),
    "WAVEFORM": _keys("InstanceNumber:1 ContentDate:1 ContentTime:1"),
    "SR DOCUMENT": _keys(
        "InstanceNumber:1 CompletionFlag:1 VerificationFlag:1 ContentDate:1 ContentTime:1 "
        "VerificationDateTime:1C ConceptNameCodeSequence:1"
    ),
    "KEY OBJECT DOC": _keys("InstanceNumber:1 ContentDate:1 ContentTime:1 ConceptNameCodeSequence:1"),
    "SPECTROSCOPY": _keys(
        "ImageType:1 ContentDate:1 ContentTime:1 InstanceNumber:1 ReferencedImageEvidenceSequence:1C "
        "NumberOfFrames:1 Rows:1 Columns:1 DataPointRows:1 DataPointColumns:1"
    ),
    "RAW DATA": _keys("InstanceNumber:1 ContentDate:1 ContentTime:1"),
    "REGISTRATION": _keys(_CONTENT_ID),
    "FIDUCIAL": _keys(_CONTENT_ID),
    "VALUE MAP": _keys(_CONTENT_ID),
    "MEASUREMENT": _keys(_CONTENT_ID),
    "SURFACE": _keys(_CONTENT_ID),
    "TRACT": _keys(_CONTENT_ID),
    "ENCAP DOC": _keys(
        "ContentDate:2 ContentTime:2 InstanceNumber:1 DocumentTitle:2 HL7InstanceIdentifier:1C "
        "ConceptNameCodeSequence:2 MIMETypeOfEncapsulatedDocument:1"
    ),
    "STEREOMETRIC": (),
    "PLAN": _keys("InstanceNumber:1"),
    "SURFACE SCAN": _keys("ContentDate:1 ContentTime:1"),
    "ASSESSMENT": _keys("InstanceNumber:1 InstanceCreationDate:1 InstanceCreationTime:2"),
    "RADIOTHERAPY": _keys(
        "InstanceNumber:1 UserContentLabel:1C UserContentLongLabel:1C ContentDescription:2 ContentCreatorName:2"
    ),
}

# Keys every leaf record carries (PS3.3 F.3.2.2; SOP Instance UID is the seed's extra key).
LEAF_REFERENCE_KEYS = _keys(
    "ReferencedFileID:1C ReferencedSOPClassUIDInFile:1C ReferencedSOPInstanceUIDInFile:1C "
    "ReferencedTransferSyntaxUIDInFile:1C"
)

# PS3.3 F.4 Table F.4-1: leaf record type by SOP class; image storage classes default to IMAGE.
_LEAF_BY_SOP_CLASS: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.90.1": "ASSESSMENT",  # Content Assessment Results Storage
    "1.2.840.10008.5.1.4.1.1.104.1": "ENCAP DOC",  # Encapsulated PDF Storage
    "1.2.840.10008.5.1.4.1.1.104.2": "ENCAP DOC",  # Encapsulated CDA Storage
    "1.2.840.10008.5.1.4.1.1.104.3": "ENCAP DOC",  # Encapsulated STL Storage
    "1.2.840.10008.5.1.4.1.1.104.4": "ENCAP DOC",  # Encapsulated OBJ Storage
    "1.2.840.10008.5.1.4.1.1.104.5": "ENCAP DOC",  # Encapsulated MTL Storage
    "1.2.840.10008.5.1.4.1.1.66.2": "FIDUCIAL",  # Spatial Fiducials Storage
    "1.2.840.10008.5.1.4.1.1.88.59": "KEY OBJECT DOC",  # Key Object Selection Document Storage
    "1.2.840.10008.5.1.4.1.1.78.1": "MEASUREMENT",  # Lensometry Measurements Storage
    "1.2.840.10008.5.1.4.1.1.78.2": "MEASUREMENT",  # Autorefraction Measurements Storage
    "1.2.840.10008.5.1.4.1.1.78.3": "MEASUREMENT",  # Keratometry Measurements Storage
    "1.2.840.10008.5.1.4.1.1.78.4": "MEASUREMENT",  # Subjective Refraction Measurements Storage
    "1.2.840.10008.5.1.4.1.1.78.5": "MEASUREMENT",  # Visual Acuity Measurements Storage
    "1.2.840.10008.5.1.4.1.1.78.7": "MEASUREMENT",  # Ophthalmic Axial Measurements Storage
    "1.2.840.10008.5.1.4.1.1.80.1": "MEASUREMENT",  # Ophthalmic Visual Field Static Perimetry Measurements Storage
    "1.2.840.10008.5.1.4.1.1.11.1": "PRESENTATION",  # Grayscale Softcopy Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.11.2": "PRESENTATION",  # Color Softcopy Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.11.3": "PRESENTATION",  # Pseudo-Color Softcopy Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.11.4": "PRESENTATION",  # Blending Softcopy Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.11.5": "PRESENTATION",  # XA/XRF Grayscale Softcopy Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.131": "PRESENTATION",  # Basic Structured Display Storage
    "1.2.840.10008.5.1.4.1.1.66": "RAW DATA",  # Raw Data Storage
    "1.2.840.10008.5.1.4.1.1.66.1": "REGISTRATION",  # Spatial Registration Storage
    "1.2.840.10008.5.1.4.1.1.66.3": "REGISTRATION",  # Deformable Spatial Registration Storage
    "1.2.840.10008.5.1.4.1.1.481.2": "RT DOSE",  # RT Dose Storage
    "1.2.840.10008.5.1.4.1.1.481.5": "RT PLAN",  # RT Plan Storage
    "1.2.840.10008.5.1.4.1.1.481.8": "RT PLAN",  # RT Ion Plan Storage
    "1.2.840.10008.5.1.4.1.1.481.3": "RT STRUCTURE SET",  # RT Structure Set Storage
    "1.2.840.10008.5.1.4.1.1.481.4": "RT TREAT RECORD",  # RT Beams Treatment Record Storage
    "1.2.840.10008.5.1.4.1.1.481.6": "RT TREAT RECORD",  # RT Brachy Treatment Record Storage
    "1.2.840.10008.5.1.4.1.1.481.7": "RT TREAT RECORD",  # RT Treatment Summary Record Storage
    "1.2.840.10008.5.1.4.1.1.481.9": "RT TREAT RECORD",  # RT Ion Beams Treatment Record Storage
    "1.2.840.10008.5.1.4.1.1.4.2": "SPECTROSCOPY",  # MR Spectroscopy Storage
    "1.2.840.10008.5.1.4.1.1.77.1.5.3": "STEREOMETRIC",  # Stereometric Relationship Storage
    "1.2.840.10008.5.1.4.1.1.66.5": "SURFACE",  # Surface Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.68.1": "SURFACE SCAN",  # Surface Scan Mesh Storage
    "1.2.840.10008.5.1.4.1.1.68.2": "SURFACE SCAN",  # Surface Scan Point Cloud Storage
    "1.2.840.10008.5.1.4.1.1.66.6": "TRACT",  # Tractography Results Storage
    "1.2.840.10008.5.1.4.1.1.67": "VALUE MAP",  # Real World Value Mapping Storage
    "1.2.840.10008.5.1.4.1.1.9.1.1": "WAVEFORM",  # 12-lead ECG Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.1.2": "WAVEFORM",  # General ECG Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.1.3": "WAVEFORM",  # Ambulatory ECG Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.2.1": "WAVEFORM",  # Hemodynamic Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.3.1": "WAVEFORM",  # Cardiac Electrophysiology Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.4.1": "WAVEFORM",  # Basic Voice Audio Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.4.2": "WAVEFORM",  # General Audio Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.5.1": "WAVEFORM",  # Arterial Pulse Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.6.1": "WAVEFORM",  # Respiratory Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.6.2": "WAVEFORM",  # Multi-channel Respiratory Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.7.1": "WAVEFORM",  # Routine Scalp Electroencephalogram Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.7.2": "WAVEFORM",  # Electromyogram Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.7.3": "WAVEFORM",  # Electrooculogram Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.7.4": "WAVEFORM",  # Sleep Electroencephalogram Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.8.1": "WAVEFORM",  # Body Position Waveform Storage
}


def leaf_record_type(sop_class_uid: str, modality: str | None = None) -> str:
    """The leaf Directory Record Type (0004,1430) for an instance (PS3.3 F.4, Table F.4-1)."""
    if modality in ("RTINTENT", "RTSEGANN", "RTRAD"):
        return "RADIOTHERAPY"
    if modality == "PLAN":
        return "PLAN"
    sop_class = str(sop_class_uid)
    if sop_class in _LEAF_BY_SOP_CLASS:
        return _LEAF_BY_SOP_CLASS[sop_class]
    name = uid_name(sop_class)
    if "SR Storage" in name or name.endswith("Report Storage"):
        return "SR DOCUMENT"
    return "IMAGE"


def record_type_keys(record_type: str) -> tuple[Key, ...]:
    """The keys of a record type (empty for an unknown type)."""
    return RECORD_KEYS.get(record_type, ())


def type1_keys(record_type: str) -> list[str]:
    """Keywords of the Type 1 keys of a record type: present and never empty."""
    return [key.keyword for key in record_type_keys(record_type) if key.type == "1"]


def concept_modifiers(ds: Dataset) -> list[Dataset]:
    """Root Content Sequence items that modify the document title (PS3.3 F.5.19.1, F.5.20.1)."""
    return [item for item in ds.get("ContentSequence", []) if item.get("RelationshipType") == "HAS CONCEPT MOD"]
