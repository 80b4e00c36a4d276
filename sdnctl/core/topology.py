"""PURE: private networks -> the tunnel ports every host should carry; one host's port plan.

The pools' records become private networks in `inventory`; this module decides what they mean.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

from sdnctl.core.model import (
    ClusterSnapshot, Endpoint, ObservedPort, PortPlan, PrivateNetwork, TunnelSpec, tunnel_port_name,
)


@dataclass(frozen=True)
class DesiredState:
    """Tunnel ports per host uuid, the star centers, and networks whose ports must be left alone."""

    tunnels: Mapping[str, frozenset[TunnelSpec]]
    centers: Mapping[str, str | None]
    frozen_networks: frozenset[str]
    mesh_bridges: Mapping[str, frozenset[str]] = field(default_factory=dict)  # host -> its mesh bridges (loops)
    avoided: Mapping[str, frozenset[str]] = field(default_factory=dict)  # network -> hosts dead by BFD (no center)


# --- private networks -> tunnels -----------------------------------------------------------

def elect_center(network: PrivateNetwork, avoid: frozenset[str] = frozenset(), reclaim: bool = False) -> str | None:
    """The star's center: the current one while it stays eligible, else the preferred, else the lowest uuid.

    The current center is kept while it is eligible: a move rebuilds every tunnel of the network.
    The one exception is `reclaim`: the preferred center has been eligible, without a break, for
    `preferred_center_hold` seconds (`preferred_waits`), and takes the role back. Hosts in `avoid`
    (dead by BFD though XAPI calls them live: core.health.watch_centers) are skipped while another is eligible.
    """
    eligible = sorted(ep.host_uuid for ep in network.endpoints if ep.eligible)
    eligible = [host for host in eligible if host not in avoid] or eligible
    order = (network.preferred_center, network.center) if reclaim else (network.center, network.preferred_center)
    for candidate in order:
        if candidate in eligible:
            return candidate
    return eligible[0] if eligible else None


def _pairs(network: PrivateNetwork, center: str | None) -> list[tuple[Endpoint, Endpoint]]:
    eligible = [ep for ep in network.endpoints if ep.eligible]
    if network.topology == "mesh":
        return [(a, b) for a in eligible for b in eligible if a.host_uuid != b.host_uuid]
    hub = next((ep for ep in eligible if ep.host_uuid == center), None)
    if hub is None:
        return []
    spokes = [ep for ep in eligible if ep is not hub]
    return [(hub, ep) for ep in spokes] + [(ep, hub) for ep in spokes]


def bfd_settings(enabled: bool, min_rx_ms: int, min_tx_ms: int) -> tuple[tuple[str, str], ...]:
    """The Interface.bfd map of every tunnel sdnctl owns, sorted; () leaves BFD off."""
    if not enabled:
        return ()
    return (("enable", "true"), ("min_rx", str(min_rx_ms)), ("min_tx", str(min_tx_ms)))


def desired_tunnels(snapshot: ClusterSnapshot, psks: Mapping[str, str] | None = None, *,
                    bfd: tuple[tuple[str, str], ...] = (),
                    avoid: Mapping[str, frozenset[str]] | None = None,
                    reclaim: frozenset[str] = frozenset()) -> DesiredState:
    """Every tunnel port each host should carry, given the pools as they are now.

    `psks` holds the IPsec pre-shared key of each encrypted network, by private-network uuid;
    an encrypted network without one is frozen (its tunnels are not built unencrypted).
    `bfd` is every tunnel's Interface.bfd (bfd_settings); `avoid` the hosts per network that
    must not be its star's center (dead by BFD).

    The answer to the same inputs is the same object: a refresh whose events changed no network (a
    tunnel status written back, a VIF elsewhere) compares two desired states by identity, not 39,800 specs.
    """
    return _desired(snapshot.networks, tuple(sorted((psks or {}).items())), bfd,
                    tuple(sorted((avoid or {}).items())), reclaim)


@functools.lru_cache(maxsize=8)
def _desired(networks: tuple[PrivateNetwork, ...], psk_items: tuple[tuple[str, str], ...],
             bfd: tuple[tuple[str, str], ...], avoid_items: tuple[tuple[str, frozenset[str]], ...],
             reclaim: frozenset[str]) -> DesiredState:
    psks, avoid = dict(psk_items), dict(avoid_items)
    tunnels: dict[str, set[TunnelSpec]] = defaultdict(set)
    centers: dict[str, str | None] = {}
    mesh: dict[str, set[str]] = defaultdict(set)
    frozen = set()
    for network in networks:
        for ep in network.endpoints:
            tunnels[ep.host_uuid]  # every endpoint host gets an entry, so stale ports are swept
        if network.error or network.creating or (network.encrypted and not psks.get(network.id)):
            frozen.add(network.id)
            continue
        center = (elect_center(network, avoid.get(network.id, frozenset()), network.id in reclaim)
                  if network.topology == "star" else None)
        centers[network.id] = center
        if network.topology == "mesh":
            # Three or more hosts joined pairwise form loops; NORMAL would flood a broadcast around
            # them for ever. Split horizon breaks them: every tunnel of a mesh is a protected port,
            # and NORMAL never forwards from one protected port to another, so a frame that came
            # in on a tunnel never leaves on another (each host reaches every other directly).
            # Switches without Port.protected (OVS < 2.11) run RSTP on these bridges instead.
            for ep in network.endpoints:
                mesh[ep.host_uuid].add(ep.bridge)
        for host, spec in network_tunnels(network, center, psks.get(network.id) if network.encrypted else None, bfd):
            tunnels[host].add(spec)
    return DesiredState(tunnels={h: frozenset(t) for h, t in tunnels.items()}, centers=centers,
                        frozen_networks=frozenset(frozen), mesh_bridges={h: frozenset(b) for h, b in mesh.items()},
                        avoided={n: hosts for n, hosts in avoid.items() if hosts})


@functools.lru_cache(maxsize=4096)
def network_tunnels(network: PrivateNetwork, center: str | None, psk: str | None,
                    bfd: tuple[tuple[str, str], ...]) -> tuple[tuple[str, TunnelSpec], ...]:
    """(host uuid, tunnel spec) for every port of one network. Kept per network: an event elsewhere (another
    network, a VIF, a host_metrics tick) rebuilds no spec of a 200-host mesh's 39,800."""
    return tuple((local.host_uuid, TunnelSpec(
        name=tunnel_port_name(network.id, remote.host_uuid), bridge=local.bridge,
        network_id=network.id, remote_host=remote.host_uuid, type=network.encapsulation,
        # An eligible endpoint has a transport IP (see _endpoints); the type cannot say so.
        remote_ip=cast(str, remote.transport_ip), key=network.vni,
        local_ip=local.transport_ip if local.multi_homed else None,
        psk=psk, protected=network.topology == "mesh", bfd=bfd,
    )) for local, remote in _pairs(network, center))


def preferred_waits(networks: Iterable[PrivateNetwork], centers: Mapping[str, str | None],
                    avoided: Mapping[str, frozenset[str]], since: Mapping[str, float], now: float) -> dict[str, float]:
    """Star networks whose preferred center is eligible but not the center, with since when (kept from
    `since`, else `now`). A network drops out, and starts over later, as soon as that stops being true."""
    waits = {}
    for network in networks:
        preferred = network.preferred_center
        eligible = {ep.host_uuid for ep in network.endpoints if ep.eligible} - avoided.get(network.id, frozenset())
        if network.topology == "star" and preferred in eligible and centers.get(network.id) not in (None, preferred):
            waits[network.id] = since.get(network.id, now)
    return waits


def reclaims(waits: Mapping[str, float], now: float, hold: float) -> frozenset[str]:
    """The networks whose preferred center has waited `hold` seconds: it takes the role back."""
    return frozenset(network for network, start in waits.items() if now - start >= hold)

# --- desired vs observed -------------------------------------------------------------------

def _matches(spec: TunnelSpec, port: ObservedPort) -> bool:
    return (spec.bridge, spec.type, spec.network_id, spec.remote_host, spec.options, spec.bfd, spec.protected) == (
        port.bridge, port.type, port.network_id, port.remote_host, dict(port.options), port.bfd, port.protected)


def plan_ports(desired: Iterable[TunnelSpec], observed: Iterable[ObservedPort], *,
               bridges: Iterable[str], frozen_networks: Iterable[str] = (),
               controllers: Mapping[str, str] | None = None,
               observed_controllers: Mapping[str, str] | None = None,
               rstp: Iterable[str] = (), observed_rstp: Iterable[str] = (), no_rstp: Iterable[str] = (),
               fail_modes: Mapping[str, str] | None = None,
               observed_fail_modes: Mapping[str, str] | None = None) -> PortPlan:
    """The smallest change that makes a host's sdnctl-owned ports equal `desired`.

    Ports of frozen (malformed) networks are left as they are; desired ports on a bridge
    the host does not have yet wait for it (xcp-networkd creates bridges on PIF plug).
    `controllers` (bridge -> target) is what sdnctl's controller rows should be, compared with
    `observed_controllers`; None leaves controller rows alone. `fail_modes` (bridge -> "secure" |
    "standalone") is what each controlled bridge's fail_mode should be, compared with
    `observed_fail_modes` (an unset fail_mode is "", which OVS treats as standalone). `rstp` are
    the bridges that need RSTP on, `no_rstp` those that must have it off (split horizon instead).
    """
    desired = list(desired)
    present = set(bridges)
    frozen = set(frozen_networks)
    wanted = {spec.name: spec for spec in desired if spec.bridge in present}
    waiting = {spec.name for spec in desired} - set(wanted)
    seen = {port.name: port for port in observed}
    add, modify, delete = [], [], []
    for name, port in sorted(seen.items()):
        spec = wanted.get(name)
        if spec is None:
            if port.network_id not in frozen and name not in waiting:
                delete.append(port)
        elif spec.bridge != port.bridge:
            delete.append(port)
            add.append(spec)
        elif not _matches(spec, port):
            modify.append(spec)
    add += [spec for name, spec in sorted(wanted.items()) if name not in seen]
    set_controllers: list[tuple[str, str]] = []
    remove_controllers: list[str] = []
    if controllers is not None:
        have = dict(observed_controllers or {})
        set_controllers = [(b, t) for b, t in sorted(controllers.items()) if b in present and have.get(b) != t]
        remove_controllers = sorted(b for b in have if b not in controllers and b in present)
    enable_rstp = tuple(sorted(set(rstp) & present - set(observed_rstp)))
    disable_rstp = tuple(sorted(set(no_rstp) & present & set(observed_rstp)))
    seen_modes = observed_fail_modes or {}
    set_fail_modes = tuple(sorted((b, mode) for b, mode in (fail_modes or {}).items()
                                  if b in present and seen_modes.get(b, "") != mode))
    return PortPlan(add=tuple(add), delete=tuple(delete), modify=tuple(modify),
                    set_controllers=tuple(set_controllers), remove_controllers=tuple(remove_controllers),
                    enable_rstp=enable_rstp, disable_rstp=disable_rstp, set_fail_modes=set_fail_modes)


# --- OpenFlow controller listeners ----------------------------------------------------------

OPENFLOW_DEFAULT_PORT = 6653   # what a `pssl:` target without a port listens on


def listener_port(target: str) -> int | None:
    """The TCP port a passive `pssl:[PORT[:ADDRESS]]` Controller target listens on (None if not passive TLS)."""
    parts = target.split(":")
    if parts[0] != "pssl" or len(parts) > 3:
        return None
    if len(parts) == 1 or not parts[1]:
        return OPENFLOW_DEFAULT_PORT
    return int(parts[1]) if parts[1].isdigit() else None


def openflow_targets(bridges: Iterable[str], existing: Mapping[str, str], address: str,
                     base_port: int, taken: Iterable[int] = ()) -> dict[str, str]:
    """The `pssl:PORT:ADDRESS` listener each bridge should have, one TCP port per bridge of a host.

    A bridge keeps the port it has (a restart changes nothing); a new bridge takes the lowest
    free port from `base_port` up, bridges in name order, so the result is deterministic. Ports in
    `taken` (other controllers' listeners on the host, e.g. Xen Orchestra's `pssl:` = 6653) are never
    used: two listeners on one port would send sdnctl to another bridge.
    """
    taken = set(taken)

    def port_of(target: str) -> int | None:
        parts = target.split(":")
        return int(parts[1]) if len(parts) == 3 and parts[0] == "pssl" and parts[1].isdigit() else None

    wanted = sorted(set(bridges))
    kept = {b: existing[b] for b in wanted if b in existing and port_of(existing[b]) not in (None, *taken)
            and existing[b].endswith(f":{address}")}
    used = {port_of(t) for t in kept.values()} | taken
    targets = dict(kept)
    port = base_port
    for bridge in wanted:
        if bridge in targets:
            continue
        while port in used:
            port += 1
        targets[bridge] = f"pssl:{port}:{address}"
        used.add(port)
    return targets
