"""Crafted damage for the hostile-media tests and the fuzzers: ISO 9660 images and DICOMDIRs edited in place.

No pytest here: the atheris harness under fuzz/ builds its seeds with the same functions.
"""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SECTOR = 2048
MEMORY_LIMIT = 2 << 30  # the 2 GiB address space each command runs under


# --- ISO 9660 (ECMA-119 8.4, 9.1) -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IsoRecord:
    """A directory record of an image: where it sits (byte offset of the record) and its fields."""

    at: int
    name: bytes
    extent: int
    size: int
    flags: int

    @property
    def is_dir(self) -> bool:
        return bool(self.flags & 2)


def pvd_offset(image: bytes | bytearray) -> int:
    """Byte offset of the Primary Volume Descriptor."""
    for sector in range(16, 32):
        at = sector * SECTOR
        if image[at + 1 : at + 6] == b"CD001" and image[at] == 1:
            return at
    raise ValueError("no PVD")


def root_record_offset(image: bytes | bytearray) -> int:
    """Byte offset of the root directory record inside the PVD."""
    return pvd_offset(image) + 156


def parse_record(image: bytes | bytearray, at: int) -> IsoRecord:
    """The directory record at byte ``at``."""
    name_len = image[at + 32]
    return IsoRecord(
        at,
        bytes(image[at + 33 : at + 33 + name_len]),
        struct.unpack_from("<I", image, at + 2)[0],
        struct.unpack_from("<I", image, at + 10)[0],
        image[at + 25],
    )


def directory(image: bytes | bytearray, record: IsoRecord) -> list[IsoRecord]:
    """The records of a directory (``.`` and ``..`` included)."""
    out, pos, end = [], record.extent * SECTOR, record.extent * SECTOR + record.size
    while pos < end:
        if image[pos] == 0:
            pos = (pos // SECTOR + 1) * SECTOR
            continue
        out.append(parse_record(image, pos))
        pos += image[pos]
    return out


def find(image: bytes | bytearray, *path: str) -> IsoRecord:
    """The record of ``path`` (names without version, e.g. ``find(img, "DICOM", "PID1")``)."""
    record = parse_record(image, root_record_offset(image))
    for name in path:
        entries = directory(image, record)
        record = next(r for r in entries if r.name.split(b";")[0].rstrip(b".") == name.encode())
    return record


def files_under(image: bytes | bytearray, record: IsoRecord | None = None) -> list[IsoRecord]:
    """Every file record under a directory (the root by default), depth first."""
    record = record or parse_record(image, root_record_offset(image))
    out = []
    for entry in directory(image, record):
        if entry.name in (b"\x00", b"\x01"):
            continue
        out.extend(files_under(image, entry) if entry.is_dir else [entry])
    return out


def set_both_endian32(image: bytearray, at: int, value: int) -> None:
    """A both-byte-order 32-bit field (ECMA-119 7.3.3)."""
    image[at : at + 8] = struct.pack("<I", value) + struct.pack(">I", value)


def set_extent(image: bytearray, record: IsoRecord, extent: int) -> None:
    set_both_endian32(image, record.at + 2, extent)


def set_size(image: bytearray, record: IsoRecord, size: int) -> None:
    set_both_endian32(image, record.at + 10, size)


def set_flags(image: bytearray, record: IsoRecord, flags: int) -> None:
    image[record.at + 25] = flags


_ITEM_UNDEFINED = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
_ITEM_END = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
_SEQ_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"

# --- DICOMDIR (PS3.10 8, PS3.3 F.3) -------------------------------------------------------------------------------


def element(tag: int, vr: bytes, value: bytes, length: int | None = None) -> bytes:
    """One Explicit VR LE element; ``length`` overrides the encoded length."""
    n = len(value) if length is None else length
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR", b"OD", b"OF", b"OL", b"OV", b"SV", b"UV"):
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr, 0, n) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, n) + value


def file_meta(sop_class: str = "1.2.840.10008.1.3.10", sop_instance: str = "1.2.3.4") -> bytes:
    """Preamble, DICM and a File Meta group in Explicit VR LE."""
    body = b"".join(
        [
            element(0x00020001, b"OB", b"\x00\x01"),
            element(0x00020002, b"UI", _ui(sop_class)),
            element(0x00020003, b"UI", _ui(sop_instance)),
            element(0x00020010, b"UI", _ui("1.2.840.10008.1.2.1")),
        ]
    )
    return b"\0" * 128 + b"DICM" + element(0x00020000, b"UL", struct.pack("<I", len(body))) + body


def with_file_meta_repeated(raw: bytes, transfer_syntax: str, sop_instance: str) -> bytes:
    """The Part 10 file ``raw`` with a second File Meta group, naming ``transfer_syntax`` and ``sop_instance``, at
    the start of its data set, past the end its own group length declares (a file fo-dicom ships looks so)."""
    from dicommedia.part10 import read_file_meta

    _, body = read_file_meta(raw)
    stray = element(0x00020003, b"UI", _ui(sop_instance)) + element(0x00020010, b"UI", _ui(transfer_syntax))
    return raw[:body] + element(0x00020000, b"UL", struct.pack("<I", len(stray))) + stray + raw[body:]


def _ui(uid: str) -> bytes:
    raw = uid.encode()
    return raw + b"\0" if len(raw) % 2 else raw


def _dicomdir_header(first: int, last: int) -> bytes:
    """File-set ID, root offsets and consistency flag: 46 bytes whatever the offsets."""
    return b"".join(
        [
            element(0x00041130, b"CS", b"DEEP"),
            element(0x00041200, b"UL", struct.pack("<I", first)),
            element(0x00041202, b"UL", struct.pack("<I", last)),
            element(0x00041212, b"US", b"\0\0"),
        ]
    )


def nested_records_dicomdir(depth: int) -> bytes:
    """A DICOMDIR whose records chain ``depth`` levels deep through their lower-level offsets (PS3.3 F.3.2.1)."""
    head = file_meta()
    first = len(head) + len(_dicomdir_header(0, 0)) + 12
    item_len = 8 + len(_record(0, 0)) + 8
    items = []
    for index in range(depth):
        lower = first + (index + 1) * item_len if index + 1 < depth else 0
        items.append(_ITEM_UNDEFINED + _record(0, lower) + _ITEM_END)
    return head + _dicomdir_header(first, first) + element(0x00041220, b"SQ", b"".join(items))


def _record(next_offset: int, lower: int) -> bytes:
    return b"".join(
        [
            element(0x00041400, b"UL", struct.pack("<I", next_offset)),
            element(0x00041410, b"US", b"\xff\xff"),
            element(0x00041420, b"UL", struct.pack("<I", lower)),
            element(0x00041430, b"CS", b"PATIENT "),
            element(0x00100020, b"LO", b"P1"),
        ]
    )


def nested_sequences_dicomdir(depth: int) -> bytes:
    """A DICOMDIR whose one record holds sequences nested ``depth`` deep (undefined lengths)."""
    inner = b""
    for _ in range(depth):
        inner = element(0x00081115, b"SQ", _ITEM_UNDEFINED + inner + _ITEM_END, 0xFFFFFFFF) + _SEQ_END
    item = _ITEM_UNDEFINED + _record(0, 0) + inner + _ITEM_END
    head = file_meta()
    first = len(head) + len(_dicomdir_header(0, 0)) + 12
    return head + _dicomdir_header(first, first) + element(0x00041220, b"SQ", item + _SEQ_END, 0xFFFFFFFF)


def dicomdir_not_a_sequence() -> bytes:
    """A DICOMDIR whose Directory Record Sequence (0004,1220) is encoded as OB."""
    return file_meta() + _dicomdir_header(0, 0) + element(0x00041220, b"OB", b"\x01\x02\x03\x04")


# --- running the commands ----------------------------------------------------------------------------------------


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@dataclass
class Outcome:
    """One command run on a crafted medium."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def problems(self) -> list[str]:
        """Why this run breaks SPEC 2 (empty when it keeps every promise)."""
        out = []
        if self.returncode not in (0, 1):
            out.append(f"exit {self.returncode}")
        text = self.stdout + self.stderr
        for bad in ("internal error", "Traceback", "RecursionError", "MemoryError"):
            if bad in text:
                out.append(bad)
        if self.returncode == 1 and not self.stderr.strip():
            out.append("exit 1 without a cause on stderr")
        if "--json" in self.args:
            import json

            try:
                json.loads(self.stdout)
            except ValueError:
                out.append("no JSON document on stdout")
        return out


def run_command(args: list[str], cwd: Path | None = None, timeout: float = 120) -> Outcome:
    """``dicommedia ARGS`` as a subprocess under the 2 GiB address-space limit."""
    env = dict(os.environ, COLUMNS="200")
    result = subprocess.run(
        [sys.executable, "-m", "dicommedia", *args],
        capture_output=True,
        text=True,
        errors="replace",
        preexec_fn=_limit_memory,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )
    return Outcome(args, result.returncode, result.stdout, result.stderr)


def the_four_commands(media: Path, out: Path) -> list[list[str]]:
    """``read``, ``read --json``, ``read --extract``, ``validate --json`` on one medium."""
    return [
        ["read", str(media)],
        ["read", str(media), "--json"],
        ["read", str(media), "--extract", str(out), "--json"],
        ["validate", str(media), "--json"],
    ]


Edit = Callable[[bytearray], None]


# --- seeded mutation fuzzing -------------------------------------------------------------------------------------


def dicomdir_length_fields(data: bytes) -> list[int]:
    """Byte offsets of the length fields of a DICOMDIR's elements and items (Explicit VR LE, after the prefix)."""
    out = []
    pos = 132
    while pos + 8 <= len(data):
        group = data[pos : pos + 2]
        vr = data[pos + 4 : pos + 6]
        if group == b"\xfe\xff":
            out.append(pos + 4)
            pos += 8
        elif vr in (b"OB", b"SQ", b"UN", b"UT", b"OW"):
            out.append(pos + 8)
            length = struct.unpack_from("<I", data, pos + 8)[0]
            pos += 12 + (0 if vr == b"SQ" or length == 0xFFFFFFFF else length)
        elif vr.isalpha() and vr.isupper():
            out.append(pos + 6)
            pos += 8 + struct.unpack_from("<H", data, pos + 6)[0]
        else:
            break
    return out


def iso_fields(image: bytes) -> tuple[list[int], list[tuple[int, int]]]:
    """(offsets of the 32-bit extent and size fields of every directory record and of the PVD's numbers,
    byte ranges of the interesting areas: descriptors, path tables, directories, the DICOMDIR)."""
    pvd = pvd_offset(image)
    fields = [pvd + at for at in (80, 132, 140, 148)]
    areas = [(16 * SECTOR, 18 * SECTOR)]
    stack = [parse_record(image, root_record_offset(image))]
    fields += [stack[0].at + 2, stack[0].at + 10]
    while stack:
        record = stack.pop()
        areas.append((record.extent * SECTOR, record.extent * SECTOR + record.size))
        for entry in directory(image, record):
            fields += [entry.at + 2, entry.at + 10]
            if entry.name in (b"\x00", b"\x01"):
                continue
            if entry.is_dir:
                stack.append(entry)
            elif entry.name.startswith(b"DICOMDIR"):
                areas.append((entry.extent * SECTOR, entry.extent * SECTOR + min(entry.size, 4096)))
    for table in (140, 148):
        (sector,) = struct.unpack_from("<I" if table == 140 else ">I", image, pvd + table)
        areas.append((sector * SECTOR, sector * SECTOR + 256))
    return fields, areas


def mutate(data: bytes, rng, fields: list[int], areas: list[tuple[int, int]]) -> tuple[str, bytes]:
    """One seeded mutation: bit flips, a byte run, a length field set to 0 / odd / 0xFFFFFFFF, truncation, splice."""
    out = bytearray(data)

    def spot() -> int:
        start, end = rng.choice(areas) if areas and rng.random() < 0.9 else (0, len(out))
        return rng.randrange(start, max(start + 1, min(end, len(out))))

    kind = rng.choice(("flip", "run", "length", "length", "truncate", "splice"))
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            at = spot()
            out[at] ^= 1 << rng.randrange(8)
    elif kind == "run":
        at, n = spot(), rng.randint(1, 64)
        fill = rng.choice((0x00, 0xFF, None))
        out[at : at + n] = bytes(rng.randrange(256) if fill is None else fill for _ in range(len(out[at : at + n])))
    elif kind == "length" and fields:
        at = rng.choice(fields)
        value = rng.choice((0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFFE, rng.randrange(1 << 32) | 1))
        out[at : at + 4] = struct.pack("<I", value)
    elif kind == "truncate":
        del out[spot() :]
    else:
        src, dst, n = spot(), spot(), rng.randint(4, 256)
        chunk = bytes(out[src : src + n])
        if rng.random() < 0.5:
            out[dst : dst + len(chunk)] = chunk
        else:
            out[dst:dst] = chunk
    return kind, bytes(out)


def exercise(media: Path, out: Path) -> list[str]:
    """The library's read, extract and validate entry points on one medium: the promises each run broke.

    A MediaError is the one-line refusal the CLI prints; any other exception is a bug of ours.
    """
    import json

    from dicommedia.errors import MediaError
    from dicommedia.media import open_media
    from dicommedia.media.verify import split_verified
    from dicommedia.profile import load_profile
    from dicommedia.read.extract import extract
    from dicommedia.validate import validate_media

    broken: list[str] = []
    messages: list[str] = []
    for plain in (True, False):
        try:
            with open_media(media, plain=plain) as view:
                files = list(view.files())
                kept, refused = split_verified(files)
                if plain and kept:
                    extract(view, kept, out)
                messages += [p.message for p in view.problems + refused]
        except MediaError as exc:
            messages.append(str(exc))
        except Exception as exc:  # the oracle: anything else is a bug
            broken.append(f"read(plain={plain}): {type(exc).__name__}: {exc}"[:300])
    try:
        report = validate_media(media, load_profile("STD-GEN-CD"))
        json.dumps(report.as_json())
        messages += [f.message for f in report.findings]
    except Exception as exc:  # the oracle, as above
        broken.append(f"validate: {type(exc).__name__}: {exc}"[:300])
    broken += [f"not one line: {m[:200]!r}" for m in messages if "\n" in m or "Traceback" in m]
    return broken
