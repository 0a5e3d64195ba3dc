"""Structured Reports as readable XHTML: the content tree (PS3.3 C.17.3) as headings, text and measurements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

from dicommedia.writers.web.xhtml import Markup, el

# Deeper containers than this are flattened onto the last heading level (h6).
_MAX_HEADING = 6
# UCUM's "no units" (PS3.16 CID 7181 uses "1"): a bare number reads better.
_NO_UNIT = "1"


@dataclass(frozen=True)
class SrNode:
    """One content item: its value type, concept name (by meaning), value as text and children."""

    value_type: str
    name: str
    value: str
    children: tuple[SrNode, ...] = ()


@dataclass(frozen=True)
class SrDocument:
    """An SR document: title, status flags, author and the content tree."""

    title: str
    completion: str
    verification: str
    date: str
    observer: str
    root: SrNode


def _meaning(seq: object) -> str:
    """Code Meaning of the first item of a code sequence (its value when the meaning is empty)."""
    if not seq:
        return ""
    item = seq[0]
    return str(item.get("CodeMeaning") or item.get("CodeValue") or "")


def _unit(item: Dataset) -> str:
    units = item.get("MeasurementUnitsCodeSequence")
    if not units:
        return ""
    code = units[0]
    value = str(code.get("CodeValue") or "")
    if value == _NO_UNIT:
        return ""
    # UCUM symbols (mm, cm2, ml/s) are what a reader expects next to a number; other schemes by meaning
    return value if str(code.get("CodingSchemeDesignator", "")) == "UCUM" else _meaning(units)


def _value(item: Dataset) -> str:
    kind = str(item.get("ValueType", ""))
    if kind == "TEXT":
        return str(item.get("TextValue", ""))
    if kind == "NUM":
        measured = item.get("MeasuredValueSequence")
        if not measured:
            return "(no value)"
        number = measured[0].get("NumericValue", "")
        return f"{number} {_unit(measured[0])}".strip()
    if kind == "CODE":
        return _meaning(item.get("ConceptCodeSequence"))
    if kind in ("DATE", "TIME", "DATETIME", "UIDREF"):
        keyword = {"DATE": "Date", "TIME": "Time", "DATETIME": "DateTime", "UIDREF": "UID"}[kind]
        return str(item.get(keyword, ""))
    if kind == "PNAME":
        return str(item.get("PersonName", "")).replace("^", " ").strip()
    if kind in ("IMAGE", "COMPOSITE", "WAVEFORM"):
        refs = item.get("ReferencedSOPSequence")
        return f"reference to {refs[0].ReferencedSOPInstanceUID}" if refs else "reference"
    return ""


def _node(item: Dataset, depth: int = 0) -> SrNode:
    children = tuple(_node(child, depth + 1) for child in item.get("ContentSequence", []) if depth < 64)
    return SrNode(str(item.get("ValueType", "")), _meaning(item.get("ConceptNameCodeSequence")), _value(item), children)


def read_sr(ds: Dataset) -> SrDocument:
    """The SR document's content tree as plain, picklable text."""
    observer = ""
    for item in ds.get("AuthorObserverSequence", []):
        observer = str(item.get("PersonName", "")).replace("^", " ").strip() or observer
    if not observer:
        for item in ds.get("ContentSequence", []):
            if str(item.get("ValueType", "")) == "PNAME":
                observer = _value(item)
                break
    return SrDocument(
        title=_meaning(ds.get("ConceptNameCodeSequence")) or "Structured report",
        completion=str(ds.get("CompletionFlag", "")),
        verification=str(ds.get("VerificationFlag", "")),
        date=str(ds.get("ContentDate", "")),
        observer=observer,
        root=_node(ds),
    )


def _item(node: SrNode, level: int) -> Markup:
    if not (node.name or node.value or node.children):
        return Markup("")
    if node.value_type == "CONTAINER" or (node.children and not node.value):
        heading = el(f"h{min(level, _MAX_HEADING)}", None, node.name or "(section)")
        return el("div", {"class": "section"}, heading, *(_item(child, level + 1) for child in node.children))
    line = el("p", None, el("strong", None, f"{node.name}: ") if node.name else None, node.value)
    if not node.children:
        return line
    return el("div", {"class": "section"}, line, *(_item(child, level + 1) for child in node.children))


def sr_body(doc: SrDocument) -> list[Markup]:
    """The page body of an SR document: title, status, then the content tree as nested sections."""
    status = ", ".join(
        s for s in (doc.completion.lower(), doc.verification.lower(), doc.observer and f"by {doc.observer}") if s
    )
    return [
        el("h1", None, doc.title),
        el("p", None, status) if status else None,
        el("div", {"class": "sr"}, *(_item(child, 2) for child in doc.root.children)),
    ]
