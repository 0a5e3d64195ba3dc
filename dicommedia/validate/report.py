"""The validation report: findings by check family, the SPEC 2.3 JSON, and a JUnit XML file for CI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from dicommedia.media.findings import Finding

# Check families, each one JUnit test case; every code belongs to one family.
FAMILIES: dict[str, tuple[str, ...]] = {
    "iso9660": ("iso-structure", "volume-id-mismatch", "iso-extension"),
    "dicomdir": (
        "no-dicomdir",
        "dicomdir-corrupt",
        "bad-offset",
        "bad-hierarchy",
        "missing-key",
        "offsets-ignored",
        "inactive-record",
        "record-without-file",
        "unknown-record-type",
        "fileset-consistency",
        "no-fileset-id",
        "leaf-record-type",
        "no-records",
        "duplicate-patient-id",
    ),
    "references": (
        "bad-file-id",
        "missing-file",
        "unreferenced-file",
        "record-mismatch",
        "duplicate-instance",
        "link-skipped",
        "special-file",
        "unreadable-folder",
        "nested-fileset",
        "stray-dicomdir",
        "non-dicom-file",
    ),
    "files": (
        "not-part10",
        "corrupt-file",
        "sop-class-not-allowed",
        "transfer-syntax-not-allowed",
        "file-meta",
        "pixel-module",
    ),
    "media": ("capacity-exceeded", "no-readme", "no-index", "profile-detected", "other-profile"),
}
FAMILY_OF = {code: family for family, codes in FAMILIES.items() for code in codes}
TITLES = {
    "iso9660": "ISO 9660 volume",
    "dicomdir": "DICOMDIR structure",
    "references": "File references",
    "files": "DICOM files",
    "media": "Media",
}


@dataclass
class Report:
    """Everything validation found on one medium."""

    media: str
    profile: str
    instances: int = 0
    findings: list[Finding] = field(default_factory=list)
    skipped: set[str] = field(default_factory=set)

    def add(self, findings: list[Finding] | Finding) -> None:
        """Record findings, once each."""
        for finding in [findings] if isinstance(findings, Finding) else findings:
            if finding not in self.findings:
                self.findings.append(finding)

    @property
    def errors(self) -> list[Finding]:
        """Findings that make the media invalid."""
        return [f for f in self.findings if f.is_error]

    @property
    def warnings(self) -> list[Finding]:
        """Findings that are legal but unwise."""
        return [f for f in self.findings if not f.is_error]

    @property
    def valid(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def as_json(self) -> dict:
        """SPEC 2.3: valid, profile, instances, errors, warnings."""
        return {
            "valid": self.valid,
            "profile": self.profile,
            "instances": self.instances,
            "errors": [f.as_json() for f in self.errors],
            "warnings": [f.as_json() for f in self.warnings],
        }

    def by_family(self, family: str) -> list[Finding]:
        """Findings of one check family."""
        return [f for f in self.findings if FAMILY_OF.get(f.code, "files") == family]

    def write_junit(self, path: Path) -> None:
        """One test case per check family; its failure lists the errors, its output the warnings."""
        suite = ET.Element(
            "testsuite",
            name=f"dicommedia validate {self.media}",
            tests=str(len(FAMILIES)),
            failures=str(sum(1 for fam in FAMILIES if any(f.is_error for f in self.by_family(fam)))),
            errors="0",
            skipped=str(len(self.skipped & set(FAMILIES))),
        )
        for family in FAMILIES:
            case = ET.SubElement(
                suite, "testcase", classname=f"dicommedia.validate.{self.profile}", name=TITLES[family]
            )
            found = self.by_family(family)
            errors = [f for f in found if f.is_error]
            if family in self.skipped:
                ET.SubElement(case, "skipped", message="not applicable to this medium")
            elif errors:
                codes = sorted({f.code for f in errors})
                failure = ET.SubElement(
                    case, "failure", message=f"{len(errors)} error(s): {', '.join(codes)}", type=codes[0]
                )
                failure.text = "\n".join(_line(f) for f in errors)
            warnings = [f for f in found if not f.is_error]
            if warnings:
                ET.SubElement(case, "system-out").text = "\n".join(_line(f) for f in warnings)
        ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def _line(finding: Finding) -> str:
    where = f" {finding.file_id}:" if finding.file_id else ""
    return f"[{finding.code}]{where} {finding.message}"
