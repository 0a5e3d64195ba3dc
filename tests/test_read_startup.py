"""Start-up of ``read``: listing a sound disc (national characters included) loads neither pydicom nor numpy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dicommedia.media import open_media
from tests.conftest import run

REPO = Path(__file__).resolve().parent.parent

# Runs the CLI in a fresh interpreter, then reports which heavy modules the command pulled in.
_PROBE = """
import sys
from dicommedia.cli import main
try:
    main()
except SystemExit:
    pass
heavy = [m for m in ("pydicom", "numpy", "pynetdicom", "pycdlib", "PIL") if m in sys.modules]
print("LOADED", heavy, file=sys.stderr)
"""


@pytest.fixture(scope="module")
def small_iso(tmp_path_factory) -> Path:
    """``dicommedia create samples``: two patients, one with an ISO_IR 100 name and one with an ISO_IR 192 name."""
    iso = tmp_path_factory.mktemp("startup") / "small.iso"
    done = run([sys.executable, "-m", "dicommedia", "create", str(REPO / "samples"), "-o", str(iso)], cwd=REPO)
    assert done.returncode == 0, done.stderr
    return iso


def _probe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=False, timeout=60, cwd=REPO
    )


@pytest.mark.parametrize("extra", [(), ("--json",)])
def test_listing_loads_no_pydicom_nor_numpy(small_iso: Path, extra: tuple[str, ...]):
    done = _probe("read", str(small_iso), *extra)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stderr, done.stderr
    if extra:
        assert json.loads(done.stdout)["instances"] == 9
    else:
        assert "9 instances" in done.stdout


def test_plain_reader_reads_national_names_as_pydicom_does(small_iso: Path):
    full, quick = open_media(small_iso), open_media(small_iso, plain=True)
    assert type(quick.directory).__name__ == "PlainDirectory"
    keys = ("file_id", "patient_id", "patient_name", "study_description", "series_number", "sop_instance_uid")
    listed = [[tuple(getattr(f, k) for k in keys) for f in view.files()] for view in (quick, full)]
    assert listed[0] == listed[1]
    assert {f.patient_name for f in quick.files()} == {"MÜLLER^JÜRGEN", "山田^太郎"}
