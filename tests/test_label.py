"""The disc label (issue 12): PDI label text as JSON and a printable PDF, per volume, disc n of m when spanned."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from PIL import ImageChops

from dicommedia.writers.label import DiscLabel, LabelPatient, person_name, render_label
from tests.conftest import run
from tests.synthetic import today, write_series


def _dicommedia(*args: str) -> subprocess.CompletedProcess:
    proc = run([sys.executable, "-m", "dicommedia", *args])
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_create_label_json_and_pdf(tmp_path):
    write_series(tmp_path / "in" / "a", 2, patient_id="P1", patient_name="DOE^JANE")
    write_series(tmp_path / "in" / "b", 2, patient_id="P2", patient_name="ROE^RICHARD")
    iso = tmp_path / "disc.iso"
    proc = _dicommedia("create", str(tmp_path / "in"), "-o", str(iso), "--label", "--fileset-id", "LABELME", "--json")
    (volume,) = json.loads(proc.stdout)["volumes"]
    json_path, pdf_path = tmp_path / "disc.label.json", tmp_path / "disc.label.pdf"
    assert volume["label_files"] == [str(json_path), str(pdf_path)]
    label = json.loads(json_path.read_text(encoding="utf-8"))
    assert label["content"] == "DICOM PLUS WEB"  # README.TXT and INDEX.HTM are on the disc
    assert label["fileset_id"] == "LABELME" and (label["disc"], label["discs"]) == (1, 1)
    assert label["created"] == f"{today()[:4]}-{today()[4:6]}-{today()[6:]}"
    assert [(p["name"], p["patient_id"]) for p in label["patients"]] == [("DOE, JANE", "P1"), ("ROE, RICHARD", "P2")]
    assert all(p["study_dates"] == ["2024-01-15"] and p["birth_date"] == "1970-01-01" for p in label["patients"])
    assert label["lines"][0] == "DICOM PLUS WEB" and "File-set LABELME" in label["lines"]
    assert not any(line.startswith("Disc ") for line in label["lines"])
    # A one-page PDF the size of a 120 mm disc (340.16 pt), holding the 300 dpi drawing.
    pdf = pdf_path.read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page\r") <= 1
    box = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert box and abs(float(box.group(1)) - 340.16) < 0.1 and box.group(1) == box.group(2)
    assert re.search(rb"/Width 1417\b", pdf) and re.search(rb"/Height 1417\b", pdf)
    assert not list(tmp_path.glob(".*"))  # no temporaries left


def test_dicom_only_and_spanned_labels(tmp_path, monkeypatch):
    from dicommedia import create as creator
    from dicommedia.profile import load_profile

    for n in range(3):
        write_series(tmp_path / "in" / f"s{n}", 4, rows=512, cols=512, study_uid="1.2.3.4", patient_id="SPAN")
    monkeypatch.setitem(creator.MEDIA_CAPACITY, "cd-650", 3 * 1024 * 1024)
    options = creator.CreateOptions(
        inputs=[str(tmp_path / "in")],
        output=tmp_path / "set.iso",
        profile=load_profile("STD-GEN-CD"),
        media="cd-650",
        fileset_id="SPANSET",
        span=True,
        ihe_pdi=False,
        label=True,
        jobs=1,
    )
    result = creator.create_fileset(options)
    count = len(result.volumes)
    assert count >= 2
    for n, vol in enumerate(result.volumes, 1):
        label = json.loads(Path(vol.label_files[0]).read_text(encoding="utf-8"))
        assert (label["disc"], label["discs"]) == (n, count)
        assert label["content"] == "DICOM ONLY" and label["fileset_id"] == vol.fileset_id
        assert f"Disc {n} of {count}" in label["lines"]
        assert Path(vol.label_files[1]).read_bytes().startswith(b"%PDF-")
        assert Path(vol.label_files[0]).name == Path(vol.path).stem + ".label.json"


def _label(**changes) -> DiscLabel:
    fields = {
        "fileset_id": "X",
        "content": "DICOM ONLY",
        "created": "2024-01-02",
        "institution": "St. Elsewhere",
        "disc": 1,
        "discs": 1,
        "patients": (LabelPatient("DOE, JANE", "P1", "1970-01-01", ("2024-01-01",)),),
    }
    return DiscLabel(**{**fields, **changes})


def test_the_drawing_shows_the_text_where_it_belongs():
    """Changing the top text changes pixels above the hub only; the institution, pixels below it only."""
    base = render_label(_label())
    side = base.size[0]
    assert base.size == (1417, 1417)
    above, below = (0, 0, side, side * 33 // 100), (0, side * 67 // 100, side, side)
    web = ImageChops.difference(base, render_label(_label(content="DICOM PLUS WEB")))
    assert web.crop(above).getbbox() and not web.crop(below).getbbox()
    maker = ImageChops.difference(base, render_label(_label(institution="Other Hospital")))
    assert maker.crop(below).getbbox() and not maker.crop(above).getbbox()
    hub = base.crop((side * 40 // 100, side * 40 // 100, side * 60 // 100, side * 60 // 100))
    assert hub.getextrema() == ((255, 255), (255, 255), (255, 255))  # nothing printed on the hub


def test_many_patients_and_names():
    patients = tuple(LabelPatient(f"P{n}", str(n), "", ()) for n in range(5))
    lines = _label(patients=patients).top_lines()
    assert lines[-1] == "and 2 more patient(s)" and "Study date unknown" in lines
    assert person_name("DOE^JANE^^DR") == "DOE, JANE"
    assert person_name("山田^太郎=やまだ^たろう") == "山田 太郎"
    assert person_name("") == "(no name)"
    render_label(_label(patients=patients))  # long content still fits the disc
