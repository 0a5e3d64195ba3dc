"""The catalog's tables: volumes, the studies on each, the series of each study."""

from __future__ import annotations

import datetime as _dt

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """Declarative base of the catalog's models."""


class Volume(Base):
    """One written volume (an ISO image or a folder): one File-set."""

    __tablename__ = "volume"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(4096), unique=True)
    fileset_id: Mapped[str] = mapped_column(String(16), index=True)
    label: Mapped[str] = mapped_column(String(256), default="")
    media: Mapped[str] = mapped_column(String(32), default="")
    profile: Mapped[str] = mapped_column(String(64), default="")
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    node: Mapped[str] = mapped_column(String(256), default="")
    created: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True))
    studies: Mapped[list[Study]] = relationship(back_populates="volume", cascade="all, delete-orphan")


class Study(Base):
    """A study as written on one volume."""

    __tablename__ = "study"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    volume_id: Mapped[int] = mapped_column(ForeignKey("volume.id", ondelete="CASCADE"), index=True)
    study_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    patient_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    patient_name: Mapped[str] = mapped_column(String(324), default="")
    accession_number: Mapped[str] = mapped_column(String(16), default="", index=True)
    study_date: Mapped[str] = mapped_column(String(8), default="")
    instances: Mapped[int] = mapped_column(Integer, default=0)
    volume: Mapped[Volume] = relationship(back_populates="studies")
    series: Mapped[list[Series]] = relationship(back_populates="study", cascade="all, delete-orphan")


class Series(Base):
    """A series of a study on one volume."""

    __tablename__ = "series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    series_instance_uid: Mapped[str] = mapped_column(String(64))
    modality: Mapped[str] = mapped_column(String(16), default="")
    instances: Mapped[int] = mapped_column(Integer, default=0)
    study: Mapped[Study] = relationship(back_populates="series")
