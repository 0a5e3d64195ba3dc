"""The File-set Creator: inputs -> plan -> per-instance transforms -> DICOMDIR, PDI and ISO/folder writers."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dicommedia.errors import MediaError
from dicommedia.inputs.dicom_file import InstanceHeader
from dicommedia.inputs.gather import Gathered, gather
from dicommedia.plan.duplicates import drop_duplicates
from dicommedia.plan.encoding import choose_encoding, codec_for, is_lossy
from dicommedia.plan.hierarchy import PlannedInstance, build_plan, needs_no_repair
from dicommedia.profile import MEDIA_CAPACITY, Profile
from dicommedia.progress import Progress
from dicommedia.standard.codecs import CODEC_FACTS
from dicommedia.standard.identity import new_uid
from dicommedia.transforms.batch import render_all
from dicommedia.writers.early_copy import EarlyCopy
from dicommedia.writers.label import disc_label, write_label
from dicommedia.writers.leftovers import Spool
from dicommedia.writers.output import ImageFile, output_failure
from dicommedia.writers.volume import split_plan, volume_files, volume_path, write_volume
from dicommedia.writers.web.content import PdiRequest, fitting_pdi, web_specs

_FILESET_ID = re.compile(r"^[A-Z0-9_ ]{1,16}$")


@dataclass
class CreateOptions:
    """Everything ``dicommedia create`` was asked to do (SPEC 2.1)."""

    inputs: list[str]
    output: Path
    profile: Profile
    media: str | None = None
    fileset_id: str | None = None
    output_format: str = "iso"
    compress: str = "keep"
    compress_for: dict[str, str] = field(default_factory=dict)
    quality: int | None = None
    sc_metadata: dict[str, str] = field(default_factory=dict)
    span: bool = False
    skip_invalid: bool = False
    ihe_pdi: bool = True
    pdi: PdiRequest = field(default_factory=PdiRequest)  # web content, who made the disc, a viewer
    jobs: int = 0
    overwrite: bool = False
    fix_uids: bool = False
    udf: bool | None = None  # a UDF bridge; None: as the profile says (DVD and BD profiles)
    label: bool = False  # also write each volume's disc label (X.label.json, X.label.pdf)
    # --from: fills the gathered headers as instances arrive from a PACS (inputs/retrieve.py RetrieveSource)
    retrieve: Callable[[Path, Gathered, Progress], None] | None = None


@dataclass
class VolumeSummary:
    """One written volume, as the JSON summary reports it."""

    path: str
    fileset_id: str
    profile: str
    media: str
    instances: int
    bytes: int
    capacity_bytes: int | None
    label: dict | None = None  # the IHE PDI label text (patients, date, institution, DICOM ONLY / PLUS WEB)
    label_files: list[str] = field(default_factory=list)


@dataclass
class CreateResult:
    """The outcome: volumes written, inputs left out (with reasons), counts and warnings."""

    volumes: list[VolumeSummary] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    converted: int = 0
    transcoded: int = 0
    duplicates: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        """The SPEC 2.1 ``--json`` summary (plus warnings)."""
        return {
            "volumes": [vars(v) for v in self.volumes],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "converted": self.converted,
            "transcoded": self.transcoded,
            "duplicates": self.duplicates,
            "warnings": self.warnings,
        }


class RefusedInputs(MediaError):
    """All-or-nothing: some inputs cannot go on the media; nothing was written."""

    def __init__(self, refused: list[tuple[str, str]], message: str = ""):
        super().__init__(
            message or f"{len(refused)} input(s) cannot be put on the media; nothing was written",
            hint="fix or remove them" if message else "fix or remove them, or use --skip-invalid to write the rest",
        )
        self.refused = refused


def default_fileset_id() -> str:
    """A File-set ID that names the day and time the disc was made."""
    return "DM" + _dt.datetime.now().strftime("%Y%m%d%H%M")


def check_fileset_id(value: str) -> str:
    """A File-set ID (0004,1130): CS, 1-16 of ``A-Z 0-9 _ space`` (PS3.5 6.2); also the ISO Volume Identifier."""
    if not _FILESET_ID.match(value) or value != value.strip():
        raise MediaError(f"File-set ID {value!r} must be 1-16 of A-Z 0-9 _", hint="e.g. --fileset-id CT_20240101")
    return value


def _check_output(options: CreateOptions) -> None:
    out = options.output
    if options.output_format == "iso":
        if out.is_dir():
            raise MediaError("is a folder; an ISO output needs a file name", str(out), "use X.iso, or --format dir")
        if out.exists() and not options.overwrite:
            raise MediaError("already exists", str(out), "use --overwrite to replace it")
    elif out.exists() and (not out.is_dir() or (any(out.iterdir()) and not options.overwrite)):
        raise MediaError("exists and is not an empty folder", str(out), "use --overwrite to replace it")
    if not out.parent.exists():
        raise MediaError("the folder for the output does not exist", str(out.parent))


def create_fileset(options: CreateOptions, progress: Progress | None = None) -> CreateResult:
    """Create the file-set(s): all-or-nothing unless --skip-invalid; raise MediaError when nothing can be written."""
    progress = progress or Progress()
    _check_output(options)
    fileset_id = check_fileset_id(options.fileset_id) if options.fileset_id else default_fileset_id()
    media = options.media or options.profile.media
    if media not in MEDIA_CAPACITY:
        raise MediaError(f"unknown media {media!r}", hint=f"one of {', '.join(MEDIA_CAPACITY)}")
    capacity = MEDIA_CAPACITY[media]
    result = CreateResult()
    scratch = _scratch(options.output)
    spool = scratch.path
    udf = options.profile.udf if options.udf is None else options.udf
    target: ImageFile | None = None
    early: EarlyCopy | None = None
    try:
        target, early = _early_copy(options, udf, capacity)
        refused: list[tuple[str, str]] = []
        planned: list[PlannedInstance] = []

        def take(header: InstanceHeader) -> None:
            codec = codec_for(header, options.compress, options.compress_for)
            choice = choose_encoding(options.profile, codec, header, result.warnings)
            if isinstance(choice, str):
                refused.append((header.source.label, choice))
                return
            planned.append(choice)
            if early is not None and not choice.codec and choice.target_syntax == header.transfer_syntax_uid:
                if needs_no_repair(header):
                    early.offer(header)

        gathered = gather(options.inputs, options.sc_metadata, spool, progress, take)
        if options.retrieve is not None:
            options.retrieve(spool, gathered, progress)
            for header in gathered.headers:
                take(header)
        result.warnings.extend(gathered.notes)
        result.converted = gathered.converted
        refused[:0] = gathered.refused
        planned, result.duplicates, origin_remap = drop_duplicates(planned, options.fix_uids, result.warnings, refused)
        plan = build_plan(planned)
        refused.extend(plan.refused)
        result.warnings.extend(plan.warnings)
        if refused and not options.skip_invalid:
            raise RefusedInputs(refused)
        # Lossy compression gives a new SOP Instance UID (seed App B.2); every reference follows it.
        remap = {inst.sop_instance_uid: new_uid() for inst in plan.instances() if inst.codec and is_lossy(inst.codec)}
        web_mode = options.pdi.web if options.ihe_pdi else "none"
        rendered = render_all(
            plan,
            spool,
            remap,
            origin_remap,
            options.quality,
            options.jobs,
            progress,
            result.warnings,
            refused,
            web_specs(plan, web_mode, spool),
        )
        result.transcoded = rendered.transcoded
        if refused and not options.skip_invalid:
            raise RefusedInputs(refused)
        result.skipped = refused
        if not plan.instances():
            if refused:
                raise RefusedInputs(refused, "no instance can be put on the media; nothing was written")
            raise MediaError(
                "no instance can be put on the media; nothing was written",
                hint="give DICOM files, folders, pictures or PDFs",
            )
        volumes = split_plan(plan, rendered.files, capacity, udf) if options.span else [plan]
        for index, vol in enumerate(volumes, 1):
            vol_id = fileset_id if len(volumes) == 1 else f"{fileset_id[:13]}_{index}"
            files = volume_files(vol, rendered.files, vol_id, spool, udf)
            label, has_web = None, False
            if options.ihe_pdi:
                pdi = fitting_pdi(
                    vol, rendered.web, files, capacity, vol_id, options.profile.name, options.pdi, result.warnings
                )
                files += pdi.files
                label, has_web = pdi.label, pdi.web != "none"
            path = volume_path(options.output, index, len(volumes))
            size = write_volume(
                files,
                vol_id,
                path,
                options.output_format,
                media,
                capacity,
                options.overwrite,
                progress,
                udf,
                target,
                early,
            )
            labels = []
            if options.label:
                # the printed label says what the disc got: DICOM ONLY after a --web fallback to none
                printable = disc_label(vol, vol_id, index, len(volumes), has_web, options.pdi.maker.institution)
                labels = [str(p) for p in write_label(printable, path)]
            result.volumes.append(
                VolumeSummary(
                    str(path), vol_id, options.profile.name, media, len(vol.instances()), size, capacity, label, labels
                )
            )
    except OSError as exc:  # a full or read-only output, an input gone while it was copied
        raise output_failure(exc, options.output) from None
    finally:
        if early is not None:
            early.close()
        if target is not None:
            target.discard()
        scratch.close()
    return result


def _early_copy(options: CreateOptions, udf: bool, capacity: int | None) -> tuple[ImageFile | None, EarlyCopy | None]:
    """The image, open, and its copier of unchanged instances (writers/early_copy.py): for one ISO 9660 volume
    without bridge, and no lossy codec (its new UIDs would change the references in other instances)."""
    codecs = {options.compress, *options.compress_for.values()}
    if options.output_format != "iso" or udf or options.span or any(is_lossy(c) for c in codecs if c in CODEC_FACTS):
        return None, None
    target = ImageFile(options.output)
    try:
        return target, EarlyCopy(target.fileno(), capacity)
    except BaseException:
        target.discard()
        raise


def _scratch(output: Path) -> Spool:
    """The run's spool beside the output (removed however the run ends); a folder we cannot write is named."""
    try:
        return Spool(output.parent)
    except OSError as exc:
        raise output_failure(exc, output) from None
