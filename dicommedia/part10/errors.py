"""Typed failures of the Part 10 byte layer: callers turn them into findings or one-line causes."""

from __future__ import annotations


class Part10Error(ValueError):
    """The bytes do not follow PS3.10 / PS3.5 where the reader expected them to: the cause, in one line."""


class Truncated(Part10Error):
    """The data ends, or a length runs, past what its structure promises."""


class Malformed(Part10Error):
    """The structure is broken: no VR, a delimiter out of place, nesting beyond reason."""
