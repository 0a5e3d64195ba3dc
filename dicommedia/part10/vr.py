"""Value Representations as the byte layer needs them (PS3.5 Table 7.1-1, 6.2)."""

from __future__ import annotations

# Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2); the others have a 2-byte length.
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
LONG_VRS_BYTES = frozenset(vr.encode() for vr in LONG_VRS)
SHORT_VRS = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "PN", "SH", "SL", "SS", "ST", "TM"}
    | {"UI", "UL", "US"}
)
SHORT_VRS_BYTES = frozenset(vr.encode() for vr in SHORT_VRS)
# Binary VRs with one number per value (struct formats, little endian).
NUMBER_FORMATS = {"US": "<H", "UL": "<I", "SS": "<h", "SL": "<i"}

UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
# Deeper nesting than this is no real data set: refused as Malformed before Python's recursion limit is reached.
MAX_DEPTH = 64
