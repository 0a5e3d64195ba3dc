"""``dicommedia create --from AET@HOST:PORT``: C-FIND then C-GET (or C-MOVE) from a real PACS, Orthanc."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread

from dicommedia.media import open_media
from tests.network_fixtures import orthanc_qr, upload  # noqa: F401  (fixtures)
from tests.synthetic import write_series

pytestmark = pytest.mark.interop


def dicommedia(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI as a user would."""
    return subprocess.run([sys.executable, "-m", "dicommedia", *args], capture_output=True, text=True, timeout=300)


def uids_on(disc: Path) -> set[str]:
    with open_media(disc) as view:
        return {f.sop_instance_uid for f in view.files()}


@pytest.fixture(scope="module")
def pacs(orthanc_qr, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Orthanc holding two studies of one patient (and one of another)."""
    folder = tmp_path_factory.mktemp("pacs")
    studies = {
        "wanted": write_series(folder / "wanted", 12, patient_id="PULL1"),
        "other": write_series(folder / "other", 3, patient_id="PULL1"),
        "stranger": write_series(folder / "stranger", 2, patient_id="NOBODY"),
    }
    for paths in studies.values():
        upload(orthanc_qr, paths)
    return orthanc_qr, {k: {dcmread(p).SOPInstanceUID for p in v} for k, v in studies.items()}, studies


def test_create_from_orthanc_by_c_get_makes_a_valid_disc(tmp_path: Path, pacs) -> None:
    orthanc, uids, studies = pacs
    study_uid = dcmread(studies["wanted"][0]).StudyInstanceUID
    out = tmp_path / "pulled.iso"
    result = dicommedia("create", "--from", orthanc.address, "--study-uid", study_uid, "-o", str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["volumes"][0]["instances"] == 12
    assert uids_on(out) == uids["wanted"]
    check = dicommedia("validate", str(out), "--json")
    assert check.returncode == 0 and json.loads(check.stdout)["valid"], check.stdout


def test_create_from_by_patient_id_takes_every_study_of_the_patient(tmp_path: Path, pacs) -> None:
    orthanc, uids, _ = pacs
    out = tmp_path / "patient.iso"
    result = dicommedia("create", "--from", orthanc.address, "--patient-id", "PULL1", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert uids_on(out) == uids["wanted"] | uids["other"]


def test_create_from_by_c_move_to_our_own_scp(tmp_path: Path, pacs) -> None:
    orthanc, uids, studies = pacs
    study_uid = dcmread(studies["other"][0]).StudyInstanceUID
    out = tmp_path / "moved.iso"
    result = dicommedia(
        "create", "--from", orthanc.address, "--study-uid", study_uid, "--move-dest", "MOVEDEST",
        "--move-port", str(orthanc.move_port), "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert uids_on(out) == uids["other"]


def test_create_from_with_nothing_matching_or_a_bad_address_says_so(tmp_path: Path, pacs) -> None:
    orthanc, _, _ = pacs
    out = tmp_path / "none.iso"
    result = dicommedia("create", "--from", orthanc.address, "--accession", "NO-SUCH", "-o", str(out))
    assert result.returncode == 1 and "no study matches" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
    bad = dicommedia("create", "--from", "ORTHANC-127.0.0.1", "--accession", "X", "-o", str(out))
    assert bad.returncode == 2 and "AET@HOST:PORT" in bad.stderr
    dead = dicommedia("create", "--from", "X@127.0.0.1:1", "--accession", "X", "-o", str(out))
    assert dead.returncode == 1 and "Traceback" not in dead.stderr and "127.0.0.1" in dead.stderr
