"""SR documents as readable XHTML (writers/web/sr.py): headings, text, measurements with units, codes by meaning."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pydicom import dcmread
from pydicom.dataset import Dataset

from dicommedia.writers.web.sr import read_sr, sr_body
from dicommedia.writers.web.xhtml import page


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _item(value_type: str, name: Dataset, **values) -> Dataset:
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = value_type
    item.ConceptNameCodeSequence = [name]
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _report() -> Dataset:
    measured = Dataset()
    measured.NumericValue = "12.5"
    measured.MeasurementUnitsCodeSequence = [_code("mm", "UCUM", "millimeter")]
    findings = _item(
        "CONTAINER",
        _code("121070", "DCM", "Findings"),
        ContinuityOfContent="SEPARATE",
        ContentSequence=[
            _item("TEXT", _code("121071", "DCM", "Finding"), TextValue="Small nodule, right upper lobe."),
            _item("NUM", _code("G-D7FE", "SRT", "Diameter"), MeasuredValueSequence=[measured]),
            _item(
                "CODE",
                _code("121071", "DCM", "Finding site"),
                ConceptCodeSequence=[_code("39607008", "SCT", "Lung structure")],
            ),
        ],
    )
    ds = Dataset()
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = [_code("18748-4", "LN", "Diagnostic imaging report")]
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    ds.ContinuityOfContent = "SEPARATE"
    ds.ContentSequence = [findings]
    return ds


def test_report_reads_as_headings_text_measurements_and_meanings():
    html = page("report", "STYLE.CSS", *sr_body(read_sr(_report())))
    root = ET.fromstring(html)
    ns = "{http://www.w3.org/1999/xhtml}"
    assert [h.text for h in root.iter(f"{ns}h1")] == ["Diagnostic imaging report"]
    assert [h.text for h in root.iter(f"{ns}h2")] == ["Findings"]
    lines = ["".join(p.itertext()) for p in root.iter(f"{ns}p")]
    assert "complete, unverified" in lines
    assert "Finding: Small nodule, right upper lobe." in lines
    assert "Diameter: 12.5 mm" in lines  # UCUM symbol beside the number
    assert "Finding site: Lung structure" in lines  # a code by its meaning, not 39607008


def test_real_world_sr_has_its_text(pydicom_files):
    doc = read_sr(dcmread(pydicom_files["reportsi.dcm"]))
    text = "".join(ET.fromstring(page("r", "S.CSS", *sr_body(doc))).itertext())
    assert doc.title and doc.title in text and len(text) > 200
