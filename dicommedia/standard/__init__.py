"""Rules of the DICOM standard shared by the create, read and validate sides."""
