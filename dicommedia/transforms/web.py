"""IHE PDI web content of one instance, made in the worker processes: JPEG renderings, SR tree, PDF bytes.

``web_content`` works on the dataset the transcoding step already decoded; ``render_web`` loads it for an
instance that is copied verbatim. Jobs and results are plain picklable data.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dicommedia.errors import MediaError

if TYPE_CHECKING:  # pydicom, numpy and Pillow load in the workers only
    from pydicom.dataset import Dataset

    from dicommedia.writers.web.sr import SrDocument

THUMBNAIL = 160  # pixels, longest side
STRIP_FRAMES = 8  # key frames in a multi-frame strip
JPEG_QUALITY = 90


def key_frames(count: int, wanted: int) -> list[int]:
    """At most ``wanted`` indexes out of ``count``, evenly spaced from first to last."""
    if count <= wanted:
        return list(range(count))
    return sorted({round(i * (count - 1) / (wanted - 1)) for i in range(wanted)})


@dataclass(frozen=True)
class WebSpec:
    """What to make of one instance: renderings (when ``images``) spooled under ``prefix``."""

    prefix: str
    images: bool = True


@dataclass(frozen=True)
class WebJob:
    """An instance copied verbatim that still needs its web content."""

    label: str
    spec: WebSpec
    path: str | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class Jpeg:
    """A spooled baseline JPEG and its size in pixels and bytes."""

    path: str
    width: int
    height: int
    size: int


@dataclass(frozen=True)
class WebResult:
    """The web content of one instance; ``note`` says why an image has no rendering."""

    full: Jpeg | None = None
    thumbnail: Jpeg | None = None
    strip: Jpeg | None = None
    frames: int = 1
    window: str = ""
    slice_location: str = ""
    sr: SrDocument | None = None
    pdf: str | None = None
    pdf_size: int = 0
    note: str = ""


def _save(pixels, path: str, longest: int | None = None) -> Jpeg:
    """Write pixels as a baseline JPEG (SOF0: 8-bit, Huffman, sequential), scaled down to ``longest``."""
    from PIL import Image

    image = Image.fromarray(pixels)
    if longest and max(image.size) > longest:
        image.thumbnail((longest, longest), Image.Resampling.BILINEAR)
    image.save(path, "JPEG", quality=JPEG_QUALITY, progressive=False, optimize=False)
    return Jpeg(path, image.width, image.height, os.path.getsize(path))


def _strip(ds: Dataset, frames: int, path: str) -> Jpeg:
    """The key frames side by side, each a thumbnail, in one JPEG."""
    import numpy as np
    from PIL import Image

    from dicommedia.transforms.display import display_frame

    tiles = []
    for index in key_frames(frames, STRIP_FRAMES):
        tile = Image.fromarray(display_frame(ds, index).pixels).convert("RGB")
        tile.thumbnail((THUMBNAIL, THUMBNAIL), Image.Resampling.BILINEAR)
        tiles.append(np.asarray(tile))
    height = max(t.shape[0] for t in tiles)
    padded = [np.pad(t, ((0, height - t.shape[0]), (0, 2), (0, 0))) for t in tiles]
    return _save(np.concatenate(padded, axis=1), path)


def _pdf(ds: Dataset, prefix: str) -> tuple[str, int]:
    """The Encapsulated Document bytes, without the even-length pad (PS3.3 C.24.2), spooled."""
    data = bytes(ds.EncapsulatedDocument)
    length = ds.get("EncapsulatedDocumentLength")
    if length is not None and 0 < int(length) <= len(data):
        data = data[: int(length)]
    path = prefix + ".pdf"
    with open(path, "wb") as out:
        out.write(data)
    return path, len(data)


def _images(ds: Dataset, spec: WebSpec) -> WebResult:
    from dicommedia.transforms.display import display_frame, frame_count

    frames = frame_count(ds)
    middle = display_frame(ds, frames // 2)
    full = _save(middle.pixels, spec.prefix + ".jpg")
    thumbnail = _save(middle.pixels, spec.prefix + "_t.jpg", THUMBNAIL)
    strip = _strip(ds, frames, spec.prefix + "_s.jpg") if frames > 1 else None
    location = ds.get("SliceLocation")
    return WebResult(
        full, thumbnail, strip, frames, middle.window, "" if location in (None, "") else f"{float(location):g}"
    )


def web_content(ds: Dataset, spec: WebSpec, label: str) -> WebResult:
    """Renderings of an image, the content tree of an SR, the bytes of an encapsulated PDF."""
    from dicommedia.writers.web.sr import read_sr

    try:
        if "EncapsulatedDocument" in ds and str(ds.get("MIMETypeOfEncapsulatedDocument", "")) == "application/pdf":
            path, size = _pdf(ds, spec.prefix)
            return WebResult(pdf=path, pdf_size=size)
        if str(ds.get("ValueType", "")) == "CONTAINER" and "ContentSequence" in ds:
            return WebResult(sr=read_sr(ds))
        if spec.images and "PixelData" in ds:
            return _images(ds, spec)
    except Exception as exc:  # decoders and LUT code raise many types: the disc is still written, without it
        return WebResult(note=f"{label}: no web rendering ({type(exc).__name__}: {exc})")
    return WebResult()


def render_web(job: WebJob) -> WebResult:
    """Load an instance copied verbatim and make its web content."""
    from pydicom import dcmread

    try:
        ds = dcmread(io.BytesIO(job.data) if job.data is not None else job.path, force=True)
    except Exception as exc:  # pydicom raises many types on damaged input
        raise MediaError(f"cannot be decoded ({type(exc).__name__}: {exc})", job.label) from None
    return web_content(ds, job.spec, job.label)
