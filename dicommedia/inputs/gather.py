"""Gather the inputs: headers of DICOM files and of discs to re-master; pictures and PDFs converted (App A)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dicommedia.errors import MediaError
from dicommedia.inputs.dicom_file import InstanceHeader, Source, file_source, read_header
from dicommedia.inputs.discover import InputFile, InputKind, discover
from dicommedia.progress import Progress
from dicommedia.standard.identity import new_uid


@dataclass
class Gathered:
    """The usable inputs' headers, what cannot be used (path, reason), notes, and how many were converted."""

    headers: list[InstanceHeader] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    converted: int = 0


def _disc_sources(path: Path) -> tuple[list[Source], list[tuple[str, str]]]:
    """The instances of a disc given as input (ISO image or DICOMDIR): re-mastering."""
    from dicommedia.media import open_media

    view = open_media(path)
    sources = []
    for mf in view.files():
        label = f"{path}:{'/'.join(mf.file_id)}"
        sources.append(Source(label=label, size=mf.size, opener=mf.open, origin=str(path)))
    problems = [(f"{path}:{p.file_id or ''}", p.message) for p in view.problems if p.is_error]
    return sources, problems


def _sc_context(sc_metadata: dict[str, str]):
    """One study and series for every picture and PDF of the run (SPEC 6)."""
    from dicommedia.inputs.pictures import ScContext

    fields = (
        "patient_name",
        "patient_id",
        "patient_birth_date",
        "patient_sex",
        "study_description",
        "accession_number",
    )
    return ScContext(
        **{k: sc_metadata.get(k, "") for k in fields}, study_instance_uid=new_uid(), series_instance_uid=new_uid()
    )


def _convert(kind: InputKind, path: Path, context: object, spool: Path, number: int) -> Path:
    """Turn a picture or PDF into a Part 10 file in the spool (seed Appendix A)."""
    if kind is InputKind.PICTURE:
        from dicommedia.inputs.pictures import picture_to_dataset as convert
    else:
        from dicommedia.inputs.pdf import pdf_to_dataset as convert
    ds = convert(path, context, number)
    target = spool / f"sc{number:06d}.dcm"
    ds.save_as(target, enforce_file_format=True)
    return target


def gather(
    inputs: list[str],
    sc_metadata: dict[str, str],
    spool: Path,
    progress: Progress,
    take: Callable[[InstanceHeader], None] | None = None,
) -> Gathered:
    """Find every input and read its header; convert pictures and PDFs; collect what cannot be used.

    Each header goes to ``take`` as soon as it is read when given, else into ``Gathered.headers``."""
    found = discover(inputs)
    out = Gathered(notes=list(found.notes))
    take = take or out.headers.append
    progress.stage("reading inputs", len(found.files))
    sc_context = None
    pending = found.files[::-1]  # consumed as read: the paths of many thousand files are not all kept
    found.files.clear()
    while pending:
        item = pending.pop()
        progress.advance()
        if item.kind is InputKind.UNUSABLE:
            out.refused.append((str(item.path), item.reason))
            continue
        try:
            if item.kind is InputKind.DICOM:
                headers = [read_header(file_source(item.path, item.origin))]
            elif item.kind is InputKind.DISC:
                headers = _disc_headers(item.path, out.refused)
            else:
                sc_context = sc_context or _sc_context(sc_metadata)
                out.converted += 1
                headers = [_converted_header(item, sc_context, spool, out.converted)]
        except MediaError as exc:
            out.refused.append((exc.subject or str(item.path), exc.message))
            continue
        for header in headers:  # outside the try: what ``take`` raises is not this input's fault
            take(header)
    return out


def _disc_headers(path: Path, refused: list[tuple[str, str]]) -> list[InstanceHeader]:
    """The headers of a disc's instances; its problems and unreadable instances go to ``refused``."""
    sources, problems = _disc_sources(path)
    refused.extend(problems)
    headers = []
    for source in sources:
        try:
            headers.append(read_header(source))
        except MediaError as exc:
            refused.append((source.label, exc.message))
    return headers


def _converted_header(item: InputFile, sc_context: object, spool: Path, number: int) -> InstanceHeader:
    """Convert a picture or PDF to a Part 10 file in the spool; its header names the original input."""
    converted = _convert(item.kind, item.path, sc_context, spool, number)
    header = read_header(file_source(converted, item.origin))
    header.source = Source(label=str(item.path), size=header.source.size, path=str(converted), origin=item.origin)
    return header
