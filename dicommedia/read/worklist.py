"""Local identity from a Modality Worklist (PS3.4 K.6; IHE Import Reconciliation Workflow).

The outside study's Accession Number is looked up first, then the outside Patient ID with the birth date. One
patient found: their local demographics. None: the instance is unmapped. Several different patients: refused,
since choosing one would send the images under a guessed identity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dicommedia.errors import MediaError
from dicommedia.read.reconcile import (
    ISSUER_OF_PATIENT_ID,
    PATIENT_BIRTH_DATE,
    PATIENT_ID,
    PATIENT_NAME,
    PATIENT_SEX,
    Identity,
    Outside,
    Refusal,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicommedia.read.send import Peer

WORKLIST_FIND = "1.2.840.10008.5.1.4.31"  # Modality Worklist Information Model - FIND
# Worklist keyword -> (tag, VR) of the local value it gives
_RETURNED = {
    "PatientID": (PATIENT_ID, "LO"),
    "PatientName": (PATIENT_NAME, "PN"),
    "PatientBirthDate": (PATIENT_BIRTH_DATE, "DA"),
    "PatientSex": (PATIENT_SEX, "CS"),
    "IssuerOfPatientID": (ISSUER_OF_PATIENT_ID, "LO"),
}


class Worklist:
    """A Modality Worklist SCP asked once per distinct outside patient/study (the reconciler caches answers)."""

    def __init__(self, peer: Peer, calling_aet: str, timeout: float):
        self.peer = peer
        self.calling_aet = calling_aet
        self.timeout = timeout

    def _find(self, **keys: str) -> list[Dataset]:
        """The worklist items matching ``keys``; MediaError when the SCP cannot be asked."""
        from pydicom.dataset import Dataset
        from pynetdicom import AE

        query = Dataset()
        for keyword in _RETURNED:
            setattr(query, keyword, "")
        query.AccessionNumber = ""
        for keyword, value in keys.items():
            setattr(query, keyword, value)
        step = Dataset()
        step.Modality = step.ScheduledStationAETitle = step.ScheduledProcedureStepStartDate = ""
        query.ScheduledProcedureStepSequence = [step]
        ae = AE(self.calling_aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        ae.add_requested_context(WORKLIST_FIND)
        assoc = ae.associate(self.peer.host, self.peer.port, ae_title=self.peer.ae_title)
        if not assoc.is_established:
            raise MediaError("no association for the worklist query", str(self.peer), hint="check --worklist")
        found = []
        try:
            for status, identifier in assoc.send_c_find(query, WORKLIST_FIND):
                code = getattr(status, "Status", None)
                if code is None or code not in (0x0000, 0xFF00, 0xFF01):
                    raise MediaError(
                        "the worklist query failed" + (f" with status 0x{code:04X}" if code is not None else ""),
                        str(self.peer),
                    )
                if identifier is not None and code in (0xFF00, 0xFF01):
                    found.append(identifier)
        finally:
            assoc.release()
        return found

    def __call__(self, outside: Outside) -> Identity | Refusal | None:
        """The local identity of the outside instance's patient, a Refusal when ambiguous, None when unknown."""
        how = f"accession {outside.accession!r}"
        matches = self._find(AccessionNumber=outside.accession) if outside.accession else []
        if not matches and outside.patient_id and outside.birth_date:
            how = f"patient {outside.patient_id!r} born {outside.birth_date}"
            matches = self._find(PatientID=outside.patient_id, PatientBirthDate=outside.birth_date)
        identities = {
            tuple(
                (tag, vr, str(item.get(keyword, "") or "").strip())
                for keyword, (tag, vr) in _RETURNED.items()
                if str(item.get(keyword, "") or "").strip()
            )
            for item in matches
        }
        if not identities:
            return None
        if len(identities) > 1:
            return Refusal(f"the worklist holds {len(identities)} different patients for {how}")
        (values,) = identities
        if not any(tag == PATIENT_ID for tag, _, _ in values):
            return Refusal(f"the worklist entry for {how} has no Patient ID")
        return Identity({tag: (vr, text) for tag, vr, text in values}, f"worklist {self.peer} ({how})")
