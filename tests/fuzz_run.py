"""Seeded mutation fuzzing of ISO images and DICOMDIRs through the library, in one process under 2 GiB.

``python -m tests.fuzz_run iso|dicomdir SEED CASES BASE_FOLDER BASE_ISO WORK`` prints a JSON summary:
``{"ran": N, "kinds": {...}, "broken": [{"case", "mutation", "problems"}]}``; a broken case is rebuilt from
its seed and number alone.
"""

from __future__ import annotations

import json
import random
import resource
import shutil
import sys
import warnings
from collections import Counter
from pathlib import Path

from tests.crafted import MEMORY_LIMIT, dicomdir_length_fields, exercise, iso_fields, mutate


def main(argv: list[str]) -> int:
    kind, seed, cases, base_folder, base_iso, work = argv[0], int(argv[1]), int(argv[2]), *map(Path, argv[3:6])
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.CRITICAL)  # pydicom logs every odd value it meets
    if kind == "iso":
        base = base_iso.read_bytes()
        fields, areas = iso_fields(base)
    else:
        base = (base_folder / "DICOMDIR").read_bytes()
        fields, areas = dicomdir_length_fields(base), [(128, len(base))]
    folder = work / "disc"
    if kind == "dicomdir":
        shutil.copytree(base_folder, folder)
    kinds: Counter[str] = Counter()
    broken = []
    for case in range(cases):
        rng = random.Random(seed * 1_000_003 + case)
        mutation, data = mutate(base, rng, fields, areas)
        kinds[mutation] += 1
        if kind == "iso":
            media = work / "case.iso"
            media.write_bytes(data)
        else:
            media = folder
            (folder / "DICOMDIR").write_bytes(data)
        out = work / "out"
        shutil.rmtree(out, ignore_errors=True)
        problems = exercise(media, out)
        if problems:
            broken.append({"case": case, "mutation": mutation, "problems": problems})
    json.dump({"ran": cases, "kinds": dict(kinds), "broken": broken}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
