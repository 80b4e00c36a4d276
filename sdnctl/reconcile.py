"""The level-triggered loop: pools observed via XAPI, switches via OVSDB; desired minus observed applied.

Every XAPI event or OVSDB change only marks work dirty. The desired state is recomputed from
the whole picture, and a worker per host applies the difference as one transaction. A periodic
full resync (with jitter) backs this up, so missed events and restarts converge the same way.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import random
import time
from dataclasses import dataclass

from sdnctl import certs
from sdnctl.config import Config
from sdnctl.core.flows import desired_flows
from sdnctl.events import EventPublisher
from sdnctl.ipsec import REDACTOR, PskStore
from sdnctl.metrics import MetricsServer
from sdnctl.errors import OvsdbError, SdnctlError, XapiError
from sdnctl.core.model import KEY_PREFIX, ClusterSnapshot, PortPlan
from sdnctl import rules
from sdnctl.openflow.channel import FlowChannel
from sdnctl.errors import OpenFlowError
from sdnctl.ovsdb import tls
from sdnctl.ovsdb.switch import HostSwitch
from sdnctl.core.topology import (
    DesiredState, desired_tunnels, openflow_targets, plan_ports, private_network_id, private_networks,
)
from sdnctl.xapi.trust import PoolTrust, ensure_controller_introduced, ensure_trust
from sdnctl.xapi.watcher import PoolWatcher
from sdnctl.retry import delay as backoff_delay

log = logging.getLogger(__name__)

STATUS_INTERVAL = 0.5       # at most two status.json writes a second
STATUS_HEARTBEAT = 5.0      # and at least one every 5 s, so `status` can tell a stopped daemon
FILE_POLL = 2.0             # how often the client certificate and the PSK files are checked for changes
TRUST_RETRY = 5.0           # how soon a pool that distrusts sdnctl's CA is checked again
RECONNECT_TIMEOUT = 15.0    # per host, when reconnecting with a rotated client certificate


@dataclass(frozen=True)
class HostInfo:
    """What XAPI says about a host sdnctl must reach."""

    uuid: str
    ref: str
    name: str
    pool: str
    address: str


class Controller:
    """sdnctl's daemon: one watcher per pool, one switch connection and worker per host."""

    def __init__(self, config: Config, *, dry_run: bool = False):
        self.config = config
        self.dry_run = dry_run
        self.plans: dict[str, PortPlan] = {}
        self.watchers = {pool.name: PoolWatcher(pool, self._pool_changed) for pool in config.pools}
        self.switches: dict[str, HostSwitch] = {}
        self.hosts: dict[str, HostInfo] = {}
        self.host_errors: dict[str, str] = {}
        self.snapshot = ClusterSnapshot()
        self.desired = DesiredState(tunnels={}, centers={}, frozen_networks=frozenset())
        self.pool_errors: dict[str, str] = {}
        self.last_event_at: float | None = None
        self.last_commit_at: float | None = None
        self._certs_pinned: dict[str, str] = {}
        self._trusted_pools: dict[str, int] = {}
        self.trust: dict[str, PoolTrust] = {}
        self._pool_hosts: dict[str, set[str]] = {}
        self.psks = PskStore(config.state_dir)
        self.vif_rules: dict = {}
        self.network_rules: dict = {}
        self.rule_errors: dict[str, str] = {}
        self.channel: FlowChannel | None = None
        self.metrics: MetricsServer | None = None
        self.events: EventPublisher | None = None
        self._published_states: set[str] = set()
        self._host_certs: dict[str, str] = {}
        self._synced_flows: dict[str, frozenset] = {}
        self._openflow_keys: set[str] = set()
        self.openflow_errors: dict[str, str] = {}
        self._center_writes: set[tuple[str, str]] = set()
        self._plugging: set[str] = set()
        self._tunnel_status_written: dict[str, dict] = {}
        self._recompute = asyncio.Event()
        self._dirty: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._status_due = False
        self._background: set[asyncio.Task] = set()

    # --- life cycle ---------------------------------------------------------------------
    async def run(self) -> None:
        """Run until cancelled."""
        if self.dry_run:
            self.certs = certs.ControllerCerts(self.config.cert_dir)
            if not self.certs.client_cert.exists():
                raise SdnctlError(f"no client certificate in {self.config.cert_dir}: start the daemon once "
                                  "(it creates one) or run `sdnctl certs init`")
        else:
            self.certs, created = certs.ensure_controller_certs(self.config.cert_dir,
                                                                datetime.datetime.now(datetime.timezone.utc))
            if created:
                log.info("created the controller CA and client certificate in %s", self.config.cert_dir)
        tls.set_client_certificate(str(self.certs.client_cert), str(self.certs.client_key))
        if not self.dry_run:
            self.channel = FlowChannel(str(self.certs.client_cert), str(self.certs.client_key))
            self.channel.on_connect = self._switch_connected
            self.channel.start()
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        for name, watcher in self.watchers.items():
            self._spawn(f"pool:{name}", watcher.run())
        self._spawn("resync", self._periodic_resync())
        if not self.dry_run:
            self._spawn("files", self._watch_files())
            self._spawn("status", self._status_writer())
            if self.config.mqtt is not None:
                self.events = EventPublisher(self.config.mqtt)
                self._spawn("mqtt", self.events.run())
            if self.config.metrics_listen:
                self.metrics = MetricsServer(self.config.metrics_listen)
                log.info("metrics on http://%s/metrics", self.config.metrics_listen)
        try:
            while True:
                await self._recompute.wait()
                self._recompute.clear()
                await self._refresh()
        finally:
            for task in list(self._tasks.values()) + list(self._background):
                task.cancel()
            await asyncio.gather(*self._tasks.values(), *self._background, return_exceptions=True)
            for watcher in self.watchers.values():
                await watcher.close()
            if self.channel is not None:
                self.channel.stop()
            if self.metrics is not None:
                self.metrics.close()

    def _spawn(self, name: str, coro) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_ended)
        self._tasks[name] = task

    @staticmethod
    def _task_ended(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s died: %r", task.get_name(), task.exception(), exc_info=task.exception())

    def _background_task(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(self._task_ended)

    async def _periodic_resync(self) -> None:
        while True:
            await asyncio.sleep(self.config.resync_interval * random.uniform(0.9, 1.1))
            log.debug("periodic full resync")
            self._recompute.set()

    async def _watch_files(self) -> None:
        """Pick up a rotated client certificate (reconnect host by host) and new or rotated PSKs."""
        def cert_version():
            return self.certs.client_cert.stat().st_mtime_ns, self.certs.client_key.stat().st_mtime_ns

        cert_seen, psk_seen = cert_version(), self.psks.version()
        while True:
            await asyncio.sleep(FILE_POLL)
            if self.psks.version() != psk_seen:
                psk_seen = self.psks.version()
                log.info("IPsec keys changed; re-applying")
                self._recompute.set()
            if cert_version() != cert_seen:
                cert_seen = cert_version()
                await self._reconnect_with_new_certificate()

    async def _reconnect_with_new_certificate(self) -> None:
        """Reconnect every host, one at a time, so a bad certificate cannot cut them all at once."""
        try:
            certs.check_controller_certs(self.certs, datetime.datetime.now(datetime.timezone.utc))
        except certs.CertError as exc:
            log.error("not using the new client certificate: %s", exc)
            return
        log.info("client certificate rotated; reconnecting host by host")
        loop = asyncio.get_running_loop()
        for switch in [sw for sw in self.switches.values() if sw.connected]:
            connects = switch.stats["connects"]
            switch.reconnect()
            deadline = loop.time() + RECONNECT_TIMEOUT
            while switch.stats["connects"] == connects and loop.time() < deadline:
                await asyncio.sleep(0.05)
            if switch.stats["connects"] == connects:
                log.error("%s: did not reconnect with the new certificate (%s); not moving the other hosts to it",
                          switch.host_name, switch.status_error())
                return
        if self.channel is not None:
            # OpenFlow links load their credentials when ensured: forget them and the workers
            # dial again with the new certificate (the switches keep their flows meanwhile).
            for key in sorted(self._openflow_keys):
                await self.channel.forget(key)
                self._synced_flows.pop(key, None)
            self._openflow_keys.clear()
            for dirty in self._dirty.values():
                dirty.set()

    def _pool_changed(self, pool: str) -> None:
        self.last_event_at = time.time()
        self._recompute.set()

    def _switch_connected(self, key: str) -> None:
        """An OpenFlow switch (re)connected: its flow table may be anything now; re-sync it."""
        self._synced_flows.pop(key, None)
        self._switch_changed(key.split("/", 1)[0])

    def _switch_changed(self, host_uuid: str) -> None:
        if host_uuid in self._dirty:
            self._dirty[host_uuid].set()
        self._status_due = True

    # --- desired state ------------------------------------------------------------------
    @property
    def pools_synced_once(self) -> bool:
        return all(w.resyncs for w in self.watchers.values())

    async def _refresh(self) -> None:
        """Recompute the desired state from every pool's records, then wake every host worker."""
        for name, watcher in self.watchers.items():
            if not self.dry_run and watcher.synced and self._trusted_pools.get(name) != watcher.resyncs:
                await self._ensure_pool_trust(watcher)
        records = {name: w.records for name, w in self.watchers.items() if w.records}
        self.snapshot = private_networks(records, self.config.topology)
        self.desired = desired_tunnels(self.snapshot, self._psks())
        self.vif_rules, self.network_rules, self.rule_errors = rules.collect(records)
        if not self.dry_run:
            self._sync_certificates_on_join()
        self._index_hosts()
        await self._ensure_switches()
        if self.pools_synced_once and not self.dry_run:
            self._persist_centers()
            self._plug_access_pifs()
        for event in self._dirty.values():
            event.set()
        self._status_due = True

    async def _ensure_pool_trust(self, watcher: PoolWatcher) -> None:
        """The pool trusts sdnctl's CA (compared by content) and its hosts' OVSDB listen for a controller."""
        try:
            trust = await ensure_trust(watcher.call, watcher.name, self.certs.ca_cert.read_text(),
                                       override=self.config.override_certs, config_path=str(self.config.path))
            if trust.usable and await ensure_controller_introduced(watcher.call):
                log.info("pool %s: introduced the SDN controller (hosts listen on pssl)", watcher.name)
        except XapiError as exc:
            self.pool_errors[watcher.name] = str(exc)
            log.error("%s", exc)
            return
        previous = self.trust.get(watcher.name)
        self.trust[watcher.name] = trust
        if trust.state in ("installed", "replaced"):
            log.info("pool %s: %s sdnctl's CA as %s (SHA-256 %s)", watcher.name, trust.state, certs.POOL_CA_NAME,
                     trust.ours)
        if trust.message and (previous is None or previous.message != trust.message):
            (log.warning if trust.usable else log.error)("%s", trust.message)
        if trust.usable:
            self._trusted_pools[watcher.name] = watcher.resyncs
            self.pool_errors.pop(watcher.name, None)
        else:
            self.pool_errors[watcher.name] = trust.message
            asyncio.get_running_loop().call_later(TRUST_RETRY, self._recompute.set)

    def _sync_certificates_on_join(self) -> None:
        """A host that joins a pool gets the pool's CA certificates (certificate_sync)."""
        for name, watcher in self.watchers.items():
            if not watcher.synced:
                continue
            hosts = {h["uuid"] for h in watcher.records.get("host", {}).values()}
            known = self._pool_hosts.get(name)
            self._pool_hosts[name] = hosts
            if known is not None and hosts - known and self._trusted_pools.get(name):
                log.info("pool %s: host(s) joined; syncing certificates", name)
                self._background_task(self._certificate_sync(watcher))

    async def _certificate_sync(self, watcher: PoolWatcher) -> None:
        try:
            await watcher.call("pool.certificate_sync")
        except XapiError as exc:
            log.warning("%s", exc)

    def _psks(self) -> dict[str, str]:
        """The PSK of every encrypted network (created on first sight; the plan only reads them)."""
        psks = {}
        for network in self.snapshot.networks:
            if network.encrypted and not network.error:
                try:
                    psk = self.psks.get(network.id) if self.dry_run else self.psks.get_or_create(network.id)
                except OSError as exc:  # without its key the network stays frozen, the others go on
                    log.error("network %s: cannot read or create its IPsec key in %s: %s", network.name,
                              self.psks.dir, exc)
                    continue
                if psk:
                    REDACTOR.add(psk)
                    psks[network.id] = psk
        return psks

    def _index_hosts(self) -> None:
        """Host uuid -> how to reach it, for every host of every pool."""
        hosts = {}
        for name, watcher in self.watchers.items():
            for ref, host in watcher.records.get("host", {}).items():
                hosts[host["uuid"]] = HostInfo(host["uuid"], ref, host.get("name_label", ""), name,
                                               host.get("address", ""))
        self.hosts = hosts

    async def _ensure_switches(self) -> None:
        """A switch connection and worker for every host of every pool (stale ports need sweeping too).

        Hosts of a pool that trusts another CA are left alone: they would only refuse us.
        """
        wanted = {uuid for uuid, host in self.hosts.items()
                  if self.dry_run or (self.trust.get(host.pool) and self.trust[host.pool].usable)}
        for uuid in set(self.switches) - wanted:
            await self._drop_switch(uuid)
        for uuid in sorted(wanted):
            host = self.hosts[uuid]
            switch = self.switches.get(uuid)
            died = any(self._tasks[key].done() for key in (f"ovsdb:{uuid}", f"worker:{uuid}") if key in self._tasks)
            if switch is not None and "does not match" in (switch.status_error() or ""):
                # The host may have a new certificate (xe host-refresh-server-certificate): ask XAPI again.
                pem = await self._server_certificate(host)
                died = died or (pem is not None and pem != self._host_certs.get(uuid))
            if switch is not None and (died or switch.target != f"{host.address}:{self.config.ovsdb_port}"):
                await self._drop_switch(uuid)
                switch = None
            if switch is None:
                pem = await self._server_certificate(host)
                if pem is None:
                    continue
                self._host_certs[uuid] = pem
                self.host_errors.pop(uuid, None)
                tls.pin(f"{host.address}:{self.config.ovsdb_port}", pem)
                switch = HostSwitch(uuid, host.name, host.address, self.config.ovsdb_port, self._switch_changed)
                self.switches[uuid] = switch
                self._dirty[uuid] = asyncio.Event()
                self._spawn(f"ovsdb:{uuid}", switch.run())
                self._spawn(f"worker:{uuid}", self._worker(uuid))

    async def _server_certificate(self, host: HostInfo) -> str | None:
        """The host's certificate as XAPI reports it: the only one its OVSDB may present."""
        try:
            pem = await self.watchers[host.pool].call("host.get_server_certificate", host.ref)
        except XapiError as exc:
            self.host_errors[host.uuid] = f"cannot read its certificate from XAPI: {exc}"
            log.warning("host %s: %s", host.name, self.host_errors[host.uuid])
            return None
        return pem

    async def _drop_switch(self, uuid: str) -> None:
        for key in (f"ovsdb:{uuid}", f"worker:{uuid}"):
            task = self._tasks.pop(key, None)
            if task:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self.switches.pop(uuid, None)
        self._dirty.pop(uuid, None)

    def _persist_centers(self) -> None:
        """Record each star's center in XAPI (sdnctl:center), so a restart elects the same one."""
        for network in self.snapshot.networks:
            center = self.desired.centers.get(network.id)
            if network.topology != "star" or center is None or center == network.center:
                continue
            if (network.id, center) in self._center_writes:
                continue
            self._center_writes.add((network.id, center))
            log.info("network %s: star center is now host %s", network.name, self._host_name(center))
            self._event("center", network=network.id, name=network.name, old=self._host_name(network.center or ""),
                        new=self._host_name(center))
            self._background_task(self._write_center(network.id, center))

    async def _write_center(self, network_id: str, center: str) -> None:
        try:
            for watcher in self.watchers.values():
                for ref, record in list(watcher.records.get("network", {}).items()):  # events change it meanwhile
                    if private_network_id(record.get("other_config", {})) != network_id:
                        continue
                    try:
                        await watcher.call("network.remove_from_other_config", ref, KEY_PREFIX + "center")
                        await watcher.call("network.add_to_other_config", ref, KEY_PREFIX + "center", center)
                    except XapiError as exc:
                        log.warning("network %s: could not record the center: %s", network_id, exc)
        finally:
            self._center_writes.discard((network_id, center))

    def _plug_access_pifs(self) -> None:
        """Plug a managed network's tunnel access PIF once its transport PIF is back (XAPI won't)."""
        for watcher in self.watchers.values():
            records = watcher.records
            pifs, networks = records.get("pif", {}), records.get("network", {})
            for ref, pif in pifs.items():
                if pif.get("currently_attached") or not pif.get("tunnel_access_PIF_of") or ref in self._plugging:
                    continue
                if private_network_id(networks.get(pif.get("network"), {}).get("other_config", {})) is None:
                    continue
                tunnel = records.get("tunnel", {}).get(pif["tunnel_access_PIF_of"][0], {})
                transport = pifs.get(tunnel.get("transport_PIF"), {})
                host = records.get("host", {}).get(pif.get("host"), {})
                live = records.get("host_metrics", {}).get(host.get("metrics"), {}).get("live") in (True, "true")
                if live and transport.get("currently_attached") and transport.get("IP"):
                    self._plugging.add(ref)
                    self._background_task(self._plug(watcher, ref))

    async def _plug(self, watcher: PoolWatcher, pif_ref: str) -> None:
        try:
            await watcher.call("PIF.plug", pif_ref)
            log.info("pool %s: plugged tunnel access PIF %s", watcher.name, pif_ref)
        except XapiError as exc:
            log.warning("%s", exc)
        finally:
            self._plugging.discard(pif_ref)

    def _event(self, kind: str, **payload) -> None:
        if self.events is not None:
            self.events.event(f"events/{kind}", payload)

    def _publish_state(self, status: dict) -> None:
        """Retained MQTT state per pool, host and network (no secrets are in `status`); gone ones are cleared."""
        states = {f"pool/{pool['name']}": {k: pool[k] for k in ("synced", "master_url", "error")}
                  for pool in status["pools"]}
        states |= {f"host/{uuid}": {k: host[k] for k in ("name", "connected", "error", "openflow")}
                   for uuid, host in status["hosts"].items()}
        for network in status["networks"]:
            states[f"network/{network['id']}"] = {
                **{k: network[k] for k in ("name", "encapsulation", "vni", "topology", "center_name", "error")},
                "hosts": {h["name"]: {"eligible": h["eligible"],
                                      "tunnels_up": sum(t["desired"] and t["observed"] for t in h["tunnels"]),
                                      "tunnels_missing": sum(t["desired"] and not t["observed"] for t in h["tunnels"])}
                          for h in network["hosts"]}}
        for topic in self._published_states - set(states):
            self.events.state(topic, None)
        for topic, payload in states.items():
            self.events.state(topic, payload)
        self._published_states = set(states)

    def _host_name(self, uuid: str) -> str:
        host = self.hosts.get(uuid)
        return host.name if host else uuid

    # --- per-host worker ----------------------------------------------------------------
    def _frozen_networks(self, switch: HostSwitch) -> frozenset[str]:
        """Networks whose ports must not change now: malformed ones, and all while a pool is unknown.

        A pool that has not answered since sdnctl started may hold the far end of any tunnel;
        deleting on a partial picture would cut traffic that was flowing.
        """
        if self.pools_synced_once:
            return self.desired.frozen_networks
        return self.desired.frozen_networks | {port.network_id for port in switch.owned_ports()}

    async def _worker(self, uuid: str) -> None:
        """Apply desired minus observed on one host whenever it is marked dirty; back off on failure."""
        attempt = 0
        switch, dirty = self.switches[uuid], self._dirty[uuid]
        loop = asyncio.get_running_loop()
        while True:
            await dirty.wait()
            dirty.clear()
            if not switch.connected:
                continue
            controlled = self._controlled_bridges(uuid, switch)
            targets = openflow_targets(controlled, switch.controllers(), switch.target.rsplit(":", 1)[0],
                                       self.config.openflow_port)
            frozen = self._frozen_networks(switch)
            desired = self.desired.tunnels.get(uuid, frozenset())
            if not self.pools_synced_once:
                # A pool we have not heard from may hold the far end (or the center) of any network
                # this host already carries: leave those exactly as they are, add only new ones.
                desired = [spec for spec in desired if spec.network_id not in frozen]
            plan = plan_ports(desired, switch.owned_ports(),
                              bridges=switch.bridges(), frozen_networks=frozen,
                              controllers=targets, observed_controllers=switch.controllers(),
                              rstp=self.desired.rstp_bridges.get(uuid, ()), observed_rstp=switch.rstp_bridges())
            if self.dry_run:
                self.plans[uuid] = plan
                continue
            if plan.empty:
                self.host_errors.pop(uuid, None)
                await self._write_tunnel_status(uuid)
                await self._sync_flows(uuid, switch, controlled)
                continue
            try:
                await switch.apply(plan)
            except OvsdbError as exc:
                delay = backoff_delay(attempt)
                attempt += 1
                self.host_errors[uuid] = REDACTOR.redact(str(exc))
                log.warning("%s; retrying in %.1fs", exc, delay)
                loop.call_later(delay, dirty.set)
                continue
            attempt = 0
            self.host_errors.pop(uuid, None)
            self.last_commit_at = time.time()
            log.info("%s: +%d -%d ~%d tunnel ports", switch.host_name, len(plan.add), len(plan.delete),
                     len(plan.modify))
            self._event("tunnels", host=uuid, name=switch.host_name, added=len(plan.add), deleted=len(plan.delete),
                        modified=len(plan.modify))

    def _controlled_bridges(self, uuid: str, switch: HostSwitch) -> set[str]:
        """Bridges that get sdnctl's OpenFlow controller: private networks', any carrying a ruled VIF,
        and any that has one already (kept, so that removed rules are swept from the flow table)."""
        bridges = {ep.bridge for n in self.snapshot.networks for ep in n.endpoints if ep.host_uuid == uuid}
        bridges |= {vif.bridge for vif in switch.vif_ports()
                    if vif.vif_uuid in self.vif_rules or vif.network_uuid in self.network_rules}
        return (bridges | set(switch.controllers())) & set(switch.bridges())

    async def _sync_flows(self, uuid: str, switch: HostSwitch, controlled: set[str]) -> None:
        """Push each controlled bridge's flows over OpenFlow (only when they differ from the last sync)."""
        pem = self._host_certs.get(uuid)
        if self.channel is None or pem is None:
            return
        wanted = desired_flows(self.vif_rules, self.network_rules, switch.vif_ports(), bridges=controlled)
        targets = switch.controllers()
        for key in [k for k in self._openflow_keys if k.startswith(uuid + "/") and k.split("/", 1)[1] not in targets]:
            await self.channel.forget(key)
            self._openflow_keys.discard(key)
            self._synced_flows.pop(key, None)
        for bridge, target in sorted(targets.items()):
            key = f"{uuid}/{bridge}"
            _, port, address = target.split(":")
            flows = wanted.get(bridge, frozenset())
            try:
                await self.channel.ensure(key, address, int(port), pem)
                self._openflow_keys.add(key)
                if not self.channel.connected(key) or self._synced_flows.get(key) == flows:
                    continue
                added, deleted = await self.channel.sync(key, flows)
            except OpenFlowError as exc:
                self.openflow_errors[key] = str(exc)
                log.warning("%s: OpenFlow %s: %s", switch.host_name, bridge, exc)
                asyncio.get_running_loop().call_later(backoff_delay(1), self._dirty[uuid].set)
                continue
            self._synced_flows[key] = flows
            self.openflow_errors.pop(key, None)
            switch.stats["flows_added"] += added
            switch.stats["flows_deleted"] += deleted
            if added or deleted:
                log.info("%s: %s: +%d -%d flows", switch.host_name, bridge, added, deleted)

    def openflow_synced(self, uuid: str) -> bool:
        switch = self.switches[uuid]
        return switch.connected and all(
            f"{uuid}/{bridge}" in self._synced_flows for bridge in switch.controllers())

    async def _write_tunnel_status(self, uuid: str) -> None:
        """tunnel.status in XAPI: active when every desired port of that network is up on this host."""
        host = self.hosts.get(uuid)
        if host is None:
            return
        watcher = self.watchers[host.pool]
        observed = {p.name: p for p in self.switches[uuid].owned_ports()}
        desired = self.desired.tunnels.get(uuid, frozenset())
        vni = {n.id: n.vni for n in self.snapshot.networks}
        records = watcher.records
        for tref, tunnel in list(records.get("tunnel", {}).items()):  # events change it across the awaits
            access = records.get("pif", {}).get(tunnel.get("access_PIF"), {})
            network = records.get("network", {}).get(access.get("network"), {})
            net_id = private_network_id(network.get("other_config", {}))
            if access.get("host") != host.ref or net_id not in vni:
                continue
            ports = [s for s in desired if s.network_id == net_id]
            active = bool(ports) and all(
                s.name in observed and (observed[s.name].ofport or -1) > 0 for s in ports)
            status = {"active": "true" if active else "false", "key": str(vni[net_id])}
            if tunnel.get("status") == status or self._tunnel_status_written.get(tref) == status:
                continue
            self._tunnel_status_written[tref] = status
            try:
                await watcher.call("tunnel.set_status", tref, status)
            except XapiError as exc:
                self._tunnel_status_written.pop(tref, None)
                log.warning("could not set tunnel status: %s", exc)

    # --- status -------------------------------------------------------------------------
    async def _status_writer(self) -> None:
        path = self.config.state_dir / "status.json"
        last = 0.0
        while True:
            await asyncio.sleep(STATUS_INTERVAL)
            if self._status_due or time.monotonic() - last > STATUS_HEARTBEAT:
                self._status_due = False
                last = time.monotonic()
                status = self.status()
                try:
                    certs.write_public(path, json.dumps(status, indent=2, sort_keys=True) + "\n")
                except OSError as exc:  # e.g. a full disk: keep serving metrics and MQTT, and say so
                    log.error("cannot write %s: %s", path, exc)
                if self.metrics is not None:
                    self.metrics.collector.status = status
                if self.events is not None:
                    self._publish_state(status)

    def status(self) -> dict:
        """Everything `sdnctl status` shows: pools, hosts, and per network desired vs observed."""
        observed = {uuid: {p.name: p for p in sw.owned_ports()} if sw.connected else {}
                    for uuid, sw in self.switches.items()}
        networks = []
        for network in self.snapshot.networks:
            hosts = []
            for ep in network.endpoints:
                desired = sorted((s for s in self.desired.tunnels.get(ep.host_uuid, ()) if s.network_id == network.id),
                                 key=lambda s: s.name)
                seen = {n: p for n, p in observed.get(ep.host_uuid, {}).items() if p.network_id == network.id}
                tunnels = [{"name": s.name, "remote_host": s.remote_host, "remote_name": self._host_name(s.remote_host),
                            "remote_ip": s.remote_ip, "desired": True, "observed": s.name in seen,
                            "ofport": seen[s.name].ofport if s.name in seen else None,
                            "error": seen[s.name].error if s.name in seen else None} for s in desired]
                tunnels += [{"name": p.name, "remote_host": p.remote_host, "remote_name": self._host_name(p.remote_host),
                             "remote_ip": dict(p.options).get("remote_ip"), "desired": False, "observed": True,
                             "ofport": p.ofport, "error": p.error}
                            for n, p in sorted(seen.items()) if n not in {s.name for s in desired}]
                hosts.append({"uuid": ep.host_uuid, "name": self._host_name(ep.host_uuid), "pool": ep.pool,
                              "bridge": ep.bridge, "transport_ip": ep.transport_ip, "eligible": ep.eligible,
                              "tunnels": tunnels})
            networks.append({"id": network.id, "name": network.name, "origin": network.origin,
                             "encapsulation": network.encapsulation, "vni": network.vni,
                             "topology": network.topology, "encrypted": network.encrypted,
                             "center": self.desired.centers.get(network.id),
                             "center_name": self._host_name(self.desired.centers.get(network.id) or ""),
                             "error": network.error, "hosts": hosts})
        switches = {uuid: {"name": sw.host_name, "target": sw.target, "connected": sw.connected,
                           "error": self.host_errors.get(uuid) or sw.status_error(),
                           "openflow": {bridge: {"target": target,
                                                 "connected": bool(self.channel and self.channel.connected(f"{uuid}/{bridge}")),
                                                 "error": self.openflow_errors.get(f"{uuid}/{bridge}")
                                                 or (self.channel.error(f"{uuid}/{bridge}") if self.channel else None)}
                                        for bridge, target in (sw.controllers() if sw.connected else {}).items()},
                           "openflow_synced": self.openflow_synced(uuid), **sw.stats}
                    for uuid, sw in self.switches.items()}
        now = datetime.datetime.now(datetime.timezone.utc)
        try:
            client = certs.cert_info(self.certs.client_cert, now)
            certificate = {"fingerprint": client.fingerprint, "not_after": client.not_after,
                           "days_left": client.days_left,
                           "warning": f"client certificate expires in {client.days_left} days; run `sdnctl certs rotate`"
                           if client.expiring else None}
        except (OSError, ValueError, AttributeError):
            certificate = None
        return {
            "generated_at": time.time(),
            "client_certificate": certificate,
            "trust": {name: {"state": t.state, "ours": t.ours, "theirs": t.theirs, "message": t.message}
                      for name, t in self.trust.items()},
            "last_event_at": self.last_event_at,
            "last_commit_at": self.last_commit_at,
            "pools": [{"name": w.name, "synced": w.synced, "master_url": w.master_url, "resyncs": w.resyncs,
                       "error": self.pool_errors.get(w.name) or w.error} for w in self.watchers.values()],
            "hosts": switches,
            "networks": networks,
            "rule_errors": self.rule_errors,
            "mqtt": {"connected": self.events.connected, "published": self.events.published,
                     "dropped": self.events.dropped} if self.events else {},
        }
