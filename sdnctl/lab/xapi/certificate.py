"""The pool's CA certificates (pool.certificate_*, pool.*_ca_certificate) and Certificate records."""

from __future__ import annotations

import re
from typing import Any

from cryptography import x509

from sdnctl import certs
from sdnctl.lab.xapi import networkd
from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import api
from sdnctl.lab.xapi.networkd import SDN_CA_NAME
from sdnctl.lab.xapi.schema import date


@api("pool.certificate_install", "pool.install_ca_certificate")
def install_ca(ctx: Context, name: Any, cert: Any) -> None:
    """Xapi_pool.install_ca_certificate; the SDN CA reaches every host's pssl listener."""
    if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name) or name.startswith("."):
        raise XapiFailure("CERTIFICATE_NAME_INVALID", name)
    if name in ctx.ca_certs:
        raise XapiFailure("CERTIFICATE_ALREADY_EXISTS", name)
    if not isinstance(cert, str):
        raise XapiFailure("CERTIFICATE_CORRUPT", name)
    add(ctx, cert, type="ca", name=name)
    ctx.ca_certs[name] = cert
    if name == SDN_CA_NAME:
        networkd.update_vswitch_controllers(ctx)


@api("pool.certificate_uninstall", "pool.uninstall_ca_certificate")
def uninstall_ca(ctx: Context, name: Any, force: Any = False) -> None:
    if name not in ctx.ca_certs:
        raise XapiFailure("CERTIFICATE_DOES_NOT_EXIST", name)
    del ctx.ca_certs[name]
    for cert in ctx.store.find("Certificate", type="ca", name=name):
        ctx.store.delete(cert)
    if name == SDN_CA_NAME:
        networkd.update_vswitch_controllers(ctx)


@api("pool.certificate_list")
def certificate_list(ctx: Context) -> list[str]:
    return sorted(ctx.ca_certs)


@api("pool.certificate_sync")
def certificate_sync(ctx: Context) -> None:
    """Xapi_pool.certificate_sync: every host gets the certificates (and its pssl listener) again."""
    networkd.update_vswitch_controllers(ctx)


def add(ctx: Context, pem: str, **values: str) -> None:
    """A Certificate record for `pem` (CERTIFICATE_CORRUPT if it does not parse)."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise XapiFailure("CERTIFICATE_CORRUPT", values.get("name", "")) from None
    fingerprint = certs.fingerprint(pem)
    ctx.store.create("Certificate", **values, fingerprint=fingerprint, fingerprint_sha256=fingerprint,
                     not_before=date(cert.not_valid_before_utc), not_after=date(cert.not_valid_after_utc))
