"""Read a written medium back and compare it with the image, block by block."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from dicommedia.burn.xorriso import SECTOR, WRITE_UNIT
from dicommedia.errors import MediaError

_CHUNK = 1 << 20  # a multiple of SECTOR
_MAX_PADDING = 2 * WRITE_UNIT


@dataclass(frozen=True)
class Verification:
    """A medium read back: every block of the image compared, and the checksum of what was read."""

    blocks: int
    sha256: str


def verify_medium(image: str, medium: str, read: Callable[[int], None] | None = None) -> Verification:
    """Compare every 2048-byte block of the medium with the image; a difference or a short medium is an error.

    Returns the SHA-256 of what was read (over the image's length): the image's own, since every block agreed.
    """
    size = os.path.getsize(image)
    digest = hashlib.sha256()
    try:
        with open(image, "rb") as src, open(medium, "rb") as disc:
            done = 0
            while done < size:
                want = min(_CHUNK, size - done)
                expected, got = src.read(want), disc.read(want)
                digest.update(got)
                if got != expected:
                    raise MediaError(_difference(expected, got, done), medium, "the medium is bad: use another one")
                done += want
                if read:
                    read(done)
    except OSError as exc:
        raise MediaError(f"cannot read the medium back: {exc.strerror or exc}", medium) from None
    return Verification(-(-size // SECTOR), digest.hexdigest())


def _difference(expected: bytes, got: bytes, offset: int) -> str:
    if len(got) < len(expected):
        return f"the medium ends at byte {offset + len(got):,}, inside the image"
    first = next(i for i in range(len(expected)) if expected[i] != got[i])
    return f"block {(offset + first) // SECTOR} differs from the image"


def trim_padding(image: str, pseudo_drive: str) -> None:
    """A stdio pseudo-drive file holds the image plus libburn's zero padding (it writes whole 32 KiB units, and
    up to one more): check that what follows the image is zeros, and cut it so the file is the image byte for byte."""
    size = os.path.getsize(image)
    extra = os.path.getsize(pseudo_drive) - size
    if extra <= 0 or extra > _MAX_PADDING:
        return  # nothing to cut, or more than padding: leave the medium as it is
    with open(pseudo_drive, "rb") as fh:
        fh.seek(size)
        tail = fh.read(extra)
    if tail.count(0) == len(tail):
        os.truncate(pseudo_drive, size)
