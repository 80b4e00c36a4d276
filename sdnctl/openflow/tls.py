"""Dialling a switch's `pssl:` OpenFlow listener: mutual TLS with the host certificate pinned.

os-ken's own TLS client is broken (`hub.StreamClient` calls `load_verify_location`), so the
socket is made here and handed to os-ken ready to use. Two more things os-ken cannot do:
- tell "the switch rejected our certificate" from other failures: under TLS 1.3 our side of the
  handshake completes before the switch checks our certificate, so the verdict only shows on the
  first read. We read the switch's OpenFlow HELLO here and give it back to os-ken's first recv();
- notice a TLS failure at all: its receive loop retries on any `ssl.SSLError` (meant for
  eventlet's read timeouts), which spins forever on a dead TLS session; `SwitchSocket.recv`
  turns such an error into a `ConnectionAbortedError`, which ends the loop.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

from sdnctl.openflow._osken import ofp, ofproto_common, ofproto_parser
from sdnctl.tls import pinned_client_context

OFP_HEADER_SIZE = ofproto_common.OFP_HEADER_SIZE
MAX_HELLO = 1024

PIN_MISMATCH = "switch certificate does not match the pinned host certificate"
CLIENT_REJECTED = "switch rejected our client certificate"
# Under TLS 1.3 a rejection is only an end of the connection, which a dying ovs-vswitchd looks like too.
AFTER_HANDSHAKE = "right after the TLS handshake"
CLOSED_AFTER_HANDSHAKE = ("the switch ended the connection {when}: either it rejected our client certificate (the "
                          "pool does not trust sdnctl's CA) or ovs-vswitchd stopped meanwhile")
_REJECTION_REASONS = ("CERTIFICATE", "UNKNOWN_CA", "ACCESS_DENIED", "DECRYPT_ERROR")


class SwitchRefused(Exception):
    """A connection attempt failed; the message is for operators."""


class SwitchSocket(ssl.SSLSocket):
    """The TLS socket os-ken's Datapath reads and writes; see the module docstring for why."""

    _prefetched = b""
    failure: str | None = None          # why the connection ended, in words, once it has
    datapath = None                     # the os-ken Datapath serving this socket
    link = None                         # the runtime's link this connection belongs to
    on_close: Callable[[], None] | None = None

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        if self._prefetched:
            data, self._prefetched = self._prefetched[:buflen], self._prefetched[buflen:]
            return data
        try:
            return super().recv(buflen, flags)
        except TimeoutError:
            raise                        # os-ken polls with a socket timeout; that is not a failure
        except ssl.SSLError as exc:
            self.failure = self.failure or describe_tls_failure(exc, after_handshake=True)
            raise ConnectionAbortedError(self.failure) from exc

    def close(self) -> None:
        super().close()
        hook, self.on_close = self.on_close, None
        if hook is not None:
            hook()

    def abort(self) -> None:
        """Cut the connection from another thread: the blocked recv() returns and os-ken unwinds."""
        try:
            socket.socket.shutdown(self, socket.SHUT_RDWR)
        except OSError:
            pass


def client_context(cert_file: str, key_file: str, pinned_cert_pem: str) -> ssl.SSLContext:
    """sdnctl's pinned mutual-TLS context, making SwitchSocket sockets for os-ken."""
    ctx = pinned_client_context(pinned_cert_pem, cert_file, key_file)
    ctx.sslsocket_class = SwitchSocket
    return ctx


def describe_tls_failure(exc: BaseException, *, after_handshake: bool) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"{PIN_MISMATCH} ({exc.verify_message}): refusing it"
    reason = getattr(exc, "reason", None) or str(exc)
    if isinstance(exc, ssl.SSLError) and "ALERT" in reason.upper() and any(
            r in reason.upper() for r in _REJECTION_REASONS):
        return (f"{CLIENT_REJECTED} ({reason.lower().replace('_', ' ')}): the host does not trust "
                "sdnctl's CA; install it on the pool")
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)) and after_handshake:
        return "switch closed the TLS session"
    return f"TLS failure: {exc}"


def open_switch(address: str, port: int, ctx: ssl.SSLContext, pin_der: bytes, timeout: float,
                track: Callable[[socket.socket], None]) -> SwitchSocket:
    """Connect, handshake, check the pin and read the switch's HELLO, each bounded by `timeout`.

    `track` is told of each socket as soon as it exists, so another thread can abort the attempt.
    Raises SwitchRefused with words an operator can act on.
    """
    where = f"{address}:{port}"
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    raw = socket.socket(family, socket.SOCK_STREAM)
    track(raw)
    raw.settimeout(timeout)
    try:
        raw.connect((address, port))
    except ConnectionRefusedError:
        raw.close()
        raise SwitchRefused(f"connection refused by {where}: no OpenFlow listener "
                            "(is a pssl: controller set on the bridge?)") from None
    except TimeoutError:
        raw.close()
        raise SwitchRefused(f"timed out connecting to {where} after {timeout}s") from None
    except OSError as exc:
        raw.close()
        raise SwitchRefused(f"cannot connect to {where}: {exc.strerror or exc}") from None
    try:
        sock = ctx.wrap_socket(raw)
    except TimeoutError:
        raw.close()
        raise SwitchRefused(f"{where}: TLS handshake timed out after {timeout}s") from None
    except (ssl.SSLError, OSError) as exc:
        raw.close()
        if isinstance(exc, ConnectionResetError):
            raise SwitchRefused(f"{where}: " + CLOSED_AFTER_HANDSHAKE.format(when="during the TLS handshake")) \
                from None
        raise SwitchRefused(f"{where}: {describe_tls_failure(exc, after_handshake=False)}") from None
    track(sock)
    try:
        if sock.getpeercert(binary_form=True) != pin_der:
            raise SwitchRefused(f"{where}: {PIN_MISMATCH} (chains to it but is another certificate)")
        sock._prefetched = _read_hello(sock, where, timeout)
    except BaseException:
        sock.close()
        raise
    return sock


def _read_hello(sock: ssl.SSLSocket, where: str, timeout: float) -> bytes:
    """The switch's OFPT_HELLO, which a switch sends first; its absence is the TLS 1.3 rejection."""
    buf = b""
    need = OFP_HEADER_SIZE
    while len(buf) < need:
        try:
            chunk = ssl.SSLSocket.recv(sock, need - len(buf))
        except TimeoutError:
            raise SwitchRefused(f"{where}: no OpenFlow HELLO from the switch within {timeout}s") from None
        except (ssl.SSLError, OSError) as exc:
            if isinstance(exc, (ssl.SSLEOFError, ConnectionResetError)) and not buf:
                raise SwitchRefused(f"{where}: {CLOSED_AFTER_HANDSHAKE.format(when=AFTER_HANDSHAKE)}") from None
            raise SwitchRefused(f"{where}: {describe_tls_failure(exc, after_handshake=True)}") from None
        if not chunk:
            if not buf:
                raise SwitchRefused(f"{where}: {CLOSED_AFTER_HANDSHAKE.format(when=AFTER_HANDSHAKE)}") from None
            raise SwitchRefused(f"{where}: the switch closed the connection in its OpenFlow HELLO")
        buf += chunk
        if len(buf) == OFP_HEADER_SIZE:
            version, msg_type, length, _xid = ofproto_parser.header(buf)
            if msg_type != ofp.OFPT_HELLO or not OFP_HEADER_SIZE <= length <= MAX_HELLO:
                raise SwitchRefused(f"{where}: expected an OpenFlow HELLO, got message type {msg_type}")
            if version < ofp.OFP_VERSION:
                # A switch offers its highest version; below 1.3 it cannot speak 1.3 at all.
                raise SwitchRefused(f"{where}: the listener speaks OpenFlow only up to version {version:#04x}, and "
                                    "sdnctl needs 1.3 (0x04): either another bridge's Controller row holds this "
                                    "port (e.g. Xen Orchestra's `pssl:6653` on xenbr0), or the bridge lacks "
                                    "OpenFlow13 in its protocols")
            need = length
    return buf
