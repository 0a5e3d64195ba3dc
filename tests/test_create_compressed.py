"""Discs made with each codec by `dicommedia create`, decoded by DCMTK and GDCM, validated by our reader."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.fileset import FileSet

from tests.codec_fixtures import LOSSLESS_INPUTS, outside_decode, psnr, shown
from tests.conftest import require_tool, run

DECODER = {
    "rle": "dcmdrle",
    "jpeg-lossless": "dcmdjpeg",
    "jpeg-lossless-sv1": "dcmdjpeg",
    "j2k-lossless": "gdcmconv",
    "jpeg-baseline": "dcmdjpeg",
    "jpeg-extended": "dcmdjpeg",
    "j2k": "gdcmconv",
}


def _disc(inputs: Path, tmp_path: Path, codec: str) -> tuple[Path, dict]:
    iso = tmp_path / f"{codec}.iso"
    proc = run(
        [
            sys.executable,
            "-m",
            "dicommedia",
            "create",
            str(inputs),
            "-o",
            str(iso),
            "-p",
            "AUG-GEN-DRS-DVD-RAM",
            "--compress",
            codec,
            "--json",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    check = run([sys.executable, "-m", "dicommedia", "validate", str(iso), "-p", "AUG-GEN-DRS-DVD-RAM", "--json"])
    assert json.loads(check.stdout)["valid"], check.stdout
    root = tmp_path / f"{codec}_x"
    assert (
        run([require_tool("xorriso"), "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(root)]).returncode == 0
    )
    return root, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, pydicom_files) -> Path:
    """The judged inputs (signed CT, MR, RGB, odd sizes, palette, multi-frame), one SOP Instance UID each:
    several of pydicom's colour samples share one UID, which a disc refuses as a conflict."""
    from pydicom.uid import generate_uid

    folder = tmp_path_factory.mktemp("codec-in")
    for name in LOSSLESS_INPUTS:
        ds = dcmread(pydicom_files[name])
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(folder / name, enforce_file_format=True)
    return folder


def _sources(inputs: Path) -> dict[str, object]:
    out = {}
    for path in inputs.iterdir():
        ds = dcmread(path)
        out.setdefault(ds.SOPInstanceUID, ds)
    return out


@pytest.mark.interop
@pytest.mark.parametrize("codec", ["rle", "jpeg-lossless", "jpeg-lossless-sv1", "j2k-lossless"])
def test_lossless_disc_gives_back_what_the_inputs_show(codec, inputs, tmp_path, pydicom_files):
    root, summary = _disc(inputs, tmp_path, codec)
    sources = _sources(inputs)
    compressed = 0
    for instance in FileSet(root / "DICOMDIR"):
        path = Path(instance.path)
        written = dcmread(path)
        assert written.file_meta.TransferSyntaxUID == instance.ReferencedTransferSyntaxUIDInFile
        source = sources[written.SOPInstanceUID]  # lossless: same SOP Instance UID
        if not written.file_meta.TransferSyntaxUID.is_compressed:
            continue  # the codec cannot carry it: kept uncompressed, with a warning in the summary
        compressed += 1
        decoded = outside_decode(DECODER[codec], path, tmp_path / "decoded.dcm")
        assert np.array_equal(shown(decoded), shown(source)), f"{codec}: {source.SOPInstanceUID} differs"
    assert compressed >= len(sources) - 2
    # what stays uncompressed is said: the codec cannot carry it, or the profile does not allow it there
    kept = [w for w in summary["warnings"] if "kept uncompressed" in w or "not compressed" in w]
    assert compressed + len(kept) == len(sources)


@pytest.mark.interop
@pytest.mark.parametrize("codec", ["jpeg-extended", "j2k"])
def test_lossy_disc_follows_appendix_b_and_keeps_fidelity(codec, tmp_path, pydicom_files):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(pydicom_files["CT_small.dcm"], folder / "ct.dcm")
    source = dcmread(folder / "ct.dcm")
    root, _ = _disc(folder, tmp_path, codec)
    [instance] = list(FileSet(root / "DICOMDIR"))
    written = dcmread(instance.path)
    assert written.SOPInstanceUID != source.SOPInstanceUID == written.SourceImageSequence[-1].ReferencedSOPInstanceUID
    assert instance.ReferencedSOPInstanceUIDInFile == written.SOPInstanceUID  # the DICOMDIR follows the new UID
    assert written.ImageType[0] == "DERIVED" and written.LossyImageCompression == "01"
    assert written.DerivationDescription.startswith("DRS:")
    assert written.DerivationCodeSequence[-1].CodeValue == "113040"
    method = {"jpeg-extended": "ISO_10918_1", "j2k": "ISO_15444_1"}[codec]
    assert method in list(np.atleast_1d(written.LossyImageCompressionMethod))
    decoded = outside_decode(DECODER[codec], Path(instance.path), tmp_path / "decoded.dcm")
    before, after = shown(source), shown(decoded)
    assert psnr(before, after, peak=float(before.max() - before.min())) > 38
