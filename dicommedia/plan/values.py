"""Checking and normalising key values to their VR (PS3.5 6.2): dates, times, integer strings."""

from __future__ import annotations

import datetime as _dt
import re

_DA_LOOSE = re.compile(r"^\s*(\d{4})[-./]?(\d{2})[-./]?(\d{2})\s*$")
_TM = re.compile(r"^\s*(\d{2})(?::?(\d{2})(?::?(\d{2})(\.\d{1,6})?)?)?\s*$")
_IS = re.compile(r"^\s*[+-]?\d{1,12}\s*$")


def normalize_date(value: object) -> str | None:
    """A valid DA (YYYYMMDD) from a date in DA or the old ``YYYY.MM.DD``/ISO forms, else None.

    A year before 1000 ("0095.07.24": a two-digit year padded) is no date: dciodvfy refuses it, and no century
    can be guessed for it."""
    match = _DA_LOOSE.match(str(value or ""))
    if not match:
        return None
    year, month, day = (int(g) for g in match.groups())
    if year < 1000:
        return None
    try:
        _dt.date(year, month, day)
    except ValueError:
        return None
    return f"{year:04d}{month:02d}{day:02d}"


def normalize_time(value: object) -> str | None:
    """A valid TM (HHMMSS.FFFFFF, trailing parts optional) from TM or ``HH:MM:SS``, else None."""
    match = _TM.match(str(value or ""))
    if not match:
        return None
    hh, mm, ss, frac = match.groups()
    if int(hh) > 23 or (mm and int(mm) > 59) or (ss and int(ss) > 60):
        return None
    return hh + (mm or "") + (ss or "") + (frac or "")


def normalize_integer_string(value: object) -> str | None:
    """A valid IS value, else None."""
    text = str(value if value is not None else "").strip()
    return str(int(text)) if _IS.match(text) else None


def is_empty(value: object) -> bool:
    """True for a missing or zero-length value."""
    if value is None:
        return True
    if isinstance(value, (str, bytes, list, tuple)):
        return len(value) == 0 or (isinstance(value, str) and not value.strip())
    return str(value).strip() == ""
