"""``--dry-run --new-uids``: per study, the new Study Instance UID and how many series and instances are renamed;
the import given the dry run's ``--uid-seed`` writes those very UIDs (DCMTK storescp receives them)."""

from __future__ import annotations

import json
from pathlib import Path

from pydicom.dataset import Dataset

from dicommedia.read.new_uids import NewUids, derive_uid
from tests.network_fixtures import storescp  # noqa: F401  (fixture)
from tests.test_new_uids import assert_renumbered, disc, outside, received  # noqa: F401  (fixtures)
from tests.test_reconcile import dicommedia


def test_dry_run_shows_the_new_study_uid_the_import_writes(disc: Path, outside: dict[str, Dataset], storescp):
    scp = storescp()
    args = ["read", str(disc), "--send", scp.address, "--new-uids"]
    dry = dicommedia(*args, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    seed = plan["uid_seed"]
    (study,) = plan["patients"][0]["studies"]
    old_study = next(iter(outside.values())).StudyInstanceUID
    assert study["study_instance_uid"] == old_study
    renamed = study["new_uids"]
    assert (renamed["series"], renamed["instances"]) == (2, 5)  # the CT series and the presentation state's
    assert renamed["study_instance_uid"] not in (old_study, "") and renamed["study_instance_uid"].startswith("2.25.")
    assert f"study {renamed['study_instance_uid']}, 2 series and 5 instances renamed" in dry.stderr
    assert f"--uid-seed {seed}" in dry.stderr
    assert scp.files() == []  # a dry run sends nothing

    again = dicommedia(*args, "--uid-seed", seed, "--dry-run", "--json")
    assert json.loads(again.stdout)["patients"][0]["studies"][0]["new_uids"] == renamed  # one seed, one mapping

    sent = dicommedia(*args, "--uid-seed", seed, "--json")
    assert sent.returncode == 0, sent.stderr
    got = received(scp.folder)
    assert {ds.StudyInstanceUID for ds in got.values()} == {renamed["study_instance_uid"]}
    assert_renumbered(got, outside)


def test_text_dry_run_without_new_uids_says_nothing_of_them(disc: Path, storescp):
    scp = storescp()
    dry = dicommedia("read", str(disc), "--send", scp.address, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert "uid_seed" not in plan and "new_uids" not in plan["patients"][0]["studies"][0]
    assert "new UIDs" not in dry.stderr


def test_uid_seed_needs_new_uids(disc: Path):
    result = dicommedia("read", str(disc), "--send", "A@127.0.0.1:1", "--uid-seed", "x", "--dry-run")
    assert result.returncode == 2 and "--uid-seed needs --new-uids" in result.stderr


def test_seeded_uids_are_stable_and_distinct():
    one = NewUids({"1.2.3", "1.2.4"}, "20260101000000", seed="s")
    assert one.new("1.2.3") == derive_uid("s", "1.2.3") != one.new("1.2.4")
    assert one.new("9.9") == "9.9"  # not of the set: unchanged
    other = NewUids({"1.2.3"}, "20260101000000")
    assert other.seed != "s" and other.new("1.2.3") != one.new("1.2.3")  # a random seed unless one is given
    assert all(len(derive_uid(str(n), "1.2.3")) <= 64 for n in range(100))
