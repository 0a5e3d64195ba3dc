"""dicommedia: DICOM removable media File-set Creator, Reader and validator."""

__version__ = "0.1.0"
