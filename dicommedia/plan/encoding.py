"""Which transfer syntax each instance is written in: the profile's rule and the user's compression choice."""

from __future__ import annotations

from dicommedia.inputs.dicom_file import InstanceHeader
from dicommedia.plan.hierarchy import PlannedInstance
from dicommedia.profile import EXPLICIT_VR_LE, Action, Profile
from dicommedia.standard.codecs import CODEC_FACTS


def codec_for(header: InstanceHeader, compress: str, compress_for: dict[str, str]) -> str:
    """The codec asked for this instance: per modality (--compress-for), else --compress."""
    modality = str(header.keys.get("Modality") or "").upper()
    return compress_for.get(modality, compress)


def is_lossy(codec: str) -> bool:
    """True for a lossy codec (its output gets a new SOP Instance UID, seed App B.2)."""
    return CODEC_FACTS[codec].lossy


def choose_encoding(profile: Profile, codec: str, header: InstanceHeader, warnings: list[str]) -> PlannedInstance | str:
    """The instance's planned encoding, or the reason it cannot go on the media under the profile."""
    decision = profile.decide(header.sop_class_uid, header.transfer_syntax_uid)
    if decision.action is Action.REFUSE:
        return decision.reason
    inst = PlannedInstance(header=header, record_type="")
    if codec in ("keep", "none") or not header.has_pixel_data:
        if decision.action is Action.KEEP and codec == "keep":
            inst.target_syntax = header.transfer_syntax_uid
        elif EXPLICIT_VR_LE in decision.allowed:
            inst.target_syntax = EXPLICIT_VR_LE
        else:
            return (
                f"transfer syntax {header.transfer_syntax_uid} is not allowed by {profile.name} and cannot be converted"
            )
        return inst
    target = CODEC_FACTS[codec].transfer_syntax
    if target not in decision.allowed:
        warnings.append(
            f"{header.source.label}: {profile.name} does not allow {codec} for this SOP class; not compressed"
        )
        inst.target_syntax = header.transfer_syntax_uid if decision.action is Action.KEEP else EXPLICIT_VR_LE
        return inst
    inst.target_syntax = target
    inst.codec = codec
    return inst
