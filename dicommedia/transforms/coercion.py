"""Tag coercion on compression, exactly as the seed's Appendix B.1 (every compression) and B.2 (lossy)."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.valuerep import DSfloat

from dicommedia import __version__

# Seed App B.1: dropped when PALETTE COLOR is expanded to RGB; PS3.3 C.7.6.3 adds the LUT UID and segmented data.
PALETTE_KEYWORDS = (
    "RedPaletteColorLookupTableDescriptor",
    "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor",
    "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData",
    "PaletteColorLookupTableUID",
    "SegmentedRedPaletteColorLookupTableData",
    "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData",
)
# Attributes holding stored pixel values (US or SS by Pixel Representation, PS3.3 C.7.6.3 / C.7.6.1).
STORED_VALUE_KEYWORDS = (
    "SmallestImagePixelValue",
    "LargestImagePixelValue",
    "SmallestPixelValueInSeries",
    "LargestPixelValueInSeries",
    "PixelPaddingValue",
    "PixelPaddingRangeLimit",
)
DRS_PREFIX = "DRS:"
DERIVATION_DESCRIPTION_MAX = 1024  # ST, PS3.5 6.2

# Seed App B.2 second table: the exact coded items, with their context group extras.
UNCOMPRESSED_PREDECESSOR = ("121320", "DCM", "Uncompressed predecessor", "7202")
LOSSY_COMPRESSION = ("113040", "DCM", "Lossy Compression", "7203")


@dataclass(frozen=True)
class PixelModule:
    """Image Pixel attributes written for compressed data (seed App B.1)."""

    samples_per_pixel: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    signed: bool


@dataclass(frozen=True)
class StoredValueMap:
    """``written = (stored - low) / scale``: how stored values move so the codec can carry them.

    ``scale == 1`` is an exact shift (lossless); a larger scale squeezes the range into fewer bits (lossy).
    Rescale Intercept/Slope follow so the Modality LUT output is unchanged (seed App B.2, Rescale rows).
    """

    low: float = 0.0
    scale: float = 1.0

    @property
    def is_identity(self) -> bool:
        """True when stored values are written unchanged."""
        return self.low == 0 and self.scale == 1

    def forward(self, value: float) -> int:
        """The written value for a stored value."""
        return int(round((value - self.low) / self.scale))


def code_item(code: tuple[str, str, str, str]) -> Dataset:
    """A code sequence item with the seed's context group extras (DCMR, version 20020904, extension N)."""
    value, scheme, meaning, context = code
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    item.ContextIdentifier = context
    item.MappingResource = "DCMR"
    item.ContextGroupVersion = "20020904"
    item.ContextGroupExtensionFlag = "N"
    return item


def coerce_pixel_module(ds: Dataset, pixel: PixelModule) -> None:
    """Seed App B.1: samples, photometric, planar configuration, bits and pixel representation; palette dropped."""
    if ds.get("PhotometricInterpretation") == "PALETTE COLOR" and pixel.photometric != "PALETTE COLOR":
        for keyword in PALETTE_KEYWORDS:
            ds.pop(keyword, None)
    ds.SamplesPerPixel = pixel.samples_per_pixel
    ds.PhotometricInterpretation = pixel.photometric
    if pixel.samples_per_pixel > 1:
        ds.PlanarConfiguration = 0
    else:
        ds.pop("PlanarConfiguration", None)
    ds.BitsAllocated = pixel.bits_allocated
    ds.BitsStored = pixel.bits_stored
    ds.HighBit = pixel.bits_stored - 1
    ds.PixelRepresentation = int(pixel.signed)


def _set_stored_value(item: Dataset, keyword: str, value: int, signed: bool) -> None:
    """Set a US-or-SS attribute to ``value`` with the VR the new Pixel Representation calls for."""
    item[keyword].value = value
    item[keyword].VR = "SS" if signed else "US"


def _rescale_items(ds: Dataset) -> list[Dataset]:
    """Where Rescale Intercept/Slope live: the data set, or the Pixel Value Transformation functional groups."""
    items = [ds] if "RescaleIntercept" in ds else []
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for group in ds.get(groups, []):
            items += [t for t in group.get("PixelValueTransformationSequence", []) if "RescaleIntercept" in t]
    return items


def _ds(value: float) -> DSfloat:
    """A DS value of at most 16 characters."""
    return DSfloat(value, auto_format=True)


def coerce_stored_values(ds: Dataset, vmap: StoredValueMap, signed: bool, rescale_type: str = "US") -> None:
    """Move every stored-value attribute along ``vmap`` and coerce Rescale so the Modality LUT output is kept.

    Seed App B.2 (Rescale rows): JPEG needs unsigned data of at most 8/12/16 bits; Rescale Intercept/Slope are
    coerced so "the logical range of the output of the Modality LUT" is unchanged and VOI needs no change.
    """
    for keyword in STORED_VALUE_KEYWORDS:
        if keyword in ds and ds[keyword].value is not None:
            _set_stored_value(ds, keyword, vmap.forward(ds[keyword].value), signed)
    if "ModalityLUTSequence" in ds:
        for lut in ds.ModalityLUTSequence:
            descriptor = list(lut.LUTDescriptor)
            descriptor[1] = vmap.forward(descriptor[1])
            lut.LUTDescriptor = descriptor
            lut["LUTDescriptor"].VR = "SS" if signed else "US"  # PS3.3 C.11.1.1.1: first value mapped follows PR
    for mapping in ds.get("RealWorldValueMappingSequence", []):
        for keyword in ("RealWorldValueFirstValueMapped", "RealWorldValueLastValueMapped"):
            if keyword in mapping:
                _set_stored_value(mapping, keyword, vmap.forward(mapping[keyword].value), signed)
        if "RealWorldValueIntercept" in mapping:
            slope = float(mapping.RealWorldValueSlope)
            mapping.RealWorldValueIntercept = float(mapping.RealWorldValueIntercept) + slope * vmap.low
            mapping.RealWorldValueSlope = slope * vmap.scale
    if vmap.is_identity:
        return
    items = _rescale_items(ds)
    if not items and "ModalityLUTSequence" not in ds:
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        if ds.get("Modality") != "CT":
            ds.RescaleType = rescale_type  # PS3.3 C.11.1: Type 1C once Rescale Intercept is present
        items = [ds]
    for item in items:
        slope = float(item.get("RescaleSlope", 1))
        item.RescaleIntercept = _ds(float(item.RescaleIntercept) + slope * vmap.low)
        item.RescaleSlope = _ds(slope * vmap.scale)


def drop_modality_lut(ds: Dataset) -> str:
    """Seed App B.2: the Modality LUT Sequence, once applied to the pixels, is removed; returns its LUT Type."""
    lut_type = "US"
    if "ModalityLUTSequence" in ds:
        lut_type = str(ds.ModalityLUTSequence[0].get("ModalityLUTType", "US")) or "US"
        del ds.ModalityLUTSequence
    return lut_type


def derivation_line(method: str, ratio: float) -> str:
    """The DRS: history line for a lossy compression."""
    return f"{DRS_PREFIX} lossy compression {method} ratio {ratio:.2f}:1 by dicommedia {__version__}"


def coerce_lossy(ds: Dataset, *, method: str, ratio: float, new_sop_instance_uid: str) -> None:
    """Seed App B.2: the attributes every lossy compression coerces or adds (R51-R62)."""
    source_class, source_instance = ds.SOPClassUID, ds.SOPInstanceUID

    image_type = list(ds.get("ImageType") or []) or ["DERIVED", "SECONDARY"]
    image_type[0] = "DERIVED"
    ds.ImageType = image_type if len(image_type) > 1 else image_type + ["SECONDARY"]
    for item in _frame_type_items(ds):  # enhanced objects: Frame Type value 1 follows (PS3.3 C.8.16.1)
        item.FrameType = ["DERIVED", *list(item.FrameType)[1:]]

    ds.SOPInstanceUID = new_sop_instance_uid
    if getattr(ds, "file_meta", None) is not None:
        ds.file_meta.MediaStorageSOPInstanceUID = new_sop_instance_uid

    # R53: a DRS: line prefixed; it ends with a newline only when there was a previous description.
    old = str(ds.get("DerivationDescription") or "")
    line = derivation_line(method, ratio)
    ds.DerivationDescription = (line + "\n" + old if old else line)[:DERIVATION_DESCRIPTION_MAX]

    # R54-R56: items appended to existing sequences, sequences created when absent.
    source = Dataset()
    source.ReferencedSOPClassUID = source_class
    source.ReferencedSOPInstanceUID = source_instance
    source.PurposeOfReferenceCodeSequence = Sequence([code_item(UNCOMPRESSED_PREDECESSOR)])
    _append_item(ds, "SourceImageSequence", source)
    _append_item(ds, "DerivationCodeSequence", code_item(LOSSY_COMPRESSION))

    add_lossy_step(ds, method, ratio)  # R60-R62

    # R58, R59: padding dropped; series (and image) extremes cannot be recomputed from one lossy instance.
    for keyword in STORED_VALUE_KEYWORDS:
        ds.pop(keyword, None)


def add_lossy_step(ds: Dataset, method: str, ratio: float) -> None:
    """PS3.3 C.7.6.1.1.5: once lossy, always lossy; the ratio and method lists grow in step, one per step."""
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = _multi(ds, "LossyImageCompressionRatio") + [_ds(round(ratio, 2))]
    ds.LossyImageCompressionMethod = _multi(ds, "LossyImageCompressionMethod") + [method]


def _frame_type_items(ds: Dataset) -> list[Dataset]:
    """The ``*FrameTypeSequence`` items of the shared and per-frame functional groups that hold a Frame Type."""
    items = []
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for group in ds.get(groups, []):
            for element in group:
                if element.VR == "SQ" and element.keyword.endswith("FrameTypeSequence"):
                    items += [item for item in element.value if item.get("FrameType")]
    return items


def _append_item(ds: Dataset, keyword: str, item: Dataset) -> None:
    """Append ``item`` to the sequence ``keyword``, creating it if absent (seed App B.2)."""
    if keyword in ds and ds[keyword].value is not None:
        ds[keyword].value.append(item)
    else:
        setattr(ds, keyword, Sequence([item]))


def _multi(ds: Dataset, keyword: str) -> list:
    """The values of a possibly multi-valued attribute as a list (empty when absent)."""
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    return list(value) if not isinstance(value, str | float | int) else [value]
