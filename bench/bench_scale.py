"""Scale: time per instance and peak RSS of create, validate, read --json and send at 400 / 2,000 / 10,000 slices.

Every figure is a ratio measured in the same run: to the floor (``cat`` of the same bytes; a trivial loopback
sender for send) and to the peer (cp + dcmmkdir +I + genisoimage; a dciodvfy loop, sampled; isoinfo -f; DCMTK
storescu into storescp). The peak RSS of each of our commands is printed too, and at the end its growth from
the smallest size to each larger one (flat memory means ~1.0).

    python bench/bench_scale.py [--sizes 400,2000,10000] [--work DIR] [--no-send] [--sample 100] [--repeat 3]

The corpus (512x512 16-bit CT, 400 slices a series, ~0.53 MB a slice) is generated, never committed; the
largest size is made once and the smaller sizes use its first series. Free disk space is checked first
(about 4x the corpus: corpus, our image, the peer's staging folder and image); everything is deleted at the end.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.tools import find_tool  # noqa: E402

PER_SERIES = 400
PROFILE = "STD-GEN-USB-J2K"  # uncompressed images allowed, no capacity limit, ISO 9660 only (as the peer)
SLICE_BYTES = 512 * 512 * 2 + 1400  # pixels and header, for the disk-space check


def need(name: str) -> str:
    """Path of an outside tool (DCMTK's own storescp/storescu, never pynetdicom's scripts)."""
    return find_tool(name) or sys.exit(f"{name} not found (apt-get install dcmtk dicom3tools genisoimage)")


def write_corpus(root: Path, series: int) -> None:
    """``series`` CT series of PER_SERIES slices, one folder each (S000, S001, ...), one study, one patient."""
    import numpy as np
    from pydicom.uid import generate_uid

    from tests.synthetic import image_dataset

    pixels = 512 * 512 * 2
    pool = np.random.default_rng(0).integers(-1000, 3000, size=pixels, dtype=np.int16).tobytes() * 2
    study = generate_uid()
    for s in range(series):
        folder = root / f"S{s:03d}"
        folder.mkdir(parents=True)
        ds = image_dataset(rows=512, cols=512, study_uid=study, series_uid=generate_uid())
        ds.SeriesNumber = s + 1
        for n in range(1, PER_SERIES + 1):
            ds.SOPInstanceUID = generate_uid()
            ds.InstanceNumber = n
            ds.ImagePositionPatient = [0, 0, float(n)]
            start = 2 * ((s * PER_SERIES + n) * 7919 % (pixels // 2))  # every slice's pixels differ
            ds.PixelData = pool[start : start + pixels]
            ds.save_as(folder / f"CT{n:05d}.dcm", enforce_file_format=True)


def run(cmd: list[str], stdout=subprocess.DEVNULL, env: dict[str, str] | None = None) -> tuple[float, int]:
    """Run a command; return (wall seconds, its peak RSS in KiB). Exit the bench if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd[:6])} ...\n{proc.stderr.read().decode(errors='replace')[-600:]}")
    proc.stderr.close()
    return elapsed, usage.ru_maxrss


# Our commands run as an installed package does: byte-compiled (pip compiles at install). With
# PYTHONDONTWRITEBYTECODE=1 every run would compile every module (time and memory); the byte code goes to a
# private PYTHONPYCACHEPREFIX instead, written by the untimed warm-up runs.
OUR_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def ours(*args: str, env: dict[str, str] | None = None) -> tuple[float, int]:
    return run([sys.executable, "-m", "dicommedia", *args], env={**OUR_ENV, **(env or {})})


def warm_up(corpus: Path, work: Path) -> None:
    """Run create, validate and read once, untimed: byte code written, files in the page cache."""
    iso = work / "warm.iso"
    ours("create", str(corpus / "S000"), "-o", str(iso), "-p", PROFILE, "--fileset-id", "WARM", *WEB)
    ours("validate", str(iso), "-p", PROFILE, "--json")
    ours("read", str(iso), "--json")
    iso.unlink()


def cat_into(files: list[Path], target: Path) -> float:
    """The floor of create: cat of the same bytes into one file."""
    target.unlink(missing_ok=True)
    listing = target.with_suffix(".list")
    listing.write_bytes(b"\0".join(bytes(p) for p in files))
    start = time.perf_counter()
    with open(listing, "rb") as names, open(target, "wb") as out:
        subprocess.run(["xargs", "-0", "cat"], stdin=names, stdout=out, check=True)
    elapsed = time.perf_counter() - start
    target.unlink()
    listing.unlink()
    return elapsed


def cat_read(path: Path) -> float:
    """The floor of reading a disc: every byte of the image read once."""
    start = time.perf_counter()
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def classic_create(files: list[Path], work: Path) -> float:
    """The peer: cp into PS3.10 File IDs, dcmmkdir +I, genisoimage."""
    stage, iso = work / "stage", work / "classic.iso"
    shutil.rmtree(stage, ignore_errors=True)
    iso.unlink(missing_ok=True)
    names = []
    start = time.perf_counter()
    for n, path in enumerate(files):
        folder = f"DICOM/SE{n // PER_SERIES:06d}"
        if n % PER_SERIES == 0:
            (stage / folder).mkdir(parents=True)
        names.append(f"{folder}/IM{n % PER_SERIES:06d}")
        shutil.copyfile(path, stage / names[-1])
    run([need("dcmmkdir"), "+I", "+id", str(stage), "+D", str(stage / "DICOMDIR"), "+F", "CLASSIC", "-q", *names])
    run([need("genisoimage"), "-quiet", "-V", "CLASSIC", "-o", str(iso), str(stage)])
    elapsed = time.perf_counter() - start
    shutil.rmtree(stage)
    iso.unlink()
    return elapsed


def dciodvfy_loop(files: list[Path], sample: int) -> float:
    """The peer of validate: dciodvfy on every file, timed on an evenly spread sample and scaled to all."""
    step = max(1, len(files) // sample)
    chosen = files[::step]
    start = time.perf_counter()
    for path in chosen:
        subprocess.run([need("dciodvfy"), str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - start) * len(files) / len(chosen)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


# The send floor: one TCP connection on loopback, each file's bytes pushed with sendfile into a sink that
# discards them. No DICOM at all: what moving the bytes costs.
_SINK = """
import socket, sys
srv = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    conn, _ = srv.accept()
    while conn.recv(1 << 20):
        pass
    conn.close()
"""
_SENDER = """
import os, socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as s:
    for name in sys.stdin.read().split("\\0"):
        with open(name, "rb") as f:
            s.sendfile(f)
"""


def loopback_floor(files: list[Path], port: int) -> float:
    names = "\0".join(str(p) for p in files).encode()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _SENDER, str(port)], input=names, check=True)
    return time.perf_counter() - start


class Row:
    """One measured operation at one size."""

    def __init__(self, name: str, n: int, ours_s: float, rss_kib: int, floor: float | None, peer: float | None):
        self.name, self.n, self.ours, self.rss, self.floor, self.peer = name, n, ours_s, rss_kib, floor, peer

    def line(self) -> str:
        floor = f"{self.floor:7.2f} {self.ours / self.floor:6.2f}" if self.floor else f"{'-':>7} {'-':>6}"
        peer = f"{self.peer:7.2f} {self.ours / self.peer:6.2f}" if self.peer else f"{'-':>7} {'-':>6}"
        return (
            f"  {self.name:10s} {self.ours:7.2f} {1000 * self.ours / self.n:8.3f} {self.rss / 1024:7.1f}  "
            f"{floor}  {peer}"
        )


# The peer writes no web content: neither do we (rendering JPEGs is bench_web.py's subject, not the copy path).
WEB = ("--web", "none")


def settle() -> None:
    """Let the previous command's writes reach the disk: at 10,000 slices a run writes 5 GB, and a command
    timed while the kernel still writes back (or discards) the last one's output would pay for it."""
    os.sync()
    time.sleep(2)


def measure(n: int, corpus: Path, work: Path, args) -> list[Row]:
    folders = [corpus / f"S{s:03d}" for s in range(n // PER_SERIES)]
    files = sorted(p for f in folders for p in f.iterdir())
    iso = work / "ours.iso"
    rows = []
    # The page cache's write-back makes single runs at 10,000 slices vary by +-40%: each side's best of
    # --repeat runs, cat and create interleaved.
    floors, runs = [], []
    for _ in range(args.repeat):
        iso.unlink(missing_ok=True)
        settle()
        floors.append(cat_into(files, work / "cat.out"))
        settle()
        runs.append(ours("create", *map(str, folders), "-o", str(iso), "-p", PROFILE, "--fileset-id", "SCALE", *WEB))
    settle()
    seconds, rss = min(t for t, _ in runs), max(r for _, r in runs)  # the fastest run, the highest peak
    rows.append(Row("create", n, seconds, rss, min(floors), classic_create(files, work)))
    settle()
    floor = cat_read(iso)
    seconds, rss = ours("validate", str(iso), "-p", PROFILE, "--json")
    rows.append(Row("validate", n, seconds, rss, floor, dciodvfy_loop(files, args.sample)))
    start = time.perf_counter()
    run([need("isoinfo"), "-f", "-i", str(iso)])
    peer = time.perf_counter() - start
    seconds, rss = ours("read", str(iso), "--json")
    rows.append(Row("read", n, seconds, rss, floor, peer))
    if not args.no_send:
        rows.append(send_row(n, files, iso, folders))
    iso.unlink()
    return rows


WARM_SEND: list[tuple[float, int]] = []


def send_row(n: int, files: list[Path], iso: Path, folders: list[Path]) -> Row:
    """read --send into DCMTK storescp --ignore (TCP_NODELAY=1: DCMTK at its fastest) against storescu."""
    env = {**os.environ, "TCP_NODELAY": "1"}
    port, sink_port = free_port(), free_port()
    scp = subprocess.Popen(
        [need("storescp"), "--ignore", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    sink = subprocess.Popen([sys.executable, "-c", _SINK, str(sink_port)])
    try:
        wait_for(port)
        wait_for(sink_port)
        floor = loopback_floor(files, sink_port)
        peer, _ = run([need("storescu"), "-aec", "STORESCP", "+sd", "+r", "127.0.0.1", str(port), *map(str, folders)])
        send = ("read", str(iso), "--send", f"STORESCP@127.0.0.1:{port}", "--json")
        if not WARM_SEND:
            WARM_SEND.append(ours(*send, env=env))  # the send modules' byte code
        seconds, rss = ours(*send, env=env)
    finally:
        for proc in (scp, sink):
            proc.terminate()
            proc.wait()
    return Row("send", n, seconds, rss, floor, peer)


def main() -> None:
    if sys.argv[1:2] == ["--make-corpus"]:
        write_corpus(Path(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="400,2000,10000", help="slice counts, multiples of 400")
    parser.add_argument("--work", type=Path, default=None, help="folder for corpus and images (default: a temp)")
    parser.add_argument("--sample", type=int, default=100, help="files dciodvfy checks, scaled to all")
    parser.add_argument("--corpus", type=Path, default=None, help="reuse a corpus this bench made (S000, S001, ...)")
    parser.add_argument("--no-send", action="store_true", help="skip the send measurements")
    parser.add_argument("--repeat", type=int, default=3, help="runs of create and its cat floor (best of each)")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if any(n % PER_SERIES or n <= 0 for n in sizes):
        sys.exit(f"sizes must be positive multiples of {PER_SERIES}")
    for name in ("dcmmkdir", "genisoimage", "isoinfo", "dciodvfy", "storescp", "storescu"):
        need(name)
    parent = args.work or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    needed = (3 if args.corpus else 4) * max(sizes) * SLICE_BYTES
    free = shutil.disk_usage(parent).free
    if free < needed * 1.1:
        sys.exit(f"{parent}: {free / 1e9:.1f} GB free, the bench needs {needed / 1e9:.1f} GB (use --work or --sizes)")
    work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=parent))
    try:
        corpus = args.corpus or work / "corpus"
        start = time.perf_counter()
        # In a child: this process stays small, and a child's peak RSS starts from its parent's (Linux keeps
        # the high-water mark across fork and exec), so ours would otherwise read the corpus maker's.
        if args.corpus is None:
            made = subprocess.run(
                [sys.executable, __file__, "--make-corpus", str(corpus), str(max(sizes) // PER_SERIES)]
            )
            if made.returncode:
                sys.exit("could not write the corpus")
        print(f"corpus: {max(sizes)} CT slices 512x512x16 bit in {time.perf_counter() - start:.0f} s; {work}")
        OUR_ENV["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        warm_up(corpus, work)
        heads = ("ours s", "ms/inst", "RSS MiB", "floor s", "ratio", "peer s", "ratio")
        print("  " + " " * 10 + " {:>7} {:>8} {:>7}  {:>7} {:>6}  {:>7} {:>6}".format(*heads))
        results: dict[int, list[Row]] = {}
        for n in sizes:
            print(f"{n} slices")
            results[n] = measure(n, corpus, work, args)
            for row in results[n]:
                print(row.line(), flush=True)
        base = sizes[0]
        print(f"peak RSS growth from {base} slices (flat means ~1.0):")
        for n in sizes[1:]:
            growth = ", ".join(
                f"{a.name} {a.rss / b.rss:.2f}" for a, b in zip(results[n], results[base]) if a.name == b.name
            )
            print(f"  {n}: {growth}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
