"""Render the whole plan: unchanged files are framed as they are, the others rendered in worker processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dicommedia.errors import MediaError, one_line
from dicommedia.inputs.dicom_file import InstanceHeader, shared_number
from dicommedia.plan.hierarchy import Plan, PlannedInstance, prune_empty
from dicommedia.processes import die_with_parent
from dicommedia.progress import Progress
from dicommedia.writers.output import Part10Stream, VolumeFile
from dicommedia.writers.part10 import encode_header


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
    pool = ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        pending: dict[Future, object] = {}
        for job in jobs:
            pending[pool.submit(fn, job)] = job
            if len(pending) >= 2 * workers:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield pending.pop(fut), (fut.exception() or fut.result())
        for fut in list(pending):
            yield pending.pop(fut), (fut.exception() or fut.result())
    except BaseException:  # Ctrl-C, a full disk, the caller stopping: no worker outlives the run
        for process in list(getattr(pool, "_processes", {}).values()):  # no public way before Python 3.14
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


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
class Rendered:
    """The files of the rendered instances (by id of their PlannedInstance; the others are copied verbatim, see
    ``unchanged_stream``) and how many were transcoded."""

    files: dict[int, VolumeFile] = field(default_factory=dict)
    transcoded: int = 0
    web: dict[int, object] = field(default_factory=dict)  # transforms.web.WebResult by id of PlannedInstance


def render_all(
    plan: Plan,
    spool: Path,
    remap: dict[str, str],
    origin_remap: dict[str, dict[str, str]],
    quality: int | None,
    jobs_wanted: int,
    progress: Progress,
    warnings: list[str],
    refused: list[tuple[str, str]],
    web: dict[int, object] | None = None,
) -> Rendered:
    """Render every instance that must change; the rest are copied verbatim behind a new File Meta.

    ``web`` (WebSpec by id of PlannedInstance): IHE PDI web content, made in the same pass by the workers.
    """
    out = Rendered()
    web = web or {}
    jobs: list = []
    owners: dict[str, PlannedInstance] = {}
    for patient in plan.patients.values():
        for study in patient.studies.values():
            for series in study.series.values():
                for inst in series.instances:
                    coercions = plan.coercions_for(patient, study, series, inst)
                    inst_remap = {**remap, **origin_remap.get(inst.header.source.origin, {})}
                    if not _needs_render(inst, coercions, inst_remap):
                        if id(inst) in web:
                            jobs.append(_web_job(inst, web[id(inst)]))
                            owners[jobs[-1].spec.prefix] = inst
                        continue
                    from dicommedia.transforms.render import RenderJob  # loads pydicom: only when needed

                    spool_path = spool / f"r{len(jobs):07d}.dcm"
                    source = inst.header.source
                    job = RenderJob(
                        label=source.label,
                        spool_path=str(spool_path),
                        path=source.path,
                        data=None if source.path else source.read_bytes(),
                        coercions=coercions,
                        remap=inst_remap,
                        keep_syntax=inst.target_syntax == inst.header.transfer_syntax_uid and not inst.codec,
                        codec=inst.codec,
                        quality=quality,
                        new_sop_instance_uid=remap.get(inst.sop_instance_uid) if inst.codec else None,
                        web=web.get(id(inst)),
                    )
                    owners[job.spool_path] = inst
                    jobs.append(job)
    if not jobs:
        return out
    from dicommedia.transforms.render import RenderJob, RenderResult

    progress.stage("encoding instances", len(jobs))
    workers = jobs_wanted or os.cpu_count() or 1
    failed: set[int] = set()
    # Lossy images were promised new UIDs before rendering; one that stayed uncompressed keeps its own.
    broken_promises: dict[str, str] = {}
    for job, result in _bounded_map(_work, jobs, min(workers, max(1, len(jobs)))):
        progress.advance()
        if not isinstance(job, RenderJob):  # web content of an instance copied verbatim
            _take_web(out, owners[job.spec.prefix], result, warnings)
            continue
        inst = owners[job.spool_path]
        promised = job.new_sop_instance_uid
        if promised and (isinstance(result, Exception) or result.sop_instance_uid != promised):
            broken_promises[promised] = inst.sop_instance_uid
        if isinstance(result, OSError):  # the spool could not be written (full, read-only): nothing can go on
            raise result
        if isinstance(result, Exception):
            reason = result.message if isinstance(result, MediaError) else f"cannot be rendered: {one_line(result)}"
            refused.append((job.label, reason))
            failed.add(id(inst))
            continue
        assert isinstance(result, RenderResult)
        inst.target_syntax = result.transfer_syntax
        if result.sop_instance_uid != inst.sop_instance_uid:
            inst.coerce({"SOPInstanceUID": result.sop_instance_uid})
        warnings.extend(n for n in result.notes if "kept uncompressed" in n or "left out" in n)
        out.transcoded += int(result.transcoded)
        _take_web(out, inst, result.web, warnings)
        out.files[id(inst)] = VolumeFile((), result.size, _lazy_file(job.spool_path, result.size))
    if broken_promises:
        _retarget_references(jobs, owners, out, broken_promises, failed)
    if failed:
        for patient in plan.patients.values():
            for study in patient.studies.values():
                for series in study.series.values():
                    series.instances = [i for i in series.instances if id(i) not in failed]
        prune_empty(plan)
    return out


def _retarget_references(
    jobs: list, owners: dict[str, PlannedInstance], out: Rendered, back: dict[str, str], failed: set[int]
) -> None:
    """Point references back at the original UIDs of images that were not lossy-compressed after all."""
    from dicommedia.transforms.render import RenderJob, retarget

    needles = [uid.encode() for uid in back]
    for job in jobs:
        if not isinstance(job, RenderJob):
            continue
        inst = owners[job.spool_path]
        if id(inst) in failed:
            continue
        with open(job.spool_path, "rb") as fp:
            if not any(n in fp.read() for n in needles):
                continue
        size = retarget(job.spool_path, back)
        out.files[id(inst)] = VolumeFile((), size, _lazy_file(job.spool_path, size))


def _work(job: object) -> object:
    """The worker's entry point: a RenderJob renders an instance, a WebJob only makes its web content."""
    from dicommedia.transforms.render import RenderJob, render
    from dicommedia.transforms.web import render_web

    return render(job) if isinstance(job, RenderJob) else render_web(job)


def _web_job(inst: PlannedInstance, spec: object) -> object:
    from dicommedia.transforms.web import WebJob

    source = inst.header.source
    return WebJob(source.label, spec, source.path, None if source.path else source.read_bytes())


def _take_web(out: Rendered, inst: PlannedInstance, result: object, warnings: list[str]) -> None:
    """Keep an instance's web content; a failure there leaves the image without rendering, with a warning."""
    if result is None:
        return
    if isinstance(result, Exception):
        warnings.append(f"{inst.header.source.label}: no web rendering ({result})")
        return
    if result.note:
        warnings.append(result.note)
    out.web[id(inst)] = result


def _lazy_file(path: str, size: int) -> Callable[[], Part10Stream]:
    """An opener that opens the spooled file only when its bytes are read (thousands of files, few descriptors)."""
    return lambda: Part10Stream(b"", lambda: open(path, "rb"), 0, size, path)


def unchanged_stream(header: InstanceHeader) -> Part10Stream:
    """An unchanged input as its file on the media: the source's dataset bytes, verbatim, behind our File Meta
    (PS3.10 7.1): no decoding, no copy."""
    meta = encode_header(header.sop_class_uid, header.sop_instance_uid, header.transfer_syntax_uid)
    source = header.source
    return Part10Stream(meta, source.open, header.body_offset, source.size - header.body_offset, source.path)


def unchanged_size(header: InstanceHeader) -> int:
    """Bytes of ``unchanged_stream``."""
    meta_length = len(encode_header(header.sop_class_uid, header.sop_instance_uid, header.transfer_syntax_uid))
    return shared_number(meta_length + header.source.size - header.body_offset)
