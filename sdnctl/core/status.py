"""PURE: the status document (`status.json`, metrics, `sdnctl status`) and the retained MQTT states, from values.

No secrets are in here: tunnel options (which may hold a PSK) are reduced to `remote_ip`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sdnctl.core.health import HEALTHS, UNKNOWN, TunnelHealth, tunnel_health
from sdnctl.core.hostplan import World
from sdnctl.core.flows import describe_rule
from sdnctl.core.model import IPSEC_EGRESS_MARK, ObservedPort, PrivateNetwork, VifPort


@dataclass(frozen=True)
class OpenFlowView:
    target: str
    connected: bool
    error: str | None


@dataclass(frozen=True)
class HostView:
    """One host agent as status shows it."""

    name: str
    target: str
    connected: bool
    error: str | None
    openflow: Mapping[str, OpenFlowView]
    openflow_synced: bool
    stats: Mapping[str, int]
    ports: tuple[ObservedPort, ...] = ()   # sdnctl-owned ports, while connected
    vifs: tuple[VifPort, ...] = ()         # plugged VIFs, while connected


@dataclass(frozen=True)
class PoolView:
    name: str
    synced: bool
    master_url: str
    resyncs: int
    error: str | None
    warning: str | None = None   # a protection switched off (plain HTTP, tls_verify = false)


@dataclass(frozen=True)
class ClientCertificate:
    fingerprint: str
    not_after: str
    days_left: int
    expiring: bool


@dataclass(frozen=True)
class Facts:
    """Everything besides the World that the status shows."""

    hosts: Mapping[str, HostView]
    pools: tuple[PoolView, ...]
    trust: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)   # pool -> state, ours, theirs, message
    certificate: ClientCertificate | None = None
    mqtt: Mapping[str, Any] = field(default_factory=dict)
    last_event_at: float | None = None
    last_commit_at: float | None = None
    ready: bool = False     # every pool synced or failed, every host of a usable pool connected or failed


def _health(health: TunnelHealth) -> dict:
    return {"health": health.state, "health_reason": health.reason or None, "bfd": health.bfd,
            "flap_count": health.flap_count}


def _ipsec(port: ObservedPort | None, psk: str | None, encrypted: bool) -> dict | None:
    """What OVSDB shows of a tunnel's IPsec: whether its PSK is the network's current one (never the PSK
    itself) and whether it marks its packets for the fail-closed drop. SAs live in the host's IKE daemon:
    sdnctl cannot see them (docs/ipsec.md)."""
    options = dict(port.options) if port is not None else {}
    if port is None or not (encrypted or "psk" in options):
        return None
    state = "missing" if "psk" not in options else "current" if options["psk"] == psk else "stale"
    return {"psk": state, "egress_pkt_mark": options.get("egress_pkt_mark") == IPSEC_EGRESS_MARK}


UNSEEN = TunnelHealth(UNKNOWN, "sdnctl cannot see this host's switch (not connected)")


def _tunnels(world: World, network: PrivateNetwork, host_uuid: str,
             seen: Mapping[str, ObservedPort] | None) -> list[dict]:
    """The host's tunnels of `network`; `seen` None: its switch is not connected, so none is known missing."""
    name = world.inventory.host_name
    desired = sorted((s for s in world.desired.tunnels.get(host_uuid, ()) if s.network_id == network.id),
                     key=lambda s: s.name)
    known = seen or {}
    tunnels = [{"name": s.name, "remote_host": s.remote_host, "remote_name": name(s.remote_host),
                "remote_ip": s.remote_ip, "desired": True, "observed": None if seen is None else s.name in known,
                "ofport": known[s.name].ofport if s.name in known else None,
                "error": known[s.name].error if s.name in known else None,
                "ipsec": None if seen is None else _ipsec(known.get(s.name), s.psk, network.encrypted),
                **_health(UNSEEN if seen is None else tunnel_health(known.get(s.name)))} for s in desired]
    if seen is None:
        return tunnels
    wanted = {s.name for s in desired}
    tunnels += [{"name": p.name, "remote_host": p.remote_host, "remote_name": name(p.remote_host),
                 "remote_ip": dict(p.options).get("remote_ip"), "desired": False, "observed": True,
                 "ofport": p.ofport, "error": p.error, "ipsec": _ipsec(p, None, network.encrypted),
                 **_health(tunnel_health(p))}
                for n, p in sorted(seen.items()) if n not in wanted]
    return tunnels


def network_section(world: World, ports: Mapping[str, tuple[ObservedPort, ...]]) -> list[dict]:
    """The status's per-network part, desired vs observed per tunnel, from each connected host's ports:
    the bulk of the document (40,000 tunnels for a 200-host mesh), which the daemon therefore rebuilds
    only when the World or a host's ports changed."""
    name = world.inventory.host_name
    observed = {uuid: {p.name: p for p in host_ports} for uuid, host_ports in ports.items()}
    networks = []
    for network in world.inventory.networks:
        members = []
        for ep in network.endpoints:
            seen = None if ep.host_uuid not in observed else \
                {n: p for n, p in observed[ep.host_uuid].items() if p.network_id == network.id}
            members.append({"uuid": ep.host_uuid, "name": name(ep.host_uuid), "pool": ep.pool, "bridge": ep.bridge,
                            "transport_ip": ep.transport_ip, "eligible": ep.eligible,
                            "ineligible_reason": ep.ineligible_reason,
                            "tunnels": _tunnels(world, network, ep.host_uuid, seen)})
        center = world.desired.centers.get(network.id)
        networks.append({"id": network.id, "name": network.name, "origin": network.origin,
                         "encapsulation": network.encapsulation, "vni": network.vni, "topology": network.topology,
                         "encrypted": network.encrypted, "center": center, "center_name": name(center),
                         "dead_by_bfd": sorted(name(h) for h in world.desired.avoided.get(network.id, ())),
                         "error": network.error, "creating": network.creating, "hosts": members})
    return networks


def _host(world: World, uuid: str, view: HostView) -> dict:
    return {"name": view.name, "target": view.target, "connected": view.connected, "error": view.error,
            "openflow": {bridge: {"target": of.target, "connected": of.connected, "error": of.error}
                         for bridge, of in view.openflow.items()},
            "openflow_synced": view.openflow_synced, "vifs": _vifs(world, uuid, view.vifs), **view.stats}


def _vifs(world: World, host_uuid: str, vifs: tuple[VifPort, ...]) -> list[dict]:
    """Each plugged VIF (`sdnctl inventory`): its VM, private network, port and MAC, and the rules in force."""
    inventory = world.inventory
    network_of = {ep.bridge: n for n in inventory.networks for ep in n.endpoints if ep.host_uuid == host_uuid}
    return [{"vif": v.vif_uuid, "vm": inventory.vif_vms.get(v.vif_uuid) or None, "bridge": v.bridge,
             "network_uuid": v.network_uuid, "network_id": network_of[v.bridge].id if v.bridge in network_of else None,
             "network_name": network_of[v.bridge].name if v.bridge in network_of else None,
             "ofport": v.ofport, "mac": v.mac,
             "vif_rules": [describe_rule(r) for r in inventory.vif_rules.get(v.vif_uuid, ())],
             "network_rules": [describe_rule(r) for r in inventory.network_rules.get(v.network_uuid, ())],
             "rule_error": inventory.rule_errors.get(v.vif_uuid) or inventory.rule_errors.get(v.network_uuid)}
            for v in sorted(vifs, key=lambda v: (v.bridge, v.ofport))]


def _certificate(cert: ClientCertificate | None) -> dict | None:
    if cert is None:
        return None
    return {"fingerprint": cert.fingerprint, "not_after": cert.not_after, "days_left": cert.days_left,
            "warning": f"client certificate expires in {cert.days_left} days; run `sdnctl certs rotate`"
            if cert.expiring else None}


def status_document(world: World, facts: Facts, now: float, networks: list[dict]) -> dict:
    """Everything `sdnctl status` shows: pools, hosts, and `networks` (`network_section`)."""
    return {
        "generated_at": now,
        "ready": facts.ready,
        "client_certificate": _certificate(facts.certificate),
        "trust": {pool: dict(trust) for pool, trust in facts.trust.items()},
        "last_event_at": facts.last_event_at,
        "last_commit_at": facts.last_commit_at,
        "pools": [{"name": p.name, "synced": p.synced, "master_url": p.master_url, "resyncs": p.resyncs,
                   "error": p.error, "warning": p.warning} for p in facts.pools],
        "hosts": {uuid: _host(world, uuid, view) for uuid, view in facts.hosts.items()},
        "networks": networks,
        "rule_errors": dict(world.inventory.rule_errors),
        "mqtt": dict(facts.mqtt),
    }


def mqtt_states(status: Mapping[str, Any]) -> dict[str, dict]:
    """Retained MQTT state per pool and host, by topic (below the configured prefix); `network_states` the rest."""
    states = {f"pool/{pool['name']}": {k: pool[k] for k in ("synced", "master_url", "error")}
              for pool in status["pools"]}
    states |= {f"host/{uuid}": {k: host[k] for k in ("name", "connected", "error", "openflow")}
               for uuid, host in status["hosts"].items()}
    states |= {f"rules/{where}": {"error": error, "forwarding": "nothing until fixed"}
               for where, error in status.get("rule_errors", {}).items()}
    return states


def network_states(networks: list[dict]) -> dict[str, dict]:
    """Retained MQTT state per network, by topic, from `network_section`."""
    return {f"network/{network['id']}": {
        **{k: network[k] for k in ("name", "encapsulation", "vni", "topology", "center_name", "error")},
        "hosts": {h["name"]: {"eligible": h["eligible"], **tunnel_counts(h["tunnels"])} for h in network["hosts"]}}
        for network in networks}


def tunnel_counts(tunnels: list[dict]) -> dict[str, int]:
    """tunnels_up / _down / _unknown / _missing: the desired tunnels by health (stale ones are not counted)."""
    return {f"tunnels_{state}": sum(t["desired"] and t.get("health") == state for t in tunnels) for state in HEALTHS}


def service_summary(status: Mapping[str, Any]) -> str:
    """systemd's STATUS= line, e.g. "3 pools, 41 hosts, 12 networks, 2 hosts unreachable"."""
    hosts, pools = status["hosts"].values(), status["pools"]
    problems = [f"{n} {what}" for n, what in ((sum(not p["synced"] for p in pools), "pools not synced"),
                                               (sum(not h["connected"] for h in hosts), "hosts unreachable"),
                                               (len(status.get("rule_errors", {})), "malformed rule sets")) if n]
    return ", ".join([f"{len(pools)} pools, {len(hosts)} hosts, {len(status['networks'])} networks", *problems])
