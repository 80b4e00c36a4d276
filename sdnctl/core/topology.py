"""PURE: the pools as XAPI records -> private networks -> the tunnel ports every host should carry.

No sockets, clocks or threads here: the shell passes records in and applies what comes out.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

from sdnctl.core.model import (
    ENCAPSULATIONS, KEY_PREFIX, MAX_KEY, TOPOLOGIES, XO_PREFIX,
    ClusterSnapshot, Endpoint, ObservedPort, PortPlan, PrivateNetwork, TunnelSpec, tunnel_port_name,
)

NULL_REF = "OpaqueRef:NULL"

# XAPI records of one pool, by lower-case class name then ref (what get_all_records / event.from give).
PoolRecords = Mapping[str, Mapping[str, Mapping]]


@dataclass(frozen=True)
class DesiredState:
    """Tunnel ports per host uuid, the star centers, and networks whose ports must be left alone."""

    tunnels: Mapping[str, frozenset[TunnelSpec]]
    centers: Mapping[str, str | None]
    frozen_networks: frozenset[str]
    rstp_bridges: Mapping[str, frozenset[str]] = field(default_factory=dict)  # host -> bridges needing RSTP


# --- records -> private networks -----------------------------------------------------------

def _setting(other_config: Mapping[str, str], name: str) -> tuple[str, str | None]:
    """(key, value) of a setting: sdnctl's key wins over Xen Orchestra's."""
    for key in (KEY_PREFIX + name, XO_PREFIX + name):
        if key in other_config:
            return key, other_config[key]
    return KEY_PREFIX + name, None


def private_network_id(other_config: Mapping[str, str]) -> str | None:
    """The private-network uuid a XAPI network belongs to, or None if it is not managed."""
    return _setting(other_config, "private-network-uuid")[1]


def _parse_network(pool: str, record: Mapping, default_topology: str) -> tuple[dict, str | None]:
    """The settings of one pool's network object, and an error message if they are malformed."""
    oc = record.get("other_config", {})
    id_key, net_id = _setting(oc, "private-network-uuid")
    origin = "sdnctl" if id_key.startswith(KEY_PREFIX) else "xo"
    where = f"pool {pool}, network {record.get('name_label', '?')!r} ({record.get('uuid', '?')})"
    encap_key, encapsulation = _setting(oc, "encapsulation")
    topology_key, topology = _setting(oc, "topology")
    settings = {
        "id": net_id, "origin": origin, "name": record.get("name_label", ""),
        "encapsulation": (encapsulation or "gre").lower(),
        "topology": "star" if origin == "xo" else (topology or default_topology),
        "preferred_center": _setting(oc, "preferred-center")[1] or None,
        "center": oc.get(KEY_PREFIX + "center") or None,
        "encrypted": (_setting(oc, "encrypted")[1] or "false").lower() == "true",
        "vni": 0,
    }
    try:
        settings["id"] = str(uuidlib.UUID(net_id))  # one spelling, whatever case or hyphens a pool used
    except ValueError:
        return settings, f"{where}: {id_key} {net_id!r} is not a uuid"
    if settings["encapsulation"] not in ENCAPSULATIONS:
        return settings, (f"{where}: {encap_key} {encapsulation!r} is not one of "
                          f"{', '.join(ENCAPSULATIONS)}; fix it with network.add_to_other_config")
    if settings["topology"] not in TOPOLOGIES:
        return settings, f"{where}: {topology_key} {settings['topology']!r} is not one of {', '.join(TOPOLOGIES)}"
    vni_key, raw_vni = _setting(oc, "vni")
    if raw_vni is None or not re.fullmatch(r"-?[0-9]{1,12}", raw_vni):
        return settings, f"{where}: {vni_key} {raw_vni!r} is not an integer"
    vni = int(raw_vni)
    if not 1 <= vni <= MAX_KEY[settings["encapsulation"]]:
        return settings, (f"{where}: {vni_key} {vni} is out of range for {settings['encapsulation']} "
                          f"(1..{MAX_KEY[settings['encapsulation']]})")
    settings["vni"] = vni
    return settings, None


def _endpoints(pool: str, records: PoolRecords, network_ref: str, network: Mapping) -> list[Endpoint]:
    """One endpoint per host that has a tunnel access PIF on this network."""
    pifs, tunnels = records.get("pif", {}), records.get("tunnel", {})
    hosts, metrics = records.get("host", {}), records.get("host_metrics", {})
    endpoints = []
    for access_ref in network.get("PIFs", ()):
        access = pifs.get(access_ref)
        if not access or not access.get("tunnel_access_PIF_of"):
            continue
        tunnel = tunnels.get(access["tunnel_access_PIF_of"][0], {})
        transport = pifs.get(tunnel.get("transport_PIF", NULL_REF), {})
        host = hosts.get(access.get("host", NULL_REF))
        if not host:
            continue
        live = metrics.get(host.get("metrics", NULL_REF), {}).get("live", False) in (True, "true")
        ip = transport.get("IP") or None
        eligible = bool(live and ip and access.get("currently_attached") and transport.get("currently_attached"))
        endpoints.append(Endpoint(host_uuid=host["uuid"], pool=pool, bridge=network.get("bridge", ""),
                                  transport_ip=ip, eligible=eligible,
                                  multi_homed=not transport.get("management", False)))
    return endpoints


def private_networks(pools: Mapping[str, PoolRecords], default_topology: str = "star") -> ClusterSnapshot:
    """Merge every pool's managed networks into private networks (one per private-network uuid)."""
    parts: dict[str, list[tuple[dict, str | None, list[Endpoint]]]] = defaultdict(list)
    for pool in sorted(pools):
        records = pools[pool]
        for ref, network in records.get("network", {}).items():
            if private_network_id(network.get("other_config", {})) is None:
                continue
            settings, error = _parse_network(pool, network, default_topology)
            parts[settings["id"]].append((settings, error, _endpoints(pool, records, ref, network)))
    networks = []
    for net_id, members in sorted(parts.items()):
        errors = [e for _, e, _ in members if e]
        parsed = [settings for settings, error, _ in members if error is None]
        first = parsed[0] if parsed else members[0][0]
        for settings in parsed[1:]:
            for key in ("encapsulation", "vni", "topology"):
                if settings[key] != first[key]:
                    errors.append(f"private network {net_id}: pools disagree on {key} "
                                  f"({first[key]!r} vs {settings[key]!r})")
        centers = [s["center"] for s, _, _ in members if s["center"]]
        endpoints = tuple(sorted((ep for _, _, eps in members for ep in eps), key=lambda ep: ep.host_uuid))
        networks.append(PrivateNetwork(
            id=net_id, name=first["name"], encapsulation=first["encapsulation"], vni=first["vni"],
            topology=first["topology"], preferred_center=first["preferred_center"],
            center=min(centers) if centers else None, encrypted=first["encrypted"], origin=first["origin"],
            endpoints=endpoints, error="; ".join(errors) or None,
        ))
    return ClusterSnapshot(networks=tuple(networks))


# --- private networks -> tunnels -----------------------------------------------------------

def elect_center(network: PrivateNetwork) -> str | None:
    """The star's center: the current one while it stays eligible, else the preferred, else the lowest uuid.

    The center is sticky on purpose: moving it back when the preferred host returns would
    rebuild every tunnel of the network for no gain in reachability.
    """
    eligible = sorted(ep.host_uuid for ep in network.endpoints if ep.eligible)
    for candidate in (network.center, network.preferred_center):
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


def desired_tunnels(snapshot: ClusterSnapshot, psks: Mapping[str, str] | None = None) -> DesiredState:
    """Every tunnel port each host should carry, given the pools as they are now.

    `psks` holds the IPsec pre-shared key of each encrypted network, by private-network uuid;
    an encrypted network without one is frozen (its tunnels are not built unencrypted).
    """
    psks = psks or {}
    tunnels: dict[str, set[TunnelSpec]] = defaultdict(set)
    centers: dict[str, str | None] = {}
    rstp: dict[str, set[str]] = defaultdict(set)
    frozen = set()
    for network in snapshot.networks:
        for ep in network.endpoints:
            tunnels[ep.host_uuid]  # every endpoint host gets an entry, so stale ports are swept
        if network.error or (network.encrypted and not psks.get(network.id)):
            frozen.add(network.id)
            continue
        center = elect_center(network) if network.topology == "star" else None
        centers[network.id] = center
        if network.topology == "mesh":
            # Three or more hosts joined pairwise form loops; NORMAL would flood a broadcast around
            # them for ever. RSTP blocks the redundant tunnels and unblocks one when a path fails.
            for ep in network.endpoints:
                rstp[ep.host_uuid].add(ep.bridge)
        for local, remote in _pairs(network, center):
            tunnels[local.host_uuid].add(TunnelSpec(
                name=tunnel_port_name(network.id, remote.host_uuid), bridge=local.bridge,
                network_id=network.id, remote_host=remote.host_uuid, type=network.encapsulation,
                # An eligible endpoint has a transport IP (see _endpoints); the type cannot say so.
                remote_ip=cast(str, remote.transport_ip), key=network.vni,
                local_ip=local.transport_ip if local.multi_homed else None,
                psk=psks.get(network.id) if network.encrypted else None,
            ))
    return DesiredState(tunnels={h: frozenset(t) for h, t in tunnels.items()}, centers=centers,
                        frozen_networks=frozenset(frozen), rstp_bridges={h: frozenset(b) for h, b in rstp.items()})


# --- desired vs observed -------------------------------------------------------------------

def _matches(spec: TunnelSpec, port: ObservedPort) -> bool:
    return (spec.bridge, spec.type, spec.network_id, spec.remote_host, spec.options) == (
        port.bridge, port.type, port.network_id, port.remote_host, dict(port.options))


def plan_ports(desired: Iterable[TunnelSpec], observed: Iterable[ObservedPort], *,
               bridges: Iterable[str], frozen_networks: Iterable[str] = (),
               controllers: Mapping[str, str] | None = None,
               observed_controllers: Mapping[str, str] | None = None,
               rstp: Iterable[str] = (), observed_rstp: Iterable[str] = ()) -> PortPlan:
    """The smallest change that makes a host's sdnctl-owned ports equal `desired`.

    Ports of frozen (malformed) networks are left as they are; desired ports on a bridge
    the host does not have yet wait for it (xcp-networkd creates bridges on PIF plug).
    `controllers` (bridge -> target) is what sdnctl's controller rows should be, compared with
    `observed_controllers`; None leaves controller rows alone.
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
    return PortPlan(add=tuple(add), delete=tuple(delete), modify=tuple(modify),
                    set_controllers=tuple(set_controllers), remove_controllers=tuple(remove_controllers),
                    enable_rstp=enable_rstp)


# --- OpenFlow controller listeners ----------------------------------------------------------

def openflow_targets(bridges: Iterable[str], existing: Mapping[str, str], address: str,
                     base_port: int) -> dict[str, str]:
    """The `pssl:PORT:ADDRESS` listener each bridge should have, one TCP port per bridge of a host.

    A bridge keeps the port it has (a restart changes nothing); a new bridge takes the lowest
    free port from `base_port` up, bridges in name order, so the result is deterministic.
    """
    def port_of(target: str) -> int | None:
        parts = target.split(":")
        return int(parts[1]) if len(parts) == 3 and parts[0] == "pssl" and parts[1].isdigit() else None

    wanted = sorted(set(bridges))
    kept = {b: existing[b] for b in wanted if b in existing and port_of(existing[b]) is not None
            and existing[b].endswith(f":{address}")}
    used = {port_of(t) for t in kept.values()}
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
