"""The files of a volume and the two ways to write them: an ISO 9660 image, or a folder. Both atomic."""

from __future__ import annotations

import errno
import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dicommedia.errors import MediaError
from dicommedia.writers import leftovers
from dicommedia.writers.iso9660 import FIRST_FREE, IsoImage, copy_region

SECTOR = 2048
_MAX_EXTENT = 0xFFFFFFFF  # bytes of one ISO 9660 extent (a 32-bit Data Length, ECMA-119 9.1.4)


class _Splice(bytes):
    """Bytes promised, not read: a header part, then ``count`` bytes of a file on disk from ``offset``.

    A Part10Stream hands these to pycdlib's copy loop, which passes them on unread to the _SpliceWriter; the
    writer copies the file region inside the kernel (copy_file_range), so the data never enters Python.
    """

    head: bytes
    path: str
    offset: int
    count: int

    def __new__(cls, head: bytes, path: str, offset: int, count: int) -> _Splice:
        obj = super().__new__(cls)
        obj.head, obj.path, obj.offset, obj.count = head, path, offset, count
        return obj

    def __len__(self) -> int:
        return len(self.head) + self.count


class Part10Stream(io.RawIOBase):
    """A file's bytes assembled on the fly: a new header, then the source from ``offset`` (no staging copy)."""

    def __init__(
        self, header: bytes, opener: Callable[[], BinaryIO], offset: int, length: int, path: str | None = None
    ):
        super().__init__()
        self._header = header
        self._opener = opener
        self._offset = offset
        self._length = length
        self._path = path
        self._splice = False
        self._pos = 0
        self._fp: BinaryIO | None = None

    def source_region(self) -> tuple[bytes, str, int, int] | None:
        """Header bytes, then the file, offset and length of the rest: for a writer that copies in the kernel."""
        return None if self._path is None else (self._header, self._path, self._offset, self._length)

    def enable_splice(self) -> int:
        """Let reads return _Splice promises (only for the ISO writer); return the bytes that will be spliced."""
        self._splice = self._path is not None
        return len(self._header) + self._length if self._splice else 0

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

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative), with no intermediate buffer."""
        total = len(self._header) + self._length
        size = total - self._pos if size is None or size < 0 else min(size, total - self._pos)
        if self._splice:
            head = self._header[self._pos : self._pos + size]
            start = self._offset + max(0, self._pos - len(self._header))
            self._pos += size
            return _Splice(head, self._path, start, size - len(head))
        parts = []
        if self._pos < len(self._header) and size > 0:
            head = self._header[self._pos : self._pos + size]
            parts.append(head)
            self._pos += len(head)
            size -= len(head)
        if size > 0:
            if self._fp is None:
                self._fp = self._opener()
            self._fp.seek(self._offset + self._pos - len(self._header))
            data = self._fp.read(size)
            if len(data) != size:
                raise MediaError("input file changed or shrank while the image was written")
            parts.append(data)
            self._pos += size
        if self._pos >= total:
            self._release()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        memoryview(buffer)[: len(data)] = data
        return len(data)

    def _release(self) -> None:
        if self._fp is not None:
            self._fp.close()
            self._fp = None

    def close(self) -> None:
        self._release()
        super().close()


@dataclass(slots=True)
class VolumeFile:
    """One file of the volume: its path components (File ID or PDI name), size, and how to read it."""

    parts: tuple[str, ...]
    size: int
    open: Callable[[], BinaryIO]


class _SpliceWriter:
    """The output as pycdlib sees it: ordinary writes pass through, _Splice promises are copied by the kernel."""

    def __init__(self, out: BinaryIO):
        self.out = out
        self.mode = "wb"
        self.spliced = 0

    def write(self, data: bytes) -> int:
        if not isinstance(data, _Splice):
            return self.out.write(data)
        self.out.write(data.head)
        self.out.flush()
        position = self.out.tell()
        copy_region(data.path, data.offset, data.count, self.out.fileno(), position)
        self.out.seek(position + data.count)
        self.spliced += len(data)
        return len(data)

    def seek(self, *args: int) -> int:
        return self.out.seek(*args)

    def tell(self) -> int:
        return self.out.tell()


class _Deferred:
    """A volume file as pycdlib holds it until the image is written: its stream (and File Meta bytes) is made
    only when pycdlib reads it, and dropped once read, so many thousand files keep almost nothing in memory."""

    __slots__ = ("_file", "_stream")
    mode = "rb"  # what pycdlib checks a file object for

    def __init__(self, file: VolumeFile):
        self._file = file
        self._stream: BinaryIO | None = None

    def _current(self) -> BinaryIO:
        if self._stream is None:
            self._stream = self._file.open()
            if isinstance(self._stream, Part10Stream):
                self._stream.enable_splice()
        return self._stream

    def seek(self, *args: int) -> int:
        return self._current().seek(*args)

    def tell(self) -> int:
        return self._current().tell()

    def read(self, size: int = -1) -> bytes:
        stream = self._current()
        data = stream.read(size)
        if stream.tell() >= self._file.size:
            stream.close()
            self._stream = None
        return data


def _iso_name(parts: tuple[str, ...]) -> str:
    """ISO 9660 level 1 path: ``NAME.;1`` for names without extension (PS3.12 F.3.1), ``NAME.EXT;1`` otherwise."""
    *dirs, name = parts
    leaf = f"{name};1" if "." in name else f"{name}.;1"
    return "/" + "/".join([*dirs, leaf])


def _udf_name(parts: tuple[str, ...]) -> str:
    """UDF path of a file or folder: the File ID itself (no ISO version), the same names on both sides."""
    return "/" + "/".join(parts)


class UdfBridgeImage:
    """An ISO 9660 image with a UDF bridge (PS3.12 DVD/BD media), laid out and written by pycdlib: every file
    once on disc, listed by both file systems under the same names; the UDF volume and File Set take the ISO
    Volume Identifier. Level 3 only for what level 1 cannot hold: a file of 4 GiB or more, as multi-extent."""

    def __init__(self, files: list[VolumeFile], volume_id: str):
        import pycdlib  # only for a bridge: the plain writer does without

        self.iso = pycdlib.PyCdlib()
        self._to_splice = 0
        self.iso.new(
            interchange_level=3 if any(f.size > _MAX_EXTENT for f in files) else 1,
            vol_ident=volume_id,
            app_ident_str="DICOMMEDIA",
            preparer_ident_str="DICOMMEDIA",
            udf="2.60",
        )
        made: set[tuple[str, ...]] = set()
        for f in files:
            for depth in range(1, len(f.parts)):
                folder = f.parts[:depth]
                if folder not in made:
                    self.iso.add_directory("/" + "/".join(folder), udf_path=_udf_name(folder))
                    made.add(folder)
            stream = f.open()
            if isinstance(stream, Part10Stream):
                self._to_splice += stream.enable_splice()
            stream.close()
            self.iso.add_fp(_Deferred(f), f.size, _iso_name(f.parts), udf_path=_udf_name(f.parts))

    @property
    def size(self) -> int:
        """Bytes the image will have, known before writing (the volume space size, ECMA-119 8.4.8)."""
        return self.iso.pvd.space_size * SECTOR

    def write(self, fd: int, progress: Callable[[int], None] | None = None) -> None:
        """Write the image at offset 0 of ``fd``; data spliced by the kernel where it comes from a file."""
        with os.fdopen(os.dup(fd), "wb") as out:
            writer = _SpliceWriter(out)
            self.iso.write_fp(
                writer, blocksize=1 << 24, progress_cb=(lambda done, _total, _: progress(done)) if progress else None
            )
            if writer.spliced != self._to_splice:  # pycdlib passed a promise on in a way we did not expect
                raise MediaError(f"internal error: {writer.spliced} of {self._to_splice} bytes copied")

    def close(self) -> None:
        """Release pycdlib's layout."""
        self.iso.close()


def build_iso(
    files: list[VolumeFile], volume_id: str, udf: bool = False, placed: Sequence[int] = (), first_free: int = FIRST_FREE
) -> IsoImage | UdfBridgeImage:
    """Lay out an ISO 9660 level 1 volume (no Joliet, no Rock Ridge), with a UDF bridge when asked; data is
    read only when written. Without a bridge, our streaming writer: a few bytes per file, not pycdlib's ~1 KB;
    ``placed`` files were copied into the image already (writers/early_copy.py)."""
    if udf:
        return UdfBridgeImage(files, volume_id)
    return IsoImage(files, volume_id, placed=placed, first_free=first_free)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(temp: Path, output: Path, mode: int) -> None:
    """Give the finished temporary the permissions a new file would have (mkstemp/mkdtemp make it private),
    then rename it into place."""
    os.chmod(temp, mode & ~_umask())
    os.replace(temp, output)
    leftovers.untrack(temp)


def _temp_sibling(output: Path, suffix: str) -> tuple[BinaryIO, Path | None]:
    """A new temporary file beside the output, already open: reopening it with truncation would make
    ext4 flush it on close (auto_da_alloc), which costs as much as writing it.

    Where the file system allows, the file has no name until it is finished (O_TMPFILE): a killed run
    leaves nothing. Elsewhere it gets a hidden name that the run's watchdog removes (returned; else None).
    """
    if hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd"):
        try:
            return os.fdopen(os.open(output.parent, os.O_TMPFILE | os.O_WRONLY, 0o666), "wb"), None
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
    fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=suffix, dir=output.parent)
    leftovers.track(name)
    return os.fdopen(fd, "wb"), Path(name)


def _name_tmpfile(out: BinaryIO, output: Path, suffix: str) -> Path:
    """Give a finished O_TMPFILE file a hidden name beside the output (linkat through /proc), for the rename."""
    name = output.with_name(f".{output.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{suffix}")
    leftovers.track(name)
    folder = os.open(output.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:  # a directory fd makes os.link call linkat(AT_SYMLINK_FOLLOW): plain link() would link the /proc entry
        os.link(f"/proc/self/fd/{out.fileno()}", name.name, dst_dir_fd=folder, follow_symlinks=True)
    finally:
        os.close(folder)
    return name


def output_failure(exc: OSError, output: Path) -> MediaError:
    """One line for a failed read or write: which path, why, and what to do (full disk, read-only folder)."""
    name = str(exc.filename) if exc.filename else ""
    folder = str(output.parent.resolve())
    if name and not os.path.abspath(name).startswith(folder):  # an input that went away or cannot be read
        return MediaError(f"cannot be read: {exc.strerror or exc}", name, "check the input and run again")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        hint = "free space there, or write the output to another file system"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "the folder is read-only for this user: choose another output folder or fix its permissions"
    else:
        hint = "check the output folder"
    return MediaError(f"cannot write the output: {exc.strerror or exc}", str(output), hint)


class ImageFile:
    """The image being written: a temporary beside the output, renamed into place when whole, else removed."""

    def __init__(self, output: Path):
        self.output = output
        self._out, self._temp = _temp_sibling(output, ".tmp")
        self._published = False

    def fileno(self) -> int:
        """The descriptor the image is written through."""
        return self._out.fileno()

    def restart(self) -> None:
        """Empty it, to be written again from the start."""
        os.ftruncate(self._out.fileno(), 0)

    def publish(self) -> None:
        """Give it the output's name (whole or not at all)."""
        with self._out:
            if self._temp is None:
                self._temp = _name_tmpfile(self._out, self.output, ".tmp")
        _publish(self._temp, self.output, 0o666)
        self._published = True

    def discard(self) -> None:
        """Remove it unless published (an unnamed temporary vanishes with its descriptor)."""
        self._out.close()
        if self._published:
            return
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            leftovers.untrack(self._temp)


def write_iso(
    image: IsoImage | UdfBridgeImage,
    output: Path,
    progress: Callable[[int, int], None] | None = None,
    target: ImageFile | None = None,
) -> None:
    """Write the image under a temporary name (``target``, else a new one) and rename it into place."""
    try:
        target = target or ImageFile(output)
        # No fsync: the rename makes the image appear whole or not at all for every reader and for an
        # interrupted run; durability across a power cut is the burner's and file system's business.
        image.write(target.fileno(), (lambda done: progress(done, image.size)) if progress else None)
        target.publish()
    except BaseException:
        if target is not None:
            target.discard()
        raise
    finally:
        image.close()


def write_folder(files: list[VolumeFile], output: Path, overwrite: bool) -> None:
    """Write the file-set into a folder built under a temporary name, then renamed into place."""
    temp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    leftovers.track(temp)
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
            leftovers.track(old)
            _publish(temp, output, 0o777)
            shutil.rmtree(old, ignore_errors=True)
            leftovers.untrack(old)
        else:
            _publish(temp, output, 0o777)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        leftovers.untrack(temp)
        raise
