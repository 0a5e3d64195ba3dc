"""Import speed: ``dicommedia read disc.iso --send`` against DCMTK ``storescu`` sending the same files to the same
DCMTK ``storescp`` on loopback, in one run; a naive pynetdicom ``send_c_store`` loop for contrast.

    python bench/bench_import.py [--slices 400] [--repeat 5] [--naive] [--store] [--orthanc] [--reconcile]
                                 [--compare-tree DIR] [--setting debian|nodelay|fork ...]

Builds a CT series (512x512, 16-bit, Part 10 Explicit VR LE, written with pydicom), burns it to an ISO with
``dicommedia create``, then times, per peer setting:

* ``storescu +sd +r`` on the folder the ISO was made from (the same instances, the same bytes);
* ``dicommedia read disc.iso --send`` (the whole command: Python start-up, reading the ISO, C-ECHO, C-STORE);
* with ``--naive``: one association, ``assoc.send_c_store(path)`` per file, pynetdicom defaults.

Three peer settings. Debian's DCMTK leaves Nagle's algorithm on: storescp then answers every C-STORE ~40 ms
late (see dicommedia/read/network.py), to storescu too. ``TCP_NODELAY=1`` in DCMTK's environment turns it off
for storescp and storescu alike: DCMTK at its fastest, the harder comparison. ``storescp --fork`` serves
associations in parallel, which our import uses (storescu sends over one association).
``--reconcile`` times, instead, the plain import against the same import with a patient map that changes
every instance's Patient ID and name (the coercion's cost on the C-STORE path).
``--compare-tree DIR`` also times, interleaved, the same command run from another source tree (e.g. an older
commit checked out with ``git worktree add``), so that a regression shows as two ratios from one run.
Times are the best of ``--repeat`` runs; the figure that matters is the ratio ours / storescu. Below our whole
command, "C-STORE phase" is the time our own summary reports: C-ECHO, associations and stores, without Python
start-up and reading the ISO's directories and DICOMDIR.

Our command runs as an installed package does: byte-compiled (pip compiles at install; an environment with
PYTHONDONTWRITEBYTECODE=1 would otherwise compile every module on every run, ~60 ms). The byte code goes to a
private PYTHONPYCACHEPREFIX in the bench's temporary folder, written by one untimed run first.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.tools import find_tool  # noqa: E402


def native(name: str) -> str:
    """A DCMTK executable (never pynetdicom's script of the same name)."""
    return find_tool(name) or sys.exit(f"DCMTK {name} not found (apt-get install dcmtk)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_ct(folder: Path, slices: int) -> int:
    """A synthetic CT series; returns the bytes written."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    total = 0
    for n in range(1, slices + 1):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.Modality = "20240115", "101500", "BENCH1", "CT"
        ds.ReferringPhysicianName, ds.PatientName, ds.PatientID = "", "BENCH^CT", "BENCH"
        ds.PatientBirthDate, ds.PatientSex = "19700101", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.StudyID, ds.SeriesNumber = study, series, "1", 1
        ds.InstanceNumber, ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = n, frame, ""
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, float(n)], [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness, ds.KVP, ds.AcquisitionNumber = [0.5, 0.5], 1.0, 120, 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", 512, 512
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.PixelData = rng.integers(-1000, 3000, (512, 512), dtype=np.int16).tobytes()
        path = folder / f"CT{n:06d}"
        ds.save_as(path, enforce_file_format=True)
        total += path.stat().st_size
    return total


def make_disc(folder: Path, iso: Path, slices: int) -> int:
    """CT slices in ``folder`` and a disc of them at ``iso`` made by dicommedia; the bytes of the slices."""
    nbytes = write_ct(folder, slices)
    made = subprocess.run(
        [sys.executable, "-m", "dicommedia", "create", str(folder), "-o", str(iso), "--media", "usb"],
        capture_output=True,
        text=True,
    )
    if made.returncode:
        sys.exit(f"dicommedia create failed: {made.stderr.strip()}")
    return nbytes


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"storescp did not start on {port}")


PHASES: dict[str, list[float]] = {}  # "sent N instances ... in X s" from our own summary: the C-STORE phase alone


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    elapsed = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"{cmd[0]} failed ({result.returncode}): {result.stderr.strip()[-400:]}")
    phase = re.search(r"sent \d+ instances? to \S+ in ([\d.]+) s", " ".join(result.stderr.split()))
    if phase:
        PHASES.setdefault("current", []).append(float(phase[1]))
    return elapsed


NAIVE = """
import sys
from pathlib import Path
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage
from pydicom.uid import ExplicitVRLittleEndian
ae = AE("NAIVE")
ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
assoc = ae.associate("127.0.0.1", int(sys.argv[1]), ae_title="STORESCP")
assert assoc.is_established
for path in sorted(Path(sys.argv[2]).iterdir()):
    assert assoc.send_c_store(path).Status == 0
assoc.release()
"""


def python_env(work: Path) -> dict[str, str]:
    """Our environment: byte code cached in the bench's folder (see the module docstring)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(work / "pycache")}


def run_setting(
    dcmtk_env: dict[str, str], scp_extra: list[str], folder: Path, iso: Path, args, work: Path
) -> dict[str, float]:
    env = {**os.environ, **dcmtk_env}
    port = free_port()
    out = work / f"received-{port}"
    out.mkdir()
    scp_options = ["-od", str(out)] if args.store else ["--ignore"]
    scp = subprocess.Popen(
        [native("storescp"), *scp_extra, *scp_options, str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port)
        storescu = [native("storescu"), "-aec", "STORESCP", "+sd", "+r", "127.0.0.1", str(port), str(folder)]
        ours = [sys.executable, "-m", "dicommedia", "read", str(iso), "--send", f"STORESCP@127.0.0.1:{port}", "--json"]
        times: dict[str, list[float]] = {"storescu": [], "dicommedia": []}
        tree = args.compare_tree
        other_env = {**python_env(work), "PYTHONPYCACHEPREFIX": str(work / "pycache-tree")}
        timed(ours, python_env(work))  # untimed: writes the byte code
        if tree:
            times["--compare-tree"] = []
            timed(ours, other_env, tree)
        PHASES.pop("current", None)
        for round_ in range(args.repeat):  # interleaved, so that a busy moment of the machine hits both
            times["storescu"].append(timed(storescu, env))
            # The run right after storescu is measurably slower (~0.015 of the ratio: the peer is still closing
            # storescu's association): the two trees take turns at that place.
            for name in ("dicommedia", "--compare-tree")[:: -1 if tree and round_ % 2 else 1]:
                if name == "dicommedia":
                    times[name].append(timed(ours, python_env(work)))
                elif tree:
                    phases = PHASES.pop("current", [])
                    times[name].append(timed(ours, other_env, tree))
                    PHASES["current"] = phases  # the C-STORE phase line is ours only
        best = {k: min(v) for k, v in times.items()}
        if args.naive:
            best["naive pynetdicom"] = timed([sys.executable, "-c", NAIVE, str(port), str(folder)], python_env(work))
    finally:
        scp.terminate()
        scp.wait()
        shutil.rmtree(out, ignore_errors=True)
    return best


def reconcile_setting(folder: Path, iso: Path, args, work: Path) -> dict[str, float]:
    """Plain send against send with a patient map (every instance coerced), into one storescp, interleaved."""
    env = {**os.environ, "TCP_NODELAY": "1"}
    port = free_port()
    scp = subprocess.Popen(
        [native("storescp"), "--ignore", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    patient_map = work / "map.csv"
    patient_map.write_text("source_patient_id,patient_id,patient_name\nBENCH,LOCAL-1,LOCAL^PATIENT\n")
    try:
        wait_for(port)
        storescu = [native("storescu"), "-aec", "STORESCP", "+sd", "+r", "127.0.0.1", str(port), str(folder)]
        plain = [sys.executable, "-m", "dicommedia", "read", str(iso), "--send", f"STORESCP@127.0.0.1:{port}"]
        mapped = [*plain, "--patient-map", str(patient_map)]
        timed(plain, python_env(work))  # untimed: writes the byte code
        PHASES.pop("current", None)
        times: dict[str, list[float]] = {"storescu": [], "dicommedia": [], "with --patient-map": []}
        phases: dict[str, list[float]] = {"dicommedia": [], "with --patient-map": []}
        for _ in range(args.repeat):
            times["storescu"].append(timed(storescu, env))
            for name, cmd in (("dicommedia", plain), ("with --patient-map", mapped)):
                times[name].append(timed(cmd, python_env(work)))
                phases[name].append(PHASES.pop("current")[-1])
    finally:
        scp.terminate()
        scp.wait()
    best = {k: min(v) for k, v in times.items()}
    for name, values in phases.items():
        best[f"{name}, C-STORE phase"] = min(values)
    return best


def start_orthanc(work: Path, plugin: Path | None = None) -> tuple[subprocess.Popen, int, int]:
    """Orthanc (with ``plugin``, e.g. DICOMweb) on free loopback ports: the server, its DICOM and HTTP ports."""
    import json

    binary = shutil.which("Orthanc") or sys.exit("Orthanc not found (apt-get install orthanc)")
    if plugin is not None and not plugin.exists():
        sys.exit(f"{plugin} not found (apt-get install orthanc-dicomweb)")
    dicom_port, http_port = free_port(), free_port()
    config = {
        "Name": "bench",
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "StorageDirectory": str(work / "orthanc"),
        "IndexDirectory": str(work / "orthanc"),
        "DicomModalities": {},
        "DicomCheckCalledAet": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [str(plugin)] if plugin else [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (work / "orthanc.json").write_text(json.dumps(config))
    server = subprocess.Popen(
        [binary, str(work / "orthanc.json")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(http_port)
        wait_for(dicom_port)
    except BaseException:
        server.kill()
        raise
    return server, dicom_port, http_port


def orthanc_setting(folder: Path, iso: Path, args, work: Path) -> dict[str, float]:
    """The same two senders into Orthanc (a real PACS, DCMTK inside), emptied before every run."""
    import json
    import urllib.request

    server, dicom_port, http_port = start_orthanc(work)
    rest = f"http://127.0.0.1:{http_port}"

    def empty() -> None:
        with urllib.request.urlopen(f"{rest}/patients") as rsp:
            for pid in json.load(rsp):
                urllib.request.urlopen(urllib.request.Request(f"{rest}/patients/{pid}", method="DELETE")).read()

    try:
        storescu = [native("storescu"), "-aec", "ORTHANC", "+sd", "+r", "127.0.0.1", str(dicom_port), str(folder)]
        ours = [sys.executable, "-m", "dicommedia", "read", str(iso), "--send", f"ORTHANC@127.0.0.1:{dicom_port}"]
        times: dict[str, list[float]] = {"storescu": [], "dicommedia": []}
        for _ in range(args.repeat):
            for name, cmd in (("storescu", storescu), ("dicommedia", ours)):
                empty()
                times[name].append(timed(cmd, python_env(work)))
    finally:
        server.terminate()
        server.wait()
    return {k: min(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--naive", action="store_true", help="also time a naive pynetdicom send_c_store loop")
    parser.add_argument("--store", action="store_true", help="let storescp write the files (default: --ignore)")
    parser.add_argument("--orthanc", action="store_true", help="also compare both senders into Orthanc")
    parser.add_argument(
        "--compare-tree", type=Path, metavar="DIR", help="also time the command from this source tree (interleaved)"
    )
    parser.add_argument(
        "--setting",
        action="append",
        choices=("debian", "nodelay", "fork"),
        help="only this peer setting (repeatable; default: all three)",
    )
    parser.add_argument(
        "--reconcile", action="store_true", help="only: plain send against send with --patient-map (ratio printed)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp:
        work = Path(tmp)
        folder, iso = work / "ct", work / "disc.iso"
        nbytes = make_disc(folder, iso, args.slices)
        print(
            f"{args.slices} CT slices 512x512x16 bit, {nbytes / 1e6:.0f} MB; ISO {iso.stat().st_size / 1e6:.0f} MB; "
            f"best of {args.repeat}; storescp {'writing files' if args.store else '--ignore'}"
        )
        if args.reconcile:  # the only setting then
            best = reconcile_setting(folder, iso, args, work)
            report("reconciliation: every instance coerced (storescp --ignore, TCP_NODELAY=1)", best, nbytes)
            whole = best["with --patient-map"] / best["dicommedia"]
            phase = best["with --patient-map, C-STORE phase"] / best["dicommedia, C-STORE phase"]
            print(
                f"  reconciliation overhead: {whole:5.2f} x plain send (whole command), {phase:5.2f} x (C-STORE phase)"
            )
            return
        settings = {
            "debian": ("storescp/storescu as Debian ships them (Nagle on)", {}, []),
            "nodelay": ("DCMTK with TCP_NODELAY=1", {"TCP_NODELAY": "1"}, []),
            "fork": (
                "DCMTK with TCP_NODELAY=1, storescp --fork (parallel associations)",
                {"TCP_NODELAY": "1"},
                ["--fork"],
            ),
        }
        for label, dcmtk_env, scp_extra in (settings[name] for name in args.setting or settings):
            best = run_setting(dcmtk_env, scp_extra, folder, iso, args, work)
            report(label, best, nbytes)
        if args.orthanc:
            report(
                "Orthanc 1.x as the peer (emptied before each run)", orthanc_setting(folder, iso, args, work), nbytes
            )


def report(label: str, best: dict[str, float], nbytes: int) -> None:
    base = best["storescu"]
    print(f"\n{label}")
    for name, seconds in best.items():
        print(
            f"  {name:18s} {seconds:7.2f} s  {nbytes / seconds / 1e6:7.1f} MB/s"
            f"  ratio to storescu {seconds / base:5.2f}"
        )
    phases = PHASES.pop("current", [])
    if phases:  # the whole command above includes Python start-up and reading the ISO's DICOMDIR
        print(
            f"  {'  C-STORE phase':18s} {min(phases):7.3f} s  {nbytes / min(phases) / 1e6:7.1f} MB/s"
            f"  ratio to storescu {min(phases) / base:5.2f}"
        )


if __name__ == "__main__":
    main()
