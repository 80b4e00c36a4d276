"""XAPI sessions: TLS verification or pinning, a short connect timeout apart from the read timeout.

A dead host usually answers nothing at all, so connecting is bounded by CONNECT_TIMEOUT on its
own, reading by the caller's timeout (a long-poll needs more than an ordinary call), and a
logout never waits longer than LOGOUT_TIMEOUT.
"""

from __future__ import annotations

import http.client
import ipaddress
import ssl
import urllib.parse
import xmlrpc.client

import XenAPI

from sdnctl.certs import fingerprint
from sdnctl.config import PoolConfig
from sdnctl.errors import XapiError

CONNECT_TIMEOUT = 5.0   # seconds to connect (TCP and TLS handshake) to one host
LOGOUT_TIMEOUT = 2.0    # seconds a logout may take before the session is simply forgotten
ORIGINATOR = "sdnctl"


def host_url(url: str, address: str) -> str:
    """`url` with its host replaced by `address` (scheme, port and path kept); IPv6 addresses bracketed."""
    parsed = urllib.parse.urlsplit(url)
    address = address.strip("[]")
    try:
        bracketed = ipaddress.ip_address(address).version == 6
    except ValueError:
        bracketed = False           # a host name
    netloc = (f"[{address}]" if bracketed else address) + (f":{parsed.port}" if parsed.port else "")
    return urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path, "", ""))


def _tls_context(pool: PoolConfig) -> ssl.SSLContext:
    if not pool.tls_verify:
        return ssl._create_unverified_context()
    if pool.tls_ca_file:
        # XAPI's host certificates are self-signed and hosts are dialled by IP: the bundle is the identity.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(cafile=str(pool.tls_ca_file))
        return ctx
    if pool.tls_fingerprint:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # checked against the pinned fingerprint right after connect
        return ctx
    return ssl.create_default_context()


class _Transport(xmlrpc.client.SafeTransport):
    """XML-RPC over HTTP(S): connect within `connect_timeout`, then read within `read_timeout`; optional pin."""

    def __init__(self, *, https: bool, context: ssl.SSLContext, connect_timeout: float, read_timeout: float,
                 fingerprint: str | None):
        super().__init__(context=context)
        self._https = https
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._fingerprint = fingerprint

    def make_connection(self, host):
        if self._connection and host == self._connection[0]:
            return self._connection[1]
        if self._https:
            conn = super().make_connection(host)
        else:
            chost, self._extra_headers, _ = self.get_host_info(host)
            conn = http.client.HTTPConnection(chost)
            self._connection = host, conn
        connect = conn.connect

        def connect_then_read():
            conn.timeout = self.connect_timeout     # TCP connect and TLS handshake
            connect()
            if self._fingerprint:
                _check_pin(conn, self._fingerprint)
            conn.sock.settimeout(self.read_timeout)

        conn.connect = connect_then_read
        return conn

    def shorten(self, timeout: float) -> None:
        """From now on every socket operation, on the open connection too, takes at most `timeout`."""
        self.connect_timeout = min(self.connect_timeout, timeout)
        self.read_timeout = min(self.read_timeout, timeout)
        sock = getattr(self._connection[1], "sock", None) if self._connection else None
        if sock is not None:
            sock.settimeout(self.read_timeout)


def _check_pin(conn: http.client.HTTPConnection, expected: str) -> None:
    try:
        seen = fingerprint(conn.sock.getpeercert(binary_form=True))
    except ValueError:
        seen = "(not a certificate)"
    if seen != expected:
        conn.close()
        raise ssl.SSLError(f"XAPI certificate fingerprint {seen} is not the pinned {expected}")


class _Session(XenAPI.Session):
    """XenAPI.Session without its silent re-login: SESSION_INVALID reaches the caller.

    XenAPI logs in again by itself and retries; an event.from retried that way goes on with an
    old token that a restarted XAPI still accepts, and the gap in the picture goes unnoticed.
    """

    def xenapi_request(self, methodname, params):
        if methodname.startswith("login") or methodname in ("logout", "session.logout"):
            return super().xenapi_request(methodname, params)
        result = getattr(self, methodname)(self._session, *params)
        if isinstance(result, dict) and result.get("Status") == "Failure" \
                and (result.get("ErrorDescription") or [None])[0] == "SESSION_INVALID":
            raise XenAPI.Failure(result["ErrorDescription"])
        return XenAPI.XenAPI._parse_result(result)


def open_session(pool: PoolConfig, url: str, *, timeout: float,
                 connect_timeout: float = CONNECT_TIMEOUT) -> XenAPI.Session:
    """Log in at `url` (one host, no redirect): XapiError with XAPI's code, or a transport exception."""
    transport = _Transport(https=urllib.parse.urlsplit(url).scheme == "https", context=_tls_context(pool),
                           connect_timeout=connect_timeout, read_timeout=timeout, fingerprint=pool.tls_fingerprint)
    session = _Session(url, transport=transport)
    try:
        session.login_with_password(pool.username, pool.password(), "1.0", ORIGINATOR)
    except XenAPI.Failure as exc:
        details = [str(d) for d in exc.details] or ["UNKNOWN"]
        if details[0] == "SESSION_AUTHENTICATION_FAILED":
            raise XapiError(f"pool {pool.name}: XAPI at {url} refused user {pool.username!r}: "
                            f"check {pool.password_file}", details=details) from None
        raise XapiError(f"pool {pool.name}: login at {url} failed: {exc.details}", details=details) from None
    return session


def close_session(session: XenAPI.Session) -> None:
    """Log out within LOGOUT_TIMEOUT, ignoring a server that has gone away (the session then expires)."""
    transport = session.transport
    if isinstance(transport, _Transport):
        transport.shorten(LOGOUT_TIMEOUT)
    try:
        session.xenapi.session.logout()
    except (XenAPI.Failure, OSError, xmlrpc.client.Error, http.client.HTTPException):
        pass  # e.g. the event long-poll still holds the connection while the daemon stops
