"""Findings met while reading media: a stable code, a one-line message, and the file concerned."""

from __future__ import annotations

from typing import NamedTuple

from dicommedia.errors import printable


class _Fields(NamedTuple):
    code: str
    message: str
    file_id: str | None
    severity: str


class Finding(_Fields):
    """One problem: ``code`` is stable (SPEC 2.3 error codes, or a warning code), ``file_id`` names the file.

    Message and File ID are made printable: they may quote what a hostile disc holds (a UID with a line feed)."""

    __slots__ = ()

    def __new__(cls, code: str, message: str, file_id: str | None = None, severity: str = "error") -> Finding:
        file_id = None if file_id is None else printable(file_id)
        return super().__new__(cls, code, printable(message), file_id, severity)

    @property
    def is_error(self) -> bool:
        """True for an error, False for a warning."""
        return self.severity == "error"

    def as_json(self) -> dict:
        """The SPEC 2.3 JSON form: code, message, file_id."""
        return {"code": self.code, "message": self.message, "file_id": self.file_id}


def warning(code: str, message: str, file_id: str | None = None) -> Finding:
    """A finding that is legal but unwise."""
    return Finding(code, message, file_id, "warning")


def show_file_id(components: tuple[str, ...] | list[str] | None) -> str | None:
    """A File ID as users read it: components joined by '/'."""
    return "/".join(components) if components else None
