"""The Part 10 byte layer (PS3.10 7, PS3.5 7): reading and writing elements, every length bounded.

Every failure is a typed :class:`Part10Error` (``Truncated`` or ``Malformed``) that callers turn into a finding.
"""

from dicommedia.part10.errors import Malformed, Part10Error, Truncated
from dicommedia.part10.meta import has_dicm, has_prefix, read_file_meta

__all__ = ["Malformed", "Part10Error", "Truncated", "has_dicm", "has_prefix", "read_file_meta"]
