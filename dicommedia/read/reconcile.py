"""Import reconciliation (IHE Import Reconciliation Workflow; SPEC 2.2): the local identity of outside instances.

Sources of the local identity: a patient map (CSV), a Modality Worklist (see :mod:`dicommedia.read.worklist`),
and ``--set TAG=VALUE`` values written into every instance. An instance whose patient no source knows is
"unmapped": sent unchanged, skipped or failed as ``--unmapped`` says; never sent under a guessed identity.
"""

from __future__ import annotations

import csv
import datetime
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from dicommedia.errors import MediaError
from dicommedia.part10.errors import Part10Error
from dicommedia.part10.positions import Element, NeedMore, walk
from dicommedia.read.coerce import ORIGINAL_ATTRIBUTES, Coercion, CoercionError, coerce_head
from dicommedia.read.jobs import Failure, Skip
from dicommedia.standard.identity import SOURCE_AE_TITLE
from dicommedia.standard.uids import IMPLICIT_VR_LE

if TYPE_CHECKING:
    from dicommedia.read.jobs import Job

Unmapped = Literal["send", "skip", "fail"]

PATIENT_NAME, PATIENT_ID, ISSUER_OF_PATIENT_ID = 0x00100010, 0x00100020, 0x00100021
PATIENT_BIRTH_DATE, PATIENT_SEX, ACCESSION_NUMBER = 0x00100030, 0x00100040, 0x00080050
STUDY_INSTANCE_UID = 0x0020000D
_OUTSIDE_KEYS = {
    "patient_id": PATIENT_ID,
    "issuer": ISSUER_OF_PATIENT_ID,
    "patient_name": PATIENT_NAME,
    "birth_date": PATIENT_BIRTH_DATE,
    "accession": ACCESSION_NUMBER,
    "study_instance_uid": STUDY_INSTANCE_UID,
}
_OUTSIDE_TAGS = tuple(_OUTSIDE_KEYS.values())
_WANTED = set(_OUTSIDE_TAGS)
# Map column -> (tag, VR) of the local value it gives; the two source columns say which outside patient.
MAP_COLUMNS = {
    "patient_id": (PATIENT_ID, "LO"),
    "patient_name": (PATIENT_NAME, "PN"),
    "patient_birth_date": (PATIENT_BIRTH_DATE, "DA"),
    "issuer": (ISSUER_OF_PATIENT_ID, "LO"),
}
SOURCE_COLUMNS = ("source_patient_id", "issuer_of_patient_id")
_MAX_LENGTH = {"LO": 64, "PN": 64 * 3 + 2, "DA": 8, "SH": 16, "CS": 16}
_NOT_CHANGEABLE = {0x00080016, 0x00080018, 0x0020000D, 0x0020000E}  # SOP Class/Instance, Study, Series UIDs
_UNCOERCIBLE_SYNTAXES = {"1.2.840.10008.1.2.2": "Explicit VR Big Endian", "1.2.840.10008.1.2.1.99": "Deflated"}


@dataclass(frozen=True)
class Outside:
    """What an instance says of its patient and study, as found in the file."""

    patient_id: str | None = None
    issuer: str | None = None
    patient_name: str | None = None
    birth_date: str | None = None
    accession: str | None = None
    study_instance_uid: str | None = None


@dataclass(frozen=True)
class Identity:
    """The local values for an instance (tag -> (VR, text)) and where they come from."""

    values: Mapping[int, tuple[str, str]]
    source: str  # "patient map line 3", "worklist", "--set"
    issuer_of_outside_values: str = ""

    def show(self) -> dict[str, str]:
        """The local identity by keyword, for the dry run."""
        from pydicom.datadict import keyword_for_tag

        return {keyword_for_tag(tag) or f"{tag:08X}": text for tag, (_, text) in sorted(self.values.items())}


@dataclass(frozen=True)
class Refusal:
    """No local identity for an instance: why, and whether the instance is skipped rather than failed."""

    reason: str
    skip: bool = False


Resolution = Identity | Refusal
Local = tuple[Outside, Resolution, Coercion | None]  # an instance's outside keys, their resolution, its coercion
Resolver = Callable[[Outside], Identity | Refusal | None]  # None: this source does not know the patient


def _check_value(vr: str, text: str, where: str) -> str:
    """A value fit for its VR (length, no backslash or control character; a date as YYYYMMDD), or MediaError."""
    text = text.strip()
    if "\\" in text or any(ord(c) < 32 for c in text):
        raise MediaError(f"{where}: {text!r} holds a backslash or a control character")
    if vr == "DA" and text and not re.fullmatch(r"\d{8}", text):
        raise MediaError(f"{where}: {text!r} is not a date as YYYYMMDD")
    if len(text) > _MAX_LENGTH.get(vr, 1024):
        raise MediaError(f"{where}: {text!r} is longer than a {vr} value may be ({_MAX_LENGTH[vr]})")
    return text


@dataclass
class PatientMap:
    """Outside (patient ID, issuer) -> local identity, read from a CSV file with a header row."""

    path: str
    rows: dict[tuple[str, str | None], Identity] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> PatientMap:
        """Read and check the whole map; MediaError naming the file and line on the first fault."""
        label = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise MediaError(f"cannot read the patient map: {exc}", label) from None
        lines = [row for row in enumerate(csv.reader(text.splitlines()), 1) if any(cell.strip() for cell in row[1])]
        if not lines:
            raise MediaError("the patient map is empty", label)
        _, header = lines[0]
        columns = [c.strip().lower() for c in header]
        known = (*SOURCE_COLUMNS, *MAP_COLUMNS)
        for column in columns:
            if column not in known:
                raise MediaError(f"line 1: unknown column {column!r} (known: {', '.join(known)})", label)
        if len(set(columns)) != len(columns):
            raise MediaError("line 1: a column is named twice", label)
        if "source_patient_id" not in columns or "patient_id" not in columns:
            raise MediaError("line 1: the header needs source_patient_id and patient_id columns", label)
        patient_map = cls(label)
        for number, cells in lines[1:]:
            where = f"{label} line {number}"
            if len(cells) != len(columns):
                raise MediaError(f"line {number}: {len(cells)} fields where the header has {len(columns)}", label)
            row = dict(zip(columns, (c.strip() for c in cells), strict=True))
            source = _check_value("LO", row["source_patient_id"], where)
            if not source or not row["patient_id"]:
                raise MediaError(f"line {number}: source_patient_id and patient_id must not be empty", label)
            values = {
                MAP_COLUMNS[c][0]: (MAP_COLUMNS[c][1], _check_value(MAP_COLUMNS[c][1], row[c], where))
                for c in columns
                if c in MAP_COLUMNS and row[c]
            }
            key = (source, row.get("issuer_of_patient_id") or None)
            if key in patient_map.rows:
                raise MediaError(f"line {number}: outside patient {source!r} is mapped twice", label)
            patient_map.rows[key] = Identity(values, f"patient map line {number}", key[1] or "")
        return patient_map

    def __call__(self, outside: Outside) -> Identity | None:
        """The row for the outside patient: with its issuer first, then a row without issuer."""
        if not outside.patient_id:
            return None
        return self.rows.get((outside.patient_id, outside.issuer)) or self.rows.get((outside.patient_id, None))


def parse_set(assignments: tuple[str, ...]) -> dict[int, tuple[str, str]]:
    """``--set TAG=VALUE`` (a keyword or GGGG,EEEE) as tag -> (VR, text); MediaError for a bad one."""
    if not assignments:
        return {}
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    values: dict[int, tuple[str, str]] = {}
    for text in assignments:
        name, sep, value = text.partition("=")
        name = name.strip()
        hex_tag = re.fullmatch(r"\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?", name)
        tag = int(hex_tag[1] + hex_tag[2], 16) if hex_tag else tag_for_keyword(name)
        if not sep or tag is None:
            raise MediaError(f"--set {text!r}: not TAG=VALUE with a known keyword or GGGG,EEEE tag")
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            raise MediaError(f"--set {text!r}: tag not in the data dictionary (its VR is unknown)") from None
        if tag in _NOT_CHANGEABLE or tag >> 16 in (0x0002, 0x7FE0) or vr in ("SQ", "OB", "OW", "UN"):
            raise MediaError(f"--set {text!r}: this attribute cannot be set on import (UIDs stay unchanged)")
        values[tag] = (vr, _check_value(vr, value, f"--set {name}"))
    return values


def now_dt() -> str:
    """Now, as a DT value with the local offset (an Attribute Modification DateTime)."""
    return datetime.datetime.now().astimezone().strftime("%Y%m%d%H%M%S.%f%z")


@dataclass
class Reconciler:
    """The local identity of each instance from its outside values: the first source that knows it wins."""

    sources: list[Resolver]
    settings: dict[int, tuple[str, str]]
    unmapped: Unmapped = "fail"
    modified_at: str = field(default_factory=now_dt)
    _cache: dict[Outside, Resolution] = field(default_factory=dict)
    _coercions: dict[int, tuple[Identity, Coercion]] = field(default_factory=dict)
    _by_raw: dict[tuple[bytes | None, ...], Local] = field(default_factory=dict)  # see :meth:`local`
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def remote(self) -> bool:
        """Whether a source asks a server (a worklist): then every instance is resolved before any is sent."""
        return any(not isinstance(source, PatientMap) for source in self.sources)

    @cached_property
    def last_tag(self) -> int:
        """The highest tag a coercion may touch: how far into a data set to walk."""
        return max([ORIGINAL_ATTRIBUTES, *self.settings])

    def local(self, elements: list[Element], head: bytes | memoryview) -> Local:
        """The outside keys among the walked top-level elements of a data set, what they resolve to, and how to
        write that (None: nothing to change); held per raw values, so that a series resolves once."""
        found = {el[0]: el for el in elements if el[0] in _WANTED}
        raw = tuple([bytes(head[el[3] : el[4]]) if el else None for el in map(found.get, _OUTSIDE_TAGS)])
        held = self._by_raw.get(raw)
        if held is None:
            outside = Outside(*map(_outside_text, raw))
            resolution = self.resolve(outside)
            changes = isinstance(resolution, Identity) and resolution.values
            held = self._by_raw[raw] = (outside, resolution, self.coercion(resolution) if changes else None)
        return held

    def resolve(self, outside: Outside) -> Resolution:
        """An :class:`Identity` (possibly with nothing to change) or a :class:`Refusal`; cached per outside keys.

        Senders resolve from several threads: one at a time, so that a worklist is asked once per patient.
        """
        with self._lock:
            if outside not in self._cache:
                self._cache[outside] = self._resolve(outside)
            return self._cache[outside]

    def _resolve(self, outside: Outside) -> Resolution:
        for source in self.sources:
            found = source(outside)
            if isinstance(found, Refusal):
                return found
            if found is not None:
                return Identity({**found.values, **self.settings}, found.source, found.issuer_of_outside_values)
        if not self.sources:
            return Identity(dict(self.settings), "--set")
        who = f"outside patient {outside.patient_id!r}" if outside.patient_id else "an instance without Patient ID"
        reason = f"{who} is not in the patient map or worklist"
        if self.unmapped == "send":
            return Identity(dict(self.settings), "unmapped, sent as it is")
        return Refusal(reason + (" (--unmapped skip)" if self.unmapped == "skip" else ""), self.unmapped == "skip")

    def coercion(self, identity: Identity) -> Coercion:
        """How to write ``identity`` into a data set: one per identity, so its encoded elements are reused."""
        with self._lock:
            held = self._coercions.get(id(identity))  # the identity is kept too: its id is not reused meanwhile
            if held is None or held[0] is not identity:
                made = Coercion(identity.values, self.modified_at, SOURCE_AE_TITLE, identity.issuer_of_outside_values)
                held = self._coercions[id(identity)] = (identity, made)
            return held[1]


def is_explicit(transfer_syntax: str) -> bool:
    """Whether a data set in this transfer syntax is Explicit VR LE; CoercionError for one we cannot rewrite."""
    if transfer_syntax in _UNCOERCIBLE_SYNTAXES:
        raise CoercionError(f"cannot rewrite a data set in {_UNCOERCIBLE_SYNTAXES[transfer_syntax]}")
    return transfer_syntax != IMPLICIT_VR_LE


def _outside_text(value: bytes | None) -> str | None:
    return value.decode("latin-1").strip(" \0") or None if value else None


Rewrite = tuple[bytes, int] | None | Refusal  # a new data set head and the stored bytes it replaces


def reconcile_data(job: Job, head: bytes | memoryview, transfer_syntax: str, reconciler: Reconciler) -> Rewrite:
    """Resolve the local identity of the instance from the start of its data set and rewrite that start.

    One walk serves both. Returns the new head and how many bytes of the stored one it replaces, None when
    nothing changes, or the :class:`Refusal`; :class:`NeedMore` when ``head`` is too short.
    """
    explicit = is_explicit(transfer_syntax)
    try:
        walked = walk(head, explicit, reconciler.last_tag)
    except Part10Error as exc:
        raise CoercionError(str(exc)) from None
    job.outside, resolution, coercion = reconciler.local(walked[0], head)
    if isinstance(resolution, Refusal):
        return resolution
    job.identity = resolution
    return None if coercion is None else coerce_head(head, explicit, coercion, walked)


def reconciled_head(job: Job, offset: int, head: bytes | bytearray, reconciler: Reconciler) -> Rewrite:
    """:func:`reconcile_data` on the item's data set from ``offset``: on what ``head`` (the item's first bytes, read
    already) holds of it, then on longer reads of the media (4x each time) until the walk has what it needs."""
    size = job.item.size - offset
    data = memoryview(head)[offset:]
    while True:
        try:
            return reconcile_data(job, data, job.transfer_syntax, reconciler)
        except NeedMore:
            if len(data) >= size:
                raise CoercionError("the data set ends inside an element") from None
            more = bytearray(min(max(4 * len(data), 4096), size))
            job.item.read_into(offset, [memoryview(more)])
            data = memoryview(more)


def reconciled_dataset(job: Job, data: bytes, transfer_syntax: str, reconciler: Reconciler) -> bytes | Refusal:
    """A whole data set held in memory (in ``transfer_syntax``) under its local identity, or the Refusal."""
    try:
        rewrite = reconcile_data(job, data, transfer_syntax, reconciler)
    except NeedMore:
        raise CoercionError("the data set ends inside an element") from None
    if isinstance(rewrite, Refusal):
        return rewrite
    return data if rewrite is None else rewrite[0] + data[rewrite[1] :]


def refused(job: Job, refusal: Refusal) -> Failure | Skip:
    """What a refused instance counts as: skipped (``--unmapped skip``) or failed."""
    if refusal.skip:
        return Skip(job.sop_instance, job.file_id, refusal.reason)
    return Failure(job.sop_instance, job.file_id, None, f"not sent: {refusal.reason}")


def local_head(
    job: Job, offset: int, head: bytes | bytearray, reconciler: Reconciler
) -> tuple[bytes, int] | None | Failure | Skip:
    """:func:`reconciled_head` for a sender: the rewrite (None: nothing changes), or what the instance counts as
    when it has no local identity or cannot take it; OSError when the media cannot be read."""
    try:
        rewrite = reconciled_head(job, offset, head, reconciler)
    except CoercionError as exc:
        return Failure(job.sop_instance, job.file_id, None, f"cannot write the local identity into the data set: {exc}")
    return refused(job, rewrite) if isinstance(rewrite, Refusal) else rewrite


def local_dataset(job: Job, data: bytes, transfer_syntax: str, reconciler: Reconciler) -> bytes | Failure | Skip:
    """:func:`reconciled_dataset` for a sender: the data set under its local identity, or what the instance counts
    as when it has no local identity or cannot take it."""
    try:
        local = reconciled_dataset(job, data, transfer_syntax, reconciler)
    except CoercionError as exc:
        return Failure(job.sop_instance, job.file_id, None, f"cannot write the local identity into the data set: {exc}")
    return refused(job, local) if isinstance(local, Refusal) else local
