"""`dicommedia burn` and `create --burn` through xorriso on stdio: pseudo-drives (issue 12)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dicommedia.burn.verify import verify_medium
from dicommedia.errors import MediaError
from tests.conftest import require_tool, run
from tests.synthetic import write_series
from tests.tools import ctrl_c_default


def _dicommedia(*args: str, ok: bool = True, **kwargs) -> subprocess.CompletedProcess:
    proc = run([sys.executable, "-m", "dicommedia", *args], **kwargs)
    assert "Traceback" not in proc.stderr, proc.stderr
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def _refused(proc: subprocess.CompletedProcess, words: str) -> str:
    """A refusal: exit 1, one line on stderr, naming the cause."""
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    require_tool("xorriso")
    folder = tmp_path_factory.mktemp("burn")
    write_series(folder / "in", 5)
    iso = folder / "disc.iso"
    _dicommedia("create", str(folder / "in"), "-o", str(iso), "-p", "STD-GEN-DVD-RAM", "--fileset-id", "BURNME")
    return iso


@pytest.fixture
def small_filesystem(tmp_path):
    """A 512 KiB tmpfs: a stdio pseudo-drive there has a fixed, small capacity (xorriso reports its free space)."""
    mount = tmp_path / "small"
    mount.mkdir()
    proc = run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)])
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        run(["umount", str(mount)])


def test_burn_verify_leaves_the_image_byte_for_byte(image, tmp_path):
    drive = tmp_path / "medium"
    proc = _dicommedia("burn", str(image), "--drive", f"stdio:{drive}", "--verify", "--json")
    assert drive.read_bytes() == image.read_bytes()
    (copy,) = json.loads(proc.stdout)["copies"]
    assert copy["verified"] and copy["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert copy["blocks"] == image.stat().st_size // 2048
    assert f"{copy['blocks']:,} blocks equal" in proc.stderr
    # xorriso itself reads the medium as our ISO 9660 volume
    toc = run([require_tool("xorriso"), "-indev", f"stdio:{drive}", "-toc"])
    assert "BURNME" in toc.stdout + toc.stderr


def test_too_small_medium_is_refused_before_writing(image, small_filesystem):
    drive = small_filesystem / "medium"
    proc = _dicommedia("burn", str(image), "--drive", f"stdio:{drive}", "--verify", ok=False)
    line = _refused(proc, "the medium is too small")
    assert f"{image.stat().st_size:,} bytes" in line
    assert not drive.exists() and not any(small_filesystem.iterdir())


def test_written_medium_is_refused_and_kept(image, tmp_path):
    drive = tmp_path / "medium"
    _dicommedia("burn", str(image), "--drive", f"stdio:{drive}")
    before = drive.read_bytes()
    _refused(_dicommedia("burn", str(image), "--drive", f"stdio:{drive}", ok=False), "the medium is not blank")
    assert drive.read_bytes() == before


@pytest.mark.parametrize(
    ("drive", "words"),
    [("stdio:/nonexistent/folder/medium", "cannot use the drive"), ("/dev/sr97", "cannot use the drive")],
)
def test_absent_drive_is_one_line(image, drive, words):
    _refused(_dicommedia("burn", str(image), "--drive", drive, ok=False), words)


def test_copies_go_round_the_drives_without_prompt(image, tmp_path):
    drives = [tmp_path / "a", tmp_path / "b"]
    args = [arg for d in drives for arg in ("--drive", f"stdio:{d}")]
    proc = _dicommedia("burn", str(image), *args, "--copies", "2", "--no-prompt", "--verify", "--json")
    assert [c["drive"] for c in json.loads(proc.stdout)["copies"]] == [f"stdio:{d}" for d in drives]
    assert all(d.read_bytes() == image.read_bytes() for d in drives)


def test_second_copy_on_one_drive_waits_for_a_blank_medium(image, tmp_path):
    """The operator is asked for the next medium; the first disc is taken out (moved away) before Enter."""
    drive, first = tmp_path / "medium", tmp_path / "first-disc"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dicommedia", "burn", str(image), "--drive", f"stdio:{drive}", "--copies", "2"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    seen = b""
    while b"press Enter" not in seen:
        byte = proc.stderr.read(1)
        assert byte, seen
        seen += byte
    assert b"for copy 2 of 2" in seen
    drive.rename(first)
    _, rest = proc.communicate(b"\n", timeout=120)
    assert proc.returncode == 0, rest
    assert drive.read_bytes() == first.read_bytes() == image.read_bytes()


def test_no_operator_to_answer_aborts_before_the_second_copy(image, tmp_path):
    drive = tmp_path / "medium"
    proc = _dicommedia("burn", str(image), "--drive", f"stdio:{drive}", "--copies", "2", ok=False, input="")
    assert proc.returncode == 1 and "aborted" in proc.stderr
    assert drive.read_bytes() == image.read_bytes()


def test_speed_and_eject(image, tmp_path):
    drive = tmp_path / "medium"
    _dicommedia("burn", str(image), "--drive", f"stdio:{drive}", "--speed", "4x", "--eject", "--verify")
    assert drive.read_bytes() == image.read_bytes()
    _refused(_dicommedia("burn", str(image), "--drive", f"stdio:{drive}2", "--speed", "fast", ok=False), "speed")
    assert not (tmp_path / "medium2").exists()


def test_verify_finds_a_bad_block(image, tmp_path):
    bad = tmp_path / "bad"
    data = bytearray(image.read_bytes())
    data[20 * 2048 + 7] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(MediaError, match="block 20 differs"):
        verify_medium(str(image), str(bad))
    short = tmp_path / "short"
    short.write_bytes(image.read_bytes()[: 30 * 2048])
    with pytest.raises(MediaError, match="the medium ends at byte 61,440"):
        verify_medium(str(image), str(short))


def test_create_burn(tmp_path):
    require_tool("xorriso")
    write_series(tmp_path / "in", 3)
    drive, iso = tmp_path / "medium", tmp_path / "x.iso"
    proc = _dicommedia("create", str(tmp_path / "in"), "-o", str(iso), "--burn", f"stdio:{drive}", "--json")
    (burned,) = json.loads(proc.stdout)["burned"]
    assert burned["verified"] and drive.read_bytes() == iso.read_bytes()
    # a drive that cannot take a disc: refused before any work, no image written
    again = tmp_path / "y.iso"
    args = ["create", str(tmp_path / "in"), "-o", str(again), "--burn", f"stdio:{drive}"]
    _refused(_dicommedia(*args, ok=False), "the medium is not blank")
    assert not again.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_progress_stages_follow_the_work(image, tmp_path):
    from dicommedia.burn.job import BurnOptions, burn_copies
    from dicommedia.progress import Progress

    class Recorder(Progress):
        def __init__(self):
            self.stages: list[tuple[str, int | None, int]] = []

        def stage(self, name, total):
            self.stages.append((name, total, 0))

        def advance(self, steps=1):
            name, total, done = self.stages[-1]
            self.stages[-1] = (name, total, done + steps)

    recorder, said = Recorder(), []
    drive = f"stdio:{tmp_path / 'medium'}"
    (report,) = burn_copies(BurnOptions(image, [drive], verify=True, say=said.append, progress=recorder))
    size = image.stat().st_size
    assert [s[:2] for s in recorder.stages] == [("writing copy 1", size), ("verifying copy 1", size)]
    assert 0 <= recorder.stages[0][2] <= size and recorder.stages[1][2] == size
    assert report.verified and said[0].startswith("writing copy 1 of 1") and said[1].startswith("verified copy 1")


def test_json_error_when_the_drive_is_absent(image):
    proc = _dicommedia("burn", str(image), "--drive", "/dev/sr97", "--json", ok=False)
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert error["path"] == "/dev/sr97" and "cannot use the drive" in error["message"]


def test_ctrl_c_while_writing(tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) during a write: exit 130, the cause said, and the
    pseudo-drive file the write created is removed."""
    import signal
    import time

    require_tool("xorriso")
    big = tmp_path / "big.iso"
    with open(big, "wb") as fh:
        fh.truncate(1024 * 1024 * 1024)  # 1 GiB of zeros, sparse: long enough to be interrupted
    drive = tmp_path / "medium"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dicommedia", "burn", str(big), "--drive", f"stdio:{drive}"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=ctrl_c_default,
    )
    deadline = time.monotonic() + 60
    while not (drive.exists() and drive.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert b"that medium is incomplete" in err and b"Traceback" not in err
    assert not drive.exists()


def test_drive_given_twice_and_absent_medium(image, tmp_path):
    from dicommedia.burn.job import medium_problem
    from dicommedia.burn.xorriso import Medium

    drive = f"stdio:{tmp_path / 'medium'}"
    proc = _dicommedia("burn", str(image), "--drive", drive, "--drive", drive, "--copies", "2", ok=False)
    _refused(proc, "a drive given twice")
    assert not (tmp_path / "medium").exists()
    size = image.stat().st_size
    assert medium_problem(Medium("/dev/sr0", "is not present", "is not present", 0), size) == "no medium in the drive"
    assert medium_problem(Medium("/dev/sr0", "DVD+R", "is blank", 10**6), size) is None
    assert "is written , is closed" in medium_problem(Medium("/dev/sr0", "DVD-R", "is written , is closed", 0), size)
