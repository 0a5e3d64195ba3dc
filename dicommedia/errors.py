"""Errors that reach the user as a one-line cause naming what they concern."""

from __future__ import annotations


class MediaError(Exception):
    """A problem with an input, a disc or a peer, told in one line.

    ``subject`` names the file, disc or peer concerned; ``hint`` says what to do; ``code`` is the stable code of
    the ``--json`` error document (SPEC 2.4).
    """

    def __init__(self, message: str, subject: str | None = None, hint: str | None = None, code: str = "failed"):
        message = printable(message)
        super().__init__(message)
        self.message = message
        self.subject = None if subject is None else printable(subject)
        self.hint = hint
        self.code = code

    def __str__(self) -> str:
        text = f"{self.subject}: {self.message}" if self.subject else self.message
        return f"{text} ({self.hint})" if self.hint else text


def printable(text: str) -> str:
    """``text`` on one line whatever a disc put in it: control and other unprintable characters escaped
    (``\\n``, ``\\x00``), as a value from a hostile DICOMDIR or file name may hold them."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def one_line(exc: BaseException, fallback: str | None = None) -> str:
    """An exception's cause as one line: the lines of its message joined (parsers and codecs list their plugins'
    reasons on several), never a pasted traceback; without a message, ``fallback`` or the exception's class."""
    lines: list[str] = []
    for line in str(exc).splitlines():
        if line.startswith("Traceback (most recent call last)"):  # pydicom pastes one into some messages
            break
        if line.strip():
            lines.append(line.strip().rstrip(":"))
    text = "; ".join(lines)
    return text[:300] if text else (fallback or type(exc).__name__)
