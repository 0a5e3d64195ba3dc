"""PDF documents as Encapsulated PDF Storage instances (PS3.3 A.45.1), with the seed's Appendix A attributes."""

from __future__ import annotations

import re
from pathlib import Path

from pydicom import uid
from pydicom.dataset import Dataset

from dicommedia.errors import MediaError
from dicommedia.inputs.pictures import ScContext, base_dataset

PDF_MAGIC = b"%PDF-"
EOF_MARKER = b"%%EOF"
EOF_WINDOW = 2048  # ISO 32000-1 7.5.5: %%EOF ends the file (trailing whitespace/garbage tolerated)
TITLE_MAX = 1024  # Document Title is ST


def is_pdf(path: Path | str) -> bool:
    """True when the file starts with the PDF header."""
    try:
        with open(path, "rb") as fp:
            return fp.read(5) == PDF_MAGIC
    except OSError:
        return False


def read_pdf(path: Path | str) -> bytes:
    """The PDF's bytes, refused when it is not a complete PDF (no header, or truncated before %%EOF)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise MediaError(f"cannot read the PDF ({exc.strerror})", subject=str(path)) from None
    if not data.startswith(PDF_MAGIC):
        raise MediaError("not a PDF document (no %PDF- header)", subject=str(path))
    if EOF_MARKER not in data[-EOF_WINDOW:]:
        raise MediaError("truncated PDF (no %%EOF at the end)", subject=str(path))
    return data


def document_title(data: bytes, path: Path) -> str:
    """The PDF's /Title when it is a plain literal string, else the file name without its extension."""
    match = re.search(rb"/Title\s*\(((?:[^()\\]|\\.){1,512})\)", data)
    if match:
        title = match.group(1).decode("latin-1").replace("\\(", "(").replace("\\)", ")")
        if title.isprintable() and title.strip():
            return title.strip()[:TITLE_MAX]
    return path.stem[:TITLE_MAX]


def pdf_to_dataset(path: Path | str, ctx: ScContext, instance_number: int) -> Dataset:
    """A PDF as an Encapsulated PDF instance in the run's document series."""
    path = Path(path)
    data = read_pdf(path)
    ds = base_dataset(
        ctx,
        uid.EncapsulatedPDFStorage,
        instance_number,
        modality="DOC",
        series_uid=ctx.document_series_instance_uid,
        series_number=ctx.document_series_number,
        series_description=ctx.document_series_description,
    )
    # PS3.3 C.24.2 Encapsulated Document module
    ds.AcquisitionDateTime = ds.ContentDate + ds.ContentTime
    ds.BurnedInAnnotation = "YES"  # a document names its patient in its content
    ds.DocumentTitle = document_title(data, path)
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocumentLength = len(data)
    # OB values have even length (PS3.5 7.1.1): one trailing NUL pads an odd document
    ds.EncapsulatedDocument = data + b"\0" * (len(data) % 2)
    return ds
