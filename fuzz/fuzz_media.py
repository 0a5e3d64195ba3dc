"""atheris (libFuzzer) harness: ISO images and DICOMDIRs through the library's read, extract and validate.

The first input byte picks the target (even: an ISO image, odd: the DICOMDIR of a disc folder); the rest are
the medium's bytes. Seeds are a clean DCMTK + genisoimage disc built at start (needs dcmmkdir, genisoimage).
A crash is an exception other than the one-line MediaError, or a message that is not one line.

    pip install atheris
    python fuzz/fuzz_media.py -max_total_time=300 -rss_limit_mb=2048 [corpus_dir]

(run from the repository root; the seeds are written to fuzz/corpus/ when that folder is empty.)
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["dicommedia"]):
    import dicommedia.media
    import dicommedia.media.dicomdir
    import dicommedia.media.verify
    import dicommedia.read.extract
    import dicommedia.validate  # noqa: F401  (imported here so that coverage is instrumented)

from tests.crafted import exercise
from tests.media_fixtures import dcmtk_disc, genisoimage

_WORK = Path(tempfile.mkdtemp(prefix="fuzz-media-"))
_FOLDER = dcmtk_disc(_WORK / "base", count=3)
_ISO = genisoimage(_FOLDER, _WORK / "base.iso", "TESTSET")


def _seed_corpus(corpus: Path) -> None:
    if corpus.is_dir() and not any(corpus.iterdir()):
        (corpus / "iso").write_bytes(b"\x00" + _ISO.read_bytes())
        (corpus / "dicomdir").write_bytes(b"\x01" + (_FOLDER / "DICOMDIR").read_bytes())


def test_one_input(data: bytes) -> None:
    """One medium through the library; raise when a promise of SPEC 2 is broken."""
    if not data:
        return
    out = _WORK / "out"
    shutil.rmtree(out, ignore_errors=True)
    if data[0] % 2 == 0:
        media = _WORK / "case.iso"
        media.write_bytes(data[1:])
    else:
        media = _FOLDER
        (_FOLDER / "DICOMDIR").write_bytes(data[1:])
    broken = exercise(media, out)
    if broken:
        raise AssertionError("; ".join(broken))


def main() -> None:
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    corpora = [Path(arg) for arg in sys.argv[1:] if not arg.startswith("-")]
    for corpus in corpora:
        _seed_corpus(corpus)
    args = sys.argv + [f"-max_len={_ISO.stat().st_size + 4096}", "-len_control=0"]
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
