"""Explicit VR Little Endian element encoding (PS3.5 7.1.2) for the files we write ourselves."""

from __future__ import annotations

import struct

from dicommedia.part10.header import RawValue
from dicommedia.part10.vr import LONG_VRS, NUMBER_FORMATS, UNDEFINED


def pad(vr: str, value: bytes) -> bytes:
    """Pad a value to even length: NUL for UI and binary VRs, space for text (PS3.5 6.2)."""
    if len(value) % 2 == 0:
        return value
    return value + (b"\x00" if vr in ("UI", "OB", "UN") else b" ")


def element(tag: int, vr: str, value: bytes, undefined_length: bool = False) -> bytes:
    """One encoded element: tag, VR, length (2 or 4 bytes), value."""
    group, elem = tag >> 16, tag & 0xFFFF
    value = value if undefined_length else pad(vr, value)
    if vr in LONG_VRS:
        length = UNDEFINED if undefined_length else len(value)
        return struct.pack("<HH2sHI", group, elem, vr.encode(), 0, length) + value
    if len(value) > 0xFFFF:
        raise ValueError(f"({group:04X},{elem:04X}) {vr} value of {len(value)} bytes is too long for its VR")
    return struct.pack("<HH2sH", group, elem, vr.encode(), len(value)) + value


def raw_of(vr: str, value: object) -> RawValue:
    """A Python value (text, number, or list of texts for multi-valued CS) as a raw Explicit VR LE value."""
    if vr in NUMBER_FORMATS:
        return RawValue(vr, struct.pack(NUMBER_FORMATS[vr], int(value)))
    if isinstance(value, (list, tuple)):
        value = "\\".join(str(v) for v in value)
    return RawValue(vr, pad(vr, str(value).encode("ascii")))


def encode_raw(tag: int, raw: RawValue) -> bytes:
    """Encode a raw value under a tag."""
    return element(tag, raw.vr, raw.value, raw.undefined_length)
