"""One XAPI client per pool session, for the daemon and the CLI alike.

XAPI's failures and the transport's exceptions become `XapiError` here, at this boundary, with
`code` set (XAPI's error code, or TRANSPORT), so callers test `exc.code` and never import XenAPI.
A `XenAPI.Session` is synchronous and not thread-safe: `call` holds a thread lock around it,
and `acall` queues coroutines on an asyncio lock and runs `call` in a daemon thread of its own
(a host that hangs then holds no shared worker pool, and stopping never waits for it).
"""

from __future__ import annotations

import asyncio
import http.client
import threading
import xmlrpc.client
from collections.abc import Callable, Iterable
from typing import Any

import XenAPI

from sdnctl.config import PoolConfig
from sdnctl.core.candidates import login_order
from sdnctl.errors import XapiError
from sdnctl.retry import Backoff
from sdnctl.xapi.session import CONNECT_TIMEOUT, close_session, host_url, open_session

TRANSPORT = XapiError.TRANSPORT
TRANSPORT_ERRORS = (OSError, xmlrpc.client.Error, http.client.HTTPException, EOFError)
# After these a new login (maybe on another host) can succeed where the old session cannot.
RELOGIN_CODES = frozenset({"HOST_IS_SLAVE", "SESSION_INVALID", TRANSPORT})
MAX_REDIRECTS = 3


async def in_daemon_thread(func: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking call in a daemon thread of its own: stopping never waits for it to return."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        try:
            loop.call_soon_threadsafe(lambda: future.done() or outcome())
        except RuntimeError:
            pass  # the loop has closed: nobody is waiting any more

    def work():
        try:
            result = func(*args)
        except BaseException as exc:  # handed to the awaiting coroutine
            settle(lambda error=exc: future.set_exception(error))
        else:
            settle(lambda: future.set_result(result))

    threading.Thread(target=work, name=f"xapi {getattr(func, '__name__', 'call')}", daemon=True).start()
    return await future


class XapiClient:
    """A logged-in session to a pool's master; logs in again once when the master moved or went away."""

    def __init__(self, pool: PoolConfig, *, timeout: float = 60.0, connect_timeout: float = CONNECT_TIMEOUT,
                 known_hosts: Callable[[], Iterable[str]] = tuple):
        """`timeout` bounds each read, `connect_timeout` each connect; `known_hosts` lists members' addresses."""
        self.pool = pool
        self.name = pool.name
        self.master_url = pool.url
        self.master_unreachable = False   # the transport to master_url failed last: try it last
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._known_hosts = known_hosts
        self._session: XenAPI.Session | None = None
        self._closed = False
        self._thread_lock = threading.Lock()
        self._lock = asyncio.Lock()
        self._backoff = Backoff()

    @property
    def handle(self) -> str | None:
        """The session's reference; it changes whenever the client logged in again."""
        session = self._session
        return session.handle if session is not None else None

    def candidate_urls(self) -> list[str]:
        """Where the master may be: the last master, the configured URL, every known host (see login_order)."""
        members = [host_url(self.pool.url, address) for address in self._known_hosts() if address]
        return login_order(self.master_url, self.pool.url, members, master_unreachable=self.master_unreachable)

    def follow(self, master_url: str) -> None:
        """Another session found the master at `master_url`: log in there next, forgetting a session elsewhere."""
        if master_url != self.master_url:
            self._session = None    # no logout: the old master may be the one that died
        self.master_url, self.master_unreachable = master_url, False

    def login(self) -> None:
        """Log in (again) through the first host that answers (the old master may be the one that died)."""
        with self._thread_lock:
            self._closed = False
            self._login()

    def _login(self) -> XenAPI.Session:
        """Walk the candidates, each once; HOST_IS_SLAVE moves the master it names to the front.

        An unreachable last master stays last even when a slave still names it (before a takeover).
        """
        self._drop()
        queue, tried, redirects = self.candidate_urls(), [], 0
        error: Exception | None = None
        while queue:
            url = queue.pop(0)
            tried.append(url)
            try:
                self._session = open_session(self.pool, url, timeout=self._timeout,
                                             connect_timeout=self._connect_timeout)
            except XapiError as exc:
                if exc.code != "HOST_IS_SLAVE" or len(exc.details) < 2 or redirects == MAX_REDIRECTS:
                    raise
                redirects += 1
                master = host_url(url, exc.details[1])
                if master not in tried and not (self.master_unreachable and master == self.master_url):
                    queue = [master, *[u for u in queue if u != master]]
                continue
            except TRANSPORT_ERRORS as exc:
                error = exc
                continue
            self.master_url, self.master_unreachable = url, False
            return self._session
        raise XapiError(f"pool {self.name}: cannot reach XAPI at {', '.join(tried)}: "
                        f"{error or 'no host answered as the master'}", code=TRANSPORT)

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
                self.master_unreachable = error.code == TRANSPORT
                if attempt == attempts - 1:
                    error.retry_in = self._backoff.next()
                    raise error from None
        raise AssertionError("unreachable")

    async def acall(self, method: str, *args: Any) -> Any:
        """`call` from the event loop: one caller at a time, in a worker thread."""
        async with self._lock:
            return await in_daemon_thread(self.call, method, *args)

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
