"""Bond.*: a bond master PIF `bondN` on a network, its members the bond's slaves (an OVS bond port)."""

from __future__ import annotations

import re
from typing import Any

from sdnctl.errors import LabError
from sdnctl.lab.xapi import networkd, pif, tunnel
from sdnctl.lab.xapi.context import Context, free_name
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import api
from sdnctl.lab.xapi.schema import NULL_REF, coerce

MODES = ("balance-slb", "active-backup", "lacp")
# Xapi_bond.requirements_of_mode: the properties lacp takes, with their defaults.
_LACP_DEFAULTS = {"hashing_algorithm": "tcpudp_ports", "lacp-time": "slow", "lacp-fallback-ab": "true"}
_IP_FIELDS = ("ip_configuration_mode", "IP", "netmask", "gateway", "DNS")


@api("Bond.create")
def create(ctx: Context, network: Any, members: Any, MAC: Any, mode: Any = "balance-slb",
           properties: Any = None) -> str:
    """Xapi_bond.create: checks, the master PIF and the Bond, members' IP configuration to the master,
    the master plugged (its members' own bridges go), their tunnels moved onto it."""
    members = list(dict.fromkeys(coerce("set", members, "members")))      # List.setify
    properties = _properties(mode, coerce("map", properties or {}, "properties"))
    ctx.store.record("network", network)
    records = [ctx.store.record("PIF", m) for m in members]
    if not records:
        raise XapiFailure("PIF_BOND_NEEDS_MORE_MEMBERS")
    host = records[0]["host"]
    pif.assert_no_other_local_pifs(ctx, host, network)
    if MAC and not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", MAC):
        raise XapiFailure("MAC_INVALID", MAC)
    primary = _check_members(ctx, network, members, records)
    ctx.assert_live(host)
    master = ctx.store.create("PIF", device=free_name("bond", _bond_devices(ctx, host)), host=host,
                              network=network, MAC=MAC or ctx.store.record("PIF", primary)["MAC"], MTU=-1,
                              metrics=records[0]["metrics"], properties=dict(records[0]["properties"]),
                              disallow_unplug=any(r["disallow_unplug"] for r in records))
    bond = ctx.store.create("Bond", master=master, primary_slave=primary, mode=mode, properties=properties)
    moved = [(t, _access_plugged(ctx, t)) for r in records for t in r["tunnel_transport_PIF_of"]]
    for member in members:
        ctx.store.update(member, bond_slave_of=bond, disallow_unplug=False)
        pif.bring_down(ctx, member)
    move_configuration(ctx, primary, master)
    pif.bring_up(ctx, master)
    for old, plugged in moved:
        move_tunnel(ctx, old, master, plugged)
    return bond


def _properties(mode: Any, given: dict[str, str]) -> dict[str, str]:
    """Xapi_bond.create's Map_check: lacp's properties, defaults added; other modes take none."""
    if mode not in MODES:
        raise XapiFailure("INVALID_VALUE", "mode", mode)
    allowed = {**_LACP_DEFAULTS, "lacp-aggregation-key": ""} if mode == "lacp" else {}
    for key in given:
        if key not in allowed:
            raise XapiFailure("INVALID_VALUE", "properties", key)
    return (dict(_LACP_DEFAULTS) if mode == "lacp" else {}) | given


def _check_members(ctx: Context, network: str, members: list[str], records: list[dict[str, Any]]) -> str:
    """Xapi_bond.create's validation; returns the primary slave (the first member with IP configuration)."""
    pif.assert_managed(ctx, network, members[0])
    for ref, record in zip(members, records):
        if record["bond_slave_of"] != NULL_REF:
            raise XapiFailure("PIF_ALREADY_BONDED", ref)
        if record["VLAN"] != -1:
            raise XapiFailure("PIF_VLAN_EXISTS", record["device"])
        if record["tunnel_access_PIF_of"]:
            raise XapiFailure("IS_TUNNEL_ACCESS_PIF", ref)
        if not record["managed"]:
            raise XapiFailure("PIF_UNMANAGED", ref)
        if record["management"]:
            raise LabError("the lab does not model bonding the management interface (move_management)")
        if record["VLAN_slave_of"]:
            raise LabError("the lab does not model moving a member's VLANs to the bond (move_vlan)")
    if len({r["host"] for r in records}) != 1:
        raise XapiFailure("PIF_CANNOT_BOND_CROSS_HOST")
    if len({tuple(sorted(r["properties"].items())) for r in records}) != 1:
        raise XapiFailure("INCOMPATIBLE_PIF_PROPERTIES")
    configured = [ref for ref, r in zip(members, records) if r["ip_configuration_mode"] != "None"]
    if len(configured) > 1:
        raise XapiFailure("PIF_BOND_MORE_THAN_ONE_IP")
    return (configured or members)[0]


def _bond_devices(ctx: Context, host: str) -> list[str]:
    """Xapi_bond.choose_bond_device_name looks at the host's bond masters only."""
    return [p["device"] for p in ctx.records("PIF", host=host) if p["bond_master_of"]]


def _access_plugged(ctx: Context, tunnel_ref: str) -> bool:
    access = ctx.store.record("tunnel", tunnel_ref)["access_PIF"]
    return ctx.store.record("PIF", access)["currently_attached"]


def move_configuration(ctx: Context, source: str, target: str) -> None:
    """Xapi_bond.move_configuration: the IP configuration moves, the source is left with none."""
    record = ctx.store.record("PIF", source)
    values = {f: record[f] for f in _IP_FIELDS}
    ctx.store.update(source, ip_configuration_mode="None", IP="", netmask="", gateway="", DNS="")
    networkd.set_transport_ip(ctx, ctx.store.record("PIF", source), None)
    ctx.store.update(target, **values)
    networkd.set_transport_ip(ctx, ctx.store.record("PIF", target), values["IP"] or None)


def move_tunnel(ctx: Context, old: str, transport: str, plugged: bool) -> None:
    """Xapi_bond.move_tunnel: a new tunnel and access PIF on the new transport PIF, plugged if the old was."""
    record = ctx.store.record("tunnel", old)
    network = ctx.store.record("PIF", record["access_PIF"])["network"]
    ctx.store.delete(record["access_PIF"])
    ctx.store.delete(old)
    _, access = tunnel.create_internal(ctx, transport, network, record["protocol"])
    if plugged:
        pif.bring_up(ctx, access)


@api("Bond.destroy")
def destroy(ctx: Context, self_: Any) -> None:
    """Xapi_bond.destroy: the master's IP configuration back to the primary slave, the members plugged again
    if the master was, its tunnels moved down to the primary slave; the Bond and master PIF go."""
    bond = ctx.store.record("Bond", self_)
    master, members, primary = bond["master"], list(bond["slaves"]), bond["primary_slave"]
    record = ctx.store.record("PIF", master)
    if record["VLAN_slave_of"]:
        raise LabError("the lab does not model moving the bond's VLANs to its members (move_vlan)")
    ctx.assert_live(record["host"])
    plugged = record["currently_attached"]
    moved = [(t, _access_plugged(ctx, t)) for t in record["tunnel_transport_PIF_of"]]
    pif.bring_down(ctx, master)
    move_configuration(ctx, master, primary)
    if record["disallow_unplug"]:
        ctx.store.update(primary, disallow_unplug=True)
    for member in members:
        ctx.store.update(member, bond_slave_of=NULL_REF)
        if plugged:
            pif.bring_up(ctx, member)
    for old, was_plugged in moved:
        move_tunnel(ctx, old, primary, was_plugged)
    ctx.store.delete(self_)
    ctx.store.delete(master)

