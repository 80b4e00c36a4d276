"""The one TLS client context sdnctl dials hosts with: mutual TLS, the host's own certificate pinned.

Cipher policy (docs/operations.md, "TLS to the hosts"): TLS 1.3 where the host has it; under
TLS 1.2, forward-secret ECDHE AEAD suites first, then the static-RSA suites XCP-ng 8.3's
ovsdb-server is limited to, because those hosts offer nothing else. The host takes the first
suite of ours it also has (OVS keeps OpenSSL's default: the client's order wins).
"""

from __future__ import annotations

import ssl

# TLS 1.2, forward secret: what an XCP-ng 8.2 host (DEFAULT@SECLEVEL=2) picks from.
FORWARD_SECRET_SUITES = (
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
)
# TLS 1.2, static RSA: XCP-ng 8.3's `--ssl-ciphers` list, AEAD first. Its patch spells the first
# one "AES256-GCM-SHA38", which OpenSSL drops, so those hosts negotiate AES128-GCM-SHA256.
XCPNG_STATIC_RSA_SUITES = (
    "AES256-GCM-SHA384", "AES128-GCM-SHA256", "AES256-SHA256", "AES128-SHA256", "AES256-SHA", "AES128-SHA",
)
# SECLEVEL=2: nothing under 112-bit security; RSA 2048, as XAPI makes host certificates, passes.
CIPHERS = ":".join(FORWARD_SECRET_SUITES + XCPNG_STATIC_RSA_SUITES) + ":@SECLEVEL=2"


def pinned_client_context(pinned_pem: str, cert_file: str, key_file: str) -> ssl.SSLContext:
    """Trust exactly `pinned_pem` (the host's certificate, as XAPI reports it) and present our client cert.

    Hosts are dialled by IP and the pin is their identity, so there is no host name check;
    VERIFY_X509_PARTIAL_CHAIN lets a CA-issued host certificate be its own trust anchor.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS)  # TLS 1.2 only; TLS 1.3's suites (all forward secret) stay OpenSSL's
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    ctx.load_verify_locations(cadata=pinned_pem)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx
