"""`sdnctl network export-xo`: hand a private network back to Xen Orchestra's SDN controller.

Writes the `xo:sdn-controller:*` keys exactly as Xen Orchestra's `createPrivateNetwork` does
(xo-server-sdn-controller, index.js), and moves the rules of the network and its VIFs to XO's
key. With `--release`, it also removes sdnctl's keys and marks the network `sdnctl:managed =
false`: the daemon then removes its own tunnel ports, so that XO's plugin can build its own
(OVS refuses two tunnels with the same type, remote IP and key).
"""

from __future__ import annotations

from sdnctl.core.flows import RULES_KEY, XO_RULES_KEY, rules_json, rules_of
from sdnctl.core.inventory import NULL_REF
from sdnctl.core.model import KEY_PREFIX, MANAGED_KEY, XO_PREFIX
from sdnctl.errors import ConfigError
from sdnctl.networks import Pools, Say, find_network


def _setting(other_config: dict, name: str) -> str | None:
    return other_config.get(KEY_PREFIX + name, other_config.get(XO_PREFIX + name))


def _transport(pools: Pools, pool: str, record: dict) -> tuple[str, str]:
    """(device, VLAN) of the transport PIF the network's first tunnel leaves from, as XO records them."""
    for access in record["PIFs"]:
        for tunnel in pools.call(pool, "PIF.get_tunnel_access_PIF_of", access):
            transport = pools.call(pool, "tunnel.get_transport_PIF", tunnel)
            if transport != NULL_REF:
                pif = pools.call(pool, "PIF.get_record", transport)
                return pif["device"], str(pif["VLAN"])
    raise ConfigError(f"{pool}: network {record['name_label']} has no tunnel, so Xen Orchestra could not find "
                      "its transport PIF (it reads the device from the first tunnel)")


def xo_keys(net_id: str, other_config: dict, device: str, vlan: str) -> dict[str, str]:
    """The network's other_config keys as Xen Orchestra writes them at creation."""
    keys = {
        XO_PREFIX + "encapsulation": (_setting(other_config, "encapsulation") or "gre").lower(),
        XO_PREFIX + "pif-device": device,
        XO_PREFIX + "private-network-uuid": net_id,
        XO_PREFIX + "vlan": vlan,
        XO_PREFIX + "vni": _setting(other_config, "vni") or "",
    }
    if (_setting(other_config, "encrypted") or "").lower() == "true":
        keys[XO_PREFIX + "encrypted"] = "true"    # XO leaves the key out when not encrypted
    preferred = _setting(other_config, "preferred-center")
    if preferred:
        keys[XO_PREFIX + "preferred-center"] = preferred
    return keys


def _move_rules(pools: Pools, pool: str, cls: str, ref: str, say: Say, verb: str) -> None:
    """An object's rules under XO's key only (XO reads no other)."""
    other_config = pools.call(pool, f"{cls}.get_other_config", ref)
    if not other_config.get(RULES_KEY, "").strip():
        return
    rules = rules_of(other_config)
    say(f"{pool}: {verb}move {len(rules)} rule(s) of {cls} {pools.call(pool, f'{cls}.get_uuid', ref)} "
        "to Xen Orchestra's key")
    if verb:
        return
    pools.call(pool, f"{cls}.remove_from_other_config", ref, RULES_KEY)
    pools.call(pool, f"{cls}.remove_from_other_config", ref, XO_RULES_KEY)
    pools.call(pool, f"{cls}.add_to_other_config", ref, XO_RULES_KEY, rules_json(rules))


def export(pools: Pools, name: str, say: Say, *, release: bool = False, dry_run: bool = False) -> None:
    """Write XO's keys (and move the rules) on every pool's network object; with `release`, let go of it."""
    net_id, members = find_network(pools, name)
    first = members[0][2]["other_config"]
    if (first.get(KEY_PREFIX + "topology") or "star") != "star":
        raise ConfigError(f"{name} is a mesh, and Xen Orchestra's controller builds only stars; "
                          f"run `sdnctl network update {name} --topology star` first")
    verb = "would " if dry_run else ""
    for pool, ref, record in members:
        keys = xo_keys(net_id, record["other_config"], *_transport(pools, pool, record))
        say(f"{pool}: {verb}write " + ", ".join(f"{k}={v}" for k, v in sorted(keys.items())))
        if not dry_run:
            for key, value in sorted(keys.items()):
                pools.call(pool, "network.remove_from_other_config", ref, key)
                pools.call(pool, "network.add_to_other_config", ref, key, value)
        for cls, obj in [("network", ref)] + [("VIF", vif) for vif in record["VIFs"]]:
            _move_rules(pools, pool, cls, obj, say, verb)
        if release:
            ours = sorted(k for k in record["other_config"] if k.startswith(KEY_PREFIX) and k != RULES_KEY)
            say(f"{pool}: {verb}remove {', '.join(ours) or 'no sdnctl keys'} and set {MANAGED_KEY}=false")
            if not dry_run:   # marked first: the daemon then writes nothing more to it (no center)
                pools.call(pool, "network.remove_from_other_config", ref, MANAGED_KEY)
                pools.call(pool, "network.add_to_other_config", ref, MANAGED_KEY, "false")
                for key in ours:
                    if key != MANAGED_KEY:
                        pools.call(pool, "network.remove_from_other_config", ref, key)
    if release:
        say(f"{verb}released {name} ({net_id}): the daemon removes its tunnel ports; then enable Xen Orchestra's "
            "SDN controller plugin for these pools (docs/migrating-from-xo.md)")
    else:
        say(f"{verb}wrote Xen Orchestra's keys for {name} ({net_id}); sdnctl keeps managing it until "
            "`sdnctl network export-xo --release`")
