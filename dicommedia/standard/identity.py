"""Who we are in the files we write: PS3.7 D.3.3.2 implementation identification, and new UIDs."""

from __future__ import annotations

import uuid

from dicommedia import __version__

# A UUID-derived root (PS3.5 B.2): ours alone, no registration needed.
UID_ROOT = "2.25.62444645446951849998193461635087160769"
IMPLEMENTATION_CLASS_UID = UID_ROOT + ".1"
# Implementation Version Name is SH, at most 16 characters.
IMPLEMENTATION_VERSION_NAME = ("DICOMMEDIA_" + __version__.replace(".", ""))[:16]
SOURCE_AE_TITLE = "DICOMMEDIA"


def new_uid() -> str:
    """A fresh UID in the 2.25 form derived from a random UUID (PS3.5 B.2)."""
    return f"2.25.{uuid.uuid4().int}"
