"""The IHE PDI content of a volume: which renderings, their 8.3 names, the pages, README.TXT, and the fit.

Layout (ISO 9660 level 1 names, upper case): INDEX.HTM and README.TXT in the root; IHE_PDI/ holds STYLE.CSS,
the study (STnnnnnn.HTM), series (SEnnnnnn.HTM) and SR (SRnnnnnn.HTM) pages, and a folder per series with its
JPEGs (IMnnnnnn full size, THnnnnnn thumbnail, KFnnnnnn key frames); PDFs go to DOCS/, a viewer to VIEWER/
(writers/web/viewer.py).
"""

from __future__ import annotations

import datetime as _dt
import io
from dataclasses import dataclass, field
from pathlib import Path

from dicommedia.plan.hierarchy import Plan, PlannedInstance, PlannedPatient, PlannedSeries, PlannedStudy
from dicommedia.transforms.web import WebResult, WebSpec, key_frames
from dicommedia.writers.output import Part10Stream, VolumeFile
from dicommedia.writers.pdi import Maker, label, readme_text
from dicommedia.writers.web.pages import (
    DiscView,
    DocumentView,
    ImageView,
    PatientView,
    SeriesView,
    StudyView,
    index_page,
    series_page,
    sr_page,
    study_page,
)
from dicommedia.writers.web.viewer import VIEWER
from dicommedia.writers.web.xhtml import STYLE

WEB_MODES = ("all", "key", "none")
KEY_IMAGES = 12  # --web key: at most this many renderings per series, evenly spaced
WEB = "IHE_PDI"
DOCS = "DOCS"
_SECTOR = 2048
# System area, volume descriptors, root and a UDF bridge's anchor and descriptor sequences (up to sector 257).
_FIXED_SECTORS = 600


@dataclass(frozen=True)
class PdiRequest:
    """What the PDI content should be: web mode, who made the disc, a viewer to add."""

    web: str = "key"
    maker: Maker = field(default_factory=Maker)
    viewer: tuple[VolumeFile, ...] = ()


@dataclass
class PdiContent:
    """The PDI files of one volume, the web mode they were made with, and the label text."""

    files: list[VolumeFile]
    web: str
    label: dict[str, object]


def _is_document(inst: PlannedInstance) -> bool:
    """SR documents and encapsulated PDFs get a page or a copy whatever the web mode (but none)."""
    if inst.record_type in ("SR DOCUMENT", "KEY OBJECT DOC"):
        return True
    return inst.record_type == "ENCAP DOC" and str(inst.key("MIMETypeOfEncapsulatedDocument")) == "application/pdf"


def _shown(instances: list[PlannedInstance], mode: str) -> list[PlannedInstance]:
    """The images of a series that get renderings: all, evenly spaced key images, or none."""
    images = [i for i in instances if i.header.has_pixel_data and not _is_document(i)]
    if mode == "all":
        return images
    if mode == "key":
        return [images[k] for k in key_frames(len(images), KEY_IMAGES)]
    return []


def web_specs(plan: Plan, mode: str, spool: Path) -> dict[int, WebSpec]:
    """The web content to make per instance (by id of its PlannedInstance), spooled under ``spool``."""
    if mode == "none":
        return {}
    specs: dict[int, WebSpec] = {}
    for series in (se for p in plan.patients.values() for st in p.studies.values() for se in st.series.values()):
        for inst in _shown(series.instances, mode) + [i for i in series.instances if _is_document(i)]:
            specs[id(inst)] = WebSpec(str(spool / f"w{len(specs):07d}"), images=not _is_document(inst))
    return specs


def _person_name(value: object) -> str:
    """Family, given; the ideographic and phonetic forms (PS3.5 6.2.1.2) follow in parentheses."""
    forms = []
    for group in str(value or "").split("="):
        family, given = ([*group.split("^"), "", ""])[:2]
        forms.append(f"{family}, {given}".strip(", "))
    first, others = forms[0], [f for f in forms[1:] if f]
    return (f"{first} ({' / '.join(others)})" if others else first) or "(no name)"


def _date(value: object) -> str:
    text = str(value or "")
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else text


def _time(value: object) -> str:
    text = str(value or "")
    return f"{text[:2]}:{text[2:4]}" if len(text) >= 4 and text[:4].isdigit() else text


def _spooled(parts: tuple[str, ...], path: str, size: int) -> VolumeFile:
    """A spooled file, opened only when its bytes are read (thousands of renderings, few descriptors)."""
    return VolumeFile(parts, size, lambda: Part10Stream(b"", lambda: open(path, "rb"), 0, size, path))


def _in_memory(parts: tuple[str, ...], data: bytes) -> VolumeFile:
    return VolumeFile(parts, len(data), lambda: io.BytesIO(data))


@dataclass
class _Report:
    """An SR document waiting for its page, with where it sits."""

    page: str
    patient: PatientView
    study: StudyView
    series: SeriesView
    result: WebResult


class _Layout:
    """Walks the plan of one volume: the views for the pages and the spooled files, named as on the disc."""

    def __init__(self, plan: Plan, web: dict[int, WebResult], mode: str):
        self.plan = plan
        self.web = web if mode != "none" else {}
        self.mode = mode
        self.files: list[VolumeFile] = []
        self.reports: list[_Report] = []
        self.documents = 0
        self.study_count = 0
        self.series_count = 0
        self.patients = [self._patient(p) for p in plan.patients.values()]

    def _patient(self, patient: PlannedPatient) -> PatientView:
        study = next(iter(patient.studies.values()))
        series = next(iter(study.series.values()))
        first = self.plan.as_written(patient, study, series, series.instances[0])
        view = PatientView(
            _person_name(first.display("PatientName")),
            patient.patient_id,
            _date(first.key("PatientBirthDate")),
            str(first.key("PatientSex") or ""),
        )
        for st in patient.studies.values():
            view.studies.append(self._study(view, patient, st))
        return view

    def _study(self, pview: PatientView, patient: PlannedPatient, study: PlannedStudy) -> StudyView:
        self.study_count += 1
        series = next(iter(study.series.values()))
        first = self.plan.as_written(patient, study, series, series.instances[0])
        view = StudyView(
            f"ST{self.study_count:06d}.HTM",
            _date(first.key("StudyDate")),
            _time(first.key("StudyTime")),
            first.display("StudyDescription"),
            first.display("AccessionNumber"),
            _person_name(first.display("ReferringPhysicianName")) if first.key("ReferringPhysicianName") else "",
            first.display("StudyID"),
        )
        for se in study.series.values():
            view.series.append(self._series(pview, view, patient, study, se))
        return view

    def _series(
        self, pview: PatientView, sview: StudyView, patient: PlannedPatient, study: PlannedStudy, series: PlannedSeries
    ) -> SeriesView:
        self.series_count += 1
        name = f"SE{self.series_count:06d}"
        first = self.plan.as_written(patient, study, series, series.instances[0])
        view = SeriesView(
            f"{name}.HTM",
            str(first.key("SeriesNumber") or ""),
            str(first.key("Modality") or ""),
            first.display("SeriesDescription"),
            len(series.instances),
        )
        shown = {id(i) for i in _shown(series.instances, self.mode)}
        for k, inst in enumerate(series.instances, 1):
            result = self.web.get(id(inst))
            if result is None:
                continue
            written = self.plan.as_written(patient, study, series, inst)
            if result.full and id(inst) in shown:
                view.images.append(self._image(name, k, written, result))
            elif result.sr:
                page_name = f"SR{len(self.reports) + 1:06d}.HTM"
                self.reports.append(_Report(page_name, pview, sview, view, result))
                view.documents.append(DocumentView(result.sr.title, "report", page_name))
            elif result.pdf:
                self.documents += 1
                file_name = f"DOC{self.documents:05d}.PDF"
                view.documents.append(
                    DocumentView(written.display("DocumentTitle") or "Document", "PDF", f"../{DOCS}/{file_name}")
                )
                self.files.append(_spooled((DOCS, file_name), result.pdf, result.pdf_size))
        images = [i for i in series.instances if i.header.has_pixel_data and not _is_document(i)]
        view.omitted = len(images) - len(view.images)
        return view

    def _image(self, folder: str, k: int, inst: PlannedInstance, result: WebResult) -> ImageView:
        assert result.full and result.thumbnail
        full, thumb = f"IM{k:06d}.JPG", f"TH{k:06d}.JPG"
        self.files.append(_spooled((WEB, folder, full), result.full.path, result.full.size))
        self.files.append(_spooled((WEB, folder, thumb), result.thumbnail.path, result.thumbnail.size))
        strip = None
        if result.strip:
            strip = f"KF{k:06d}.JPG"
            self.files.append(_spooled((WEB, folder, strip), result.strip.path, result.strip.size))
        return ImageView(
            f"{folder}/{full}",
            f"{folder}/{thumb}",
            f"{folder}/{strip}" if strip else None,
            result.full.width,
            result.full.height,
            str(inst.key("InstanceNumber") or ""),
            result.slice_location,
            result.window,
            result.frames,
        )

    def pages(self) -> list[VolumeFile]:
        """STYLE.CSS and every study, series and SR page."""
        out = [_in_memory((WEB, "STYLE.CSS"), STYLE.encode("ascii"))]
        for p in self.patients:
            for st in p.studies:
                out.append(_in_memory((WEB, st.page), study_page(p, st)))
                out += [_in_memory((WEB, se.page), series_page(p, st, se)) for se in st.series]
        for r in self.reports:
            assert r.result.sr
            out.append(_in_memory((WEB, r.page), sr_page(r.patient, r.study, r.series, r.result.sr)))
        return out


def pdi_content(
    plan: Plan, web: dict[int, WebResult], mode: str, fileset_id: str, profile: str, request: PdiRequest
) -> PdiContent:
    """README.TXT, INDEX.HTM and, unless ``mode`` is none, the web content of the volume."""
    layout = _Layout(plan, web, mode)
    has_web = mode != "none"
    disc = DiscView(
        fileset_id,
        layout.patients,
        has_web,
        request.maker.institution,
        f"{VIEWER}/" if request.viewer else None,
    )
    text = label(disc, request.maker, _dt.date.today())
    files = [
        _in_memory(("README.TXT",), readme_text(disc, profile, request.maker, text).encode("utf-8")),
        _in_memory(("INDEX.HTM",), index_page(disc)),
        *request.viewer,
    ]
    if has_web:
        files += layout.pages() + layout.files
    return PdiContent(files, mode, text)


def estimated_size(files: list[VolumeFile]) -> int:
    """An upper bound of the image size: whole sectors per file plus one for its directory record (or a UDF
    File Entry), three per folder (directory, path tables), and the descriptors of ISO 9660 and a UDF bridge."""
    folders = {f.parts[:depth] for f in files for depth in range(1, len(f.parts))}
    data = sum(-(-f.size // _SECTOR) * _SECTOR for f in files)
    return data + (len(files) + 3 * len(folders) + _FIXED_SECTORS) * _SECTOR


def fitting_pdi(
    plan: Plan,
    web: dict[int, WebResult],
    dicom: list[VolumeFile],
    capacity: int | None,
    fileset_id: str,
    profile: str,
    request: PdiRequest,
    warnings: list[str],
) -> PdiContent:
    """The PDI content in the requested web mode, else key, else none, whichever first fits the media."""
    for mode in WEB_MODES[WEB_MODES.index(request.web) :]:
        content = pdi_content(plan, web, mode, fileset_id, profile, request)
        if capacity is None or mode == "none" or estimated_size(dicom + content.files) <= capacity:
            break
    if content.web != request.web:
        warnings.append(
            f"{fileset_id}: web content --web {request.web} does not fit the media; written as --web {content.web}"
        )
    return content
