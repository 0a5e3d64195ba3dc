"""One SOP Instance UID in several inputs: the same object (written once) or a conflict (PS3.3 C.12.1.1.1)."""

from __future__ import annotations

import hashlib
import io

from dicommedia.inputs.dicom_file import InstanceHeader


def content_digest(header: InstanceHeader) -> str:
    """Digest of what the object shows: decoded pixels when it has them, else its attributes."""
    from pydicom import dcmread

    from dicommedia.transforms.encoding import encode_body

    ds = dcmread(io.BytesIO(header.source.read_bytes()), force=True)
    h = hashlib.sha256()
    if "PixelData" in ds:
        try:
            arr = ds.pixel_array
            arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)  # the same values in any byte order
            h.update(f"{arr.shape}{arr.dtype.str}".encode())
            h.update(arr.tobytes())
            return h.hexdigest()
        except Exception:  # undecodable pixels: compare the encoded bytes instead
            pass
    h.update(encode_body(ds))
    return h.hexdigest()


def same_object(a: InstanceHeader, b: InstanceHeader) -> bool:
    """True when two inputs with one SOP Instance UID hold the same object (any encoding)."""
    return content_digest(a) == content_digest(b)
