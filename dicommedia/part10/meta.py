"""PS3.10 7.1 framing: the 128-byte preamble, 'DICM', and the File Meta group (always Explicit VR LE)."""

from __future__ import annotations

import struct
from typing import BinaryIO

from dicommedia.part10.errors import Malformed, Truncated
from dicommedia.part10.vr import LONG_VRS_BYTES, UNDEFINED

PREFIX_END = 132  # 128-byte preamble + "DICM"
META_UIDS = {0x0002: "MediaStorageSOPClassUID", 0x0003: "MediaStorageSOPInstanceUID", 0x0010: "TransferSyntaxUID"}
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
    if len(raw) < PREFIX_END or raw[128:PREFIX_END] != b"DICM":
        raise Malformed("no 'DICM' after a 128-byte preamble")
    meta: dict[str, str] = {}
    pos, size = PREFIX_END, len(raw)
    while pos + 8 <= size:
        group, element, vr, length = _SHORT.unpack_from(raw, pos)
        if group != 0x0002:
            break
        start = pos + 8
        if vr in LONG_VRS_BYTES:
            if pos + 12 > size:
                raise Truncated("the File Meta Information ends inside an element header")
            (length,), start = _UL.unpack_from(raw, pos + 8), pos + 12
        if length == UNDEFINED or start + length > size:
            raise Truncated(f"File Meta element (0002,{element:04X}) runs past the end of the data")
        if element in META_UIDS:
            meta[META_UIDS[element]] = bytes(raw[start : start + length]).decode("ascii", "replace").rstrip("\0 ")
        pos = start + length
    if "TransferSyntaxUID" not in meta:
        raise Malformed("no Transfer Syntax UID in the File Meta Information")
    return meta, pos
