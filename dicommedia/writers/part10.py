"""PS3.10 section 7 Part 10 framing: preamble, 'DICM' and the File Meta Information we write."""

from __future__ import annotations

import struct

from dicommedia.part10.encode import element, pad
from dicommedia.standard.identity import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, SOURCE_AE_TITLE

PREAMBLE = b"\x00" * 128 + b"DICM"


def encode_header(sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str) -> bytes:
    """Preamble, prefix and File Meta group with our Implementation Class UID and Version Name (PS3.10 7.1)."""
    body = b"".join(
        (
            element(0x00020001, "OB", b"\x00\x01"),
            element(0x00020002, "UI", sop_class_uid.encode("ascii")),
            element(0x00020003, "UI", sop_instance_uid.encode("ascii")),
            element(0x00020010, "UI", transfer_syntax_uid.encode("ascii")),
            element(0x00020012, "UI", str(IMPLEMENTATION_CLASS_UID).encode("ascii")),
            element(0x00020013, "SH", IMPLEMENTATION_VERSION_NAME.encode("ascii")),
            element(0x00020016, "AE", pad("AE", SOURCE_AE_TITLE.encode("ascii"))),
        )
    )
    return PREAMBLE + element(0x00020000, "UL", struct.pack("<I", len(body))) + body
