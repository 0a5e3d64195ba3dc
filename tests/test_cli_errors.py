"""SPEC 2 / 2.4 for every command: the ``--json`` error document, exit codes, and Ctrl-C."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import run
from tests.media_fixtures import dcmtk_disc, genisoimage


def dicommedia(*args: object):
    return run([sys.executable, "-m", "dicommedia", *map(str, args)])


def error_document(stdout: str) -> dict:
    data = json.loads(stdout)
    assert set(data) == {"error"} and set(data["error"]) == {"code", "message", "path"}
    return data["error"]


def test_bad_media_gives_a_json_error(tmp_path: Path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"nothing to see" * 100)
    result = dicommedia("read", junk, "--json")
    assert result.returncode == 1
    error = error_document(result.stdout)
    assert error["path"] == str(junk) and "not an ISO image" in error["message"]
    assert error["code"] != "internal-error" and "Traceback" not in result.stderr


def test_usage_error_gives_a_json_error(tmp_path: Path):
    result = dicommedia("read", tmp_path / "absent.iso", "--json")
    assert result.returncode == 2
    assert error_document(result.stdout)["code"] == "usage"
    plain = dicommedia("read", tmp_path / "absent.iso")
    assert plain.returncode == 2 and plain.stdout == ""


@pytest.mark.parametrize("command", ["read", "validate", "create", "profiles"])
def test_every_command_prints_the_document(command: str, tmp_path: Path):
    args = {"profiles": ["NO-SUCH-PROFILE"], "create": [tmp_path / "absent", "-o", tmp_path / "x.iso"]}
    result = dicommedia(command, *args.get(command, [tmp_path / "absent"]), "--json")
    assert result.returncode in (1, 2)
    error = error_document(result.stdout)
    assert error["message"] and error["code"] != "internal-error"


def test_empty_extraction_target_untouched_on_ctrl_c(tmp_path: Path):
    """Ctrl-C in the middle of an extraction: 'interrupted; nothing was written', exit 130, nothing left."""
    iso = genisoimage(dcmtk_disc(tmp_path, count=3), tmp_path / "x.iso", "TESTSET")
    out = tmp_path / "out"
    # The interrupt is raised where a real SIGINT would land: inside the copy of the second file.
    script = textwrap.dedent(
        f"""
        import sys
        import dicommedia.read.extract as extract
        from dicommedia.cli import main
        copied = []
        real = extract._copy
        def copy(media_file, target, made, *rest):
            if copied:
                raise KeyboardInterrupt
            copied.append(real(media_file, target, made, *rest))
            return copied[-1]
        extract._copy = copy
        sys.argv = ["dicommedia", "read", {str(iso)!r}, "--extract", {str(out)!r}, "--json"]
        main()
        """
    )
    result = run([sys.executable, "-c", script])
    assert result.returncode == 130, result.stderr
    assert "interrupted; nothing was written" in result.stderr and "aborted" not in result.stderr
    assert error_document(result.stdout)["code"] == "interrupted"
    assert not out.exists()  # created by the run, removed with everything in it


@pytest.mark.parametrize("args, status", [(["profiles", "--json"], 0), (["read", "JUNK", "--json"], 1)])
def test_exit_skips_only_the_teardown(tmp_path: Path, args: list[str], status: int):
    """The entry point ends without the interpreter's teardown, but as the interpreter would: the status kept,
    output flushed, non-daemon threads finished and exit handlers run first."""
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"nothing to see" * 100)
    args = [str(junk) if a == "JUNK" else a for a in args]
    script = textwrap.dedent(
        f"""
        import atexit, sys, threading, time
        from pathlib import Path
        from dicommedia.cli import main
        atexit.register(lambda: Path({str(tmp_path / "atexit")!r}).write_text("ran"))
        def late():
            time.sleep(0.3)
            Path({str(tmp_path / "thread")!r}).write_text("finished")
        threading.Thread(target=late).start()
        sys.argv = ["dicommedia", *{args!r}]
        main()
        raise AssertionError("main() returned")
        """
    )
    result = run([sys.executable, "-c", script])
    assert result.returncode == status, result.stderr
    assert (tmp_path / "atexit").read_text() == "ran" and (tmp_path / "thread").read_text() == "finished"
    document = json.loads(result.stdout)  # whole: flushed before the process ended
    if status:
        assert error_document(result.stdout)["code"] and len(result.stderr.strip().splitlines()) == 1
    else:
        assert document
