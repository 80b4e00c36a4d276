"""PIF.*: plugging (bridges up on the host's switch), IP configuration, a joining host's NICs."""

from __future__ import annotations

from typing import Any

from sdnctl.lab.xapi import network, networkd
from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import api
from sdnctl.lab.xapi.schema import assert_ipv4, coerce, random_mac

_MODES = {"none": "None", "dhcp": "DHCP", "static": "Static"}


@api("PIF.plug")
def plug(ctx: Context, pif: Any) -> None:
    ctx.store.record("PIF", pif)
    bring_up(ctx, pif)


@api("PIF.unplug")
def unplug(ctx: Context, pif: Any) -> None:
    """Xapi_pif.unplug: never the management PIF, nor one that disallows it."""
    record = ctx.store.record("PIF", pif)
    if record["management"]:
        raise XapiFailure("PIF_IS_MANAGEMENT_INTERFACE", pif)
    if record["disallow_unplug"]:
        raise XapiFailure("PIF_DOES_NOT_ALLOW_UNPLUG", pif)
    ctx.assert_live(record["host"])
    bring_down(ctx, pif)


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
    ctx.assert_live(record["host"])
    # The lab has no DHCP server: DHCP keeps the given address, or the current one.
    ip = {"None": "", "DHCP": IP or record["IP"], "Static": IP}[mode]
    ctx.store.update(pif, ip_configuration_mode=mode, IP=ip, netmask=netmask if ip else "",
                     gateway=gateway if ip else "", DNS=DNS if ip else "")
    networkd.set_transport_ip(ctx, record, ip or None)


def bring_up(ctx: Context, pif: str) -> None:
    """Xapi_pif.plug (Nm.bring_pif_up): a tunnel's transport PIF first, then the bridge on the host."""
    record = ctx.store.record("PIF", pif)
    if record["currently_attached"]:
        return
    ctx.assert_live(record["host"])
    for tunnel in record["tunnel_access_PIF_of"]:
        bring_up(ctx, ctx.store.record("tunnel", tunnel)["transport_PIF"])
    ctx.store.update(pif, currently_attached=True)
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


def introduce_physical(ctx: Context, host: str, device: str, ip: str | None) -> None:
    """A joining host's NIC `device`, on its pool-wide network, plugged; eth0 is the management PIF."""
    pif = ctx.store.create("PIF", device=device, host=host, network=network.physical(ctx, device),
                           MAC=random_mac(), MTU="1500", VLAN="-1", physical=True,
                           management=device == "eth0", managed=True, ipv6_configuration_mode="None",
                           primary_address_type="IPv4", **_ip_fields(ip))
    bring_up(ctx, pif)


def _ip_fields(ip: str | None) -> dict[str, str]:
    if not ip:
        return {"ip_configuration_mode": "None"}
    return {"ip_configuration_mode": "Static", "IP": ip, "netmask": "255.255.255.0"}
