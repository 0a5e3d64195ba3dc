"""Seeded mutation fuzzing of ISO images and DICOMDIRs: every mutant read, extracted and validated cleanly.

The library's entry points run in one subprocess per corpus (under the 2 GiB address-space limit) for speed;
a sample of mutants also goes through the four CLI commands. Mutations: bit flips, byte runs, length fields set
to 0 / odd / 0xFFFFFFFF, truncation, splices, aimed at the descriptors, path tables, directories and DICOMDIR.
A failing case is rebuilt from its seed and number: ``python -m tests.fuzz_run KIND SEED N ...`` (see there).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import crafted
from tests.media_fixtures import dcmtk_disc, genisoimage

SEED = 20261204
CASES = {"iso": 300, "dicomdir": 300}  # about 10 s each on one core
CLI_SAMPLE = 4  # mutants per corpus through the four commands


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("fuzzbase")
    folder = dcmtk_disc(tmp, count=3)
    return folder, genisoimage(folder, tmp / "base.iso", "TESTSET")


@pytest.mark.parametrize("kind", sorted(CASES))
def test_mutants_through_the_library(kind: str, base: tuple[Path, Path], tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "tests.fuzz_run", kind, str(SEED), str(CASES[kind]), str(base[0]), str(base[1])]
        + [str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["ran"] == CASES[kind] and len(summary["kinds"]) == 5  # every kind of mutation was tried
    assert summary["broken"] == []


@pytest.mark.parametrize("kind", sorted(CASES))
def test_mutants_through_the_cli(kind: str, base: tuple[Path, Path], tmp_path: Path):
    folder, iso = base
    data = iso.read_bytes() if kind == "iso" else (folder / "DICOMDIR").read_bytes()
    fields, areas = (
        crafted.iso_fields(data) if kind == "iso" else (crafted.dicomdir_length_fields(data), [(128, len(data))])
    )
    for case in range(CLI_SAMPLE):
        mutation, mutant = crafted.mutate(data, random.Random(SEED + case), fields, areas)
        work = tmp_path / f"case{case}"
        work.mkdir()
        if kind == "iso":
            media = work / "m.iso"
            media.write_bytes(mutant)
        else:
            media = work / "disc"
            shutil.copytree(folder, media)
            (media / "DICOMDIR").write_bytes(mutant)
        for args in crafted.the_four_commands(media, work / "out"):
            outcome = crafted.run_command(args)
            assert outcome.problems() == [], (mutation, case, args, outcome.stdout[-1500:], outcome.stderr[-1500:])


def test_length_fields_are_found(base: tuple[Path, Path]):
    """The mutator aims at real length fields: every one it lists holds the length of what follows."""
    folder, iso = base
    data = (folder / "DICOMDIR").read_bytes()
    fields = crafted.dicomdir_length_fields(data)
    assert len(fields) > 50 and all(132 < at < len(data) for at in fields)
    extents, areas = crafted.iso_fields(iso.read_bytes())
    assert len(extents) > 20 and all(start < end for start, end in areas)
