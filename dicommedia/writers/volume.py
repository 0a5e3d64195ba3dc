"""Volumes: splitting a plan over several media (--span), laying out and writing each one."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from dicommedia.errors import MediaError
from dicommedia.inputs.dicom_file import InstanceHeader, shared_number
from dicommedia.plan.hierarchy import Plan, PlannedInstance, file_id
from dicommedia.progress import Progress
from dicommedia.transforms.batch import unchanged_size, unchanged_stream
from dicommedia.writers.dicomdir import write_dicomdir
from dicommedia.writers.early_copy import EarlyCopy
from dicommedia.writers.output import ImageFile, Part10Stream, VolumeFile, build_iso, write_folder, write_iso

_SECTOR = 2048
# Room for the system area, volume descriptors, path tables, root directory and PDI files of a volume.
_VOLUME_OVERHEAD = 256 * 1024
# Per series: its directory and, at worst, new study and patient directories (one sector each).
_SERIES_OVERHEAD = 3 * 2048
# Per instance: its directory record in the DICOMDIR and in the ISO directory (generous).
_INSTANCE_OVERHEAD = 1024
# A UDF bridge adds its descriptor sequences and anchor (up to sector 257) and a File Entry per file and folder.
_UDF_VOLUME_OVERHEAD = 260 * 2048
# A level 1 file is one extent; its Data Length is a 32-bit field (ECMA-119 9.1.4). With a UDF bridge a bigger
# file is one UDF File Entry and, on the ISO 9660 side, a multi-extent file (level 3, ECMA-119 10.3).
_MAX_FILE = 0xFFFFFFFF


def split_plan(plan: Plan, files: dict[int, VolumeFile], capacity: int | None, udf: bool = False) -> list[Plan]:
    """Volumes for --span: whole series, in order, each volume a complete file-set (never a split series)."""
    if capacity is None:
        return [plan]
    # UDF: the bridge's descriptors per volume, and a File Entry sector per file and folder.
    volume_overhead = _VOLUME_OVERHEAD + (_UDF_VOLUME_OVERHEAD if udf else 0)
    series_overhead = _SERIES_OVERHEAD * (2 if udf else 1)
    instance_overhead = _INSTANCE_OVERHEAD + (_SECTOR if udf else 0)
    volumes: list[Plan] = [Plan()]
    used = volume_overhead
    for pkey, patient in plan.patients.items():
        for skey, study in patient.studies.items():
            for sekey, series in study.series.items():
                size = series_overhead + sum(
                    -(-_size(i, files) // _SECTOR) * _SECTOR + instance_overhead for i in series.instances
                )
                if size + volume_overhead > capacity:
                    raise MediaError(
                        f"series {series.uid} alone needs {size:,} bytes, more than one volume holds ({capacity:,})",
                        hint="use larger media (--media)",
                    )
                if used + size > capacity and volumes[-1].patients:
                    volumes.append(Plan())
                    used = volume_overhead
                target = volumes[-1]
                p = target.patients.setdefault(pkey, type(patient)(patient.patient_id, coercions=patient.coercions))
                s = p.studies.setdefault(skey, type(study)(study.uid, coercions=study.coercions))
                s.series[sekey] = series
                used += size
    return volumes


def _size(inst: PlannedInstance, files: dict[int, VolumeFile]) -> int:
    """Bytes of an instance's file: as rendered (``files``, by id of PlannedInstance), else copied unchanged."""
    rendered = files.get(id(inst))
    return unchanged_size(inst.header) if rendered is None else rendered.size


class _InstanceFile:
    """An instance as a file of the volume, made when it is read: many thousand are held until written."""

    __slots__ = ("folder", "number", "size", "source")

    def __init__(self, folder: tuple[str, ...], number: int, size: int, source: VolumeFile | InstanceHeader):
        self.folder, self.number, self.size, self.source = folder, number, size, source

    @property
    def parts(self) -> tuple[str, ...]:
        """Its File ID, as path components."""
        return file_id(self.folder, self.number)

    def open(self) -> BinaryIO:
        """Its bytes: the rendered file, or the unchanged input behind our File Meta."""
        source = self.source
        return source.open() if isinstance(source, VolumeFile) else unchanged_stream(source)


def volume_files(
    plan: Plan, files: dict[int, VolumeFile], fileset_id: str, spool: Path, udf: bool = False
) -> list[VolumeFile | _InstanceFile]:
    """What a volume holds of DICOM: the DICOMDIR (written to the spool: ~350 bytes a record) and the instances
    under their File IDs (``files``: the rendered ones, by id of their PlannedInstance)."""
    path = str(spool / f"DICOMDIR.{fileset_id}")
    with open(path, "wb") as out:
        size = write_dicomdir(plan, fileset_id, out)
    out: list[VolumeFile | _InstanceFile] = [
        VolumeFile(("DICOMDIR",), size, lambda: Part10Stream(b"", lambda: open(path, "rb"), 0, size, path))
    ]
    for folder, _patient, _study, series in plan.series_folders():
        for number, inst in enumerate(series.instances, 1):
            length = _size(inst, files)
            if length > _MAX_FILE and not udf:
                raise MediaError(
                    f"{length:,} bytes: more than one ISO 9660 level 1 file can hold (4 GiB)",
                    inst.header.source.label,
                    "use --udf (a UDF bridge holds it, with a multi-extent ISO 9660 file)",
                )
            out.append(_InstanceFile(folder, shared_number(number), length, files.get(id(inst)) or inst.header))
    return out


def volume_path(output: Path, index: int, count: int) -> Path:
    """X.iso for one volume; X_1.iso, X_2.iso, ... for several (--span)."""
    if count == 1:
        return output
    return output.with_name(f"{output.stem}_{index}{output.suffix}")


def write_volume(
    files: list[VolumeFile],
    vol_id: str,
    path: Path,
    output_format: str,
    media: str,
    capacity: int | None,
    overwrite: bool,
    progress: Progress,
    udf: bool = False,
    target: ImageFile | None = None,
    early: EarlyCopy | None = None,
) -> int:
    """Check the exact size against the media, then write the image (or folder); return its size.

    ``target``: the image file already open, with ``early`` copies in it (an image without bridge)."""
    placed, first_free = _early_placements(files, target, early)
    image = build_iso(files, vol_id, udf, placed, first_free)
    size = image.size
    if capacity is not None and size > capacity:
        image.close()
        raise MediaError(
            f"the file-set needs {size:,} bytes ({size / 1e6:,.1f} MB); {media} holds {capacity:,}",
            hint="use --span for several volumes, larger --media, or --compress",
        )
    if output_format == "dir":
        image.close()
        progress.stage("writing folder", None)
        write_folder(files, path, overwrite)
        return sum(f.size for f in files)
    progress.stage("writing image", size)
    last = [0]

    def report(done: int, total: int) -> None:
        progress.advance(done - last[0])
        last[0] = done

    write_iso(image, path, report, target)
    return size


def _early_placements(
    files: list[VolumeFile | _InstanceFile], target: ImageFile | None, early: EarlyCopy | None
) -> tuple[Sequence[int], int]:
    """Where the early copies put the files (waiting for the last ones); none if one went unused."""
    if target is None or early is None:
        return (), 0
    early.finish()
    placed = array("I", bytes(4 * len(files)))
    for index, f in enumerate(files):
        header = f.source if isinstance(f, _InstanceFile) else None
        if isinstance(header, InstanceHeader) and header.image_sector:
            placed[index] = header.image_sector
    if sum(1 for sector in placed if sector) != early.copied:
        target.restart()  # planning changed or dropped a copied instance: write the image afresh
        return (), 0
    return placed, early.first_free
