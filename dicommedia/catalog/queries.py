"""Open a catalog (migrating it to the current schema), record a written volume, answer "which disc holds it"."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, create_engine, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from dicommedia.catalog.models import Series, Study, Volume
from dicommedia.errors import MediaError

_MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class SeriesOnVolume:
    """A series as written on a volume."""

    series_instance_uid: str
    modality: str
    instances: int


@dataclass
class StudyOnVolume:
    """A study as written on a volume, with its series."""

    study_instance_uid: str
    patient_id: str = ""
    patient_name: str = ""
    accession_number: str = ""
    study_date: str = ""
    instances: int = 0
    series: list[SeriesOnVolume] = field(default_factory=list)


@dataclass
class VolumeEntry:
    """A written volume and what is on it."""

    path: str
    fileset_id: str
    label: str = ""
    media: str = ""
    profile: str = ""
    sha256: str | None = None
    bytes: int = 0
    node: str = ""
    created: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.UTC))
    studies: list[StudyOnVolume] = field(default_factory=list)

    def as_json(self) -> dict:
        """The SPEC 2.4 catalog JSON of one volume (with the extra fields a reader may want)."""
        return {
            "path": self.path,
            "fileset_id": self.fileset_id,
            "label": self.label,
            "created": self.created.isoformat(),
            "media": self.media,
            "profile": self.profile,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "node": self.node,
            "studies": [
                {
                    "study_instance_uid": s.study_instance_uid,
                    "patient_id": s.patient_id,
                    "patient_name": s.patient_name,
                    "accession_number": s.accession_number,
                    "study_date": s.study_date,
                    "instances": s.instances,
                    "series": [vars(se) for se in s.series],
                }
                for s in self.studies
            ],
        }


def catalog_url(value: str | Path) -> str:
    """A SQLAlchemy URL: PostgreSQL through psycopg for ``postgresql://``, SQLite for a file path."""
    text = str(value)
    for scheme in ("postgresql://", "postgres://"):
        if text.startswith(scheme):
            return "postgresql+psycopg://" + text[len(scheme) :]
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).resolve()}"


def _migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision shipped in the package (Alembic)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_catalog(value: str | Path) -> Catalog:
    """Open (and create or migrate) the catalog at a path or URL; a one-line error when it cannot be."""
    url = catalog_url(value)
    try:
        engine = create_engine(url)
        _migrate(engine)
    except (SQLAlchemyError, OSError, ImportError) as exc:
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MediaError(f"cannot open the catalog: {cause}", str(value)) from None
    return Catalog(engine)


def _entry(volume: Volume, studies: list[Study]) -> VolumeEntry:
    created = volume.created if volume.created.tzinfo else volume.created.replace(tzinfo=_dt.UTC)
    return VolumeEntry(
        path=volume.path,
        fileset_id=volume.fileset_id,
        label=volume.label,
        media=volume.media,
        profile=volume.profile,
        sha256=volume.sha256,
        bytes=volume.bytes,
        node=volume.node,
        created=created,
        studies=[
            StudyOnVolume(
                s.study_instance_uid,
                s.patient_id,
                s.patient_name,
                s.accession_number,
                s.study_date,
                s.instances,
                [SeriesOnVolume(se.series_instance_uid, se.modality, se.instances) for se in s.series],
            )
            for s in studies
        ],
    )


class Catalog:
    """The catalog database."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def record(self, entry: VolumeEntry) -> None:
        """Record a written volume; a volume written again at the same path replaces the old entry."""
        with Session(self.engine) as session, session.begin():
            for old in session.scalars(select(Volume).where(Volume.path == entry.path)):
                session.delete(old)  # the ORM cascade: SQLite does not enforce ON DELETE by default
            session.flush()
            volume = Volume(
                path=entry.path,
                fileset_id=entry.fileset_id,
                label=entry.label,
                media=entry.media,
                profile=entry.profile,
                sha256=entry.sha256,
                bytes=entry.bytes,
                node=entry.node,
                created=entry.created,
            )
            for s in entry.studies:
                study = Study(
                    study_instance_uid=s.study_instance_uid,
                    patient_id=s.patient_id,
                    patient_name=s.patient_name,
                    accession_number=s.accession_number,
                    study_date=s.study_date,
                    instances=s.instances,
                )
                study.series = [
                    Series(series_instance_uid=se.series_instance_uid, modality=se.modality, instances=se.instances)
                    for se in s.series
                ]
                volume.studies.append(study)
            session.add(volume)

    def find(
        self, study_uids: tuple[str, ...] = (), patient_ids: tuple[str, ...] = (), accessions: tuple[str, ...] = ()
    ) -> list[VolumeEntry]:
        """Volumes holding any of the given studies, patients or accession numbers (all volumes when none given);
        each lists only the studies that matched."""
        conditions = []
        if study_uids:
            conditions.append(Study.study_instance_uid.in_(study_uids))
        if patient_ids:
            conditions.append(Study.patient_id.in_(patient_ids))
        if accessions:
            conditions.append(Study.accession_number.in_(accessions))
        query = select(Study).options(selectinload(Study.series), selectinload(Study.volume))
        if conditions:
            query = query.where(or_(*conditions))
        with Session(self.engine) as session:
            by_volume: dict[int, tuple[Volume, list[Study]]] = {}
            for study in session.scalars(query.order_by(Study.volume_id, Study.id)):
                by_volume.setdefault(study.volume_id, (study.volume, []))[1].append(study)
            if not conditions:  # volumes with no study at all still exist
                for volume in session.scalars(select(Volume)):
                    by_volume.setdefault(volume.id, (volume, []))
            return [_entry(v, s) for _, (v, s) in sorted(by_volume.items())]

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()
