"""The streaming ISO 9660 writer (writers/iso9660.py), judged by isoinfo, xorriso, pycdlib and our own reader."""

from __future__ import annotations

import io
import os
import re
import subprocess

import pytest

from dicommedia.errors import MediaError
from dicommedia.media.store import IsoStore
from dicommedia.writers.iso9660 import IsoImage
from dicommedia.writers.output import VolumeFile, build_iso, write_iso


def _content(parts: tuple[str, ...]) -> bytes:
    """Distinct bytes per file, of a length that is rarely a whole number of sectors."""
    seed = "/".join(parts).encode()
    return seed * (1 + len(seed) * 37 % 190)


def _files() -> list[VolumeFile]:
    """A DICOMDIR, 300 files in one folder (its directory spans sectors), deep and sibling folders, empty file."""
    names = [("DICOMDIR",), ("README.TXT",), ("EMPTY",)]
    names += [("DICOM", "PA000001", "ST000001", "SE000001", f"IM{n:06d}") for n in range(300)]
    names += [("DICOM", "PA000002", "ST000001", "SE00000" + str(n), "IM000001") for n in range(1, 4)]
    names += [("A", "B", "C", "D", "E", "F", "G", "DEEP.TXT")]  # 8 levels, the root counted
    names += [("IHE_PDI", "SE000001.HTM"), ("IHE_PDI", "SE000001", "IM000001.JPG"), ("IHE_PDI", "STYLE.CSS")]
    files = []
    for parts in names:
        data = b"" if parts == ("EMPTY",) else _content(parts)
        files.append(VolumeFile(parts, len(data), lambda data=data: io.BytesIO(data)))
    return files


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("iso") / "made.iso"
    write_iso(build_iso(_files(), "STREAMED"), path)
    return path


def test_isoinfo_reads_every_file_and_the_descriptor(image, tool):
    isoinfo = tool("isoinfo")
    descriptor = subprocess.run([isoinfo, "-d", "-i", str(image)], capture_output=True, text=True, check=True).stdout
    assert "Volume id: STREAMED" in descriptor
    assert f"Volume size is: {os.path.getsize(image) // 2048}" in descriptor
    assert "NO Joliet present" in descriptor and "NO Rock Ridge present" in descriptor
    listed = subprocess.run([isoinfo, "-f", "-i", str(image)], capture_output=True, text=True, check=True).stdout
    listed_files = {line for line in listed.splitlines() if ";1" in line}
    expected = {"/" + "/".join(f.parts) + (";1" if "." in f.parts[-1] else ".;1") for f in _files()}
    assert listed_files == expected
    for f in _files()[:5] + _files()[-4:]:
        name = "/" + "/".join(f.parts) + (";1" if "." in f.parts[-1] else ".;1")
        data = subprocess.run([isoinfo, "-i", str(image), "-x", name], capture_output=True, check=True).stdout
        assert data == f.open().read(), name


def test_xorriso_finds_the_tree_consistent(image, tool):
    xorriso = tool("xorriso")
    out = subprocess.run(
        [xorriso, "-indev", str(image), "-find", "/", "-type", "f", "--", "-check_media", "--"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "SORRY" not in out.stderr and "FAILURE" not in out.stderr, out.stderr[-2000:]
    assert re.search(r"Media region :\s+0 ,\s+\d+ , \+ good", out.stdout + out.stderr)


def test_pycdlib_and_our_reader_read_the_bytes_back(image):
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open(str(image))  # pycdlib checks the descriptors, path tables and directory records as it parses
    try:
        for f in _files():
            out = io.BytesIO()
            name = "/" + "/".join(f.parts) + (";1" if "." in f.parts[-1] else ".;1")
            iso.get_file_from_iso_fp(out, iso_path=name)
            assert out.getvalue() == f.open().read(), name
    finally:
        iso.close()
    store = IsoStore(image)
    try:
        assert len(list(store.walk())) == len(_files())
    finally:
        store.close()


@pytest.mark.parametrize(
    "parts",
    [("lower",), ("NAME.TOOLONG",), ("NINECHARS",), ("DIR-1", "A"), tuple("ABCDEFGHI")],
    ids=["lower-case", "extension", "name", "folder", "nine-levels"],
)
def test_names_level_1_cannot_hold_are_refused(parts):
    with pytest.raises(MediaError, match="ISO 9660"):
        IsoImage([VolumeFile(parts, 1, lambda: io.BytesIO(b"x"))], "BAD")


def test_a_file_that_shrank_is_named(tmp_path):
    files = [VolumeFile(("SHORT",), 10, lambda: io.BytesIO(b"12345"))]
    with pytest.raises(MediaError, match="shrank"):
        write_iso(build_iso(files, "SHRANK"), tmp_path / "x.iso")
    assert list(tmp_path.iterdir()) == []  # nothing left behind
