"""PIF.*: plugging (bridges up on the host's switch), IP configuration, a joining host's NICs."""

from __future__ import annotations

from typing import Any

from sdnctl.lab.xapi import network, networkd
from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import api
from sdnctl.lab.xapi.schema import NULL_REF, assert_ipv4, coerce, random_mac

_MODES = {"none": "None", "dhcp": "DHCP", "static": "Static"}


@api("PIF.plug")
def plug(ctx: Context, pif: Any) -> None:
    """Xapi_pif.plug: a tunnel access PIF needs its transport PIF configured, and brings it up first."""
    record = ctx.store.record("PIF", pif)
    if record["bond_slave_of"] != NULL_REF:
        raise XapiFailure("CANNOT_PLUG_BOND_SLAVE", pif)
    for tunnel in record["tunnel_access_PIF_of"][:1]:
        transport = ctx.store.record("tunnel", tunnel)["transport_PIF"]
        if ctx.store.record("PIF", transport)["ip_configuration_mode"] == "None":
            raise XapiFailure("TRANSPORT_PIF_NOT_CONFIGURED", transport)
        plug(ctx, transport)
    bring_up(ctx, pif)


@api("PIF.unplug")
def unplug(ctx: Context, pif: Any) -> None:
    """Xapi_pif.unplug: never the management PIF, one with running VIFs on its network, or one that
    disallows it; a transport PIF unplugs its tunnel's access PIF first (with the same checks)."""
    record = ctx.store.record("PIF", pif)
    if record["management"]:
        raise XapiFailure("PIF_IS_MANAGEMENT_INTERFACE", pif)
    _assert_no_vifs_in_use(ctx, record["host"], record["network"])
    if record["disallow_unplug"]:
        raise XapiFailure("PIF_DOES_NOT_ALLOW_UNPLUG", pif)
    ctx.assert_live(record["host"])
    for tunnel in record["tunnel_transport_PIF_of"]:
        unplug(ctx, ctx.store.record("tunnel", tunnel)["access_PIF"])
    bring_down(ctx, pif)


def _assert_no_vifs_in_use(ctx: Context, host: str, network: str) -> None:
    """Xapi_network_attach_helpers.assert_network_has_no_vifs_in_use_on_me: VIF_IN_USE [network; VIF]."""
    for vif in ctx.store.record("network", network)["VIFs"]:
        record = ctx.store.record("VIF", vif)
        vm = ctx.store.record("VM", record["VM"])
        if record["currently_attached"] and vm["resident_on"] == host and vm["power_state"] in ("Running",
                                                                                                 "Paused"):
            raise XapiFailure("VIF_IN_USE", network, vif)


@api("PIF.reconfigure_ip")
def reconfigure_ip(ctx: Context, pif: Any, mode: Any, IP: Any, netmask: Any, gateway: Any, DNS: Any) -> None:
    """Xapi_pif.reconfigure_ip: the PIF's IP fields, and the address on the host's transport device."""
    record = ctx.store.record("PIF", pif)
    if not isinstance(mode, str) or mode.lower() not in _MODES:
        raise XapiFailure("INVALID_VALUE", "mode", mode)
    mode = _MODES[mode.lower()]
    for field, value in (("IP", IP), ("netmask", netmask), ("gateway", gateway), ("DNS", DNS)):
        coerce("str", value, field)
    if mode == "Static":
        assert_ipv4(IP, XapiFailure("INVALID_IP_ADDRESS_SPECIFIED", "IP"))
        assert_ipv4(netmask, XapiFailure("INVALID_IP_ADDRESS_SPECIFIED", "netmask"))
        if gateway:
            assert_ipv4(gateway, XapiFailure("INVALID_IP_ADDRESS_SPECIFIED", "gateway"))
    if record["management"] and mode == "None" and record["primary_address_type"] == "IPv4":
        raise XapiFailure("PIF_IS_MANAGEMENT_INTERFACE", pif)
    ctx.assert_live(record["host"])
    # The lab has no DHCP server: DHCP keeps the given address, or the current one.
    ip = {"None": "", "DHCP": IP or record["IP"], "Static": IP}[mode]
    ctx.store.update(pif, ip_configuration_mode=mode, IP=ip, netmask=netmask if ip else "",
                     gateway=gateway if ip else "", DNS=DNS if ip else "")
    networkd.set_transport_ip(ctx, record, ip or None)


def bring_up(ctx: Context, pif: str) -> None:
    """Xapi_pif.plug (Nm.bring_pif_up): a tunnel's transport PIF or a VLAN's tagged PIF first, then the
    bridge on the host; a PIF made with MTU -1 (a bond master) takes its network's."""
    record = ctx.store.record("PIF", pif)
    if record["currently_attached"]:
        return
    ctx.assert_live(record["host"])
    for tunnel in record["tunnel_access_PIF_of"]:
        bring_up(ctx, ctx.store.record("tunnel", tunnel)["transport_PIF"])
    if record["VLAN_master_of"] != NULL_REF:
        bring_up(ctx, ctx.store.record("VLAN", record["VLAN_master_of"])["tagged_PIF"])
    mtu = record["MTU"] if record["MTU"] > 0 else ctx.store.record("network", record["network"])["MTU"]
    ctx.store.update(pif, currently_attached=True, MTU=mtu)
    networkd.ensure_bridge(ctx, record["host"], record["network"])


def bring_down(ctx: Context, pif: str) -> None:
    """Nm.bring_pif_down: a transport PIF takes its tunnels' access PIFs down first."""
    record = ctx.store.record("PIF", pif)
    if not record["currently_attached"]:
        return
    for tunnel in record["tunnel_transport_PIF_of"]:
        bring_down(ctx, ctx.store.record("tunnel", tunnel)["access_PIF"])
    ctx.store.update(pif, currently_attached=False)
    networkd.release_bridge(ctx, record["host"], record["network"])


def topology(ctx: Context, pif: str) -> list[dict[str, Any]]:
    """Xapi_pif_helpers.get_pif_topo: the PIF, then what it rides on (a tunnel's transport PIF, a VLAN's
    tagged PIF) down to a physical PIF or a bond master."""
    record = ctx.store.record("PIF", pif)
    if record["tunnel_access_PIF_of"]:
        below = ctx.store.record("tunnel", record["tunnel_access_PIF_of"][0])["transport_PIF"]
    elif record["VLAN_master_of"] != NULL_REF:
        below = ctx.store.record("VLAN", record["VLAN_master_of"])["tagged_PIF"]
    else:
        return [record]
    return [record, *topology(ctx, below)]


def is_bond_slave(record: dict[str, Any]) -> bool:
    return record["bond_slave_of"] != NULL_REF


def assert_no_other_local_pifs(ctx: Context, host: str, network: str) -> None:
    """Xapi_pif.assert_no_other_local_pifs: a network has at most one PIF per host."""
    for other in ctx.store.record("network", network)["PIFs"]:
        if ctx.store.record("PIF", other)["host"] == host:
            raise XapiFailure("NETWORK_ALREADY_CONNECTED", host, other)


def assert_managed(ctx: Context, network: str, pif: str) -> None:
    """Xapi_network.assert_network_is_managed and Xapi_pif_helpers.assert_pif_is_managed."""
    if not ctx.store.record("network", network)["managed"]:
        raise XapiFailure("NETWORK_UNMANAGED", network)
    if not ctx.store.record("PIF", pif)["managed"]:
        raise XapiFailure("PIF_UNMANAGED", pif)


def introduce_physical(ctx: Context, host: str, device: str, ip: str | None) -> None:
    """A joining host's NIC `device`, on its pool-wide network, plugged; eth0 is the management PIF."""
    pif = ctx.store.create("PIF", device=device, host=host, network=network.physical(ctx, device),
                           MAC=random_mac(), MTU=1500, physical=True, management=device == "eth0",
                           **_ip_fields(ip))
    bring_up(ctx, pif)


def _ip_fields(ip: str | None) -> dict[str, str]:
    if not ip:
        return {"ip_configuration_mode": "None"}
    return {"ip_configuration_mode": "Static", "IP": ip, "netmask": "255.255.255.0"}
