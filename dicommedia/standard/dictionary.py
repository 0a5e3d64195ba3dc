"""The few data-dictionary facts the media code needs, without loading pydicom (PS3.6 Table 6-1).

Keyword -> (tag, VR) for the directory record keys and the attributes planning reads. Keeping this table
local lets the fast path (copying Explicit VR Little Endian files) run without importing pydicom at all.
"""

from __future__ import annotations

TAGS: dict[str, tuple[int, str]] = {
    "FileMetaInformationGroupLength": (0x00020000, "UL"),
    "FileMetaInformationVersion": (0x00020001, "OB"),
    "MediaStorageSOPClassUID": (0x00020002, "UI"),
    "MediaStorageSOPInstanceUID": (0x00020003, "UI"),
    "TransferSyntaxUID": (0x00020010, "UI"),
    "ImplementationClassUID": (0x00020012, "UI"),
    "ImplementationVersionName": (0x00020013, "SH"),
    "SourceApplicationEntityTitle": (0x00020016, "AE"),
    "FileSetID": (0x00041130, "CS"),
    "OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity": (0x00041200, "UL"),
    "OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity": (0x00041202, "UL"),
    "FileSetConsistencyFlag": (0x00041212, "US"),
    "DirectoryRecordSequence": (0x00041220, "SQ"),
    "OffsetOfTheNextDirectoryRecord": (0x00041400, "UL"),
    "RecordInUseFlag": (0x00041410, "US"),
    "OffsetOfReferencedLowerLevelDirectoryEntity": (0x00041420, "UL"),
    "DirectoryRecordType": (0x00041430, "CS"),
    "ReferencedFileID": (0x00041500, "CS"),
    "ReferencedSOPClassUIDInFile": (0x00041510, "UI"),
    "ReferencedSOPInstanceUIDInFile": (0x00041511, "UI"),
    "ReferencedTransferSyntaxUIDInFile": (0x00041512, "UI"),
    "SpecificCharacterSet": (0x00080005, "CS"),
    "ImageType": (0x00080008, "CS"),
    "InstanceCreationDate": (0x00080012, "DA"),
    "InstanceCreationTime": (0x00080013, "TM"),
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "StudyDate": (0x00080020, "DA"),
    "SeriesDate": (0x00080021, "DA"),
    "AcquisitionDate": (0x00080022, "DA"),
    "ContentDate": (0x00080023, "DA"),
    "StudyTime": (0x00080030, "TM"),
    "SeriesTime": (0x00080031, "TM"),
    "AcquisitionTime": (0x00080032, "TM"),
    "ContentTime": (0x00080033, "TM"),
    "AccessionNumber": (0x00080050, "SH"),
    "Modality": (0x00080060, "CS"),
    "ReferringPhysicianName": (0x00080090, "PN"),
    "StudyDescription": (0x00081030, "LO"),
    "SeriesDescription": (0x0008103E, "LO"),
    "NameOfPhysiciansReadingStudy": (0x00081060, "PN"),
    "ReferencedSeriesSequence": (0x00081115, "SQ"),
    "ReferencedImageSequence": (0x00081140, "SQ"),
    "ReferencedImageEvidenceSequence": (0x00089092, "SQ"),
    "PatientName": (0x00100010, "PN"),
    "PatientID": (0x00100020, "LO"),
    "PatientBirthDate": (0x00100030, "DA"),
    "PatientSex": (0x00100040, "CS"),
    "BodyPartExamined": (0x00180015, "CS"),
    "StudyInstanceUID": (0x0020000D, "UI"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "StudyID": (0x00200010, "SH"),
    "SeriesNumber": (0x00200011, "IS"),
    "InstanceNumber": (0x00200013, "IS"),
    "SamplesPerPixel": (0x00280002, "US"),
    "PhotometricInterpretation": (0x00280004, "CS"),
    "NumberOfFrames": (0x00280008, "IS"),
    "Rows": (0x00280010, "US"),
    "Columns": (0x00280011, "US"),
    "BitsAllocated": (0x00280100, "US"),
    "DataPointRows": (0x00289001, "UL"),
    "DataPointColumns": (0x00289002, "UL"),
    "VerificationDateTime": (0x0040A030, "DT"),
    "ConceptNameCodeSequence": (0x0040A043, "SQ"),
    "VerifyingObserverSequence": (0x0040A073, "SQ"),
    "CompletionFlag": (0x0040A491, "CS"),
    "VerificationFlag": (0x0040A493, "CS"),
    "HL7InstanceIdentifier": (0x0040E001, "ST"),
    "DocumentTitle": (0x00420010, "ST"),
    "MIMETypeOfEncapsulatedDocument": (0x00420012, "LO"),
    "ContentLabel": (0x00700080, "CS"),
    "ContentDescription": (0x00700081, "LO"),
    "PresentationCreationDate": (0x00700082, "DA"),
    "PresentationCreationTime": (0x00700083, "TM"),
    "ContentCreatorName": (0x00700084, "PN"),
    "BlendingSequence": (0x00700402, "SQ"),
    "DoseComment": (0x30040006, "LO"),
    "DoseSummationType": (0x3004000A, "CS"),
    "StructureSetLabel": (0x30060002, "SH"),
    "StructureSetDate": (0x30060008, "DA"),
    "StructureSetTime": (0x30060009, "TM"),
    "TreatmentDate": (0x30080250, "DA"),
    "TreatmentTime": (0x30080251, "TM"),
    "RTPlanLabel": (0x300A0002, "SH"),
    "RTPlanDate": (0x300A0006, "DA"),
    "RTPlanTime": (0x300A0007, "TM"),
    "UserContentLabel": (0x30100033, "SH"),
    "UserContentLongLabel": (0x30100034, "LO"),
    "PixelData": (0x7FE00010, "OB or OW"),}
KEYWORDS: dict[int, str] = {tag: keyword for keyword, (tag, _vr) in TAGS.items()}


def tag_of(keyword: str) -> int:
    """The tag of a keyword in the table."""
    return TAGS[keyword][0]


def vr_of(keyword: str) -> str:
    """The VR of a keyword in the table."""
    return TAGS[keyword][1]
