"""PS3.10 section 7 Part 10 framing: preamble, 'DICM' and the File Meta Information we write."""

from __future__ import annotations

from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info

from dicommedia.standard.identity import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, SOURCE_AE_TITLE

PREAMBLE = b"\x00" * 128 + b"DICM"


def file_meta(sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str) -> FileMetaDataset:
    """File Meta Information with our Implementation Class UID and Version Name (PS3.10 7.1)."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = transfer_syntax_uid
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    meta.SourceApplicationEntityTitle = SOURCE_AE_TITLE
    return meta


def encode_header(meta: FileMetaDataset) -> bytes:
    """Preamble, prefix and the encoded File Meta group (with its group length)."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_file_meta_info(fp, meta, enforce_standard=True)
    return PREAMBLE + fp.getvalue()
