"""The catalog: Alembic-migrated schema, SQLite and PostgreSQL, and ``dicommedia catalog`` (SPEC 2.4)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread

from dicommedia.catalog import StudyOnVolume, VolumeEntry, open_catalog
from dicommedia.catalog.queries import SeriesOnVolume, catalog_url
from tests.network_fixtures import media_node, postgresql  # noqa: F401  (fixtures)


def dicommedia(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI as a user would."""
    return subprocess.run([sys.executable, "-m", "dicommedia", *args], capture_output=True, text=True, timeout=120)


def entry(path: str, fileset_id: str, *studies: tuple[str, str, str, int]) -> VolumeEntry:
    return VolumeEntry(
        path=path,
        fileset_id=fileset_id,
        label="DOE^JANE",
        media="cd-700",
        studies=[
            StudyOnVolume(uid, patient, "DOE^JANE", accession, "20240115", n, [SeriesOnVolume(uid + ".1", "CT", n)])
            for uid, patient, accession, n in studies
        ],
    )


def fill(location: str) -> None:
    catalog = open_catalog(location)
    catalog.record(entry("/discs/A.iso", "DISC_A", ("1.2.1", "P1", "ACC1", 10), ("1.2.2", "P1", "ACC2", 5)))
    catalog.record(entry("/discs/B.iso", "DISC_B", ("1.2.3", "P2", "ACC3", 7)))
    catalog.record(entry("/discs/B.iso", "DISC_B", ("1.2.3", "P2", "ACC3", 8)))  # written again: replaces
    catalog.close()


def test_sqlite_catalog_is_migrated_by_alembic_and_answers_which_disc(tmp_path: Path) -> None:
    db = tmp_path / "catalog.sqlite"
    fill(str(db))
    with sqlite3.connect(db) as con:
        assert con.execute("select version_num from alembic_version").fetchall() == [("0001",)]
    open_catalog(db).close()  # opening again migrates nothing and keeps the data
    result = dicommedia("catalog", "--catalog", str(db), "--study-uid", "1.2.3", "--json")
    assert result.returncode == 0, result.stderr
    (volume,) = json.loads(result.stdout)["volumes"]
    assert volume["path"] == "/discs/B.iso" and volume["fileset_id"] == "DISC_B" and volume["label"] == "DOE^JANE"
    assert [(s["study_instance_uid"], s["patient_id"], s["instances"]) for s in volume["studies"]] == [
        ("1.2.3", "P2", 8)
    ]
    assert volume["created"]
    by_patient = json.loads(dicommedia("catalog", "--catalog", str(db), "--patient-id", "P1", "--json").stdout)
    assert [s["study_instance_uid"] for v in by_patient["volumes"] for s in v["studies"]] == ["1.2.1", "1.2.2"]
    by_accession = json.loads(dicommedia("catalog", "--catalog", str(db), "--accession", "ACC2", "--json").stdout)
    assert [v["fileset_id"] for v in by_accession["volumes"]] == ["DISC_A"]
    everything = json.loads(dicommedia("catalog", "--catalog", str(db), "--json").stdout)
    assert [v["fileset_id"] for v in everything["volumes"]] == ["DISC_A", "DISC_B"]
    missing = dicommedia("catalog", "--catalog", str(db), "--study-uid", "9.9")
    assert missing.returncode == 1 and "no volume" in missing.stderr


def test_catalog_command_without_a_catalog_says_so(tmp_path: Path) -> None:
    result = dicommedia("catalog", "--catalog", str(tmp_path / "nothing.sqlite"))
    assert result.returncode == 1 and "no catalog" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "nothing.sqlite").exists()


def test_catalog_urls() -> None:
    assert catalog_url("postgresql://u@h:5/db") == "postgresql+psycopg://u@h:5/db"
    assert catalog_url("x.sqlite").startswith("sqlite:////") and catalog_url("x.sqlite").endswith("/x.sqlite")


def test_postgresql_catalog_shared_by_two_openers(postgresql: str) -> None:
    pytest.importorskip("psycopg")
    fill(postgresql)
    other_node = open_catalog(postgresql)  # a second node on the same database: schema already current
    other_node.record(entry("/node2/C.iso", "DISC_C", ("1.2.1", "P1", "ACC1", 10)))
    other_node.close()
    result = dicommedia("catalog", "--catalog", postgresql, "--study-uid", "1.2.1", "--json")
    assert result.returncode == 0, result.stderr
    assert sorted(v["path"] for v in json.loads(result.stdout)["volumes"]) == ["/discs/A.iso", "/node2/C.iso"]


def test_unreachable_postgresql_is_one_line(tmp_path: Path) -> None:
    from tests.conftest import free_port

    result = dicommedia("catalog", "--catalog", f"postgresql://x@127.0.0.1:{free_port()}/db")
    assert result.returncode == 1 and "cannot open the catalog" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_two_nodes_write_one_postgresql_catalog(tmp_path: Path, postgresql: str, media_node) -> None:
    from tests.network_fixtures import dcmtk
    from tests.synthetic import write_series

    study_uids = []
    nodes = []
    for n in range(2):
        paths = write_series(tmp_path / f"sent{n}", 3, patient_id=f"SHARED{n}")
        study_uids.append(dcmread(paths[0]).StudyInstanceUID)
        node = media_node("--study-idle", "1", "--catalog", postgresql, output=tmp_path / f"node{n}")
        sent = subprocess.run(
            [dcmtk("storescu"), "+sd", "+r", "127.0.0.1", str(node.port), str(tmp_path / f"sent{n}")],
            capture_output=True,
            text=True,
        )
        assert sent.returncode == 0, sent.stderr
        nodes.append(node)
    for node in nodes:
        node.wait_for(lambda node=node: node.events("disc"))
    result = dicommedia("catalog", "--catalog", postgresql, "--study-uid", *study_uids[:1], "--json")
    (volume,) = json.loads(result.stdout)["volumes"]
    assert volume["path"] == str(nodes[0].discs()[0])
    both = dicommedia(
        "catalog", "--catalog", postgresql, "--patient-id", "SHARED0", "--patient-id", "SHARED1", "--json"
    )
    assert sorted(v["path"] for v in json.loads(both.stdout)["volumes"]) == sorted(str(n.discs()[0]) for n in nodes)
