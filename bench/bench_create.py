"""Time `dicommedia create` against the classic pipeline (cp with PS3.10 names + dcmmkdir +I + genisoimage).

Both run on the same N synthetic CT slices (512x512, 16 bit) in one run; prints times and the ratio
ours/peer. With --memory it also compares our peak RSS for N and 5N slices (it must not grow with N).

    python bench/bench_create.py [--slices 400] [--memory] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.synthetic import write_series  # noqa: E402


def run_timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, int]:
    """Run a command; return (wall seconds, peak RSS in KiB of that process tree's largest process)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode(errors='replace')}")
    return elapsed, usage.ru_maxrss


def classic_pipeline(inputs: list[Path], work: Path, iso_options: tuple[str, ...] = ()) -> float:
    """cp into PS3.10 File IDs, dcmmkdir +I, genisoimage (plus ``iso_options``, e.g. -udf): the classic disc."""
    stage = work / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "DICOM").mkdir(parents=True)
    iso = work / "classic.iso"
    iso.unlink(missing_ok=True)
    start = time.perf_counter()
    names = []
    for n, path in enumerate(inputs, 1):
        name = f"DICOM/IM{n:06d}"
        shutil.copyfile(path, stage / name)  # cp
        names.append(name)
    run_timed(["dcmmkdir", "+I", "+id", str(stage), "+D", str(stage / "DICOMDIR"), "+F", "CLASSIC", "-q", *names])
    run_timed(["genisoimage", "-quiet", *iso_options, "-V", "CLASSIC", "-o", str(iso), str(stage)])
    elapsed = time.perf_counter() - start
    if not (stage / "DICOMDIR").is_file():
        raise SystemExit("dcmmkdir wrote no DICOMDIR: the classic disc would be incomplete")
    return elapsed


def ours(inputs_dir: Path, work: Path) -> tuple[float, int]:
    iso = work / "ours.iso"
    iso.unlink(missing_ok=True)
    return run_timed(
        [
            sys.executable,
            "-m",
            "dicommedia",
            "create",
            str(inputs_dir),
            "-o",
            str(iso),
            "--fileset-id",
            "OURS",
            "--no-ihe-pdi",
            "--media",
            "usb",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="also compare peak memory for N and 5N slices")
    args = parser.parse_args()
    for tool in ("dcmmkdir", "genisoimage"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (apt-get install dcmtk genisoimage)")
    with tempfile.TemporaryDirectory(prefix="bench-create-") as tmp:
        work = Path(tmp)
        inputs_dir = work / "in"
        inputs = write_series(inputs_dir, args.slices, rows=512, cols=512)
        size = sum(p.stat().st_size for p in inputs)
        print(f"{args.slices} CT slices, 512x512x16 bit, {size / 1e6:.0f} MB")
        classic_pipeline(inputs, work), ours(inputs_dir, work)  # warm the page cache for both
        peer_times, our_times = [], []
        for _ in range(args.repeat):
            peer_times.append(classic_pipeline(inputs, work))
            our_times.append(ours(inputs_dir, work)[0])
        peer, mine = min(peer_times), min(our_times)
        print(f"classic cp + dcmmkdir +I + genisoimage: {peer:.2f} s (best of {args.repeat})")
        print(f"dicommedia create:                      {mine:.2f} s (best of {args.repeat})")
        print(f"ratio ours/classic: {mine / peer:.2f}  (<= 1.0 required, 0.5 aimed)")
        if args.memory:
            _, rss_small = ours(inputs_dir, work)
            big_dir = work / "in5"
            for k in range(5):
                write_series(big_dir / f"s{k}", args.slices, rows=512, cols=512)
            shutil.rmtree(work / "stage", ignore_errors=True)
            _, rss_big = ours(big_dir, work)
            print(
                f"peak RSS: {args.slices} slices {rss_small / 1024:.0f} MiB, {5 * args.slices} slices "
                f"{rss_big / 1024:.0f} MiB, ratio {rss_big / rss_small:.2f} (flat means ~1.0)"
            )


if __name__ == "__main__":
    main()
