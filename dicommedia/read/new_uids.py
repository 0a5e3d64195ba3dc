"""``--new-uids``: new Study, Series and SOP Instance UIDs for an import, every reference in the set kept consistent.

One :class:`NewUids` serves the whole import, so an old UID gets the same new one in every instance that names
it: in its own attributes and in any reference (Referenced SOP Instance UID in any sequence, Source Image,
Referenced Series, SR / KOS / presentation state evidence). Only UIDs of instances in the set are replaced; a
reference to an object outside the set, and the Frame of Reference UID, stay as they are. The old UIDs of the
instance go into an Original Attributes Sequence item (PS3.3 C.12.1.1.9), Reason COERCE.

A new UID is derived from the old one and the import's seed (a name-based UUID in the 2.25 form, PS3.5 B.2): one
seed, one mapping. The seed is random unless ``--uid-seed`` gives it, which is how a dry run shows the very UIDs
that the import run with the same seed will write.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Protocol

from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from dicommedia.part10.meta import without_stray_meta
from dicommedia.read.coerce import CoercionError
from dicommedia.standard.identity import SOURCE_AE_TITLE

STUDY, SERIES, SOP_INSTANCE = 0x0020000D, 0x0020000E, 0x00080018
REFERENCED_SOP_INSTANCE = 0x00081155
_RENUMBERED = {STUDY, SERIES, SOP_INSTANCE, REFERENCED_SOP_INSTANCE}


class Instance(Protocol):
    """The UIDs of an instance of the set, as the media view knows them."""

    study_instance_uid: str | None
    series_instance_uid: str | None
    sop_instance_uid: str | None


def derive_uid(seed: str, old: str) -> str:
    """The new UID for ``old`` under ``seed``: a name-based (SHA-1) UUID as a 2.25 UID (PS3.5 B.2)."""
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, f'{seed}/{old}').int}"


@dataclass
class NewUids:
    """Old UID -> new UID for the UIDs of the import set; thread-safe (senders renumber from several threads)."""

    known: set[str]
    modified_at: str
    seed: str = field(default_factory=lambda: uuid.uuid4().hex)
    _new: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, instances: Iterable[Instance], modified_at: str, seed: str | None = None) -> NewUids:
        """The mapping for these instances (their Study, Series and SOP Instance UIDs), from ``seed`` if given."""
        known = {
            uid for i in instances for uid in (i.study_instance_uid, i.series_instance_uid, i.sop_instance_uid) if uid
        }
        return cls(known, modified_at) if seed is None else cls(known, modified_at, seed)

    def new(self, uid: str) -> str:
        """The new UID for ``uid`` (made on first use), or ``uid`` itself when it is not of the set."""
        with self._lock:
            if uid not in self.known:
                return uid
            if uid not in self._new:
                self._new[uid] = derive_uid(self.seed, uid)
            return self._new[uid]

    def renumber(self, ds: Dataset) -> None:
        """Replace the set's UIDs everywhere in ``ds`` (nested sequences too) and record the old ones."""
        old = Dataset()
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            if keyword in ds:
                setattr(old, keyword, ds[keyword].value)
                with self._lock:  # a file the listing did not name is of the set too
                    self.known.add(str(ds[keyword].value))

        def visit(_: Dataset, elem: DataElement) -> None:
            if elem.tag in _RENUMBERED and elem.VR == "UI" and elem.value:
                values = elem.value if elem.VM > 1 else [elem.value]
                new = [UID(self.new(str(v))) for v in values]
                elem.value = new if elem.VM > 1 else new[0]

        earlier = ds.pop(0x04000561, None)  # earlier records keep the values they recorded
        ds.walk(visit)
        item = Dataset()
        item.ModifiedAttributesSequence = Sequence([old])
        item.AttributeModificationDateTime = self.modified_at
        item.ModifyingSystem = SOURCE_AE_TITLE
        item.SourceOfPreviousValues = ""
        item.ReasonForTheAttributeModification = "COERCE"
        ds.OriginalAttributesSequence = Sequence([*(earlier.value if earlier else []), item])

    def part10(self, raw: bytes) -> bytes:
        """A Part 10 file renumbered; its Media Storage SOP Instance UID follows. CoercionError when unreadable."""
        try:
            stream = BytesIO(raw)
            ds = dcmread(without_stray_meta(stream) or stream)
            self.renumber(ds)
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            out = BytesIO()
            ds.save_as(out, enforce_file_format=True)
        except Exception as exc:  # pydicom's many ways to fail on a damaged file
            raise CoercionError(f"cannot give the instance new UIDs: {exc}") from None
        return out.getvalue()

    def dataset(self, data: bytes, implicit: bool) -> tuple[bytes, str]:
        """A data set (Little Endian, without File Meta) renumbered, and its new SOP Instance UID."""
        try:
            ds = read_dataset(BytesIO(data), implicit, True)
            self.renumber(ds)
            out = DicomBytesIO()
            out.is_little_endian, out.is_implicit_VR = True, implicit
            ds.set_original_encoding(implicit, True)
            write_dataset(out, ds)
        except Exception as exc:  # pydicom's many ways to fail on a damaged data set
            raise CoercionError(f"cannot give the instance new UIDs: {exc}") from None
        return out.getvalue(), str(ds.SOPInstanceUID)
