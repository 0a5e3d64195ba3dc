"""Shared fixtures: outside tools (skipped locally when missing, failing in CI), ports, inputs."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.tools import find_tool

# .ci/run sets this: a missing outside tool is then a failure, never a silent skip.
REQUIRE_INTEROP = os.environ.get("DICOMMEDIA_REQUIRE_INTEROP") == "1"

DEBIAN_PACKAGE = {
    "dcmdump": "dcmtk",
    "dcmmkdir": "dcmtk",
    "storescp": "dcmtk",
    "storescu": "dcmtk",
    "dcmdjpeg": "dcmtk",
    "dcmdrle": "dcmtk",
    "dcmcjpeg": "dcmtk",
    "dcmconv": "dcmtk",
    "echoscu": "dcmtk",
    "dcmodify": "dcmtk",
    "dciodvfy": "dicom3tools",
    "dcentvfy": "dicom3tools",
    "Orthanc": "orthanc",
    "genisoimage": "genisoimage",
    "isoinfo": "genisoimage",
    "xorriso": "xorriso",
    "udfinfo": "udftools",
    "mkudffs": "udftools",
    "udfclient": "udfclient",
    "gdcmconv": "libgdcm-tools",
    "chromium": "chromium",
    "script": "bsdutils",
    "initdb": "postgresql",
    "pg_ctl": "postgresql",
    "runuser": "util-linux",
}


def require_tool(name: str) -> str:
    """Path of an outside tool; skip with the reason when missing (fail instead under CI)."""
    path = find_tool(name)
    if path:
        return path
    reason = f"{name} not installed (apt-get install {DEBIAN_PACKAGE.get(name, name)})"
    if REQUIRE_INTEROP:
        pytest.fail(reason + " — required in CI (DICOMMEDIA_REQUIRE_INTEROP=1)")
    pytest.skip(reason)


@pytest.fixture
def tool():
    """``tool("dcmdump")`` returns the tool's path or skips/fails as require_tool does."""
    return require_tool


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command, capture text output, never raise on exit status."""
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", **kwargs)


@pytest.fixture(scope="session")
def pydicom_files() -> dict[str, Path]:
    """pydicom's bundled test files by name: real-world objects written by many tools."""
    import pydicom.data

    # Globbed, not get_testdata_files(): that one tries to download the external data set first.
    folder = Path(pydicom.data.__file__).parent / "test_files"
    return {p.name: p for p in folder.rglob("*") if p.is_file()}
