"""Certificates, key files, PSK store and MTU arithmetic: pure or file-only, no servers."""

from __future__ import annotations

import datetime
import logging
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from sdnctl import certs
from sdnctl.errors import CertError
from sdnctl.ipsec import PskStore, RedactSecrets
from sdnctl.networks import mtu_limit

NOW = datetime.datetime(2026, 11, 23, tzinfo=datetime.timezone.utc)


def load(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ca_and_client_have_the_constraints_openssl3_wants(tmp_path):
    paths, created = certs.ensure_controller_certs(tmp_path / "certs", NOW)
    assert created
    ca, client = load(paths.ca_cert), load(paths.client_cert)
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign
    assert not client.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ExtendedKeyUsageOID.CLIENT_AUTH in client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    client.verify_directly_issued_by(ca)
    assert ca.not_valid_after_utc - NOW > datetime.timedelta(days=3000)


def test_private_keys_are_0600_and_the_dir_0700(tmp_path):
    paths, _ = certs.ensure_controller_certs(tmp_path / "certs", NOW)
    assert (mode(paths.ca_key), mode(paths.client_key), mode(paths.dir)) == (0o600, 0o600, 0o700)


def test_init_is_idempotent(tmp_path):
    paths, _ = certs.ensure_controller_certs(tmp_path / "certs", NOW)
    before = {p: p.read_bytes() for p in (paths.ca_cert, paths.ca_key, paths.client_cert, paths.client_key)}
    _, created = certs.ensure_controller_certs(tmp_path / "certs", NOW)
    assert not created
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize("breakage,message", [
    (lambda p: p.ca_cert.unlink(), "only half of the CA"),
    (lambda p: p.client_key.write_text(certs.make_ca("x", NOW).key_pem), "does not belong to the key"),
    (lambda p: p.client_key.chmod(0o644), "readable by others"),
], ids=["half-ca", "mismatched-key", "exposed-key"])
def test_broken_cert_dir_is_refused_not_overwritten(tmp_path, breakage, message):
    paths, _ = certs.ensure_controller_certs(tmp_path / "certs", NOW)
    breakage(paths)
    with pytest.raises(CertError, match=message):
        certs.ensure_controller_certs(tmp_path / "certs", NOW)


def test_rotation_keeps_the_ca_and_changes_the_client(tmp_path):
    paths, _ = certs.ensure_controller_certs(tmp_path / "certs", NOW)
    ca_before, client_before = paths.ca_cert.read_text(), paths.client_cert.read_text()
    certs.rotate_client(paths, NOW)
    assert paths.ca_cert.read_text() == ca_before
    assert certs.fingerprint(paths.client_cert.read_text()) != certs.fingerprint(client_before)
    load(paths.client_cert).verify_directly_issued_by(load(paths.ca_cert))
    assert mode(paths.client_key) == 0o600


def test_expiry_within_30_days_is_flagged(tmp_path):
    issued = NOW - certs.LEAF_VALIDITY + datetime.timedelta(days=10)
    paths, _ = certs.ensure_controller_certs(tmp_path / "certs", issued)
    assert certs.cert_info(paths.client_cert, NOW).expiring
    assert not certs.cert_info(paths.ca_cert, NOW).expiring


@pytest.mark.parametrize("a,b,same", [
    ("AB:CD", "abcd", True), ("ab cd", "AB:CD", True), ("AB:CD", "AB:CE", False), (None, "AB", False), ("", "", False),
], ids=["case", "spaces", "different", "none", "empty"])
def test_fingerprint_comparison(a, b, same):
    assert certs.same_fingerprint(a, b) is same


@pytest.mark.parametrize("encapsulation,encrypted,expected", [
    ("gre", False, 1456), ("vxlan", False, 1450), ("gre", True, 1410), ("vxlan", True, 1404),
], ids=["gre", "vxlan", "gre-ipsec", "vxlan-ipsec"])
def test_mtu_auto(encapsulation, encrypted, expected):
    assert mtu_limit(1500, encapsulation, encrypted) == expected


def test_psk_store_creates_once_rotates_and_keeps_files_private(tmp_path):
    store = PskStore(tmp_path)
    first = store.get_or_create("net-1")
    assert len(first) >= 40 and store.get_or_create("net-1") == first
    version = store.version()
    store.rotate("net-1")
    assert store.get("net-1") not in (None, first)
    assert store.version() != version
    assert mode(store.dir) == 0o700 and mode(store.dir / "net-1.psk") == 0o600
    with pytest.raises(ValueError):
        store.get_or_create("../escape")


def test_redaction_masks_registered_secrets():
    redactor = RedactSecrets()
    redactor.add("s3cret-psk")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "options %s", ({"psk": "s3cret-psk"},), None)
    assert redactor.filter(record)
    assert "s3cret-psk" not in record.getMessage() and "<redacted>" in record.getMessage()
