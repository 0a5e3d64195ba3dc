"""A pydicom Dataset as the bytes of a Part 10 body (no File Meta): the one way our writers and the duplicate
check encode a data set decoded by pydicom."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset


def encode_body(ds: Dataset, implicit_vr: bool = False) -> bytes:
    """The dataset (without File Meta) in Explicit VR Little Endian (or Implicit VR where a profile keeps it)."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = implicit_vr
    # Iterating converts raw elements (VRs looked up for Implicit VR input); ambiguous VRs are then
    # resolved by write_dataset because the body has no original encoding (PS3.5 Annex A.1).
    body = Dataset({elem.tag: elem for elem in ds if elem.tag.group != 0x0002})
    pixels = body.get("PixelData")
    if pixels is not None and body["PixelData"].is_undefined_length and len(pixels) % 2:
        body.PixelData = even_fragments(pixels)
    write_dataset(fp, body)
    return fp.getvalue()


def even_fragments(value: bytes) -> bytes:
    """Encapsulated Pixel Data with every item of even length (PS3.5 A.4), the Basic Offset Table following.

    Written as it was, an odd item would be padded after the last item and shift the Sequence Delimiter."""
    items: list[bytes] = []
    pos = 0
    while pos + 8 <= len(value) and value[pos : pos + 4] == b"\xfe\xff\x00\xe0":
        length = int.from_bytes(value[pos + 4 : pos + 8], "little")
        items.append(value[pos + 8 : pos + 8 + length])
        pos += 8 + length
    if not items or pos != len(value):
        return value  # not plain items: leave it to the decoder to refuse
    old, new, starts = 0, 0, {}
    for fragment in items[1:]:
        starts[old] = new
        old, new = old + 8 + len(fragment), new + 8 + len(fragment) + len(fragment) % 2
    table = items[0]
    offsets = [int.from_bytes(table[i : i + 4], "little") for i in range(0, len(table) - len(table) % 4, 4)]
    if all(o in starts for o in offsets):
        table = b"".join(starts[o].to_bytes(4, "little") for o in offsets)
    padded = [table] + [f + b"\0" * (len(f) % 2) for f in items[1:]]
    return b"".join(b"\xfe\xff\x00\xe0" + len(f).to_bytes(4, "little") + f for f in padded)
