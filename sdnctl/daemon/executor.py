"""Carries out the XAPI write-backs the core asks for, in the background, never the same one twice at once."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sdnctl.core.writeback import CENTER_KEY, Action, PlugPif, RecordCenter, SetTunnelStatus, SyncCertificates
from sdnctl.daemon.tasks import Tasks
from sdnctl.errors import XapiError

log = logging.getLogger(__name__)

PoolCall = Callable[..., Awaitable[Any]]   # (pool, "Class.method", *args)
CENTER_WRITE_TRIES = 3


def _key(action: Action) -> tuple:
    """What makes two actions the same write: one in flight per object (per center for RecordCenter)."""
    if isinstance(action, RecordCenter):
        return ("center", action.network_id)   # one writer per network: a newer center waits for the next refresh
    if isinstance(action, SyncCertificates):
        return ("certificate_sync", action.pool)
    return (type(action).__name__, action.pool, action.ref)


class ActionExecutor:
    """One background task per distinct action; an action already in flight is not started again."""

    def __init__(self, call: PoolCall, tasks: Tasks):
        self._call = call
        self._tasks = tasks
        self._in_flight: set[tuple] = set()
        self._written: dict[tuple, SetTunnelStatus] = {}   # tunnel status we wrote, until XAPI's event shows it
        self._next: dict[tuple, SetTunnelStatus] = {}      # a tunnel status asked for while another was in flight

    def submit(self, action: Action) -> bool:
        """Start the action unless the same write is in flight (or was just made); True if started.

        A tunnel status asked for while another write of that tunnel is in flight runs when that one ends:
        XAPI's echo of the first can arrive, and the host re-plan, before the first call has returned."""
        key = _key(action)
        if self._written.get(key) == action:
            return False
        if key in self._in_flight:
            if isinstance(action, SetTunnelStatus):
                self._next[key] = action
            return False
        self._in_flight.add(key)
        self._tasks.spawn(self._run(key, action), name=f"xapi:{key[0]}")
        return True

    async def _run(self, key: tuple, action: Action) -> None:
        try:
            await self._execute(key, action)
        finally:
            self._in_flight.discard(key)
            if (later := self._next.pop(key, None)) is not None and later != action:
                self.submit(later)

    async def _execute(self, key: tuple, action: Action) -> None:
        if isinstance(action, PlugPif):
            try:
                await self._call(action.pool, "PIF.plug", action.ref)
                log.info("pool %s: plugged the tunnel access PIF of host %s", action.pool, action.host_name)
            except XapiError as exc:
                log.warning("%s", exc)
        elif isinstance(action, SetTunnelStatus):
            self._written[key] = action
            try:
                await self._call(action.pool, "tunnel.set_status", action.ref, action.status)
            except XapiError as exc:
                self._written.pop(key, None)
                if exc.code == "HANDLE_INVALID":   # the tunnel went meanwhile (its host was ejected): nothing to say
                    log.debug("pool %s: tunnel %s is gone; its status is moot", action.pool, action.ref)
                else:
                    log.warning("pool %s: could not set a tunnel's status: %s", action.pool, exc)
        elif isinstance(action, RecordCenter):
            for pool, ref in action.targets:
                try:
                    await self._record_center(pool, ref, action.center)
                except XapiError as exc:
                    log.warning("network %s: could not record the center in pool %s: %s", action.network_name,
                                pool, exc)
        elif isinstance(action, SyncCertificates):
            try:
                await self._call(action.pool, "pool.certificate_sync")
            except XapiError as exc:
                log.warning("%s", exc)

    async def _record_center(self, pool: str, ref: str, center: str) -> None:
        """Replace one key only (never the whole other_config, which others write too). XAPI has no
        compare-and-set: a writer that adds the key between our remove and add makes ours fail with
        MAP_DUPLICATE_KEY; then we remove and add again, a bounded number of times, and check the result."""
        for _ in range(CENTER_WRITE_TRIES):
            await self._call(pool, "network.remove_from_other_config", ref, CENTER_KEY)
            try:
                await self._call(pool, "network.add_to_other_config", ref, CENTER_KEY, center)
            except XapiError as exc:
                if exc.code != "MAP_DUPLICATE_KEY":
                    raise
                continue
            return
        raise XapiError(f"{CENTER_KEY} kept being written by someone else ({CENTER_WRITE_TRIES} tries); "
                        "is a second controller managing this pool?", code="MAP_DUPLICATE_KEY")
