"""HostAgents: one agent per host of every trusted pool, each pinned to the certificate XAPI reports for it.

Reading a certificate is a XAPI call: it runs in a background task per host (one at a time each),
so `ensure` never waits on a pool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from sdnctl.core.inventory import Host, Inventory
from sdnctl.daemon.agent import HostAgent, Links
from sdnctl.daemon.tasks import Tasks
from sdnctl.errors import XapiError
from sdnctl.ovsdb import tls
from sdnctl.ovsdb.switch import HostSwitch

log = logging.getLogger(__name__)

RECONNECT_TIMEOUT = 15.0    # per host, when reconnecting with a rotated client certificate

ServerCertificate = Callable[[Host], Awaitable[str]]   # raises XapiError
SwitchFactory = Callable[..., HostSwitch]


def connect_switch(host: Host, pem: str, port: int, on_change: Callable[[str], None],
                         make_switch: SwitchFactory = HostSwitch) -> HostSwitch:
    """A switch connection to the host's OVSDB that trusts only `pem`."""
    tls.pin(f"{host.address}:{port}", pem)
    return make_switch(host.uuid, host.name, host.address, port, on_change)


class HostAgents:
    """Starts, replaces and stops host agents as the pools change."""

    def __init__(self, links: Links, tasks: Tasks, server_certificate: ServerCertificate, *, ovsdb_port: int,
                 on_change: Callable[[str], None], make_switch: SwitchFactory = HostSwitch):
        self._links = links
        self._tasks = tasks
        self._server_certificate = server_certificate
        self._port = ovsdb_port
        self._on_change = on_change
        self._make_switch = make_switch
        self.agents: dict[str, HostAgent] = {}
        self.errors: dict[str, str] = {}   # host uuid -> why it has no agent
        self._fetching: dict[str, asyncio.Task] = {}   # host uuid -> its certificate being read from XAPI

    def __iter__(self):
        return iter(self.agents.values())

    def get(self, uuid: str) -> HostAgent | None:
        return self.agents.get(uuid)

    def wake(self, hosts: frozenset[str] | None = None) -> None:
        """Wake the agents of these host uuids (None: every agent) to plan again."""
        for uuid, agent in self.agents.items():
            if hosts is None or uuid in hosts:
                agent.dirty.set()

    async def ensure(self, inventory: Inventory, wanted_pools: Iterable[str]) -> None:
        """An agent for every host of `wanted_pools` (stale ports need sweeping too); others are stopped.

        Hosts of a pool that trusts another CA are left alone: they would only refuse us.
        """
        pools = set(wanted_pools)
        wanted = {uuid: host for uuid, host in inventory.hosts.items() if host.pool in pools}
        for uuid in set(self.agents) - set(wanted):
            await self.agents.pop(uuid).stop()
        for uuid in set(self._fetching) - set(wanted):
            self._fetching.pop(uuid).cancel()
        for uuid, host in sorted(wanted.items()):
            agent = self.agents.get(uuid)
            if agent is not None and (agent.dead or agent.switch.target != f"{host.address}:{self._port}"):
                await self.agents.pop(uuid).stop()     # the agent died, or the host moved
                agent = None
            if uuid not in self._fetching and (agent is None or agent.switch.error_code == "PIN_MISMATCH"):
                # New, or it presents another certificate (xe host-refresh-server-certificate?): ask XAPI.
                self._fetching[uuid] = self._tasks.spawn(self._fetch(host), name=f"certificate:{host.name}")

    async def _fetch(self, host: Host) -> None:
        """Read the host's certificate from XAPI; start its agent, or replace one pinned to another certificate."""
        try:
            pem = await self._certificate(host)
        finally:
            if self._fetching.get(host.uuid) is asyncio.current_task():
                del self._fetching[host.uuid]
        agent = self.agents.get(host.uuid)
        if pem is None or agent is not None and pem == agent.pinned_cert:
            return
        if agent is not None:
            await self.agents.pop(host.uuid).stop()
        self._start(host, pem)

    async def _certificate(self, host: Host) -> str | None:
        """The host's certificate as XAPI reports it: the only one its OVSDB may present."""
        try:
            return await self._server_certificate(host)
        except XapiError as exc:
            self.errors[host.uuid] = f"cannot read its certificate from XAPI: {exc}"
            log.warning("host %s (%s): %s", host.name, host.uuid, self.errors[host.uuid])
            return None

    def _start(self, host: Host, pem: str) -> None:
        self.errors.pop(host.uuid, None)
        switch = connect_switch(host, pem, self._port, self._on_change, self._make_switch)
        agent = HostAgent(host, pem, switch, self._links)
        self.agents[host.uuid] = agent
        agent.start(self._tasks)

    def tried(self, uuids: Iterable[str]) -> bool:
        """Each of these hosts is connected, or it is known why not (an agent still dialling is not)."""
        for uuid in uuids:
            agent = self.agents.get(uuid)
            tried = agent is not None and (agent.switch.connected or agent.switch.status_error())
            if uuid not in self.errors and not tried:
                return False
        return True

    async def stop_all(self) -> None:
        for task in self._fetching.values():
            task.cancel()
        for uuid in list(self.agents):
            await self.agents.pop(uuid).stop()

    async def reconnect_all(self) -> None:
        """Reconnect every host, one at a time, so a bad certificate cannot cut them all at once."""
        loop = asyncio.get_running_loop()
        for agent in [a for a in self.agents.values() if a.switch.connected]:
            switch = agent.switch
            connects = switch.stats["connects"]
            switch.reconnect()
            deadline = loop.time() + RECONNECT_TIMEOUT
            while switch.stats["connects"] == connects and loop.time() < deadline:
                await asyncio.sleep(0.05)
            if switch.stats["connects"] == connects:
                log.error("%s: did not reconnect with the new certificate (%s); not moving the other hosts to it",
                          switch.label, switch.status_error())
                return
        # OpenFlow links load their credentials when ensured: forget them and the agents dial
        # again with the new certificate (the switches keep their flows meanwhile).
        for agent in self.agents.values():
            await agent.forget_openflow()
