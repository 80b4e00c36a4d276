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
    """Xapi_tunnel.create: checks, then create_internal, then Xapi_pif.plug of the access PIF.

    The plug raises TRANSPORT_PIF_NOT_CONFIGURED if the transport PIF has no IP configuration: the
    tunnel and its unplugged access PIF stay, as xapi leaves them.
    """
    transport = ctx.store.record("PIF", transport_PIF)
    ctx.store.record("network", network)
    if protocol not in ("gre", "vxlan"):
        raise XapiFailure("INVALID_VALUE", "protocol", protocol)
    pif.assert_managed(ctx, network, transport_PIF)
    pif.assert_no_other_local_pifs(ctx, transport["host"], network)
    # Xapi_pif_helpers.tunnel_is_allowed_on_pif: a physical PIF, a bond master or a VLAN on either.
    topology = pif.topology(ctx, transport_PIF)
    if transport["tunnel_access_PIF_of"]:
        raise XapiFailure("IS_TUNNEL_ACCESS_PIF", transport_PIF)
    if pif.is_bond_slave(topology[-1]):
        raise XapiFailure("CANNOT_ADD_TUNNEL_TO_BOND_SLAVE", transport_PIF)
    ctx.assert_live(transport["host"])
    tunnel, access = create_internal(ctx, transport_PIF, network, protocol)
    pif.plug(ctx, access)
    return tunnel


@api("tunnel.destroy")
def destroy(ctx: Context, tunnel: Any) -> None:
    """Xapi_tunnel.destroy: Xapi_pif.unplug of the access PIF (VIF_IN_USE under a running VIF), then
    the access PIF and the tunnel go."""
    access = ctx.store.record("tunnel", tunnel)["access_PIF"]
    pif.unplug(ctx, access)
    ctx.store.delete(access)
    ctx.store.delete(tunnel)


def create_internal(ctx: Context, transport_pif: str, network: str, protocol: str) -> tuple[str, str]:
    """Xapi_tunnel.create_internal: the tunnel and its access PIF `tunnelN` (unplugged)."""
    host = ctx.store.record("PIF", transport_pif)["host"]
    devices = [p["device"] for p in ctx.records("PIF", host=host) if p["tunnel_access_PIF_of"]]
    access = ctx.store.create("PIF", device=free_name("tunnel", devices), host=host, network=network,
                              MAC=random_mac(), MTU=ctx.store.record("network", network)["MTU"],
                              metrics=ctx.store.record("PIF", transport_pif)["metrics"])
    tunnel = ctx.store.create("tunnel", access_PIF=access, transport_PIF=transport_pif,
                              status={"active": "false"}, protocol=protocol)
    return tunnel, access

