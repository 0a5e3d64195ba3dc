"""``dicommedia validate``: check a medium at every layer against a media application profile (SPEC 2.3).

Layers: the ISO 9660 volume, the DICOMDIR, the references between records and files, each file, the media.
Every finding carries a stable code; errors make the medium invalid, warnings do not.
"""

from __future__ import annotations

import warnings as py_warnings
from collections.abc import Callable
from pathlib import Path

from dicommedia.errors import MediaError
from dicommedia.media import MediaFile, MediaView, open_media
from dicommedia.media.findings import Finding, show_file_id, warning
from dicommedia.media.store import IsoStore, is_iso_image
from dicommedia.profile import Profile
from dicommedia.validate.directory import check_header, check_records
from dicommedia.validate.files import check_file, check_profile, encoding_of
from dicommedia.validate.iso import check_extensions, check_iso
from dicommedia.validate.profile_fit import best_fit, misfits
from dicommedia.validate.references import (
    Duplicates,
    check_file_ids,
    check_record_match,
    check_unreferenced,
    file_keys,
)
from dicommedia.validate.report import Report
from dicommedia.validate.udf import check_udf

__all__ = ["Report", "validate_media"]


def _profile_for(
    report: Report,
    asked: Profile | None,
    files: list[MediaFile],
    encodings: list[tuple[str, str] | None],
    total: int,
) -> Profile:
    """Check every file against the profile asked for (or the best fit); say when another one fits better.

    ``encodings``: (SOP class, transfer syntax) of each of ``files``, None when its File Meta lacks them.
    """
    instances = [encoding for encoding in encodings if encoding is not None]
    best = best_fit(instances, total)
    profile = asked or best
    report.profile = profile.name
    if asked is None:
        report.add(warning("profile-detected", f"checked under {best.name}: the profile its content fits best"))
    elif best.name != asked.name and misfits(best, instances, total) < misfits(asked, instances, total):
        report.add(
            warning(
                "other-profile",
                f"the disc's content fits {best.name} better than {asked.name} (validate with --profile {best.name})",
            )
        )
    for media_file, encoding in zip(files, encodings):
        if encoding is not None:
            report.add(check_profile(profile, *encoding, show_file_id(media_file.file_id)))
    return profile


def check_media(view: MediaView, profile: Profile) -> list[Finding]:
    """Total size within the profile's capacity; the IHE PDI files a reader looks for first."""
    findings = []
    capacity = profile.capacity
    total = view.store.total_bytes()
    if capacity is not None and total > capacity:
        findings.append(
            Finding(
                "capacity-exceeded",
                f"{total:,} bytes, {profile.media} holds {capacity:,} ({profile.name})",
                view.store.label,
            )
        )
    if view.kind != "scan":
        for name, code in (("README.TXT", "no-readme"), ("INDEX.HTM", "no-index")):
            if view.store.find((), name) is None:
                findings.append(warning(code, f"no {name} in the root (IHE PDI)", view.store.label))
    return findings


def validate_media(
    path: str | Path, profile: Profile | None, progress: Callable[[MediaFile], None] | None = None
) -> Report:
    """Validate an ISO image, a mounted disc, a DICOMDIR or a folder; never raises for a bad medium.

    ``profile`` None: the profile the disc's content fits best (``--profile auto``).
    """
    report = Report(str(path), profile.name if profile else "auto")
    # pycdlib's parse of the whole volume before anything else is held: its peak is not added to the files'.
    image = Path(path)
    extensions = check_extensions(image) if image.is_file() and is_iso_image(image) else []
    try:
        view = open_media(path, plain=True, dicomdir_only=True)  # the files it forgot are unreferenced-file errors
    except MediaError as exc:
        code = "iso-structure" if is_iso_image(image) else "dicomdir-corrupt"
        report.add(Finding(code, exc.message, str(path)))
        report.skipped = {"dicomdir", "references", "files", "media"}
        return report
    with view, py_warnings.catch_warnings():
        py_warnings.simplefilter("ignore")  # pydicom's value warnings: our findings say what matters
        files = list(view.files())
        report.instances = len(files)
        report.add(view.problems)
        if isinstance(view.store, IsoStore):
            report.add(check_iso(view.store, view.fileset_id) + extensions)
        else:
            report.skipped.add("iso9660")
        if view.kind in ("iso", "udf"):
            report.add(check_udf(Path(path), view.store, view.fileset_id))
        if view.dicomdir_file is None:
            report.add(Finding("no-dicomdir", "no DICOMDIR in the root directory", str(path)))
        if view.directory is not None:
            label = show_file_id(view.dicomdir_file.file_id)
            report.add(check_header(view.directory, label))
            report.add(check_records(view.directory, label))
        # Per file only what the checks across files need: its encoding (shared pairs) and its SOP Instance UID.
        mismatches: list[Finding] = []
        duplicates = Duplicates()
        encodings: list[tuple[str, str] | None] = []  # of each file, one tuple per distinct pair
        pairs: dict[tuple[str, str], tuple[str, str]] = {}
        for media_file in files:
            findings, ds = check_file(media_file)
            report.add(findings)
            encodings.append(None)
            if ds is not None:
                keys = file_keys(ds)
                mismatches += check_record_match(media_file, keys)
                duplicates.add(media_file, keys)
                encoding = encoding_of(ds)
                if encoding is not None:
                    encodings[-1] = pairs.setdefault(encoding, encoding)
            if progress:
                progress(media_file)
        profile = _profile_for(report, profile, files, encodings, view.store.total_bytes())
        report.add(check_file_ids(view))
        report.add(mismatches)
        report.add(duplicates.findings())
        report.add(check_unreferenced(view))
        report.add(check_media(view, profile))
    return report
