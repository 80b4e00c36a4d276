"""HealthMonitor: every tunnel's health as the switches report it (BFD), its changes as events, and dead centers.

A BFD state change reaches sdnctl as an OVSDB update of `Interface.bfd_status`: the switch's
on_change pokes this monitor (and the agent and the status publisher, which read the same rows).
The monitor keeps the one time-dependent thing, when each suspect center started to look dead;
`core.health.watch_centers` decides, with `now` passed in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from sdnctl.core.health import CenterWatch, tunnel_health, watch_centers
from sdnctl.core.hostplan import World
from sdnctl.core.model import ObservedPort
from sdnctl.daemon.agent import HostAgent

log = logging.getLogger(__name__)

SETTLE = 0.05   # seconds: one look after a burst of IDL updates (a host going down changes all its tunnels)


class HealthMonitor:
    """Looks at the tunnels of every connected switch when one changes, and when a suspect's hold time ends."""

    def __init__(self, world: Callable[[], World], agents: Callable[[], Iterable[HostAgent]], *, hold: float,
                 on_dead: Callable[[], None], event: Callable[..., None]):
        self._world = world
        self._agents = agents
        self.hold = hold
        self._on_dead = on_dead       # the set of dead centers changed: rebuild the World (center election)
        self._event = event
        self._poked = asyncio.Event()
        self._dirty: set[str] = set()
        self._ports: dict[str, dict[str, ObservedPort]] = {}   # connected host uuid -> its sdnctl ports by name
        self._health: dict[str, dict[str, str]] = {}          # host uuid -> port name -> last health seen
        self.watch = CenterWatch()

    def poke(self, host_uuid: str) -> None:
        self._dirty.add(host_uuid)
        self._poked.set()

    async def run(self) -> None:
        while True:
            due = self.watch.next_due(self.hold)
            try:
                await asyncio.wait_for(self._poked.wait(), None if due is None else max(0.0, due - time.monotonic()))
            except asyncio.TimeoutError:
                pass
            self._poked.clear()
            await asyncio.sleep(SETTLE)
            self.look(time.monotonic())

    def look(self, now: float) -> None:
        """Re-read the poked switches, publish health changes, and judge the star centers."""
        world = self._world()
        self._publish_changes(world, self._observe())
        before, notes = self.watch.dead, self.watch.notes
        self.watch = watch_centers(world.inventory.networks, world.desired.centers, self._ports, self.watch,
                                   now, self.hold)
        name = world.inventory.host_name
        networks = {n.id: n for n in world.inventory.networks}
        for network_id, host in sorted(self.watch.dead - before):
            network = networks.get(network_id)
            log.warning("network %s (%s): center host %s (%s) is dead by BFD (its spokes see it down for %.1fs, XAPI "
                        "calls it live); failing over", network.name if network else "?", network_id, name(host), host,
                        self.hold)
            self._event("dead_center", network=network_id, name=network.name if network else None, host=host,
                        host_name=name(host))
        for network_id, host in sorted(before - self.watch.dead):
            log.info("network %s (%s): host %s (%s) is seen up by BFD again",
                     networks[network_id].name if network_id in networks else "?", network_id, name(host), host)
        for network_id, note in sorted(self.watch.notes.items()):
            if notes.get(network_id) != note:
                log.warning("network %s (%s): %s", networks[network_id].name if network_id in networks else "?",
                            network_id, note)
        if self.watch.dead != before:
            self._on_dead()

    def _observe(self) -> set[str]:
        """Re-read the poked hosts' ports; the hosts read (or gone)."""
        agents = {agent.host.uuid: agent for agent in self._agents()}
        gone = set(self._ports) - set(agents)
        for uuid in gone:
            del self._ports[uuid]
        dirty, self._dirty = self._dirty, set()
        read = dirty | (set(agents) - set(self._ports))
        for uuid in read:
            agent = agents.get(uuid)
            if agent is not None and agent.switch.connected:
                self._ports[uuid] = {port.name: port for port in agent.switch.owned_ports()}
            else:
                self._ports.pop(uuid, None)
        return read | gone

    def _publish_changes(self, world: World, hosts: set[str]) -> None:
        """Log and publish the health changes of these hosts' tunnels (the others were not read again)."""
        name = world.inventory.host_name
        networks = {n.id: n.name for n in world.inventory.networks}
        for host in hosts - set(self._ports):
            self._health.pop(host, None)
        for host, ports in sorted((h, p) for h, p in self._ports.items() if h in hosts):
            before, seen = self._health.get(host, {}), dict[str, str]()
            self._health[host] = seen
            for port in ports.values():
                health = tunnel_health(port)
                seen[port.name] = health.state
                old = before.get(port.name)
                if old is None or old == health.state:
                    continue   # first sight is no change (a restart would announce every tunnel)
                log.info("host %s (%s): tunnel %s to host %s (network %s, %s): %s -> %s%s", name(host), host,
                         port.name, name(port.remote_host), networks.get(port.network_id), port.network_id, old,
                         health.state,
                         f" ({health.reason})" if health.reason else "")
                self._event("tunnel_health", network=port.network_id, name=networks.get(port.network_id), host=host,
                            host_name=name(host), tunnel=port.name, remote=port.remote_host,
                            remote_name=name(port.remote_host), old=old, new=health.state, reason=health.reason,
                            flap_count=health.flap_count)
