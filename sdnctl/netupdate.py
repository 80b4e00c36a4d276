"""`sdnctl network update`: change a private network in place, in every pool, with a preview.

Each setting is one XAPI write per pool; the daemon then changes only the tunnel ports that
differ (`core.netchange` predicts which). A rename or an MTU change touches no tunnel; turning
encryption on or off modifies the ports' options in place; a topology, center or pool change
adds and deletes only the ports that differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sdnctl.core.inventory import build_inventory
from sdnctl.core.model import KEY_PREFIX, TOPOLOGIES, XO_PREFIX, Endpoint, PrivateNetwork
from sdnctl.core.netchange import NetworkChange, tunnel_changes, totals
from sdnctl.errors import ConfigError, XapiError
from sdnctl.networks import (
    VXLAN_IPSEC_WARNING, CreateRequest, Pools, Say, create_tunnels, destroy_network, find_network, host_pifs, host_uuid, managed_networks, mtu_limit,
)
from sdnctl.xapi.watcher import CLASSES

Members = list[tuple[str, str, dict]]   # (pool, network ref, record)


@dataclass(frozen=True)
class UpdateRequest:
    """What `network update` was asked for; None (or empty) leaves a setting alone."""

    network: str                       # name or private-network uuid
    name: str | None = None
    preferred_center: str | None = None   # host name or uuid; "" clears it
    mtu: int | None = None
    encrypted: bool | None = None
    topology: str | None = None
    add_pools: tuple[str, ...] = ()
    remove_pools: tuple[str, ...] = ()
    pif_device: str = ""               # for --add-pool: the transport device of the added pools' hosts
    host_pif_devices: tuple[tuple[str, str], ...] = ()
    vlan: int | None = None

    @property
    def empty(self) -> bool:
        return (self.name, self.preferred_center, self.mtu, self.encrypted, self.topology) == (None,) * 5 \
            and not (self.add_pools or self.remove_pools)


def _key(record: dict, name: str) -> str:
    """The other_config key a setting lives under: sdnctl's, or Xen Orchestra's on a network XO made."""
    other_config = record["other_config"]
    return XO_PREFIX + name if XO_PREFIX + name in other_config and KEY_PREFIX + name not in other_config \
        else KEY_PREFIX + name


def _check(pools: Pools, request: UpdateRequest, net_id: str, members: Members) -> None:
    """Refuse what cannot be done, before anything is written."""
    if request.empty:
        raise ConfigError("nothing to change: give at least one of --name, --preferred-center, --mtu, "
                          "--encrypt/--no-encrypt, --topology, --add-pool, --remove-pool")
    first = members[0][2]
    xo_made = KEY_PREFIX + "private-network-uuid" not in first["other_config"]
    if request.topology is not None:
        if request.topology not in TOPOLOGIES:
            raise ConfigError(f"--topology {request.topology!r}: use one of {', '.join(TOPOLOGIES)}")
        if xo_made:
            raise ConfigError("--topology: this network was made by Xen Orchestra, whose controller builds only "
                              "stars; it stays a star while Xen Orchestra's keys define it")
    if request.mtu is not None and not 68 <= request.mtu <= 65000:
        raise ConfigError(f"--mtu {request.mtu}: give a number of bytes, 68..65000")
    if request.name is not None:
        taken = [other for other, ms in managed_networks(pools).items()
                 if other != net_id and any(r["name_label"] == request.name for _, _, r in ms)]
        if taken:
            raise XapiError(f"--name {request.name!r}: another private network has that name ({taken[0]})")
    spanned = {pool for pool, _, _ in members}
    for pool in request.add_pools:
        if pool in spanned:
            raise ConfigError(f"--add-pool {pool}: the network spans {pool} already")
        if not (request.pif_device or request.host_pif_devices):
            raise ConfigError("--add-pool needs --pif-device DEVICE: the device the added pool's tunnels leave from")
    for pool in request.remove_pools:
        if pool not in spanned:
            raise ConfigError(f"--remove-pool {pool}: the network does not span {pool} ({', '.join(sorted(spanned))})")
    if spanned - set(request.remove_pools) | set(request.add_pools) == set():
        raise ConfigError("--remove-pool would leave the network in no pool; use `sdnctl network delete`")
    for pool, _, record in members:
        if pool in request.remove_pools and record["VIFs"]:
            raise XapiError(f"--remove-pool {pool}: network {record['name_label']} has {len(record['VIFs'])} "
                            "VIF(s) there (XAPI refuses to destroy it: NETWORK_CONTAINS_VIF); move or unplug them first")


def _records(pools: Pools, pool_names: list[str]) -> dict[str, dict[str, dict]]:
    """What the daemon's watchers mirror, read once, so the preview plans with the daemon's own inputs."""
    api_name = {"pif": "PIF", "vif": "VIF", "vm": "VM"}   # event.from's class names are lower case
    return {pool: {cls: pools.call(pool, f"{api_name.get(cls, cls)}.get_all_records") for cls in CLASSES}
            for pool in pool_names}


def _transport_mtus(records: dict[str, dict[str, dict]], members: Members) -> list[int]:
    """The MTU of every transport PIF the network's tunnels leave from."""
    mtus = []
    for pool, _, record in members:
        pifs, tunnels = records[pool]["pif"], records[pool]["tunnel"]
        for access in record["PIFs"]:
            for tunnel in pifs.get(access, {}).get("tunnel_access_PIF_of", ()):
                transport = pifs.get(tunnels.get(tunnel, {}).get("transport_PIF", ""))
                if transport:
                    mtus.append(int(transport["MTU"]))
    return mtus


def _new_endpoints(pools: Pools, request: UpdateRequest, first: dict, say: Say) -> dict[str, dict]:
    """Per added pool: host name -> (transport PIF ref, PIF record, host uuid)."""
    create = CreateRequest(name=first["name_label"], pools=request.add_pools, pif_device=request.pif_device,
                           host_pif_devices=request.host_pif_devices, vlan=request.vlan)
    found = {}
    for pool in request.add_pools:
        hosts = pools.call(pool, "host.get_all_records")
        found[pool] = {name: (ref, pif, hosts[pif["host"]]["uuid"])
                       for name, (ref, pif) in host_pifs(pools, pool, create, say).items()}
    return found


def _change(pools: Pools, request: UpdateRequest, network: PrivateNetwork, joining: dict[str, dict]) -> NetworkChange:
    preferred = request.preferred_center
    if preferred:
        preferred = host_uuid(pools, preferred)
        if preferred not in {ep.host_uuid for ep in network.endpoints}:
            raise ConfigError(f"--preferred-center {request.preferred_center}: not a host of this network")
    endpoints = tuple(Endpoint(host_uuid=uuid, pool=pool, bridge="", transport_ip=pif["IP"] or None,
                               eligible=bool(pif["IP"]), multi_homed=not pif["management"])
                      for pool, hosts in joining.items() for _, pif, uuid in hosts.values())
    return NetworkChange(name=request.name, preferred_center=preferred, mtu=request.mtu, encrypted=request.encrypted,
                         topology=request.topology, add_endpoints=endpoints, remove_pools=request.remove_pools)


def _set_key(pools: Pools, pool: str, ref: str, key: str, value: str | None) -> None:
    """One other_config key, replaced per key so that a concurrent write of another key is never lost."""
    pools.call(pool, "network.remove_from_other_config", ref, key)
    if value is not None:
        pools.call(pool, "network.add_to_other_config", ref, key, value)


@dataclass(frozen=True)
class Write:
    """One XAPI write to a member network: `method`, or `key` for one other_config key (args: ref, key, value)."""

    pool: str
    method: str
    args: tuple[Any, ...]
    what: str


def _writes(request: UpdateRequest, change: NetworkChange, members: Members) -> list[Write]:
    """Every write to the member networks that stay, in the order they are made."""
    writes = []
    for pool, ref, record in members:
        if pool in request.remove_pools:
            continue
        if change.name is not None:
            writes.append(Write(pool, "network.set_name_label", (ref, change.name), f"name {change.name}"))
        if change.mtu is not None:
            writes.append(Write(pool, "network.set_MTU", (ref, str(change.mtu)), f"MTU {change.mtu}"))
        if change.preferred_center is not None:
            writes.append(Write(pool, "key", (ref, _key(record, "preferred-center"), change.preferred_center or None),
                                f"preferred center {change.preferred_center or '(none)'}"))
        if change.encrypted is not None:
            writes.append(Write(pool, "key", (ref, _key(record, "encrypted"), "true" if change.encrypted else "false"),
                                f"encrypted {'yes' if change.encrypted else 'no'}"))
        if change.topology is not None:
            writes.append(Write(pool, "key", (ref, KEY_PREFIX + "topology", change.topology),
                                f"topology {change.topology}"))
    return writes


@dataclass(frozen=True)
class Plan:
    """An update worked out and checked, before anything is written."""

    net_id: str
    name: str
    members: Members
    joining: dict[str, dict]       # added pool -> host name -> (transport PIF ref, PIF record, host uuid)
    writes: list[Write]
    counts: Mapping[str, int]      # tunnel ports the daemon will add, delete and modify


def _mtu_warning(change: NetworkChange, network: PrivateNetwork, first: dict, transports: list[int]) -> str | None:
    mtu = change.mtu if change.mtu is not None else int(first["MTU"])
    encrypted = network.encrypted if change.encrypted is None else change.encrypted
    limit = mtu_limit(min(transports, default=1500), network.encapsulation, encrypted)
    if mtu <= limit:
        return None
    return (f"warning: MTU {mtu} exceeds what {network.encapsulation}{' + IPsec' if encrypted else ''} carries over "
            f"a {min(transports, default=1500)}-byte transport without fragmenting ({limit}); "
            "oversized packets will be dropped")


def plan(pools: Pools, request: UpdateRequest, say: Say, *, dry_run: bool) -> Plan:
    """Check the request, and say what it will write and which tunnel ports the daemon will change."""
    net_id, members = find_network(pools, request.network)
    _check(pools, request, net_id, members)
    records = _records(pools, sorted({pool for pool, _, _ in members} | set(request.add_pools)))
    inventory = build_inventory(records)
    network = next(n for n in inventory.networks if n.id == net_id)
    first = members[0][2]
    joining = _new_endpoints(pools, request, first, say)
    change = _change(pools, request, network, joining)
    if change.encrypted and network.encapsulation == "vxlan":
        say(VXLAN_IPSEC_WARNING)
    warning = _mtu_warning(change, network, first, _transport_mtus(records, members) + [
        int(pif["MTU"]) for hosts in joining.values() for _, pif, _ in hosts.values()])
    if warning:
        say(warning)
    hosts = tunnel_changes(inventory.snapshot, net_id, change)
    counts = totals(hosts)
    writes = _writes(request, change, members)
    would = "would " if dry_run else ""
    for write in writes:
        say(f"{write.pool}: {would}set {write.what}")
    for pool in request.add_pools:
        say(f"{pool}: {would}create the network with {len(joining[pool])} tunnel(s)")
    for pool in request.remove_pools:
        say(f"{pool}: {would}delete the network and its tunnels")
    for host in hosts:
        say(f"  {inventory.host_name(host.host_uuid)}: +{len(host.add)} -{len(host.delete)} ~{len(host.modify)} "
            "tunnel ports")
    say(f"tunnel ports: {counts['add']} added, {counts['delete']} deleted, {counts['modify']} modified in place"
        + ("" if change.touches_tunnels else " (a rename or an MTU change touches no tunnel)"))
    if change.mtu is not None:
        say("the MTU applies to VIFs as they are next plugged (XAPI sets a VIF's MTU at plug time)")
    return Plan(net_id, change.name or network.name, members, joining, writes, counts)


def update(pools: Pools, request: UpdateRequest, say: Say, *, dry_run: bool = False) -> Mapping[str, int]:
    """Change the network in every pool; returns the tunnel ports the daemon will add, delete and modify."""
    worked_out = plan(pools, request, say, dry_run=dry_run)
    if dry_run:
        say("dry run: nothing was written")
        return worked_out.counts
    for write in worked_out.writes:
        if write.method == "key":
            _set_key(pools, write.pool, *write.args)
        else:
            pools.call(write.pool, write.method, *write.args)
    first = worked_out.members[0][2]
    for pool in request.add_pools:
        _add_pool(pools, pool, first, worked_out.joining[pool], say)
    for pool, ref, _ in worked_out.members:
        if pool in request.remove_pools:
            destroy_network(pools, pool, ref)
    say(f"updated private network {worked_out.name} ({worked_out.net_id})")
    return worked_out.counts


def _add_pool(pools: Pools, pool: str, first: dict, hosts: dict, say: Say) -> None:
    """The network object in one more pool (same private-network uuid and settings) and a tunnel per host."""
    other_config = {k: v for k, v in first["other_config"].items() if k.startswith((KEY_PREFIX, XO_PREFIX))}
    other_config["automatic"] = "false"
    ref = pools.call(pool, "network.create", {
        "name_label": first["name_label"], "name_description": first.get("name_description", ""),
        "MTU": str(first["MTU"]), "other_config": other_config, "tags": []})
    encapsulation = other_config.get(KEY_PREFIX + "encapsulation", other_config.get(XO_PREFIX + "encapsulation", "gre"))
    request = CreateRequest(name=first["name_label"], pools=(pool,), pif_device="", encapsulation=encapsulation)
    try:
        create_tunnels(pools, pool, ref, {name: (pif_ref, pif) for name, (pif_ref, pif, _) in hosts.items()},
                       request, say)
    except XapiError:
        destroy_network(pools, pool, ref)
        raise
