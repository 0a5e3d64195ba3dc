"""A tiny XHTML builder: escaped text, void elements closed, empty elements written open/close for HTML parsers."""

from __future__ import annotations

import html
import re

# Characters XML 1.0 does not allow (2.2); DICOM text may still carry them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XHTML = "http://www.w3.org/1999/xhtml"
_VOID = frozenset({"img", "meta", "link", "br", "hr"})

STYLE = """body{font-family:sans-serif;margin:0 auto;padding:1em;max-width:60em;line-height:1.4;color:#111}
h1{font-size:1.5em}h2{font-size:1.25em}h3,h4,h5,h6{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #999;padding:.25em .5em;text-align:left;
vertical-align:top}th{background:#eee}
img{max-width:100%;height:auto;border:0}
.tiles{display:flex;flex-wrap:wrap;gap:.75em;padding:0;list-style:none}
.tiles li{width:170px}.tiles li span{display:block;font-size:.85em}
.figure{margin:1em 0;page-break-inside:avoid;break-inside:avoid}.figure p{margin:.2em 0;font-size:.9em}
.sr .section{margin-left:1em}.sr p{white-space:pre-line}.nav{font-size:.9em}
@media (max-width:40em){body{padding:.5em}table{font-size:.85em}td,th{padding:.2em}td{overflow-wrap:anywhere}
.tiles li{width:45%}}
@media print{.nav{display:none}a{color:#000;text-decoration:none}body{max-width:none}}
"""


class Markup(str):
    """Text that is already XHTML."""


def text(value: object) -> str:
    """Escaped text, with the characters XML cannot carry removed."""
    return html.escape(_NOT_XML.sub("", str(value)), quote=True)


def el(tag: str, attrs: dict[str, object] | None = None, *children: object) -> Markup:
    """An element: attributes with a None value are left out, None children are skipped."""
    attr = "".join(f' {k}="{text(v)}"' for k, v in (attrs or {}).items() if v is not None)
    if tag in _VOID:
        return Markup(f"<{tag}{attr} />")
    inner = "".join(c if isinstance(c, Markup) else text(c) for c in children if c is not None)
    return Markup(f"<{tag}{attr}>{inner}</{tag}>")


def page(title: str, css: str | None, *body: object) -> bytes:
    """A complete XHTML 1.0 Strict page in UTF-8, styled by the stylesheet at ``css`` (relative), else inline."""
    head = el(
        "head",
        None,
        el("meta", {"http-equiv": "Content-Type", "content": "text/html; charset=UTF-8"}),
        el("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
        el("title", None, title),
        el("link", {"rel": "stylesheet", "type": "text/css", "href": css})
        if css
        else el("style", {"type": "text/css"}, STYLE),
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n'
        + el("html", {"xmlns": _XHTML, "lang": "en", "xml:lang": "en"}, head, el("body", None, *body))
        + "\n"
    )
    return document.encode("utf-8")
