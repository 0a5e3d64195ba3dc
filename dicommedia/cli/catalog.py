"""``dicommedia catalog`` (SPEC 2.4): which volume holds a study, a patient, an accession number."""

from __future__ import annotations

from pathlib import Path

import click

from dicommedia.cli.render import emit_json, fail


@click.command()
@click.option(
    "--catalog",
    "location",
    default="catalog.sqlite",
    show_default=True,
    help="A SQLite file (a node writes OUTPUT/catalog.sqlite) or a postgresql:// URL.",
)
@click.option("--study-uid", multiple=True, help="Volumes holding this study (repeatable).")
@click.option("--patient-id", multiple=True, help="Volumes holding this patient (repeatable).")
@click.option("--accession", multiple=True, help="Volumes holding this accession number (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="The answer as JSON.")
def catalog(
    location: str, study_uid: tuple[str, ...], patient_id: tuple[str, ...], accession: tuple[str, ...], as_json: bool
) -> None:
    """Which volume holds what: the catalog a node (or several sharing one database) keeps."""
    from dicommedia.catalog import open_catalog

    if "://" not in location and not Path(location).is_file():
        fail(f"{location}: no catalog there (a node writes OUTPUT/catalog.sqlite; give --catalog)")
    db = open_catalog(location)
    try:
        volumes = db.find(study_uid, patient_id, accession)
    finally:
        db.close()
    if as_json:
        emit_json({"volumes": [v.as_json() for v in volumes]})
    for v in volumes:
        click.echo(f"{v.path}  File-set {v.fileset_id}  {v.created:%Y-%m-%d %H:%M}  {v.label}", err=as_json)
        for s in v.studies:
            click.echo(
                f"    study {s.study_instance_uid}  patient {s.patient_id}  accession {s.accession_number or '-'}"
                f"  {s.instances} instance(s)",
                err=as_json,
            )
    if not volumes:
        asked = study_uid or patient_id or accession
        click.echo("no volume holds what was asked" if asked else "the catalog holds no volume", err=True)
        raise SystemExit(1)
