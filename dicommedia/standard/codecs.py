"""What each ``--compress`` choice writes: its transfer syntax (PS3.5 Annex A/8.2) and whether it is lossy.

Planning needs only these facts; the encoders that produce the bytes live in ``transforms/codecs.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dicommedia.standard.uids import EXPLICIT_VR_LE


@dataclass(frozen=True)
class CodecFacts:
    """A codec's transfer syntax and whether its output is lossy (seed App B.2 then applies)."""

    transfer_syntax: str
    lossy: bool


CODEC_FACTS: dict[str, CodecFacts] = {
    "none": CodecFacts(EXPLICIT_VR_LE, False),
    "rle": CodecFacts("1.2.840.10008.1.2.5", False),
    "jpeg-lossless": CodecFacts("1.2.840.10008.1.2.4.57", False),  # process 14
    "jpeg-lossless-sv1": CodecFacts("1.2.840.10008.1.2.4.70", False),  # process 14, selection value 1
    "jpeg-baseline": CodecFacts("1.2.840.10008.1.2.4.50", True),  # process 1
    "jpeg-extended": CodecFacts("1.2.840.10008.1.2.4.51", True),  # processes 2 and 4
    "j2k-lossless": CodecFacts("1.2.840.10008.1.2.4.90", False),
    "j2k": CodecFacts("1.2.840.10008.1.2.4.91", True),
}
