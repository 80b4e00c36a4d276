"""PURE: the XAPI writes the daemon owes the pools, as values.

XAPI never plugs a tunnel access PIF again, writes `tunnel.status`, or remembers a star's
center: the controller must. Each action names its pool, so the executor can de-duplicate
writes in flight and carry them out on that pool's session.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sdnctl.core.health import tunnel_health, tunnels_active
from sdnctl.core.hostplan import World
from sdnctl.core.model import KEY_PREFIX, ObservedPort, TunnelSpec

CENTER_KEY = KEY_PREFIX + "center"


@dataclass(frozen=True)
class PlugPif:
    """Plug a managed network's tunnel access PIF whose transport PIF is back (XAPI won't)."""

    pool: str
    ref: str
    host_name: str


@dataclass(frozen=True)
class SetTunnelStatus:
    """tunnel.set_status: `active` is "true" when the host's desired ports of that network all exist with an
    ofport and BFD does not say every one of them is down (core.health.tunnels_active)."""

    pool: str
    ref: str
    active: bool
    key: int

    @property
    def status(self) -> dict[str, str]:
        return {"active": "true" if self.active else "false", "key": str(self.key)}


@dataclass(frozen=True)
class RecordCenter:
    """Record a star's center in every pool's network object (sdnctl:center), so a restart elects the same one."""

    network_id: str
    network_name: str
    center: str
    previous: str | None
    targets: tuple[tuple[str, str], ...]   # (pool, network ref)


@dataclass(frozen=True)
class SyncCertificates:
    """pool.certificate_sync: a joining host gets the pool's CA certificates."""

    pool: str


Action = PlugPif | SetTunnelStatus | RecordCenter | SyncCertificates


def pif_plugs(world: World) -> list[PlugPif]:
    """Access PIFs to plug: unplugged, on a live host whose transport PIF is plugged with an IP."""
    if not world.complete:
        return []
    inventory = world.inventory
    return [PlugPif(pif.pool, pif.ref, inventory.host_name(pif.host_uuid))
            for pif in inventory.access_pifs if not pif.plugged and pif.pluggable]


def center_records(world: World) -> list[RecordCenter]:
    """A star whose elected center differs from the one recorded on any of its pools' network objects
    (pools that disagree are brought to the same center)."""
    if not world.complete:
        return []
    records = []
    for network in world.inventory.networks:
        center = world.desired.centers.get(network.id)
        if network.topology != "star" or center is None:
            continue
        targets = tuple((o.pool, o.ref) for o in world.inventory.network_objects
                        if o.network_id == network.id and o.center != center)
        if targets:
            records.append(RecordCenter(network.id, network.name, center, network.center, targets))
    return records


def tunnel_statuses(world: World, host_uuid: str, observed: Iterable[ObservedPort]) -> list[SetTunnelStatus]:
    """The tunnel.status writes this host's tunnels need, given the ports its switch holds."""
    seen = {port.name: port for port in observed}
    desired: Iterable[TunnelSpec] = world.desired.tunnels.get(host_uuid, frozenset())
    vni = {n.id: n.vni for n in world.inventory.networks}
    writes = []
    for tunnel in world.inventory.tunnels:
        if tunnel.host_uuid != host_uuid or tunnel.network_id not in vni:
            continue
        healths = [tunnel_health(seen.get(spec.name)) for spec in desired if spec.network_id == tunnel.network_id]
        action = SetTunnelStatus(tunnel.pool, tunnel.ref, tunnels_active(healths), vni[tunnel.network_id])
        if dict(tunnel.status) != action.status:
            writes.append(action)
    return writes


def certificate_syncs(before: Mapping[str, frozenset[str]], now: Mapping[str, frozenset[str]],
                      trusted: Iterable[str]) -> list[SyncCertificates]:
    """Pools that trust sdnctl and gained a host since the last refresh (a pool seen first is not a join)."""
    return [SyncCertificates(pool) for pool in sorted(set(trusted))
            if pool in before and pool in now and now[pool] - before[pool]]
