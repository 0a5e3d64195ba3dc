"""Time the disc side against its peers in one run and print ratios (ours / peer; lower is faster):

* a DVD image with a UDF bridge: `dicommedia create -p STD-GEN-DVD-RAM` vs cp + `dcmmkdir +I` + `genisoimage -udf`
  (and the cost of the bridge: the same create with --no-udf);
* burning with read-back verification on a stdio pseudo-drive: `dicommedia burn --verify` vs
  `xorriso -as cdrecord` + `cmp` against the image.

    python bench/bench_disc.py [--slices 400] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_create import classic_pipeline, run_timed  # noqa: E402
from tests.synthetic import write_series  # noqa: E402


def ours_create(inputs_dir: Path, work: Path, udf: bool) -> float:
    iso = work / "ours.iso"
    iso.unlink(missing_ok=True)
    args = ["create", str(inputs_dir), "-o", str(iso), "-p", "STD-GEN-DVD-RAM", "--no-ihe-pdi", "--media", "usb"]
    return run_timed([sys.executable, "-m", "dicommedia", *args, "--udf" if udf else "--no-udf"])[0]


def peer_burn(image: Path, work: Path) -> float:
    drive = work / "peer-medium"
    drive.unlink(missing_ok=True)
    start = time.perf_counter()
    run_timed(["xorriso", "-as", "cdrecord", f"dev=stdio:{drive}", "-nopad", str(image)])
    run_timed(["cmp", "-n", str(image.stat().st_size), str(image), str(drive)])
    return time.perf_counter() - start


def ours_burn(image: Path, work: Path) -> float:
    drive = work / "our-medium"
    drive.unlink(missing_ok=True)
    return run_timed([sys.executable, "-m", "dicommedia", "burn", str(image), "--drive", f"stdio:{drive}", "--verify"])[
        0
    ]


def best(runs: int, task) -> float:
    return min(task() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for tool in ("dcmmkdir", "genisoimage", "xorriso", "cmp"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (apt-get install dcmtk genisoimage xorriso)")
    with tempfile.TemporaryDirectory(prefix="bench-disc-") as tmp:
        work = Path(tmp)
        inputs = write_series(work / "in", args.slices, rows=512, cols=512)
        size = sum(p.stat().st_size for p in inputs)
        print(f"{args.slices} CT slices, 512x512x16 bit, {size / 1e6:.0f} MB; best of {args.repeat}")
        classic_pipeline(inputs, work, ("-udf",)), ours_create(work / "in", work, True)  # warm the page cache for both
        peer, mine, plain = [], [], []
        for _ in range(args.repeat):  # interleaved: machine load falls on every side alike
            peer.append(classic_pipeline(inputs, work, ("-udf",)))
            mine.append(ours_create(work / "in", work, True))
            plain.append(ours_create(work / "in", work, False))
        print(f"cp + dcmmkdir +I + genisoimage -udf: {min(peer):.2f} s")
        print(f"dicommedia create (UDF bridge):      {min(mine):.2f} s   ratio ours/peer {min(mine) / min(peer):.2f}")
        print(f"dicommedia create --no-udf:          {min(plain):.2f} s   bridge cost {min(mine) / min(plain):.2f}x")
        image = work / "ours.iso"
        ours_create(work / "in", work, True)
        burn_peer, burn_mine = [], []
        for _ in range(args.repeat):
            burn_peer.append(peer_burn(image, work))
            burn_mine.append(ours_burn(image, work))
        print(f"xorriso -as cdrecord + cmp:          {min(burn_peer):.2f} s")
        print(
            f"dicommedia burn --verify:            {min(burn_mine):.2f} s   ratio ours/peer "
            f"{min(burn_mine) / min(burn_peer):.2f}"
        )


if __name__ == "__main__":
    main()
