"""UDF checks: the UDF side of a bridge image holds the ISO 9660 side's files (the same data), and its volume
identifier is the File-set ID (SPEC 4)."""

from __future__ import annotations

from pathlib import Path

from dicommedia.errors import MediaError
from dicommedia.media.findings import Finding, show_file_id
from dicommedia.media.store import Store, is_udf_image
from dicommedia.media.udf import UdfStore


def _files(store: Store) -> dict[tuple[str, ...], tuple[int, int]]:
    """File ID -> (byte offset in the image, size), File IDs compared without case (ISO names are upper case)."""
    return {tuple(c.upper() for c in f.file_id): (f.start, f.size) for f in store.walk()}


def check_udf(path: Path, store: Store, fileset_id: str | None) -> list[Finding]:
    """Findings on the UDF volume of an image (none when the image has no UDF): readable, the same files as the
    ISO 9660 side at the same places, the Logical Volume Identifier equal to the File-set ID."""
    if not is_udf_image(path):
        return []
    if isinstance(store, UdfStore):
        udf, own = store, False
    else:
        try:
            udf, own = UdfStore(path), True
        except MediaError as exc:
            return [Finding("udf-structure", f"the UDF side cannot be read: {exc.message}", str(path))]
    try:
        findings = []
        volume_id = udf.volume_identifier()
        if fileset_id and volume_id != fileset_id:
            findings.append(
                Finding(
                    "volume-id-mismatch",
                    f"UDF Logical Volume Identifier {volume_id!r} differs from File-set ID {fileset_id!r}",
                    str(path),
                )
            )
        if own:
            findings += _same_files(_files(store), _files(udf))
        return findings
    finally:
        if own:
            udf.close()


def _same_files(iso: dict, udf: dict) -> list[Finding]:
    findings = []
    for file_id in sorted(iso.keys() | udf.keys()):
        where = show_file_id(file_id)
        if file_id not in udf:
            findings.append(Finding("udf-structure", "on the ISO 9660 side only (not in the UDF bridge)", where))
        elif file_id not in iso:
            findings.append(Finding("udf-structure", "in the UDF bridge only (not on the ISO 9660 side)", where))
        elif iso[file_id] != udf[file_id]:
            findings.append(Finding("udf-structure", "the two file systems point at different data", where))
    return findings
