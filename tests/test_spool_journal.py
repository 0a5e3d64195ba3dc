"""The spool's journal (station/spool.py): whole records become instances, a torn last record never does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from dicommedia.station.spool import Spool
from tests.network_fixtures import media_node  # noqa: F401  (fixture)
from tests.synthetic import write_series


def journal_of(spool: Spool, instances: list[tuple[str, str, bytes]]) -> tuple[Path, list[int]]:
    """A journal holding these (group, uid, data) records, closed; the offset where each record ends."""
    journal = spool.open_journal("test")
    ends = []
    for group, uid, data in instances:
        journal.begin()
        journal.write(data[: len(data) // 2])
        journal.write(data[len(data) // 2 :])
        journal.commit(group, uid)
        ends.append(journal.end)
    journal.close()
    return journal.path, ends


def incoming(root: Path) -> dict[str, bytes]:
    return {f"{p.parent.name}/{p.name}": p.read_bytes() for p in (root / "incoming").rglob("*.dcm")}


@pytest.fixture
def records() -> list[tuple[str, str, bytes]]:
    return [(f"s-1.2.{n % 2}", f"1.2.3.{n}", os.urandom(1000 + 5000 * n)) for n in range(3)]


def test_whole_journal_becomes_files_on_restart(tmp_path: Path, records) -> None:
    path, _ = journal_of(Spool(tmp_path), records)
    Spool(tmp_path)  # a restart drains what a crash left
    assert incoming(tmp_path) == {f"{g}/{u}.dcm": d for g, u, d in records}
    assert not path.exists() and not list((tmp_path / "tmp").iterdir())


@pytest.mark.parametrize("cut", ["mid-data", "mid-header", "header-only", "flipped-byte", "zeros-after"])
def test_torn_last_record_is_dropped_never_served_half(tmp_path: Path, records, cut: str) -> None:
    path, ends = journal_of(Spool(tmp_path), records)
    size = ends[-1]
    with open(path, "r+b") as fh:
        if cut == "mid-data":
            fh.truncate(ends[1] + 32 + 3000)
        elif cut == "mid-header":
            fh.truncate(ends[1] + 10)
        elif cut == "header-only":  # the header reached the disc, the data did not (zeros where it should be)
            fh.seek(ends[1] + 40)
            fh.write(bytes(size - ends[1] - 40))
        elif cut == "flipped-byte":
            fh.seek(size - 100)
            byte = fh.read(1)
            fh.seek(size - 100)
            fh.write(bytes([byte[0] ^ 1]))
        else:  # a whole journal followed by preallocated or zeroed space
            fh.seek(size)
            fh.write(bytes(4096))
    Spool(tmp_path)
    kept = records if cut == "zeros-after" else records[:2]
    assert incoming(tmp_path) == {f"{g}/{u}.dcm": d for g, u, d in kept}
    assert not path.exists()


def test_discarded_record_leaves_nothing_behind(tmp_path: Path, records) -> None:
    spool = Spool(tmp_path)
    journal = spool.open_journal("test")
    group, uid, data = records[2]
    journal.begin()
    journal.write(data)
    journal.commit(group, uid)
    journal.begin()  # refused (cannot be parsed): its bytes, a record lookalike included, must go
    journal.write(data + b"DMJRNL01" + bytes(24))
    journal.discard()
    for group, uid, data in records[:1]:
        journal.begin()
        journal.write(data)
        journal.commit(group, uid)
    journal.close()
    assert journal.path.stat().st_size == journal.end
    Spool(tmp_path)
    assert incoming(tmp_path) == {f"{g}/{u}.dcm": d for g, u, d in (records[2], records[0])}


def test_length_beyond_the_file_is_not_read(tmp_path: Path, records) -> None:
    path, ends = journal_of(Spool(tmp_path), records[:1])
    with open(path, "r+b") as fh:  # a header claiming 2**60 bytes: bounded by the file, not allocated
        fh.seek(8)
        fh.write((1 << 60).to_bytes(8, "little"))
    Spool(tmp_path)
    assert incoming(tmp_path) == {}


def test_kill_9_mid_association_journal_drained_on_restart(tmp_path: Path, media_node) -> None:
    """Acknowledged on an association that never ended: the journal alone carries them to a disc."""
    from pydicom import dcmread

    from tests.test_serve import disc_uids, valid

    paths = write_series(tmp_path / "sent", 20)
    output = tmp_path / "discs"
    node = media_node("--study-idle", "3600", output=output)
    ae = AE("MODALITY")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="NODE")
    assert assoc.is_established
    acknowledged = []
    for path in paths[:12]:
        ds = dcmread(path)
        assert assoc.send_c_store(ds).Status == 0
        acknowledged.append(ds.SOPInstanceUID)
    (journal,) = (output / ".spool" / "journal").iterdir()  # still open: nothing in incoming yet
    assert not list((output / ".spool" / "incoming").rglob("*.dcm"))
    with open(journal, "ab") as fh:  # an instance being received when the node died
        fh.write(b"DMJRNL01" + bytes(300))
    node.kill()
    assoc.abort()
    restarted = media_node("--study-idle", "0.5", output=output)
    restarted.wait_for(lambda: restarted.events("disc"))
    (disc,) = restarted.discs()
    valid(disc)
    assert set().union(*disc_uids(disc).values()) == set(acknowledged)
    assert not list((output / ".spool" / "journal").iterdir())
