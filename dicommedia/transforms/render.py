"""One instance, rendered for the media: decode, coerce, fix references, compress, frame as Part 10.

``render`` runs in worker processes: its job and result are plain picklable data.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

from pydicom import dcmread
from pydicom.hooks import hooks
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicommedia.errors import MediaError, one_line
from dicommedia.part10.dataset import encode_body
from dicommedia.part10.meta import without_stray_meta
from dicommedia.transforms.encoding import (
    apply_coercions,
    private_vr_hook,
    remap_references,
    to_explicit_vr_little_endian,
)
from dicommedia.writers.part10 import encode_header

hooks.register_callback("raw_element_vr", private_vr_hook)


@dataclass(frozen=True)
class RenderJob:
    """What to do with one input: where it is, what to set, which encoding to write, where to spool it."""

    label: str
    spool_path: str
    path: str | None = None
    data: bytes | None = None
    coercions: dict = field(default_factory=dict)
    remap: dict = field(default_factory=dict)
    keep_syntax: bool = False  # the profile allows the input's own transfer syntax: do not decode
    codec: str | None = None
    quality: int | None = None
    new_sop_instance_uid: str | None = None
    web: object = None  # a transforms.web.WebSpec: IHE PDI web content made from the decoded pixels


@dataclass(frozen=True)
class RenderResult:
    """What was written: size, transfer syntax, SOP Instance UID, and notes for the summary."""

    size: int
    transfer_syntax: str
    sop_instance_uid: str
    notes: tuple[str, ...] = ()
    transcoded: bool = False
    web: object = None  # the transforms.web.WebResult asked for by RenderJob.web


def _load(job: RenderJob):
    try:
        with io.BytesIO(job.data) if job.data is not None else open(job.path, "rb") as fp:
            ds = dcmread(without_stray_meta(fp) or fp, force=True)
        if "TransferSyntaxUID" not in ds.file_meta:  # no File Meta (ACR-NEMA style): the encoding it was read in
            implicit, little = ds.original_encoding
            ds.file_meta.TransferSyntaxUID = (
                ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
            )
        return ds
    except Exception as exc:  # pydicom raises many types on damaged input
        raise MediaError(f"not a readable DICOM file: {one_line(exc)}", job.label) from None


def render(job: RenderJob) -> RenderResult:
    """Render one instance to ``job.spool_path`` as a Part 10 file."""
    ds = _load(job)
    notes: list[str] = []
    source_syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", ExplicitVRLittleEndian)))
    transcoded = False
    if not job.keep_syntax or job.codec:
        notes += to_explicit_vr_little_endian(ds, job.label)
        transcoded = source_syntax != ExplicitVRLittleEndian
    apply_coercions(ds, job.coercions)
    remap_references(ds, job.remap)
    web = None
    if job.web is not None:  # before lossy compression: renderings from the decoded, original pixels
        from dicommedia.transforms.web import web_content

        web = web_content(ds, job.web, job.label)
    if job.codec:
        from dicommedia.transforms.compression import CannotCompress, compress

        try:
            notes += compress(ds, job.codec, quality=job.quality, new_sop_instance_uid=job.new_sop_instance_uid)
            transcoded = True
        except CannotCompress as exc:
            notes.append(f"{job.label}: kept uncompressed: {exc}")
    syntax = str(ds.file_meta.TransferSyntaxUID)
    header = encode_header(str(ds.SOPClassUID), str(ds.SOPInstanceUID), syntax)
    body = encode_body(ds, implicit_vr=syntax == ImplicitVRLittleEndian)
    try:
        with open(job.spool_path, "wb") as out:
            out.write(header)
            out.write(body)
    except OSError as exc:  # a full or read-only spool: the run stops (the caller tells it from an input's fault)
        raise OSError(exc.errno, exc.strerror, job.spool_path) from None
    return RenderResult(
        size=os.path.getsize(job.spool_path),
        transfer_syntax=syntax,
        sop_instance_uid=str(ds.SOPInstanceUID),
        notes=tuple(notes),
        transcoded=transcoded,
        web=web,
    )


def retarget(path: str, remap: dict[str, str]) -> int:
    """Rewrite the references of an already rendered file (pixel data untouched); return its new size."""
    ds = dcmread(path)
    if remap_references(ds, remap):
        syntax = str(ds.file_meta.TransferSyntaxUID)
        with open(path, "wb") as out:
            out.write(encode_header(str(ds.SOPClassUID), str(ds.SOPInstanceUID), syntax))
            out.write(encode_body(ds, implicit_vr=syntax == ImplicitVRLittleEndian))
    return os.path.getsize(path)
