"""Progress callbacks: the library reports stages and steps, the CLI draws them (or not)."""

from __future__ import annotations


class Progress:
    """Progress callbacks the CLI renders; this default does nothing."""

    def stage(self, name: str, total: int | None) -> None:
        """A new stage begins, with ``total`` steps (None when unknown)."""

    def advance(self, steps: int = 1) -> None:
        """Steps done in the current stage."""
