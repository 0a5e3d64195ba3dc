"""STOW-RS import speed: ``dicommedia read disc.iso --stow`` into Orthanc's DICOMweb plugin against DCMTK ``storescu``
sending the same files to the same Orthanc over DIMSE, in one run, Orthanc emptied before every run.

    python bench/bench_stow.py [--slices 200] [--repeat 3]

Builds a CT series (512x512, 16-bit) with the helpers of bench_import.py, burns it to an ISO with ``dicommedia
create``, starts Orthanc with /usr/share/orthanc/plugins/libOrthancDicomWeb.so, and times, interleaved:

* ``storescu +sd +r`` on the folder the ISO was made from, into Orthanc's DICOM port, as Debian ships it (Nagle
  on: ~40 ms per instance, see dicommedia/read/network.py) and with ``TCP_NODELAY=1`` (DCMTK at its fastest);
* ``dicommedia read disc.iso --stow http://127.0.0.1:PORT/dicom-web`` (the whole command);
* the same with ``--patient-map`` (every instance coerced on the way).

The figure that matters is the ratio ours / storescu (lower is faster); times are the best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_import import make_disc, native, python_env, start_orthanc, timed  # noqa: E402

PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_stow_") as tmp:
        work = Path(tmp)
        folder, iso = work / "ct", work / "disc.iso"
        nbytes = make_disc(folder, iso, args.slices)
        patient_map = work / "map.csv"
        patient_map.write_text("source_patient_id,patient_id,patient_name\nBENCH,LOCAL-1,LOCAL^PATIENT\n")
        server, dicom_port, http_port = start_orthanc(work, PLUGIN)
        rest = f"http://127.0.0.1:{http_port}"

        def empty() -> None:
            with urllib.request.urlopen(f"{rest}/patients") as rsp:
                for pid in json.load(rsp):
                    urllib.request.urlopen(urllib.request.Request(f"{rest}/patients/{pid}", method="DELETE")).read()

        def count() -> int:
            with urllib.request.urlopen(f"{rest}/instances") as rsp:
                return len(json.load(rsp))

        commands = {
            "storescu (DIMSE)": [
                native("storescu"), "-aec", "ORTHANC", "+sd", "+r", "127.0.0.1", str(dicom_port), str(folder)
            ],
            "dicommedia --stow": [sys.executable, "-m", "dicommedia", "read", str(iso), "--stow", f"{rest}/dicom-web"],
        }  # fmt: skip
        commands["--stow --patient-map"] = [*commands["dicommedia --stow"], "--patient-map", str(patient_map)]
        commands["storescu, TCP_NODELAY=1"] = commands["storescu (DIMSE)"]
        envs = {name: python_env(work) for name in commands}
        envs["storescu, TCP_NODELAY=1"] = {**envs["storescu (DIMSE)"], "TCP_NODELAY": "1"}  # DCMTK at its fastest
        times: dict[str, list[float]] = {name: [] for name in commands}
        try:
            empty()
            timed(commands["dicommedia --stow"], python_env(work))  # untimed: writes the byte code
            for _ in range(args.repeat):
                for name, cmd in commands.items():
                    empty()
                    time.sleep(0.2)
                    times[name].append(timed(cmd, envs[name]))
                    if count() != args.slices:
                        sys.exit(f"{name}: Orthanc holds {count()} instances, not {args.slices}")
        finally:
            server.terminate()
            server.wait()
        print(f"{args.slices} CT slices 512x512x16 bit, {nbytes / 1e6:.0f} MB into Orthanc; best of {args.repeat}")
        base, fastest = min(times["storescu (DIMSE)"]), min(times["storescu, TCP_NODELAY=1"])
        for name, values in times.items():
            best = min(values)
            print(
                f"  {name:24s} {best:7.2f} s  {nbytes / best / 1e6:7.1f} MB/s  ratio to storescu {best / base:5.2f}"
                f", to storescu TCP_NODELAY=1 {best / fastest:5.2f}"
            )


if __name__ == "__main__":
    main()
