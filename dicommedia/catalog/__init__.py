"""The catalog of written volumes: which disc holds which patient, study and series (SQLite or PostgreSQL)."""

from dicommedia.catalog.queries import Catalog, StudyOnVolume, VolumeEntry, catalog_url, open_catalog

__all__ = ["Catalog", "StudyOnVolume", "VolumeEntry", "catalog_url", "open_catalog"]
