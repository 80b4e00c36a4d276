"""HostAgent: everything sdnctl tends on one host, and its step: plan, apply one transaction, sync flows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sdnctl.core.flows import admits
from sdnctl.core.hostplan import HostPlan, ObservedHost, World, plan_host
from sdnctl.core.inventory import Host
from sdnctl.core.model import FlowSpec, PortPlan
from sdnctl.core.status import HostView, OpenFlowView
from sdnctl.core.writeback import tunnel_statuses
from sdnctl.daemon.executor import ActionExecutor
from sdnctl.daemon.tasks import Tasks, cancel
from sdnctl.errors import OpenFlowError, OvsdbError
from sdnctl.ipsec import REDACTOR
from sdnctl.openflow.channel import FlowChannel
from sdnctl.ovsdb.switch import HostSwitch
from sdnctl.retry import Backoff, delay

log = logging.getLogger(__name__)

TRY_AGAIN = "try again"     # python-ovs: the database changed under the transaction; re-plan
MAX_TRY_AGAIN = 3           # in a row, before it counts as a failure
# Transactions being built or in flight at once, over every host. Building one is CPU work in python-ovs
# (a 200-host mesh's first is 398 rows, ~0.1 s) that no await breaks: unpaced, 200 of them keep the loop
# from the hosts' sockets for 20 s, their OVSDB servers' inactivity probes (5 s) cut us off, and the
# transactions in flight come back "try again". Paced, the loop reads every socket between two builds.
TRANSACTIONS_AT_ONCE = 8


def observe(switch: HostSwitch) -> ObservedHost:
    """What a connected switch holds, as the core plans with it."""
    bridges = switch.bridges()
    mark, mark_ours = switch.ipsec_mark()
    return ObservedHost(address=switch.target.rsplit(":", 1)[0], bridges=frozenset(bridges),
                        ports=tuple(switch.owned_ports()), controllers=switch.controllers(),
                        rstp_bridges=frozenset(switch.rstp_bridges()), vif_ports=tuple(switch.vif_ports()),
                        schema_version=switch.schema_version or "", missing_columns=switch.missing_columns,
                        interfaces=tuple(switch.interfaces()), fail_modes=switch.fail_modes(),
                        bridge_networks={name: tuple(n for n in networks if n) for name, networks in bridges.items()},
                        datapath_ids=switch.datapath_ids(), ipsec_mark=mark, ipsec_mark_ours=mark_ours,
                        xo_ports=tuple(switch.xo_ports()), foreign_controllers=switch.foreign_controllers())


@dataclass(frozen=True)
class Links:
    """What a host agent needs from the rest of the daemon."""

    world: Callable[[], World]
    executor: ActionExecutor
    channel: FlowChannel | None
    on_commit: Callable[[str, str, PortPlan], None]   # (host uuid, host name, the plan applied)
    openflow_port: int
    on_observed: Callable[[], None] = lambda: None    # the switch looked different at a step: status is due
    transactions: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(TRANSACTIONS_AT_ONCE))


class HostAgent:
    """One host: apply its plan, sync its flows, remember why it failed."""

    def __init__(self, host: Host, pinned_cert: str, switch: HostSwitch, links: Links):
        self.host = host
        self.label = f"host {host.name} ({host.uuid})"   # how log lines name it
        self.pinned_cert = pinned_cert
        self.switch = switch
        self.dirty = asyncio.Event()
        self.error: str | None = None
        self.notes: tuple[str, ...] = ()    # what the host's schema made its plan leave out
        self.observed: ObservedHost | None = None   # the switch as the last step saw it (status shows this)
        self._observed_version = -1                 # switch.version when `observed` was read
        self.steps = 0                              # plans made (status: no work at rest means none)
        self._links = links
        self._backoff = Backoff()
        self._try_again = 0
        self._synced_flows: dict[str, frozenset[FlowSpec]] = {}   # bridge -> flows last confirmed on the switch
        self._openflow: set[str] = set()                         # bridges whose OpenFlow link is ensured
        self._openflow_errors: dict[str, str] = {}
        self._purged: dict[str, frozenset[int]] = {}   # bridge -> foreign cookies purged on this connection
        self._tasks: list[asyncio.Task] = []

    # --- life cycle ---------------------------------------------------------------------
    def start(self, tasks: Tasks) -> None:
        self._tasks = [tasks.spawn(self.switch.run(), name=f"ovsdb:{self.host.name}"),
                       tasks.spawn(self._run(), name=f"agent:{self.host.name}")]

    @property
    def dead(self) -> bool:
        return any(task.done() for task in self._tasks)

    async def stop(self) -> None:
        await cancel(*self._tasks)
        await self.forget_openflow()

    async def _run(self) -> None:
        while True:
            await self.dirty.wait()
            self.dirty.clear()
            if self.switch.connected:
                await self.step()

    # --- the step -----------------------------------------------------------------------
    async def step(self) -> HostPlan:
        """Plan; apply the port plan as one transaction; sync the flows, whether or not the transaction took."""
        self.steps += 1
        world, observed = self._links.world(), self._observe()
        plan = plan_host(self.host.uuid, world, observed, openflow_port=self._links.openflow_port)
        if plan.notes != self.notes:
            for note in plan.notes:
                log.warning("%s: %s", self.label, note)
            self.notes = plan.notes
        if plan.empty:
            self.error = None
            for action in tunnel_statuses(world, self.host.uuid, observed.ports):
                self._links.executor.submit(action)
        else:
            await self._apply(plan.ports)
        await self._sync_flows(plan, observed)
        return plan

    def _observe(self) -> ObservedHost:
        """The switch as the core sees it, read again only once its database changed (a wake-up by the
        World alone costs no read: at 200 hosts every refresh would re-read every switch)."""
        version = self.switch.version
        if self.observed is None or version != self._observed_version:
            observed = observe(self.switch)
            self._observed_version = version
            if observed != self.observed:
                self.observed = observed
                self._links.on_observed()
        return self.observed

    async def _apply(self, plan: PortPlan) -> None:
        try:
            async with self._links.transactions:
                await self.switch.apply(plan)
        except OvsdbError as exc:
            if exc.code == TRY_AGAIN and self._try_again < MAX_TRY_AGAIN:
                self._try_again += 1
                self.dirty.set()
                return
            self._try_again = 0
            wait = self._backoff.next()
            self.error = REDACTOR.redact(str(exc))
            log.warning("%s; retrying in %.1fs", exc, wait)
            asyncio.get_running_loop().call_later(wait, self.dirty.set)
            return
        self._try_again = 0
        self._backoff.reset()
        self.error = None
        log.info("%s: +%d -%d ~%d tunnel ports", self.label, len(plan.add), len(plan.delete), len(plan.modify))
        self._links.on_commit(self.host.uuid, self.host.name, plan)

    # --- OpenFlow -----------------------------------------------------------------------
    def _key(self, bridge: str) -> str:
        return f"{self.host.uuid}/{bridge}"

    async def _sync_flows(self, plan: HostPlan, observed: ObservedHost) -> None:
        """Push each controlled bridge's flows over OpenFlow (only when they differ from the last sync)."""
        channel = self._links.channel
        if channel is None:
            return
        for bridge in sorted(self._openflow - set(observed.controllers)):
            await self._forget(bridge)
        for bridge, target in sorted(observed.controllers.items()):
            _, port, address = target.split(":")
            flows = plan.flows.get(bridge, frozenset())
            key = self._key(bridge)
            try:
                await channel.ensure(key, address, int(port), self.pinned_cert, observed.datapath_ids.get(bridge))
                self._openflow.add(bridge)
                purge = plan.purge.get(bridge, frozenset()) - self._purged.get(bridge, frozenset())
                if not channel.connected(key) or (self._synced_flows.get(bridge) == flows and not purge):
                    continue
                added, deleted = await self._sync_bridge(channel, key, bridge, flows, purge)
            except OpenFlowError as exc:
                self._openflow_errors[bridge] = str(exc)
                log.warning("%s: OpenFlow %s: %s", self.label, bridge, exc)
                asyncio.get_running_loop().call_later(delay(1), self.dirty.set)
                continue
            self._synced_flows[bridge] = flows
            self._purged[bridge] = self._purged.get(bridge, frozenset()) | purge
            self._openflow_errors.pop(bridge, None)
            self.switch.stats["flows_added"] += added
            self.switch.stats["flows_deleted"] += deleted
            if added or deleted:
                log.info("%s: %s: +%d -%d flows", self.label, bridge, added, deleted)

    async def _sync_bridge(self, channel: FlowChannel, key: str, bridge: str, flows: frozenset[FlowSpec],
                           purge: frozenset[int]) -> tuple[int, int]:
        """Sync in two barrier-confirmed steps when new flows would admit a port: first everything
        else (the port's rules, port security's drop), then the admissions. A port is never let in
        before its rules are on the switch, whatever order the switch applies one batch in.

        Without a confirmed last sync (a new link) the switch may hold anything, so one sync; the
        flows of one batch are applied in the order they are sent (docs/rules.md, Admission).
        `purge`: Xen Orchestra's flows (by its rules' cookies), deleted with the first step, once per connection.
        """
        if purge:
            log.info("%s: %s: deleting the flows Xen Orchestra left (cookies %s)", self.label, bridge,
                     ", ".join(f"{c:#x}" for c in sorted(purge)))
        synced = self._synced_flows.get(bridge)
        if synced is not None:
            held_back = {flow for flow in flows - synced if admits(flow)}
            first = flows - held_back
            if held_back and first != synced:
                added, deleted = await channel.sync(key, first, purge=purge)
                more_added, more_deleted = await channel.sync(key, flows)
                return added + more_added, deleted + more_deleted
        return await channel.sync(key, flows, purge=purge)

    def openflow_connected(self, bridge: str) -> None:
        """The switch (re)connected or its sdnctl flows drifted: its flow table may be anything now; sync it again."""
        self._synced_flows.pop(bridge, None)
        self._purged.pop(bridge, None)
        self.dirty.set()

    async def _forget(self, bridge: str) -> None:
        if self._links.channel is not None:
            await self._links.channel.forget(self._key(bridge))
        self._openflow.discard(bridge)
        self._synced_flows.pop(bridge, None)
        self._purged.pop(bridge, None)

    async def forget_openflow(self) -> None:
        """Drop every OpenFlow link (they are dialled again, e.g. with a rotated client certificate)."""
        for bridge in sorted(self._openflow):
            await self._forget(bridge)
        self.dirty.set()

    # --- what status shows --------------------------------------------------------------
    def openflow_synced(self) -> bool:
        seen = self.observed
        return self.switch.connected and seen is not None and all(b in self._synced_flows for b in seen.controllers)

    def view(self) -> HostView:
        """The host as its last step saw it: status never re-reads every switch (that grows with the ports)."""
        sw, channel = self.switch, self._links.channel
        seen = self.observed if sw.connected else None
        openflow = {bridge: OpenFlowView(
            target=target, connected=bool(channel and channel.connected(self._key(bridge))),
            error=self._openflow_errors.get(bridge) or (channel.error(self._key(bridge)) if channel else None))
            for bridge, target in (seen.controllers if seen else {}).items()}
        return HostView(name=sw.host_name, target=sw.target, connected=sw.connected,
                        error=self.error or sw.status_error() or "; ".join(self.notes) or None, openflow=openflow,
                        openflow_synced=self.openflow_synced(), stats=dict(sw.stats, steps=self.steps),
                        ports=seen.ports + seen.xo_ports if seen else (), vifs=seen.vif_ports if seen else ())
