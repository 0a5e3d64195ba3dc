"""``read --extract DIR``: plain copies of the instances, laid out by File ID, with MANIFEST.json."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dicommedia.errors import MediaError, one_line
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


def prepare_dest(dest: Path) -> bool:
    """Create the destination (True when it did); refuse an existing non-empty folder (nothing is overwritten)."""
    if dest.exists() and not dest.is_dir():
        raise MediaError("exists and is not a folder", str(dest))
    if dest.is_dir() and any(dest.iterdir()):
        raise MediaError("is not empty", str(dest), hint="extract into a new or empty folder")
    created = not dest.exists()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MediaError(f"cannot create the folder: {exc.strerror}", str(dest)) from None
    return created


def target_path(dest: Path, media_file: MediaFile) -> Path:
    """Where a file goes under ``dest``: its File ID components as folders; never outside ``dest``."""
    reason = unsafe_reason(media_file.file_id)
    if reason:
        raise MediaError(f"refused: {reason}", "/".join(media_file.file_id))
    target = dest.joinpath(*media_file.file_id)
    if os.path.commonpath([dest.resolve(), target.resolve()]) != str(dest.resolve()):
        raise MediaError("refused: would be written outside the extraction folder", "/".join(media_file.file_id))
    return target


class WriteError(Exception):
    """The destination refused a write (full, read-only, ...): the extraction cannot go on."""


def _copy(media_file: MediaFile, target: Path, made: list[Path]) -> str:
    """Stream one file to ``target`` (through a temporary name) and return its SHA-256.

    OSError: the media could not be read (this file fails); WriteError: the destination could not be written.
    ``made`` collects every path created, for the clean-up of an extraction that cannot finish.
    """
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    size = 0
    with media_file.open() as src:
        try:
            _make_parents(target.parent, made)
            out = open(partial, "xb")
        except OSError as exc:
            raise WriteError(exc) from None
        made.append(partial)
        with out:
            while chunk := src.read(1024 * 1024):
                digest.update(chunk)
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise WriteError(exc) from None
                size += len(chunk)
            try:
                out.flush()
            except OSError as exc:
                raise WriteError(exc) from None
    if size != media_file.size:
        raise OSError(f"read {size} bytes, the media says {media_file.size}")
    os.replace(partial, target)
    made[-1] = target
    return digest.hexdigest()


def _make_parents(folder: Path, made: list[Path]) -> None:
    """Create ``folder`` and its missing parents, recording each one made."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
        made.append(path)


def _remove(made: list[Path]) -> None:
    """Remove what an unfinished extraction created, newest first (files, then their folders)."""
    for path in reversed(made):
        try:
            path.rmdir() if path.is_dir() else path.unlink()
        except OSError:
            pass


def extract(
    view: MediaView, files: Iterable[MediaFile], dest: Path, progress: Callable[[MediaFile], None] | None = None
) -> Extraction:
    """Copy the files into ``dest`` and write the manifest; failures are listed, never silent.

    All or nothing against the destination: when it cannot be written (full, read-only) or the run is
    interrupted, everything written is removed (no ``.part`` file either) and MediaError / KeyboardInterrupt rise.
    """
    dest = Path(dest)
    made: list[Path] = [dest] if prepare_dest(dest) else []
    try:
        return _extract_into(view, files, dest, made, progress)
    except WriteError as exc:
        _remove(made)
        cause = exc.args[0]
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
        raise MediaError(
            f"cannot write the extraction: {reason}; nothing was left behind",
            str(dest),
            hint="free some space or choose another folder",
            code="write-failed",
        ) from None
    except BaseException:
        _remove(made)
        raise


def _extract_into(
    view: MediaView, files: Iterable[MediaFile], dest: Path, made: list[Path], progress: Callable | None
) -> Extraction:
    result = Extraction(dest)
    taken: set[Path] = set()
    for media_file in files:
        file_id = "\\".join(media_file.file_id)
        try:
            target = target_path(dest, media_file)
            if target in taken or target.name == MANIFEST:
                raise MediaError("two instances map to one extracted path", file_id)
            taken.add(target)
            sha256 = _copy(media_file, target, made)
        except (MediaError, OSError) as exc:
            if made and made[-1].name.endswith(".part"):
                _remove([made.pop()])
            result.failed.append(
                {"file_id": file_id, "sop_instance_uid": media_file.sop_instance_uid, "reason": one_line(exc)}
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
                    "unreferenced": media_file.unreferenced,
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
    partial = result.manifest.with_name(MANIFEST + ".part")
    made.append(partial)
    try:
        partial.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise WriteError(exc) from None
    os.replace(partial, result.manifest)
    return result
