"""The file-set plan: patients -> studies -> series -> instances, with repaired keys and File IDs."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from dicommedia.inputs.dicom_file import InstanceHeader, Keys
from dicommedia.part10.header import RawValue
from dicommedia.plan.keys import Repair, checked, first_valid, modality_for, repair_leaf, unrepairable
from dicommedia.standard.dictionary import vr_of
from dicommedia.standard.identity import new_uid
from dicommedia.standard.records import leaf_record_type, record_type_keys

UNKNOWN_DATE = "19000101"  # the conventional "date not known"; used only when no date of any kind exists
UNKNOWN_TIME = "000000"

_NONE: Mapping[str, object] = MappingProxyType({})


@dataclass(slots=True)
class PlannedInstance:
    """One instance to write: its header, leaf record type, values to coerce and encoding (its File ID is its
    place in the plan: Plan.series_folders)."""

    header: InstanceHeader
    record_type: str
    coercions: Mapping[str, object] = field(default_factory=lambda: _NONE)  # shared until the first coercion
    target_syntax: str = ""
    codec: str | None = None

    def coerce(self, values: Mapping[str, object]) -> None:
        """Values this instance is written with instead of its own."""
        if values:
            self.coercions = {**self.coercions, **values}

    @property
    def sop_instance_uid(self) -> str:
        """SOP Instance UID as written (after any new UID)."""
        return str(self.coercions.get("SOPInstanceUID", self.header.sop_instance_uid))

    def key(self, keyword: str) -> object:
        """A key as written: coerced value, else the file's."""
        if keyword in self.coercions:
            return self.coercions[keyword]
        return self.header.keys.get(keyword)

    def display(self, keyword: str) -> str:
        """A key as written, decoded for people to read."""
        if keyword in self.coercions:
            return str(self.coercions[keyword])
        return self.header.keys.display(keyword)

    def raw_key(self, keyword: str) -> RawValue | None:
        """A key as written, encoded (Explicit VR LE)."""
        if keyword in self.coercions:
            from dicommedia.part10.encode import raw_of

            return raw_of(vr_of(keyword), self.coercions[keyword])
        return self.header.keys.raw(keyword)


@dataclass
class PlannedSeries:
    """A series and its instances."""

    uid: str
    instances: list[PlannedInstance] = field(default_factory=list)
    coercions: dict[str, object] = field(default_factory=dict)


@dataclass
class PlannedStudy:
    """A study and its series."""

    uid: str
    series: dict[str, PlannedSeries] = field(default_factory=dict)
    coercions: dict[str, object] = field(default_factory=dict)


@dataclass
class PlannedPatient:
    """A patient (one PATIENT record: Patient ID unique in the file-set, PS3.3 F.5.1) and their studies."""

    patient_id: str
    studies: dict[str, PlannedStudy] = field(default_factory=dict)
    coercions: dict[str, object] = field(default_factory=dict)


@dataclass
class Plan:
    """The whole file-set: patients in input order, warnings, instances that cannot go."""

    patients: dict[str, PlannedPatient] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)

    def instances(self) -> list[PlannedInstance]:
        """Every planned instance in File ID order."""
        return [
            inst
            for patient in self.patients.values()
            for study in patient.studies.values()
            for series in study.series.values()
            for inst in series.instances
        ]

    def coercions_for(
        self, patient: PlannedPatient, study: PlannedStudy, series: PlannedSeries, inst: PlannedInstance
    ) -> dict[str, object]:
        """All values to set in one instance's file, from every level."""
        return {**patient.coercions, **study.coercions, **series.coercions, **inst.coercions}

    def as_written(
        self, patient: PlannedPatient, study: PlannedStudy, series: PlannedSeries, inst: PlannedInstance
    ) -> PlannedInstance:
        """The instance with the values of every level applied, as its file will carry them."""
        coercions = self.coercions_for(patient, study, series, inst)
        return PlannedInstance(inst.header, inst.record_type, coercions, inst.target_syntax, inst.codec)

    def series_folders(self) -> Iterator[tuple[tuple[str, ...], PlannedPatient, PlannedStudy, PlannedSeries]]:
        """Every series in order with its patient, study and File ID folder: DICOM/PAnnnnnn/STnnnnnn/SEnnnnnn,
        its instances IMnnnnnn in it (5 levels of 8 characters, PS3.10 8.2, PS3.12 F.3.1; see ``file_id``)."""
        for p, patient in enumerate(self.patients.values(), 1):
            for s, study in enumerate(patient.studies.values(), 1):
                for e, series in enumerate(study.series.values(), 1):
                    yield ("DICOM", f"PA{p:06d}", f"ST{s:06d}", f"SE{e:06d}"), patient, study, series


def file_id(folder: tuple[str, ...], number: int) -> tuple[str, ...]:
    """The File ID of the ``number``-th instance (from 1) of the series in ``folder``."""
    return (*folder, f"IM{number:06d}")


def _text(value: object) -> str:
    return str(value or "").strip()


def _patient_key(keys: Keys) -> str:
    patient_id = _text(keys.get("PatientID"))
    if patient_id:
        return "id:" + patient_id
    return f"anon:{_text(keys.get('PatientName'))}|{_text(keys.get('PatientBirthDate'))}"


def build_plan(instances: list[PlannedInstance]) -> Plan:
    """Group instances into patients/studies/series, repair keys at every level, assign File IDs."""
    plan = Plan()
    invented_patients = 0
    invented_study_uids: dict[str, str] = {}
    invented_series_uids: dict[tuple[str, str], str] = {}
    for inst in instances:
        keys = inst.header.keys
        pkey = _patient_key(keys)
        patient = plan.patients.get(pkey)
        if patient is None:
            patient_id = _text(keys.get("PatientID"))
            patient = PlannedPatient(patient_id=patient_id)
            if not patient_id:
                invented_patients += 1
                patient.patient_id = f"DMPAT{invented_patients:06d}"
                patient.coercions["PatientID"] = patient.patient_id
                plan.warnings.append(
                    f"{inst.header.source.label}: Type 1 key PatientID missing; {patient.patient_id!r} written "
                    f"for patient {_text(keys.get('PatientName')) or '(no name)'}"
                )
            plan.patients[pkey] = patient
        study_uid = _text(keys.get("StudyInstanceUID"))
        if not study_uid:
            study_uid = invented_study_uids.setdefault(pkey, new_uid())
            inst.coerce({"StudyInstanceUID": study_uid})
            plan.warnings.append(f"{inst.header.source.label}: StudyInstanceUID missing; {study_uid} written")
        study = patient.studies.setdefault(study_uid, PlannedStudy(uid=study_uid))
        series_uid = _text(keys.get("SeriesInstanceUID"))
        if not series_uid:
            modality = _text(keys.get("Modality")) or modality_for(inst.header.sop_class_uid)
            series_uid = invented_series_uids.setdefault((study_uid, modality), new_uid())
            inst.coerce({"SeriesInstanceUID": series_uid})
            plan.warnings.append(f"{inst.header.source.label}: SeriesInstanceUID missing; {series_uid} written")
        study.series.setdefault(series_uid, PlannedSeries(uid=series_uid)).instances.append(inst)
    _check_patient_names(plan)
    study_number = 0
    for patient in plan.patients.values():
        for study in patient.studies.values():
            study_number += 1
            _repair_study(plan, study, study_number)
            _repair_series_numbers(plan, study)
            for series in study.series.values():
                _repair_series(plan, study, series)
                _repair_instances(plan, study, series)
    prune_empty(plan)
    return plan


# The keys a series shares (checked once per distinct set of values: ~100 us an instance otherwise).
_SERIES_KEYS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "StudyID", "Modality", "StudyDate", "StudyTime")
_SERIES_VERDICTS: dict[tuple, bool] = {}
_MAX_VERDICTS = 1024


def needs_no_repair(header: InstanceHeader) -> bool:
    """True when every key the repairs below look at is present and valid in this instance: planning then
    changes nothing in its file (unless another instance of its study lacks a study key it would lend)."""
    keys = header.keys
    shared = (header.sop_class_uid, keys.raw("SeriesNumber"), *(keys.raw(k) for k in _SERIES_KEYS))
    verdict = _SERIES_VERDICTS.get(shared)
    if verdict is None:
        if len(_SERIES_VERDICTS) >= _MAX_VERDICTS:
            _SERIES_VERDICTS.clear()
        verdict = _SERIES_VERDICTS[shared] = _series_keys_valid(header)
    if not verdict or not _valid_as_is("InstanceNumber", keys.get("InstanceNumber")):
        return False
    record_type = leaf_record_type(header.sop_class_uid, _text(keys.get("Modality")))
    return all(_valid_as_is(k, keys.get(k)) for k in _leaf_type1_keys(record_type))


def _series_keys_valid(header: InstanceHeader) -> bool:
    keys = header.keys
    if not all(
        _text(keys.get(k)) for k in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "StudyID", "Modality")
    ):
        return False
    return all(_valid_as_is(k, keys.get(k)) for k in ("StudyDate", "StudyTime", "SeriesNumber"))


def _valid_as_is(keyword: str, value: object) -> bool:
    """Present, valid for its VR, and written as its valid form (else a repair would rewrite it)."""
    good = checked(keyword, value)
    return good is not None and str(good) == _text(value)


@functools.cache
def _leaf_type1_keys(record_type: str) -> tuple[str, ...]:
    return tuple(key.keyword for key in record_type_keys(record_type) if key.type == "1")


def _check_patient_names(plan: Plan) -> None:
    for patient in plan.patients.values():
        names = {
            _text(inst.header.keys.get("PatientName"))
            for study in patient.studies.values()
            for series in study.series.values()
            for inst in series.instances
        }
        if len(names) > 1:
            plan.warnings.append(
                f"Patient ID {patient.patient_id!r} is used with different names ({', '.join(sorted(names))}); "
                "they share one PATIENT record"
            )


def _study_keys(study: PlannedStudy) -> list[Keys]:
    return [inst.header.keys for series in study.series.values() for inst in series.instances]


def _repair_study(plan: Plan, study: PlannedStudy, number: int) -> None:
    keys = _study_keys(study)
    label = f"study {study.uid}"
    first = keys[0]
    repair = Repair()
    date = first_valid(keys, ("StudyDate",))
    if date is None or str(date) != _text(first.get("StudyDate")):
        lent = date or first_valid(keys, ("SeriesDate", "AcquisitionDate", "ContentDate", "InstanceCreationDate"))
        repair.set(
            "StudyDate",
            lent or UNKNOWN_DATE,
            f"{label}: StudyDate {_text(first.get('StudyDate')) or 'missing'}; {lent or UNKNOWN_DATE!r} written",
        )
    time = first_valid(keys, ("StudyTime",))
    if time is None or str(time) != _text(first.get("StudyTime")):
        lent = time or first_valid(keys, ("SeriesTime", "AcquisitionTime", "ContentTime", "InstanceCreationTime"))
        repair.set(
            "StudyTime",
            lent or UNKNOWN_TIME,
            f"{label}: StudyTime {_text(first.get('StudyTime')) or 'missing'}; {lent or UNKNOWN_TIME!r} written",
        )
    if not _text(first.get("StudyID")):
        accession = _text(first.get("AccessionNumber"))
        invented = accession[:16] if accession else f"DMSTUDY{number:04d}"
        repair.set("StudyID", invented, f"{label}: Type 1 key StudyID missing; {invented!r} written")
    study.coercions.update(repair.values)
    plan.warnings.extend(repair.warnings)


def _repair_series_numbers(plan: Plan, study: PlannedStudy) -> None:
    used = {
        int(n)
        for series in study.series.values()
        if (n := checked("SeriesNumber", series.instances[0].header.keys.get("SeriesNumber"))) is not None
    }
    next_number = max(used, default=0) + 1
    for series in study.series.values():
        value = series.instances[0].header.keys.get("SeriesNumber")
        if checked("SeriesNumber", value) is None:
            series.coercions["SeriesNumber"] = str(next_number)
            plan.warnings.append(
                f"series {series.uid}: Type 1 key SeriesNumber "
                f"{'missing' if not _text(value) else repr(_text(value))}; "
                f"{next_number} written"
            )
            next_number += 1
        elif str(checked("SeriesNumber", value)) != _text(value):
            series.coercions["SeriesNumber"] = checked("SeriesNumber", value)


def _repair_series(plan: Plan, study: PlannedStudy, series: PlannedSeries) -> None:
    first = series.instances[0].header
    if not _text(first.keys.get("Modality")):
        modality = modality_for(first.sop_class_uid)
        series.coercions["Modality"] = modality
        plan.warnings.append(f"series {series.uid}: Type 1 key Modality missing; {modality!r} written")


def _repair_instances(plan: Plan, study: PlannedStudy, series: PlannedSeries) -> None:
    numbers = [checked("InstanceNumber", inst.header.keys.get("InstanceNumber")) for inst in series.instances]
    next_number = max((int(n) for n in numbers if n is not None), default=0) + 1
    study_date = study.coercions.get("StudyDate") or checked(
        "StudyDate", series.instances[0].header.keys.get("StudyDate")
    )
    study_time = study.coercions.get("StudyTime") or checked(
        "StudyTime", series.instances[0].header.keys.get("StudyTime")
    )
    kept: list[PlannedInstance] = []
    for inst, number in zip(series.instances, numbers):
        label = inst.header.source.label
        inst.record_type = inst.record_type or leaf_record_type(
            inst.header.sop_class_uid, _text(series.coercions.get("Modality") or inst.header.keys.get("Modality"))
        )
        fallback: dict[str, object] = {"StudyDate": study_date, "StudyTime": study_time}
        if number is None:
            fallback["InstanceNumber"] = str(next_number)
            next_number += 1
        repair = repair_leaf(inst.record_type, inst.header.keys, fallback, label)
        missing = unrepairable(inst.record_type, inst.header.keys, repair)
        if missing:
            plan.refused.append(
                (
                    label,
                    f"Type 1 key(s) {', '.join(missing)} of the {inst.record_type} record missing; "
                    "no value can be invented for them",
                )
            )
            continue
        inst.coerce(repair.values)
        plan.warnings.extend(repair.warnings)
        kept.append(inst)
    series.instances = kept


def prune_empty(plan: Plan) -> None:
    """Drop series, studies and patients left without instances."""
    for pkey in list(plan.patients):
        patient = plan.patients[pkey]
        for suid in list(patient.studies):
            study = patient.studies[suid]
            for seuid in [k for k, s in study.series.items() if not s.instances]:
                del study.series[seuid]
            if not study.series:
                del patient.studies[suid]
        if not patient.studies:
            del plan.patients[pkey]
