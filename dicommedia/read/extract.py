"""``read --extract DIR``: plain copies of the instances, laid out by File ID, with MANIFEST.json."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from dicommedia.errors import MediaError, one_line
from dicommedia.media import MediaFile, MediaView
from dicommedia.media.store import unsafe_reason
from dicommedia.read.coerce import CoercionError
from dicommedia.read.jobs import Failure, describe, read_head
from dicommedia.read.new_uids import NewUids
from dicommedia.read.reconcile import Identity, Reconciler, Refusal, reconciled_head

MANIFEST = "MANIFEST.json"


@dataclass
class Extraction:
    """What an extraction wrote and what it could not."""

    dest: Path
    written: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # unmapped instances left out (--unmapped skip)

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


@dataclass(frozen=True)
class Splice:
    """A rewritten data set head: at ``offset`` of the file, ``head`` replaces ``replaced`` stored bytes."""

    offset: int
    head: bytes
    replaced: int


def _chunks(src: BinaryIO, splice: Splice | None) -> Iterator[bytes]:
    """The file's bytes as written: as stored, or with the head of its data set replaced by ``splice``."""
    if splice is not None:
        yield src.read(splice.offset)
        yield splice.head
        src.read(splice.replaced)
    while chunk := src.read(1024 * 1024):
        yield chunk


def _renumbered(media_file: MediaFile, splice: Splice | None, new_uids: NewUids) -> bytes:
    """The whole file (with ``splice`` applied) under the import's new UIDs."""
    with media_file.open() as src:
        raw = b"".join(_chunks(src, splice))
    consumed = len(raw) if splice is None else len(raw) - len(splice.head) + splice.replaced
    if consumed != media_file.size:
        raise OSError(f"read {consumed} bytes, the media says {media_file.size}")
    try:
        return new_uids.part10(raw)
    except CoercionError as exc:
        raise MediaError(str(exc), "\\".join(media_file.file_id)) from None


def _copy(
    media_file: MediaFile, target: Path, made: list[Path], rewrite: Splice | bytes | None = None
) -> tuple[str, int]:
    """Stream one file to ``target`` (through a temporary name); its SHA-256 and size as written.

    OSError: the media could not be read (this file fails); WriteError: the destination could not be written.
    ``made`` collects every path created, for the clean-up of an extraction that cannot finish.
    """
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    size = 0
    splice = rewrite if isinstance(rewrite, Splice) else None
    with media_file.open() as src:
        try:
            _make_parents(target.parent, made)
            out = open(partial, "xb")
        except OSError as exc:
            raise WriteError(exc) from None
        made.append(partial)
        with out:
            for chunk in [rewrite] if isinstance(rewrite, bytes) else _chunks(src, splice):
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
    read = size if splice is None else size - len(splice.head) + splice.replaced
    if not isinstance(rewrite, bytes) and read != media_file.size:
        raise OSError(f"read {read} bytes, the media says {media_file.size}")
    os.replace(partial, target)
    made[-1] = target
    return digest.hexdigest(), size


def reconcile(media_file: MediaFile, reconciler: Reconciler) -> tuple[Splice | None, Identity] | Refusal:
    """The local identity of an instance and the rewrite of its data set head (the send path's coercion).

    MediaError when the instance cannot be read or rewritten.
    """
    file_id = "\\".join(media_file.file_id)
    job = describe(media_file)
    if isinstance(job, Failure):
        raise MediaError(job.reason, file_id)
    try:
        _, offset, head = read_head(media_file)
        rewrite = reconciled_head(job, offset, head, reconciler)
    except (CoercionError, ValueError, OSError) as exc:
        raise MediaError(f"cannot give the instance its local identity: {exc}", file_id) from None
    if isinstance(rewrite, Refusal):
        return rewrite
    assert job.identity is not None
    return (None if rewrite is None else Splice(offset, *rewrite)), job.identity


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
    view: MediaView,
    files: Iterable[MediaFile],
    dest: Path,
    progress: Callable[[MediaFile], None] | None = None,
    reconciler: Reconciler | None = None,
    new_uids: NewUids | None = None,
) -> Extraction:
    """Copy the files into ``dest`` and write the manifest; failures are listed, never silent.

    With a ``reconciler``, each file is written under its local identity (the outside values kept in the
    Original Attributes Sequence, as on import); an unmapped instance is skipped or failed, never written as is
    unless ``--unmapped send`` says so. With ``new_uids``, each file gets the import's new UIDs.

    All or nothing against the destination: when it cannot be written (full, read-only) or the run is
    interrupted, everything written is removed (no ``.part`` file either) and MediaError / KeyboardInterrupt rise.
    """
    dest = Path(dest)
    made: list[Path] = [dest] if prepare_dest(dest) else []
    try:
        return _extract_into(view, files, dest, made, progress, reconciler, new_uids)
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
    view: MediaView,
    files: Iterable[MediaFile],
    dest: Path,
    made: list[Path],
    progress: Callable | None,
    reconciler: Reconciler | None,
    new_uids: NewUids | None,
) -> Extraction:
    result = Extraction(dest)
    taken: set[Path] = set()

    def renamed(uid: str | None) -> str | None:
        return new_uids.new(uid) if new_uids and uid else uid

    for media_file in files:
        file_id = "\\".join(media_file.file_id)
        identity: Identity | None = None
        try:
            target = target_path(dest, media_file)
            if target in taken or target.name == MANIFEST:
                raise MediaError("two instances map to one extracted path", file_id)
            splice = None
            if reconciler is not None:
                local = reconcile(media_file, reconciler)
                if isinstance(local, Refusal):
                    entry = {"file_id": file_id, "sop_instance_uid": media_file.sop_instance_uid}
                    (result.skipped if local.skip else result.failed).append(entry | {"reason": local.reason})
                    if progress:
                        progress(media_file)
                    continue
                splice, identity = local
            taken.add(target)
            rewrite = _renumbered(media_file, splice, new_uids) if new_uids else splice
            sha256, size = _copy(media_file, target, made, rewrite)
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
                    "size": size,
                    "sha256": sha256,
                    "sop_instance_uid": renamed(media_file.sop_instance_uid),
                    "sop_class_uid": media_file.sop_class_uid,
                    "transfer_syntax_uid": media_file.transfer_syntax_uid,
                    "patient_id": media_file.patient_id,
                    "study_instance_uid": renamed(media_file.study_instance_uid),
                    "series_instance_uid": renamed(media_file.series_instance_uid),
                    "unreferenced": media_file.unreferenced,
                }
                | ({} if identity is None else {"identity": _identity_json(identity)})
                | ({"original_sop_instance_uid": media_file.sop_instance_uid} if new_uids else {})
            )
        if progress:
            progress(media_file)
    manifest = {
        "media": str(view.path),
        "fileset_id": view.fileset_id,
        "files": result.written,
        "failed": result.failed,
        "skipped": result.skipped,
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


def _identity_json(identity: Identity) -> dict:
    """The local identity a file was written with, for the manifest."""
    return {"source": identity.source, "values": identity.show()}
