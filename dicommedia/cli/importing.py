"""``read --send`` / ``read --stow``: the import options, the dry run and the import report (SPEC 2.2)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from dicommedia.cli.render import emit_json, err_console, fail
from dicommedia.errors import MediaError
from dicommedia.media import MediaFile, MediaView

_OPTIONS = [
    click.option(
        "--patient-map",
        type=click.Path(exists=True, dir_okay=False),
        help="CSV: source_patient_id[,issuer_of_patient_id],patient_id[,patient_name][,patient_birth_date][,issuer].",
    ),
    click.option("--worklist", metavar="AET@HOST:PORT", help="Local identity from this Modality Worklist SCP."),
    click.option("--set", "set_values", multiple=True, metavar="TAG=VALUE", help="Write this value (repeatable)."),
    click.option(
        "--unmapped",
        type=click.Choice(["send", "skip", "fail"]),
        default="fail",
        show_default=True,
        help="An instance whose patient the map or worklist does not know: send it as is, skip it, or fail it.",
    ),
    click.option(
        "--new-uids",
        is_flag=True,
        help="New Study/Series/SOP Instance UIDs, every reference in the set kept consistent (old ones recorded).",
    ),
    click.option(
        "--uid-seed",
        metavar="TEXT",
        help="Derive the --new-uids from this seed: the import then writes the very UIDs a dry run showed with it.",
    ),
    click.option("--dry-run", is_flag=True, help="Say what would be sent, under which identity; send nothing."),
    click.option("--stow", "stow_url", metavar="URL", help="Import over DICOMweb STOW-RS into this base URL."),
    click.option("--stow-token", metavar="TOKEN", help="STOW-RS bearer token."),
    click.option("--stow-user", metavar="USER:PASSWORD", help="STOW-RS basic authentication."),
    click.option("--skip-existing", is_flag=True, help="Skip instances the peer already holds (C-FIND / QIDO-RS)."),
    click.option("--user", "identity_user", metavar="NAME", help="DICOM user identity (PS3.7 D.3.3.7)."),
    click.option("--password", "identity_password", metavar="PASSWORD", help="Password for --user."),
]


def import_options(command: Callable) -> Callable:
    """Add the import options to the ``read`` command."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


@dataclass
class ImportRequest:
    """What the user asked of an import, checked."""

    send_to: str | None
    stow_url: str | None
    send_options: Any  # dicommedia.read.send.SendOptions
    patient_map: str | None = None
    worklist: str | None = None
    set_values: tuple[str, ...] = ()
    unmapped: str = "fail"
    new_uids: bool = False
    uid_seed: str | None = None
    dry_run: bool = False
    stow_token: str | None = None
    stow_user: str | None = None
    skip_existing: bool = False
    tls_ca: str | None = None

    @property
    def target(self) -> str:
        """The peer, as the user named it."""
        return self.stow_url or self.send_to or ""


def parse_peer(text: str, option: str) -> Any:
    """``AET@HOST:PORT`` or a usage error (exit 2)."""
    from dicommedia.read.send import Peer

    try:
        return Peer.parse(text)
    except MediaError as exc:
        raise click.BadParameter(exc.message, param_hint=option) from None


RECONCILE_OPTIONS = ("patient_map", "worklist", "set_values", "new_uids")


def check_request(send_to: str | None, options: dict[str, Any], extract: bool = False) -> None:
    """Usage errors of the import options, before the media is opened (reconciliation also serves --extract)."""
    stow_url = options.get("stow_url")
    if send_to and stow_url:
        raise click.UsageError("--send and --stow cannot be combined")
    target = send_to or stow_url
    for name in (*RECONCILE_OPTIONS, "dry_run", "skip_existing", "stow_token", "stow_user"):
        if options.get(name) and not target and not (extract and name in RECONCILE_OPTIONS):
            needs = "--send, --stow or --extract" if name in RECONCILE_OPTIONS else "--send or --stow"
            raise click.UsageError(f"--{name.replace('_values', '').replace('_', '-')} needs {needs}")
    if (options.get("stow_token") or options.get("stow_user")) and not stow_url:
        raise click.UsageError("--stow-token and --stow-user need --stow")
    if options.get("stow_token") and options.get("stow_user"):
        raise click.UsageError("give --stow-token or --stow-user, not both")
    if options.get("stow_user") and ":" not in options["stow_user"]:
        raise click.BadParameter("not USER:PASSWORD", param_hint="--stow-user")
    if options.get("uid_seed") is not None and not options.get("new_uids"):
        raise click.UsageError("--uid-seed needs --new-uids")
    if options.get("new_uids") and options.get("skip_existing"):
        raise click.UsageError("--new-uids and --skip-existing cannot be combined (new UIDs are never on the peer)")
    if options.get("identity_password") and not options.get("identity_user"):
        raise click.UsageError("--password needs --user")
    if stow_url and not stow_url.lower().startswith(("http://", "https://")):
        raise click.BadParameter(f"{stow_url!r} is not an http:// or https:// URL", param_hint="--stow")
    if send_to:
        parse_peer(send_to, "--send")
    if options.get("worklist"):
        parse_peer(options["worklist"], "--worklist")
    if options.get("set_values"):
        from dicommedia.read.reconcile import parse_set

        try:
            parse_set(options["set_values"])
        except MediaError as exc:
            raise click.BadParameter(exc.message, param_hint="--set") from None


def build_reconciler(request: ImportRequest) -> Any:
    """The reconciler the options ask for (None: instances go as they are)."""
    if not (request.patient_map or request.worklist or request.set_values):
        return None  # and the reconciliation modules are not loaded
    from dicommedia.read.reconcile import PatientMap, Reconciler, parse_set

    settings = parse_set(request.set_values)
    sources: list = []
    if request.patient_map:
        sources.append(PatientMap.load(request.patient_map))
    if request.worklist:
        from dicommedia.read.worklist import Worklist

        options = request.send_options
        sources.append(Worklist(parse_peer(request.worklist, "--worklist"), options.calling_aet, options.timeout))
    if not sources and not settings:
        return None
    return Reconciler(sources, settings, request.unmapped)  # type: ignore[arg-type]


def build_new_uids(request: ImportRequest, files: list[MediaFile], reconciler: Any) -> Any:
    """The import's UID mapping when --new-uids asks for one (None otherwise)."""
    if not request.new_uids:
        return None
    from dicommedia.read.new_uids import NewUids
    from dicommedia.read.reconcile import now_dt

    return NewUids.of(files, reconciler.modified_at if reconciler else now_dt(), request.uid_seed)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _say(text: str, lead: str = "", style: str = "") -> None:
    """One line on stderr, ``lead`` in ``style`` on a terminal."""
    if not sys.stderr.isatty():
        click.echo(f"{lead} {text}" if lead else text, err=True)
        return
    from rich.text import Text

    err_console.print(Text.assemble((lead, style), " " if lead else "", text), soft_wrap=True)


def _with_progress(label: str, files: list[MediaFile], work: Callable[[Callable[[int, int], None] | None], Any]) -> Any:
    """Run ``work(progress)`` under a progress bar on a terminal (none elsewhere: rich.progress is not loaded).

    Ctrl-C: what the peer stored before stays there, so the generic "nothing was written" would be untrue.
    """
    try:
        return work(None) if not sys.stderr.isatty() else _under_progress_bar(label, files, work)
    except KeyboardInterrupt:
        fail(
            "interrupted; the instances the peer received before stay there (--skip-existing sends only the rest)",
            code="interrupted",
            exit_code=130,
        )


def _under_progress_bar(
    label: str, files: list[MediaFile], work: Callable[[Callable[[int, int], None] | None], Any]
) -> Any:
    """``work(progress)`` with a rich progress bar on stderr."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

    columns = (
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.fields[done]}/{task.fields[count]} instances"),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
    )
    lock = threading.Lock()
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("import", total=sum(f.size for f in files), done=0, count=len(files))
        done = [0]

        def advance(instances: int, nbytes: int) -> None:
            with lock:
                done[0] += instances
                progress.update(task, advance=nbytes, done=done[0])

        return work(advance)


def _existing(request: ImportRequest) -> Any:
    """The check of what the peer already holds, when --skip-existing asks for it."""
    if not request.skip_existing:
        return None
    from dicommedia.read import existing

    if request.stow_url:
        return existing.QidoCheck(stow_target(request))
    options = request.send_options
    return existing.FindCheck(parse_peer(request.send_to, "--send"), options)  # type: ignore[arg-type]


def stow_target(request: ImportRequest) -> Any:
    """The DICOMweb endpoint and how to authenticate to it."""
    from dicommedia.read.stow import StowTarget

    user, _, password = (request.stow_user or "").partition(":")
    options = request.send_options
    return StowTarget(
        request.stow_url or "",
        token=request.stow_token,
        user=user or None,
        password=password or None,
        ca=request.tls_ca,
        timeout=options.timeout,
        retries=options.retries,
    )


def run_import(
    view: MediaView, files: list[MediaFile], filtered_out: int, request: ImportRequest, as_json: bool
) -> None:
    """Plan, then send (or with --dry-run only show) the import; report every instance; exit 1 if any failed."""
    from dicommedia.read.jobs import Failure

    reconciler = build_reconciler(request)
    new_uids = build_new_uids(request, files, reconciler)
    existing = _existing(request)
    if request.dry_run:
        from dicommedia.read.jobs import plan_import

        plan = plan_import(files, reconciler, existing)
        plan.report.filtered = filtered_out
        _dry_run(files, plan, request, as_json, view.refused, new_uids)
        return
    if request.stow_url:
        from dicommedia.read.stow import stow_media

        target = stow_target(request)
        report = _with_progress(
            "STOW-RS to {}".format(request.stow_url.replace("[", "\\[")),
            files,
            lambda progress: stow_media(files, target, reconciler, existing, progress, new_uids),
        )
    else:
        from dicommedia.read.send import import_media

        peer = parse_peer(request.send_to, "--send")  # type: ignore[arg-type]
        report = _with_progress(
            f"C-STORE to {peer}",
            files,
            lambda progress: import_media(files, peer, request.send_options, progress, reconciler, existing, new_uids),
        )
    report.filtered = filtered_out
    # Instances the media references or holds that could not be taken never reached the import: they failed too.
    report.failed += [Failure(None, p.file_id, None, p.message) for p in view.refused]
    forgotten = ["/".join(f.file_id) for f in files if getattr(f, "unreferenced", False)]
    if as_json:
        emit_json({**report.as_json(), "unreferenced_files": forgotten})
    for f in report.failed:
        status = "no status" if f.status is None else f"status 0x{f.status:04X}"
        _say(f"{f.file_id or '?'} ({f.sop_instance_uid or 'unknown UID'}): {status}, {f.reason}", "not sent", "red")
    for s in report.skipped_instances:
        _say(f"{s.file_id or '?'} ({s.sop_instance_uid or 'unknown UID'}): {s.reason}", "skipped", "yellow")
    rate = report.bytes_sent / report.seconds / 1e6 if report.seconds else 0.0
    via = f"{_plural(report.associations, 'association')}" if not request.stow_url else "STOW-RS"
    _say(
        f"sent {_plural(report.sent, 'instance')} to {request.target} in {report.seconds:.3f} s ({rate:.1f} MB/s, "
        f"{via}); {len(report.failed)} failed, {report.skipped} skipped, {report.duplicates} duplicates"
        f" of {report.found} found"
        + (f" ({len(forgotten)} not in the DICOMDIR)" if forgotten else "")
        + (f", {report.warnings} with a warning status" if report.warnings else "")
    )
    if report.failed:
        raise SystemExit(1)


def _dry_run(
    files: list[MediaFile], plan: Any, request: ImportRequest, as_json: bool, refused: list, new_uids: Any
) -> None:
    """Per patient and study: what would be sent, under which local identity (and with ``new_uids``, under which new
    Study Instance UID), what is skipped or fails and why; ``refused``: files that are not their record's instance."""
    action: dict[str, tuple[str, str, Any]] = {}
    for job in plan.jobs:
        action[job.file_id] = ("send", "", job.identity)
    for skip in plan.report.skipped_instances:
        action[skip.file_id] = ("skip", skip.reason, None)
    for failure in plan.report.failed:
        action[failure.file_id or ""] = ("fail", failure.reason, None)
    patients: dict[tuple, dict] = {}
    for f in files:
        what, reason, identity = action.get("/".join(f.file_id), ("duplicate", "same SOP Instance UID", None))
        patient = patients.setdefault(
            (f.patient_id, f.patient_name),
            {"patient_id": f.patient_id, "patient_name": f.patient_name, "studies": {}},
        )
        study = patient["studies"].setdefault(
            f.study_instance_uid,
            {
                "study_instance_uid": f.study_instance_uid,
                "send": 0,
                "local": {},
                "skipped": {},
                "failed": {},
                "series": set(),
            },
        )
        if what == "send":
            study["send"] += 1
            study["series"].add(f.series_instance_uid)
            if identity is not None:
                local = identity.show() if identity.values else {}
                study["local"].setdefault(identity.source, local)
        elif what in ("skip", "duplicate"):
            study["skipped"][reason] = study["skipped"].get(reason, 0) + 1
        else:
            study["failed"][reason] = study["failed"].get(reason, 0) + 1

    def renamed(study: dict) -> dict:
        """The study's new UID and how many of its series and instances the import renames (none are sent: {})."""
        if new_uids is None or not study["send"] or not study["study_instance_uid"]:
            return {}
        new = new_uids.new(study["study_instance_uid"])
        counts = {"series": len(study["series"] - {None}), "instances": study["send"]}
        return {"new_uids": {"study_instance_uid": new, **counts}}

    out = {
        "dry_run": True,
        "target": request.target,
        "found": plan.report.found + len(plan.jobs) + len(refused),
        "send": len(plan.jobs),
        "failed": len(plan.report.failed) + len(refused),
        "skipped": plan.report.skipped,
        "duplicates": plan.report.duplicates,
        **({"uid_seed": new_uids.seed} if new_uids is not None else {}),
        "patients": [
            {
                **{k: v for k, v in p.items() if k != "studies"},
                "studies": [
                    {
                        **{k: v for k, v in s.items() if k not in ("local", "skipped", "failed", "series")},
                        **renamed(s),
                        "local_identity": [{"source": src, "values": vals} for src, vals in s["local"].items()],
                        "skipped": [{"reason": r, "instances": n} for r, n in s["skipped"].items()],
                        "failed": [{"reason": r, "instances": n} for r, n in s["failed"].items()],
                    }
                    for s in p["studies"].values()
                ],
            }
            for p in patients.values()
        ],
        "refused": [{"file_id": r.file_id, "reason": r.message} for r in refused],
    }
    if as_json:
        emit_json(out)
    for p in out["patients"]:
        _say(f"patient {p['patient_id'] or '(no ID)'} {p['patient_name'] or ''}".rstrip(), "dry run", "cyan")
        for s in p["studies"]:
            identities = "; ".join(
                f"as {', '.join(f'{k}={v}' for k, v in i['values'].items()) or 'stored'} ({i['source']})"
                for i in s["local_identity"]
            )
            _say(f"  study {s['study_instance_uid']}: {_plural(s['send'], 'instance')} to send {identities}".rstrip())
            if "new_uids" in s:
                new = s["new_uids"]
                _say(
                    f"    under new UIDs: study {new['study_instance_uid']}, {new['series']} series and "
                    f"{_plural(new['instances'], 'instance')} renamed"
                )
            for row in s["skipped"]:
                _say(f"    {_plural(row['instances'], 'instance')} skipped: {row['reason']}")
            for row in s["failed"]:
                _say(f"    {_plural(row['instances'], 'instance')} would fail: {row['reason']}")
    for row in out["refused"]:
        _say(f"{row['file_id']}: {row['reason']}", "would fail", "red")
    _say(
        f"would send {_plural(out['send'], 'instance')} to {request.target}; {out['failed']} would fail, "
        f"{out['skipped']} skipped, {out['duplicates']} duplicates of {out['found']} found"
    )
    if new_uids is not None:
        _say(f"new UIDs from --uid-seed {new_uids.seed}: the import given the same seed writes these very UIDs")
    if out["failed"]:
        raise SystemExit(1)
