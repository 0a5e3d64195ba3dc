"""``dicommedia read MEDIA``: list, extract, or import into a Storage SCP (SPEC 2.2)."""

from __future__ import annotations

import click

from dicommedia.cli.render import fail


@click.command()
@click.argument("media", type=click.Path(exists=True))
@click.option("--send", "send_to", metavar="AET@HOST:PORT", help="Import every instance into this Storage SCP.")
@click.option("--calling-aet", default="DICOMMEDIA", show_default=True, help="Our AE title.")
@click.option("--patient-id", multiple=True, help="Only this patient (repeatable).")
@click.option("--study-uid", multiple=True, help="Only this study (repeatable).")
@click.option("--series-uid", multiple=True, help="Only this series (repeatable).")
@click.option("--extract", "extract_dir", type=click.Path(file_okay=False), help="Copy the instances out as plain files.")
@click.option("--retries", default=2, show_default=True, type=click.IntRange(0, 100), help="Per-instance retries.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(0.1), help="Network timeout, seconds.")
@click.option("--tls", is_flag=True, help="DICOM over TLS.")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), help="CA certificate(s) to verify the peer.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Our certificate.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Our private key.")
@click.option("--json", "as_json", is_flag=True, help="Listing or import report as JSON.")
def read(media: str, **options: object) -> None:
    """List a disc image, mounted disc, DICOMDIR or folder; extract it; or import it over C-STORE."""
    fail("read is not implemented yet")
