"""Receive speed: DCMTK ``storescu`` sends the same instances to DCMTK ``storescp`` (writing files) and to
``dicommedia serve`` (writing its spool, each instance fsync'd before the success status), in one run.

    python bench/bench_receive.py [--instances 500] [--rows 64] [--repeat 3]

Both receivers run side by side for the whole bench; the sends are interleaved, so a busy moment of the machine
hits both. Two DCMTK settings (see bench/bench_import.py): as Debian ships it (Nagle on: storescp answers each
C-STORE ~40 ms late) and with ``TCP_NODELAY=1`` (DCMTK at its fastest). The figure is the ratio
ours / storescp of storescu's wall time (lower is faster; at most 1.0 is the goal).

storescp never fsyncs; the node appends every instance to its association's journal and fdatasyncs it before
answering (an acknowledged instance survives kill -9 and a power cut). The last lines measure, in the same run,
what durability alone costs on this disk: N x (append, fdatasync), the floor under the node's time (one device
flush per instance: storescu waits for each answer, so nothing can share a flush), and N x (write, fsync,
rename, fsync the folder), the file-per-instance way the node used before. The flush's latency in a virtual
machine varies with the host (here 0.3 to 5 ms: an idle vCPU is woken late when it completes), so the node,
whose vCPUs are busy receiving, can come in under the floor measured on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.synthetic import write_series  # noqa: E402
from tests.tools import find_tool  # noqa: E402


def native(name: str) -> str:
    """A DCMTK executable (never pynetdicom's script of the same name)."""
    return find_tool(name) or sys.exit(f"DCMTK {name} not found (apt-get install dcmtk)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def send(port: int, folder: Path, env: dict[str, str]) -> float:
    """storescu, one association, every file of the folder; its wall time."""
    cmd = [native("storescu"), "+sd", "+r", "-aec", "RECEIVER", "127.0.0.1", str(port), str(folder)]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"storescu to {port} failed: {result.stderr.strip()[-400:]}")
    return elapsed


def file_per_instance(sizes: list[int], spool: Path) -> float:
    """What fsync'ing N files of these sizes, and their folder after each rename, takes on this disk."""
    spool.mkdir()
    data = os.urandom(max(sizes))
    start = time.perf_counter()
    for n, size in enumerate(sizes):
        temp, final = spool / f"t{n}", spool / f"f{n}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, data[:size])
        os.fsync(fd)
        os.close(fd)
        os.replace(temp, final)
        dfd = os.open(spool, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)
    return time.perf_counter() - start


def journal_floor(sizes: list[int], spool: Path) -> float:
    """What appending N records of these sizes to one file, each fdatasync'd, takes on this disk."""
    spool.mkdir()
    data = os.urandom(max(sizes))
    start = time.perf_counter()
    fd = os.open(spool / "journal", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for size in sizes:
        os.write(fd, data[:size])
        os.fdatasync(fd)
    os.close(fd)
    return time.perf_counter() - start


def run_setting(label: str, dcmtk_env: dict[str, str], folder: Path, work: Path, repeat: int) -> tuple[float, float]:
    env = {**os.environ, **dcmtk_env}
    scp_port, node_port = free_port(), free_port()
    received = work / f"storescp-{scp_port}"
    received.mkdir()
    scp = subprocess.Popen(
        [native("storescp"), "-od", str(received), str(scp_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    node_cmd = [sys.executable, "-m", "dicommedia", "serve", "-o", str(work / f"node-{node_port}")]
    node = subprocess.Popen(
        [*node_cmd, "--host", "127.0.0.1", "--port", str(node_port), "--study-idle", "86400"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(scp_port, scp)
        wait_for(node_port, node)
        times: dict[str, list[float]] = {"storescp": [], "dicommedia serve": []}
        for _ in range(repeat):
            times["storescp"].append(send(scp_port, folder, env))
            times["dicommedia serve"].append(send(node_port, folder, env))
    finally:
        for proc in (scp, node):
            proc.terminate()
            proc.wait()
    best = {k: min(v) for k, v in times.items()}
    ratio = best["dicommedia serve"] / best["storescp"]
    print(f"\n{label}")
    for name, seconds in best.items():
        print(f"  {name:18s} {seconds:8.3f} s  ({seconds / count(folder) * 1000:6.2f} ms per instance)")
    print(f"  ratio dicommedia serve / storescp: {ratio:.2f}")
    return best["storescp"], best["dicommedia serve"]


def count(folder: Path) -> int:
    return sum(1 for _ in folder.rglob("*.dcm"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--rows", type=int, default=64, help="rows and columns of each (16-bit) image")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_receive_", dir=os.environ.get("TMPDIR")) as tmp:
        work = Path(tmp)
        folder = work / "sent"
        paths = write_series(folder, args.instances, rows=args.rows, cols=args.rows)
        sizes = [p.stat().st_size for p in paths]
        print(
            f"{args.instances} CT instances {args.rows}x{args.rows}x16 bit ({sum(sizes) / 1e6:.1f} MB), "
            f"storescu over one association, best of {args.repeat}"
        )
        run_setting("DCMTK as Debian ships it (Nagle on)", {}, folder, work, args.repeat)
        fastest, ours = run_setting("DCMTK with TCP_NODELAY=1", {"TCP_NODELAY": "1"}, folder, work, args.repeat)
        print(f"\ndurability alone on this disk, x {args.instances}:")
        floors = {"append, fdatasync": journal_floor, "write, fsync, rename, fsync": file_per_instance}
        measured = {}
        for label, measure in floors.items():
            measured[label] = seconds = measure(sizes, work / "floor")
            shutil.rmtree(work / "floor", ignore_errors=True)
            print(f"  {label:28s} {seconds:8.3f} s  ({seconds / args.instances * 1000:6.2f} ms per instance)")
        floor = measured["append, fdatasync"]
        print(
            f"  ratio of the journal floor to storescp TCP_NODELAY=1: {floor / fastest:.2f}; "
            f"the node took {ours / floor:.2f} x that floor"
        )


if __name__ == "__main__":
    main()
