"""TLS for the node (optional): Python ``ssl`` contexts that pynetdicom takes, from ``tls:`` in
``configs/serve.yaml``. Listening: our certificate, and with ``tls.ca`` a client certificate signed
by that CA is required. Sending: the PACS certificate is verified against ``tls.ca`` (else the
system's CAs) and, with ``tls.check_hostname``, must name the ``send.to`` host; our certificate is
presented for mutual TLS. TLS 1.2 at least.
"""

from __future__ import annotations

import ssl

from mrparotid.errors import ConfigError


def server_context(tls: dict) -> ssl.SSLContext | None:
    """The listening side's context, None when TLS is off."""
    if not tls.get("enabled"):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load(ctx, tls)
    if tls.get("ca"):
        ctx.load_verify_locations(cafile=str(tls["ca"]))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(tls: dict) -> ssl.SSLContext | None:
    """The sending side's context, None when TLS is off."""
    if not tls.get("enabled"):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                     cafile=str(tls["ca"]) if tls.get("ca") else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = bool(tls.get("check_hostname", True))
    _load(ctx, tls)
    return ctx


def _load(ctx: ssl.SSLContext, tls: dict) -> None:
    try:
        ctx.load_cert_chain(certfile=str(tls["cert"]), keyfile=str(tls["key"]))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"cannot load the TLS certificate and key ({exc})", path=tls["cert"],
                          fix="give a PEM certificate and its matching private key") from None
