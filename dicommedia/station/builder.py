"""A disc from a claimed spool folder, through the create pipeline; what it holds, for the catalog."""

from __future__ import annotations

import dataclasses
import hashlib
import socket
from dataclasses import dataclass, field
from pathlib import Path

from dicommedia.catalog import StudyOnVolume, VolumeEntry
from dicommedia.catalog.queries import SeriesOnVolume
from dicommedia.create import CreateOptions, CreateResult, create_fileset
from dicommedia.errors import MediaError
from dicommedia.station.spool import Claimed, Spool

_STUDY_TAGS = ["StudyInstanceUID", "PatientID", "PatientName", "AccessionNumber", "StudyDate"]


@dataclass
class DiscOutcome:
    """What became of a claimed group: volumes written (as catalogued), instances refused and why."""

    volumes: list[VolumeEntry] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    instances: int = 0


def output_path(output_dir: Path, fileset_id: str, output_format: str) -> Path:
    """Where the disc of a File-set goes: ``DIR/FILESETID.iso`` or the folder ``DIR/FILESETID``."""
    return output_dir / (f"{fileset_id}.iso" if output_format == "iso" else fileset_id)


def _study_details(folder: Path) -> dict[str, dict[str, str]]:
    """Patient and accession keys of each study in a spool folder (headers only)."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    out: dict[str, dict[str, str]] = {}
    for path in folder.iterdir():
        try:
            ds = dcmread(path, stop_before_pixels=True, specific_tags=_STUDY_TAGS)
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue  # the create pipeline reports it
        uid = str(ds.get("StudyInstanceUID", "") or "")
        if uid and uid not in out:
            out[uid] = {k: str(ds.get(k, "") or "") for k in _STUDY_TAGS[1:]}
    return out


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _volume_entry(volume, details: dict[str, dict[str, str]]) -> VolumeEntry:
    """The catalog entry of a written volume, read back from the volume itself."""
    from dicommedia.media import open_media
    from dicommedia.read.listing import build_tree

    with open_media(volume.path, plain=True) as view:
        tree = build_tree(view.files())
    studies = []
    for patient in tree:
        for study in patient.studies.values():
            keys = details.get(study.study_instance_uid or "", {})
            studies.append(
                StudyOnVolume(
                    study_instance_uid=study.study_instance_uid or "",
                    patient_id=patient.patient_id or "",
                    patient_name=patient.patient_name or keys.get("PatientName", ""),
                    accession_number=keys.get("AccessionNumber", ""),
                    study_date=study.study_date or "",
                    instances=study.instances,
                    series=[
                        SeriesOnVolume(se.series_instance_uid or "", se.modality or "", len(se.files))
                        for se in study.series.values()
                    ],
                )
            )
    label = "; ".join(sorted({f"{s.patient_name} {s.patient_id}".strip() for s in studies}))[:256]
    return VolumeEntry(
        path=str(Path(volume.path).resolve()),
        fileset_id=volume.fileset_id,
        label=label,
        media=volume.media,
        profile=volume.profile,
        sha256=_sha256(Path(volume.path)),
        bytes=volume.bytes,
        node=socket.gethostname(),
        studies=studies,
    )


def build_disc(claimed: Claimed, spool: Spool, template: CreateOptions) -> DiscOutcome:
    """Write the disc(s) of a claimed folder; instances the profile refuses are kept in the spool, never dropped.

    The output is replaced if it exists: a claimed folder is only built again after a crash, under the same
    File-set ID, so the earlier (possibly uncatalogued) image is the same disc.
    """
    outcome = DiscOutcome(instances=sum(1 for _ in claimed.folder.iterdir()))
    options = dataclasses.replace(
        template,
        inputs=[str(claimed.folder)],
        output=output_path(template.output, claimed.fileset_id, template.output_format),
        fileset_id=claimed.fileset_id,
        skip_invalid=True,
        overwrite=True,
    )
    details = _study_details(claimed.folder)
    try:
        result: CreateResult = create_fileset(options)
    except MediaError as exc:
        outcome.error = str(exc)
        outcome.refused = [(str(p), str(exc)) for p in claimed.folder.iterdir()]
        spool.keep_refused(claimed, list(claimed.folder.iterdir()), str(exc))
        return outcome
    if result.skipped:
        outcome.refused = list(result.skipped)
        for path, reason in result.skipped:
            spool.keep_refused(claimed, [Path(path)], f"{Path(path).name}: {reason}")
    outcome.volumes = [_volume_entry(v, details) for v in result.volumes]
    return outcome
