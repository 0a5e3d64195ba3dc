"""The in-memory element walk the coercion uses: positions that pydicom agrees with, bounded on hostile bytes."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence

from dicommedia.part10 import Malformed
from dicommedia.part10.positions import NeedMore, encode_element, value_of, walk


def encoded(ds: Dataset, explicit: bool) -> bytes:
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, not explicit
    write_dataset(out, ds)
    return out.getvalue()


def nested() -> Dataset:
    """Top-level elements around an undefined-length sequence holding an undefined-length item and a nested one."""
    inner = Dataset()
    inner.CodeValue = "121320"
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    item.PurposeOfReferenceCodeSequence = Sequence([inner])
    item.PurposeOfReferenceCodeSequence.is_undefined_length = True
    ds = Dataset()
    ds.PatientName = "DOE^JANE"
    ds.SourceImageSequence = Sequence([item, Dataset()])
    ds.SourceImageSequence.is_undefined_length = True
    ds.PatientID = "PAT001"
    ds.SeriesNumber = 3
    return ds


@pytest.mark.parametrize("explicit", [True, False])
def test_walk_finds_every_top_level_element_where_pydicom_wrote_it(explicit: bool) -> None:
    data = encoded(nested(), explicit)
    elements, end = walk(data, explicit, 0xFFFFFFFF)
    assert [el[0] for el in elements] == [0x00082112, 0x00100010, 0x00100020, 0x00200011]
    assert end == len(data) and elements[-1][4] == len(data)
    values = {el[0]: value_of(el, data) for el in elements}
    assert values[0x00100020] == b"PAT001" and values[0x00100010] == b"DOE^JANE"
    stopped, cut = walk(data, explicit, 0x00100010)
    assert [el[0] for el in stopped][-1] == 0x00100010 and cut == elements[2][2]


@pytest.mark.parametrize("explicit", [True, False])
def test_encode_element_reads_back(explicit: bool) -> None:
    data = encode_element(0x00100010, "PN", b"ROE^R", explicit) + encode_element(0x00100020, "LO", b"X1", explicit)
    elements, _ = walk(data, explicit, 0xFFFFFFFF)
    assert [value_of(el, data) for el in elements] == [b"ROE^R ", b"X1"]  # padded to even length


def test_truncated_and_hostile_bytes() -> None:
    data = encoded(nested(), True)
    for cut in (5, 20, len(data) - 3):
        with pytest.raises(NeedMore):
            walk(data[:cut], True, 0xFFFFFFFF)
    with pytest.raises(Malformed):
        walk(b"\xfe\xff\x00\xe0\x00\x00\x00\x00", True, 0xFFFFFFFF)  # an item where an element belongs
    deep = (
        b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff"
        + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
        + (b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff\xfe\xff\x00\xe0\xff\xff\xff\xff" * 100)
    )
    with pytest.raises(Malformed):
        walk(deep, True, 0xFFFFFFFF)
