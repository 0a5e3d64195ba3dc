"""The files of a volume and the two ways to write them: an ISO 9660 image, or a folder. Both atomic."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

import pycdlib

from dicommedia.errors import MediaError

SECTOR = 2048


class Part10Stream(io.RawIOBase):
    """A file's bytes assembled on the fly: a new header, then the source from ``offset`` (no staging copy)."""

    def __init__(self, header: bytes, opener: Callable[[], BinaryIO], offset: int, length: int):
        super().__init__()
        self._header = header
        self._opener = opener
        self._offset = offset
        self._length = length
        self._pos = 0
        self._fp: BinaryIO | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._header) + self._length}[whence]
        self._pos = base + pos
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)
        total = len(self._header) + self._length
        n = 0
        while n < len(view) and self._pos < total:
            if self._pos < len(self._header):
                chunk = self._header[self._pos : self._pos + len(view) - n]
            else:
                if self._fp is None:
                    self._fp = self._opener()
                self._fp.seek(self._offset + self._pos - len(self._header))
                chunk = self._fp.read(min(len(view) - n, total - self._pos))
                if not chunk:
                    raise MediaError("input file changed or shrank while the image was written")
            view[n : n + len(chunk)] = chunk
            n += len(chunk)
            self._pos += len(chunk)
        if self._pos >= total:
            self._release()
        return n

    def _release(self) -> None:
        if self._fp is not None:
            self._fp.close()
            self._fp = None

    def close(self) -> None:
        self._release()
        super().close()


@dataclass
class VolumeFile:
    """One file of the volume: its path components (File ID or PDI name), size, and how to read it."""

    parts: tuple[str, ...]
    size: int
    open: Callable[[], BinaryIO]


def _iso_name(parts: tuple[str, ...]) -> str:
    """ISO 9660 level 1 path: ``NAME.;1`` for names without extension (PS3.12 F.3.1), ``NAME.EXT;1`` otherwise."""
    *dirs, name = parts
    leaf = f"{name};1" if "." in name else f"{name}.;1"
    return "/" + "/".join([*dirs, leaf])


def build_iso(files: list[VolumeFile], volume_id: str) -> pycdlib.PyCdlib:
    """Lay out an ISO 9660 level 1 volume (no Joliet, no Rock Ridge); data is read only when written."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, vol_ident=volume_id, app_ident_str="DICOMMEDIA", preparer_ident_str="DICOMMEDIA")
    made: set[tuple[str, ...]] = set()
    for f in files:
        for depth in range(1, len(f.parts)):
            folder = f.parts[:depth]
            if folder not in made:
                iso.add_directory("/" + "/".join(folder))
                made.add(folder)
        iso.add_fp(f.open(), f.size, _iso_name(f.parts))
    return iso


def iso_size(iso: pycdlib.PyCdlib) -> int:
    """Bytes the image will have, known before writing (the volume space size, ECMA-119 8.4.8)."""
    return iso.pvd.space_size * SECTOR


def _temp_sibling(output: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=suffix, dir=output.parent)
    os.close(fd)
    return Path(name)


def write_iso(iso: pycdlib.PyCdlib, output: Path, progress: Callable[[int, int], None] | None = None) -> None:
    """Write the image under a temporary name and rename it into place: whole or not at all."""
    temp = _temp_sibling(output, ".tmp")
    try:
        with temp.open("wb") as out:
            iso.write_fp(out, blocksize=1 << 20, progress_cb=(lambda done, total, _: progress(done, total)) if progress else None)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, output)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        iso.close()


def write_folder(files: list[VolumeFile], output: Path, overwrite: bool) -> None:
    """Write the file-set into a folder built under a temporary name, then renamed into place."""
    temp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    try:
        for f in files:
            target = temp.joinpath(*f.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with f.open() as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        if output.exists():
            if not overwrite and any(output.iterdir()):
                raise MediaError("the output folder exists and is not empty", str(output), "use --overwrite")
            old = output.with_name(f".{output.name}.old")
            os.replace(output, old)
            os.replace(temp, output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temp, output)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
