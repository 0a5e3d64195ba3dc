"""The media view: one read-only API over ISO images, mounted discs, DICOMDIRs and scanned folders.

``open_media(path)`` returns a :class:`MediaView`; ``view.files()`` yields :class:`MediaFile` objects.
Nothing outside the media is ever listed or opened: File IDs that leave it are refused and reported.
"""

from dicommedia.media.findings import Finding
from dicommedia.media.view import MediaFile, MediaView, open_media

__all__ = ["Finding", "MediaFile", "MediaView", "open_media"]
