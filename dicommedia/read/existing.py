"""``--skip-existing``: which instances the peer already holds, asked per series before sending.

C-FIND at IMAGE level (Study Root, PS3.4 C.6.2) for a Storage SCP; QIDO-RS (PS3.18 10.6) for a DICOMweb one.
An interrupted import is then resumed rather than repeated: UIDs never change on import, so a SOP Instance UID
the peer lists is the instance we would send.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from dicommedia.errors import MediaError
from dicommedia.read.jobs import Job

if TYPE_CHECKING:
    from dicommedia.read.send import Peer, SendOptions
    from dicommedia.read.stow import StowTarget

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


def by_series(jobs: Iterable[Job]) -> dict[tuple[str, str], list[Job]]:
    """The jobs grouped by (Study, Series Instance UID); jobs whose media keys lack them are left out."""
    groups: dict[tuple[str, str], list[Job]] = defaultdict(list)
    for job in jobs:
        study = getattr(job.item, "study_instance_uid", None)
        series = getattr(job.item, "series_instance_uid", None)
        if study and series:
            groups[(study, series)].append(job)
    return groups


class FindCheck:
    """The SOP Instance UIDs a Storage SCP's Query/Retrieve SCP lists, one C-FIND per series."""

    def __init__(self, peer: Peer, options: SendOptions):
        self.peer = peer
        self.options = options

    def __call__(self, jobs: list[Job]) -> set[str]:
        """The jobs' SOP Instance UIDs that the peer holds; MediaError when it will not answer."""
        from pydicom.dataset import Dataset
        from pynetdicom import AE

        ae = AE(self.options.calling_aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.options.timeout
        ae.add_requested_context(STUDY_ROOT_FIND)
        tls = (self.options.tls.context(), self.peer.host) if self.options.tls else None
        assoc = ae.associate(self.peer.host, self.peer.port, ae_title=self.peer.ae_title, tls_args=tls)
        if not assoc.is_established:
            raise MediaError(
                "no association for C-FIND (--skip-existing)",
                str(self.peer),
                hint="the peer must offer Study Root Query/Retrieve FIND to us",
            )
        held: set[str] = set()
        try:
            for study, series in by_series(jobs):
                query = Dataset()
                query.QueryRetrieveLevel = "IMAGE"
                query.StudyInstanceUID, query.SeriesInstanceUID, query.SOPInstanceUID = study, series, ""
                for status, identifier in assoc.send_c_find(query, STUDY_ROOT_FIND):
                    code = getattr(status, "Status", None)
                    if code is None or code not in (0x0000, 0xFF00, 0xFF01):
                        raise MediaError(
                            "C-FIND failed" + (f" with status 0x{code:04X}" if code is not None else ": no answer"),
                            str(self.peer),
                            hint="leave out --skip-existing to send everything",
                        )
                    if identifier is not None and "SOPInstanceUID" in identifier:
                        held.add(str(identifier.SOPInstanceUID))
        finally:
            assoc.release()
        return held


class QidoCheck:
    """The SOP Instance UIDs a DICOMweb service lists, one QIDO-RS query per series."""

    def __init__(self, target: StowTarget):
        self.target = target

    def __call__(self, jobs: list[Job]) -> set[str]:
        """The jobs' SOP Instance UIDs that the service holds; MediaError when it will not answer."""
        held: set[str] = set()
        with self.target.client() as client:
            for study, series in by_series(jobs):
                url = f"{self.target.base}/studies/{study}/series/{series}/instances"
                rsp = self.target.request(client, "GET", url, headers={"Accept": "application/dicom+json"})
                if rsp.status_code in (204, 404):
                    continue
                if rsp.status_code != 200:
                    raise MediaError(
                        f"QIDO-RS answered {rsp.status_code} {rsp.reason_phrase}",
                        url,
                        hint="leave out --skip-existing to send everything",
                    )
                try:
                    found = rsp.json()
                    held.update(item["00080018"]["Value"][0] for item in found if "00080018" in item)
                except (ValueError, KeyError, IndexError, TypeError):
                    raise MediaError("QIDO-RS answered something that is not a DICOM JSON list", url) from None
        return held
