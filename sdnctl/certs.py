"""Certificates made with `cryptography`: the controller CA, its client certificate, host certificates."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sdnctl.errors import CertError

CA_VALIDITY = datetime.timedelta(days=3650)
HOST_VALIDITY = datetime.timedelta(days=3650)   # Selfcert.host: expire_days = 3650
HOST_KEY_BITS = 2048                            # Selfcert.host: length = 2048
LEAF_VALIDITY = datetime.timedelta(days=825)


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate and its PEM private key."""

    cert_pem: str
    key_pem: str


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key, validity: datetime.timedelta, now: datetime.datetime):
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + validity)
    )


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def make_ca(common_name: str, now: datetime.datetime) -> KeyPair:
    """A CA that OpenSSL 3 accepts: basicConstraints CA:TRUE (critical), keyCertSign."""
    key = _new_key()
    cert = (
        _builder(_name(common_name), _name(common_name), key.public_key(), CA_VALIDITY, now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key))


def issue_leaf(ca: KeyPair, common_name: str, now: datetime.datetime, *, client: bool, server: bool,
               names: list[str] = ()) -> KeyPair:
    """A certificate signed by `ca` for TLS client and/or server use."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.encode())
    ca_key = serialization.load_pem_private_key(ca.key_pem.encode(), password=None)
    key = _new_key()
    usages = ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else []) + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
    builder = (
        _builder(_name(common_name), ca_cert.subject, key.public_key(), LEAF_VALIDITY, now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if names:
        builder = builder.add_extension(_san(list(names)), critical=False)
    cert = builder.sign(ca_key, hashes.SHA384())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key))


def make_self_signed_server(common_name: str, names: list[str], now: datetime.datetime) -> KeyPair:
    """A host's `xapi-ssl.pem` as XAPI makes it: RSA 2048, self-signed, CN and subjectAltName only, SHA-256.

    Modelled on xen-api's `Selfcert.host` (gencert): `openssl genrsa 2048`, 3650 days, the SAN
    the only extension.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=HOST_KEY_BITS)
    cert = (
        _builder(_name(common_name), _name(common_name), key.public_key(), HOST_VALIDITY, now)
        .add_extension(_san(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key))


def fingerprint(cert: str | bytes) -> str:
    """SHA-256 fingerprint of a certificate, PEM (text or bytes) or DER, as upper-case colon-separated hex.

    Raises ValueError if `cert` is not a certificate.
    """
    data = cert.encode() if isinstance(cert, str) else cert
    if data.lstrip().startswith(b"-----BEGIN"):
        parsed = x509.load_pem_x509_certificate(data)
    else:
        parsed = x509.load_der_x509_certificate(data)
    return parsed.fingerprint(hashes.SHA256()).hex(":").upper()


def write_private(path: Path, data: str) -> None:
    """Write a secret atomically, mode 0600 from its first byte, owned like its directory (`own_like_parent`)."""
    tmp = path.with_name(f".{path.name}.tmp")
    write_synced(tmp, data)
    os.replace(tmp, path)


def write_synced(path: Path, data: str) -> None:
    """`path` made anew (mode 0600, owned like its directory) with `data`, on disk when this returns; on any
    failure (a full disk) nothing is left behind."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        own_like_parent(path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def write_public(path: Path, data: str) -> None:
    """Write a public file (certificate) atomically, owned like its directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(data)
    own_like_parent(tmp)
    os.replace(tmp, path)


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) mode 0700, each new directory owned like its parent."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        own_like_parent(directory)
    if path.stat().st_mode & 0o777 != 0o700:   # not on every call: a read-only state dir must stay readable
        os.chmod(path, 0o700)


def own_like_parent(path: Path) -> None:
    """Run as root (the CLI, say), give `path` the owner and group of its directory: the daemon's service
    user, who owns its state directory, must be able to read what root wrote there. Otherwise a no-op."""
    if os.geteuid() != 0:
        return
    parent = path.parent.stat()
    if (parent.st_uid, parent.st_gid) != (0, 0):
        os.chown(path, parent.st_uid, parent.st_gid)


CA_CERT, CA_KEY = "ca-cert.pem", "ca-key.pem"
CLIENT_CERT, CLIENT_KEY = "client-cert.pem", "client-key.pem"
POOL_CA_NAME = "sdn-controller-ca.pem"


@dataclass(frozen=True)
class ControllerCerts:
    """Paths of the controller's CA and client certificate in the cert dir."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / CA_CERT

    @property
    def ca_key(self) -> Path:
        return self.dir / CA_KEY

    @property
    def client_cert(self) -> Path:
        return self.dir / CLIENT_CERT

    @property
    def client_key(self) -> Path:
        return self.dir / CLIENT_KEY


def _load_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, object]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if cert.public_key().public_numbers() != key.public_key().public_numbers():
        raise CertError(f"{cert_path} does not belong to the key {key_path}")
    return cert, key


def check_controller_certs(paths: ControllerCerts, now: datetime.datetime) -> None:
    """Raise CertError if the cert dir's files are unreadable, mismatched, expired or not mode 0600."""
    try:
        ca, _ = _load_pair(paths.ca_cert, paths.ca_key)
        client, _ = _load_pair(paths.client_cert, paths.client_key)
    except (OSError, ValueError) as exc:
        raise CertError(f"cannot use the certificates in {paths.dir}: {exc}") from None
    try:
        client.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise CertError(f"{paths.client_cert} was not issued by {paths.ca_cert}; run `sdnctl certs rotate`") from None
    for cert, path in ((ca, paths.ca_cert), (client, paths.client_cert)):
        if cert.not_valid_after_utc <= now:
            raise CertError(f"{path} expired on {cert.not_valid_after_utc:%Y-%m-%d}; run `sdnctl certs rotate`")
    for key in (paths.ca_key, paths.client_key):
        if key.stat().st_mode & 0o077:
            raise CertError(f"{key} is readable by others (mode {key.stat().st_mode & 0o777:o}); chmod 600 {key}")


def ensure_controller_certs(cert_dir: Path, now: datetime.datetime) -> tuple[ControllerCerts, bool]:
    """The CA and client certificate in `cert_dir`, created if missing; (paths, created?).

    Existing valid files are kept; existing invalid ones raise CertError rather than being overwritten.
    """
    paths = ControllerCerts(cert_dir)
    present = [p for p in (paths.ca_cert, paths.ca_key, paths.client_cert, paths.client_key) if p.exists()]
    if len(present) == 4:
        check_controller_certs(paths, now)
        return paths, False
    if paths.ca_key in present and paths.ca_cert not in present or paths.ca_cert in present and paths.ca_key not in present:
        raise CertError(f"{cert_dir} holds only half of the CA ({', '.join(p.name for p in present)}); "
                        "restore the missing file from backup or move the directory away to start afresh")
    make_private_dir(cert_dir)
    if paths.ca_cert in present:
        ca = KeyPair(paths.ca_cert.read_text(), paths.ca_key.read_text())
    else:
        ca = make_ca("sdnctl controller CA", now)
        write_private(paths.ca_key, ca.key_pem)
        write_public(paths.ca_cert, ca.cert_pem)
    issue_client(paths, ca, now)
    return paths, True


def issue_client(paths: ControllerCerts, ca: KeyPair, now: datetime.datetime) -> None:
    """A new client certificate under the CA, written key first, each file replaced atomically."""
    client = issue_leaf(ca, "sdnctl controller", now, client=True, server=False)
    write_private(paths.client_key, client.key_pem)
    write_public(paths.client_cert, client.cert_pem)


def rotate_client(paths: ControllerCerts, now: datetime.datetime) -> None:
    """Replace the client certificate (same CA): hosts keep trusting it, tunnels stay."""
    check_controller_certs(paths, now - datetime.timedelta(days=36500))  # an expired client may be rotated
    issue_client(paths, KeyPair(paths.ca_cert.read_text(), paths.ca_key.read_text()), now)


@dataclass(frozen=True)
class CertInfo:
    """What `certs show` and `status` say about a certificate."""

    path: str
    subject: str
    issuer: str
    fingerprint: str
    not_after: str
    days_left: int

    @property
    def expiring(self) -> bool:
        return self.days_left < EXPIRY_WARNING_DAYS


EXPIRY_WARNING_DAYS = 30


def cert_info(path: Path, now: datetime.datetime) -> CertInfo:
    pem = path.read_text()
    cert = x509.load_pem_x509_certificate(pem.encode())
    return CertInfo(str(path), cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), fingerprint(pem),
                    f"{cert.not_valid_after_utc:%Y-%m-%d}", (cert.not_valid_after_utc - now).days)


def same_fingerprint(a: str | None, b: str | None) -> bool:
    """Compare SHA-256 fingerprints whatever their case or separators."""
    def norm(value: str | None) -> str:
        return (value or "").replace(":", "").replace(" ", "").upper()
    return bool(a) and norm(a) == norm(b)
