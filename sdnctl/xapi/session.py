"""XAPI sessions: TLS verification or pinning, bounded socket timeouts, HOST_IS_SLAVE followed."""

from __future__ import annotations

import http.client
import ssl
import urllib.parse
import xmlrpc.client

import XenAPI

from sdnctl.certs import fingerprint
from sdnctl.config import PoolConfig
from sdnctl.errors import XapiError

MAX_REDIRECTS = 3
ORIGINATOR = "sdnctl"


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
    """XML-RPC over HTTP(S) with a socket timeout and an optional certificate fingerprint pin."""

    def __init__(self, *, https: bool, context: ssl.SSLContext, timeout: float, fingerprint: str | None):
        super().__init__(context=context)
        self._https = https
        self._timeout = timeout
        self._fingerprint = fingerprint

    def make_connection(self, host):
        if self._connection and host == self._connection[0]:
            return self._connection[1]
        if self._https:
            conn = super().make_connection(host)
        else:
            chost, self._extra_headers, _ = self.get_host_info(host)
            conn = xmlrpc.client.http.client.HTTPConnection(chost)
            self._connection = host, conn
        conn.timeout = self._timeout
        if self._fingerprint:
            connect, expected = conn.connect, self._fingerprint

            def connect_and_check():
                connect()
                try:
                    seen = fingerprint(conn.sock.getpeercert(binary_form=True))
                except ValueError:
                    seen = "(not a certificate)"
                if seen != expected:
                    conn.close()
                    raise ssl.SSLError(f"XAPI certificate fingerprint {seen} is not the pinned {expected}")

            conn.connect = connect_and_check
        return conn


def open_session(pool: PoolConfig, url: str | None = None, *, timeout: float = 30.0) -> tuple[XenAPI.Session, str]:
    """Log in to the pool, following HOST_IS_SLAVE to the master; returns (session, master URL)."""
    url = url or pool.url
    password = pool.password()
    for _ in range(MAX_REDIRECTS + 1):
        parsed = urllib.parse.urlsplit(url)
        transport = _Transport(https=parsed.scheme == "https", context=_tls_context(pool), timeout=timeout,
                               fingerprint=pool.tls_fingerprint)
        session = XenAPI.Session(url, transport=transport)
        try:
            session.login_with_password(pool.username, password, "1.0", ORIGINATOR)
            return session, url
        except XenAPI.Failure as exc:
            details = [str(d) for d in exc.details] or ["UNKNOWN"]
            if details[0] == "HOST_IS_SLAVE" and len(details) > 1:
                netloc = details[1] + (f":{parsed.port}" if parsed.port else "")
                url = urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path, "", ""))
                continue
            if details[0] == "SESSION_AUTHENTICATION_FAILED":
                raise XapiError(f"pool {pool.name}: XAPI at {url} refused user {pool.username!r}: "
                                f"check {pool.password_file}", details=details) from None
            raise XapiError(f"pool {pool.name}: login at {url} failed: {exc.details}", details=details) from None
    raise XapiError(f"pool {pool.name}: more than {MAX_REDIRECTS} HOST_IS_SLAVE redirects from {pool.url}",
                    code="HOST_IS_SLAVE")


def close_session(session: XenAPI.Session) -> None:
    """Log out, ignoring a server that has gone away."""
    try:
        session.xenapi.session.logout()
    except (XenAPI.Failure, OSError, xmlrpc.client.Error, http.client.HTTPException):
        pass  # e.g. the event long-poll still holds the connection while the daemon stops
