"""The Part 10 byte layer: every length bounded, every failure typed, no recursion a crafted file can exhaust."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from pydicom import dcmread

from dicommedia.errors import one_line
from dicommedia.inputs.dicom_file import file_source, read_header
from dicommedia.part10 import Malformed, Part10Error, Truncated, read_file_meta
from dicommedia.part10.encode import element as encode_element
from dicommedia.part10.header import read_elements, read_raw_header
from dicommedia.part10.meta import stray_meta_span
from dicommedia.part10.structure import meta_end, walk_dataset
from tests.crafted import element, file_meta, with_file_meta_repeated

CT = "1.2.840.10008.5.1.4.1.1.2"
ITEM = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
ITEM_END = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
SEQ_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


def _implicit(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


def with_private_un(nested: int = 1) -> bytes:
    """A CT object with a private UN element of undefined length (Implicit VR LE items inside, PS3.5 6.2.2)."""
    inner = _implicit(0x00091011, b"abcd")
    for _ in range(nested - 1):  # an implicit sequence of undefined length inside the item
        sequence = struct.pack("<HHI", 0x0009, 0x1012, 0xFFFFFFFF) + ITEM + inner + ITEM_END + SEQ_END
        inner = _implicit(0x00091011, b"abcd") + sequence
    body = b"".join(
        [
            element(0x00080016, b"UI", CT.encode()),
            element(0x00080018, b"UI", b"1.2.3.4.5\0"),
            element(0x00080060, b"CS", b"CT"),
            element(0x00090010, b"LO", b"VENDOR"),
            element(0x00091010, b"UN", ITEM + inner + ITEM_END + SEQ_END, 0xFFFFFFFF),
            element(0x00100020, b"LO", b"PID1"),
            element(0x0020000D, b"UI", b"1.2.3.6\0"),
            element(0x0020000E, b"UI", b"1.2.3.7\0"),
        ]
    )
    return file_meta(CT, "1.2.3.4.5") + body


def test_raw_header_reads_past_a_private_un_of_undefined_length(tmp_path: Path):
    data = with_private_un(nested=3)
    parsed = read_raw_header(io.BytesIO(data), len(data), {0x00100020, 0x0020000E})
    assert parsed is not None
    assert parsed.values[0x00100020].text() == "PID1" and parsed.values[0x0020000E].text() == "1.2.3.7"
    assert str(dcmread(io.BytesIO(data)).PatientID) == "PID1"  # pydicom agrees
    path = tmp_path / "un.dcm"
    path.write_bytes(data)
    header = read_header(file_source(path))  # the create side takes the file (it used to refuse it)
    assert (header.sop_instance_uid, str(header.keys.get("PatientID"))) == ("1.2.3.4.5", "PID1")


def test_structure_the_reader_does_not_follow_falls_back_to_pydicom():
    data = file_meta(CT) + element(0x00080016, b"UI", CT.encode()) + b"\x10\x00\x20\x00??\x04\x00PID1"
    assert read_raw_header(io.BytesIO(data), len(data), {0x00100020}) is None  # no VR "??": pydicom's turn


def _nested_sequences(depth: int) -> bytes:
    inner = b""
    for _ in range(depth):
        inner = element(0x00081115, b"SQ", ITEM + inner + ITEM_END, 0xFFFFFFFF) + SEQ_END
    return file_meta(CT) + element(0x00080016, b"UI", CT.encode()) + inner


def test_nesting_is_bounded_without_recursion_errors():
    data = _nested_sequences(3000)
    assert read_raw_header(io.BytesIO(data), len(data), {0x00100020}) is None
    fp = io.BytesIO(data)
    with pytest.raises(Malformed, match="nested deeper"):
        walk_dataset(fp, len(data), meta_end(fp, len(data)), "1.2.840.10008.1.2.1")
    shallow = _nested_sequences(20)
    fp = io.BytesIO(shallow)
    walk_dataset(fp, len(shallow), meta_end(fp, len(shallow)), "1.2.840.10008.1.2.1")  # real depths pass


@pytest.mark.parametrize("length", [0xFFFFFFFF, 0x7FFFFFFF, 9999])
def test_file_meta_lengths_are_bounded(length: int):
    data = bytearray(file_meta())
    struct.pack_into("<I", data, 132 + 12 + 8, length)  # the OB length of (0002,0001)
    with pytest.raises(Truncated):
        read_file_meta(data)


def test_file_meta_errors_are_typed():
    with pytest.raises(Malformed):
        read_file_meta(b"\0" * 200)
    with pytest.raises(Part10Error):
        read_file_meta(file_meta()[:150])
    meta, offset = read_file_meta(file_meta(CT, "1.2.3"))
    assert (meta["MediaStorageSOPInstanceUID"], offset) == ("1.2.3", len(file_meta(CT, "1.2.3")))


@pytest.mark.parametrize("declared_right", [True, False])
def test_file_meta_ends_where_its_group_length_says(declared_right: bool):
    """Group 0002 elements past the declared end are stepped over, not read as the File Meta; a group length that
    ends inside an element is ignored, and the whole group read as before."""
    sound = file_meta(CT, "1.2.3") + element(0x00080016, b"UI", b"1.2.3\0")
    data = bytearray(with_file_meta_repeated(sound, "1.2.840.10008.1.2", "9.9.9"))
    if not declared_right:
        struct.pack_into("<I", data, 132 + 8, struct.unpack_from("<I", data, 132 + 8)[0] + 2)
    meta, offset = read_file_meta(data)
    end = len(file_meta(CT, "1.2.3"))
    if declared_right:
        assert (meta["MediaStorageSOPInstanceUID"], meta["TransferSyntaxUID"]) == ("1.2.3", "1.2.840.10008.1.2.1")
        assert data[offset:] == element(0x00080016, b"UI", b"1.2.3\0")  # the data set, without the repeat
        assert stray_meta_span(data) == (end, offset)
    else:
        assert meta["MediaStorageSOPInstanceUID"] == "9.9.9" and stray_meta_span(data) is None


def test_one_line_leaves_out_a_pasted_traceback():
    exc = ValueError(
        "With tag (5000,3000) got exception: Cannot write ambiguous VR\nTraceback (most recent call last):\n"
        '  File "filewriter.py", line 1, in write_dataset\n    yield\nValueError: Cannot write ambiguous VR'
    )
    assert one_line(exc) == "With tag (5000,3000) got exception: Cannot write ambiguous VR"


def test_truncated_value_raises_truncated():
    data = with_private_un()[:-3]
    with pytest.raises(Truncated):
        read_raw_header(io.BytesIO(data), len(data), {0x0020000E})


def test_encode_and_read_back():
    encoded = encode_element(0x00100010, "PN", b"DOE^JANE") + encode_element(0x7FE00010, "OB", b"\x01\x02\x03")
    values = read_elements(encoded)
    assert values[0x00100010].value == b"DOE^JANE" and values[0x00100010].vr == "PN"
