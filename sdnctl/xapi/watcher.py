"""One pool seen through XAPI: an `event.from` mirror of its records, and a session for calls.

Each XenAPI session is synchronous and not thread-safe, so the event long-poll and the calls
have a session each, used from worker threads via `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import random
import threading
import urllib.parse
import xmlrpc.client
from collections.abc import Callable

import XenAPI

from sdnctl.config import PoolConfig
from sdnctl.errors import XapiError
from sdnctl.xapi.session import close_session, open_session

log = logging.getLogger(__name__)

CLASSES = ["host", "host_metrics", "pif", "network", "tunnel", "vif", "vm", "pool"]
EVENT_TIMEOUT = 30.0
BACKOFF = (0.5, 1, 2, 4, 8, 15)  # seconds; the schedule restarts after a success
TRANSPORT_ERRORS = (OSError, xmlrpc.client.Error, XenAPI.Failure, XapiError, EOFError, http.client.HTTPException)


async def _in_daemon_thread(func, *args):
    """Run a blocking long-poll in a daemon thread, so that stopping never waits for it to return."""
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

    threading.Thread(target=work, name="xapi-event-from", daemon=True).start()
    return await future


def backoff_delay(attempt: int) -> float:
    """The capped delay before retry number `attempt`, with ±20 % jitter."""
    return BACKOFF[min(attempt, len(BACKOFF) - 1)] * random.uniform(0.8, 1.2)


class PoolWatcher:
    """Keeps `records` (class -> ref -> record) equal to the pool's, and calls XAPI on request."""

    def __init__(self, config: PoolConfig, on_change: Callable[[str], None]):
        self.config = config
        self.name = config.name
        self.records: dict[str, dict[str, dict]] = {}
        self.synced = False
        self.error: str | None = None
        self.master_url = config.url
        self.resyncs = 0
        self._on_change = on_change
        self._call_session: XenAPI.Session | None = None
        self._call_lock = asyncio.Lock()

    async def run(self) -> None:
        """Log in, mirror every change; on any failure log in again and resync from scratch."""
        attempt = 0
        while True:
            session = None
            try:
                session = await asyncio.to_thread(self._login_anywhere, EVENT_TIMEOUT + 15)
                await self._follow(session)
            except TRANSPORT_ERRORS as exc:
                attempt = 0 if self.synced else attempt + 1
                self.synced = False
                self.error = f"{type(exc).__name__}: {exc}"
                delay = backoff_delay(attempt)
                log.warning("pool %s: %s; reconnecting in %.1fs", self.name, self.error, delay)
                self._on_change(self.name)
                await asyncio.sleep(delay)
            finally:
                if session is not None:
                    await asyncio.to_thread(close_session, session)

    def _candidate_urls(self) -> list[str]:
        """Where the master may be: the last master, the configured URL, then every known host."""
        parsed = urllib.parse.urlsplit(self.config.url)
        hosts = [f"{parsed.scheme}://{h['address']}" + (f":{parsed.port}" if parsed.port else "")
                 for h in self.records.get("host", {}).values() if h.get("address")]
        return list(dict.fromkeys([self.master_url, self.config.url, *hosts]))

    def _login_anywhere(self, timeout: float) -> XenAPI.Session:
        """Log in through the first host that answers (the old master may be the one that died)."""
        error: Exception | None = None
        for url in self._candidate_urls():
            try:
                session, self.master_url = open_session(self.config, url, timeout=timeout)
                return session
            except (OSError, xmlrpc.client.Error, http.client.HTTPException) as exc:
                error = exc
        raise error

    async def _follow(self, session: XenAPI.Session) -> None:
        """Full sync (token ""), then apply coalesced events until something fails."""
        token = ""
        records: dict[str, dict[str, dict]] = {cls: {} for cls in CLASSES}
        handle = session.handle
        while True:
            result = await _in_daemon_thread(session.xenapi.event_from, CLASSES, token, EVENT_TIMEOUT)
            if session.handle != handle:
                # The client logged in again by itself (SESSION_INVALID): our picture may have gaps.
                raise XapiError("session was renewed (xapi restarted?); resyncing")
            for event in result["events"]:
                table = records.setdefault(event["class"].lower(), {})
                if event["operation"] == "del":
                    table.pop(event["ref"], None)
                else:
                    table[event["ref"]] = event["snapshot"]
            first = token == ""
            token = result["token"]
            if first or result["events"]:
                if first:
                    self.records = records
                    self.synced = True
                    self.error = None
                    self.resyncs += 1
                    log.info("pool %s: synced %d objects from %s", self.name,
                             sum(len(t) for t in records.values()), self.master_url)
                self._on_change(self.name)

    async def call(self, method: str, *args):
        """Call `Class.method` on the pool master (one caller at a time on the call session)."""
        async with self._call_lock:
            for attempt in range(2):
                try:
                    if self._call_session is None:
                        self._call_session = await asyncio.to_thread(self._login_anywhere, 60.0)
                    func = self._call_session.xenapi
                    for part in method.split("."):
                        func = getattr(func, part)
                    return await asyncio.to_thread(func, *args)
                except XenAPI.Failure as exc:
                    if exc.details[0] != "HOST_IS_SLAVE" or attempt:
                        raise XapiError(f"pool {self.name}: {method} failed: {exc.details}") from None
                    self._call_session = None
                except (OSError, xmlrpc.client.Error, http.client.HTTPException) as exc:
                    self._call_session = None
                    if attempt:
                        raise XapiError(f"pool {self.name}: {method} failed: {exc}") from None

    async def close(self) -> None:
        if self._call_session is not None:
            await asyncio.to_thread(close_session, self._call_session)
            self._call_session = None
