"""IHE PDI (RAD TF-3 4.47) root content: README.TXT and INDEX.HTM, plain text and script-free HTML."""

from __future__ import annotations

import datetime as _dt
import html
from dataclasses import dataclass

from dicommedia import __version__
from dicommedia.plan.hierarchy import Plan


@dataclass(frozen=True)
class SeriesLine:
    """One series as the PDI pages show it."""

    number: str
    modality: str
    description: str
    instances: int


@dataclass(frozen=True)
class StudyLine:
    """One study as the PDI pages show it."""

    date: str
    description: str
    accession: str
    series: tuple[SeriesLine, ...]


@dataclass(frozen=True)
class PatientLine:
    """One patient as the PDI pages show it."""

    name: str
    patient_id: str
    birth_date: str
    studies: tuple[StudyLine, ...]


def _person_name(value: object) -> str:
    parts = str(value or "").split("=")[0].split("^")
    family, given = (parts + ["", ""])[:2]
    return f"{family}, {given}".strip(", ") or "(no name)"


def _date(value: object) -> str:
    text = str(value or "")
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else text


def summarize(plan: Plan) -> list[PatientLine]:
    """The plan as patients/studies/series lines, values as the files carry them."""
    patients = []
    for patient in plan.patients.values():
        studies = []
        for study in patient.studies.values():
            firsts = [plan.as_written(patient, study, s, s.instances[0]) for s in study.series.values()]
            series_lines = tuple(
                SeriesLine(
                    str(first.key("SeriesNumber") or ""),
                    str(first.key("Modality") or ""),
                    first.display("SeriesDescription"),
                    len(series.instances),
                )
                for first, series in zip(firsts, study.series.values())
            )
            studies.append(
                StudyLine(
                    _date(firsts[0].key("StudyDate")),
                    firsts[0].display("StudyDescription"),
                    firsts[0].display("AccessionNumber"),
                    series_lines,
                )
            )
        study = next(iter(patient.studies.values()))
        series = next(iter(study.series.values()))
        inst = plan.as_written(patient, study, series, series.instances[0])
        patients.append(
            PatientLine(
                _person_name(inst.display("PatientName")),
                patient.patient_id,
                _date(inst.key("PatientBirthDate")),
                tuple(studies),
            )
        )
    return patients


def readme_text(patients: list[PatientLine], fileset_id: str, profile: str) -> str:
    """README.TXT: what the disc holds, who made it, how to read it."""
    studies = sum(len(p.studies) for p in patients)
    instances = sum(s.instances for p in patients for st in p.studies for s in st.series)
    lines = [
        "DICOM MEDIA - PORTABLE DATA FOR IMAGING (IHE PDI)",
        "",
        f"File-set ID:      {fileset_id}",
        f"Profile:          {profile} (DICOM PS3.11)",
        f"Created:          {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"Created with:     dicommedia {__version__}",
        f"Content:          {len(patients)} patient(s), {studies} study(ies), {instances} DICOM object(s)",
        "",
        "HOW TO READ THIS DISC",
        "  Open the disc with any DICOM viewer or PACS import tool and choose the",
        "  DICOMDIR file in the root folder: it lists every image on the disc.",
        "  The images are in the DICOM folder. INDEX.HTM shows the contents in a web browser.",
        "  No software on this disc starts by itself and none is needed to read it.",
        "",
        "CONTENTS",
    ]
    for p in patients:
        lines.append(f"  Patient {p.name}  ID {p.patient_id}  born {p.birth_date or '-'}")
        for st in p.studies:
            lines.append(
                f"    Study {st.date or '-'}  {st.description or '(no description)'}  accession {st.accession or '-'}"
            )
            for s in st.series:
                lines.append(f"      Series {s.number:>4}  {s.modality:<8} {s.instances:>5} object(s)  {s.description}")
    return "\r\n".join(lines) + "\r\n"


_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #999;padding:.3em .6em;text-align:left}th{background:#eee}"
)


def index_html(patients: list[PatientLine], fileset_id: str) -> str:
    """INDEX.HTM: patients, studies and series of the disc, and a link to README.TXT; no scripts."""
    e = html.escape
    rows = []
    for p in patients:
        for st in p.studies:
            for s in st.series:
                rows.append(
                    "<tr>"
                    + "".join(
                        f"<td>{e(v)}</td>"
                        for v in (
                            p.name,
                            p.patient_id,
                            p.birth_date,
                            st.date,
                            st.description,
                            st.accession,
                            s.number,
                            s.modality,
                            s.description,
                            str(s.instances),
                        )
                    )
                    + "</tr>"
                )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" lang="en">\n<head>\n'
        '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />\n'
        f'<title>DICOM disc {e(fileset_id)}</title>\n<style type="text/css">{_STYLE}</style>\n</head>\n<body>\n'
        f"<h1>DICOM disc {e(fileset_id)}</h1>\n"
        "<p>This disc holds DICOM images. Open the <code>DICOMDIR</code> file with a DICOM viewer. "
        'See <a href="README.TXT">README.TXT</a> for details.</p>\n'
        "<table>\n<tr><th>Patient</th><th>Patient ID</th><th>Birth date</th><th>Study date</th>"
        "<th>Study</th><th>Accession</th><th>Series</th><th>Modality</th><th>Series description</th>"
        "<th>Objects</th></tr>\n" + "\n".join(rows) + "\n</table>\n</body>\n</html>\n"
    )
