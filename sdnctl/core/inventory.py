"""PURE: every pool's XAPI records, parsed once per refresh into a typed Inventory.

This is the only place raw records are walked, and the only place host liveness is decided.
The daemon builds one Inventory per refresh and every later decision reads it.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sdnctl.core.flows import PlacedVif, rules_of, unicast_mac
from sdnctl.core.model import (
    CREATING_KEY, ENCAPSULATIONS, KEY_PREFIX, MANAGED_KEY, MAX_KEY, TOPOLOGIES, XO_PREFIX, ClusterSnapshot, Endpoint,
    PrivateNetwork, Rule,
)
from sdnctl.errors import RuleError

NULL_REF = "OpaqueRef:NULL"
FAIL_MODE_KEY = KEY_PREFIX + "fail-mode"

# XAPI records of one pool, by lower-case class name then ref (what get_all_records / event.from give).
PoolRecords = Mapping[str, Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class Host:
    """A host sdnctl must reach: where it is, and whether XAPI thinks it is alive."""

    uuid: str
    ref: str
    name: str
    pool: str
    address: str
    live: bool


@dataclass(frozen=True)
class TunnelRecord:
    """A XAPI tunnel object of a managed network: its `status` is the controller's to write."""

    ref: str
    pool: str
    host_uuid: str
    network_id: str
    status: Mapping[str, str]


@dataclass(frozen=True)
class AccessPif:
    """A managed network's tunnel access PIF, and whether what it needs to be plugged is there."""

    ref: str
    pool: str
    host_uuid: str
    network_id: str
    plugged: bool
    pluggable: bool   # host live, transport PIF plugged with an IP


@dataclass(frozen=True)
class NetworkObject:
    """One pool's XAPI network object of a private network, and the star center recorded on it."""

    pool: str
    ref: str
    network_id: str
    center: str | None = None


@dataclass(frozen=True)
class Inventory:
    """What every pool says, typed: hosts, private networks, tunnels, access PIFs and traffic rules."""

    hosts: Mapping[str, Host] = field(default_factory=dict)
    networks: tuple[PrivateNetwork, ...] = ()
    tunnels: tuple[TunnelRecord, ...] = ()
    access_pifs: tuple[AccessPif, ...] = ()
    network_objects: tuple[NetworkObject, ...] = ()
    vif_rules: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    network_rules: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    rule_errors: Mapping[str, str] = field(default_factory=dict)
    placed_vifs: tuple[PlacedVif, ...] = ()   # ruled VIFs whose VM is on, or about to be on, a host
    fail_modes: Mapping[str, str] = field(default_factory=dict)   # XAPI network uuid -> raw `sdnctl:fail-mode`
    vif_vms: Mapping[str, str] = field(default_factory=dict)      # VIF uuid -> its VM's name_label

    @property
    def snapshot(self) -> ClusterSnapshot:
        return ClusterSnapshot(networks=self.networks)

    def host_name(self, uuid: str | None) -> str:
        """The host's name_label, or the uuid itself for a host no pool knows (any more)."""
        host = self.hosts.get(uuid or "")
        return host.name if host else (uuid or "")

    def pool_hosts(self) -> dict[str, frozenset[str]]:
        """Pool name -> the uuids of its hosts."""
        pools: dict[str, set[str]] = defaultdict(set)
        for host in self.hosts.values():
            pools[host.pool].add(host.uuid)
        return {pool: frozenset(uuids) for pool, uuids in pools.items()}


# --- settings of a network's other_config ---------------------------------------------------

def _setting(other_config: Mapping[str, str], name: str) -> tuple[str, str | None]:
    """(key, value) of a setting: sdnctl's key wins over Xen Orchestra's."""
    for key in (KEY_PREFIX + name, XO_PREFIX + name):
        if key in other_config:
            return key, other_config[key]
    return KEY_PREFIX + name, None


def private_network_id(other_config: Mapping[str, str]) -> str | None:
    """The private-network uuid a XAPI network belongs to, as written, or None if it is not managed
    (no uuid, or let go with `sdnctl:managed = false`)."""
    if other_config.get(MANAGED_KEY, "").strip().lower() == "false":
        return None
    return _setting(other_config, "private-network-uuid")[1]


def _canonical_id(other_config: Mapping[str, str]) -> str | None:
    """The private-network uuid in one spelling, or None when absent or malformed."""
    raw = private_network_id(other_config)
    try:
        return str(uuidlib.UUID(raw)) if raw is not None else None
    except ValueError:
        return None


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
        "creating": oc.get(CREATING_KEY, "").lower() == "true",
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


# --- hosts and PIFs ---------------------------------------------------------------------------

def host_live(records: PoolRecords, host: Mapping) -> bool:
    """XAPI's verdict on a host: its host_metrics say live (XML-RPC may send the string "true")."""
    return records.get("host_metrics", {}).get(host.get("metrics", NULL_REF), {}).get("live", False) in (True, "true")


def _transport_of(records: PoolRecords, access: Mapping) -> Mapping:
    """The transport PIF under a tunnel access PIF ({} if XAPI has none)."""
    tunnel = records.get("tunnel", {}).get(access["tunnel_access_PIF_of"][0], {})
    return records.get("pif", {}).get(tunnel.get("transport_PIF", NULL_REF), {})


def _endpoints(pool: str, records: PoolRecords, network: Mapping) -> list[Endpoint]:
    """One endpoint per host that has a tunnel access PIF on this network."""
    pifs, hosts = records.get("pif", {}), records.get("host", {})
    endpoints = []
    for access_ref in network.get("PIFs", ()):
        access = pifs.get(access_ref)
        if not access or not access.get("tunnel_access_PIF_of"):
            continue
        transport = _transport_of(records, access)
        host = hosts.get(access.get("host", NULL_REF))
        if not host:
            continue
        ip = transport.get("IP") or None
        why_not = "; ".join(reason for reason, failing in (
            ("host not live", not host_live(records, host)),
            ("transport PIF unplugged", not transport.get("currently_attached")),
            ("no IP on its transport PIF", not ip),
            ("access PIF unplugged", not access.get("currently_attached"))) if failing)
        endpoints.append(Endpoint(host_uuid=host["uuid"], pool=pool, bridge=network.get("bridge", ""),
                                  transport_ip=ip, eligible=not why_not, ineligible_reason=why_not or None,
                                  multi_homed=not transport.get("management", False)))
    return endpoints


def private_networks(pools: Mapping[str, PoolRecords], default_topology: str = "star") -> ClusterSnapshot:
    """Merge every pool's managed networks into private networks (one per private-network uuid)."""
    parts: dict[str, list[tuple[dict, str | None, list[Endpoint]]]] = defaultdict(list)
    for pool in sorted(pools):
        records = pools[pool]
        for network in records.get("network", {}).values():
            if private_network_id(network.get("other_config", {})) is None:
                continue
            settings, error = _parse_network(pool, network, default_topology)
            parts[settings["id"]].append((settings, error, _endpoints(pool, records, network)))
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
        endpoints = tuple(sorted((ep for _, _, eps in members for ep in eps), key=lambda ep: ep.host_uuid))
        center = _recorded_center([s["center"] for s, _, _ in members if s["center"]], endpoints,
                                  first["preferred_center"])
        networks.append(PrivateNetwork(
            id=net_id, name=first["name"], encapsulation=first["encapsulation"], vni=first["vni"],
            topology=first["topology"], preferred_center=first["preferred_center"],
            center=center, encrypted=first["encrypted"], origin=first["origin"],
            endpoints=endpoints, error="; ".join(errors) or None, creating=any(s["creating"] for s, _, _ in members),
        ))
    return ClusterSnapshot(networks=_vni_clashes(networks))


def _vni_clashes(networks: list[PrivateNetwork]) -> tuple[PrivateNetwork, ...]:
    """Two networks with one encapsulation and VNI on a common host are both in error (so frozen): OVS takes
    only one tunnel per type, remote IP and key, so one of them would silently carry nothing there."""
    by_key: dict[tuple[str, int], list[PrivateNetwork]] = defaultdict(list)
    for network in networks:
        if not network.error:
            by_key[(network.encapsulation, network.vni)].append(network)
    clashes: dict[str, list[str]] = defaultdict(list)
    for group in by_key.values():
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                if {ep.host_uuid for ep in a.endpoints} & {ep.host_uuid for ep in b.endpoints}:
                    clashes[a.id].append(f"{b.name} ({b.id})")
                    clashes[b.id].append(f"{a.name} ({a.id})")
    return tuple(replace(n, error=f"{n.encapsulation} VNI {n.vni} is also that of network {', '.join(clashes[n.id])} "
                                  "on common hosts, and OVS keeps one tunnel per remote IP and key: give one of "
                                  "them another VNI (a new network)") if n.id in clashes else n for n in networks)


def _recorded_center(recorded: list[str], endpoints: tuple[Endpoint, ...], preferred: str | None) -> str | None:
    """The star center the pools recorded. Pools that disagree (a write that reached only some of them)
    are reconciled on one, then written to all: an eligible one before others; among those the preferred
    center, then the one more pools recorded, then the lowest uuid."""
    eligible = {ep.host_uuid for ep in endpoints if ep.eligible}
    ranked = sorted(set(recorded), key=lambda c: (c not in eligible, c != preferred, -recorded.count(c), c))
    return ranked[0] if ranked else None


def _hosts(pool: str, records: PoolRecords) -> list[Host]:
    return [Host(uuid=host["uuid"], ref=ref, name=host.get("name_label", ""), pool=pool,
                 address=host.get("address", ""), live=host_live(records, host))
            for ref, host in records.get("host", {}).items()]


def _managed_objects(pool: str, records: PoolRecords) -> tuple[list[TunnelRecord], list[AccessPif], list[NetworkObject]]:
    """The tunnels, access PIFs and network objects of this pool's managed networks."""
    pifs, hosts, networks = records.get("pif", {}), records.get("host", {}), records.get("network", {})
    ids = {ref: _canonical_id(net.get("other_config", {})) for ref, net in networks.items()}
    objects = [NetworkObject(pool, ref, net_id, networks[ref].get("other_config", {}).get(KEY_PREFIX + "center") or None)
               for ref, net_id in ids.items() if net_id is not None]
    tunnels, access_pifs = [], []
    for ref, pif in pifs.items():
        net_id = ids.get(pif.get("network", NULL_REF))
        host = hosts.get(pif.get("host", NULL_REF))
        if net_id is None or host is None or not pif.get("tunnel_access_PIF_of"):
            continue
        tunnel_ref = pif["tunnel_access_PIF_of"][0]
        tunnel = records.get("tunnel", {}).get(tunnel_ref)
        if tunnel is not None:
            tunnels.append(TunnelRecord(tunnel_ref, pool, host["uuid"], net_id, dict(tunnel.get("status", {}))))
        transport = _transport_of(records, pif)
        pluggable = bool(host_live(records, host) and transport.get("currently_attached") and transport.get("IP"))
        access_pifs.append(AccessPif(ref, pool, host["uuid"], net_id, bool(pif.get("currently_attached")), pluggable))
    return tunnels, access_pifs, objects


def _rules(pools: Mapping[str, PoolRecords]) -> tuple[dict, dict, dict]:
    """VIF uuid -> rules, network uuid -> rules, and object uuid -> error.

    A malformed rule set disables that object's rules only (its error shows in `status`).
    """
    vif_rules: dict[str, tuple[Rule, ...]] = {}
    network_rules: dict[str, tuple[Rule, ...]] = {}
    errors: dict[str, str] = {}
    for pool, records in pools.items():
        for cls, target in (("vif", vif_rules), ("network", network_rules)):
            for record in records.get(cls, {}).values():
                try:
                    found = rules_of(record.get("other_config", {}))
                except RuleError as exc:
                    errors[record["uuid"]] = f"pool {pool}, {'VIF' if cls == 'vif' else cls} {record['uuid']}: {exc}"
                    continue
                if found:
                    target[record["uuid"]] = found
    return vif_rules, network_rules, errors


def _placement(records: PoolRecords, vm: Mapping) -> frozenset[str]:
    """The uuids of the hosts a VM runs on or is about to run on: `resident_on`, and `scheduled_to_be_resident_on`,
    which XAPI sets before the domain (and its VIF ports) exists on a start, resume or migration destination
    (message_forwarding.ml, allocate_vm_to_host) and clears once it is done."""
    hosts = records.get("host", {})
    refs = (vm.get("resident_on", NULL_REF), vm.get("scheduled_to_be_resident_on", NULL_REF))
    return frozenset(hosts[ref]["uuid"] for ref in refs if ref in hosts)


def _placed_vifs(pools: Mapping[str, PoolRecords], vif_rules: Mapping, network_rules: Mapping,
                 errors: dict[str, str]) -> tuple[PlacedVif, ...]:
    """Every VIF with rules (its own or its network's) whose VM is on or about to be on a host, from XAPI's
    records. A ruled VIF whose `VIF.MAC` is not a unicast MAC gets an error in `errors` (fail closed: blocked)."""
    placed = []
    for pool, records in pools.items():
        networks, vms = records.get("network", {}), records.get("vm", {})
        for vif in records.get("vif", {}).values():
            network = networks.get(vif.get("network", NULL_REF), {})
            vif_uuid, network_uuid = vif.get("uuid", ""), network.get("uuid", "")
            # XAPI's records always carry `MAC`; one without it (a partial record) is left to its port, as before.
            if (vif_uuid not in vif_rules and network_uuid not in network_rules) or "MAC" not in vif:
                continue
            mac = unicast_mac(vif["MAC"])
            if mac is None:
                problem = (f"pool {pool}, VIF {vif_uuid}: MAC {vif['MAC']!r} is not a unicast MAC address, so its "
                           "rules cannot be enforced and its port stays blocked; give the VM a VIF with a valid MAC "
                           "(VIF.create with MAC \"\" lets XAPI choose one)")
                errors[vif_uuid] = f"{errors[vif_uuid]}; {problem}" if vif_uuid in errors else problem
            hosts = _placement(records, vms.get(vif.get("VM", NULL_REF), {}))
            if hosts:
                placed.append(PlacedVif(vif_uuid=vif_uuid, network_uuid=network_uuid,
                                        bridge=network.get("bridge", ""), mac=mac or "", hosts=hosts))
    return tuple(sorted(placed, key=lambda p: p.vif_uuid))


def build_inventory(pools: Mapping[str, PoolRecords], default_topology: str = "star") -> Inventory:
    """Every pool's records -> one Inventory (pools that have not answered yet are simply absent)."""
    hosts: dict[str, Host] = {}
    tunnels: list[TunnelRecord] = []
    access_pifs: list[AccessPif] = []
    objects: list[NetworkObject] = []
    for pool in sorted(pools):
        hosts.update((host.uuid, host) for host in _hosts(pool, pools[pool]))
        pool_tunnels, pool_pifs, pool_objects = _managed_objects(pool, pools[pool])
        tunnels += pool_tunnels
        access_pifs += pool_pifs
        objects += pool_objects
    vif_rules, network_rules, rule_errors = _rules(pools)
    placed_vifs = _placed_vifs(pools, vif_rules, network_rules, rule_errors)
    fail_modes = {record["uuid"]: record["other_config"][FAIL_MODE_KEY] for records in pools.values()
                  for record in records.get("network", {}).values()
                  if FAIL_MODE_KEY in record.get("other_config", {})}
    vif_vms = {vif["uuid"]: records.get("vm", {}).get(vif.get("VM", NULL_REF), {}).get("name_label", "")
               for records in pools.values() for vif in records.get("vif", {}).values() if "uuid" in vif}
    return Inventory(hosts=hosts, networks=private_networks(pools, default_topology).networks, tunnels=tuple(tunnels),
                     access_pifs=tuple(access_pifs), network_objects=tuple(objects), vif_rules=vif_rules,
                     network_rules=network_rules, rule_errors=rule_errors, placed_vifs=placed_vifs,
                     fail_modes=fail_modes, vif_vms=vif_vms)
