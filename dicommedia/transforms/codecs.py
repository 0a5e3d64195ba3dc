"""Codec registry: per ``--compress`` name, the transfer syntax, encoder, and what pixel data it carries.

Encoders: RLE and JPEG 2000 through pydicom (pylibjpeg-rle, pylibjpeg-openjpeg); the JPEG family through
imagecodecs (libjpeg-turbo 3: baseline, extended 12-bit process 4, lossless process 14 and 14 SV1).
Decoders: whatever pydicom and its plugins (pylibjpeg-libjpeg, -openjpeg, -rle, pyjpegls, pillow) decode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import imagecodecs
import numpy as np
from pydicom import uid
from pydicom.pixels import get_decoder, get_encoder

# Transfer syntaxes with native (not encapsulated) Pixel Data (PS3.5 A.1-A.3, A.5).
NATIVE_SYNTAXES = frozenset(
    {
        uid.ImplicitVRLittleEndian,
        uid.ExplicitVRLittleEndian,
        uid.ExplicitVRBigEndian,
        uid.DeflatedExplicitVRLittleEndian,
    }
)


@dataclass(frozen=True)
class FrameSpec:
    """How one frame handed to an encoder is laid out (after coercion to what the codec carries)."""

    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str  # the Photometric Interpretation written for the compressed data


Encoder = Callable[[np.ndarray, FrameSpec, "int | None"], bytes]
DEFAULT_QUALITY = 90  # --quality when not given (libjpeg-turbo quality scale; see j2k_compression_ratio)


@dataclass(frozen=True)
class Codec:
    """One ``--compress`` choice: its transfer syntax and the pixel data it can carry (PS3.5 8.2)."""

    name: str
    transfer_syntax: uid.UID
    lossy: bool
    bits_stored: tuple[int, int] = (1, 16)  # smallest and largest Bits Stored the codec encodes
    signed: bool = True  # carries Pixel Representation 1 as is (JPEG does not: B.1 coerces it to 0)
    samples_per_pixel: tuple[int, ...] = (1, 3)
    colour_photometric: str = "RGB"  # Photometric Interpretation written for RGB input (seed App B.1)
    method: str = ""  # Lossy Image Compression Method (0028,2114) for lossy codecs (PS3.3 C.7.6.1.1.5.1)
    encode: Encoder | None = None

    def photometric_for(self, photometric: str) -> str:
        """Photometric Interpretation of the compressed data for a given native one (seed App B.1)."""
        if photometric.startswith("MONOCHROME"):
            return photometric
        return self.colour_photometric

    def bits_allocated_for(self, bits_stored: int) -> int:
        """Bits Allocated carrying ``bits_stored`` bits (8, 16 or 32: PS3.5 8.2 tables)."""
        return 8 if bits_stored <= 8 else 16 if bits_stored <= 16 else 32

    def why_not(self, bits_allocated: int, bits_stored: int, samples_per_pixel: int) -> str | None:
        """Why this codec cannot carry such pixel data (None when it can, maybe after rescaling)."""
        if self.name == "none":
            return None
        if bits_allocated == 1:
            return f"{self.name} cannot carry 1-bit (bit-packed) pixel data"
        if samples_per_pixel not in self.samples_per_pixel:
            return f"{self.name} cannot carry {samples_per_pixel} samples per pixel"
        # Lossy DCT JPEG squeezes up to 16 bits into 8/12 (rescaled); everything else keeps the depth.
        limit = 16 if self.lossy and self.bits_stored[1] < 16 else self.bits_stored[1]
        if bits_stored > limit:
            return f"{self.name} carries at most {limit} bits stored, this data has {bits_stored}"
        if bits_allocated > 32:
            return f"{self.name} cannot carry {bits_allocated}-bit pixel data"
        return None


def _pydicom_encoder(codec_uid: str) -> Encoder:
    """An encoder calling pydicom's encoding plugin for one frame (pylibjpeg-rle / -openjpeg)."""

    def encode(frame: np.ndarray, spec: FrameSpec, quality: int | None) -> bytes:
        if codec_uid in (uid.JPEG2000Lossless, uid.JPEG2000) and min(spec.rows, spec.columns) < J2K_MIN_SIDE:
            return _small_j2k(frame, lossless=codec_uid == uid.JPEG2000Lossless)
        options = {
            "rows": spec.rows,
            "columns": spec.columns,
            "samples_per_pixel": spec.samples_per_pixel,
            "bits_allocated": spec.bits_allocated,
            "bits_stored": spec.bits_stored,
            "pixel_representation": int(spec.signed),
            "photometric_interpretation": spec.photometric,
            "number_of_frames": 1,
            "planar_configuration": 0,
        }
        if codec_uid == uid.JPEG2000:
            options["j2k_cr"] = [j2k_compression_ratio(quality)]
        if codec_uid == uid.RLELossless:
            # PS3.5 G.2: RLE segments are byte planes of little-endian ordered samples
            options["byteorder"] = "<"
        return bytes(get_encoder(codec_uid).encode(frame, encoding_plugin="pylibjpeg", **options))

    return encode


# pylibjpeg-openjpeg always uses 6 DWT resolutions, which needs 2**5 pixels on each side (ISO 15444-1 B.5).
J2K_MIN_SIDE = 32


def _small_j2k(frame: np.ndarray, *, lossless: bool) -> bytes:
    """JPEG 2000 codestream of an image too small for 6 resolutions (openjpeg through imagecodecs)."""
    resolutions = max(1, min(6, int(np.log2(min(frame.shape[:2]))) + 1))
    return bytes(
        imagecodecs.jpeg2k_encode(
            frame, codecformat=imagecodecs.JPEG2K.CODEC.J2K, reversible=lossless, resolutions=resolutions, mct=True
        )
    )


def j2k_compression_ratio(quality: int | None) -> float:
    """``--quality`` 1-100 as the JPEG 2000 target compression ratio: 100 -> 2:1, 90 -> 4.5:1, 1 -> 27:1."""
    q = DEFAULT_QUALITY if quality is None else quality
    return 2.0 + (100 - q) / 4.0


def _jpeg_lossless_encoder(predictor: int) -> Encoder:
    """Lossless JPEG (ITU T.81 process 14, SOF3) with this predictor, by libjpeg-turbo."""

    def encode(frame: np.ndarray, spec: FrameSpec, quality: int | None) -> bytes:
        return bytes(
            imagecodecs.jpeg8_encode(
                frame,
                lossless=True,
                predictor=predictor,
                bitspersample=max(spec.bits_stored, 2),
                colorspace="RGB" if spec.samples_per_pixel == 3 else None,
                outcolorspace="RGB" if spec.samples_per_pixel == 3 else None,
            )
        )

    return encode


def _jpeg_lossy_encoder(frame: np.ndarray, spec: FrameSpec, quality: int | None) -> bytes:
    """DCT JPEG: baseline (8-bit, SOF0) or extended (12-bit, SOF1); colour as YCbCr 4:2:2 (YBR_FULL_422)."""
    level = DEFAULT_QUALITY if quality is None else quality
    if spec.samples_per_pixel == 3:
        return bytes(
            imagecodecs.jpeg8_encode(frame, level=level, colorspace="RGB", outcolorspace="YCbCr", subsampling="422")
        )
    return bytes(imagecodecs.jpeg8_encode(frame, level=level, bitspersample=8 if spec.bits_stored <= 8 else 12))


CODECS: dict[str, Codec] = {
    codec.name: codec
    for codec in (
        Codec("none", uid.ExplicitVRLittleEndian, lossy=False, bits_stored=(1, 64), samples_per_pixel=(1, 2, 3, 4)),
        Codec("rle", uid.RLELossless, lossy=False, encode=_pydicom_encoder(uid.RLELossless)),
        Codec(
            "jpeg-lossless",
            uid.JPEGLossless,
            lossy=False,
            bits_stored=(2, 16),
            signed=False,
            encode=_jpeg_lossless_encoder(7),
        ),
        Codec(
            "jpeg-lossless-sv1",
            uid.JPEGLosslessSV1,
            lossy=False,
            bits_stored=(2, 16),
            signed=False,
            encode=_jpeg_lossless_encoder(1),
        ),
        Codec(
            "jpeg-baseline",
            uid.JPEGBaseline8Bit,
            lossy=True,
            bits_stored=(8, 8),
            signed=False,
            colour_photometric="YBR_FULL_422",
            method="ISO_10918_1",
            encode=_jpeg_lossy_encoder,
        ),
        Codec(
            "jpeg-extended",
            uid.JPEGExtended12Bit,
            lossy=True,
            bits_stored=(8, 12),
            signed=False,
            colour_photometric="YBR_FULL_422",
            method="ISO_10918_1",
            encode=_jpeg_lossy_encoder,
        ),
        Codec(
            "j2k-lossless",
            uid.JPEG2000Lossless,
            lossy=False,
            bits_stored=(1, 24),
            colour_photometric="YBR_RCT",
            encode=_pydicom_encoder(uid.JPEG2000Lossless),
        ),
        Codec(
            "j2k",
            uid.JPEG2000,
            lossy=True,
            bits_stored=(1, 24),
            colour_photometric="YBR_ICT",
            method="ISO_15444_1",
            encode=_pydicom_encoder(uid.JPEG2000),
        ),
    )
}


def codec_for_transfer_syntax(transfer_syntax_uid: str) -> Codec | None:
    """The codec writing this transfer syntax, or None (JPEG-LS, HTJ2K, ... are read, never written)."""
    return next((c for c in CODECS.values() if c.transfer_syntax == transfer_syntax_uid), None)


def can_decode(transfer_syntax_uid: str) -> bool:
    """True when pydicom and the installed plugins can decode pixel data in this transfer syntax."""
    if transfer_syntax_uid in NATIVE_SYNTAXES:
        return True
    try:
        return get_decoder(transfer_syntax_uid).is_available
    except NotImplementedError:
        return False
