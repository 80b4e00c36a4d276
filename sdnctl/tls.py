"""The one TLS client context sdnctl dials hosts with: mutual TLS, the host's own certificate pinned."""

from __future__ import annotations

import ssl


def pinned_client_context(pinned_pem: str, cert_file: str, key_file: str) -> ssl.SSLContext:
    """Trust exactly `pinned_pem` (the host's certificate, as XAPI reports it) and present our client cert.

    Hosts are dialled by IP and the pin is their identity, so there is no host name check;
    VERIFY_X509_PARTIAL_CHAIN lets a CA-issued host certificate be its own trust anchor.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    ctx.load_verify_locations(cadata=pinned_pem)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx
