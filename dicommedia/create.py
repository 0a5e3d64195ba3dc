"""The File-set Creator: inputs -> plan -> per-instance transforms -> DICOMDIR, PDI and ISO/folder writers."""

from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from dicommedia.errors import MediaError
from dicommedia.inputs.dicom_file import InstanceHeader, Source, file_source, read_header
from dicommedia.inputs.discover import InputKind, discover
from dicommedia.plan.duplicates import same_object
from dicommedia.plan.hierarchy import Plan, PlannedInstance, assign_file_ids, build_plan
from dicommedia.profile import EXPLICIT_VR_LE, MEDIA_CAPACITY, Action, Profile
from dicommedia.standard.identity import new_uid
from dicommedia.writers.dicomdir import build_records, encode_dicomdir
from dicommedia.writers.output import Part10Stream, VolumeFile, build_iso, iso_size, write_folder, write_iso
from dicommedia.writers.part10 import encode_header
from dicommedia.writers.pdi import index_html, readme_text, summarize

_FILESET_ID = re.compile(r"^[A-Z0-9_ ]{1,16}$")
_SECTOR = 2048
# Room for the system area, volume descriptors, path tables, root directory and PDI files of a volume.
_VOLUME_OVERHEAD = 256 * 1024
# Per series: its directory and, at worst, new study and patient directories (one sector each).
_SERIES_OVERHEAD = 3 * 2048
# Per instance: its directory record in the DICOMDIR and in the ISO directory (generous).
_INSTANCE_OVERHEAD = 1024


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
    jobs: int = 0
    overwrite: bool = False
    fix_uids: bool = False


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

    def __init__(self, refused: list[tuple[str, str]]):
        super().__init__(
            f"{len(refused)} input(s) cannot be put on the media; nothing was written",
            hint="fix or remove them, or use --skip-invalid to write the rest",
        )
        self.refused = refused


class Progress:
    """Progress callbacks the CLI renders; the default does nothing."""

    def stage(self, name: str, total: int | None) -> None:
        """A new stage begins, with ``total`` steps (None when unknown)."""

    def advance(self, steps: int = 1) -> None:
        """Steps done in the current stage."""


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


# ---------------------------------------------------------------- inputs


@dataclass
class _Gathered:
    headers: list[InstanceHeader] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    converted: int = 0


def _disc_sources(path: Path) -> tuple[list[Source], list[tuple[str, str]]]:
    """The instances of a disc given as input (ISO image or DICOMDIR): re-mastering."""
    from dicommedia.media import open_media

    view = open_media(path)
    sources = []
    for mf in view.files():
        label = f"{path}:{'/'.join(mf.file_id)}"
        sources.append(Source(label=label, size=mf.size, opener=mf.open, origin=str(path)))
    problems = [(f"{path}:{p.file_id or ''}", p.message) for p in view.problems if p.is_error]
    return sources, problems


def _convert_non_dicom(kind: InputKind, path: Path, options: CreateOptions, spool: Path, number: int,
                       context: object) -> Path:
    """Turn a picture or PDF into a Part 10 file in the spool (Appendix A)."""
    if kind is InputKind.PICTURE:
        from dicommedia.inputs.pictures import picture_to_dataset as convert
    else:
        from dicommedia.inputs.pdf import pdf_to_dataset as convert
    ds = convert(path, context, number)
    target = spool / f"sc{number:06d}.dcm"
    ds.save_as(target, enforce_file_format=True)
    return target


def _sc_context(options: CreateOptions):
    from dicommedia.inputs.pictures import ScContext

    meta = dict(options.sc_metadata)
    return ScContext(
        patient_name=meta.get("patient_name", ""),
        patient_id=meta.get("patient_id", ""),
        patient_birth_date=meta.get("patient_birth_date", ""),
        patient_sex=meta.get("patient_sex", ""),
        study_description=meta.get("study_description", ""),
        accession_number=meta.get("accession_number", ""),
        study_instance_uid=new_uid(),
        series_instance_uid=new_uid(),
    )


def gather(options: CreateOptions, spool: Path, progress: Progress) -> tuple[_Gathered, list[str]]:
    """Find every input and read its header; convert pictures and PDFs; collect what cannot be used."""
    found = discover(options.inputs)
    out = _Gathered()
    progress.stage("reading inputs", len(found.files))
    sc_context = None
    for item in found.files:
        progress.advance()
        try:
            if item.kind is InputKind.UNUSABLE:
                out.refused.append((str(item.path), item.reason))
            elif item.kind is InputKind.DICOM:
                out.headers.append(read_header(file_source(item.path, item.origin)))
            elif item.kind is InputKind.DISC:
                sources, problems = _disc_sources(item.path)
                out.refused.extend(problems)
                for source in sources:
                    try:
                        out.headers.append(read_header(source))
                    except MediaError as exc:
                        out.refused.append((source.label, exc.message))
            else:
                sc_context = sc_context or _sc_context(options)
                out.converted += 1
                converted = _convert_non_dicom(item.kind, item.path, options, spool, out.converted, sc_context)
                header = read_header(file_source(converted, item.origin))
                header.source = Source(label=str(item.path), size=header.source.size, path=converted,
                                       origin=item.origin)
                out.headers.append(header)
        except MediaError as exc:
            out.refused.append((exc.subject or str(item.path), exc.message))
    return out, found.notes


# ---------------------------------------------------------------- encoding choice


def _codec_name(options: CreateOptions, header: InstanceHeader) -> str:
    modality = str(header.keys.get("Modality") or "").upper()
    return options.compress_for.get(modality, options.compress)


def choose_encoding(options: CreateOptions, header: InstanceHeader, warnings: list[str]) -> PlannedInstance | str:
    """The instance's planned encoding, or the reason it cannot go on the media under the profile."""
    decision = options.profile.decide(header.sop_class_uid, header.transfer_syntax_uid)
    if decision.action is Action.REFUSE:
        return decision.reason
    codec = _codec_name(options, header)
    inst = PlannedInstance(header=header, record_type="")
    if codec in ("keep", "none") or not header.has_pixel_data:
        if decision.action is Action.KEEP and codec == "keep":
            inst.target_syntax = header.transfer_syntax_uid
        elif EXPLICIT_VR_LE in decision.allowed:
            inst.target_syntax = EXPLICIT_VR_LE
        else:
            return f"transfer syntax {header.transfer_syntax_uid} is not allowed by {options.profile.name} and cannot be converted"
        return inst
    from dicommedia.transforms.codecs import CODECS

    target = CODECS[codec].transfer_syntax
    if target not in decision.allowed:
        warnings.append(
            f"{header.source.label}: {options.profile.name} does not allow {codec} for this SOP class; not compressed"
        )
        inst.target_syntax = header.transfer_syntax_uid if decision.action is Action.KEEP else EXPLICIT_VR_LE
        return inst
    inst.target_syntax = target
    inst.codec = codec
    return inst


# ---------------------------------------------------------------- duplicates


def drop_duplicates(instances: list[PlannedInstance], fix_uids: bool, warnings: list[str],
                    refused: list[tuple[str, str]]) -> tuple[list[PlannedInstance], int, dict[str, dict[str, str]]]:
    """Keep one of identical objects; refuse (or re-identify with --fix-uids) different objects under one UID."""
    by_uid: dict[str, PlannedInstance] = {}
    kept: list[PlannedInstance] = []
    duplicates = 0
    origin_remap: dict[str, dict[str, str]] = {}
    for inst in instances:
        uid = inst.header.sop_instance_uid
        first = by_uid.get(uid)
        if first is None:
            by_uid[uid] = inst
            kept.append(inst)
            continue
        if same_object(first.header, inst.header):
            duplicates += 1
            warnings.append(f"{inst.header.source.label}: same object as {first.header.source.label} "
                            f"(SOP Instance UID {uid}); written once")
            continue
        if not fix_uids:
            refused.append((inst.header.source.label,
                            f"SOP Instance UID {uid} is also used by {first.header.source.label} for a different "
                            "object (use --fix-uids to give this one new UIDs)"))
            continue
        fresh = new_uid()
        inst.coercions["SOPInstanceUID"] = fresh
        origin_remap.setdefault(inst.header.source.origin, {})[uid] = fresh
        warnings.append(f"{inst.header.source.label}: SOP Instance UID {uid} conflicts with "
                        f"{first.header.source.label}; new UID {fresh} written, references fixed")
        kept.append(inst)
    return kept, duplicates, origin_remap


# ---------------------------------------------------------------- rendering


def _bounded_map(fn: Callable, jobs: Iterable, workers: int) -> Iterator[tuple[object, object]]:
    """Yield (job, result or exception), at most 2 x workers jobs in flight (streams, bounded memory)."""
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    if workers <= 1:
        for job in jobs:
            try:
                yield job, fn(job)
            except Exception as exc:  # reported per instance by the caller
                yield job, exc
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: dict[Future, object] = {}
        for job in jobs:
            pending[pool.submit(fn, job)] = job
            if len(pending) >= 2 * workers:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield pending.pop(fut), (fut.exception() or fut.result())
        for fut in list(pending):
            yield pending.pop(fut), (fut.exception() or fut.result())


def _needs_render(inst: PlannedInstance, coercions: dict, remap: dict[str, str]) -> bool:
    header = inst.header
    if header.body_offset is None or coercions or inst.codec:
        return True
    if inst.target_syntax != header.transfer_syntax_uid:
        return True
    if remap:
        data = header.source.read_bytes()
        return any(uid.encode() in data for uid in remap)
    return False


@dataclass
class _Rendered:
    files: dict[int, VolumeFile] = field(default_factory=dict)
    transcoded: int = 0


def render_all(plan: Plan, options: CreateOptions, spool: Path, remap: dict[str, str],
               origin_remap: dict[str, dict[str, str]], progress: Progress, warnings: list[str],
               refused: list[tuple[str, str]]) -> _Rendered:
    """Render every instance that must change; the rest are copied verbatim behind a new File Meta."""
    out = _Rendered()
    jobs: list[RenderJob] = []
    owners: dict[str, PlannedInstance] = {}
    for patient in plan.patients.values():
        for study in patient.studies.values():
            for series in study.series.values():
                for inst in series.instances:
                    coercions = plan.coercions_for(patient, study, series, inst)
                    inst_remap = {**remap, **origin_remap.get(inst.header.source.origin, {})}
                    if not _needs_render(inst, coercions, inst_remap):
                        out.files[id(inst)] = _passthrough(inst)
                        continue
                    from dicommedia.transforms.render import RenderJob  # loads pydicom: only when needed

                    spool_path = spool / f"r{len(jobs):07d}.dcm"
                    source = inst.header.source
                    job = RenderJob(
                        label=source.label, spool_path=str(spool_path),
                        path=str(source.path) if source.path else None,
                        data=None if source.path else source.read_bytes(),
                        coercions=coercions, remap=inst_remap,
                        keep_syntax=inst.target_syntax == inst.header.transfer_syntax_uid and not inst.codec,
                        codec=inst.codec, quality=options.quality,
                        new_sop_instance_uid=remap.get(inst.sop_instance_uid) if inst.codec else None,
                    )
                    owners[job.spool_path] = inst
                    jobs.append(job)
    if not jobs:
        return out
    from dicommedia.transforms.render import RenderResult, render

    progress.stage("encoding instances", len(jobs))
    workers = options.jobs or os.cpu_count() or 1
    failed: set[int] = set()
    # Lossy images were promised new UIDs before rendering; one that stayed uncompressed keeps its own.
    broken_promises: dict[str, str] = {}
    for job, result in _bounded_map(render, jobs, min(workers, max(1, len(jobs)))):
        progress.advance()
        inst = owners[job.spool_path]
        promised = job.new_sop_instance_uid
        if promised and (isinstance(result, Exception) or result.sop_instance_uid != promised):
            broken_promises[promised] = inst.sop_instance_uid
        if isinstance(result, Exception):
            reason = result.message if isinstance(result, MediaError) else f"{type(result).__name__}: {result}"
            refused.append((job.label, reason))
            failed.add(id(inst))
            continue
        assert isinstance(result, RenderResult)
        inst.target_syntax = result.transfer_syntax
        if result.sop_instance_uid != inst.sop_instance_uid:
            inst.coercions["SOPInstanceUID"] = result.sop_instance_uid
        warnings.extend(n for n in result.notes if "kept uncompressed" in n)
        out.transcoded += int(result.transcoded)
        out.files[id(inst)] = VolumeFile((), result.size, _lazy_file(job.spool_path, result.size))
    if broken_promises:
        _retarget_references(jobs, owners, out, broken_promises, failed)
    if failed:
        for patient in plan.patients.values():
            for study in patient.studies.values():
                for series in study.series.values():
                    series.instances = [i for i in series.instances if id(i) not in failed]
        assign_file_ids(plan)
    return out


def _retarget_references(jobs: list, owners: dict[str, PlannedInstance], out: _Rendered,
                         back: dict[str, str], failed: set[int]) -> None:
    """Point references back at the original UIDs of images that were not lossy-compressed after all."""
    from dicommedia.transforms.render import retarget

    needles = [uid.encode() for uid in back]
    for job in jobs:
        inst = owners[job.spool_path]
        if id(inst) in failed:
            continue
        with open(job.spool_path, "rb") as fp:
            if not any(n in fp.read() for n in needles):
                continue
        size = retarget(job.spool_path, back)
        out.files[id(inst)] = VolumeFile((), size, _lazy_file(job.spool_path, size))


def _lazy_file(path: str, size: int) -> Callable[[], Part10Stream]:
    """An opener that opens the spooled file only when its bytes are read (thousands of files, few descriptors)."""
    return lambda: Part10Stream(b"", lambda: open(path, "rb"), 0, size, path)


def _passthrough(inst: PlannedInstance) -> VolumeFile:
    """The source's dataset bytes, verbatim, behind our File Meta (PS3.10 7.1): no decoding, no copy."""
    header = inst.header
    meta = encode_header(header.sop_class_uid, header.sop_instance_uid, header.transfer_syntax_uid)
    length = header.source.size - header.body_offset
    source = header.source
    path = str(source.path) if source.path else None
    return VolumeFile((), len(meta) + length,
                      lambda: Part10Stream(meta, source.open, header.body_offset, length, path))


# ---------------------------------------------------------------- volumes


def _split_plan(plan: Plan, files: dict[int, VolumeFile], capacity: int | None) -> list[Plan]:
    """Volumes for --span: whole series, in order, each volume a complete file-set (never a split series)."""
    if capacity is None:
        return [plan]
    volumes: list[Plan] = [Plan()]
    used = _VOLUME_OVERHEAD
    for pkey, patient in plan.patients.items():
        for skey, study in patient.studies.items():
            for sekey, series in study.series.items():
                size = _SERIES_OVERHEAD + sum(
                    -(-files[id(i)].size // _SECTOR) * _SECTOR + _INSTANCE_OVERHEAD for i in series.instances
                )
                if size + _VOLUME_OVERHEAD > capacity:
                    raise MediaError(f"series {series.uid} alone needs {size:,} bytes, more than one volume "
                                     f"holds ({capacity:,})", hint="use larger media (--media)")
                if used + size > capacity and volumes[-1].patients:
                    volumes.append(Plan())
                    used = _VOLUME_OVERHEAD
                target = volumes[-1]
                p = target.patients.setdefault(pkey, type(patient)(patient.patient_id, coercions=patient.coercions))
                s = p.studies.setdefault(skey, type(study)(study.uid, coercions=study.coercions))
                s.series[sekey] = series
                used += size
    for vol in volumes:
        assign_file_ids(vol)
    return volumes


def _volume_files(plan: Plan, files: dict[int, VolumeFile], fileset_id: str, options: CreateOptions) -> list[VolumeFile]:
    dicomdir = encode_dicomdir(build_records(plan), fileset_id)
    out = [VolumeFile(("DICOMDIR",), len(dicomdir), lambda: _bytes_io(dicomdir))]
    if options.ihe_pdi:
        patients = summarize(plan)
        readme = readme_text(patients, fileset_id, options.profile.name).encode("utf-8")
        index = index_html(patients, fileset_id).encode("utf-8")
        out.append(VolumeFile(("README.TXT",), len(readme), lambda: _bytes_io(readme)))
        out.append(VolumeFile(("INDEX.HTM",), len(index), lambda: _bytes_io(index)))
    for inst in plan.instances():
        f = files[id(inst)]
        out.append(VolumeFile(inst.file_id, f.size, f.open))
    return out


def _bytes_io(data: bytes):
    import io

    return io.BytesIO(data)


def _volume_path(output: Path, index: int, count: int) -> Path:
    if count == 1:
        return output
    return output.with_name(f"{output.stem}_{index}{output.suffix}")


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
    spool = Path(tempfile.mkdtemp(prefix=".dicommedia-", dir=options.output.parent))
    try:
        gathered, notes = gather(options, spool, progress)
        result.warnings.extend(notes)
        result.converted = gathered.converted
        refused = list(gathered.refused)
        planned: list[PlannedInstance] = []
        for header in gathered.headers:
            choice = choose_encoding(options, header, result.warnings)
            if isinstance(choice, str):
                refused.append((header.source.label, choice))
            else:
                planned.append(choice)
        planned, result.duplicates, origin_remap = drop_duplicates(planned, options.fix_uids, result.warnings, refused)
        plan = build_plan(planned)
        refused.extend(plan.refused)
        result.warnings.extend(plan.warnings)
        if refused and not options.skip_invalid:
            raise RefusedInputs(refused)
        # Lossy compression gives a new SOP Instance UID (seed App B.2); every reference follows it.
        remap = {inst.sop_instance_uid: new_uid() for inst in plan.instances() if inst.codec and _is_lossy(inst.codec)}
        rendered = render_all(plan, options, spool, remap, origin_remap, progress, result.warnings, refused)
        result.transcoded = rendered.transcoded
        if refused and not options.skip_invalid:
            raise RefusedInputs(refused)
        result.skipped = refused
        if not plan.instances():
            raise MediaError("no instance can be put on the media; nothing was written",
                             hint="check the inputs" if refused else "give DICOM files, folders, pictures or PDFs")
        volumes = _split_plan(plan, rendered.files, capacity) if options.span else [plan]
        for index, vol in enumerate(volumes, 1):
            vol_id = fileset_id if len(volumes) == 1 else f"{fileset_id[:13]}_{index}"
            files = _volume_files(vol, rendered.files, vol_id, options)
            path = _volume_path(options.output, index, len(volumes))
            size = _write_volume(files, vol_id, path, options, capacity, progress)
            result.volumes.append(VolumeSummary(str(path), vol_id, options.profile.name, media,
                                                len(vol.instances()), size, capacity))
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    return result


def _is_lossy(codec: str) -> bool:
    from dicommedia.transforms.codecs import CODECS

    return CODECS[codec].lossy


def _write_volume(files: list[VolumeFile], vol_id: str, path: Path, options: CreateOptions,
                  capacity: int | None, progress: Progress) -> int:
    iso, to_splice = build_iso(files, vol_id)
    size = iso_size(iso)
    if capacity is not None and size > capacity:
        iso.close()
        raise MediaError(
            f"the file-set needs {size:,} bytes ({size / 1e6:,.1f} MB); {options.media or options.profile.media} "
            f"holds {capacity:,}",
            hint="use --span for several volumes, larger --media, or --compress",
        )
    if options.output_format == "dir":
        iso.close()
        progress.stage("writing folder", None)
        write_folder(files, path, options.overwrite)
        return sum(f.size for f in files)
    progress.stage("writing image", size)
    last = [0]

    def report(done: int, total: int) -> None:
        progress.advance(done - last[0])
        last[0] = done

    write_iso(iso, to_splice, path, report)
    return size
