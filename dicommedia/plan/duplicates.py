"""One SOP Instance UID in several inputs: the same object (written once) or a conflict (PS3.3 C.12.1.1.1)."""

from __future__ import annotations

import hashlib
import io

from dicommedia.inputs.dicom_file import InstanceHeader
from dicommedia.plan.hierarchy import PlannedInstance
from dicommedia.standard.identity import new_uid


def content_digest(header: InstanceHeader) -> str:
    """Digest of what the object shows: decoded pixels when it has them, else its attributes."""
    from pydicom import dcmread

    from dicommedia.part10.dataset import encode_body
    from dicommedia.part10.meta import without_stray_meta

    stream = io.BytesIO(header.source.read_bytes())
    ds = dcmread(without_stray_meta(stream) or stream, force=True)
    h = hashlib.sha256()
    if "PixelData" in ds:
        from pydicom.pixels import iter_pixels

        try:
            for frame in iter_pixels(ds):  # frame by frame: a long cine is never decoded whole
                frame = frame.astype(frame.dtype.newbyteorder("<"), copy=False)  # the same values in any order
                h.update(f"{frame.shape}{frame.dtype.str}".encode())
                h.update(frame.tobytes())
            return h.hexdigest()
        except Exception:  # undecodable pixels: compare the encoded bytes instead
            h = hashlib.sha256()
    h.update(encode_body(ds))
    return h.hexdigest()


def _repeated_hashes(instances: list[PlannedInstance]) -> set[int]:
    """Hashes of the SOP Instance UIDs that more than one input may share: only those inputs are compared, the
    thousands of distinct UIDs are not held in a table."""
    hashes = sorted(hash(inst.header.sop_instance_uid) for inst in instances)
    return {a for a, b in zip(hashes, hashes[1:]) if a == b}


def drop_duplicates(
    instances: list[PlannedInstance], fix_uids: bool, warnings: list[str], refused: list[tuple[str, str]]
) -> tuple[list[PlannedInstance], int, dict[str, dict[str, str]]]:
    """Keep one of identical objects; refuse (or re-identify with --fix-uids) different objects under one UID."""
    by_uid: dict[str, PlannedInstance] = {}
    kept: list[PlannedInstance] = []
    duplicates = 0
    origin_remap: dict[str, dict[str, str]] = {}
    digests: dict[int, str] = {}  # each colliding input is decoded once, however many copies there are

    def digest(inst: PlannedInstance) -> str:
        if id(inst) not in digests:
            digests[id(inst)] = content_digest(inst.header)
        return digests[id(inst)]

    repeated = _repeated_hashes(instances)
    for inst in instances:
        uid = inst.header.sop_instance_uid
        if hash(uid) not in repeated:
            kept.append(inst)
            continue
        first = by_uid.get(uid)
        if first is None:
            by_uid[uid] = inst
            kept.append(inst)
            continue
        if digest(first) == digest(inst):
            duplicates += 1
            warnings.append(
                f"{inst.header.source.label}: same object as {first.header.source.label} "
                f"(SOP Instance UID {uid}); written once"
            )
            continue
        if not fix_uids:
            refused.append(
                (
                    inst.header.source.label,
                    f"SOP Instance UID {uid} is also used by {first.header.source.label} for a different "
                    "object (use --fix-uids to give this one new UIDs)",
                )
            )
            continue
        fresh = new_uid()
        inst.coerce({"SOPInstanceUID": fresh})
        origin_remap.setdefault(inst.header.source.origin, {})[uid] = fresh
        warnings.append(
            f"{inst.header.source.label}: SOP Instance UID {uid} conflicts with "
            f"{first.header.source.label}; new UID {fresh} written, references fixed"
        )
        kept.append(inst)
    return kept, duplicates, origin_remap
