"""Traffic rules in XAPI: VIF and network `other_config`, in Xen Orchestra's format, read and written.

sdnctl reads both `sdnctl:of-rules` and Xen Orchestra's `xo:sdn-controller:of-rules`, so rules made
in Xen Orchestra keep applying. It writes its own key, except on an object that already has XO
rules: there it writes XO's key (with XO 6's `priority` and `cookie` kept), so XO's UI still sees them.
"""

from __future__ import annotations

from sdnctl.errors import XapiError
from sdnctl.core.flows import RULES_KEY, XO_RULES_KEY, describe_rule, rules_json, rules_of
from sdnctl.core.model import Rule
from sdnctl.networks import Pools, Say, managed_networks


def _identity(rule: Rule) -> tuple:
    """Xen Orchestra's identity of a rule: everything but allow/deny."""
    return rule.protocol, rule.port, rule.ip_range, rule.direction


def _network_refs(pools: Pools, network: str) -> list[tuple[str, str]]:
    """(pool, ref) of the networks meant by a name, a XAPI network uuid or a private-network uuid."""
    found = []
    for pool in pools.names:
        try:
            found.append((pool, pools.call(pool, "network.get_by_uuid", network)))
        except XapiError as exc:
            if exc.code != "UUID_INVALID":   # not a network uuid of this pool
                raise
    if not found:
        members = managed_networks(pools).get(network, [])
        found = [(pool, ref) for pool, ref, _ in members]
    if not found:
        found = [(pool, ref) for pool in pools.names for ref in pools.call(pool, "network.get_by_name_label", network)]
    return found


def _targets(pools: Pools, vif: str | None, network: str | None) -> list[tuple[str, str, str]]:
    """(pool, class, ref) of the objects a rule command acts on."""
    found = []
    if vif:
        for pool in pools.names:
            try:
                found.append((pool, "VIF", pools.call(pool, "VIF.get_by_uuid", vif)))
            except XapiError as exc:
                if exc.code != "UUID_INVALID":  # not in this pool
                    raise
    elif network:
        found = [(pool, "network", ref) for pool, ref in _network_refs(pools, network)]
    if not found:
        raise XapiError(f"no {'VIF with uuid ' + vif if vif else 'network ' + repr(network)} in the configured pools "
                        f"(a network is named by its name, its uuid in a pool, or its private-network uuid)")
    return found


def _write(pools: Pools, pool: str, cls: str, ref: str, rules: list[Rule]) -> None:
    """Replace the rules in one call (set_other_config), so the daemon never sees them half-written.

    All of an object's rules go under one key, so a deleted rule cannot live on under the other:
    Xen Orchestra's if the object already had XO rules (XO's UI keeps showing them), else sdnctl's.
    """
    other_config = dict(pools.call(pool, f"{cls}.get_other_config", ref))
    key = XO_RULES_KEY if other_config.get(XO_RULES_KEY, "").strip() not in ("", "[]") else RULES_KEY
    other_config.pop(RULES_KEY, None)
    other_config.pop(XO_RULES_KEY, None)
    if rules:
        other_config[key] = rules_json(rules)
    pools.call(pool, f"{cls}.set_other_config", ref, other_config)


def add(pools: Pools, rule: Rule, *, vif: str | None, network: str | None, say: Say) -> None:
    """Add a rule (replacing one with the same protocol, port, range and direction)."""
    for pool, cls, ref in _targets(pools, vif, network):
        current = list(rules_of(pools.call(pool, f"{cls}.get_other_config", ref)))
        kept = [r for r in current if _identity(r) != _identity(rule)]
        if kept + [rule] == current:
            say(f"{pool}: {cls} already has: {describe_rule(rule)}")
            continue
        _write(pools, pool, cls, ref, kept + [rule])
        say(f"{pool}: {cls} {'replaced' if len(kept) < len(current) else 'added'}: {describe_rule(rule)}")


def delete(pools: Pools, rule: Rule, *, vif: str | None, network: str | None, say: Say) -> None:
    """Delete the rule with this protocol, port, range and direction."""
    removed = False
    for pool, cls, ref in _targets(pools, vif, network):
        current = list(rules_of(pools.call(pool, f"{cls}.get_other_config", ref)))
        kept = [r for r in current if _identity(r) != _identity(rule)]
        if len(kept) < len(current):
            _write(pools, pool, cls, ref, kept)
            removed = True
            for gone in (r for r in current if _identity(r) == _identity(rule)):   # as it was: allow or deny
                say(f"{pool}: {cls} deleted: {describe_rule(gone)}")
    if not removed:
        raise XapiError(f"no such rule: {describe_rule(rule)}; see `sdnctl rule list`")


def listing(pools: Pools, *, vif: str | None, network: str | None) -> list[tuple[str, str, Rule]]:
    """(pool, class, rule) for every rule of the target."""
    return [(pool, cls, rule) for pool, cls, ref in _targets(pools, vif, network)
            for rule in rules_of(pools.call(pool, f"{cls}.get_other_config", ref))]
