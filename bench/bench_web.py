"""Time `dicommedia create --web all` against the classic way to get the same JPEGs on a disc.

Classic: `dcmj2pnm --write-jpeg` per file for the full-size picture and again (+Sxv 160) for the thumbnail, then
cp with PS3.10 names + `dcmmkdir +I` + `genisoimage`. The JPEG step runs once as a shell loop would (one file
after another) and once spread over every core; both in the same run as ours, on the same N synthetic CT slices
(512x512, 16 bit). Prints times and the ratios ours/classic.

    python bench/bench_web.py [--slices 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.synthetic import write_series  # noqa: E402


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode(errors='replace')}")


def _jpegs(path: Path, n: int, folder: Path) -> None:
    """The full-size rendering and the thumbnail of one file, as dcmj2pnm makes them (min-max window)."""
    _run(["dcmj2pnm", "--write-jpeg", "+Wm", str(path), str(folder / f"IM{n:06d}.JPG")])
    _run(["dcmj2pnm", "--write-jpeg", "+Wm", "+Sxv", "160", str(path), str(folder / f"TH{n:06d}.JPG")])


def classic(inputs: list[Path], work: Path, workers: int) -> float:
    """dcmj2pnm per file (on ``workers`` cores), cp into PS3.10 File IDs, dcmmkdir +I, genisoimage."""
    stage = work / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "DICOM").mkdir(parents=True)
    (stage / "IHE_PDI" / "SE000001").mkdir(parents=True)
    iso = work / "classic.iso"
    iso.unlink(missing_ok=True)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda item: _jpegs(item[1], item[0], stage / "IHE_PDI" / "SE000001"), enumerate(inputs, 1)))
    names = []
    for n, path in enumerate(inputs, 1):
        name = f"DICOM/IM{n:06d}"
        shutil.copyfile(path, stage / name)
        names.append(name)
    _run(["dcmmkdir", "+I", "+id", str(stage), "+D", str(stage / "DICOMDIR"), "+F", "CLASSIC", "-q", *names])
    _run(["genisoimage", "-quiet", "-V", "CLASSIC", "-o", str(iso), str(stage)])
    elapsed = time.perf_counter() - start
    if len(list((stage / "IHE_PDI" / "SE000001").glob("*.JPG"))) != 2 * len(inputs):
        raise SystemExit("dcmj2pnm did not write every JPEG: the classic disc would be incomplete")
    return elapsed


def ours(inputs_dir: Path, work: Path, count: int) -> float:
    iso = work / "ours.iso"
    iso.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "dicommedia", "create", str(inputs_dir), "-o", str(iso)]
    start = time.perf_counter()
    _run([*cmd, "--fileset-id", "OURS", "--web", "all", "--media", "usb"])
    elapsed = time.perf_counter() - start
    listing = subprocess.run(["isoinfo", "-f", "-i", str(iso)], capture_output=True, text=True).stdout
    if sum(1 for line in listing.splitlines() if line.startswith("/IHE_PDI/SE000001/")) != 2 * count:
        raise SystemExit("our disc lacks renderings")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for tool in ("dcmj2pnm", "dcmmkdir", "genisoimage", "isoinfo"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (apt-get install dcmtk genisoimage)")
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        work = Path(tmp)
        inputs = write_series(work / "in", args.slices, rows=512, cols=512)
        print(f"{args.slices} CT slices, 512x512x16 bit; a full-size JPEG and a thumbnail of each; {cores} cores")
        classic(inputs, work, cores), ours(work / "in", work, args.slices)  # warm the page cache for all
        loop, spread, mine = [], [], []
        for _ in range(args.repeat):
            loop.append(classic(inputs, work, 1))
            spread.append(classic(inputs, work, cores))
            mine.append(ours(work / "in", work, args.slices))
        best = {"loop": min(loop), "spread": min(spread), "ours": min(mine)}
        print(f"classic, dcmj2pnm one file after another: {best['loop']:.2f} s (best of {args.repeat})")
        print(f"classic, dcmj2pnm on {cores} cores:            {best['spread']:.2f} s")
        print(f"dicommedia create --web all:              {best['ours']:.2f} s")
        print(f"ratio ours/classic loop:     {best['ours'] / best['loop']:.2f}  (0.5 aimed)")
        print(f"ratio ours/classic parallel: {best['ours'] / best['spread']:.2f}")


if __name__ == "__main__":
    main()
