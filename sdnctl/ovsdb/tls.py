"""A python-ovs stream type, `sdnssl:IP:PORT`, that pins each host's own certificate.

python-ovs keeps one process-wide CA file for every `ssl:` connection, so it cannot tell one
host from another. This stream trusts exactly the certificate XAPI reports for the host
(`host.get_server_certificate`) and records why a handshake failed, so `status` can say
"wrong host certificate" or "the host does not trust our CA" instead of an errno, each with a
code the daemon tests: PIN_MISMATCH, CLIENT_REJECTED or TLS.
"""

from __future__ import annotations

import errno
import socket
import ssl
import threading

import ovs.socket_util
import ovs.stream

from sdnctl.tls import pinned_client_context

SCHEME = "sdnssl"
PIN_MISMATCH = "PIN_MISMATCH"          # the host's certificate is not the pinned one
CLIENT_REJECTED = "CLIENT_REJECTED"    # the host refused sdnctl's client certificate
TLS = "TLS"                            # any other TLS failure

_lock = threading.Lock()
_pins: dict[str, str] = {}          # "IP:PORT" -> the host's PEM certificate
_client: tuple[str, str] | None = None   # (certificate file, private key file)
_errors: dict[str, tuple[str, str]] = {}   # "IP:PORT" -> the last TLS failure: (code, words)


def set_client_certificate(cert_file: str, key_file: str) -> None:
    """The certificate sdnctl presents to every host (signed by the CA the pools trust)."""
    global _client
    with _lock:
        _client = (cert_file, key_file)


def pin(target: str, cert_pem: str) -> None:
    """Trust only `cert_pem` for the host at `target` ("IP:PORT")."""
    with _lock:
        _pins[target] = cert_pem


def last_error(target: str) -> str | None:
    """Why the last TLS attempt to `target` failed, in words (None if it did not)."""
    with _lock:
        found = _errors.get(target)
    return found[1] if found else None


def last_error_code(target: str) -> str | None:
    """Why the last TLS attempt to `target` failed: PIN_MISMATCH, CLIENT_REJECTED, TLS, or None."""
    with _lock:
        found = _errors.get(target)
    return found[0] if found else None


def _record(target: str, diagnosis: tuple[str, str] | None) -> None:
    with _lock:
        if diagnosis is None:
            _errors.pop(target, None)
        else:
            _errors[target] = diagnosis


def context_for(target: str) -> ssl.SSLContext:
    """A TLS client context that trusts only the pinned certificate of `target`."""
    with _lock:
        pinned, client = _pins.get(target), _client
    if pinned is None or client is None:
        raise ssl.SSLError(f"no pinned certificate or client certificate for {target}")
    return pinned_client_context(pinned, *client)


REJECTED_CLIENT_CERT = CLIENT_REJECTED, (
    "the host rejected sdnctl's client certificate during the TLS handshake: the pool does not trust "
    "sdnctl's CA (another controller's sdn-controller-ca.pem is installed?); fix: `sdnctl certs install "
    "--override` or set override_certs = true")


# The alerts a host sends when it refuses our client certificate: OpenSSL's reason, and its words.
_REJECTION_ALERTS = frozenset({"TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
                               "SSLV3_ALERT_BAD_CERTIFICATE"})
_REJECTION_WORDS = ("unknown ca", "certificate unknown", "bad certificate")


def diagnose(exc: BaseException) -> tuple[str, str]:
    """(code, operator words) for a TLS failure."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PIN_MISMATCH, ("host certificate does not match the one XAPI reports for this host "
                              f"(pinned); refusing it: {exc.verify_message}")
    text = str(exc)
    if getattr(exc, "reason", None) in _REJECTION_ALERTS or any(alert in text for alert in _REJECTION_WORDS):
        return REJECTED_CLIENT_CERT
    return TLS, f"TLS failure: {text}"


class PinnedSSLStream(ovs.stream.SSLStream):
    """python-ovs's SSL stream with a per-host trust anchor and readable errors."""

    @staticmethod
    def check_connection_completion(sock):
        # Ask the socket first: python-ovs would report a refused connection as an SSL error
        # code posing as an errno.
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or ovs.stream.Stream.check_connection_completion(sock)

    @staticmethod
    def _open(suffix, dscp):
        address = ovs.socket_util.inet_parse_active(suffix, 0, raises=False)
        family, sock = ovs.socket_util.inet_create_socket_active(socket.SOCK_STREAM, address)
        if sock is None:
            return family, sock
        _record(suffix, None)  # a new attempt: old diagnoses no longer apply
        try:
            ctx = context_for(suffix)
        except (ssl.SSLError, OSError) as exc:
            _record(suffix, diagnose(exc))
            sock.close()
            return errno.EPROTO, None
        ssl_sock = ctx.wrap_socket(sock, do_handshake_on_connect=False)
        return ovs.socket_util.inet_connect_active(ssl_sock, address, family, dscp), ssl_sock

    _answered = False  # has the host sent us any data since the handshake?

    def _target(self) -> str:
        return self.name.split(":", 1)[1]

    def _fail(self, exc: BaseException) -> int:
        """Record why the connection failed and return an errno for python-ovs."""
        if self._answered or isinstance(exc, ssl.SSLCertVerificationError):
            _record(self._target(), diagnose(exc))
        else:
            # Under TLS 1.3 our side of the handshake completes before the host checks our
            # certificate; a host that rejects it just closes the connection.
            _record(self._target(), REJECTED_CLIENT_CERT)
        return ovs.socket_util.get_exception_errno(exc) or errno.EPROTO

    def connect(self):
        retval = ovs.stream.Stream.connect(self)
        if retval:
            return retval
        try:
            self.socket.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return errno.EAGAIN
        except (ssl.SSLError, OSError) as exc:
            return self._fail(exc)
        return 0

    def recv(self, n):
        try:
            data = ovs.stream.Stream._recv(self, n)
        except ssl.SSLWantReadError:
            return (errno.EAGAIN, "")
        except ssl.SSLZeroReturnError:
            return (0, "")
        except (ssl.SSLError, OSError) as exc:
            return (self._fail(exc), "")
        if data[0] == 0 and data[1]:
            self._answered = True
            _record(self._target(), None)
        elif data[0] == 0 and n and not self._answered:
            _record(self._target(), REJECTED_CLIENT_CERT)
        return data

    def send(self, buf):
        try:
            return ovs.stream.Stream._send(self, buf)
        except ssl.SSLWantWriteError:
            return -errno.EAGAIN
        except (ssl.SSLError, OSError) as exc:
            return -self._fail(exc)


ovs.stream.Stream.register_method(SCHEME, PinnedSSLStream)
