"""PURE: desired vs observed for one host -> one HostPlan (its OVSDB transaction and its flows).

Everything the daemon decides per host is here: which networks are frozen, what a partial
picture may touch, which bridges get sdnctl's OpenFlow controller, and the flows each carries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sdnctl.core.features import PROTECTED, supported_plan, supported_tunnels
from sdnctl.core.flows import desired_flows, infrastructure_ofports
from sdnctl.core.inventory import Inventory
from sdnctl.core.model import (
    COOKIE_MASK, FAIL_MODES, IPSEC_EGRESS_MARK, IPSEC_SKB_MARK, KEY_PREFIX, SDNCTL_COOKIE, BridgePort, FlowSpec,
    ObservedPort, PortPlan, VifPort,
)
from sdnctl.core.topology import DesiredState, listener_port, openflow_targets, plan_ports

FAIL_MODE_KEY = KEY_PREFIX + "fail-mode"   # a network's other_config: "secure" | "standalone"
DEFAULT_FAIL_MODE = "secure"


@dataclass(frozen=True)
class World:
    """The whole desired picture of one refresh.

    `complete` is true once every configured pool has answered at least once since sdnctl
    started; until then the far end of any tunnel may be in a pool sdnctl cannot see.
    """

    inventory: Inventory = field(default_factory=Inventory)
    desired: DesiredState = field(default_factory=lambda: DesiredState(tunnels={}, centers={},
                                                                         frozen_networks=frozenset()))
    complete: bool = False
    fail_mode: str = DEFAULT_FAIL_MODE                                   # the config file's `fail_mode`
    network_fail_modes: Mapping[str, str] = field(default_factory=dict)  # XAPI network uuid -> its raw `sdnctl:fail-mode`


@dataclass(frozen=True)
class ObservedHost:
    """What one host's OVSDB holds, as far as sdnctl cares."""

    address: str                           # the IP sdnctl reaches the host at (its OpenFlow listeners bind it)
    bridges: frozenset[str]
    ports: tuple[ObservedPort, ...]        # sdnctl-owned tunnel ports
    controllers: Mapping[str, str]         # bridge -> target of sdnctl's Controller row
    rstp_bridges: frozenset[str]
    vif_ports: tuple[VifPort, ...]
    schema_version: str = ""
    missing_columns: frozenset[str] = frozenset()   # optional columns the host's schema lacks
    interfaces: tuple[BridgePort, ...] = ()         # every interface on a bridge, with its ofport (admission)
    fail_modes: Mapping[str, str] = field(default_factory=dict)            # bridge -> its fail_mode ("" if unset)
    bridge_networks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # bridge -> xs-network-uuids
    datapath_ids: Mapping[str, int] = field(default_factory=dict)   # bridge -> its datapath id (OpenFlow checks it)
    ipsec_mark: str = ""                    # Open_vSwitch other_config:ipsec_skb_mark ("" if unset)
    ipsec_mark_ours: bool = False           # sdnctl set it (Open_vSwitch external_ids)
    xo_ports: tuple[ObservedPort, ...] = ()  # Xen Orchestra's tunnel ports (Port other_config xo:…private-network-uuid)
    foreign_controllers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # bridge -> others' targets


@dataclass(frozen=True)
class HostPlan:
    """One host's step: the OVSDB transaction to apply, and the flows each controlled bridge should carry."""

    ports: PortPlan
    flows: Mapping[str, frozenset[FlowSpec]]   # bridge with sdnctl's Controller row -> its flows
    notes: tuple[str, ...] = ()                # what the host's schema made the plan leave out, in words
    purge: Mapping[str, frozenset[int]] = field(default_factory=dict)   # bridge -> Xen Orchestra's flow cookies

    @property
    def empty(self) -> bool:
        return self.ports.empty


def frozen_networks(world: World, host_uuid: str, observed: ObservedHost) -> frozenset[str]:
    """Networks whose ports must not change now: malformed ones, and all this host carries while a pool is unknown.

    A pool that has not answered since sdnctl started may hold the far end of any tunnel;
    deleting on a partial picture would cut traffic that was flowing. A malformed network's own ports may
    carry another id than the one its other_config now shows (a mangled private-network uuid), so every
    port on its bridge on this host is frozen too.
    """
    ports = observed.ports + adopted_ports(world, observed)
    malformed_bridges = {ep.bridge for network in world.inventory.networks if network.error
                         for ep in network.endpoints if ep.host_uuid == host_uuid}
    frozen = world.desired.frozen_networks | {port.network_id for port in ports if port.bridge in malformed_bridges}
    if world.complete:
        return frozen
    return frozen | {port.network_id for port in ports}


def adopted_ports(world: World, observed: ObservedHost) -> tuple[ObservedPort, ...]:
    """Xen Orchestra's tunnel ports of the networks sdnctl manages: replaced by sdnctl's in the same
    transaction (OVS refuses two tunnels with the same type, remote IP and key, so never both)."""
    managed = {network.id for network in world.inventory.networks}
    return tuple(port for port in observed.xo_ports if port.network_id in managed)


XO_CONTROLLER_TARGET = "pssl:"   # the Controller row Xen Orchestra's plugin puts on a host's bridges


def foreign_controllers_to_remove(host_uuid: str, world: World, controlled: frozenset[str],
                                  observed: ObservedHost) -> tuple[tuple[str, str], ...]:
    """Xen Orchestra's leftover Controller rows on the bridges of networks adopted from it that sdnctl controls."""
    adopted = {ep.bridge for n in world.inventory.networks if n.origin == "xo" for ep in n.endpoints
               if ep.host_uuid == host_uuid}
    return tuple(sorted((bridge, target) for bridge, targets in observed.foreign_controllers.items()
                        if bridge in adopted & controlled for target in targets if target == XO_CONTROLLER_TARGET))


def controlled_bridges(host_uuid: str, world: World, observed: ObservedHost) -> frozenset[str]:
    """Bridges that get sdnctl's OpenFlow controller: private networks', any carrying a ruled VIF or about
    to (its VM runs or is scheduled here, so its `to` rules are in place before its port appears), and any
    that has one already (kept, so that removed rules are swept from the flow table)."""
    inventory = world.inventory
    bridges = {ep.bridge for n in inventory.networks for ep in n.endpoints if ep.host_uuid == host_uuid}
    bridges |= {vif.bridge for vif in observed.vif_ports
                if vif.vif_uuid in inventory.vif_rules or vif.network_uuid in inventory.network_rules}
    bridges |= {vif.bridge for vif in inventory.placed_vifs if host_uuid in vif.hosts}
    return frozenset((bridges | set(observed.controllers)) & observed.bridges)


def parse_fail_mode(value: object, network_uuid: str) -> str:
    """A network's `sdnctl:fail-mode` value, normalised; ValueError saying what is wrong and the fix."""
    mode = value.strip().lower() if isinstance(value, str) else None
    if mode not in FAIL_MODES:
        raise ValueError(f"network {network_uuid}: {FAIL_MODE_KEY}: {value!r} is not a fail mode; write \"secure\" "
                         "(rules hold while sdnctl is away) or \"standalone\" (plain switching while it is away), "
                         "or remove the key for the config file's fail_mode; using \"secure\" meanwhile")
    return mode


def bridge_fail_modes(bridges: frozenset[str], world: World,
                      observed: ObservedHost) -> tuple[dict[str, str], tuple[str, ...]]:
    """(bridge -> the fail_mode it should have, the errors of malformed settings).

    A bridge takes its networks' `sdnctl:fail-mode`, else the global `fail_mode`. A malformed value
    is reported and counts as "secure" (fail closed); it changes nothing else. Networks sharing a
    bridge that disagree get "secure": rules holding is the safer way to be wrong.
    """
    modes, errors = {}, []
    for bridge in sorted(bridges):
        wanted = set()
        for network in observed.bridge_networks.get(bridge, ()):
            if network in world.network_fail_modes:
                try:
                    wanted.add(parse_fail_mode(world.network_fail_modes[network], network))
                except ValueError as exc:
                    errors.append(str(exc))
                    wanted.add("secure")
        if not wanted:
            wanted.add(world.fail_mode if world.fail_mode in FAIL_MODES else DEFAULT_FAIL_MODE)
        modes[bridge] = "secure" if "secure" in wanted else wanted.pop()
    return modes, tuple(errors)


def _loop_breaking(mesh: frozenset[str], observed: ObservedHost) -> dict[str, Iterable[str]]:
    """plan_ports' RSTP arguments: mesh bridges have split horizon (protected tunnels) and RSTP off;
    a switch without Port.protected runs RSTP on them instead."""
    if PROTECTED in observed.missing_columns:
        return {"rstp": mesh, "observed_rstp": observed.rstp_bridges}
    return {"no_rstp": mesh, "observed_rstp": observed.rstp_bridges}


def ipsec_mark(host_uuid: str, world: World, observed: ObservedHost) -> tuple[str | None, tuple[str, ...]]:
    """(the PortPlan's `ipsec_mark`, notes): set while the host carries an encrypted tunnel, so
    ovs-monitor-ipsec drops its tunnel packets that no SA covers; removed after, if sdnctl set it.
    Someone else's value is left as it is, and reported: sdnctl cannot say it fails closed then."""
    encrypted = any(spec.psk for spec in world.desired.tunnels.get(host_uuid, ())) or any(
        "psk" in dict(port.options) for port in observed.ports)
    if not encrypted:
        return ("" if observed.ipsec_mark_ours else None), ()
    if observed.ipsec_mark == IPSEC_SKB_MARK:
        return None, ()
    if observed.ipsec_mark and not observed.ipsec_mark_ours:
        return None, (f"Open_vSwitch other_config:ipsec_skb_mark is {observed.ipsec_mark!r}, set by someone else; "
                      f"sdnctl leaves it, so its encrypted tunnels (marked {IPSEC_EGRESS_MARK}) may not fail closed "
                      f"when IPsec is down; set it to {IPSEC_SKB_MARK} or remove it (docs/ipsec.md)",)
    return IPSEC_SKB_MARK, ()


def xo_cookies(world: World, observed: ObservedHost) -> dict[str, frozenset[int]]:
    """Per bridge with sdnctl's controller, the cookies Xen Orchestra 6 tagged its rules' flows with (the
    `cookie` of its rules on the bridge's VIFs and networks): XO's leftovers, deleted once adopted."""
    def cookies(rules) -> set[int]:
        return {int(rule.xo_cookie, 16) for rule in rules if rule.xo_cookie}

    inventory, found = world.inventory, {}
    for bridge in observed.controllers:
        wanted = set()
        for vif in observed.vif_ports:
            if vif.bridge == bridge:
                wanted |= cookies(inventory.vif_rules.get(vif.vif_uuid, ()))
        for network in observed.bridge_networks.get(bridge, ()):
            wanted |= cookies(inventory.network_rules.get(network, ()))
        wanted = {c for c in wanted if c & COOKIE_MASK != SDNCTL_COOKIE}
        if wanted:
            found[bridge] = frozenset(wanted)
    return found


def hosts_to_wake(before: World, after: World) -> frozenset[str] | None:
    """The host agents a new World concerns: None (all) when anything a host's plan reads changed; else
    only the hosts whose tunnel records changed (their tunnel.status may need writing again). The write-backs'
    own echoes (tunnel statuses, plugged access PIFs) then wake one agent each, not every agent."""
    def plan_inputs(world: World) -> tuple:
        inventory = world.inventory
        return (inventory.hosts, inventory.networks, inventory.vif_rules, inventory.network_rules,
                inventory.rule_errors, inventory.placed_vifs, world.desired, world.complete, world.fail_mode,
                world.network_fail_modes)

    if plan_inputs(before) != plan_inputs(after):
        return None
    old = {t.ref: t for t in before.inventory.tunnels}
    new = {t.ref: t for t in after.inventory.tunnels}
    return frozenset(t.host_uuid for ref in old.keys() | new.keys() if old.get(ref) != new.get(ref)
                     for t in (old.get(ref), new.get(ref)) if t is not None)


def plan_host(host_uuid: str, world: World, observed: ObservedHost, *, openflow_port: int) -> HostPlan:
    """The smallest OVSDB change that makes this host right, and the flows its controlled bridges need."""
    controlled = controlled_bridges(host_uuid, world, observed)
    taken = {port for targets in observed.foreign_controllers.values() for target in targets
             if (port := listener_port(target)) is not None}
    targets = openflow_targets(controlled, observed.controllers, observed.address, openflow_port, taken)
    frozen = frozen_networks(world, host_uuid, observed)
    desired = world.desired.tunnels.get(host_uuid, frozenset())
    if not world.complete:
        # A pool we have not heard from may hold the far end (or the center) of any network
        # this host already carries: leave those exactly as they are, add only new ones.
        desired = frozenset(spec for spec in desired if spec.network_id not in frozen)
    desired, bfd_notes = supported_tunnels(desired, observed.schema_version, observed.missing_columns)
    fail_modes, fail_mode_errors = bridge_fail_modes(controlled, world, observed)
    ports = plan_ports(desired, observed.ports + adopted_ports(world, observed), bridges=observed.bridges,
                       frozen_networks=frozen,
                       controllers=targets, observed_controllers=observed.controllers,
                       **_loop_breaking(world.desired.mesh_bridges.get(host_uuid, frozenset()), observed),
                       fail_modes=fail_modes, observed_fail_modes=observed.fail_modes)
    mark, mark_notes = ipsec_mark(host_uuid, world, observed)
    ports = dataclasses.replace(ports, ipsec_mark=mark, remove_foreign_controllers=foreign_controllers_to_remove(
        host_uuid, world, controlled, observed))
    ports, notes = supported_plan(ports, observed.schema_version, observed.missing_columns)
    wanted = desired_flows(world.inventory.vif_rules, world.inventory.network_rules, observed.vif_ports,
                           bridges=controlled, infrastructure=infrastructure_ofports(observed.interfaces),
                           blocked=world.inventory.rule_errors, host_uuid=host_uuid,
                           placed=world.inventory.placed_vifs)
    flows = {bridge: wanted.get(bridge, frozenset()) for bridge in observed.controllers}
    return HostPlan(ports=ports, flows=flows, notes=notes + bfd_notes + fail_mode_errors + mark_notes,
                    purge=xo_cookies(world, observed))
