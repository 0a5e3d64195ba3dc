"""Is a file on the media the instance its record names? Checked before anything is extracted or sent.

A damaged or hostile DICOMDIR can point many records at one extent, or at the volume descriptors: what leaves the
media must be a Part 10 data set (PS3.10 7.1) whose SOP Instance UID is the one its record references
(PS3.3 F.3.2.2, Referenced SOP Instance UID in File).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dicommedia.media.findings import Finding, show_file_id
from dicommedia.media.view import MediaFile
from dicommedia.part10 import Part10Error, read_file_meta

_HEAD = 4096  # a File Meta Information fits in this as a rule; a longer one is read whole
_MAX_META = 1 << 20  # a File Meta Information longer than 1 MiB is not one (PS3.10 7.1: a few UIDs and names)


def not_part10(exc: Part10Error) -> str:
    """Why a file whose File Meta Information cannot be read may not leave the media."""
    return f"not a Part 10 file ({exc}): not taken"


def record_mismatch(expected: str | None, meta: Mapping[str, str]) -> str | None:
    """Why a file with File Meta ``meta`` is not the instance ``expected`` that its record references (None: it is).

    A sender that reads the File Meta anyway calls this on its own read rather than :func:`check_instance`.
    """
    in_file = meta.get("MediaStorageSOPInstanceUID")
    if expected and in_file and expected != in_file:
        return f"its record references SOP Instance UID {expected}, the file holds {in_file}: not taken"
    return None


def check_instance(media_file: MediaFile) -> Finding | None:
    """Why this file may not leave the media as its record's instance, or None when it may."""
    where = show_file_id(media_file.file_id)
    try:
        meta = _file_meta(media_file)
    except Part10Error as exc:
        return Finding("not-part10", not_part10(exc), where)
    except OSError as exc:
        return Finding("corrupt-file", f"cannot be read from the media ({exc.strerror or exc}): not taken", where)
    mismatch = record_mismatch(media_file.sop_instance_uid, meta)
    return None if mismatch is None else Finding("record-mismatch", mismatch, where)


def _file_meta(media_file: MediaFile) -> dict[str, str]:
    size = min(media_file.size, _HEAD)
    head = bytearray(size)
    media_file.read_into(0, [memoryview(head)])
    try:
        return read_file_meta(head)[0]
    except Part10Error:
        if size == media_file.size:
            raise
    whole = bytearray(min(media_file.size, _MAX_META))
    media_file.read_into(0, [memoryview(whole)])
    return read_file_meta(whole)[0]


def split_verified(files: Iterable[MediaFile]) -> tuple[list[MediaFile], list[Finding]]:
    """The files that may leave the media, and a finding for each that may not."""
    kept: list[MediaFile] = []
    refused: list[Finding] = []
    for media_file in files:
        problem = check_instance(media_file)
        if problem is None:
            kept.append(media_file)
        else:
            refused.append(problem)
    return kept, refused
