"""The PDI pages: INDEX.HTM (root) -> a page per study -> a page per series, and a page per SR document.

Restricted XHTML 1.0 and one stylesheet, no script, no outside resource (IHE RAD TF-2 4.47.4.1.2.3.2).
Every link is relative and names the file exactly as ISO 9660 stores it (upper case 8.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dicommedia.writers.web.sr import SrDocument, sr_body
from dicommedia.writers.web.xhtml import Markup, el, page


@dataclass(frozen=True)
class ImageView:
    """One rendering on a series page; links relative to IHE_PDI/."""

    full: str
    thumbnail: str
    strip: str | None
    width: int
    height: int
    number: str
    location: str
    window: str
    frames: int


@dataclass(frozen=True)
class DocumentView:
    """A report: an SR page or a PDF file; ``href`` relative to IHE_PDI/."""

    title: str
    kind: str
    href: str


@dataclass
class SeriesView:
    """A series: its page (in IHE_PDI/), keys, thumbnail, images shown and reports."""

    page: str
    number: str
    modality: str
    description: str
    instances: int
    images: list[ImageView] = field(default_factory=list)
    documents: list[DocumentView] = field(default_factory=list)
    omitted: int = 0


@dataclass
class StudyView:
    """A study: its page (in IHE_PDI/) and what the page shows."""

    page: str
    date: str
    time: str
    description: str
    accession: str
    referring: str
    study_id: str
    series: list[SeriesView] = field(default_factory=list)


@dataclass
class PatientView:
    """A patient and their studies."""

    name: str
    patient_id: str
    birth_date: str
    sex: str
    studies: list[StudyView] = field(default_factory=list)


@dataclass(frozen=True)
class DiscView:
    """What INDEX.HTM shows: who made the disc, whether it has web content, where the viewer is."""

    fileset_id: str
    patients: list[PatientView]
    web: bool
    institution: str = ""
    viewer: str | None = None


def _table(rows: list[tuple[str, object]]) -> Markup:
    return el("table", None, *(el("tr", None, el("th", None, k), el("td", None, v)) for k, v in rows if v))


def _nav(*links: tuple[str, str]) -> Markup:
    items = [el("a", {"href": href}, label) for href, label in links]
    joined: list[object] = []
    for item in items:
        joined += [" | ", item] if joined else [item]
    return el("p", {"class": "nav"}, *joined)


def _patient_rows(p: PatientView) -> list[tuple[str, object]]:
    return [("Patient", p.name), ("Patient ID", p.patient_id), ("Birth date", p.birth_date), ("Sex", p.sex)]


def _series_thumb(s: SeriesView) -> str | None:
    return s.images[len(s.images) // 2].thumbnail if s.images else None


def index_page(disc: DiscView) -> bytes:
    """INDEX.HTM at the root: every patient and study, links to the study pages, README.TXT and the viewer."""
    body: list[object] = [el("h1", None, f"DICOM disc {disc.fileset_id}")]
    if disc.institution:
        body.append(el("p", None, f"Made by {disc.institution}."))
    if disc.web:
        body.append(el("p", None, "Choose a study to see its images and reports in this browser."))
    body.append(
        el(
            "p",
            None,
            "For diagnosis, open the DICOMDIR file of this disc with a DICOM viewer. ",
            "See ",
            el("a", {"href": "README.TXT"}, "README.TXT"),
            " for what the disc holds and how to read it.",
        )
    )
    if disc.viewer:
        body.append(
            el(
                "p",
                None,
                "A DICOM viewer is on this disc in the folder ",
                el("a", {"href": disc.viewer}, disc.viewer.rstrip("/")),
                "; it does not start by itself.",
            )
        )
    for p in disc.patients:
        body.append(el("h2", None, p.name))
        body.append(_table(_patient_rows(p)))
        head = el("tr", None, *(el("th", None, h) for h in ("Study date", "Study", "Accession", "Series", "Objects")))
        rows = []
        for st in p.studies:
            label = st.description or "(no description)"
            link = el("a", {"href": "IHE_PDI/" + st.page}, label) if disc.web else label
            series = ", ".join(f"{s.modality} {s.number}".strip() for s in st.series)
            rows.append(
                el(
                    "tr",
                    None,
                    el("td", None, st.date),
                    el("td", None, link),
                    el("td", None, st.accession),
                    el("td", None, series),
                    el("td", None, str(sum(s.instances for s in st.series))),
                )
            )
        body.append(el("table", None, head, *rows))
    return page(f"DICOM disc {disc.fileset_id}", None, *body)


def study_page(patient: PatientView, study: StudyView) -> bytes:
    """A study: patient, dates, description, accession, referring physician, series thumbnails and reports."""
    tiles = []
    documents: list[DocumentView] = []
    for s in study.series:
        thumb = _series_thumb(s)
        caption = (
            f"Series {s.number} {s.modality}{': ' + s.description if s.description else ''}, {s.instances} object(s)"
        )
        picture = el("img", {"src": thumb, "alt": caption}) if thumb else None
        tiles.append(el("li", None, el("a", {"href": s.page}, picture, el("span", None, caption))))
        documents += s.documents
    body: list[object] = [
        _nav(("../INDEX.HTM", "All studies")),
        el("h1", None, study.description or f"Study of {study.date}"),
        _table(
            _patient_rows(patient)
            + [
                ("Study date", f"{study.date} {study.time}".strip()),
                ("Description", study.description),
                ("Accession", study.accession),
                ("Study ID", study.study_id),
                ("Referring physician", study.referring),
            ]
        ),
        el("h2", None, "Series"),
        el("ul", {"class": "tiles"}, *tiles),
    ]
    if documents:
        body.append(el("h2", None, "Reports and documents"))
        body.append(
            el("ul", None, *(el("li", None, el("a", {"href": d.href}, d.title), f" ({d.kind})") for d in documents))
        )
    return page(f"{patient.name} - {study.description or 'study'} {study.date}", "STYLE.CSS", *body)


def _figure(image: ImageView) -> Markup:
    facts = [
        f"Image {image.number}" if image.number else "",
        f"slice location {image.location}" if image.location else "",
        f"window {image.window}" if image.window else "",
        f"{image.frames} frames, middle frame shown" if image.frames > 1 else "",
    ]
    caption = ", ".join(f for f in facts if f)
    parts: list[object] = [
        el(
            "a",
            {"href": image.full},
            el("img", {"src": image.full, "alt": caption, "width": str(image.width), "height": str(image.height)}),
        ),
        el("p", None, caption),
    ]
    if image.strip:
        parts += [el("img", {"src": image.strip, "alt": "key frames"}), el("p", None, "Key frames, first to last")]
    return el("div", {"class": "figure"}, *parts)


def series_page(patient: PatientView, study: StudyView, series: SeriesView) -> bytes:
    """A series: its images (instance number, slice location, window used) and reports."""
    title = f"Series {series.number} {series.modality} {series.description}".strip()
    body: list[object] = [
        _nav(("../INDEX.HTM", "All studies"), (study.page, study.description or "Study")),
        el("h1", None, title),
        el("p", None, f"{patient.name}, {study.date}, {series.instances} object(s)."),
    ]
    if series.omitted:
        body.append(
            el("p", None, f"{series.omitted} more image(s) of this series are on the disc for a DICOM viewer only.")
        )
    body += [_figure(image) for image in series.images]
    if series.documents:
        body.append(el("h2", None, "Reports and documents"))
        body.append(el("ul", None, *(el("li", None, el("a", {"href": d.href}, d.title)) for d in series.documents)))
    return page(f"{patient.name} - {title}", "STYLE.CSS", *body)


def sr_page(patient: PatientView, study: StudyView, series: SeriesView, doc: SrDocument) -> bytes:
    """An SR document as a page of its own."""
    body: list[object] = [
        _nav(("../INDEX.HTM", "All studies"), (study.page, study.description or "Study"), (series.page, "Series")),
        el("p", None, f"{patient.name}, {patient.patient_id}, {study.date}"),
        *sr_body(doc),
    ]
    return page(f"{patient.name} - {doc.title}", "STYLE.CSS", *body)
