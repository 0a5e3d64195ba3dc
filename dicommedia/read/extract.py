"""``read --extract DIR``: plain copies of the instances, laid out by File ID, with MANIFEST.json."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dicommedia.errors import MediaError
from dicommedia.media import MediaFile, MediaView
from dicommedia.media.store import unsafe_reason

MANIFEST = "MANIFEST.json"


@dataclass
class Extraction:
    """What an extraction wrote and what it could not."""

    dest: Path
    written: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)

    @property
    def manifest(self) -> Path:
        """Path of the manifest."""
        return self.dest / MANIFEST


def prepare_dest(dest: Path) -> None:
    """Create the destination; refuse an existing non-empty folder (nothing there is ever overwritten)."""
    if dest.exists() and not dest.is_dir():
        raise MediaError("exists and is not a folder", str(dest))
    if dest.is_dir() and any(dest.iterdir()):
        raise MediaError("is not empty", str(dest), hint="extract into a new or empty folder")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MediaError(f"cannot create the folder: {exc.strerror}", str(dest)) from None


def target_path(dest: Path, media_file: MediaFile) -> Path:
    """Where a file goes under ``dest``: its File ID components as folders; never outside ``dest``."""
    reason = unsafe_reason(media_file.file_id)
    if reason:
        raise MediaError(f"refused: {reason}", "/".join(media_file.file_id))
    target = dest.joinpath(*media_file.file_id)
    if os.path.commonpath([dest.resolve(), target.resolve()]) != str(dest.resolve()):
        raise MediaError("refused: would be written outside the extraction folder", "/".join(media_file.file_id))
    return target


def _copy(media_file: MediaFile, target: Path) -> str:
    """Stream one file to ``target`` (through a temporary name) and return its SHA-256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    size = 0
    with media_file.open() as src, open(partial, "xb") as out:
        while chunk := src.read(1024 * 1024):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    if size != media_file.size:
        partial.unlink()
        raise OSError(f"read {size} bytes, the media says {media_file.size}")
    os.replace(partial, target)
    return digest.hexdigest()


def extract(
    view: MediaView, files: Iterable[MediaFile], dest: Path, progress: Callable[[MediaFile], None] | None = None
) -> Extraction:
    """Copy the files into ``dest`` and write the manifest; failures are listed, never silent."""
    dest = Path(dest)
    prepare_dest(dest)
    result = Extraction(dest)
    taken: set[Path] = set()
    for media_file in files:
        file_id = "\\".join(media_file.file_id)
        try:
            target = target_path(dest, media_file)
            if target in taken or target.name == MANIFEST:
                raise MediaError("two instances map to one extracted path", file_id)
            taken.add(target)
            sha256 = _copy(media_file, target)
        except (MediaError, OSError) as exc:
            result.failed.append(
                {"file_id": file_id, "sop_instance_uid": media_file.sop_instance_uid, "reason": str(exc)}
            )
        else:
            result.written.append(
                {
                    "file_id": file_id,
                    "path": target.relative_to(dest).as_posix(),
                    "media_path": media_file.media_path,
                    "size": media_file.size,
                    "sha256": sha256,
                    "sop_instance_uid": media_file.sop_instance_uid,
                    "sop_class_uid": media_file.sop_class_uid,
                    "transfer_syntax_uid": media_file.transfer_syntax_uid,
                    "patient_id": media_file.patient_id,
                    "study_instance_uid": media_file.study_instance_uid,
                    "series_instance_uid": media_file.series_instance_uid,
                }
            )
        if progress:
            progress(media_file)
    manifest = {
        "media": str(view.path),
        "fileset_id": view.fileset_id,
        "files": result.written,
        "failed": result.failed,
        "problems": [p.as_json() | {"severity": p.severity} for p in view.problems],
    }
    result.manifest.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return result
