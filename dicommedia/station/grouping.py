"""Which disc an instance goes on, and when a group is ready: the node's grouping rules, as pure functions."""

from __future__ import annotations

import datetime as _dt
import hashlib
import re

GROUPINGS = ("study", "association", "patient", "request")
_SAFE = re.compile(r"^[0-9.]{1,64}$")


def group_key(grouping: str, study_uid: str | None, patient_id: str | None, association: str) -> str:
    """The spool folder name of an instance's group: safe as a file name, stable across restarts."""
    if grouping == "study" and study_uid and _SAFE.match(study_uid):
        return f"s-{study_uid}"
    if grouping == "study":
        return "s-" + hashlib.sha1((study_uid or "").encode()).hexdigest()[:20]
    if grouping == "patient":
        return "p-" + hashlib.sha1((patient_id or "").encode()).hexdigest()[:20]
    # "association", and "request" (instances wait for a media creation request; kept per association)
    return f"a-{association}"


def association_id(number: int, now: _dt.datetime | None = None) -> str:
    """A name for an association that no other run of the node reuses."""
    now = now or _dt.datetime.now()
    return f"{now:%Y%m%d%H%M%S%f}-{number}"


def due_groups(pending: dict[str, float], now: float, idle: float, open_groups: set[str], grouping: str) -> list[str]:
    """Groups whose disc can be made now: idle for ``idle`` seconds, no association still sending to them.

    With ``request`` grouping no group is ever due by itself: only a media creation request makes a disc.
    """
    if grouping == "request":
        return []
    return sorted(g for g, last in pending.items() if now - last >= idle and g not in open_groups)


def fileset_id(counter: int, now: _dt.datetime | None = None) -> str:
    """A File-set ID of 16 characters: DM, the time to the second, and a counter (PS3.5 CS, A-Z 0-9 _)."""
    now = now or _dt.datetime.now()
    return f"DM{now:%y%m%d%H%M%S}{counter % 100:02d}"
