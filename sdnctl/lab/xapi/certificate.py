"""The pool's CA certificates (pool.certificate_*, pool.*_ca_certificate) and Certificate records."""

from __future__ import annotations

import datetime
import re
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

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
    # Certificates.is_unsafe: no leading dot, only [A-Za-z0-9._-], and the name ends in `.pem`.
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._-]+\.pem", name) or name.startswith("."):
        raise XapiFailure("CERTIFICATE_NAME_INVALID", name)
    _assert_valid_ca(cert)
    if name in ctx.ca_certs:
        raise XapiFailure("CERTIFICATE_ALREADY_EXISTS", name)
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


def _assert_valid_ca(pem: Any) -> None:
    """Gencertlib.Lib.validate_not_expired with the CA errors: CA_CERTIFICATE_INVALID,
    CA_CERTIFICATE_NOT_VALID_YET [now; not_before] and CA_CERTIFICATE_EXPIRED [now; not_after]."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode()) if isinstance(pem, str) else None
    except ValueError:
        cert = None
    if cert is None:
        raise XapiFailure("CA_CERTIFICATE_INVALID")
    moment = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    if moment < cert.not_valid_before_utc:
        raise XapiFailure("CA_CERTIFICATE_NOT_VALID_YET", _rfc3339(moment), _rfc3339(cert.not_valid_before_utc))
    if moment > cert.not_valid_after_utc:
        raise XapiFailure("CA_CERTIFICATE_EXPIRED", _rfc3339(moment), _rfc3339(cert.not_valid_after_utc))


def _rfc3339(moment: datetime.datetime) -> str:
    """Ptime.to_rfc3339 ~tz_offset_s:0, as xapi formats a validity date in its errors."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def add(ctx: Context, pem: str, **values: str) -> None:
    """A Certificate record for `pem` (CERTIFICATE_CORRUPT if it does not parse), as
    Certificates.Db_util.add_cert fills it: SHA-256 and SHA-1 fingerprints, no purpose."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise XapiFailure("CERTIFICATE_CORRUPT", values.get("name", "")) from None
    fingerprint = certs.fingerprint(pem)
    sha1 = ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA1()))
    ctx.store.create("Certificate", **values, fingerprint=fingerprint, fingerprint_sha256=fingerprint,
                     fingerprint_sha1=sha1, not_before=date(cert.not_valid_before_utc),
                     not_after=date(cert.not_valid_after_utc))
