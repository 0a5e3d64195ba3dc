"""``dicommedia read MEDIA``: list, extract, or import into a Storage SCP (SPEC 2.2)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from dicommedia.cli.importing import (
    ImportRequest,
    build_new_uids,
    build_reconciler,
    check_request,
    import_options,
    run_import,
)
from dicommedia.cli.render import emit_json, err_console, escape, fail, out_console
from dicommedia.media import MediaView, open_media
from dicommedia.media.verify import split_verified
from dicommedia.media.view import select

if TYPE_CHECKING:
    from rich.tree import Tree

    from dicommedia.read.listing import Patient


def _say(text: str, lead: str = "", style: str = "") -> None:
    """One line on stderr, ``lead`` in ``style`` on a terminal; elsewhere plain text, and rich is not loaded."""
    if not sys.stderr.isatty():
        click.echo(f"{lead} {text}" if lead else text, err=True)
        return
    from rich.text import Text

    err_console.print(Text.assemble((lead, style), " " if lead else "", text), soft_wrap=True)


def _date(value: str | None) -> str:
    if value and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value or "no date"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render_tree(view: MediaView, tree: list[Patient]) -> Tree:
    """The listing as a rich tree: patient -> study -> series, with counts."""
    from rich.tree import Tree

    total = sum(p.instances for p in tree)
    fileset = f"File-set [bold]{escape(view.fileset_id)}[/]" if view.fileset_id else "no File-set ID"
    root = Tree(f"{escape(str(view.path))} ({view.kind}) — {fileset}, {_plural(total, 'instance')}")
    for p in tree:
        node = root.add(
            f"[bold]{escape(p.patient_name or '(no name)')}[/]  ID {escape(p.patient_id or '(none)')}"
            f" — {_plural(len(p.studies), 'study')}, {_plural(p.instances, 'instance')}"
        )
        for st in p.studies.values():
            modalities = "/".join(sorted({s.modality for s in st.series.values() if s.modality}))
            study = node.add(
                f"{_date(st.study_date)}  [cyan]{escape(st.study_description or '(no description)')}[/]"
                f"  {modalities} — {_plural(len(st.series), 'series')}, {_plural(st.instances, 'instance')}"
                f"  [dim]{escape(st.study_instance_uid or '')}[/]"
            )
            for se in st.series.values():
                forgotten = sum(1 for f in se.files if f.unreferenced)
                study.add(
                    f"#{escape(se.series_number or '?')} {escape(se.modality or '?')}"
                    f"  {escape(se.series_description or '')} — {_plural(len(se.files), 'instance')}"
                    + (f" ([yellow]{forgotten} not in the DICOMDIR[/])" if forgotten else "")
                    + f"  [dim]{escape(se.series_instance_uid or '')}[/]"
                )
    return root


def report_problems(view: MediaView) -> None:
    """Tell the user, on stderr, what was wrong with the media (nothing is skipped silently)."""
    for p in view.problems:
        colour = "red" if p.is_error else "yellow"
        where = f" {escape(p.file_id)}:" if p.file_id else ""
        err_console.print(f"[{colour}]{p.severity}[/] [bold]{p.code}[/]{where} {escape(p.message)}", soft_wrap=True)


@click.command()
@click.argument("media", type=click.Path(exists=True))
@click.option("--send", "send_to", metavar="AET@HOST:PORT", help="Import every instance into this Storage SCP.")
@click.option("--calling-aet", default="DICOMMEDIA", show_default=True, help="Our AE title.")
@click.option("--patient-id", multiple=True, help="Only this patient (repeatable).")
@click.option("--study-uid", multiple=True, help="Only this study (repeatable).")
@click.option("--series-uid", multiple=True, help="Only this series (repeatable).")
@click.option(
    "--extract", "extract_dir", type=click.Path(file_okay=False), help="Copy the instances out as plain files."
)
@click.option("--retries", default=2, show_default=True, type=click.IntRange(0, 100), help="Per-instance retries.")
@click.option(
    "--timeout", default=30.0, show_default=True, type=click.FloatRange(0.1), help="Network timeout, seconds."
)
@click.option("--tls", is_flag=True, help="DICOM over TLS.")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), help="CA certificate(s) to verify the peer.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Our certificate.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Our private key.")
@click.option(
    "--dicomdir-only", is_flag=True, help="Only files the DICOMDIR references (default: also DICOM files it forgot)."
)
@click.option("--file-system", type=click.Choice(["iso9660", "udf"]), help="Read this side of a UDF bridge image.")
@click.option("--json", "as_json", is_flag=True, help="Listing or import report as JSON.")
@import_options
def read(
    media: str,
    send_to: str | None,
    calling_aet: str,
    patient_id: tuple[str, ...],
    study_uid: tuple[str, ...],
    series_uid: tuple[str, ...],
    extract_dir: str | None,
    retries: int,
    timeout: float,
    tls: bool,
    tls_ca: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    dicomdir_only: bool,
    file_system: str | None,
    as_json: bool,
    **import_kw: Any,
) -> None:
    """List a disc image, mounted disc, DICOMDIR or folder; extract it; or import it over C-STORE or STOW-RS."""
    if (send_to or import_kw["stow_url"]) and extract_dir:
        raise click.UsageError("--send/--stow and --extract cannot be combined")
    check_request(send_to, import_kw, extract=bool(extract_dir))
    with (
        open_media(media, plain=True, dicomdir_only=dicomdir_only, file_system=file_system) as view,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # pydicom's value warnings; what matters is in view.problems
        files = select(view.files(), patient_id, study_uid, series_uid)
        skipped = sum(1 for _ in view.files()) - len(files)  # left out by the filters
        importing = bool(send_to or import_kw["stow_url"])
        # What leaves the media must be the instance its record names. The C-STORE sender checks each file on its
        # own first read of it (dicommedia.read.send); the other ways out are checked here, before they start.
        sender_checks = bool(send_to) and not import_kw["dry_run"]
        if (importing or extract_dir) and not sender_checks:
            files, refused = split_verified(files)
            view.problems.extend(refused)
            view.refused.extend(refused)
        report_problems(view)
        filtered = bool(patient_id or study_uid or series_uid)
        if importing or extract_dir:
            from dicommedia.read.send import SendOptions

            if (tls_ca or tls_cert or tls_key) and not (tls or import_kw["stow_url"]):
                raise click.UsageError("--tls-ca, --tls-cert and --tls-key need --tls")
            if tls_key and not tls_cert:
                raise click.UsageError("--tls-key needs --tls-cert")
            user = (import_kw.pop("identity_user"), import_kw.pop("identity_password"))
            options = SendOptions(
                calling_aet,
                retries,
                timeout,
                _tls_options(tls_ca, tls_cert, tls_key) if tls else None,
                user=user if user[0] else None,
            )
            request = ImportRequest(send_to, send_options=options, tls_ca=tls_ca, **import_kw)
            if not files:
                _no_files(view, filtered)
            if extract_dir:
                reconciler = build_reconciler(request)
                new_uids = build_new_uids(request, files, reconciler)
                _extract(view, files, Path(extract_dir), as_json, reconciler, new_uids)
            else:
                run_import(view, files, skipped, request, as_json)
            return
        if not files and not filtered and _errors(view):
            _nothing_readable(view)
        from dicommedia.read.listing import build_tree, listing_json  # the listing only: not loaded to send

        tree = build_tree(files)
        if as_json:
            emit_json(listing_json(view, tree))
        else:
            out_console.print(render_tree(view, tree))
        if not files:
            err_console.print("no instance matches the filters" if filtered else "no DICOM instance found on the media")


def _tls_options(ca: str | None, cert: str | None, key: str | None) -> Any:
    """The TLS settings of the import (the TLS module is loaded only for them)."""
    from dicommedia.read.tls import TlsOptions

    return TlsOptions(ca, cert, key)


def _errors(view: MediaView) -> list:
    """The errors (not warnings) met reading the media."""
    return [p for p in view.problems if p.is_error]


def _nothing_readable(view: MediaView) -> NoReturn:
    """Errors on the media and no instance recovered: exit 1 with the first cause (never an empty listing)."""
    errors = _errors(view)
    first = errors[0]
    where = f"{first.file_id}: " if first.file_id and first.file_id != str(view.path) else ""
    fail(
        f"{view.path}: no instance can be read ({len(errors)} error(s); first: {first.code}: {where}{first.message})",
        code=first.code,
        path=str(view.path),
    )


def _extract(view: MediaView, files: list, dest: Path, as_json: bool, reconciler: Any, new_uids: Any) -> None:
    """Extract ``files`` into ``dest`` (local identity, new UIDs when asked); exit 1 if any failed."""
    from rich.progress import Progress

    from dicommedia.read.extract import extract

    with Progress(console=err_console, transient=True, disable=not err_console.is_terminal) as progress:
        task = progress.add_task("extracting", total=len(files))
        result = extract(
            view, files, dest, progress=lambda _f: progress.advance(task), reconciler=reconciler, new_uids=new_uids
        )
    if as_json:
        emit_json(
            {
                "extracted": len(result.written),
                "unreferenced": sum(1 for entry in result.written if entry["unreferenced"]),
                "dir": str(dest),
                "manifest": str(result.manifest),
                "failed": result.failed + [{"file_id": p.file_id, "reason": p.message} for p in view.refused],
                "skipped": result.skipped,
            }
        )
    for failure in result.failed:
        err_console.print(f"[red]not extracted[/] {escape(failure['file_id'])}: {escape(failure['reason'])}")
    for skip in result.skipped:
        err_console.print(f"[yellow]skipped[/] {escape(skip['file_id'])}: {escape(skip['reason'])}")
    forgotten = sum(1 for entry in result.written if entry["unreferenced"])
    err_console.print(
        f"extracted {_plural(len(result.written), 'instance')} to {escape(str(dest))} (manifest {result.manifest.name})"
        + (f"; {forgotten} of them not in the DICOMDIR" if forgotten else "")
        + (f"; {len(result.skipped)} skipped" if result.skipped else "")
        + (f"; {len(result.failed) + len(view.refused)} not extracted" if result.failed or view.refused else "")
    )
    if result.failed or view.refused:
        raise SystemExit(1)


def _no_files(view: MediaView, filtered: bool) -> NoReturn:
    """Nothing to extract or send: exit 1 with the reason."""
    if not filtered and _errors(view):
        _nothing_readable(view)
    message = "no instance matches the filters" if filtered else "no DICOM instance on the media"
    fail(f"{view.path}: {message}", code="no-instances", path=str(view.path))
