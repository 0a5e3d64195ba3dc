"""Create side, step 1: what the user gave us — DICOM files, folders, discs, pictures and PDFs."""
