"""Patients -> studies -> series of a media view, its filters, and the SPEC 2.2 listing JSON."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from dicommedia.media import MediaFile, MediaView


@dataclass
class Series:
    """One series on the media and its instances."""

    series_instance_uid: str | None
    modality: str | None
    series_number: str | None
    series_description: str | None
    files: list[MediaFile] = field(default_factory=list)


@dataclass
class Study:
    """One study on the media and its series."""

    study_instance_uid: str | None
    study_date: str | None
    study_description: str | None
    series: dict[str | None, Series] = field(default_factory=dict)

    @property
    def instances(self) -> int:
        """Instances of all series of the study."""
        return sum(len(s.files) for s in self.series.values())


@dataclass
class Patient:
    """One patient on the media and their studies."""

    patient_id: str | None
    patient_name: str | None
    studies: dict[str | None, Study] = field(default_factory=dict)

    @property
    def instances(self) -> int:
        """Instances of all studies of the patient."""
        return sum(s.instances for s in self.studies.values())


def build_tree(files: Iterable[MediaFile]) -> list[Patient]:
    """Group files by patient, study and series, in the order the media lists them."""
    patients: dict[str | None, Patient] = {}
    for f in files:
        patient = patients.setdefault(f.patient_id, Patient(f.patient_id, f.patient_name))
        study = patient.studies.setdefault(
            f.study_instance_uid, Study(f.study_instance_uid, f.study_date, f.study_description)
        )
        series = study.series.setdefault(
            f.series_instance_uid,
            Series(f.series_instance_uid, f.modality, f.series_number, f.series_description),
        )
        series.files.append(f)
    return list(patients.values())


def _number(value: str | None) -> int | str | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return value


def listing_json(view: MediaView, tree: list[Patient]) -> dict:
    """The listing as SPEC 2.2 states it."""
    return {
        "media": str(view.path),
        "fileset_id": view.fileset_id,
        "instances": sum(p.instances for p in tree),
        # Part 10 files the DICOMDIR does not reference: counted in the listing too, named here.
        "unreferenced_files": [
            "/".join(f.file_id)
            for p in tree
            for st in p.studies.values()
            for se in st.series.values()
            for f in se.files
            if f.unreferenced
        ],
        "patients": [
            {
                "patient_id": p.patient_id,
                "patient_name": p.patient_name,
                "studies": [
                    {
                        "study_instance_uid": st.study_instance_uid,
                        "study_date": st.study_date,
                        "study_description": st.study_description,
                        "series": [
                            {
                                "series_instance_uid": se.series_instance_uid,
                                "modality": se.modality,
                                "series_number": _number(se.series_number),
                                "instances": len(se.files),
                            }
                            for se in st.series.values()
                        ],
                    }
                    for st in p.studies.values()
                ],
            }
            for p in tree
        ],
    }
