"""tunnel.*: a tunnel is an access PIF `tunnelN` on a network, carried by a host's transport PIF."""

from __future__ import annotations

from typing import Any

from sdnctl.lab.xapi import pif
from sdnctl.lab.xapi.context import Context, free_name
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import api
from sdnctl.lab.xapi.schema import random_mac


@api("tunnel.create")
def create(ctx: Context, transport_PIF: Any, network: Any, protocol: Any = "gre") -> str:
    """Xapi_tunnel.create: checks, then create_internal, then the access PIF is plugged."""
    transport = ctx.store.record("PIF", transport_PIF)
    net = ctx.store.record("network", network)
    if protocol not in ("gre", "vxlan"):
        raise XapiFailure("INVALID_VALUE", "protocol", protocol)
    if not net["managed"]:
        raise XapiFailure("NETWORK_UNMANAGED", network)
    for other in net["PIFs"]:
        if ctx.store.record("PIF", other)["host"] == transport["host"]:
            raise XapiFailure("NETWORK_ALREADY_CONNECTED", network, other)
    if transport["tunnel_access_PIF_of"]:
        raise XapiFailure("IS_TUNNEL_ACCESS_PIF", transport_PIF)
    if transport["ip_configuration_mode"] == "None":
        raise XapiFailure("TRANSPORT_PIF_NOT_CONFIGURED", transport_PIF)
    ctx.assert_live(transport["host"])
    tunnel, access = create_internal(ctx, transport_PIF, network, protocol)
    pif.bring_up(ctx, access)
    return tunnel


@api("tunnel.destroy")
def destroy(ctx: Context, tunnel: Any) -> None:
    """Xapi_tunnel.destroy: the access PIF is unplugged and destroyed with the tunnel."""
    access = ctx.store.record("tunnel", tunnel)["access_PIF"]
    pif.bring_down(ctx, access)
    ctx.store.delete(access)
    ctx.store.delete(tunnel)


def create_internal(ctx: Context, transport_pif: str, network: str, protocol: str) -> tuple[str, str]:
    """Xapi_tunnel.create_internal: the tunnel and its access PIF `tunnelN` (unplugged)."""
    host = ctx.store.record("PIF", transport_pif)["host"]
    devices = [p["device"] for p in ctx.records("PIF", host=host) if p["tunnel_access_PIF_of"]]
    access = ctx.store.create("PIF", device=free_name("tunnel", devices), host=host, network=network,
                              MAC=random_mac(), MTU=ctx.store.record("network", network)["MTU"],
                              VLAN="-1", managed=True, ip_configuration_mode="None",
                              ipv6_configuration_mode="None", primary_address_type="IPv4")
    tunnel = ctx.store.create("tunnel", access_PIF=access, transport_PIF=transport_pif,
                              status={"active": "false"}, protocol=protocol)
    return tunnel, access


def join(ctx: Context, host: str) -> None:
    """A joining host gets an access PIF for every tunnel network, on the same transport device."""
    for network in ctx.store.refs("network"):
        pifs = [ctx.store.record("PIF", p) for p in ctx.store.record("network", network)["PIFs"]]
        tunnels = [t for p in pifs for t in p["tunnel_access_PIF_of"]]
        if not tunnels or any(p["host"] == host for p in pifs):
            continue
        model = ctx.store.record("tunnel", tunnels[0])
        device = ctx.store.record("PIF", model["transport_PIF"])["device"]
        transports = ctx.store.find("PIF", host=host, device=device)
        if not transports:
            continue
        transport = transports[0]
        _, access = create_internal(ctx, transport, network, model["protocol"])
        if ctx.store.record("PIF", transport)["ip_configuration_mode"] != "None":
            pif.bring_up(ctx, access)
