"""IHE PDI (RAD TF-3 4.47) README.TXT and the label text: who made the disc, what it holds, how to read it."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from dicommedia import __version__
from dicommedia.writers.web.pages import DiscView

APPLICATION = f"dicommedia {__version__}"


@dataclass(frozen=True)
class Maker:
    """Who made the disc (README.TXT, label): institution and how to reach it."""

    institution: str = ""
    contact: str = ""


def label(disc: DiscView, maker: Maker, created: _dt.date) -> dict[str, object]:
    """The label text PDI recommends: patient name(s), creation date, institution, DICOM ONLY / DICOM PLUS WEB."""
    return {
        "patients": [p.name for p in disc.patients],
        "patient_ids": [p.patient_id for p in disc.patients],
        "created": created.isoformat(),
        "institution": maker.institution,
        "content": "DICOM PLUS WEB" if disc.web else "DICOM ONLY",
        "fileset_id": disc.fileset_id,
    }


def readme_text(disc: DiscView, profile: str, maker: Maker, label_text: dict[str, object]) -> str:
    """README.TXT: who made the disc, what it holds, how to read it, and the label text (CRLF lines)."""
    studies = sum(len(p.studies) for p in disc.patients)
    instances = sum(s.instances for p in disc.patients for st in p.studies for s in st.series)
    lines = [
        "DICOM MEDIA - PORTABLE DATA FOR IMAGING (IHE PDI)",
        "",
        "WHO MADE THIS DISC",
        f"  Institution:    {maker.institution or '(not given)'}",
        f"  Contact:        {maker.contact or '(not given)'}",
        f"  Application:    {APPLICATION} (dicommedia project)",
        f"  Created:        {label_text['created']}",
        "",
        "WHAT IT HOLDS",
        f"  {label_text['content']}: {len(disc.patients)} patient(s), {studies} study(ies),"
        f" {instances} DICOM object(s)",
        f"  File-set ID:    {disc.fileset_id}",
        f"  Profile:        {profile} (DICOM PS3.11 / PS3.12, IHE PDI)",
        "",
        "HOW TO READ IT",
        "  With a DICOM viewer or a PACS import tool: open the DICOMDIR file in the root folder;",
        "  it lists every object on the disc. The DICOM files are in the DICOM folder.",
    ]
    if disc.web:
        lines += [
            "  With a web browser: open INDEX.HTM in the root folder. It shows the patients and studies,",
            "  JPEG pictures of the images (IHE_PDI folder) and the reports; no installation is needed.",
            "  The pictures are for reference, not for diagnosis.",
        ]
    else:
        lines.append("  INDEX.HTM in the root folder lists the contents in a web browser.")
    if disc.viewer:
        lines += [
            f"  A DICOM viewer is in the {disc.viewer.rstrip('/')} folder. Start it by hand if you trust it;",
            "  it needs the operating system it was made for.",
        ]
    lines += [
        "  No software on this disc starts by itself, and none is needed to read it.",
        "",
        "CONTENTS",
    ]
    for p in disc.patients:
        lines.append(f"  Patient {p.name}  ID {p.patient_id}  born {p.birth_date or '-'}")
        for st in p.studies:
            lines.append(
                f"    Study {st.date or '-'}  {st.description or '(no description)'}  accession {st.accession or '-'}"
            )
            for s in st.series:
                lines.append(f"      Series {s.number:>4}  {s.modality:<8} {s.instances:>5} object(s)  {s.description}")
    lines += [
        "",
        "LABEL",
        f"  {'; '.join(str(n) for n in label_text['patients'])}",
        f"  {label_text['created']}  {maker.institution}".rstrip(),
        f"  {label_text['content']}",
    ]
    return "\r\n".join(lines) + "\r\n"
