"""The disc label (IHE PDI, RAD TF-1 15.2: what the label of the media shows): its text as JSON for disc printers'
software, and a printable 120 mm disc label as PDF (drawn with Pillow)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dicommedia.plan.hierarchy import Plan

if TYPE_CHECKING:  # Pillow is loaded only when a label is drawn
    from PIL import Image, ImageDraw, ImageFont

_DPI = 300
_DISC_MM, _HUB_MM = 120.0, 41.0  # a 120 mm disc; printers leave the inner 41 mm (hub and stacking ring) blank
_MAX_PATIENTS = 3  # names shown; more are counted


@dataclass(frozen=True)
class LabelPatient:
    """One patient as the label shows them."""

    name: str
    patient_id: str
    birth_date: str
    study_dates: tuple[str, ...]


@dataclass(frozen=True)
class DiscLabel:
    """The label text of one disc (volume)."""

    fileset_id: str
    content: str  # "DICOM ONLY" or "DICOM PLUS WEB" (IHE PDI)
    created: str
    institution: str
    disc: int
    discs: int
    patients: tuple[LabelPatient, ...]

    def top_lines(self) -> list[str]:
        """Above the hub: what the disc holds and whose it is."""
        lines = [self.content]
        for p in self.patients[:_MAX_PATIENTS]:
            lines.append(p.name)
            born = f"  born {p.birth_date}" if p.birth_date else ""
            lines.append(f"ID {p.patient_id}{born}")
            lines.append("Study " + ", ".join(p.study_dates) if p.study_dates else "Study date unknown")
        if len(self.patients) > _MAX_PATIENTS:
            lines.append(f"and {len(self.patients) - _MAX_PATIENTS} more patient(s)")
        return lines

    def bottom_lines(self) -> list[str]:
        """Below the hub: who made the disc, when, which one."""
        lines = [self.institution] if self.institution else []
        lines += [f"Created {self.created}", f"File-set {self.fileset_id}"]
        if self.discs > 1:
            lines.append(f"Disc {self.disc} of {self.discs}")
        return lines

    def as_json(self) -> dict:
        """The label as a JSON document: fields, and the printed lines in order."""
        return {**asdict(self), "lines": self.top_lines() + self.bottom_lines()}


def person_name(value: object) -> str:
    """A Person Name as people read it: ``DOE^JANE`` -> ``DOE, JANE``; ``山田^太郎`` -> ``山田 太郎`` (the
    first component group, PS3.5 6.2.1)."""
    parts = str(value or "").split("=")[0].split("^")
    family, given = (parts + ["", ""])[:2]
    separator = " " if any(ord(ch) > 0x4FF for ch in family + given) else ", "
    return f"{family}{separator}{given}".strip(", ") or "(no name)"


def _date(value: object) -> str:
    text = str(value or "").strip()
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else text


def disc_label(
    plan: Plan,
    fileset_id: str,
    disc: int,
    discs: int,
    web: bool,
    institution: str = "",
    created: _dt.date | None = None,
) -> DiscLabel:
    """The label of one volume, from its plan, values as written on the disc."""
    patients = []
    for patient in plan.patients.values():
        dates, first = [], None
        for study in patient.studies.values():
            series = next(iter(study.series.values()))
            inst = plan.as_written(patient, study, series, series.instances[0])
            first = first or inst
            date = _date(inst.key("StudyDate"))
            if date and date not in dates:
                dates.append(date)
        patients.append(
            LabelPatient(
                person_name(first.display("PatientName")),
                patient.patient_id,
                _date(first.key("PatientBirthDate")),
                tuple(sorted(dates)),
            )
        )
    return DiscLabel(
        fileset_id,
        "DICOM PLUS WEB" if web else "DICOM ONLY",
        (created or _dt.date.today()).isoformat(),
        institution,
        disc,
        discs,
        tuple(patients),
    )


def _px(mm: float) -> int:
    return round(mm / 25.4 * _DPI)


def _font(text: str, size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans for Latin, Greek and Cyrillic text, Droid Sans Fallback for other scripts (CJK names), where
    installed; else Pillow's own font."""
    wide = any(ord(ch) > 0x4FF for ch in text)
    names = ["DroidSansFallbackFull.ttf"] if wide else []
    names.append("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    for name in names:
        try:
            return _pil().ImageFont.truetype(name, size)
        except OSError:
            continue
    return _pil().ImageFont.load_default(size)


def _line_step(lines: int, top_mm: float, bottom_mm: float) -> int:
    """Pixels per line for ``lines`` lines between two heights, at most 5 mm."""
    return min(_px(5), (_px(bottom_mm) - _px(top_mm)) // max(lines, 1))


def _block(draw: ImageDraw.ImageDraw, lines: list[str], top_mm: float, step: int, first_bold: bool) -> None:
    """Centred lines from a height of the disc down, each shrunk to fit the disc's width at its height."""
    centre, radius = _px(_DISC_MM / 2), _px(_DISC_MM / 2 - 4)
    for n, text in enumerate(lines):
        y = _px(top_mm) + n * step + step // 2
        half = max((radius**2 - (y - centre) ** 2), 0) ** 0.5
        bold = first_bold and n == 0
        size = int(step * (0.8 if bold else 0.62))
        font = _font(text, size, bold)
        while size > 8 and draw.textlength(text, font=font) > 2 * half - _px(4):
            size -= 2
            font = _font(text, size, bold)
        draw.text((centre, y), text, fill="black", font=font, anchor="mm")


def _pil():
    """Pillow's drawing modules (20 ms to import: not for a create without --label)."""
    import PIL.Image
    import PIL.ImageDraw
    import PIL.ImageFont

    return PIL


def render_label(label: DiscLabel) -> Image.Image:
    """The printable disc: outline, blank hub, the label's lines above and below it (300 dpi)."""
    side = _px(_DISC_MM)
    pil = _pil()
    image = pil.Image.new("RGB", (side, side), "white")
    draw = pil.ImageDraw.Draw(image)
    draw.ellipse((0, 0, side - 1, side - 1), outline=(160, 160, 160), width=3)
    hub = _px(_HUB_MM / 2)
    draw.ellipse((side // 2 - hub, side // 2 - hub, side // 2 + hub, side // 2 + hub), outline=(200, 200, 200))
    top, bottom = label.top_lines(), label.bottom_lines()
    above, below = (8, _DISC_MM / 2 - _HUB_MM / 2 - 1), (_DISC_MM / 2 + _HUB_MM / 2 + 1, _DISC_MM - 10)
    step = min(_line_step(len(top), *above), _line_step(len(bottom), *below))  # one type size on the whole disc
    _block(draw, top, above[0], step, first_bold=True)
    _block(draw, bottom, below[0], step, first_bold=False)
    return image


def _atomic(path: Path, write) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(name, 0o666 & ~mask)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def label_paths(image: Path) -> tuple[Path, Path]:
    """Where the label of an image goes: ``X.label.json`` and ``X.label.pdf`` beside ``X.iso``."""
    return image.with_name(image.stem + ".label.json"), image.with_name(image.stem + ".label.pdf")


def write_label(label: DiscLabel, image: Path) -> tuple[Path, Path]:
    """Write the label's JSON and PDF beside the image, each whole or not at all; return their paths."""
    json_path, pdf_path = label_paths(image)
    text = json.dumps(label.as_json(), indent=2, ensure_ascii=False).encode("utf-8")
    _atomic(json_path, lambda fh: fh.write(text))
    _atomic(pdf_path, lambda fh: render_label(label).save(fh, "PDF", resolution=_DPI, title=label.fileset_id))
    return json_path, pdf_path
