"""``dicommedia serve`` (SPEC 2.4): the media node — receive, group, write discs, catalogue them."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from dicommedia.cli.create import CODEC_CHOICES, _parse_compress_for
from dicommedia.cli.render import emit_json
from dicommedia.profile import MEDIA_CAPACITY, load_profile, load_profile_file
from dicommedia.station.grouping import GROUPINGS


def _ssl_context(cert: str | None, key: str | None, ca: str | None):  # type: ignore[no-untyped-def]
    """A TLS server context: our certificate; with a CA, peers must show a certificate it signed."""
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    ctx.load_cert_chain(cert, key)
    ctx.verify_mode = ssl.CERT_REQUIRED if ca else ssl.CERT_NONE
    return ctx


def _show_status(spool: Path, as_json: bool) -> None:
    from dicommedia.station.node import read_status

    status = read_status(spool)
    if as_json:
        emit_json(status)
    elif not status.get("pid"):
        click.echo(f"no node has run with the spool {spool}", err=True)
    else:
        state = "running" if status["running"] else "not running"
        get = status.get
        click.echo(
            f"node {get('aet')} on {get('host')}:{get('port')} (pid {get('pid')}): {state}; "
            f"{get('received', 0)} instance(s) received, {get('discs', 0)} disc(s) written, "
            f"{get('pending_groups', 0)} group(s) waiting, {get('refused_groups', 0)} refused group(s) kept",
            err=True,
        )
    if not status["running"]:
        raise SystemExit(1)


@click.command()
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Folder the discs go to.")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", default=11112, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--aet", default="DICOMMEDIA", show_default=True, help="Our AE title.")
@click.option(
    "--study-idle", default=60.0, show_default=True, type=click.FloatRange(0), help="Seconds a group waits idle."
)
@click.option(
    "--group",
    "grouping",
    type=click.Choice(GROUPINGS),
    default="study",
    show_default=True,
    help="One disc per study, association or patient; `request`: only Media Creation requests make discs.",
)
@click.option("--catalog", help="Catalog: a SQLite file (default OUTPUT/catalog.sqlite) or a postgresql:// URL.")
@click.option("--spool", type=click.Path(file_okay=False), help="Spool folder (default OUTPUT/.spool).")
@click.option("--status", "show_status", is_flag=True, help="Show the status of the node using this output, and exit.")
@click.option("--format", "output_format", type=click.Choice(["iso", "dir"]), default="iso", show_default=True)
@click.option("-p", "--profile", "profile_name", default="STD-GEN-CD", show_default=True, help="Media profile.")
@click.option("--profile-file", type=click.Path(exists=True, dir_okay=False), help="A custom profile (TOML).")
@click.option("--media", type=click.Choice(list(MEDIA_CAPACITY)), help="Media capacity (default: the profile's).")
@click.option("--compress", type=click.Choice(CODEC_CHOICES), default="keep", show_default=True)
@click.option("--compress-for", multiple=True, metavar="MODALITY=CODEC", help="Per-modality encoding (repeatable).")
@click.option("--quality", type=click.IntRange(1, 100), help="Lossy quality, 1-100.")
@click.option("--span", is_flag=True, help="Several volumes when a group does not fit one.")
@click.option("--no-ihe-pdi", is_flag=True, help="Leave out README.TXT and INDEX.HTM.")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), help="Worker processes for transcoding.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Serve DICOM over TLS: our certificate.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Our private key.")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), help="Peers need a certificate of this CA.")
@click.option("--json", "as_json", is_flag=True, help="With --status: the status as JSON.")
def serve(
    output: str,
    host: str,
    port: int,
    aet: str,
    study_idle: float,
    grouping: str,
    catalog: str | None,
    spool: str | None,
    show_status: bool,
    output_format: str,
    profile_name: str,
    profile_file: str | None,
    media: str | None,
    compress: str,
    compress_for: tuple[str, ...],
    quality: int | None,
    span: bool,
    no_ihe_pdi: bool,
    jobs: int | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_ca: str | None,
    as_json: bool,
) -> None:
    """Receive over DICOM (C-STORE, Media Creation Management) and write a disc per study, association or patient."""
    out = Path(output)
    spool_dir = Path(spool) if spool else out / ".spool"
    if show_status:
        _show_status(spool_dir, as_json)
        return
    if (tls_key or tls_ca) and not tls_cert:
        raise click.UsageError("--tls-key and --tls-ca need --tls-cert")
    from dicommedia.create import CreateOptions
    from dicommedia.station.node import MediaNode, NodeConfig

    profile = load_profile_file(profile_file) if profile_file else load_profile(profile_name)
    out.mkdir(parents=True, exist_ok=True)
    template = CreateOptions(
        inputs=[],
        output=out,
        profile=profile,
        media=media,
        output_format=output_format,
        compress=compress,
        compress_for=_parse_compress_for(compress_for),
        quality=quality,
        span=span,
        ihe_pdi=not no_ihe_pdi,
        jobs=jobs or 0,
    )
    config = NodeConfig(
        host=host,
        port=port,
        aet=aet,
        output=out,
        spool=spool_dir,
        catalog=catalog or str(out / "catalog.sqlite"),
        template=template,
        idle=study_idle,
        grouping=grouping,
        ssl_context=_ssl_context(tls_cert, tls_key, tls_ca) if tls_cert else None,
        log=sys.stderr,
    )
    node = MediaNode(config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        node.start()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    node.wait(stop)
    node.stop()
