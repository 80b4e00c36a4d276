"""The HealthMonitor shell: events on a health change (none on first sight), a dead center after the hold."""

from __future__ import annotations

from dataclasses import dataclass, field

from sdnctl.core.hostplan import World
from sdnctl.core.inventory import Inventory
from sdnctl.core.model import Endpoint, ObservedPort, PrivateNetwork, tunnel_port_name
from sdnctl.core.topology import DesiredState
from sdnctl.daemon.health import HealthMonitor

BFD_ON = (("enable", "true"),)
UP = (("flap_count", "1"), ("forwarding", "true"), ("state", "up"))
DOWN = (("flap_count", "2"), ("forwarding", "false"), ("remote_state", "down"), ("state", "down"))
HOSTS = ("h-1", "h-2", "h-3")
NET = PrivateNetwork(id="net", name="net", encapsulation="gre", vni=1, topology="star", center="h-1",
                     endpoints=tuple(Endpoint(h, "pool-a", "xapi1", f"10.0.0.{i}", True) for i, h in enumerate(HOSTS)))


@dataclass
class Switch:
    ports: list[ObservedPort] = field(default_factory=list)
    connected: bool = True

    def owned_ports(self) -> list[ObservedPort]:
        return list(self.ports)


@dataclass
class Host:
    uuid: str


@dataclass
class Agent:
    host: Host
    switch: Switch


def to_center(spoke: str, status) -> ObservedPort:
    return ObservedPort(tunnel_port_name("net", "h-1"), "xapi1", "net", "h-1", "gre", (), ofport=2, bfd=BFD_ON,
                        bfd_status=status)


def monitor(hold: float = 5.0):
    agents = {h: Agent(Host(h), Switch()) for h in ("h-2", "h-3")}
    world = World(inventory=Inventory(networks=(NET,)),
                  desired=DesiredState(tunnels={}, centers={"net": "h-1"}, frozen_networks=frozenset()))
    events, woken = [], []
    watcher = HealthMonitor(lambda: world, lambda: agents.values(), hold=hold, on_dead=lambda: woken.append(1),
                            event=lambda kind, **payload: events.append((kind, payload)))
    return watcher, agents, events, woken


def see(watcher, agents, status, now: float) -> None:
    for uuid, agent in agents.items():
        agent.switch.ports = [to_center(uuid, status)]
        watcher.poke(uuid)
    watcher.look(now)


def test_a_health_change_is_an_event_and_first_sight_is_not():
    watcher, agents, events, _ = monitor()
    see(watcher, agents, UP, 0.0)
    assert events == []
    see(watcher, agents, DOWN, 1.0)
    assert [(kind, p["host"], p["old"], p["new"], p["flap_count"]) for kind, p in events] == [
        ("tunnel_health", "h-2", "up", "down", 2), ("tunnel_health", "h-3", "up", "down", 2)]
    assert "psk" not in repr(events)


def test_a_center_down_for_the_hold_time_is_failed_over_once():
    watcher, agents, events, woken = monitor(hold=5.0)
    see(watcher, agents, UP, 0.0)
    see(watcher, agents, DOWN, 10.0)
    assert watcher.watch.next_due(5.0) == 15.0 and not woken
    watcher.look(14.9)
    assert not woken
    watcher.look(15.0)
    assert woken == [1] and watcher.watch.avoid() == {"net": frozenset({"h-1"})}
    assert [p["host"] for kind, p in events if kind == "dead_center"] == ["h-1"]
    watcher.look(16.0)
    assert woken == [1]


def test_a_disconnected_spoke_counts_neither_way():
    watcher, agents, _, woken = monitor(hold=5.0)
    see(watcher, agents, DOWN, 0.0)
    agents["h-3"].switch.connected = False
    watcher.poke("h-3")
    watcher.look(1.0)   # one spoke left that sees it: cannot tell which end died, and the hold restarts
    watcher.look(6.0)
    assert not woken and "look the same" in watcher.watch.notes["net"] and watcher.watch.since == {}
