"""Every real DICOM file other packages ship, through `create --skip-invalid` under STD-GEN-CD and AUG-GEN-DRS-CD.

The corpus: pydicom's bundled test data (test files, character sets, palettes), pydicom-data's and deid-data's files
(several vendors, every encoding), pynetdicom's test files and the examples Debian's gdcm and dicom3tools ship.
Add folders of your own (another toolkit's test data, say) with DICOMMEDIA_CORPUS=/a:/b, separated as PATH is.
Judged on each file: a left-out input has a cause in words (no Python exception name), a written object has no
dciodvfy error its input did not have, and decoded pixels equal the input's (nothing is lossy-compressed here).
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread

from dicommedia.part10.meta import without_stray_meta
from tests.conftest import require_tool, run

PROFILES = ["STD-GEN-CD", "AUG-GEN-DRS-CD"]
_EXCEPTION_NAME = re.compile(r"\b[A-Z]\w*(Error|Exception|Warning)\b|Traceback")
_DEFLATED = "1.2.840.10008.1.2.1.99"


def _roots() -> list[Path]:
    """Folders of real files shipped by installed packages (those not installed are left out)."""
    import pydicom.data

    roots = [Path(pydicom.data.__file__).parent / name for name in ("test_files", "charset_files", "palettes")]
    for module, sub in (("data_store", "data"), ("deid_data", "data"), ("pynetdicom", "tests/dicom_files")):
        try:
            roots.append(Path(__import__(module).__file__).parent / sub)
        except ImportError:
            continue
    roots += [Path("/usr/share/doc/libgdcm3.0/examples"), Path("/usr/share/doc/dicom3tools/examples")]
    # More of your own (e.g. another toolkit's test data), separated as PATH is: DICOMMEDIA_CORPUS=/a:/b
    roots += [Path(folder) for folder in os.environ.get("DICOMMEDIA_CORPUS", "").split(os.pathsep) if folder]
    return [r for r in roots if r.is_dir()]


def corpus() -> list[Path]:
    """Every file of the corpus (package code left aside)."""
    return sorted(p for root in _roots() for p in root.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc"))


def _uid(path: Path) -> str | None:
    try:
        return str(dcmread(path, stop_before_pixels=True, force=True).get("SOPInstanceUID", "")) or None
    except Exception:  # not DICOM at all: the creator says why
        return None


def _batches(files: list[Path]) -> list[list[Path]]:
    """Groups in which no SOP Instance UID repeats, so each written object maps back to one input."""
    batches: list[list[Path]] = []
    used: list[set[str]] = []
    for path in files:
        uid = _uid(path)
        for batch, uids in zip(batches, used, strict=True):
            if uid is None or uid not in uids:
                batch.append(path)
                if uid:
                    uids.add(uid)
                break
        else:
            batches.append([path])
            used.append({uid} if uid else set())
    return batches


def _dciodvfy_errors(path: Path) -> set[str]:
    proc = run([require_tool("dciodvfy"), "-new", str(path)])
    return {_normal(line) for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")}


def _normal(line: str) -> str:
    """An error line without the parts that name where in the file it was met."""
    return re.sub(r"\s+", " ", line).strip()


@functools.cache
def _baseline(path: Path, tmp: Path) -> set[str]:
    """dciodvfy's errors on an input; a deflated input (which dciodvfy cannot read) is inflated by DCMTK first, and
    one that repeats File Meta elements in its data set (where dciodvfy stops reading) is judged without them."""
    try:
        syntax = str(dcmread(path, stop_before_pixels=True).file_meta.get("TransferSyntaxUID", ""))
    except Exception:
        syntax = ""
    if syntax == _DEFLATED:
        inflated = tmp / f"inflated-{abs(hash(path))}.dcm"
        subprocess.run([require_tool("dcmconv"), "+te", str(path), str(inflated)], check=True)
        return _dciodvfy_errors(inflated)
    with path.open("rb") as fp:
        mended = without_stray_meta(fp)
    if mended is not None:  # dciodvfy stops at File Meta elements repeated in the data set: judge the rest
        path = tmp / f"mended-{abs(hash(path))}.dcm"
        path.write_bytes(mended.getvalue())
    return _dciodvfy_errors(path)


def _mirrored(error: str, before: set[str]) -> bool:
    """An error that only repeats one the input already has: on the File Meta, whose UIDs must be the data
    set's (PS3.10 7.1); or on a private creator the input already broke, now padded to even length (PS3.5 7.1.1)."""
    echo = error.replace("MediaStorageSOPInstanceUID(0002,0003)", "SOPInstanceUID(0008,0018)")
    echo = echo.replace("MediaStorageSOPClassUID(0002,0002)", "SOPClassUID(0008,0016)")
    if echo != error:
        return echo in before
    creator = re.match(r"Error - </\((\w{4}),(00\w\w)\)", error)
    return bool(creator) and any(f"({creator[1]},{creator[2]})> - Private creator is not LO VR" in b for b in before)


def _pixels(path: Path) -> np.ndarray | None:
    try:
        return dcmread(path).pixel_array
    except Exception:  # no pixel data, or a decoder this machine lacks: nothing to compare
        return None


@pytest.fixture(scope="module")
def corpus_runs(tmp_path_factory) -> dict[str, list[tuple[list[Path], dict, Path]]]:
    """Each profile's create runs over the corpus: (inputs, --json summary, output folder) per batch."""
    require_tool("dciodvfy")
    files = corpus()
    assert len(files) > 150, "the corpus is smaller than pydicom's bundled files alone"
    runs: dict[str, list] = defaultdict(list)
    for profile in PROFILES:
        for number, batch in enumerate(_batches(files)):
            out = tmp_path_factory.mktemp(f"{profile}-{number}") / "out"
            cmd = [sys.executable, "-m", "dicommedia", "create", *map(str, batch), "-o", str(out)]
            proc = run([*cmd, "--format", "dir", "-p", profile, "--skip-invalid", "--json", "-j", "2"])
            assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
            assert proc.returncode == 0, proc.stderr
            runs[profile].append((batch, json.loads(proc.stdout), out))
    return runs


@pytest.mark.interop
@pytest.mark.parametrize("profile", PROFILES)
def test_every_left_out_input_has_a_cause_in_words(corpus_runs, profile):
    reasons = [(s["path"], s["reason"]) for _, summary, _ in corpus_runs[profile] for s in summary["skipped"]]
    bad = [f"{p}: {r}" for p, r in reasons if _EXCEPTION_NAME.search(r) or "\n" in r or not r.strip()]
    assert bad == [], "\n".join(bad)
    written = sum(v["instances"] for _, summary, _ in corpus_runs[profile] for v in summary["volumes"])
    assert written > 150  # most of the corpus goes on the media


@pytest.mark.interop
@pytest.mark.parametrize("profile", PROFILES)
def test_no_object_gains_dciodvfy_errors_and_pixels_stay_equal(corpus_runs, profile, tmp_path_factory):
    pairs = []
    for batch, _, out in corpus_runs[profile]:
        by_uid = {_uid(p): p for p in batch}
        for written in sorted((out / "DICOM").rglob("*")):
            source = by_uid.get(_uid(written)) if written.is_file() else None
            if source is not None:  # instances of re-mastered DICOMDIRs are judged as their own files
                pairs.append((source, written))
    assert len(pairs) > 150

    def judge(pair: tuple[Path, Path]) -> list[str]:
        source, written = pair
        before, after = _baseline(source, tmp_path_factory.getbasetemp()), _dciodvfy_errors(written)
        found = [f"{source.name}: new dciodvfy {e}" for e in sorted(after - before) if not _mirrored(e, before)]
        wanted, got = _pixels(source), _pixels(written)
        if wanted is not None and (got is None or got.shape != wanted.shape or not np.array_equal(got, wanted)):
            found.append(f"{source.name}: pixels differ from the input's")
        return found

    with ThreadPoolExecutor(max_workers=2) as pool:
        problems = [p for found in pool.map(judge, pairs) for p in found]
    assert problems == [], "\n".join(problems)
