"""Start-up of ``read``: listing a sound disc (national characters included) loads neither pydicom nor numpy; a
plain ``--send`` loads only what sending needs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dicommedia.media import open_media
from dicommedia.media.dicomdir import read_dicomdir
from dicommedia.media.plain_dicomdir import read_plain_dicomdir
from tests.conftest import run
from tests.network_fixtures import storescp  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parent.parent

# Runs the CLI in a fresh interpreter, then reports which heavy modules the command pulled in.
_PROBE = """
import sys
from dicommedia.cli import run
code = run()
heavy = [m for m in ("pydicom", "numpy", "pynetdicom", "pycdlib", "PIL") if m in sys.modules]
print("LOADED", heavy, file=sys.stderr)
print("MODULES", sorted(m for m in sys.modules if m.startswith("dicommedia.")), file=sys.stderr)
sys.exit(code)
"""

# What a plain C-STORE import of an ISO 9660 disc needs no part of: each is loaded only by the case that uses it.
_NOT_TO_SEND = {
    "dicommedia.media.udf": "a UDF volume",
    "dicommedia.media.dicomdir": "a DICOMDIR the plain reader refuses (pydicom)",
    "dicommedia.read.listing": "the listing",
    "dicommedia.read.reconcile": "--patient-map, --worklist, --set",
    "dicommedia.read.coerce": "a coercion",
    "dicommedia.read.readahead": "a reconciled import (its reader process)",
    "dicommedia.read.new_uids": "--new-uids",
    "dicommedia.read.existing": "--skip-existing",
    "dicommedia.read.stow": "--stow",
    "dicommedia.read.tls": "--tls",
}


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


@pytest.mark.parametrize(
    "old, new, plain",
    [
        (b"", b"", True),
        (b"ISO_IR 192", b"ISO_IR 193", False),  # a character set the plain reader does not know: pydicom's turn
        (b"ISO_IR 100", b"ISO_IR 6  ", False),  # Latin-1 bytes under the default repertoire: not plain text
        (b"ISO_IR 192", b"ISO_IR 100", True),  # UTF-8 bytes read as Latin-1: what pydicom reads too
    ],
)
def test_plain_reader_character_sets(small_iso: Path, old: bytes, new: bytes, plain: bool):
    with open_media(small_iso) as view, view.store.open(view.dicomdir_file) as fp:
        data = fp.read().replace(old, new) if old else fp.read()
    directory = read_plain_dicomdir(data)
    assert (directory is not None) == plain
    tolerant = read_dicomdir(io.BytesIO(data), "DICOMDIR")  # pydicom's reading of the same bytes
    if directory is not None:
        names = [rec.key("PatientName") for rec in directory.records if rec.record_type == "PATIENT"]
        assert names == [rec.key("PatientName") for rec in tolerant.records if rec.record_type == "PATIENT"]
        assert ("山田^太郎" in names) == (not old)


def test_plain_send_loads_only_what_sending_needs(small_iso: Path, storescp):  # noqa: F811
    peer = storescp()
    done = _probe("read", str(small_iso), "--send", peer.address, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sent"] == 9
    assert "LOADED []" in done.stderr, done.stderr
    loaded = set(json.loads(done.stderr.split("MODULES ", 1)[1].splitlines()[0].replace("'", '"')))
    assert {name: why for name, why in _NOT_TO_SEND.items() if name in loaded} == {}
