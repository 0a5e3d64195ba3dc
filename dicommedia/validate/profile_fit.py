"""Which media application profile a disc's content fits (PS3.11): ``--profile auto``, and the hint given when
the disc was checked against a profile that another one fits better (its transfer syntaxes, its media size)."""

from __future__ import annotations

from dicommedia.profile import Action, Profile, load_profile, profile_names

# When several profiles fit, the first one here wins: the plainest encoding, then the smallest media.
PREFERENCE = (
    "STD-GEN-CD",
    "AUG-GEN-DRS-CD",
    "STD-GEN-DVD-RAM",
    "AUG-GEN-DRS-DVD-RAM",
    "STD-GEN-DVD-JPEG",
    "STD-GEN-DVD-J2K",
    "STD-GEN-BD-JPEG",
    "STD-GEN-BD-J2K",
    "STD-GEN-USB-JPEG",
    "STD-GEN-USB-J2K",
)


def misfits(profile: Profile, instances: list[tuple[str, str]], total_bytes: int) -> int:
    """Instances whose SOP class or transfer syntax the profile does not take as they are, plus 1 when the disc is
    larger than the profile's media."""
    count = sum(1 for sop_class, syntax in instances if profile.decide(sop_class, syntax).action is not Action.KEEP)
    return count + (profile.capacity is not None and total_bytes > profile.capacity)


def shipped_profiles() -> list[Profile]:
    """The shipped profiles in order of preference."""
    names = profile_names()
    ordered = [n for n in PREFERENCE if n in names] + [n for n in names if n not in PREFERENCE]
    return [load_profile(n) for n in ordered]


def best_fit(instances: list[tuple[str, str]], total_bytes: int) -> Profile:
    """The shipped profile the content fits best (fewest misfits; the preferred one among equals)."""
    return min(shipped_profiles(), key=lambda p: misfits(p, instances, total_bytes))
