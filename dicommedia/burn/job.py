"""Burning an image: every medium checked before anything is written, copies, read-back verification."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dicommedia.burn.verify import trim_padding, verify_medium
from dicommedia.burn.xorriso import SECTOR, WRITE_UNIT, Medium, check_speed, eject, inquire, readback_path, write_image
from dicommedia.errors import MediaError
from dicommedia.progress import Progress


@dataclass
class BurnOptions:
    """What ``dicommedia burn`` was asked to do (SPEC 2.4)."""

    image: Path
    drives: list[str]
    copies: int = 1
    verify: bool = False
    speed: str | None = None
    eject: bool = False
    # Called before a copy goes onto a drive that already took one: the operator loads a blank medium.
    # None: a robot loads media (--no-prompt).
    prompt: Callable[[str], None] | None = None
    say: Callable[[str], None] = field(default=lambda _: None)
    progress: Progress = field(default_factory=Progress)


@dataclass(frozen=True)
class CopyReport:
    """One copy written (and read back when verified)."""

    copy: int
    drive: str
    blocks: int
    verified: bool
    sha256: str | None


def image_size(image: Path) -> int:
    """Bytes of a readable, non-empty image."""
    try:
        with open(image, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise MediaError(f"cannot read the image: {exc.strerror or exc}", str(image)) from None
    if size == 0:
        raise MediaError("the image is empty", str(image))
    return size


def blocks_needed(size: int) -> int:
    """2048-byte blocks the image takes on the medium: whole 32 KiB write units, and one more that libburn
    may pad (seen on stdio pseudo-drives)."""
    return (-(-size // WRITE_UNIT) + 1) * (WRITE_UNIT // SECTOR)


def medium_problem(medium: Medium, size: int) -> str | None:
    """Why this medium cannot take the image (absent, not blank, too small), or None."""
    if not medium.present:
        return "no medium in the drive"
    if not medium.blank:
        return f"the medium is not blank ({medium.status})"
    if medium.free_blocks < blocks_needed(size):
        return (
            f"the medium is too small: the image needs {blocks_needed(size):,} blocks of 2048 bytes "
            f"({size:,} bytes), the medium has {medium.free_blocks:,} free"
        )
    return None


def check_drive(drive: str, size: int) -> Medium:
    """The drive's medium, when it can take the image; otherwise a one-line cause (nothing written)."""
    medium = inquire(drive)
    problem = medium_problem(medium, size)
    if problem:
        raise MediaError(problem, drive, "load a blank medium large enough for the image")
    return medium


def _follow(progress: Progress, stage: str, size: int) -> Callable[[int], None]:
    """A stage of ``size`` bytes, advanced by reports of the bytes done so far."""
    progress.stage(stage, size)
    last = [0]

    def done(count: int) -> None:
        count = min(count, size)
        progress.advance(count - last[0])
        last[0] = max(last[0], count)

    return done


class BurnInterrupted(KeyboardInterrupt):
    """Ctrl-C while a medium was being written: that medium is incomplete."""

    def __init__(self, drive: str):
        super().__init__(f"interrupted while writing {drive}: that medium is incomplete, do not use it")
        self.drive = drive


def _write(image: str, drive: str, speed: str | None, written: Callable[[int], None]) -> None:
    """Write one medium; a stdio pseudo-drive file this write created is removed when the write fails or is
    interrupted (nothing half-written is left behind where we can avoid it)."""
    path = readback_path(drive)
    created = drive.startswith("stdio:") and not os.path.lexists(path)
    try:
        write_image(image, drive, speed, written)
    except BaseException as exc:
        if created:
            Path(path).unlink(missing_ok=True)
        if isinstance(exc, KeyboardInterrupt):
            raise BurnInterrupted(drive) from None
        raise


def burn_copies(options: BurnOptions) -> list[CopyReport]:
    """Write ``copies`` copies of the image, drive after drive; verify each when asked; return what was done."""
    if options.speed:
        check_speed(options.speed)
    twice = sorted({d for d in options.drives if options.drives.count(d) > 1})
    if twice:
        raise MediaError("a drive given twice: one medium cannot take two copies", ", ".join(twice))
    image = str(options.image)
    size = image_size(options.image)
    first_round = options.drives[: options.copies]
    for drive in first_round:  # every medium of the first round checked before anything is written
        check_drive(drive, size)
    reports = []
    for number in range(1, options.copies + 1):
        drive = options.drives[(number - 1) % len(options.drives)]
        if number > len(first_round) and options.prompt:
            options.prompt(f"load a blank medium into {drive} for copy {number} of {options.copies}")
        check_drive(drive, size)  # again: a medium may have been changed meanwhile
        options.say(f"writing copy {number} of {options.copies} to {drive} ({size:,} bytes)")
        readback = readback_path(drive)
        _write(image, drive, options.speed, _follow(options.progress, f"writing copy {number}", size))
        verification = None
        if options.verify:
            verification = verify_medium(image, readback, _follow(options.progress, f"verifying copy {number}", size))
        if drive.startswith("stdio:") and os.path.isfile(readback):
            trim_padding(image, readback)
        if verification:
            options.say(f"verified copy {number}: {verification.blocks:,} blocks equal, sha256 {verification.sha256}")
        if options.eject:
            eject(drive)
        reports.append(
            CopyReport(
                number,
                drive,
                -(-size // SECTOR),
                verification is not None,
                verification.sha256 if verification else None,
            )
        )
    return reports


def burn_volumes(
    paths: list[Path],
    drive: str,
    prompt: Callable[[str], None] | None,
    say: Callable[[str], None],
    progress: Progress | None = None,
) -> list[CopyReport]:
    """``create --burn``: each volume of a set onto its own medium in one drive, each read back and verified."""
    reports: list[CopyReport] = []
    progress = progress or Progress()
    for index, path in enumerate(paths, 1):
        if index > 1 and prompt:
            prompt(f"load a blank medium into {drive} for volume {index} of {len(paths)}")
        reports += burn_copies(BurnOptions(path, [drive], verify=True, say=say, progress=progress))
    return reports
