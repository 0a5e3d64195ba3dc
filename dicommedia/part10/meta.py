"""PS3.10 7.1 framing: the 128-byte preamble, 'DICM', and the File Meta group (always Explicit VR LE)."""

from __future__ import annotations

import io
import struct
from typing import BinaryIO

from dicommedia.part10.errors import Malformed, Truncated
from dicommedia.part10.vr import LONG_VRS_BYTES, UNDEFINED

PREFIX_END = 132  # 128-byte preamble + "DICM"
META_UIDS = {0x0002: "MediaStorageSOPClassUID", 0x0003: "MediaStorageSOPInstanceUID", 0x0010: "TransferSyntaxUID"}
META_WINDOW = 65536  # bytes read at once for the File Meta group: real ones hold a few hundred
_STRAY_WINDOW = 4096  # where repeated File Meta elements are looked for: a File Meta twice is under 1 KiB
_SHORT = struct.Struct("<HH2sH")
_UL = struct.Struct("<I")


def has_prefix(head: bytes) -> bool:
    """True when the bytes start with a 128-byte preamble and ``DICM`` (PS3.10 7.1)."""
    return len(head) >= PREFIX_END and head[128:PREFIX_END] == b"DICM"


def has_dicm(fp: BinaryIO) -> bool:
    """True when an open file starts with a 128-byte preamble and ``DICM`` (PS3.10 7.1); reads 132 bytes."""
    return has_prefix(fp.read(PREFIX_END))


def read_file_meta(raw: bytes | bytearray | memoryview) -> tuple[dict[str, str], int]:
    """The File Meta UIDs of a Part 10 file and the offset of its data set (PS3.10 7.1), every length bounded.

    Raises Malformed when there is no prefix or no Transfer Syntax UID, Truncated when the group runs past ``raw``.
    """
    meta, _, start = walk_file_meta(raw)
    return meta, start


def stray_meta_span(raw: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """(end of the File Meta, start of the data set) when group 0002 elements are repeated at the start of the data
    set, past the end File Meta Information Group Length declares; None for a sound file or one not Part 10."""
    try:
        _, end, start = walk_file_meta(raw)
    except (Malformed, Truncated):
        return None
    return (end, start) if start > end else None


def without_stray_meta(fp: BinaryIO) -> io.BytesIO | None:
    """A copy in memory of the Part 10 file at ``fp`` without the group 0002 elements its data set repeats (see
    :func:`walk_file_meta`), for pydicom, which would take them for the File Meta; None (``fp`` rewound) when
    there are none."""
    start = fp.tell()
    span = stray_meta_span(fp.read(_STRAY_WINDOW))
    fp.seek(start)
    if span is None:
        return None
    data = fp.read()
    return io.BytesIO(data[: span[0]] + data[span[1] :])


def walk_file_meta(raw: bytes | bytearray | memoryview) -> tuple[dict[str, str], int, int]:
    """The File Meta UIDs, where the File Meta ends and where the data set starts (see :func:`read_file_meta`).

    The group ends where File Meta Information Group Length (0002,0000) says when an element ends there (PS3.10
    7.1). Group 0002 elements that follow (a data set that repeats some File Meta) belong to no one: they are
    stepped over, so that neither their Transfer Syntax UID nor their Media Storage UIDs are taken for the file's.
    """
    if len(raw) < PREFIX_END or raw[128:PREFIX_END] != b"DICM":
        raise Malformed("no 'DICM' after a 128-byte preamble")
    meta: dict[str, str] = {}
    pos, size = PREFIX_END, len(raw)
    declared_end = None
    while pos + 8 <= size and pos != declared_end:
        group, element, vr, length = _SHORT.unpack_from(raw, pos)
        if group != 0x0002:
            break
        start, end = _element_span(raw, pos)
        if element == 0x0000 and pos == PREFIX_END and length == 4:
            declared_end = end + _UL.unpack_from(raw, start)[0]
        if element in META_UIDS:
            meta[META_UIDS[element]] = bytes(raw[start:end]).decode("ascii", "replace").rstrip("\0 ")
        pos = end
    if "TransferSyntaxUID" not in meta:
        raise Malformed("no Transfer Syntax UID in the File Meta Information")
    data_start = pos
    while declared_end == pos and data_start + 8 <= size:  # only past a group length honoured
        group, _, vr, _ = _SHORT.unpack_from(raw, data_start)
        if group != 0x0002 or not (vr.isalpha() and vr.isupper()):  # not an Explicit VR element of group 0002
            break
        try:
            data_start = _element_span(raw, data_start)[1]
        except Truncated:
            break
    return meta, pos, data_start


def _element_span(raw: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """Where the value of the Explicit VR LE element at ``pos`` starts and ends; Truncated when past ``raw``."""
    _, element, vr, length = _SHORT.unpack_from(raw, pos)
    start = pos + 8
    if vr in LONG_VRS_BYTES:
        if pos + 12 > len(raw):
            raise Truncated("the File Meta Information ends inside an element header")
        (length,), start = _UL.unpack_from(raw, pos + 8), pos + 12
    if length == UNDEFINED or start + length > len(raw):
        raise Truncated(f"File Meta element (0002,{element:04X}) runs past the end of the data")
    return start, start + length
