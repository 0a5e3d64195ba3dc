"""``dicommedia create INPUT... -o OUTPUT`` (SPEC 2.1): parse options, run the creator, render the summary."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dicommedia.cli.render import emit_json, err_console, fail
from dicommedia.create import CreateOptions, CreateResult, RefusedInputs, create_fileset
from dicommedia.errors import MediaError
from dicommedia.profile import MEDIA_CAPACITY, load_profile, load_profile_file
from dicommedia.progress import Progress as CreateProgress
from dicommedia.writers.pdi import Maker
from dicommedia.writers.web.content import WEB_MODES, PdiRequest
from dicommedia.writers.web.viewer import viewer_files

if TYPE_CHECKING:
    from rich.progress import Progress

CODEC_CHOICES = [
    "keep",
    "none",
    "rle",
    "jpeg-lossless",
    "jpeg-lossless-sv1",
    "jpeg-baseline",
    "jpeg-extended",
    "j2k-lossless",
    "j2k",
]
_SC_FIELDS = (
    "patient_name",
    "patient_id",
    "patient_birth_date",
    "patient_sex",
    "study_description",
    "accession_number",
)


class _RichProgress(CreateProgress):
    """Renders the creator's stages as rich progress bars on stderr."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task = None

    def stage(self, name: str, total: int | None) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[self.task].total or 0)
        self.task = self.progress.add_task(name, total=total)

    def advance(self, steps: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, steps)


@contextlib.contextmanager
def _progress():
    """Progress bars on a terminal; nothing (and no rich import) when stderr is a pipe or a file."""
    if not sys.stderr.isatty():
        yield CreateProgress()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console.console,
        transient=True,
    ) as bar:
        yield _RichProgress(bar)


def _parse_compress_for(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for value in values:
        modality, _, codec = value.partition("=")
        if not modality or codec not in CODEC_CHOICES:
            raise click.BadParameter(
                f"{value!r}: expected MODALITY=CODEC with CODEC one of {', '.join(CODEC_CHOICES)}",
                param_hint="--compress-for",
            )
        out[modality.strip().upper()] = codec
    return out


def _sc_metadata(path: str | None, given: dict[str, str | None]) -> dict[str, str]:
    meta: dict[str, str] = {}
    if path:
        try:
            loaded = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MediaError(f"cannot read the metadata JSON: {exc}", path) from None
        if not isinstance(loaded, dict):
            raise MediaError("the metadata JSON must be an object", path)
        unknown = set(loaded) - set(_SC_FIELDS)
        if unknown:
            raise MediaError(f"unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(_SC_FIELDS)}", path)
        meta.update({k: str(v) for k, v in loaded.items()})
    meta.update({k: v for k, v in given.items() if v})
    return meta


def _say(label: str, colour: str, text: str) -> None:
    """One line on stderr, its label coloured on a terminal (plain click: no rich import for a summary)."""
    click.echo(click.style(label, fg=colour) + " " + text if label else text, err=True)


def _render_summary(result: CreateResult) -> None:
    for warning in result.warnings:
        _say("warning:", "yellow", warning)
    for path, reason in result.skipped:
        _say("left out:", "yellow", f"{path}: {reason}")
    for vol in result.volumes:
        capacity = "no limit" if vol.capacity_bytes is None else f"{vol.bytes / vol.capacity_bytes:.0%} of {vol.media}"
        _say(
            "wrote",
            "green",
            f"{vol.path}: File-set {vol.fileset_id}, {vol.instances} instance(s), "
            f"{vol.bytes / 1e6:,.1f} MB ({capacity}), profile {vol.profile}",
        )
        if vol.label_files:
            _say("label", "green", ", ".join(vol.label_files))
    _say(
        "",
        "",
        f"{result.converted} converted, {result.transcoded} transcoded, {result.duplicates} duplicate(s) "
        f"written once, {len(result.skipped)} left out",
    )


def _retrieve_source(
    from_peer: str | None,
    study_uids: tuple[str, ...],
    patient_id: str | None,
    accessions: tuple[str, ...],
    move_dest: str | None,
    move_port: int,
):  # type: ignore[no-untyped-def]
    """The --from input (inputs/retrieve.py), or None; --patient-id is then a query key as well."""
    if not from_peer:
        if study_uids or accessions or move_dest:
            raise click.UsageError("--study-uid, --accession and --move-dest go with --from")
        return None
    from dicommedia.inputs.retrieve import Query, RetrieveSource
    from dicommedia.read.send import Peer

    try:
        peer = Peer.parse(from_peer)
    except MediaError:
        raise click.BadParameter(f"{from_peer!r} is not AET@HOST:PORT", param_hint="--from") from None
    query = Query(study_uids, (patient_id,) if patient_id else (), accessions)
    if not query.identifiers():
        raise click.UsageError("--from needs --study-uid, --patient-id or --accession")
    return RetrieveSource(peer, query, move_dest=move_dest, move_port=move_port)


@click.command()
# Inputs are checked by the creator, not by click: a missing or unreadable one is named and skippable (exit 1).
@click.argument("inputs", nargs=-1, type=click.Path(readable=False))
@click.option("-o", "--output", required=True, type=click.Path(), help="X.iso, or a folder with --format dir.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["iso", "dir"]),
    default="iso",
    show_default=True,
    help="Write an ISO 9660 image or a folder.",
)
@click.option(
    "-p",
    "--profile",
    "profile_name",
    default="STD-GEN-CD",
    show_default=True,
    help="Media application profile (see `dicommedia profiles`).",
)
@click.option(
    "--profile-file", type=click.Path(exists=True, dir_okay=False), help="A custom profile definition (TOML)."
)
@click.option("--media", type=click.Choice(list(MEDIA_CAPACITY)), help="Media capacity (default: the profile's).")
@click.option("--fileset-id", help="File-set ID and ISO Volume Identifier (1-16 of A-Z 0-9 _).")
@click.option(
    "--compress", type=click.Choice(CODEC_CHOICES), default="keep", show_default=True, help="Pixel data encoding."
)
@click.option("--compress-for", multiple=True, metavar="MODALITY=CODEC", help="Per-modality encoding (repeatable).")
@click.option("--quality", type=click.IntRange(1, 100), help="Lossy quality, 1-100.")
@click.option("--patient-name", help="Patient's Name for converted pictures/PDFs.")
@click.option("--patient-id", help="Patient ID for converted pictures/PDFs.")
@click.option("--patient-birth-date", help="Birth date (YYYYMMDD) for converted pictures/PDFs.")
@click.option("--patient-sex", type=click.Choice(["M", "F", "O"]), help="Sex for converted pictures/PDFs.")
@click.option("--study-description", help="Study Description for converted pictures/PDFs.")
@click.option("--accession-number", help="Accession Number for converted pictures/PDFs.")
@click.option("--sc-metadata", type=click.Path(exists=True, dir_okay=False), help="JSON file with the fields above.")
@click.option("--span", is_flag=True, help="Write as many volumes as needed (X_1.iso, X_2.iso, ...).")
@click.option("--skip-invalid", is_flag=True, help="Leave out unusable inputs (listed) instead of refusing the job.")
@click.option("--fix-uids", is_flag=True, help="Give new UIDs to a different object reusing a SOP Instance UID.")
@click.option("--no-ihe-pdi", is_flag=True, help="Leave out README.TXT and INDEX.HTM.")
@click.option(
    "--web",
    type=click.Choice(WEB_MODES),
    default="key",
    show_default=True,
    help="IHE PDI web content: JPEGs of every image, a bounded set per series, or none.",
)
@click.option(
    "--viewer",
    type=click.Path(exists=True, file_okay=False),
    help="A portable viewer folder to copy into VIEWER/ (8.3 names), linked from INDEX.HTM.",
)
@click.option("--institution", default="", help="Who made the disc (README.TXT, label).")
@click.option("--contact", default="", help="How to reach them (README.TXT).")
@click.option(
    "-j", "--jobs", type=click.IntRange(1, 256), help="Worker processes for transcoding (default: all cores)."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("--udf/--no-udf", default=None, help="Add a UDF bridge to the image (default: DVD and BD profiles).")
@click.option("--label", is_flag=True, help="Also write each disc's label: X.label.json and X.label.pdf.")
@click.option("--burn", "burn_drive", metavar="DEV|stdio:FILE", help="Burn and verify the image(s) on this drive.")
@click.option(
    "--from", "from_peer", metavar="AET@HOST:PORT", help="Retrieve the inputs from this PACS (C-FIND, C-GET)."
)
@click.option("--study-uid", multiple=True, help="With --from: this study (repeatable).")
@click.option("--accession", multiple=True, help="With --from: studies of this accession number (repeatable).")
@click.option("--move-dest", metavar="AET", help="With --from: C-MOVE to us under this AE title instead of C-GET.")
@click.option(
    "--move-port", type=click.IntRange(1, 65535), default=11113, show_default=True, help="Port for --move-dest."
)
@click.option("--json", "as_json", is_flag=True, help="Summary as JSON on stdout.")
def create(
    inputs: tuple[str, ...],
    output: str,
    output_format: str,
    profile_name: str,
    profile_file: str | None,
    media: str | None,
    fileset_id: str | None,
    compress: str,
    compress_for: tuple[str, ...],
    quality: int | None,
    patient_name: str | None,
    patient_id: str | None,
    patient_birth_date: str | None,
    patient_sex: str | None,
    study_description: str | None,
    accession_number: str | None,
    sc_metadata: str | None,
    span: bool,
    skip_invalid: bool,
    fix_uids: bool,
    no_ihe_pdi: bool,
    web: str,
    viewer: str | None,
    institution: str,
    contact: str,
    jobs: int | None,
    overwrite: bool,
    udf: bool | None,
    label: bool,
    burn_drive: str | None,
    from_peer: str | None,
    study_uid: tuple[str, ...],
    accession: tuple[str, ...],
    move_dest: str | None,
    move_port: int,
    as_json: bool,
) -> None:
    """Create a DICOM File-set on a burnable ISO 9660 image (or a folder)."""
    if not inputs and not from_peer:
        raise click.UsageError("give INPUT files or folders, or --from AET@HOST:PORT")
    explicit_web = click.get_current_context().get_parameter_source("web") != click.core.ParameterSource.DEFAULT
    if no_ihe_pdi and (viewer or explicit_web):
        raise click.UsageError("--web and --viewer are IHE PDI content: they cannot go with --no-ihe-pdi")
    profile = load_profile_file(profile_file) if profile_file else load_profile(profile_name)
    options = CreateOptions(
        inputs=list(inputs),
        output=Path(output),
        profile=profile,
        media=media,
        fileset_id=fileset_id,
        output_format=output_format,
        compress=compress,
        compress_for=_parse_compress_for(compress_for),
        quality=quality,
        sc_metadata=_sc_metadata(
            sc_metadata,
            {
                "patient_name": patient_name,
                "patient_id": patient_id,
                "patient_birth_date": patient_birth_date,
                "patient_sex": patient_sex,
                "study_description": study_description,
                "accession_number": accession_number,
            },
        ),
        span=span,
        skip_invalid=skip_invalid,
        ihe_pdi=not no_ihe_pdi,
        pdi=PdiRequest(web, Maker(institution, contact), viewer_files(Path(viewer)) if viewer else ()),
        jobs=jobs or 0,
        overwrite=overwrite,
        fix_uids=fix_uids,
        udf=udf,
        label=label,
        retrieve=_retrieve_source(from_peer, study_uid, patient_id, accession, move_dest, move_port),
    )
    if burn_drive:
        if output_format != "iso":
            raise click.UsageError("--burn needs an ISO image (--format iso)")
        from dicommedia.burn.job import check_drive

        check_drive(burn_drive, 1)  # a drive that is absent, or a medium that is not blank: before any work
    try:
        with _progress() as progress:
            result = create_fileset(options, progress)
    except RefusedInputs as exc:
        for path, reason in exc.refused:
            _say("refused:", "red", f"{path}: {reason}")
        # SPEC 2.4: with --json the error document; one refused input is its path and reason, several are above
        if len(exc.refused) == 1:
            path, reason = exc.refused[0]
            fail(f"{path}: {reason} ({exc.message})", code="refused", path=path)
        fail(str(exc), code="refused")
    _render_summary(result)
    burned = _burn(result, burn_drive) if burn_drive else None
    if as_json:
        emit_json({**result.as_json(), "burned": burned} if burned is not None else result.as_json())


def _burn(result: CreateResult, drive: str) -> list[dict]:
    """Burn every volume written (one medium each), verified; the copy reports for the JSON summary."""
    from dicommedia.burn.job import BurnInterrupted, burn_volumes
    from dicommedia.cli.burn import ask_for_medium

    prompt = ask_for_medium if sys.stdin.isatty() else None
    with _progress() as progress:
        paths = [Path(v.path) for v in result.volumes]
        try:
            reports = burn_volumes(paths, drive, prompt, lambda text: _say("", "", text), progress)
        except BurnInterrupted as exc:
            _say("error:", "red", f"{exc} (the image is kept)")
            raise SystemExit(130) from None
    return [vars(r) for r in reports]
