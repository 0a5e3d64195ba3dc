"""Damaged and hostile discs: every command ends in exit 0 or 1 with a cause in words, never a traceback.

Each disc is built here: a DCMTK file-set mastered by genisoimage, then its bytes edited in place (volume
descriptors, directory records, extents, sizes), or its DICOMDIR replaced by a crafted one. ``read``,
``read --json``, ``read --extract`` and ``validate --json`` run as subprocesses under a 2 GiB address-space limit.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import crafted
from tests.crafted import SECTOR, find, set_extent, set_flags, set_size
from tests.media_fixtures import dcmtk_disc, genisoimage

IMAGES = [("DICOM", "PID1", "ST1", "SE1", f"IM{i}") for i in (1, 2, 3)]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, bytes]:
    """A clean disc folder and its ISO image bytes."""
    tmp = tmp_path_factory.mktemp("base")
    folder = dcmtk_disc(tmp, count=3)
    iso = genisoimage(folder, tmp / "base.iso", "TESTSET")
    return folder, iso.read_bytes()


def _all_images(image: bytearray, edit: Callable[[bytearray, crafted.IsoRecord], None]) -> None:
    for path in IMAGES:
        edit(image, find(image, *path))


def _root(image: bytearray) -> crafted.IsoRecord:
    return crafted.parse_record(image, crafted.root_record_offset(image))


def _terminator_gone(image: bytearray) -> None:
    for sector in range(17, 32):
        at = sector * SECTOR
        if image[at] == 255 and image[at + 1 : at + 6] == b"CD001":
            image[at : at + SECTOR] = b"\0" * SECTOR
            return


def _path_tables_garbage(image: bytearray) -> None:
    pvd = crafted.pvd_offset(image)
    for field in (140, 148):
        (sector,) = struct.unpack_from("<I" if field == 140 else ">I", image, pvd + field)
        image[sector * SECTOR : sector * SECTOR + 64] = bytes(range(64))


def _record_lengths_broken(image: bytearray) -> None:
    record = find(image, "DICOM", "PID1", "ST1", "SE1", "IM1")
    image[record.at + 32] = 250  # name length past the record's end


def _truncate_inside(image: bytearray, *path: str) -> None:
    record = find(image, *path)
    del image[record.extent * SECTOR + 40 :]


ISO_EDITS: dict[str, Callable[[bytearray], None]] = {
    "root-size-ffffffff": lambda im: set_size(im, _root(im), 0xFFFFFFFF),
    "dicomdir-size-ffffffff": lambda im: set_size(im, find(im, "DICOMDIR"), 0xFFFFFFFF),
    "file-sizes-ffffffff": lambda im: _all_images(im, lambda i, r: set_size(i, r, 0xFFFFFFFF)),
    "directory-size-ffffffff": lambda im: set_size(im, find(im, "DICOM"), 0xFFFFFFFF),
    "directory-points-at-root": lambda im: set_extent(im, find(im, "DICOM"), _root(im).extent),
    "directory-points-at-parent": lambda im: set_extent(
        im, find(im, "DICOM", "PID1", "ST1", "SE1"), find(im, "DICOM", "PID1").extent
    ),
    "dicomdir-directory-flag": lambda im: set_flags(im, find(im, "DICOMDIR"), 2),
    "image-ends-inside-a-directory": lambda im: _truncate_inside(im, "DICOM", "PID1", "ST1"),
    "image-ends-inside-the-dicomdir": lambda im: _truncate_inside(im, "DICOMDIR"),
    "image-ends-after-the-descriptors": lambda im: im.__delitem__(slice(18 * SECTOR, None)),
    "no-descriptor-terminator": _terminator_gone,
    "logical-block-512": lambda im: im.__setitem__(
        slice(crafted.pvd_offset(im) + 128, crafted.pvd_offset(im) + 132), b"\x00\x02\x02\x00"
    ),
    "logical-block-0": lambda im: im.__setitem__(
        slice(crafted.pvd_offset(im) + 128, crafted.pvd_offset(im) + 132), b"\x00\x00\x00\x00"
    ),
    "path-tables-garbage": _path_tables_garbage,
    "same-extent": lambda im: _all_images(im, lambda i, r: set_extent(i, r, find(i, *IMAGES[0]).extent)),
    "extents-on-the-descriptors": lambda im: _all_images(im, lambda i, r: set_extent(i, r, 16)),
    "extents-past-the-end": lambda im: _all_images(im, lambda i, r: set_extent(i, r, 0x7FFFFFFF)),
    "dicomdir-extent-zero": lambda im: set_extent(im, find(im, "DICOMDIR"), 0),
    "scattered-extents": lambda im: _all_images(im, lambda i, r: set_flags(i, r, 0x80)),
    "interleaved": lambda im: _all_images(im, lambda i, r: i.__setitem__(r.at + 26, 1)),
    "record-name-past-its-end": _record_lengths_broken,
    "zeroed-pvd": lambda im: im.__setitem__(
        slice(crafted.pvd_offset(im) + 6, crafted.pvd_offset(im) + SECTOR), b"\0" * (SECTOR - 6)
    ),
}


def snapshot(root: Path) -> dict[Path, tuple[int, int]]:
    """Size and modification time of every file (a sparse 4 GiB file is not read)."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def check(outcomes: list[crafted.Outcome], before: dict[Path, tuple[int, int]], work: Path) -> None:
    """SPEC 2 for every run; nothing written outside the extraction folder, no .part left, inputs unchanged."""
    for outcome in outcomes:
        assert outcome.problems() == [], (outcome.args, outcome.stdout[-2000:], outcome.stderr[-2000:])
    out = work / "out"
    after = snapshot(work)
    assert [p for p in after if p not in before and not p.is_relative_to(out)] == []
    assert [p for p in after if p.name.endswith(".part")] == []
    assert {p: after.get(p) for p in before} == before


def run_all(media: Path, work: Path) -> list[crafted.Outcome]:
    """The four commands; asserts what check() asserts."""
    before = snapshot(work)
    outcomes = [crafted.run_command(args) for args in crafted.the_four_commands(media, work / "out")]
    check(outcomes, before, work)
    return outcomes


@pytest.mark.parametrize("name", sorted(ISO_EDITS))
def test_crafted_iso(name: str, base: tuple[Path, bytes], tmp_path: Path):
    image = bytearray(base[1])
    ISO_EDITS[name](image)
    work = tmp_path / "work"
    work.mkdir()
    iso = work / f"{name}.iso"
    iso.write_bytes(bytes(image))
    report = json.loads(run_all(iso, work)[3].stdout)
    codes = {e["code"] for e in report["errors"]}
    assert report["valid"] is False and codes, report
    # Damage to the volume itself is iso-structure; what only misplaces files is found at the file level.
    if name not in ("dicomdir-extent-zero", "extents-on-the-descriptors", "same-extent"):
        assert "iso-structure" in codes, report


DICOMDIRS: dict[str, Callable[[], bytes]] = {
    "3000-nested-records": lambda: crafted.nested_records_dicomdir(3000),
    "3000-nested-sequences": lambda: crafted.nested_sequences_dicomdir(3000),
    "record-sequence-not-a-sequence": crafted.dicomdir_not_a_sequence,
    "garbage-after-dicm": lambda: crafted.file_meta() + bytes(range(256)) * 8,
    "only-the-prefix": lambda: b"\0" * 128 + b"DICM",
}


def _dicomdir_edits(original: bytes) -> dict[str, bytes]:
    """Damage to a real DICOMDIR: lengths set to 0xFFFFFFFF, odd, zero; truncation; a loop in the offsets."""
    data = bytearray(original)
    sequence = data.index(b"\x04\x00\x20\x12SQ")
    out = {}
    for label, value in (("ffffffff", 0xFFFFFFFF), ("odd", 0x7FFF_FFF1), ("zero", 0)):
        edited = bytearray(data)
        struct.pack_into("<I", edited, sequence + 8, value)
        out[f"sequence-length-{label}"] = bytes(edited)
    first_item = data.index(b"\xfe\xff\x00\xe0", sequence)
    edited = bytearray(data)
    struct.pack_into("<I", edited, first_item + 4, 0xFFFFFFF0)
    out["item-length-huge"] = bytes(edited)
    out["truncated-in-a-record"] = bytes(data[: first_item + 100])
    edited = bytearray(data)
    lower = edited.index(b"\x04\x00\x20\x14UL\x04\x00", first_item)
    struct.pack_into("<I", edited, lower + 8, first_item)  # the first record's lower level is itself
    out["lower-level-loops-to-itself"] = bytes(edited)
    return out


def _media_with(base_folder: Path, work: Path, dicomdir: bytes, as_iso: bool) -> Path:
    folder = work / "disc"
    shutil.copytree(base_folder, folder)
    (folder / "DICOMDIR").write_bytes(dicomdir)
    return genisoimage(folder, work / "disc.iso", "TESTSET") if as_iso else folder


@pytest.mark.parametrize("as_iso", [True, False], ids=["iso", "folder"])
@pytest.mark.parametrize("name", sorted(DICOMDIRS) + ["edits"])
def test_crafted_dicomdir(name: str, as_iso: bool, base: tuple[Path, bytes], tmp_path: Path):
    cases = _dicomdir_edits((base[0] / "DICOMDIR").read_bytes()) if name == "edits" else {name: DICOMDIRS[name]()}
    for label, dicomdir in cases.items():
        work = tmp_path / label
        work.mkdir()
        media = _media_with(base[0], work, dicomdir, as_iso)
        outcomes = run_all(media, work)
        listing = json.loads(outcomes[1].stdout)
        if "error" not in listing:  # the three files on the disc are still found (by scanning, or as forgotten)
            assert listing["instances"] == 3, (label, outcomes[1].stderr)


def _sparse_dicomdir(folder: Path) -> None:
    with open(folder / "DICOMDIR", "r+b") as fh:
        fh.truncate(4 << 30)  # 4 GiB declared by the file system, nothing allocated


def _fifo_and_loop(folder: Path) -> None:
    os.mkfifo(folder / "DICOM" / "PID1" / "PIPE")
    (folder / "DICOM" / "PID1" / "LOOP").symlink_to("..")


FOLDER_EDITS: dict[str, Callable[[Path], None]] = {
    "sparse-4gib-dicomdir": _sparse_dicomdir,
    "fifo-and-link-loop": _fifo_and_loop,
}


@pytest.mark.parametrize("name", sorted(FOLDER_EDITS))
def test_crafted_folder(name: str, base: tuple[Path, bytes], tmp_path: Path):
    folder = tmp_path / "disc"
    shutil.copytree(base[0], folder)
    FOLDER_EDITS[name](folder)
    outcomes = run_all(folder, tmp_path)
    assert json.loads(outcomes[1].stdout)["instances"] == 3
