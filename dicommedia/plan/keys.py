"""Key repair: every Type 1 directory key gets a valid value (PS3.3 F.5), invented when the file lacks one.

An invented value is written both in the directory record and in the file, so the two always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dicommedia.inputs.dicom_file import Keys
from dicommedia.plan.values import is_empty, normalize_date, normalize_integer_string, normalize_time
from dicommedia.standard.dictionary import vr_of
from dicommedia.standard.records import record_type_keys

# Modality (0008,0060) for a SOP class whose file lacks it (PS3.3 C.7.3.1.1.1 defined terms).
_MODALITY_BY_SOP_CLASS = {
    "1.2.840.10008.5.1.4.1.1.1": "CR",
    "1.2.840.10008.5.1.4.1.1.1.1": "DX",
    "1.2.840.10008.5.1.4.1.1.1.1.1": "DX",
    "1.2.840.10008.5.1.4.1.1.1.2": "MG",
    "1.2.840.10008.5.1.4.1.1.1.2.1": "MG",
    "1.2.840.10008.5.1.4.1.1.1.3": "IO",
    "1.2.840.10008.5.1.4.1.1.1.3.1": "IO",
    "1.2.840.10008.5.1.4.1.1.2": "CT",
    "1.2.840.10008.5.1.4.1.1.2.1": "CT",
    "1.2.840.10008.5.1.4.1.1.4": "MR",
    "1.2.840.10008.5.1.4.1.1.4.1": "MR",
    "1.2.840.10008.5.1.4.1.1.20": "NM",
    "1.2.840.10008.5.1.4.1.1.6.1": "US",
    "1.2.840.10008.5.1.4.1.1.3.1": "US",
    "1.2.840.10008.5.1.4.1.1.128": "PT",
    "1.2.840.10008.5.1.4.1.1.12.1": "XA",
    "1.2.840.10008.5.1.4.1.1.12.2": "RF",
    "1.2.840.10008.5.1.4.1.1.481.1": "RTIMAGE",
    "1.2.840.10008.5.1.4.1.1.481.2": "RTDOSE",
    "1.2.840.10008.5.1.4.1.1.481.3": "RTSTRUCT",
    "1.2.840.10008.5.1.4.1.1.481.5": "RTPLAN",
    "1.2.840.10008.5.1.4.1.1.66.4": "SEG",
    "1.2.840.10008.5.1.4.1.1.66.1": "REG",
    "1.2.840.10008.5.1.4.1.1.11.1": "PR",
    "1.2.840.10008.5.1.4.1.1.88.59": "KO",
    "1.2.840.10008.5.1.4.1.1.104.1": "DOC",
}

# Type 1 leaf keys with enumerated values: the least-claiming value (PS3.3 C.17.2, C.8.8.3).
_ENUMERATED_DEFAULTS = {
    "CompletionFlag": "PARTIAL",
    "VerificationFlag": "UNVERIFIED",
    "DoseSummationType": "PLAN",
}


def modality_for(sop_class_uid: str) -> str:
    """The Modality a file of this SOP class most likely has, "OT" when unknown."""
    return _MODALITY_BY_SOP_CLASS.get(str(sop_class_uid), "OT")


@dataclass
class Repair:
    """Values to set (keyword -> value) and the warnings that tell the user about each."""

    values: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def set(self, keyword: str, value: object, why: str) -> None:
        """Record one invented or corrected value."""
        self.values[keyword] = value
        self.warnings.append(why)


def checked(keyword: str, value: object) -> object | None:
    """The value as a valid value of the keyword's VR, or None when it is missing or invalid."""
    if is_empty(value):
        return None
    vr = vr_of(keyword)
    if vr == "DA":
        return normalize_date(value)
    if vr == "TM":
        return normalize_time(value)
    if vr == "IS":
        return normalize_integer_string(value)
    return value


def first_valid(keys: list[Keys], keywords: tuple[str, ...]) -> object | None:
    """The first valid value among several attributes of several instances (e.g. a date to lend a study)."""
    for keyword in keywords:
        for ds in keys:
            value = checked(keyword, ds.get(keyword))
            if value is not None:
                return value
    return None


def repair_leaf(record_type: str, keys: Keys, fallback: dict[str, object], label: str) -> Repair:
    """Repair the Type 1 keys of a leaf record; ``fallback`` lends dates/times/numbers (keyword -> value)."""
    repair = Repair()
    for key in record_type_keys(record_type):
        if key.type != "1":
            continue
        value = keys.get(key.keyword)
        good = checked(key.keyword, value)
        if good is not None:
            if str(good) != str(value):
                repair.set(key.keyword, good, f"{label}: {key.keyword} {str(value)!r} corrected to {good!r}")
            continue
        invented = _invent_leaf_value(key.keyword, fallback)
        if invented is None:
            continue  # left for the caller to refuse: no honest value can be invented
        what = "missing" if is_empty(value) else f"invalid ({str(value)!r})"
        repair.set(key.keyword, invented, f"{label}: Type 1 key {key.keyword} {what}; {invented!r} written")
    return repair


def _invent_leaf_value(keyword: str, fallback: dict[str, object]) -> object | None:
    if keyword in fallback:
        return fallback[keyword]
    if keyword in _ENUMERATED_DEFAULTS:
        return _ENUMERATED_DEFAULTS[keyword]
    vr = vr_of(keyword)
    if vr == "DA":
        return fallback.get("StudyDate")
    if vr == "TM":
        return fallback.get("StudyTime")
    if vr == "DT":
        return f"{fallback.get('StudyDate')}{fallback.get('StudyTime')}"
    if vr in ("LO", "SH", "CS"):
        return "UNLABELED" if vr != "CS" else "UNKNOWN"
    return None


def unrepairable(record_type: str, keys: Keys, repair: Repair) -> list[str]:
    """Type 1 keys still missing after repair (e.g. a code sequence no value can be invented for)."""
    return [
        key.keyword
        for key in record_type_keys(record_type)
        if key.type == "1" and key.keyword not in repair.values and checked(key.keyword, keys.get(key.keyword)) is None
    ]
