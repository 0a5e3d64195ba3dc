"""Burning disc images through xorriso (libburnia): medium checks, copies, read-back verification."""
