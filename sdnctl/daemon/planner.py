"""`sdnctl plan`: connect like the daemon, ask the core what it would do, change nothing.

Pools, host switches and OpenFlow links are read, never written; IPsec keys are read, never made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from sdnctl import certs
from sdnctl.config import Config
from sdnctl.core.hostplan import ObservedHost, World, plan_host
from sdnctl.core.inventory import Host
from sdnctl.core.model import PortPlan
from sdnctl.core.writeback import Action, center_records, pif_plugs, tunnel_statuses
from sdnctl.daemon.agent import observe
from sdnctl.daemon.hosts import connect_switch
from sdnctl.daemon.tasks import Tasks
from sdnctl.daemon.world import build_world
from sdnctl.errors import OpenFlowError, SdnctlError, XapiError
from sdnctl.ipsec import PskStore
from sdnctl.openflow.channel import FlowChannel
from sdnctl.openflow.codec import FlowPlan
from sdnctl.ovsdb import tls
from sdnctl.xapi.watcher import PoolWatcher

log = logging.getLogger(__name__)

POLL = 0.05


@dataclass(frozen=True)
class HostReport:
    """One host's pending changes; `error` says why it could not be planned."""

    uuid: str
    name: str
    error: str | None = None
    observed: ObservedHost | None = None
    ports: PortPlan | None = None
    flows: Mapping[str, FlowPlan] = field(default_factory=dict)        # bridge -> pending flow-mods
    flow_errors: Mapping[str, str] = field(default_factory=dict)       # bridge -> why its flows are unknown
    xapi: tuple[Action, ...] = ()

    @property
    def changes(self) -> int:
        ports = self.ports or PortPlan()
        return (len(ports.add) + len(ports.delete) + len(ports.modify) + len(ports.set_controllers)
                + len(ports.remove_controllers) + len(ports.enable_rstp) + len(ports.disable_rstp) + len(self.xapi)
                + sum(len(f.add) + len(f.delete) for f in self.flows.values()))


@dataclass(frozen=True)
class PlanReport:
    unsynced_pools: tuple[str, ...]
    hosts: tuple[HostReport, ...] = ()
    xapi: tuple[Action, ...] = ()        # pool-wide writes: star centers, access PIF plugs
    host_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        return len(self.xapi) + sum(h.changes for h in self.hosts)

    @property
    def complete(self) -> bool:
        return not self.unsynced_pools and all(h.error is None and not h.flow_errors for h in self.hosts)


async def _until(ready, deadline: float) -> bool:
    loop = asyncio.get_running_loop()
    while not ready():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(POLL)
    return True


class Planner:
    """Reads every pool and host the daemon would, and reports what the daemon would change."""

    def __init__(self, config: Config, timeout: float):
        self.config = config
        self.timeout = timeout
        self.watchers = {pool.name: PoolWatcher(pool, lambda _: None) for pool in config.pools}
        self.paths = certs.ControllerCerts(config.cert_dir)
        self.tasks = Tasks()

    async def run(self) -> PlanReport:
        if not self.paths.client_cert.exists():
            raise SdnctlError(f"no client certificate in {self.config.cert_dir}: start the daemon once "
                              "(it creates one) or run `sdnctl certs init`")
        tls.set_client_certificate(str(self.paths.client_cert), str(self.paths.client_key))
        channel = FlowChannel(str(self.paths.client_cert), str(self.paths.client_key))
        deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            for name, watcher in self.watchers.items():
                self.tasks.spawn(watcher.run(), name=f"pool:{name}")
            await _until(lambda: all(w.resyncs for w in self.watchers.values()), deadline)
            unsynced = tuple(name for name, w in self.watchers.items() if not w.resyncs)
            if unsynced:
                return PlanReport(unsynced_pools=unsynced)
            world = build_world(self.watchers.values(), PskStore(self.config.state_dir), self.config,
                                create_keys=False)
            hosts = await asyncio.gather(*(self._host(world, host, channel, deadline)
                                           for host in world.inventory.hosts.values()))
            return PlanReport(unsynced_pools=(), hosts=tuple(sorted(hosts, key=lambda h: h.name)),
                              xapi=tuple(center_records(world)) + tuple(pif_plugs(world)),
                              host_names={uuid: host.name for uuid, host in world.inventory.hosts.items()})
        finally:
            await self.tasks.cancel_all()
            channel.stop()
            for watcher in self.watchers.values():
                await watcher.close()

    async def _host(self, world: World, host: Host, channel: FlowChannel, deadline: float) -> HostReport:
        try:
            pem = await self.watchers[host.pool].call("host.get_server_certificate", host.ref)
        except XapiError as exc:
            return HostReport(host.uuid, host.name, error=f"cannot read its certificate from XAPI: {exc}")
        switch = connect_switch(host, pem, self.config.ovsdb_port, lambda _: None)
        self.tasks.spawn(switch.run(), name=f"ovsdb:{host.name}")
        if not await _until(lambda: switch.connected or switch.status_error(), deadline) or not switch.connected:
            return HostReport(host.uuid, host.name, error=switch.status_error() or "not connected")
        observed = observe(switch)
        plan = plan_host(host.uuid, world, observed, openflow_port=self.config.openflow_port)
        flows, errors = await self._flows(host, pem, plan.flows, observed, channel, deadline)
        return HostReport(host.uuid, host.name, observed=observed, ports=plan.ports, flows=flows, flow_errors=errors,
                          xapi=tuple(tunnel_statuses(world, host.uuid, observed.ports)) if plan.empty else ())

    async def _flows(self, host: Host, pem: str, wanted, observed: ObservedHost, channel: FlowChannel,
                     deadline: float) -> tuple[dict[str, FlowPlan], dict[str, str]]:
        """Per controlled bridge, the flow-mods a sync would send now (read over OpenFlow)."""
        flows, errors = {}, {}
        for bridge, target in sorted(observed.controllers.items()):
            _, port, address = target.split(":")
            key = f"{host.uuid}/{bridge}"
            try:
                await channel.ensure(key, address, int(port), pem, observed.datapath_ids.get(bridge))
                await _until(lambda: channel.connected(key) or channel.error(key), deadline)
                if not channel.connected(key):
                    raise OpenFlowError(channel.error(key) or "not connected in time")
                flows[bridge] = await channel.pending(key, wanted.get(bridge, frozenset()))
            except OpenFlowError as exc:
                errors[bridge] = str(exc)
        return flows, errors
