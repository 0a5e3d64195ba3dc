"""Create side, step 4: writers — Part 10 files, DICOMDIR, IHE PDI content, ISO 9660 image or folder."""
