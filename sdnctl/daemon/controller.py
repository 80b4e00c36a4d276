"""The level-triggered loop: pools observed via XAPI, switches via OVSDB; desired minus observed applied.

Every XAPI event or OVSDB change only marks work dirty. The World is rebuilt from every pool's
records, and each host's agent applies the difference as one transaction. A periodic full
resync (with jitter) backs this up, so missed events and restarts converge the same way.
The refresh awaits no pool: trust checks, certificate reads and write-backs run in the
background per pool, and an event that leaves the World as it was (host_metrics churn) wakes
no agent.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
import time
from collections.abc import Awaitable, Callable

from sdnctl import certs
from sdnctl.config import Config, restart_only_changes
from sdnctl.core.hostplan import World, hosts_to_wake
from sdnctl.core.inventory import Host
from sdnctl.core.model import PortPlan
from sdnctl.core.status import network_section
from sdnctl.core.writeback import center_records, pif_plugs
from sdnctl.daemon.agent import Links
from sdnctl.daemon.centers import PreferredCenters
from sdnctl.daemon.executor import ActionExecutor
from sdnctl.daemon.files import watch_files
from sdnctl.daemon.health import HealthMonitor
from sdnctl.daemon.hosts import HostAgents
from sdnctl.daemon.pools import PoolWatchers
from sdnctl.daemon.publisher import Reuse, StatusPublisher
from sdnctl.daemon.statusview import daemon_status
from sdnctl.daemon.systemd import Notifier
from sdnctl.daemon.tasks import Tasks
from sdnctl.daemon.trust import PoolTrustManager
from sdnctl.daemon.world import build_world, prune_keys
from sdnctl.errors import ConfigError
from sdnctl.ipsec import PskStore
from sdnctl.openflow.channel import FlowChannel
from sdnctl.ovsdb import tls
from sdnctl.ovsdb.switch import HostSwitch, slow_parser_note
from sdnctl.xapi.watcher import PoolWatcher

log = logging.getLogger(__name__)


class Controller:
    """sdnctl's daemon: one watcher per pool, one agent per host; the factories are seams for tests."""

    def __init__(self, config: Config, *, make_watcher: Callable[..., PoolWatcher] = PoolWatcher,
                 make_switch: Callable[..., HostSwitch] = HostSwitch,
                 make_channel: Callable[[str, str], FlowChannel | None] = FlowChannel,
                 notifier: Notifier | None = None):
        self.config = config
        self.tasks = Tasks()
        self.pools = PoolWatchers(config.pools, make_watcher, self._pool_changed, self.tasks)
        self.watchers = self.pools.by_name
        self.built: set[str] = set()                  # the synced pools the World was last built from
        self.world = World()
        self.psks = PskStore(config.state_dir)
        self.certs = certs.ControllerCerts(config.cert_dir)
        self.last_event_at: float | None = None
        self.last_commit_at: float | None = None
        self.channel = make_channel(str(self.certs.client_cert), str(self.certs.client_key))
        self.executor = ActionExecutor(self._call, self.tasks)
        self.trust = PoolTrustManager(config, lambda: self.certs.ca_cert.read_text(), self._wake, self.tasks)
        links = Links(world=lambda: self.world, executor=self.executor, channel=self.channel, on_commit=self._committed,
                      openflow_port=config.openflow_port, on_observed=lambda: setattr(self.publisher, "due", True))
        self.hosts = HostAgents(links, self.tasks, self._server_certificate, ovsdb_port=config.ovsdb_port,
                                on_change=self._switch_changed, make_switch=make_switch)
        self.publisher = StatusPublisher(config.state_dir / "status.json", self.status,
                                         notifier=notifier or Notifier())
        self.health = HealthMonitor(lambda: self.world, lambda: self.hosts, hold=config.dead_center_hold,
                                    on_dead=self._wake, event=self._event)
        self.preferred = PreferredCenters(config.preferred_center_hold, on_due=self._wake)
        self._recompute = asyncio.Event()
        self._wake_all = True     # the next refresh wakes every agent even if the World is unchanged
        self.networks_section = Reuse(network_section)   # most heartbeats: neither World nor ports changed

    # --- life cycle ---------------------------------------------------------------------
    async def run(self) -> None:
        """Run until cancelled."""
        self.certs, created = certs.ensure_controller_certs(self.config.cert_dir, _utcnow())
        if created:
            log.info("created the controller CA and client certificate in %s", self.config.cert_dir)
        tls.set_client_certificate(str(self.certs.client_cert), str(self.certs.client_key))
        if note := slow_parser_note():
            log.warning("%s", note)
        if self.channel is not None:
            self.channel.on_connect = self.channel.on_drift = self._openflow_connected   # both: re-sync that bridge
            self.channel.label = lambda key: f"host {self.world.inventory.host_name(key.split('/')[0])} ({key})"
            self.channel.start()
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        await self.publisher.configure(self.config, self.tasks)
        self.pools.start()
        self.tasks.spawn(self.publisher.notifier.watchdog(), name="watchdog")
        self.tasks.spawn(self._periodic_resync(), name="resync")
        self.tasks.spawn(watch_files(self.certs, self.psks, keys_changed=self._wake,
                                     certificate_rotated=self.hosts.reconnect_all), name="files")
        self.tasks.spawn(self.publisher.run(), name="status")
        self.tasks.spawn(self.health.run(), name="health")
        self.tasks.spawn(self.preferred.run(), name="preferred-centers")
        try:
            while True:
                await self._recompute.wait()
                self._recompute.clear()
                await self.refresh(wake_all=self._wake_all)
        finally:
            await self.tasks.cancel_all()
            await self.pools.close()
            if self.channel is not None:
                self.channel.stop()
            self.publisher.close()

    async def reload(self, config: Config) -> list[str]:
        """Apply a new config (SIGHUP) and say what changed; ConfigError, with nothing applied, if it can't."""
        if blocked := restart_only_changes(self.config, config):
            raise ConfigError(f"{', '.join(blocked)} changed: that takes a restart (systemctl restart sdnctl)")
        changes = await self.publisher.configure(config, self.tasks)
        self.config = self.trust.config = config
        self.health.hold, self.preferred.hold = config.dead_center_hold, config.preferred_center_hold
        changes += await self.pools.follow(config.pools)
        self._wake(every_agent=True)
        return changes

    async def _periodic_resync(self) -> None:
        while True:
            await asyncio.sleep(self.config.resync_interval * random.uniform(0.9, 1.1))
            log.debug("periodic full resync")
            self._wake(every_agent=True)
            prune_keys(self.world, self.psks, time.time())

    # --- the refresh --------------------------------------------------------------------
    async def refresh(self, *, wake_all: bool = True) -> None:
        """Rebuild the World from every pool's records, hand the XAPI writes owed to the background, and
        wake the agents if the World changed (every agent with `wake_all`). Awaits no XAPI call."""
        self._wake_all = False
        self.built = {name for name, watcher in self.watchers.items() if watcher.synced}
        self.trust.ensure_all(self.watchers)
        world = build_world(self.watchers.values(), self.psks, self.config, create_keys=True,
                            avoid=self.health.watch.avoid(), reclaim=self.preferred.reclaim())
        before, changed = self.world, world != self.world
        if changed:   # else the World stays the same object: status compares it by identity, not 40,000 tunnels
            self.world = world
        self.preferred.update(world)
        self.trust.sync_certificates(self.watchers, world.inventory, self.executor)
        await self.hosts.ensure(self.world.inventory, [p for p in self.watchers if self.trust.usable(p)])
        for record in center_records(self.world):
            if self.executor.submit(record):
                name = self.world.inventory.host_name
                log.info("network %s (%s): star center is now host %s (%s)", record.network_name, record.network_id,
                         name(record.center), record.center)
                self._event("center", network=record.network_id, name=record.network_name,
                            old=name(record.previous), new=name(record.center))
        for plug in pif_plugs(self.world):
            self.executor.submit(plug)
        _announce_rule_errors(before, world, self._event)
        if wake_all or changed:   # churn that leaves the World as it was (host_metrics) wakes nothing
            self.hosts.wake(None if wake_all else hosts_to_wake(before, world))
            self.publisher.due = True

    # --- callbacks ----------------------------------------------------------------------
    def _wake(self, *, every_agent: bool = False) -> None:
        """Refresh soon; with `every_agent` (a full resync) every agent re-plans, whatever changed."""
        self._wake_all |= every_agent
        self._recompute.set()

    def _pool_changed(self, pool: str) -> None:
        self.last_event_at = time.time()
        self._wake()

    def _switch_changed(self, host_uuid: str) -> None:
        agent = self.hosts.get(host_uuid)
        if agent is not None:
            agent.dirty.set()
        self.health.poke(host_uuid)
        self.publisher.due = True

    def _openflow_connected(self, key: str) -> None:
        host_uuid, bridge = key.split("/", 1)
        agent = self.hosts.get(host_uuid)
        if agent is not None:
            agent.openflow_connected(bridge)
        self.publisher.due = True

    def _committed(self, host_uuid: str, host_name: str, plan: PortPlan) -> None:
        self.last_commit_at = time.time()
        if plan.add or plan.delete or plan.modify:   # not for a commit of controller rows or fail modes alone
            self._event("tunnels", host=host_uuid, name=host_name, added=len(plan.add), deleted=len(plan.delete),
                        modified=len(plan.modify))

    def _event(self, kind: str, **payload) -> None:
        if self.publisher.events is not None:
            self.publisher.events.event(f"events/{kind}", payload)

    async def _call(self, pool: str, method: str, *args):
        return await self.watchers[pool].call(method, *args)

    def _server_certificate(self, host: Host) -> Awaitable[str]:
        return self._call(host.pool, "host.get_server_certificate", host.ref)

    # --- status -------------------------------------------------------------------------
    def status(self) -> dict:
        """Everything `sdnctl status` shows: pools, hosts, and per network desired vs observed."""
        return daemon_status(self)


def _announce_rule_errors(before: World, world: World, event: Callable[..., None]) -> None:
    """A rule set newly malformed: an error line and an MQTT event (status and metrics show it while it lasts)."""
    for where in sorted(world.inventory.rule_errors.keys() - before.inventory.rule_errors.keys()):
        log.error("rules of %s are malformed, its ports forward nothing: %s", where, world.inventory.rule_errors[where])
        event("rule_error", object=where, error=world.inventory.rule_errors[where])


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
