"""One XAPI client per pool session, for the daemon and the CLI alike.

XAPI's failures and the transport's exceptions become `XapiError` here, at this boundary, with
`code` set (XAPI's error code, or TRANSPORT), so callers test `exc.code` and never import XenAPI.
A `XenAPI.Session` is synchronous and not thread-safe: `call` holds a thread lock around it,
and `acall` queues coroutines on an asyncio lock and runs `call` in a worker thread.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
import urllib.parse
import xmlrpc.client
from collections.abc import Callable, Iterable
from typing import Any

import XenAPI

from sdnctl.config import PoolConfig
from sdnctl.errors import XapiError
from sdnctl.retry import Backoff
from sdnctl.xapi.session import close_session, open_session

TRANSPORT = XapiError.TRANSPORT
TRANSPORT_ERRORS = (OSError, xmlrpc.client.Error, http.client.HTTPException, EOFError)
# After these a new login (maybe on another host) can succeed where the old session cannot.
RELOGIN_CODES = frozenset({"HOST_IS_SLAVE", "SESSION_INVALID", TRANSPORT})


class XapiClient:
    """A logged-in session to a pool's master; logs in again once when the master moved or went away."""

    def __init__(self, pool: PoolConfig, *, timeout: float = 60.0,
                 known_hosts: Callable[[], Iterable[str]] = tuple):
        """`timeout` bounds every socket operation; `known_hosts` lists pool members' addresses to try."""
        self.pool = pool
        self.name = pool.name
        self.master_url = pool.url
        self._timeout = timeout
        self._known_hosts = known_hosts
        self._session: XenAPI.Session | None = None
        self._closed = False
        self._thread_lock = threading.Lock()
        self._lock = asyncio.Lock()
        self._backoff = Backoff()

    @property
    def handle(self) -> str | None:
        """The session's reference; it changes whenever the client (or XenAPI itself) logged in again."""
        session = self._session
        return session.handle if session is not None else None

    def candidate_urls(self) -> list[str]:
        """Where the master may be: the last master, the configured URL, then every known host."""
        parsed = urllib.parse.urlsplit(self.pool.url)
        port = f":{parsed.port}" if parsed.port else ""
        hosts = [urllib.parse.urlunsplit((parsed.scheme, f"{address}{port}", parsed.path, "", ""))
                 for address in self._known_hosts() if address]
        return list(dict.fromkeys([self.master_url, self.pool.url, *hosts]))

    def login(self) -> None:
        """Log in (again) through the first host that answers (the old master may be the one that died)."""
        with self._thread_lock:
            self._closed = False
            self._login()

    def _login(self) -> XenAPI.Session:
        self._drop()
        urls = self.candidate_urls()
        error: Exception | None = None
        for url in urls:
            try:
                self._session, self.master_url = open_session(self.pool, url, timeout=self._timeout)
            except TRANSPORT_ERRORS as exc:
                error = exc
                continue
            return self._session
        raise XapiError(f"pool {self.name}: cannot reach XAPI at {', '.join(urls)}: {error}", code=TRANSPORT)

    def call(self, method: str, *args: Any) -> Any:
        """Call `Class.method` on the master; raises XapiError (code = XAPI's code or TRANSPORT).

        On HOST_IS_SLAVE, SESSION_INVALID or a transport error it logs in again and retries once;
        if that fails too, the error's `retry_in` says when to try again.
        """
        return self._call(method, args, attempts=2)

    def call_once(self, method: str, *args: Any) -> Any:
        """`call` without the retry on a new session: for `event.from`, whose token belongs to the old one."""
        return self._call(method, args, attempts=1)

    def _call(self, method: str, args: tuple, *, attempts: int) -> Any:
        with self._thread_lock:
            for attempt in range(attempts):
                try:
                    session = self._session
                    if session is None:
                        if self._closed:
                            raise XapiError(f"pool {self.name}: {method}: the XAPI client is closed", code="CLOSED")
                        session = self._login()
                    func = session.xenapi
                    for part in method.split("."):
                        func = getattr(func, part)
                    result = func(*args)
                except XenAPI.Failure as exc:
                    details = [str(d) for d in exc.details] or ["UNKNOWN"]
                    error = XapiError(f"pool {self.name}: {method} failed: {exc.details}", details=details)
                except TRANSPORT_ERRORS as exc:
                    error = XapiError(f"pool {self.name}: {method} failed: {exc}", code=TRANSPORT)
                except XapiError as exc:    # from logging in
                    error = exc
                else:
                    self._backoff.reset()
                    return result
                if error.code not in RELOGIN_CODES:
                    raise error from None
                # No logout: a dead host would block it, and a slave's or expired session is gone anyway.
                self._session = None
                if attempt == attempts - 1:
                    error.retry_in = self._backoff.next()
                    raise error from None
        raise AssertionError("unreachable")

    async def acall(self, method: str, *args: Any) -> Any:
        """`call` from the event loop: one caller at a time, in a worker thread."""
        async with self._lock:
            return await asyncio.to_thread(self.call, method, *args)

    def close(self) -> None:
        """Log out; while a call is in flight (an event.from long-poll), just forget the session."""
        self._closed = True
        if self._thread_lock.acquire(blocking=False):
            try:
                self._drop(logout=True)
            finally:
                self._thread_lock.release()
        else:
            self._session = None  # the XAPI session expires by itself; waiting here could take a long-poll

    def _drop(self, *, logout: bool = False) -> None:
        session, self._session = self._session, None
        if session is not None and logout:
            close_session(session)
