"""Pool trust: each pool trusts sdnctl's CA and has introduced the SDN controller, checked once per resync.

The checks are XAPI calls, so each runs as a background task of its own pool: a pool whose
master is silent holds up neither the refresh nor any other pool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sdnctl import certs
from sdnctl.config import Config
from sdnctl.core.inventory import Inventory
from sdnctl.core.writeback import certificate_syncs
from sdnctl.daemon.executor import ActionExecutor
from sdnctl.daemon.tasks import Tasks
from sdnctl.errors import XapiError
from sdnctl.xapi.trust import PoolTrust, ensure_controller_introduced, ensure_trust
from sdnctl.xapi.watcher import PoolWatcher

log = logging.getLogger(__name__)

TRUST_RETRY = 5.0   # how soon a pool that distrusts sdnctl's CA (or could not be asked) is checked again


class PoolTrustManager:
    """Where each pool stands with sdnctl's CA; a pool whose hosts would refuse sdnctl is left alone."""

    def __init__(self, config: Config, ca_cert: Callable[[], str], recheck: Callable[[], None], tasks: Tasks):
        """`recheck` is called when a check has settled (the refresh then starts or skips that pool's hosts)."""
        self.config = config
        self._ca_cert = ca_cert
        self._recheck = recheck
        self._tasks = tasks
        self._in_flight: set[str] = set()
        self.trust: dict[str, PoolTrust] = {}
        self.errors: dict[str, str] = {}
        self._checked: dict[str, int] = {}   # pool -> the watcher resync its trust was last confirmed in
        self._pool_hosts: dict[str, frozenset[str]] = {}   # pool -> its hosts at the last refresh (joins)

    def decided(self, pool: str) -> bool:
        """The pool's trust was judged, either way, or asking failed."""
        return pool in self.trust or pool in self.errors

    def usable(self, pool: str) -> bool:
        trust = self.trust.get(pool)
        return bool(trust and trust.usable)

    def trusted_pools(self) -> set[str]:
        return set(self._checked)

    def ensure_all(self, watchers: dict[str, PoolWatcher]) -> None:
        """Start a check of every pool that has resynced since its trust was last confirmed (one at a time each)."""
        for name, watcher in watchers.items():
            if watcher.synced and self._checked.get(name) != watcher.resyncs and name not in self._in_flight:
                self._in_flight.add(name)
                self._tasks.spawn(self._ensure(watcher), name=f"trust:{name}")

    async def _ensure(self, watcher: PoolWatcher) -> None:
        try:
            await self._check(watcher)
        finally:
            self._in_flight.discard(watcher.name)

    async def _check(self, watcher: PoolWatcher) -> None:
        """Ask the pool; a usable answer refreshes at once, anything else is asked again after a while."""
        try:
            trust = await ensure_trust(watcher.call, watcher.name, self._ca_cert(),
                                       override=self.config.override_certs, config_path=str(self.config.path))
            if trust.usable and await ensure_controller_introduced(watcher.call):
                log.info("pool %s: introduced the SDN controller (hosts listen on pssl)", watcher.name)
        except XapiError as exc:
            self.errors[watcher.name] = str(exc)
            log.error("%s", exc)
            asyncio.get_running_loop().call_later(exc.retry_in or TRUST_RETRY, self._recheck)
            return
        previous = self.trust.get(watcher.name)
        self.trust[watcher.name] = trust
        if trust.state in ("installed", "replaced"):
            log.info("pool %s: %s sdnctl's CA as %s (SHA-256 %s)", watcher.name, trust.state, certs.POOL_CA_NAME,
                     trust.ours)
        if trust.message and (previous is None or previous.message != trust.message):
            (log.warning if trust.usable else log.error)("%s", trust.message)
        if trust.usable:
            self._checked[watcher.name] = watcher.resyncs
            self.errors.pop(watcher.name, None)
            self._recheck()
        else:
            self.errors[watcher.name] = trust.message or trust.state
            asyncio.get_running_loop().call_later(TRUST_RETRY, self._recheck)

    def sync_certificates(self, watchers: dict[str, PoolWatcher], inventory: Inventory,
                          executor: ActionExecutor) -> None:
        """A host that joins a trusted pool gets the pool's CA certificates (pool.certificate_sync)."""
        synced = {name for name, watcher in watchers.items() if watcher.synced}
        current = {pool: hosts for pool, hosts in inventory.pool_hosts().items() if pool in synced}
        for action in certificate_syncs(self._pool_hosts, current, self.trusted_pools()):
            log.info("pool %s: host(s) joined; syncing certificates", action.pool)
            executor.submit(action)
        self._pool_hosts |= current

    def view(self) -> dict[str, dict]:
        """Per pool: state, our and their CA fingerprints, and the message (for status)."""
        return {name: {"state": t.state, "ours": t.ours, "theirs": t.theirs, "message": t.message}
                for name, t in self.trust.items()}
