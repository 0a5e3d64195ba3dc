"""xorriso's command interface (libburnia): ask a drive about its medium, write an image, eject.

Drives are what xorriso takes: ``/dev/sr0`` or a ``stdio:PATH`` pseudo-drive (a file or block device that
xorriso writes like an overwriteable medium). Messages are parsed from xorriso's report lines.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from dicommedia.errors import MediaError

SECTOR = 2048
# libburn writes DVD/BD and stdio media in 32 KiB units (one DVD ECC block): the last one is padded with zeros.
WRITE_UNIT = 32 * 1024
# Report lines: "libburn : SORRY : ...", "xorriso : FAILURE : ..." (xorriso(1), -report_about)
_PROBLEM = re.compile(r"^(?:xorriso|libburn|libisofs) : (FAILURE|SORRY|FATAL|ABORT) : (.*)$", re.M)
_STATUS = re.compile(r"^Media status : (.*)$", re.M)
_CURRENT = re.compile(r"^Media current: (.*)$", re.M)
_SPACE = re.compile(r"^Media space  : (\d+)s$", re.M)
_WRITTEN = re.compile(r"UPDATE :\s+(\d+) of\s+\d+ MB written")
_SPEED = re.compile(r"^(max|min|\d+(\.\d+)?[xkmcdb]?)$")


@dataclass(frozen=True)
class Medium:
    """What xorriso says about the medium in a drive."""

    drive: str
    current: str  # "stdio file, overwriteable", "DVD+R", "is not present", ...
    status: str  # "is blank", "is written , is appendable", "is written , is closed", ...
    free_blocks: int  # 2048-byte blocks that can still be written

    @property
    def present(self) -> bool:
        """True when a medium is loaded."""
        return "not present" not in self.status and "not present" not in self.current

    @property
    def blank(self) -> bool:
        """True when nothing has been written on the medium."""
        return self.status.startswith("is blank")


def xorriso_path() -> str:
    """The xorriso executable, or a one-line cause when it is not installed."""
    path = shutil.which("xorriso")
    if path is None:
        raise MediaError("xorriso is not installed", hint="apt-get install xorriso")
    return path


def check_speed(speed: str) -> str:
    """A write speed as xorriso takes it: ``max``, ``min``, or a number with an optional unit (``8x``, ``4k``)."""
    if not _SPEED.match(speed):
        raise MediaError(f"speed {speed!r} is not max, min, or a number such as 8 or 8x", hint="e.g. --speed 8x")
    return speed


class DriveError(MediaError):
    """xorriso refused or failed: its own words."""

    def __init__(self, cause: str):
        super().__init__(cause)


def _run(args: list[str], on_line: Callable[[str], None] | None = None) -> str:
    """Run xorriso; its report lines (it writes them on stderr) and results, as one text, each line also given to
    ``on_line`` as it comes."""
    lines = []
    with subprocess.Popen(
        [xorriso_path(), "-report_about", "NOTE", "-abort_on", "FAILURE", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as proc:
        for line in proc.stdout:
            lines.append(line)
            if on_line:
                on_line(line)
    output = "".join(lines)
    problems = _PROBLEM.findall(output)
    if proc.returncode != 0 or problems:
        # The last problem is xorriso's own summary; the first is the cause (e.g. libburn's).
        cause = problems[0][1] if problems else f"xorriso exited with status {proc.returncode}"
        raise DriveError(cause)
    return output


def inquire(drive: str) -> Medium:
    """Acquire the drive and read its medium's state and free space (nothing is written)."""
    try:
        output = _run(["-outdev", drive, "-tell_media_space"])
    except DriveError as exc:
        raise MediaError(f"cannot use the drive: {exc.message}", drive) from None
    current, status, space = _CURRENT.search(output), _STATUS.search(output), _SPACE.search(output)
    return Medium(
        drive,
        current.group(1).strip() if current else "",
        status.group(1).strip() if status else "is not present",
        int(space.group(1)) if space else 0,
    )


def write_image(image: str, drive: str, speed: str | None, written: Callable[[int], None] | None = None) -> None:
    """Write the image from block 0 of the medium as one track (cdrecord emulation, no padding added);
    ``written(bytes)`` follows xorriso's progress reports."""
    args = ["-as", "cdrecord", f"dev={drive}", "-nopad"]
    if speed:
        args.append(f"speed={speed}")

    def follow(line: str) -> None:
        done = _WRITTEN.search(line)
        if done and written:
            written(int(done.group(1)) * 1024 * 1024)

    try:
        _run([*args, image], follow)
    except DriveError as exc:
        raise MediaError(f"writing failed: {exc.message}", drive) from None


def eject(drive: str) -> None:
    """Eject the medium (a no-op for stdio pseudo-drives)."""
    try:
        _run(["-outdev", drive, "-eject", "all"])
    except DriveError as exc:
        raise MediaError(f"cannot eject: {exc.message}", drive) from None


def readback_path(drive: str) -> str:
    """The file the written medium is read back from: the stdio path, or the device node itself."""
    return drive[len("stdio:") :] if drive.startswith("stdio:") else drive
