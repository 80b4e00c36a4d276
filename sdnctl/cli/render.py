"""Text and JSON for the CLI, from plain values: no printing, no I/O, no clock (`now` is an argument).

Every function returns the whole output without a trailing newline; the handler prints it.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from sdnctl.certs import POOL_CA_NAME, CertInfo, same_fingerprint
from sdnctl.core.flows import describe_rule
from sdnctl.core.model import FlowSpec, ObservedPort, PortPlan, Rule, TunnelSpec
from sdnctl.core.writeback import Action, PlugPif, RecordCenter, SetTunnelStatus

if TYPE_CHECKING:   # the planner pulls in os-ken; the CLI loads this module for every command
    from sdnctl.daemon.planner import HostReport, PlanReport

# Older than this, `status` warns that the daemon (which rewrites status.json every few seconds) may be stopped.
STALE_STATUS_SECONDS = 15


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], indent: str = "") -> list[str]:
    """Left-aligned columns two spaces apart under a header row; None shows as `-`."""
    cells = [list(headers)] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [(indent + "  ".join(c.ljust(w) for c, w in zip(row, widths))).rstrip() for row in cells]


def to_json(value: object) -> str:
    return json.dumps(value, indent=2)


# --- status -----------------------------------------------------------------------------------

def status_json(state: Mapping, now: float) -> str:
    """The daemon's status document as it is, plus how old it is."""
    return to_json({**state, "age_seconds": round(now - state["generated_at"], 1)})


def status_problems(state: Mapping, now: float) -> list[str]:
    """What makes `sdnctl status` exit 3: a stale daemon, a pool not synced, a host disconnected, a desired
    tunnel missing or down, a malformed rule set."""
    problems = []
    if (age := now - state["generated_at"]) > STALE_STATUS_SECONDS:
        problems.append(f"status is {age:.0f}s old: is the daemon running?")
    problems += [f"pool {p['name']} not synced" for p in state["pools"] if not p["synced"]]
    problems += [f"host {h['name']} disconnected" for h in sorted(state["hosts"].values(), key=lambda h: h["name"])
                 if not h["connected"]]
    for network in state["networks"]:
        for host in network["hosts"]:
            for tunnel in host["tunnels"]:
                if tunnel["desired"] and (tunnel["observed"] is False or tunnel.get("health") == "down"):
                    problems.append(f"network {network['name']}: tunnel {host['name']} -> {tunnel['remote_name']} "
                                    f"{'down' if tunnel['observed'] else 'missing'}")
    problems += [f"rules malformed on {where}" for where in sorted(state.get("rule_errors", {}))]
    return problems


def status(state: Mapping, now: float) -> str:
    """Pools, hosts, rule errors, then each network's hosts and tunnels, desired vs observed."""
    lines = []
    age = now - state["generated_at"]
    if age > STALE_STATUS_SECONDS:
        lines.append(f"warning: status is {age:.0f}s old; the daemon may be stopped")
    if state["pools"]:
        lines += table(["POOL", "STATE", "MASTER", "ERROR"],
                       ([p["name"], "synced" if p["synced"] else "NOT SYNCED", p["master_url"],
                         p["error"] or (f"WARNING: {p['warning']}" if p.get("warning") else "")]
                        for p in state["pools"]))
    certificate = state.get("client_certificate")
    if certificate:
        lines += ["", f"client certificate: SHA-256 {certificate['fingerprint']}, expires {certificate['not_after']}"
                     + (f"  WARNING: {certificate['warning']}" if certificate["warning"] else "")]
    hosts = sorted(state["hosts"].values(), key=lambda h: h["name"])
    if hosts:
        lines.append("")
        lines += table(["HOST", "OVSDB", "TARGET", "OPENFLOW", "ERROR"],
                       ([h["name"], "connected" if h["connected"] else "DISCONNECTED", h["target"],
                         ", ".join(f"{bridge} {'up' if of['connected'] else 'DOWN'}"
                                   for bridge, of in sorted(h.get("openflow", {}).items())) or None,
                         h["error"] or ""] for h in hosts))
    rule_errors = sorted(state.get("rule_errors", {}).items())
    if rule_errors:
        lines.append("")
        lines += [f"rules MALFORMED on {where} (its ports forward nothing until fixed): {error}"
                  for where, error in rule_errors]
    for n in state["networks"]:
        lines.append("")
        lines.append(f"network {n['name']} ({n['id']}) {n['encapsulation']} vni {n['vni']} {n['topology']}"
                     + (f" center {n['center_name']}" if n["center"] else "")
                     + (" encrypted (IPsec, PSK)" if n.get("encrypted") else " not encrypted"))
        if n["error"]:
            lines.append(f"  ERROR: {n['error']}")
        if n.get("creating"):
            lines.append("  being created: nothing is built until `sdnctl network create` has made every pool's "
                         "network and tunnels (if that command died, `sdnctl network delete` it)")
        if n.get("dead_by_bfd"):
            lines.append(f"  dead by BFD (never made center until seen up again): {', '.join(n['dead_by_bfd'])}")
        if n["hosts"]:
            encrypted = bool(n.get("encrypted"))
            lines += table(["HOST", "BRIDGE", "TRANSPORT IP", "ELIGIBLE", "TUNNEL", "REMOTE", "REMOTE IP", "OFPORT",
                            "HEALTH", "FLAPS"] + (["IPSEC"] if encrypted else []) + ["ERROR"],
                           _tunnel_rows(n["hosts"], encrypted), indent="  ")
    return "\n".join(lines)


def _tunnel_rows(hosts: Sequence[Mapping], encrypted: bool) -> Iterable[list]:
    """One row per tunnel; a host's own columns only on its first row, and a row of its own if it has none."""
    for h in sorted(hosts, key=lambda h: h["name"]):
        host = [h["name"], h["bridge"], h["transport_ip"], "eligible" if h["eligible"] else
                f"INELIGIBLE ({h['ineligible_reason']})" if h.get("ineligible_reason") else "INELIGIBLE"]
        if not h["tunnels"]:
            yield host + [None] * (7 if encrypted else 6) + [""]
        for t in h["tunnels"]:
            yield host + [t["name"], t["remote_name"] or None, t["remote_ip"], t["ofport"], _health(t),
                          t.get("flap_count")] + ([_ipsec(t.get("ipsec"))] if encrypted else []) + [
                          t["error"] or (t.get("health_reason") or "")]
            host = [""] * 4


def _ipsec(ipsec: Mapping | None) -> str | None:
    """What OVSDB shows of a tunnel's IPsec: its PSK is the current one (or STALE, MISSING), and marked."""
    if ipsec is None:
        return None
    psk = {"current": "psk", "stale": "psk STALE", "missing": "psk MISSING"}[ipsec["psk"]]
    return psk + (", marked" if ipsec["egress_pkt_mark"] else ", UNMARKED")


def _health(tunnel: Mapping) -> str:
    """up / DOWN / unknown / MISSING by BFD (core.health), STALE for a port no longer desired."""
    health = tunnel.get("health") or ("missing" if not tunnel["observed"] else "unknown")
    if not tunnel["desired"]:
        return f"STALE ({health})"
    return health.upper() if health in ("down", "missing") else health


# --- network ----------------------------------------------------------------------------------

def _int(value: object) -> object:
    """XAPI hands vni (other_config) and MTU over as strings; JSON readers want numbers."""
    return int(value) if isinstance(value, str) and value.isdigit() else value


def _typed_network(network: Mapping) -> dict:
    return {**network, "vni": _int(network["vni"]), "mtu": _int(network["mtu"])}


def network_list_json(networks: Sequence[Mapping]) -> str:
    return to_json([_typed_network(n) for n in networks])


def network_list(networks: Sequence[Mapping]) -> str:
    if not networks:
        return "no private networks; create one with `sdnctl network create`"
    return "\n".join(table(
        ["NAME", "ID", "ENCAPSULATION", "VNI", "TOPOLOGY", "MTU", "ENCRYPTED", "ORIGIN", "POOLS"],
        ([n["name"], n["id"], n["encapsulation"], n["vni"], n["topology"], n["mtu"],
          "yes" if n.get("encrypted") else "no", n["origin"],
          ", ".join(f"{p['pool']}:{p['bridge']}" for p in n["pools"])] for n in networks)))


def network_show_json(network: Mapping) -> str:
    return to_json(_typed_network(network))


def network_show(network: Mapping) -> str:
    """The network's settings, then one row per pool it spans."""
    fields = [("name", network["name"]), ("id", network["id"]), ("origin", network["origin"]),
              ("encapsulation", network["encapsulation"]), ("vni", network["vni"]),
              ("topology", network["topology"]), ("mtu", network["mtu"]),
              ("encrypted", "yes (IPsec)" if network["encrypted"] else "no")]
    width = max(len(key) for key, _ in fields) + 1
    lines = [f"{key + ':':<{width}} {'-' if value is None else value}" for key, value in fields]
    lines.append("")
    lines += table(["POOL", "NETWORK UUID", "BRIDGE", "PIFS"],
                   ([p["pool"], p["network_uuid"], p["bridge"], p["pifs"]] for p in network["pools"]))
    return "\n".join(lines)


# --- rule -------------------------------------------------------------------------------------

def rule_list_json(found: Sequence[tuple[str, str, Rule]]) -> str:
    return to_json([{"pool": pool, "object": cls, **dataclasses.asdict(rule), "text": describe_rule(rule)}
                    for pool, cls, rule in found])


def rule_list(found: Sequence[tuple[str, str, Rule]]) -> str:
    if not found:
        return "no rules"
    return "\n".join(table(["POOL", "OBJECT", "RULE"], ([pool, cls, describe_rule(rule)] for pool, cls, rule in found)))


# --- inventory --------------------------------------------------------------------------------

def inventory_rows(state: Mapping) -> list[dict]:
    """Every plugged VIF the daemon sees, one flat dict each, sorted by network, host, VM."""
    rows = [{"network": vif["network_name"], "network_id": vif["network_id"], "host": host["name"],
             "host_uuid": uuid, **{k: vif[k] for k in ("vm", "vif", "bridge", "ofport", "mac", "vif_rules",
                                                        "network_rules", "rule_error")}}
            for uuid, host in state["hosts"].items() for vif in host.get("vifs", ())]
    return sorted(rows, key=lambda r: (r["network"] or "", r["bridge"], r["host"], r["vm"] or "", r["vif"]))


def _rules_in_force(row: Mapping) -> str:
    if row["rule_error"]:
        return f"MALFORMED, forwards nothing: {row['rule_error']}"
    rules = [*row["vif_rules"], *(f"{r} [network]" for r in row["network_rules"])]
    return "; ".join(rules) or "none (all allowed)"


def inventory(rows: Sequence[Mapping]) -> str:
    """`ovn-nbctl show`-like: per private network (or bridge), each host's VIFs with port, MAC and rules."""
    if not rows:
        return "no plugged VIFs"
    lines: list[str] = []
    for (name, network_id, bridge), group in itertools.groupby(rows, key=lambda r: (r["network"], r["network_id"],
                                                                                       r["bridge"])):
        lines += ["" if lines else None, f"network {name} ({network_id})" if name else
                  f"bridge {bridge} (not a private network)"]
        lines += table(["HOST", "VM", "VIF", "OFPORT", "MAC", "RULES IN FORCE"],
                       ([r["host"], r["vm"], r["vif"], r["ofport"], r["mac"], _rules_in_force(r)] for r in group),
                       indent="  ")
    return "\n".join(line for line in lines if line is not None)


def inventory_json(rows: Sequence[Mapping]) -> str:
    return to_json(list(rows))


# --- certs ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PoolTrust:
    """What `certs show` learnt of one pool: whether its CA is installed and which, or why it could not ask."""

    pool: str
    installed: bool = False
    fingerprint: str | None = None
    error: str | None = None


def _trust(pool: PoolTrust, ours: str) -> tuple[str, str]:
    """(stable JSON word, operator text) for one pool's trust in our CA."""
    if pool.error is not None:
        return "unreachable", f"unreachable: {pool.error}"
    if not pool.installed:
        return "not-installed", "not installed"
    if same_fingerprint(pool.fingerprint, ours):
        return "ours", "trusts sdnctl's CA"
    return "other", f"holds ANOTHER {POOL_CA_NAME} (SHA-256 {pool.fingerprint or 'unknown'})"


def certs_show_json(certificates: Sequence[tuple[str, CertInfo]], pools: Sequence[PoolTrust], ours: str) -> str:
    return to_json({
        "certificates": [{"role": role, **dataclasses.asdict(info), "expiring": info.expiring}
                         for role, info in certificates],
        "pools": [{"pool": p.pool, "trust": _trust(p, ours)[0], "fingerprint": p.fingerprint, "error": p.error}
                  for p in pools],
    })


def certs_show(certificates: Sequence[tuple[str, CertInfo]], pools: Sequence[PoolTrust], ours: str) -> str:
    """The CA and client certificate, a warning for each one expiring soon, then each pool's trust."""
    lines = table(["ROLE", "SUBJECT", "SHA-256", "EXPIRES", "DAYS LEFT"],
                  ([role, info.subject, info.fingerprint, info.not_after, info.days_left]
                   for role, info in certificates))
    lines += [f"WARNING: the {role} certificate expires in {info.days_left} days; run `sdnctl certs rotate`"
              for role, info in certificates if info.expiring]
    if pools:
        lines.append("")
        lines += [f"pool {p.pool}: {_trust(p, ours)[1]}" for p in pools]
    return "\n".join(lines)


# --- lab --------------------------------------------------------------------------------------

def lab_status_json(state: Mapping) -> str:
    return to_json(state)


def lab_status(state: Mapping) -> str:
    """The daemon config, each pool's XAPI endpoint, and each host."""
    lines = [f"config: {state['config']}", ""]
    lines += table(["POOL", "URL", "MASTER"], ([p["name"], p["url"], p["master"]] for p in state["pools"]))
    lines.append("")
    lines += table(["POOL", "HOST", "ADDRESS", "LIVE", "UUID", "OVSDB", "NETNS"],
                   ([p["name"], h["name"], h["address"], {True: "yes", False: "NO"}.get(h.get("live")), h["uuid"],
                     h["ovsdb"], h["netns"]] for p in state["pools"] for h in p["hosts"]))
    return "\n".join(lines)


# --- plan -------------------------------------------------------------------------------------

def _port_changes(spec: TunnelSpec, old: ObservedPort | None) -> dict[str, tuple[object, object]]:
    """Field -> (old, new) for a modified tunnel port; a PSK is never shown, only that it changed."""
    before = dict(old.options) if old else {}
    after = spec.options
    changes: dict[str, tuple[object, object]] = {}
    if old is None or old.type != spec.type:
        changes["type"] = (old.type if old else None, spec.type)
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            changes[key] = ("***", "***") if key == "psk" else (before.get(key), after.get(key))
    return changes


def _flow_text(flow: FlowSpec) -> str:
    match = ",".join(f"{k}={v}" for k, v in flow.match) or "any"
    return f"table {flow.table_id} priority {flow.priority} {match} -> {flow.action}"


def _action_text(action: Action, names: Mapping[str, str]) -> str:
    if isinstance(action, SetTunnelStatus):
        return f"xapi tunnel.set_status active={str(action.active).lower()} key={action.key}"
    if isinstance(action, RecordCenter):
        return (f"xapi network {action.network_name}: record the star center "
                f"{names.get(action.previous or '', action.previous or '-')} -> {names.get(action.center, action.center)}")
    if isinstance(action, PlugPif):
        return f"xapi PIF.plug the tunnel access PIF of {action.host_name} (pool {action.pool})"
    return f"xapi {type(action).__name__} {action}"


def _host_plan_lines(host: HostReport, names: Mapping[str, str]) -> list[str]:
    ports, seen = host.ports or PortPlan(), host.observed
    old = {p.name: p for p in seen.ports} if seen else {}
    controllers = dict(seen.controllers) if seen else {}
    lines = [f"+ {s.name} {s.type} remote_ip={s.remote_ip} key={s.key} on {s.bridge}" for s in ports.add]
    for spec in ports.modify:
        changes = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in _port_changes(spec, old.get(spec.name)).items())
        lines.append(f"~ {spec.name} {spec.type} remote_ip={spec.remote_ip} key={spec.key}: {changes}")
    lines += [f"- {p.name} (network {p.network_id})" for p in ports.delete]
    lines += [f"~ controller {b}: {controllers[b]} -> {t}" if b in controllers else f"+ controller {b}: {t}"
              for b, t in ports.set_controllers]
    lines += [f"- controller {b}: {controllers.get(b, '-')}" for b in ports.remove_controllers]
    lines += [f"~ rstp {b}: off -> on" for b in ports.enable_rstp]
    lines += [f"~ rstp {b}: on -> off (split horizon instead)" for b in ports.disable_rstp]
    for bridge, flows in sorted(host.flows.items()):
        lines += [f"+ flow {bridge} {_flow_text(f)}" for f in flows.add]
        lines += [f"- flow {bridge} {_flow_text(f)}" for f in flows.delete]
    lines += [f"flows on {bridge} unknown: {error}" for bridge, error in sorted(host.flow_errors.items())]
    lines += [_action_text(action, names) for action in host.xapi]
    return [f"{host.name}: {line}" for line in lines] or [f"{host.name}: no change"]


def plan(report: PlanReport) -> str:
    """Per host every pending change (ports, controller rows, RSTP, flows, XAPI writes), then the total."""
    lines = []
    for host in report.hosts:
        lines += [f"{host.name}: unknown ({host.error})"] if host.error else _host_plan_lines(host, report.host_names)
    lines += [_action_text(action, report.host_names) for action in report.xapi]
    lines.append(f"{report.changes} change(s) pending")
    return "\n".join(lines)


def _spec_json(spec: TunnelSpec) -> dict:
    return {"name": spec.name, "bridge": spec.bridge, "network": spec.network_id, "remote_host": spec.remote_host,
            "type": spec.type, "remote_ip": spec.remote_ip, "key": spec.key, "local_ip": spec.local_ip,
            "encrypted": spec.psk is not None}


def _flow_json(flow: FlowSpec) -> dict:
    return {"table": flow.table_id, "priority": flow.priority, "match": dict(flow.match), "action": flow.action}


def _action_json(action: Action) -> dict:
    return {"action": type(action).__name__, **dataclasses.asdict(action)}


def _host_plan_json(host: HostReport) -> dict:
    ports, seen = host.ports or PortPlan(), host.observed
    old = {p.name: p for p in seen.ports} if seen else {}
    controllers = dict(seen.controllers) if seen else {}
    return {
        "name": host.name, "uuid": host.uuid, "error": host.error, "changes": host.changes,
        "ports": {"add": [_spec_json(s) for s in ports.add],
                  "modify": [{**_spec_json(s), "changes": {k: list(v) for k, v in _port_changes(s, old.get(s.name)).items()}}
                             for s in ports.modify],
                  "delete": [{"name": p.name, "bridge": p.bridge, "network": p.network_id} for p in ports.delete]},
        "controllers": {"set": [{"bridge": b, "old": controllers.get(b), "new": t} for b, t in ports.set_controllers],
                        "remove": [{"bridge": b, "old": controllers.get(b)} for b in ports.remove_controllers]},
        "rstp": {"enable": list(ports.enable_rstp), "disable": list(ports.disable_rstp)},
        "flows": {b: {"add": [_flow_json(f) for f in p.add], "delete": [_flow_json(f) for f in p.delete]}
                  for b, p in sorted(host.flows.items())},
        "flow_errors": dict(host.flow_errors),
        "xapi": [_action_json(a) for a in host.xapi],
    }


def plan_json(report: PlanReport) -> str:
    """The plan as JSON: per host, every kind of change; no secret (a PSK change shows as "***")."""
    return to_json({"complete": report.complete, "changes": report.changes,
                    "unsynced_pools": list(report.unsynced_pools),
                    "hosts": [_host_plan_json(h) for h in report.hosts],
                    "xapi": [_action_json(a) for a in report.xapi]})
