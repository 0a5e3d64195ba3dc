"""IHE PDI web content as a patient or a doctor meets it: a disc extracted with osirrox, opened in headless Chromium.

The disc holds CT, MR, a multi-frame colour ultrasound, an SR and a PDF (pydicom's bundled files, a PDF made by
Pillow). Pages are checked with an XML parser, links against the ISO 9660 directory as isoinfo lists it, JPEGs by
their markers, the CT rendering against pydicom's own Modality LUT + VOI LUT.
"""

from __future__ import annotations

import json
import posixpath
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pydicom.data
import pytest
from PIL import Image, ImageDraw
from pydicom import dcmread
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from tests.conftest import require_tool, run
from tests.synthetic import image_dataset

XHTML = "{http://www.w3.org/1999/xhtml}"
DISC_FILES = ("CT_small.dcm", "MR_small.dcm", "examples_ybr_color.dcm", "test-SR.dcm", "examples_overlay.dcm")
SR_TEXT = "was detected."  # a TEXT content item of test-SR.dcm
PDF_TITLE = "discharge_letter"  # the pdf input names the document after its file


def _dicommedia(*args: str) -> object:
    proc = run([sys.executable, "-m", "dicommedia", *args], timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _make_pdf(path: Path) -> None:
    page = Image.new("RGB", (620, 877), "white")
    ImageDraw.Draw(page).text((60, 60), "Discharge letter: no fracture seen.", fill="black")
    page.save(path, "PDF")


def _extract(iso: Path, dest: Path) -> Path:
    proc = run([require_tool("xorriso"), "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(dest)])
    assert proc.returncode == 0, proc.stderr
    return dest


def _iso_names(iso: Path) -> set[str]:
    """Every file path of the image as ISO 9660 records it (isoinfo -f), version ';1' removed."""
    proc = run([require_tool("isoinfo"), "-f", "-i", str(iso)])
    assert proc.returncode == 0, proc.stderr
    return {line.strip().lstrip("/").split(";")[0] for line in proc.stdout.splitlines() if line.strip()}


def _chromium(*args: str, profile: Path) -> object:
    chromium = shutil.which("chromium") or require_tool("chromium")
    return run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--allow-file-access-from-files",
            f"--user-data-dir={profile}",
            *args,
        ],
        timeout=120,
    )


@pytest.fixture(scope="module")
def web_disc(tmp_path_factory, pydicom_files):
    """A disc with CT, MR, US multi-frame colour, SR, overlay MR and a PDF, written with --web all, extracted."""
    base = tmp_path_factory.mktemp("web")
    src = base / "in"
    src.mkdir()
    for name in DISC_FILES:
        shutil.copyfile(pydicom_files[name], src / name)
    _make_pdf(src / f"{PDF_TITLE}.pdf")
    iso = base / "disc.iso"
    proc = _dicommedia(
        "create",
        str(src),
        "-o",
        str(iso),
        "--web",
        "all",
        "--institution",
        "St Elsewhere Radiology",
        "--contact",
        "+1 555 0100",
        "--patient-name",
        "DOE^JANE",
        "--patient-id",
        "P1",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    return {"iso": iso, "root": _extract(iso, base / "x"), "summary": json.loads(proc.stdout), "base": base}


def _pages(root: Path) -> list[Path]:
    return sorted([root / "INDEX.HTM", *(root / "IHE_PDI").glob("*.HTM")])


def _parse(page: Path) -> ET.Element:
    return ET.parse(page).getroot()  # XHTML: a well-formed XML document, or this raises


def _links(page: Path, root: Path) -> list[tuple[str, str]]:
    """(attribute, target relative to the disc root) of every href and src of the page."""
    out = []
    folder = posixpath.dirname(page.relative_to(root).as_posix())
    for elem in _parse(page).iter():
        for attr in ("href", "src"):
            value = elem.get(attr)
            if value is not None:
                out.append((attr, posixpath.normpath(posixpath.join(folder, value))))
    return out


def _series_page(root: Path, modality: str) -> Path:
    for page in sorted((root / "IHE_PDI").glob("SE*.HTM")):
        heading = _parse(page).find(f".//{XHTML}h1")
        if heading is not None and f" {modality}" in "".join(heading.itertext()):
            return page
    raise AssertionError(f"no {modality} series page")


def _sof_markers(data: bytes) -> list[int]:
    """The start-of-frame markers of a JPEG (ITU T.81 B.1.1.3), walking its segments."""
    assert data[:2] == b"\xff\xd8", "not a JPEG (no SOI)"
    pos, found = 2, []
    while pos + 4 <= len(data):
        assert data[pos] == 0xFF, f"bad segment at {pos}"
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            found.append(marker)
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return found


def test_pages_are_xhtml_without_script_or_outside_resource(web_disc):
    root = web_disc["root"]
    pages = _pages(root)
    assert len(pages) >= 1 + 6 + 6 + 1  # index, a study and a series page per object, the SR page
    for page in pages:
        tree = _parse(page)
        assert tree.tag == f"{XHTML}html", page
        for elem in tree.iter():
            assert elem.tag.removeprefix(XHTML) not in ("script", "object", "embed", "applet", "iframe"), page
            assert not any(a.lower().startswith("on") for a in elem.attrib), (page, elem.attrib)
        for _, target in _links(page, root):
            assert ":" not in target and not target.startswith(("/", "..")), (page, target)
        assert "<script" not in page.read_text(encoding="utf-8").lower()
        assert "url(" not in page.read_text(encoding="utf-8")
    css = (root / "IHE_PDI" / "STYLE.CSS").read_text(encoding="ascii")
    assert "@media print" in css and "max-width" in css and "url(" not in css and "@import" not in css


def test_every_link_resolves_by_its_exact_iso_9660_name(web_disc):
    root = web_disc["root"]
    names = _iso_names(web_disc["iso"])
    checked = 0
    for page in _pages(root):
        for _, target in _links(page, root):
            assert target in names, f"{page.name}: {target} is not on the disc as ISO 9660 names it"
            assert (root / target).is_file(), target
            checked += 1
    assert checked > 20
    # every non-DICOM name is ISO 9660 8.3, upper case, outside DICOM/
    for name in names - {"DICOMDIR"}:
        *folders, leaf = name.split("/")
        if folders and folders[0] == "DICOM":
            continue
        assert all(len(f) <= 8 and f == f.upper() for f in folders), name
        stem, _, ext = leaf.partition(".")
        assert 1 <= len(stem) <= 8 and len(ext) <= 3 and leaf == leaf.upper(), name


def test_every_rendering_is_baseline_jpeg_inside_ihe_pdi(web_disc):
    root = web_disc["root"]
    images = {target for page in _pages(root) for attr, target in _links(page, root) if attr == "src"}
    assert len(images) >= 2 * 4 + 1  # full + thumbnail of CT, MR, overlay MR, US, and the US key-frame strip
    for target in images:
        assert target.startswith("IHE_PDI/") and target.endswith(".JPG"), target
        assert _sof_markers((root / target).read_bytes()) == [0xC0], f"{target} is not baseline (SOF0) JPEG"
    on_disc = [p for p in root.rglob("*") if p.suffix.upper() == ".JPG"]
    assert all(p.relative_to(root).parts[0] == "IHE_PDI" for p in on_disc)


def test_ct_rendering_matches_pydicom_window(web_disc, pydicom_files):
    root = web_disc["root"]
    page = _series_page(root, "CT")
    full = next(target for attr, target in _links(page, root) if attr == "src" and "/IM" in target)
    rendered = np.asarray(Image.open(root / full).convert("L"), dtype=np.float64)
    ds = dcmread(pydicom_files["CT_small.dcm"])
    expected = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds).astype(np.float64)
    assert rendered.shape == expected.shape
    correlation = np.corrcoef(rendered.ravel(), expected.ravel())[0, 1]
    assert correlation > 0.9, correlation


def test_mr_window_and_overlay_burned_in(web_disc, pydicom_files):
    root = web_disc["root"]
    ds = dcmread(pydicom_files["examples_overlay.dcm"])
    page = next(p for p in sorted((root / "IHE_PDI").glob("SE*.HTM")) if "MPR" in p.read_text(encoding="utf-8"))
    text = "".join(_parse(page).itertext())
    # the first window of the file is the one used, and named
    assert f"W {float(ds.WindowWidth[0]):g} / C {float(ds.WindowCenter[0]):g}" in text
    full = next(target for attr, target in _links(page, root) if attr == "src" and "/IM" in target)
    rendered = np.asarray(Image.open(root / full).convert("L"))
    overlay = ds.overlay_array(0x6000).astype(bool)
    # overlay pixels are burned in white: far brighter there than on average
    assert rendered[overlay].mean() > 200 > rendered[~overlay].mean()


def test_browser_shows_index_study_and_series_pages(web_disc, tmp_path):
    root = web_disc["root"]
    us_page = _series_page(root, "US")
    study = next(t for _, t in _links(us_page, root) if re.fullmatch(r"IHE_PDI/ST\d{6}\.HTM", t))
    shots = {}
    for name, page in (("index", root / "INDEX.HTM"), ("study", root / study), ("series", us_page)):
        shot = tmp_path / f"{name}.png"
        proc = _chromium("--window-size=1000,1400", f"--screenshot={shot}", page.as_uri(), profile=tmp_path / "p")
        assert shot.is_file(), proc.stderr
        shots[name] = np.asarray(Image.open(shot).convert("L"))
    # the series page shows the (mostly dark) ultrasound pictures; the index page is text on white
    assert (shots["series"] < 40).mean() > 0.05
    # the series thumbnail: text alone darkens about 2,000 pixels, the 160 x 120 picture adds over 15,000
    assert (shots["study"] < 40).sum() > 10_000
    assert (shots["index"] < 128).mean() > 0.005 and (shots["index"] > 250).mean() > 0.5
    dom = _chromium("--dump-dom", us_page.as_uri(), profile=tmp_path / "p").stdout
    assert "30 frames" in dom and "Key frames" in dom


def test_sr_text_on_a_page_and_pdf_linked_from_its_study(web_disc, tmp_path):
    root = web_disc["root"]
    sr_pages = list((root / "IHE_PDI").glob("SR*.HTM"))
    assert len(sr_pages) == 1
    dom = _chromium("--dump-dom", sr_pages[0].as_uri(), profile=tmp_path / "p").stdout
    assert SR_TEXT in dom and "Diameter" in dom and "Diagnosis" in dom
    study_pages = [p for p in (root / "IHE_PDI").glob("ST*.HTM") if "DOE, JANE" in p.read_text(encoding="utf-8")]
    assert len(study_pages) == 1
    pdf_links = [
        (elem.get("href"), "".join(elem.itertext()))
        for elem in _parse(study_pages[0]).iter(f"{XHTML}a")
        if elem.get("href", "").endswith(".PDF")
    ]
    assert len(pdf_links) == 1 and PDF_TITLE in pdf_links[0][1]
    pdf = (study_pages[0].parent / pdf_links[0][0]).resolve()
    assert pdf.relative_to(root.resolve()).parts[0] == "DOCS"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")


def test_readme_and_label_say_who_what_and_how(web_disc):
    root = web_disc["root"]
    readme = (root / "README.TXT").read_text(encoding="utf-8")
    for text in ("St Elsewhere Radiology", "+1 555 0100", "dicommedia", "DICOM PLUS WEB", "INDEX.HTM", "DICOMDIR"):
        assert text in readme, text
    label = web_disc["summary"]["volumes"][0]["label"]
    assert label["content"] == "DICOM PLUS WEB" and label["institution"] == "St Elsewhere Radiology"
    assert "DOE, JANE" in label["patients"] and len(label["patients"]) == 6
    assert label["created"] in readme
    index = _parse(root / "INDEX.HTM")
    assert any(a.get("href") == "README.TXT" for a in index.iter(f"{XHTML}a"))


def test_validate_stays_clean(web_disc):
    proc = _dicommedia("validate", str(web_disc["iso"]), "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["valid"], report["errors"]
    assert not [w for w in report["warnings"] if w["code"] == "non-dicom-file"]


def test_key_mode_bounds_renderings_per_series_and_none_writes_dicom_only(tmp_path):
    from dicommedia.writers.web.content import KEY_IMAGES

    src = tmp_path / "in"
    src.mkdir()
    study, series = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"
    for n in range(1, 31):
        image_dataset(study_uid=study, series_uid=series, instance_number=n).save_as(src / f"{n}.dcm")
    key = tmp_path / "key"
    assert _dicommedia("create", str(src), "-o", str(key), "--format", "dir", "--web", "key").returncode == 0
    fulls = sorted(p.name for p in (key / "IHE_PDI").rglob("IM*.JPG"))
    assert len(fulls) == KEY_IMAGES
    assert fulls[0] == "IM000001.JPG" and fulls[-1] == "IM000030.JPG"  # evenly spaced, first to last
    assert "18 more image(s)" in (key / "IHE_PDI" / "SE000001.HTM").read_text(encoding="utf-8")
    none = tmp_path / "none"
    proc = _dicommedia("create", str(src), "-o", str(none), "--format", "dir", "--web", "none", "--json")
    assert proc.returncode == 0
    assert not (none / "IHE_PDI").exists() and (none / "INDEX.HTM").is_file()
    assert "DICOM ONLY" in (none / "README.TXT").read_text(encoding="utf-8")
    assert json.loads(proc.stdout)["volumes"][0]["label"]["content"] == "DICOM ONLY"


def test_web_content_falls_back_when_it_does_not_fit(tmp_path, monkeypatch):
    from dicommedia.create import CreateOptions, create_fileset
    from dicommedia.profile import MEDIA_CAPACITY, load_profile
    from dicommedia.writers.web.content import KEY_IMAGES, PdiRequest

    src = tmp_path / "in"
    src.mkdir()
    study, series = "1.2.826.0.1.3680043.8.498.3", "1.2.826.0.1.3680043.8.498.4"
    for n in range(1, 41):  # noise compresses badly: each full-size JPEG is about 250 kB
        ds = image_dataset(rows=512, cols=512, study_uid=study, series_uid=series, instance_number=n)
        ds.save_as(src / f"{n}.dcm")

    def make(name: str, web: str, media: str = "cd-700"):
        options = CreateOptions(
            [str(src)], tmp_path / f"{name}.iso", load_profile("STD-GEN-CD"), media=media, pdi=PdiRequest(web), jobs=1
        )
        return create_fileset(options)

    sizes = {web: make(web, web, "usb").volumes[0].bytes for web in ("none", "key", "all")}
    assert sizes["none"] < sizes["key"] < sizes["all"]
    # room for the DICOM files and the key renderings, not for all 40
    monkeypatch.setitem(MEDIA_CAPACITY, "cd-700", (sizes["key"] + sizes["all"]) // 2)
    result = make("fallback", "all")
    assert any("does not fit" in w and "as --web key" in w for w in result.warnings), result.warnings
    assert result.volumes[0].bytes == sizes["key"] and result.volumes[0].label["content"] == "DICOM PLUS WEB"
    monkeypatch.setitem(MEDIA_CAPACITY, "cd-700", sizes["none"] + 100 * 1024)
    result = make("tight", "all")
    assert any("as --web none" in w for w in result.warnings) and result.volumes[0].bytes == sizes["none"]
    assert result.volumes[0].label["content"] == "DICOM ONLY" and KEY_IMAGES < 40


def test_viewer_folder_copied_linked_and_8_3_names_enforced(tmp_path, pydicom_files):
    viewer = tmp_path / "viewer"
    (viewer / "lib").mkdir(parents=True)
    (viewer / "viewer.exe").write_bytes(b"MZ" + bytes(5000))
    (viewer / "lib" / "CODEC.DLL").write_bytes(bytes(3000))
    out = tmp_path / "disc"
    proc = _dicommedia(
        "create", str(pydicom_files["CT_small.dcm"]), "-o", str(out), "--format", "dir", "--viewer", str(viewer)
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "VIEWER" / "VIEWER.EXE").read_bytes()[:2] == b"MZ"
    assert (out / "VIEWER" / "LIB" / "CODEC.DLL").stat().st_size == 3000
    assert any(a.get("href") == "VIEWER/" for a in _parse(out / "INDEX.HTM").iter(f"{XHTML}a"))
    assert "VIEWER folder" in (out / "README.TXT").read_text(encoding="utf-8")
    (viewer / "Long Name Library.dll").write_bytes(b"x")
    bad = _dicommedia(
        "create",
        str(pydicom_files["CT_small.dcm"]),
        "-o",
        str(tmp_path / "bad"),
        "--format",
        "dir",
        "--viewer",
        str(viewer),
    )
    assert bad.returncode == 1 and "8.3" in bad.stderr and "Long Name Library.dll" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()


@pytest.mark.parametrize("name", ["chrH31.dcm", "chrRuss.dcm", "chrGreek.dcm", "chrArab.dcm"])
def test_names_in_every_character_set(tmp_path, name):
    source = Path(pydicom.data.__file__).parent / "charset_files" / name
    # every form of the name (alphabetic, ideographic, phonetic): the family name of each
    expected = [group.split("^")[0] for group in str(dcmread(source).PatientName).split("=") if group]
    out = tmp_path / "disc"
    assert _dicommedia("create", str(source), "-o", str(out), "--format", "dir").returncode == 0
    pages = [out / "INDEX.HTM", *(out / "IHE_PDI").glob("ST*.HTM")]
    assert len(pages) == 2
    for page in pages:
        shown = "".join(_parse(page).itertext())
        assert all(family in shown for family in expected), (page.name, expected)


def test_thousands_of_renderings_within_a_small_descriptor_limit(tmp_path):
    import resource

    src = tmp_path / "in"
    src.mkdir()
    study, series = "1.2.826.0.1.3680043.8.498.5", "1.2.826.0.1.3680043.8.498.6"
    for n in range(1, 301):
        image_dataset(rows=32, cols=32, study_uid=study, series_uid=series, instance_number=n).save_as(src / f"{n}")
    iso = tmp_path / "disc.iso"
    proc = run(
        [sys.executable, "-m", "dicommedia", "create", str(src), "-o", str(iso), "--web", "all"],
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128)),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr  # 300 instances + 600 JPEGs on the image, at most 128 files open
    assert sum(1 for name in _iso_names(iso) if name.endswith(".JPG")) == 600


def test_web_options_refused_without_ihe_pdi(tmp_path, pydicom_files):
    proc = _dicommedia(
        "create", str(pydicom_files["CT_small.dcm"]), "-o", str(tmp_path / "d.iso"), "--no-ihe-pdi", "--web", "all"
    )
    assert proc.returncode == 2 and "--no-ihe-pdi" in proc.stderr and not (tmp_path / "d.iso").exists()


def test_printed_label_follows_the_web_content_written(tmp_path, pydicom_files):
    iso = tmp_path / "disc.iso"
    args = [str(pydicom_files["CT_small.dcm"]), "-o", str(iso), "--label", "--institution", "City Hospital", "--json"]
    proc = _dicommedia("create", *args, "--web", "none")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads((tmp_path / "disc.label.json").read_text(encoding="utf-8"))
    summary = json.loads(proc.stdout)["volumes"][0]["label"]
    assert printed["content"] == summary["content"] == "DICOM ONLY"
    assert printed["institution"] == summary["institution"] == "City Hospital"
