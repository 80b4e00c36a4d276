"""Pinned mutual TLS: the one context builder, certificate fingerprints, and the OVSDB stream's diagnosis codes.

The handshakes are real: a local TLS server (a thread on 127.0.0.1) plays the host's ovsdb-server.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sdnctl import certs
from sdnctl.errors import OvsdbError
from sdnctl.openflow import tls as of_tls
from sdnctl.ovsdb import tls as ovsdb_tls
from sdnctl.ovsdb.switch import HostSwitch, _fetch_schema
from sdnctl.tls import pinned_client_context

NOW = datetime.datetime.now(datetime.timezone.utc)


def _write(pair: certs.KeyPair, directory: Path, name: str) -> tuple[str, str]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    cert.write_text(pair.cert_pem)
    key.write_text(pair.key_pem)
    return str(cert), str(key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """sdnctl's CA and client, another controller's CA and client, and two host certificates."""
    directory = tmp_path_factory.mktemp("pki")
    ours, theirs = certs.make_ca("sdnctl CA", NOW), certs.make_ca("other CA", NOW)
    host = certs.make_self_signed_server("host1", ["127.0.0.1"], NOW)
    other_host = certs.make_self_signed_server("host2", ["127.0.0.1"], NOW)
    return {
        "ca": ours, "host": host, "other_host": other_host,
        "host_files": _write(host, directory, "host"),
        "client_files": _write(certs.issue_leaf(ours, "sdnctl", NOW, client=True, server=False), directory, "c"),
        "foreign_client_files": _write(certs.issue_leaf(theirs, "xo", NOW, client=True, server=False),
                                       directory, "xo"),
    }


class TlsHost:
    """A host's TLS listener: presents `cert_files`, requires clients signed by `client_ca_pem`."""

    def __init__(self, cert_files: tuple[str, str], client_ca_pem: str):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(*cert_files)
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.load_verify_locations(cadata=client_ca_pem)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.target = f"127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self.sock.accept()
            except TimeoutError:
                continue
            raw.settimeout(5)
            try:
                with self.ctx.wrap_socket(raw, server_side=True):
                    pass  # handshake only: we want the client's verdict, not OVSDB
            except (ssl.SSLError, OSError):
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def tls_host(pki):
    hosts: list[TlsHost] = []

    def start(client_ca_pem: str | None = None) -> TlsHost:
        hosts.append(TlsHost(pki["host_files"], client_ca_pem or pki["ca"].cert_pem))
        return hosts[-1]

    yield start
    for host in hosts:
        host.stop()


def test_the_pinned_context_trusts_only_the_pin_and_presents_our_certificate(pki):
    ctx = pinned_client_context(pki["host"].cert_pem, *pki["client_files"])
    assert ctx.protocol == ssl.PROTOCOL_TLS_CLIENT and ctx.verify_mode == ssl.CERT_REQUIRED
    assert not ctx.check_hostname and ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_flags & ssl.VERIFY_X509_PARTIAL_CHAIN
    assert ctx.cert_store_stats()["x509"] == 1  # the pin is the only anchor (it is no CA: get_ca_certs skips it)


def test_openflow_and_ovsdb_build_the_same_context(pki):
    ovsdb_tls.set_client_certificate(*pki["client_files"])
    ovsdb_tls.pin("192.0.2.1:6640", pki["host"].cert_pem)
    ovsdb = ovsdb_tls.context_for("192.0.2.1:6640")
    openflow = of_tls.client_context(*pki["client_files"], pki["host"].cert_pem)
    settings = lambda c: (c.verify_mode, c.check_hostname, c.minimum_version, c.verify_flags, c.options,  # noqa: E731
                          c.cert_store_stats())
    assert settings(ovsdb) == settings(openflow)
    assert openflow.sslsocket_class is of_tls.SwitchSocket and ovsdb.sslsocket_class is ssl.SSLSocket


def test_fingerprint_reads_pem_text_pem_bytes_and_der(pki):
    pem = pki["host"].cert_pem
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    expected = certs.fingerprint(pem)
    assert certs.fingerprint(pem.encode()) == certs.fingerprint(der) == expected
    assert len(expected) == 95 and expected == expected.upper() and expected.count(":") == 31
    with pytest.raises(ValueError):
        certs.fingerprint(b"not a certificate")


def _verify_error() -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "self-signed certificate"
    return exc


@pytest.mark.parametrize(("exc", "code", "words"), [
    (_verify_error(), ovsdb_tls.PIN_MISMATCH, "does not match"),
    (ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca"), ovsdb_tls.CLIENT_REJECTED,
     "rejected sdnctl's client certificate"),
    (ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate"), ovsdb_tls.CLIENT_REJECTED,
     "rejected sdnctl's client certificate"),
    (ConnectionResetError(104, "Connection reset by peer"), ovsdb_tls.TLS, "TLS failure"),
], ids=["pin-mismatch", "unknown-ca", "bad-certificate", "other"])
def test_diagnosis_codes(exc, code, words):
    got_code, got_words = ovsdb_tls.diagnose(exc)
    assert got_code == code and words in got_words


def test_a_host_with_another_certificate_is_a_pin_mismatch(pki, tls_host):
    host = tls_host()
    ovsdb_tls.set_client_certificate(*pki["client_files"])
    ovsdb_tls.pin(host.target, pki["other_host"].cert_pem)
    with pytest.raises(OvsdbError, match="does not match") as caught:
        _fetch_schema(f"{ovsdb_tls.SCHEME}:{host.target}")
    assert caught.value.code == ovsdb_tls.PIN_MISMATCH
    switch = HostSwitch("uuid", "host1", "127.0.0.1", host.port, lambda _: None)
    assert switch.error_code == ovsdb_tls.PIN_MISMATCH and "does not match" in switch.status_error()


def test_a_host_that_refuses_our_client_certificate_is_client_rejected(pki, tls_host):
    host = tls_host(client_ca_pem=certs.make_ca("someone else's CA", NOW).cert_pem)
    ovsdb_tls.set_client_certificate(*pki["client_files"])
    ovsdb_tls.pin(host.target, pki["host"].cert_pem)
    with pytest.raises(OvsdbError, match="rejected sdnctl's client certificate") as caught:
        _fetch_schema(f"{ovsdb_tls.SCHEME}:{host.target}")
    assert caught.value.code == ovsdb_tls.CLIENT_REJECTED
    assert ovsdb_tls.last_error_code(host.target) == ovsdb_tls.CLIENT_REJECTED


def test_a_switch_error_of_its_own_carries_its_code_and_words():
    switch = HostSwitch("uuid", "host1", "192.0.2.9", 6640, lambda _: None)
    assert switch.error_code is None and switch.status_error() is None
    switch.error, switch._error_code = "cannot connect: host certificate does not match", ovsdb_tls.PIN_MISMATCH
    assert switch.error_code == ovsdb_tls.PIN_MISMATCH
