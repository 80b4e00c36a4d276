"""Private networks in XAPI: create, list, delete. The daemon does the switches; this writes intent.

Desired state lives in each pool's network `other_config` under `sdnctl:` keys; the
private-network uuid is shared by the network objects of every pool it spans.
"""

from __future__ import annotations

import difflib
import json
import logging
import uuid as uuidlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sdnctl.config import Config, pools_named
from sdnctl.errors import ConfigError, XapiError
from sdnctl.core.model import (
    CREATING_KEY, ENCAPSULATIONS, IPSEC_OVERHEAD, KEY_PREFIX, MAX_KEY, OVERHEAD, TOPOLOGIES, XO_PREFIX,
)
from sdnctl.core.inventory import NULL_REF, private_network_id
from sdnctl.xapi.client import XapiClient

log = logging.getLogger(__name__)

Say = Callable[[str], None]
VXLAN_IPSEC_WARNING = (
    "warning: encrypted VXLAN is not fail-closed: ovs-monitor-ipsec's drop policy for unencrypted "
    "VXLAN matches source port 4789 only, and OVS sends VXLAN from hashed source ports, so VXLAN "
    "leaves in clear while IPsec is down; prefer --encapsulation gre for encrypted networks (docs/ipsec.md)")
CLI_TIMEOUT = 30.0  # seconds for each XAPI read of a CLI command (connects: 5 s)


def last_masters(config: Config) -> dict[str, str]:
    """Where the daemon last found each pool's master (its status.json), so the CLI follows a failover too.

    A file others may write is ignored: it would send the XAPI password wherever it says.
    """
    path = config.state_dir / "status.json"
    try:
        if path.stat().st_mode & 0o022:
            log.warning("ignoring %s: writable by others; using the configured pool URLs", path)
            return {}
        pools = json.loads(path.read_text()).get("pools", [])
        return {p["name"]: p["master_url"] for p in pools if isinstance(p.get("master_url"), str)}
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return {}    # no daemon ran here yet: the configured URLs


@dataclass(frozen=True)
class CreateRequest:
    """What `sdnctl network create` was asked for."""

    name: str
    pools: tuple[str, ...]
    pif_device: str                                     # every host's transport device ("": only the overrides)
    encapsulation: str = "gre"
    topology: str = "star"
    vlan: int | None = None
    preferred_center: str | None = None
    vni: int | None = None
    mtu: str = "auto"
    encrypted: bool = False
    host_pif_devices: tuple[tuple[str, str], ...] = ()  # (host name, device): that host's transport instead

    def device_of(self, host_name: str) -> str:
        """The device this host's tunnels leave from ("" if none was given for it)."""
        return dict(self.host_pif_devices).get(host_name, self.pif_device)


def parse_pif_devices(values: list[str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """`--pif-device` values: one plain DEVICE for every host, and HOST=DEVICE for the hosts that differ."""
    plain = [v for v in values if "=" not in v]
    pairs = [tuple(v.split("=", 1)) for v in values if "=" in v]
    if len(plain) > 1:
        raise ConfigError(f"--pif-device given {len(plain)} devices for every host ({', '.join(plain)}); give one, "
                          "and HOST=DEVICE for each host whose transport differs")
    hosts = [h for h, _ in pairs]
    if any(not h or not d for h, d in pairs) or len(set(hosts)) != len(hosts):
        raise ConfigError(f"--pif-device {' '.join(values)}: give HOST=DEVICE once per host, e.g. p1h1=bond0")
    return (plain[0] if plain else ""), tuple(sorted((h, d) for h, d in pairs))


def validate(request: CreateRequest) -> None:
    """Reject a bad request before anything is written."""
    if request.encapsulation not in ENCAPSULATIONS:
        raise ConfigError(f"--encapsulation {request.encapsulation!r}: use one of {', '.join(ENCAPSULATIONS)}")
    if request.topology not in TOPOLOGIES:
        raise ConfigError(f"--topology {request.topology!r}: use one of {', '.join(TOPOLOGIES)}")
    if request.vni is not None and not 1 <= request.vni <= MAX_KEY[request.encapsulation]:
        raise ConfigError(f"--vni {request.vni}: {request.encapsulation} takes 1..{MAX_KEY[request.encapsulation]}")
    if request.mtu != "auto" and not (request.mtu.isdigit() and 68 <= int(request.mtu) <= 65000):
        raise ConfigError(f"--mtu {request.mtu!r}: give a number of bytes (68..65000) or 'auto'")
    if not request.pools:
        raise ConfigError("give at least one --pool")
    if not request.pif_device and not request.host_pif_devices:
        raise ConfigError("give --pif-device DEVICE (every host) or HOST=DEVICE (per host)")
    if request.vlan is not None and not 0 <= request.vlan <= 4094:
        raise ConfigError(f"--vlan {request.vlan}: a VLAN tag is 0..4094")


def mtu_limit(transport_mtu: int, encapsulation: str, encrypted: bool) -> int:
    """The largest inner MTU a tunnel carries without fragmenting (OVS sets DF on tunnel packets)."""
    return transport_mtu - OVERHEAD[encapsulation] - (IPSEC_OVERHEAD if encrypted else 0)


class Pools:
    """A XAPI client per configured pool, for the CLI; logged in on entry, out on exit."""

    def __init__(self, config: Config, names: list[str] | None = None):
        self.clients: dict[str, XapiClient] = {
            pool.name: XapiClient(pool, timeout=CLI_TIMEOUT) for pool in pools_named(config, names or [])}
        for name, url in last_masters(config).items():
            if name in self.clients:
                self.clients[name].follow(url)

    def __enter__(self) -> Pools:
        try:
            for client in self.clients.values():
                client.login()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for client in self.clients.values():
            client.close()

    @property
    def names(self) -> list[str]:
        """The open pools, in configuration order."""
        return list(self.clients)

    def call(self, pool: str, method: str, *args: Any) -> Any:
        """`Class.method` on that pool's master; raises XapiError with `.code`."""
        return self.clients[pool].call(method, *args)


def managed_networks(pools: Pools) -> dict[str, list[tuple[str, str, dict]]]:
    """Private-network uuid -> [(pool, network ref, record)] over the open pools."""
    found: dict[str, list[tuple[str, str, dict]]] = {}
    for pool in pools.names:
        for ref, record in pools.call(pool, "network.get_all_records").items():
            net_id = private_network_id(record["other_config"])
            if net_id:
                found.setdefault(net_id, []).append((pool, ref, record))
    return found


def _setting(record: dict, name: str) -> str | None:
    oc = record["other_config"]
    return oc.get(KEY_PREFIX + name, oc.get(XO_PREFIX + name))


def find_network(pools: Pools, name: str) -> tuple[str, list[tuple[str, str, dict]]]:
    """The private network with this name (or private-network uuid)."""
    networks = managed_networks(pools)
    matches = {net_id: members for net_id, members in networks.items()
               if net_id == name or any(r["name_label"] == name for _, _, r in members)}
    if not matches:
        known = sorted({r["name_label"] for members in networks.values() for _, _, r in members})
        close = difflib.get_close_matches(name, known, n=1)
        raise XapiError(f"no private network named {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                        + f" (networks: {', '.join(known) or 'none'}; see `sdnctl network list`)")
    if len(matches) > 1:
        raise XapiError(f"{len(matches)} private networks are named {name!r}; use the uuid: {', '.join(matches)}")
    return next(iter(matches.items()))


def _transport_pif(pools: Pools, pool: str, host_pifs: dict[str, dict], device: str,
                   vlan: int | None) -> tuple[str, dict] | str:
    """The host's PIF on `device` (or its VLAN `vlan`) that tunnels will leave from, or why it has none."""
    pifs = {ref: pif for ref, pif in host_pifs.items() if not pif["tunnel_access_PIF_of"]}
    on_device = {ref: pif for ref, pif in pifs.items() if pif["device"] == device}
    for ref, pif in on_device.items():
        if int(pif["VLAN"]) == (vlan if vlan is not None else -1):
            if pif["bond_slave_of"] != NULL_REF:
                master = pools.call(pool, "PIF.get_device", pools.call(pool, "Bond.get_master", pif["bond_slave_of"]))
                return f"has {device} in bond {master} (tunnels cannot leave from a bond slave); use {master}"
            return ref, pif
    if not on_device:
        return f"has no PIF {device} (it has {', '.join(sorted({p['device'] for p in pifs.values()}))})"
    tags = sorted(int(p["VLAN"]) for p in on_device.values() if int(p["VLAN"]) >= 0)
    if vlan is None:
        return f"has only VLAN PIFs on {device} (VLAN {', '.join(map(str, tags))}); give --vlan"
    return f"has PIF {device} but no VLAN {vlan} on it ({'VLANs ' + ', '.join(map(str, tags)) if tags else 'no VLANs'})"


def _new_vni(existing: dict[str, list[tuple[str, str, dict]]], request: CreateRequest) -> int:
    """The new network's VNI (the one asked for, or the lowest free); XapiError if its name or VNI is taken."""
    for net_id, members in existing.items():
        if any(r["name_label"] == request.name for _, _, r in members):
            raise XapiError(f"a private network named {request.name!r} exists already ({net_id}); "
                            "pick another name or `sdnctl network delete` it first")
    used = {int(v) for members in existing.values() for _, _, r in members
            if (v := _setting(r, "vni")) and v.isdigit()}
    vni = request.vni if request.vni is not None else min(set(range(1, len(used) + 2)) - used)
    if vni in used:
        raise XapiError(f"VNI {vni} is used by another private network; omit --vni to get a free one")
    return vni


def create(pools: Pools, request: CreateRequest, say: Say) -> str:
    """Create the network in every pool and a tunnel on each host; undo everything on failure."""
    validate(request)
    _check_host_names(pools, request)
    vni = _new_vni(managed_networks(pools), request)
    plans = {pool: host_pifs(pools, pool, request, say) for pool in request.pools}
    mtus = [int(pif["MTU"]) for pifs in plans.values() for _, pif in pifs.values()]
    limit = mtu_limit(min(mtus) if mtus else 1500, request.encapsulation, request.encrypted)
    mtu = limit if request.mtu == "auto" else int(request.mtu)
    if mtu > limit:
        say(f"warning: MTU {mtu} exceeds what {request.encapsulation}{' + IPsec' if request.encrypted else ''} "
            f"carries over a {min(mtus) if mtus else 1500}-byte transport without fragmenting ({limit}); "
            "oversized packets will be dropped")
    if request.encrypted and request.encapsulation == "vxlan":
        say(VXLAN_IPSEC_WARNING)
    preferred = host_uuid(pools, request.preferred_center) if request.preferred_center else None
    net_id = str(uuidlib.uuid4())
    other_config = {
        "automatic": "false",
        KEY_PREFIX + "private-network-uuid": net_id,
        KEY_PREFIX + "encapsulation": request.encapsulation,
        KEY_PREFIX + "vni": str(vni),
        KEY_PREFIX + "topology": request.topology,
        KEY_PREFIX + "encrypted": "true" if request.encrypted else "false",
    }
    if preferred:
        other_config[KEY_PREFIX + "preferred-center"] = preferred
    # The daemon builds nothing while this key is set: it elects the center once every pool's
    # network object and every tunnel exist, so a creation makes no port it later deletes.
    other_config[CREATING_KEY] = "true"
    created: dict[str, str] = {}

    def build(pool: str) -> None:
        created[pool] = pools.call(pool, "network.create", {
            "name_label": request.name, "name_description": "sdnctl private network",
            "MTU": str(mtu), "other_config": other_config, "tags": []})
        create_tunnels(pools, pool, created[pool], plans[pool], request, say)

    try:
        each_pool(plans, build)
        each_pool(created, lambda pool: pools.call(pool, "network.remove_from_other_config", created[pool],
                                                   CREATING_KEY))
    except XapiError as exc:
        for pool, ref in created.items():
            destroy_network(pools, pool, ref)
        detail = list(exc.details) if exc.details else exc
        raise XapiError(f"creating {request.name!r} failed, nothing was left behind: {detail}",
                        code=exc.code, details=exc.details) from None
    say(f"created private network {request.name} ({net_id}): {request.encapsulation} VNI {vni}, "
        f"{request.topology}, MTU {mtu}")
    return net_id


def each_pool(names: Iterable[str], work: Callable[[str], object]) -> None:
    """work(pool) in every pool at once (each pool has its own XAPI client); the first error is raised
    once every pool's work has ended, so a rollback sees all that was made."""
    names = list(names)
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool_threads:
        futures = [pool_threads.submit(work, name) for name in names]
    errors = [exc for future in futures if (exc := future.exception()) is not None]
    if errors:
        raise errors[0]


def create_tunnels(pools: Pools, pool: str, ref: str, pifs: dict[str, tuple[str, dict]], request: CreateRequest,
                    say: Say) -> None:
    """A tunnel on each host's transport PIF for the pool's new network object."""
    for host_name, (pif_ref, pif) in sorted(pifs.items()):
        if not pif["IP"]:
            # XAPI answers TRANSPORT_PIF_NOT_CONFIGURED but keeps the tunnel and its unplugged access PIF.
            say(f"warning: {pool}/{host_name}: {_pif_label(pif)} has no IP, so its tunnel stays "
                "unplugged and the host stays out of this network for now; once that PIF has an IP "
                "(`xe pif-reconfigure-ip`), the sdnctl daemon plugs the tunnel and the host joins")
        try:
            pools.call(pool, "tunnel.create", pif_ref, ref, request.encapsulation)
        except XapiError as exc:
            if exc.code != "TRANSPORT_PIF_NOT_CONFIGURED":  # that one was warned about above
                raise
    bridge = pools.call(pool, "network.get_bridge", ref)
    say(f"{pool}: network {request.name} ({bridge}) with {len(pifs)} tunnel(s)")


def host_pifs(pools: Pools, pool: str, request: CreateRequest, say: Say) -> dict[str, tuple[str, dict]]:
    """Host name -> its transport PIF: each host's own device (bond0 here, eth1 there) and --vlan."""
    pifs, missing = {}, []
    by_host: dict[str, dict[str, dict]] = {}
    for ref, pif in pools.call(pool, "PIF.get_all_records").items():   # one call, not two per host
        by_host.setdefault(pif["host"], {})[ref] = pif
    for host_ref, host in pools.call(pool, "host.get_all_records").items():
        name, device = host["name_label"], request.device_of(host["name_label"])
        found = (_transport_pif(pools, pool, by_host.get(host_ref, {}), device, request.vlan) if device
                 else "has no --pif-device (give one for every host, or HOST=DEVICE for it)")
        if isinstance(found, str):
            missing.append(f"{pool}/{name} {found}")
            say(f"warning: {pool}/{name} {found}; it stays out of the network")
            continue
        pifs[name] = found
    if not pifs:
        raise XapiError(f"pool {pool}: no host has the transport PIF asked for: {'; '.join(missing)}; "
                        "check --pif-device and --vlan")
    return pifs


def _check_host_names(pools: Pools, request: CreateRequest) -> None:
    """Every HOST of --pif-device HOST=DEVICE is a host of the given pools."""
    known = {h["name_label"] for pool in request.pools for h in pools.call(pool, "host.get_all_records").values()}
    unknown = [h for h, _ in request.host_pif_devices if h not in known]
    if unknown:
        raise ConfigError(f"--pif-device {', '.join(unknown)}=...: no such host in pool(s) {', '.join(request.pools)}; "
                          f"hosts: {', '.join(sorted(known))}")


def _pif_label(pif: dict) -> str:
    return pif["device"] + (f" VLAN {pif['VLAN']}" if int(pif["VLAN"]) >= 0 else "")


def host_uuid(pools: Pools, name: str) -> str:
    for pool in pools.names:
        for host in pools.call(pool, "host.get_all_records").values():
            if name in (host["name_label"], host["uuid"]):
                return host["uuid"]
    raise XapiError(f"--preferred-center {name!r}: no such host in the given pools")


def destroy_network(pools: Pools, pool: str, network_ref: str) -> None:
    """Destroy a network's tunnels, then the network."""
    for pif_ref in pools.call(pool, "network.get_PIFs", network_ref):
        for tunnel_ref in pools.call(pool, "PIF.get_tunnel_access_PIF_of", pif_ref):
            pools.call(pool, "tunnel.destroy", tunnel_ref)
    pools.call(pool, "network.destroy", network_ref)


def delete(pools: Pools, name: str, say: Say) -> None:
    """Delete the private network from every pool; the daemon then sweeps the switches."""
    net_id, members = find_network(pools, name)
    for pool, _, record in members:
        if record["VIFs"]:
            raise XapiError(f"{pool}: network {record['name_label']} still has {len(record['VIFs'])} VIF(s); "
                            "unplug or move them first")
    for pool, ref, record in members:
        destroy_network(pools, pool, ref)
        say(f"{pool}: deleted network {record['name_label']} ({record['bridge']})")
    say(f"deleted private network {name} ({net_id})")


def describe(pools: Pools) -> list[dict]:
    """Every private network with its settings and pools, for `network list` / `show`."""
    result = []
    for net_id, members in sorted(managed_networks(pools).items()):
        first = members[0][2]
        result.append({
            "id": net_id, "name": first["name_label"],
            "origin": "sdnctl" if KEY_PREFIX + "private-network-uuid" in first["other_config"] else "xo",
            "encapsulation": _setting(first, "encapsulation"), "vni": _setting(first, "vni"),
            "topology": first["other_config"].get(KEY_PREFIX + "topology", "star"),
            "encrypted": _setting(first, "encrypted") == "true", "mtu": first["MTU"],
            "pools": [{"pool": pool, "network_uuid": r["uuid"], "bridge": r["bridge"], "pifs": len(r["PIFs"])}
                      for pool, _, r in members],
        })
    return result


def rekey(pools: Pools, name: str, store, say: Say) -> None:
    """A new pre-shared key for an encrypted network; the daemon re-applies it to every tunnel."""
    net_id, members = find_network(pools, name)
    if _setting(members[0][2], "encrypted") != "true":
        raise XapiError(f"private network {name} is not encrypted; nothing to rekey")
    store.rotate(net_id)
    say(f"new IPsec key for {name} written to {store.dir}; the daemon applies it to both ends of every tunnel")
