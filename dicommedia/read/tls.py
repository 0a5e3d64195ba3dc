"""DICOM over TLS (PS3.15 B.1) for the associations an import opens: loaded only when ``--tls`` asks for it."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from dicommedia.errors import MediaError


@dataclass(frozen=True)
class TlsOptions:
    """DICOM over TLS (PS3.15 B.1): the CA that vouches for the peer, and our own certificate and key."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def context(self) -> ssl.SSLContext:
        """A client context that verifies the peer (system CAs unless ``ca`` is given)."""
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca)
            if self.cert:
                ctx.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise MediaError(
                f"cannot load the TLS certificates: {exc}", hint="check --tls-ca, --tls-cert, --tls-key"
            ) from None
        return ctx
