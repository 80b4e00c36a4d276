"""sdnctl's cipher policy against hosts configured like each XCP-ng version: real local handshakes.

Each host is a python `ssl` server context set the way that version's ovsdb-server is (8.3: the
exact `--ssl-ciphers`/`--ssl-protocols` of XCP-ng's ovs-ctl patch; 8.2: TLS 1.2+ with
DEFAULT@SECLEVEL=2), presenting an RSA 2048 certificate as XAPI makes them and requiring
sdnctl's client certificate. The negotiated suite is read from both ends.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from sdnctl import certs
from sdnctl.tls import FORWARD_SECRET_SUITES, XCPNG_STATIC_RSA_SUITES, pinned_client_context

NOW = datetime.datetime.now(datetime.timezone.utc)
XCPNG_83_CIPHERS = "AES256-GCM-SHA38:AES256-SHA256:AES256-SHA:AES128-GCM-SHA256:AES128-SHA256:AES128-SHA"
TLS12 = ssl.TLSVersion.TLSv1_2


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory: Path = tmp_path_factory.mktemp("pki")
    ca = certs.make_ca("sdnctl CA", NOW)
    client = certs.issue_leaf(ca, "sdnctl", NOW, client=True, server=False)
    files = {}
    for name, pair in {"client": client, "rsa_host": certs.make_self_signed_server("h1", ["127.0.0.1"], NOW),
                       "ec_host": certs.issue_leaf(ca, "h2", NOW, client=False, server=True)}.items():
        (directory / f"{name}.pem").write_text(pair.cert_pem)
        (directory / f"{name}.key").write_text(pair.key_pem)
        files[name] = (str(directory / f"{name}.pem"), str(directory / f"{name}.key"), pair.cert_pem)
    return {"ca": ca, **files}


def host_context(pki, *, ciphers: str | None, maximum: ssl.TLSVersion | None, cert: str = "rsa_host"):
    """A host's ovsdb-server TLS settings: its certificate, sdnctl's CA required of clients."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE  # python's default; OVS keeps OpenSSL's: the client's order
    ctx.minimum_version = TLS12
    if maximum is not None:
        ctx.maximum_version = maximum
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=pki["ca"].cert_pem)
    ctx.load_cert_chain(*pki[cert][:2])
    return ctx


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> tuple[str, str]:
    """(protocol, suite) both ends agree on; raises the client's ssl.SSLError if they agree on none."""
    server_raw, client_raw = socket.socketpair()
    server_raw.settimeout(5)
    client_raw.settimeout(5)
    seen: dict[str, object] = {}

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(server_raw, server_side=True) as tls:
                seen["server"] = tls.cipher()[0]
                tls.recv(1)      # until the client is done reading our handshake
        except (ssl.SSLError, OSError) as exc:
            seen["error"] = exc

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_ctx.wrap_socket(client_raw) as tls:
            tls.sendall(b"x")
            suite, version = tls.cipher()[0], tls.version()
    finally:
        client_raw.close()
        thread.join(timeout=5)
        server_raw.close()
    assert seen.get("server") == suite, seen
    return version, suite


def sdnctl_context(pki, host: str = "rsa_host") -> ssl.SSLContext:
    return pinned_client_context(pki[host][2], *pki["client"][:2])


def test_the_offer_is_ecdhe_first_then_xcpng_static_rsa(pki):
    offered = sdnctl_context(pki).get_ciphers()
    tls12 = [c["name"] for c in offered if not c["name"].startswith("TLS_")]
    assert tls12 == [*FORWARD_SECRET_SUITES, *XCPNG_STATIC_RSA_SUITES]
    assert {c["kea"] for c in offered if c["name"] in FORWARD_SECRET_SUITES} == {"kx-ecdhe"}
    assert {c["kea"] for c in offered if c["name"] in XCPNG_STATIC_RSA_SUITES} == {"kx-rsa"}
    assert any(c["protocol"] == "TLSv1.3" for c in offered)


def test_openssl_drops_the_misspelt_suite_of_xcpng_83():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers(XCPNG_83_CIPHERS)
    tls12 = [c["name"] for c in ctx.get_ciphers() if not c["name"].startswith("TLS_")]
    assert tls12 == ["AES256-SHA256", "AES256-SHA", "AES128-GCM-SHA256", "AES128-SHA256", "AES128-SHA"]
    with pytest.raises(ssl.SSLError, match="No cipher can be selected"):
        ctx.set_ciphers("AES256-GCM-SHA38")


@pytest.mark.parametrize(("ciphers", "maximum", "cert", "expected"), [
    (XCPNG_83_CIPHERS, TLS12, "rsa_host", ("TLSv1.2", "AES128-GCM-SHA256")),
    ("DEFAULT@SECLEVEL=2", TLS12, "rsa_host", ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384")),
    ("DEFAULT@SECLEVEL=2", None, "rsa_host", ("TLSv1.3", "TLS_AES_256_GCM_SHA384")),
    (None, TLS12, "ec_host", ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384")),
    ("AES256-SHA256:AES128-SHA", TLS12, "rsa_host", ("TLSv1.2", "AES256-SHA256")),
], ids=["xcpng-8.3", "xcpng-8.2-ovs-tls1.2", "xcpng-8.2-tls1.3", "ecdsa-host", "8.3-narrowed-to-cbc"])
def test_negotiated_suite(pki, ciphers, maximum, cert, expected):
    assert handshake(host_context(pki, ciphers=ciphers, maximum=maximum, cert=cert), sdnctl_context(pki, cert)) \
        == expected


def test_python_default_client_cannot_talk_to_an_xcpng_83_host(pki):
    """The issue's reproduction: the default client offers no static-RSA suite."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.minimum_version = TLS12
    ctx.load_verify_locations(cadata=pki["rsa_host"][2])
    ctx.load_cert_chain(*pki["client"][:2])
    with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
        handshake(host_context(pki, ciphers=XCPNG_83_CIPHERS, maximum=TLS12), ctx)


@pytest.mark.parametrize(("ciphers", "cert"), [
    ("DHE-RSA-AES256-GCM-SHA384", "rsa_host"),     # finite-field DH: no XCP-ng host asks for it
    ("CAMELLIA256-SHA", "rsa_host"),
    (XCPNG_83_CIPHERS, "ec_host"),                 # static RSA needs an RSA certificate
], ids=["dhe-only", "camellia-only", "static-rsa-with-ecdsa-cert"])
def test_it_fails_only_where_neither_side_can(pki, ciphers, cert):
    with pytest.raises(ssl.SSLError):
        handshake(host_context(pki, ciphers=ciphers, maximum=TLS12, cert=cert), sdnctl_context(pki, cert))


def test_host_certificates_are_rsa_2048_self_signed_like_xapi_ssl_pem(pki):
    cert = x509.load_pem_x509_certificate(pki["rsa_host"][2].encode())
    assert cert.public_key().key_size == 2048 and cert.issuer == cert.subject
    assert [ext.oid for ext in cert.extensions] == [x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME]
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 3650
