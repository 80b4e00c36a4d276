"""PURE: a change to a private network after creation, and what it does to the tunnels.

`sdnctl network update` writes intent into XAPI; the daemon then rebuilds only what differs.
This module predicts that difference (the `--dry-run` preview) with the same core calls the
daemon makes, so the preview and the daemon cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from sdnctl.core.model import ClusterSnapshot, Endpoint, PrivateNetwork, TunnelSpec
from sdnctl.core.topology import desired_tunnels

PREVIEW_PSK = "preview"   # stands in for a network's key: the preview needs only whether there is one


@dataclass(frozen=True)
class NetworkChange:
    """What `network update` was asked to change; None leaves a setting as it is.

    `preferred_center` is a host uuid, or "" to clear it. `add_endpoints` are the hosts of added
    pools as they will join; `remove_pools` drop every endpoint of those pools.
    """

    name: str | None = None
    preferred_center: str | None = None
    mtu: int | None = None
    encrypted: bool | None = None
    topology: str | None = None
    add_endpoints: tuple[Endpoint, ...] = ()
    remove_pools: tuple[str, ...] = ()

    @property
    def touches_tunnels(self) -> bool:
        """Whether any tunnel may change (a rename or an MTU change never touches one)."""
        return (self.preferred_center is not None or self.encrypted is not None or self.topology is not None
                or bool(self.add_endpoints or self.remove_pools))


@dataclass(frozen=True)
class HostChange:
    """The tunnel ports one host gains, loses, and has modified in place (port names)."""

    host_uuid: str
    add: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    modify: tuple[str, ...] = ()


def changed_network(network: PrivateNetwork, change: NetworkChange) -> PrivateNetwork:
    """The network as it will be once the change is in XAPI."""
    endpoints = tuple(sorted((ep for ep in network.endpoints + change.add_endpoints
                              if ep.pool not in change.remove_pools), key=lambda ep: ep.host_uuid))
    topology = change.topology or network.topology
    preferred = network.preferred_center if change.preferred_center is None else change.preferred_center or None
    return replace(network, name=change.name or network.name, topology=topology, preferred_center=preferred,
                   center=network.center if topology == "star" else None,
                   encrypted=network.encrypted if change.encrypted is None else change.encrypted,
                   endpoints=endpoints)


def _tunnels(snapshot: ClusterSnapshot, network_id: str) -> dict[str, dict[str, TunnelSpec]]:
    psks = {n.id: PREVIEW_PSK for n in snapshot.networks if n.encrypted}
    desired = desired_tunnels(snapshot, psks)
    return {host: {spec.name: spec for spec in specs if spec.network_id == network_id}
            for host, specs in desired.tunnels.items()}


def tunnel_changes(snapshot: ClusterSnapshot, network_id: str, change: NetworkChange) -> tuple[HostChange, ...]:
    """Per host, the ports the daemon will add, delete and modify in place after `change`.

    KeyError if the snapshot has no such network.
    """
    network = next(n for n in snapshot.networks if n.id == network_id)
    after = ClusterSnapshot(networks=tuple(changed_network(n, change) if n.id == network_id else n
                                           for n in snapshot.networks))
    before_ports, after_ports = _tunnels(snapshot, network.id), _tunnels(after, network.id)
    changes = []
    for host in sorted(set(before_ports) | set(after_ports)):
        old, new = before_ports.get(host, {}), after_ports.get(host, {})
        moved = {name for name in old.keys() & new.keys() if old[name].bridge != new[name].bridge}
        modified = tuple(sorted(name for name in old.keys() & new.keys() - moved if old[name] != new[name]))
        added = tuple(sorted(new.keys() - old.keys() | moved))
        deleted = tuple(sorted(old.keys() - new.keys() | moved))
        if added or deleted or modified:
            changes.append(HostChange(host, add=added, delete=deleted, modify=modified))
    return tuple(changes)


def totals(changes: tuple[HostChange, ...]) -> Mapping[str, int]:
    """Ports added, deleted and modified over every host."""
    return {"add": sum(len(c.add) for c in changes), "delete": sum(len(c.delete) for c in changes),
            "modify": sum(len(c.modify) for c in changes)}
