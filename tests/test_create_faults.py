"""`dicommedia create` under faults: linked and unreadable folders, unreadable files, read-only and full outputs,
kill -9 and Ctrl-C in the middle. Each ends in one line naming the path, leaves nothing behind and no process."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run
from tests.synthetic import write_series
from tests.tools import ctrl_c_default, descendants

_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _PR_CAPBSET_DROP = 1, 2, 24


def _without_root_reads() -> None:
    """Run the child without root's right to read and write everything, so file modes apply to it too."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap) != 0:
            os._exit(99)


def _create(*args: str, modes_apply: bool = False) -> subprocess.CompletedProcess:
    preexec = _without_root_reads if modes_apply and os.geteuid() == 0 else None
    proc = run([sys.executable, "-m", "dicommedia", "create", *args], preexec_fn=preexec)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    return proc


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _leftovers(folder: Path) -> list[str]:
    """Hidden names a run may have made beside its output (spool, temporary image or folder)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_linked_folders_are_followed_once_and_loops_noted(tmp_path):
    inputs = tmp_path / "in"
    write_series(inputs / "a", 3)
    write_series(tmp_path / "elsewhere", 2)
    (inputs / "a" / "loop").symlink_to("..")  # a link back up: a loop
    (inputs / "linked").symlink_to(tmp_path / "elsewhere")  # a linked folder: its files belong to the disc
    out = tmp_path / "o.iso"
    proc = _create(str(inputs), "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    import json

    summary = json.loads(proc.stdout)
    assert summary["volumes"][0]["instances"] == 5
    assert any("loop" in w and "not read again" in w for w in summary["warnings"]), summary["warnings"]


@pytest.mark.skipif(sys.platform != "linux", reason="file modes are tested with Linux capabilities")
def test_unreadable_folder_and_file_are_named_and_skippable(tmp_path):
    inputs = tmp_path / "in"
    write_series(inputs / "ok", 2)
    locked = inputs / "locked"
    write_series(locked, 1)
    secret = write_series(tmp_path / "single", 1)[0]
    try:
        locked.chmod(0)
        secret.chmod(0)
        proc = _create(str(inputs), str(secret), "-o", str(tmp_path / "o.iso"), modes_apply=True)
        assert proc.returncode == 1, proc.stderr  # not click's usage error 2
        assert f"{locked}: folder cannot be read: Permission denied" in proc.stderr
        assert f"{secret}: cannot be read: Permission denied" in proc.stderr
        assert not (tmp_path / "o.iso").exists()

        proc = _create(str(inputs), str(secret), "-o", str(tmp_path / "o.iso"), "--skip-invalid", modes_apply=True)
        assert proc.returncode == 0, proc.stderr
        assert "2 instance(s)" in proc.stderr and "2 left out" in proc.stderr
    finally:
        locked.chmod(0o755)
        secret.chmod(0o644)


def test_missing_input_is_named_not_a_usage_error(tmp_path):
    write_series(tmp_path / "in", 1)
    proc = _create(str(tmp_path / "in"), str(tmp_path / "nope.dcm"), "-o", str(tmp_path / "o.iso"))
    assert proc.returncode == 1 and f"{tmp_path / 'nope.dcm'}: does not exist" in proc.stderr
    proc = _create(str(tmp_path / "in"), str(tmp_path / "nope.dcm"), "-o", str(tmp_path / "o.iso"), "--skip-invalid")
    assert proc.returncode == 0 and (tmp_path / "o.iso").is_file()


@pytest.mark.parametrize("output_format", ["iso", "dir"])
def test_read_only_output_folder(tmp_path, output_format):
    write_series(tmp_path / "in", 2)
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    out = folder / ("o.iso" if output_format == "iso" else "o")
    try:
        proc = _create(str(tmp_path / "in"), "-o", str(out), "--format", output_format, modes_apply=True)
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 1
    [line] = _errors(proc.stderr)
    assert str(out) in line and "Permission denied" in line and "choose another output folder" in line
    assert list(folder.iterdir()) == []


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (mount needs root); unmounted by the fixture."""
    mount = tmp_path / "small"
    mount.mkdir()
    proc = run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)])
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize(
    "extra",
    [["--format", "iso"], ["--format", "dir"], ["-p", "AUG-GEN-DRS-CD", "--compress", "rle", "-j", "2"]],
    ids=["iso", "dir", "spool-in-workers"],
)
def test_full_output_file_system(tmp_path, small_disk, extra):
    write_series(tmp_path / "in", 40, rows=128, cols=128)  # 1.3 MB: more than the disk holds
    out = small_disk / ("o" if "dir" in extra else "o.iso")
    proc = _create(str(tmp_path / "in"), "-o", str(out), *extra)
    assert proc.returncode == 1, proc.stderr
    [line] = _errors(proc.stderr)
    assert str(out) in line and "No space left on device" in line and "free space" in line
    assert list(small_disk.iterdir()) == []


def _slow_run(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """A create that spends seconds compressing in two workers; returns it once its workers are busy."""
    inputs = tmp_path / "in"
    write_series(inputs, 120, rows=256, cols=256)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    cmd = [sys.executable, "-m", "dicommedia", "create", str(inputs), "-o", str(out_dir / "o.iso")]
    proc = subprocess.Popen(
        [*cmd, "-p", "AUG-GEN-DRS-CD", "--compress", "j2k-lossless", "-j", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_default,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        spool = [p for p in out_dir.glob(".dicommedia-*/r*.dcm")]
        if len(spool) >= 4:
            return proc, out_dir
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the run never reached its encoding stage")


def _wait_gone(pids: set[int], folder: Path, seconds: float = 10) -> tuple[set[int], list[str]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = {p for p in pids if Path(f"/proc/{p}").exists() and _not_zombie(p)}
        left = _leftovers(folder)
        if not alive and not left:
            break
        time.sleep(0.1)
    return alive, left


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(sys.platform != "linux", reason="/proc is read to find the workers")
def test_kill_9_mid_run_leaves_no_spool_and_no_worker(tmp_path):
    proc, out_dir = _slow_run(tmp_path)
    workers = descendants(proc.pid)
    assert len(workers) >= 2  # the workers and the watchdog
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    alive, left = _wait_gone(workers, out_dir)
    assert not alive, "orphan processes: " + ", ".join(Path(f"/proc/{p}/cmdline").read_text() for p in alive)
    assert left == [] and not (out_dir / "o.iso").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="/proc is read to find the workers")
def test_sigint_mid_run_says_so_and_leaves_nothing(tmp_path):
    proc, out_dir = _slow_run(tmp_path)
    workers = descendants(proc.pid)
    # As a terminal's Ctrl-C does: SIGINT to the whole foreground process group (the run and its workers).
    proc.send_signal(signal.SIGINT)
    for pid in workers:
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            pass
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted; nothing was written" in stderr and "Traceback" not in stderr, stderr
    alive, left = _wait_gone(workers, out_dir)
    assert not alive and left == [] and not (out_dir / "o.iso").exists()
