"""One pool seen through XAPI: an `event.from` mirror of its records, and a session for calls.

Each XenAPI session is synchronous and not thread-safe, so the event long-poll and the calls
have a session each, used from daemon threads. The long-poll is short (EVENT_TIMEOUT) because
its return is also the heartbeat: a master that goes silent is noticed within EVENT_READ_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sdnctl.config import PoolConfig
from sdnctl.errors import XapiError
from sdnctl.retry import Backoff
from sdnctl.xapi.client import XapiClient, in_daemon_thread

log = logging.getLogger(__name__)

CLASSES = ["host", "host_metrics", "pif", "network", "tunnel", "vif", "vm", "pool"]
# Fields XAPI rewrites all the time and sdnctl decides nothing on: the memory monitor updates every
# live host's host_metrics every few seconds (memory_free, last_updated). Mirrored, but they wake nothing.
CHURN_FIELDS = {"host_metrics": frozenset({"memory_free", "memory_total", "last_updated"})}


def matters(cls: str, old: dict | None, new: dict) -> bool:
    """Whether an event's new snapshot differs from the mirrored one in anything but churn."""
    if old is None:
        return True
    churn = CHURN_FIELDS.get(cls, frozenset())
    return any(old.get(key) != new.get(key) for key in (old.keys() | new.keys()) - churn)
EVENT_TIMEOUT = 5.0                      # seconds XAPI may hold event.from when nothing changes
EVENT_READ_TIMEOUT = EVENT_TIMEOUT + 5.0  # then the master is silent: log in again elsewhere
CALL_TIMEOUT = 30.0                       # read timeout of an ordinary call


class PoolWatcher:
    """Keeps `records` (class -> ref -> record) equal to the pool's, and calls XAPI on request."""

    def __init__(self, config: PoolConfig, on_change: Callable[[str], None]):
        self.config = config
        self.name = config.name
        self.records: dict[str, dict[str, dict]] = {}
        self.synced = False
        self.error: str | None = None
        self.resyncs = 0
        self._on_change = on_change
        # The event long-poll and the calls each need their own session (XenAPI's is not thread-safe).
        self._events = XapiClient(config, timeout=EVENT_READ_TIMEOUT, known_hosts=self._host_addresses)
        self._calls = XapiClient(config, timeout=CALL_TIMEOUT, known_hosts=self._host_addresses)

    @property
    def master_url(self) -> str:
        """The URL of the master the event stream last logged in to."""
        return self._events.master_url

    def _host_addresses(self) -> list[str]:
        return [h["address"] for h in list(self.records.get("host", {}).values()) if h.get("address")]

    async def run(self) -> None:
        """Log in, mirror every change; on any failure log in again and resync from scratch."""
        backoff = Backoff()
        while True:
            try:
                await in_daemon_thread(self._events.login)
                self._calls.follow(self._events.master_url)
                await self._follow()
            except XapiError as exc:
                if self.synced:
                    backoff.reset()  # it worked until now: start the schedule again
                self.synced = False
                self.error = str(exc)
                delay = backoff.next()
                log.warning("pool %s: %s; reconnecting in %.1fs", self.name, self.error, delay)
                self._on_change(self.name)
                await asyncio.sleep(delay)
            finally:
                await in_daemon_thread(self._events.close)

    async def _follow(self) -> None:
        """Full sync (token ""), then apply coalesced events until something fails.

        A restarted XAPI still accepts the old token and never says EVENTS_LOST, but the session is
        gone: its SESSION_INVALID (never hidden by a silent re-login) starts the full resync.
        """
        token = ""
        records: dict[str, dict[str, dict]] = {cls: {} for cls in CLASSES}
        while True:
            result = await in_daemon_thread(self._events.call_once, "event.from", CLASSES, token, EVENT_TIMEOUT)
            mattered = False
            for event in result["events"]:
                cls = event["class"].lower()
                table = records.setdefault(cls, {})
                old = table.get(event["ref"])
                if event["operation"] == "del":
                    table.pop(event["ref"], None)
                    mattered = True
                else:
                    table[event["ref"]] = event["snapshot"]
                    mattered = mattered or matters(cls, old, event["snapshot"])
            first = token == ""
            token = result["token"]
            if first or mattered:
                if first:
                    self.records = records
                    self.synced = True
                    self.error = None
                    self.resyncs += 1
                    log.info("pool %s: synced %d objects from %s", self.name,
                             sum(len(t) for t in records.values()), self.master_url)
                self._on_change(self.name)

    async def call(self, method: str, *args):
        """Call `Class.method` on the pool master (one caller at a time); raises XapiError with `.code`."""
        return await self._calls.acall(method, *args)

    async def close(self) -> None:
        await in_daemon_thread(self._calls.close)
