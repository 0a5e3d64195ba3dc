"""Directory record types and their keys: PS3.3 Annex F (F.4, F.5) plus the seed's Appendix D keys."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom import uid as U
from pydicom.dataset import Dataset
from pydicom.uid import UID


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
_LEAF_BY_SOP_CLASS: dict[str, str] = {}


def _register(record_type: str, *sop_classes: str) -> None:
    for sop_class in sop_classes:
        _LEAF_BY_SOP_CLASS[sop_class] = record_type


_register("RT DOSE", U.RTDoseStorage)
_register("RT STRUCTURE SET", U.RTStructureSetStorage)
_register("RT PLAN", U.RTPlanStorage, U.RTIonPlanStorage)
_register(
    "RT TREAT RECORD",
    U.RTBeamsTreatmentRecordStorage,
    U.RTBrachyTreatmentRecordStorage,
    U.RTTreatmentSummaryRecordStorage,
    U.RTIonBeamsTreatmentRecordStorage,
)
_register(
    "PRESENTATION",
    U.GrayscaleSoftcopyPresentationStateStorage,
    U.ColorSoftcopyPresentationStateStorage,
    U.PseudoColorSoftcopyPresentationStateStorage,
    U.BlendingSoftcopyPresentationStateStorage,
    U.XAXRFGrayscaleSoftcopyPresentationStateStorage,
    U.BasicStructuredDisplayStorage,
)
_register(
    "WAVEFORM",
    U.BasicVoiceAudioWaveformStorage,
    U.TwelveLeadECGWaveformStorage,
    U.GeneralECGWaveformStorage,
    U.AmbulatoryECGWaveformStorage,
    U.HemodynamicWaveformStorage,
    U.CardiacElectrophysiologyWaveformStorage,
    U.ArterialPulseWaveformStorage,
    U.RespiratoryWaveformStorage,
    U.GeneralAudioWaveformStorage,
    U.RoutineScalpElectroencephalogramWaveformStorage,
    U.ElectromyogramWaveformStorage,
    U.ElectrooculogramWaveformStorage,
    U.SleepElectroencephalogramWaveformStorage,
    U.MultichannelRespiratoryWaveformStorage,
    U.BodyPositionWaveformStorage,
)
_register("KEY OBJECT DOC", U.KeyObjectSelectionDocumentStorage)
_register("SPECTROSCOPY", U.MRSpectroscopyStorage)
_register("RAW DATA", U.RawDataStorage)
_register("REGISTRATION", U.SpatialRegistrationStorage, U.DeformableSpatialRegistrationStorage)
_register("FIDUCIAL", U.SpatialFiducialsStorage)
_register("VALUE MAP", U.RealWorldValueMappingStorage)
_register("STEREOMETRIC", U.StereometricRelationshipStorage)
_register(
    "MEASUREMENT",
    U.LensometryMeasurementsStorage,
    U.AutorefractionMeasurementsStorage,
    U.KeratometryMeasurementsStorage,
    U.SubjectiveRefractionMeasurementsStorage,
    U.VisualAcuityMeasurementsStorage,
    U.OphthalmicAxialMeasurementsStorage,
    U.OphthalmicVisualFieldStaticPerimetryMeasurementsStorage,
)
_register("SURFACE", U.SurfaceSegmentationStorage)
_register("SURFACE SCAN", U.SurfaceScanMeshStorage, U.SurfaceScanPointCloudStorage)
_register("TRACT", U.TractographyResultsStorage)
_register("ASSESSMENT", U.ContentAssessmentResultsStorage)
_register(
    "ENCAP DOC",
    U.EncapsulatedPDFStorage,
    U.EncapsulatedCDAStorage,
    U.EncapsulatedSTLStorage,
    U.EncapsulatedOBJStorage,
    U.EncapsulatedMTLStorage,
)


def leaf_record_type(sop_class_uid: str, modality: str | None = None) -> str:
    """The leaf Directory Record Type (0004,1430) for an instance (PS3.3 F.4, Table F.4-1)."""
    if modality in ("RTINTENT", "RTSEGANN", "RTRAD"):
        return "RADIOTHERAPY"
    if modality == "PLAN":
        return "PLAN"
    sop_class = str(sop_class_uid)
    if sop_class in _LEAF_BY_SOP_CLASS:
        return _LEAF_BY_SOP_CLASS[sop_class]
    name = UID(sop_class).name
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
    return [
        item
        for item in ds.get("ContentSequence", [])
        if item.get("RelationshipType") == "HAS CONCEPT MOD"
    ]
