"""A pydicom Dataset as the bytes of a Part 10 body (no File Meta): the one way our writers and the duplicate
check encode a data set decoded by pydicom."""

from __future__ import annotations

from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr_element, write_dataset
from pydicom.valuerep import AMBIGUOUS_VR
from pydicom.values import convert_numbers


def encode_body(ds: Dataset, implicit_vr: bool = False) -> bytes:
    """The dataset (without File Meta) in Explicit VR Little Endian (or Implicit VR where a profile keeps it)."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = implicit_vr
    body = Dataset({tag: ds.get_item(tag) for tag in ds.keys() if tag.group != 0x0002})
    resolve_ambiguous_vrs(body)
    pixels = body.get("PixelData")
    if pixels is not None and body["PixelData"].is_undefined_length and len(pixels) % 2:
        body.PixelData = even_fragments(pixels)
    write_dataset(fp, body)
    return fp.getvalue()


def resolve_ambiguous_vrs(ds: Dataset, ancestors: tuple[Dataset, ...] = ()) -> None:
    """Convert every element of ``ds`` as read, items included, each with one VR where the dictionary gives a
    choice ("OB or OW", "US or SS", ...), so that the data set can be written in Explicit VR.

    pydicom decides from the attributes that govern the choice (Bits Allocated, Pixel Representation, LUT
    Descriptor...). What it leaves open (retired Curve and Audio data, a governing attribute missing) is
    decided as Implicit VR Little Endian read it (PS3.5 Annex A.1): OW for data, US for a single value.
    """
    chain = [ds, *ancestors]
    for tag in list(ds.keys()):
        elem = ds.get_item(tag)  # not ds[tag]: pydicom would resolve the VR there and fail on what it cannot
        if isinstance(elem, RawDataElement):
            elem = convert_raw_data_element(elem, ds=ds)
        if elem.VR in AMBIGUOUS_VR:
            try:
                elem = correct_ambiguous_vr_element(elem, ds, True, chain)
            except (AttributeError, TypeError, ValueError, IndexError):  # a governing attribute missing or odd
                pass
            if elem.VR in AMBIGUOUS_VR:
                elem = _settled(elem)
        ds[tag] = elem
        if elem.VR == "SQ":
            for item in elem.value:
                resolve_ambiguous_vrs(item, tuple(chain))


def _settled(elem: DataElement) -> DataElement:
    """The element with the VR Implicit VR Little Endian gives it when nothing else decides (PS3.5 A.1)."""
    value = elem.value
    data = isinstance(value, (bytes, bytearray))
    if data and "OW" in elem.VR and ("US" not in elem.VR or len(value) > 2):  # a single value is US
        return DataElement(elem.tag, "OW", value)
    if data:
        value = convert_numbers(bytes(value), True, "H") if len(value) >= 2 else None
    return DataElement(elem.tag, "US", value)


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
