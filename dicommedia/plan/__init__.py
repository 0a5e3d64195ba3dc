"""Create side, step 2: the file-set plan — patients/studies/series, repaired keys, File IDs, capacity."""
