"""VLAN.*: a VLAN PIF (its tagged PIF's device, `VLAN` = the tag) on a network whose bridge is a fake bridge."""

from __future__ import annotations

from typing import Any

from sdnctl.lab.xapi import pif
from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import api
from sdnctl.lab.xapi.schema import NULL_REF, coerce

VLAN_MAC = "fe:ff:ff:ff:ff:ff"      # Xapi_vlan.vlan_mac


@api("VLAN.create")
def create(ctx: Context, tagged_PIF: Any, tag: Any, network: Any) -> str:
    """Xapi_vlan.create: checks, create_internal, then Xapi_pif.plug of the new VLAN PIF."""
    tagged = ctx.store.record("PIF", tagged_PIF)
    ctx.store.record("network", network)
    tag = coerce("int", tag, "tag")
    pif.assert_managed(ctx, network, tagged_PIF)
    pif.assert_no_other_local_pifs(ctx, tagged["host"], network)
    # Xapi_pif_helpers.vlan_is_allowed_on_pif: on a physical PIF or a bond master, never on a bond slave.
    topology = pif.topology(ctx, tagged_PIF)
    if tagged["tunnel_access_PIF_of"]:
        raise XapiFailure("IS_TUNNEL_ACCESS_PIF", tagged_PIF)
    if tagged["VLAN_master_of"] != NULL_REF:
        raise XapiFailure("PIF_IS_VLAN", tagged_PIF)
    if pif.is_bond_slave(topology[-1]):
        raise XapiFailure("CANNOT_ADD_VLAN_TO_BOND_SLAVE", tagged_PIF)
    if not 0 <= tag <= 4094:            # 4095 is reserved (802.1Q)
        raise XapiFailure("VLAN_TAG_INVALID", tag)
    if ctx.store.find("VLAN", tagged_PIF=tagged_PIF, tag=tag):
        raise XapiFailure("PIF_VLAN_EXISTS", tagged["device"])
    ctx.assert_live(tagged["host"])
    vlan, untagged = create_internal(ctx, tagged_PIF, tag, network)
    pif.plug(ctx, untagged)
    return vlan


def create_internal(ctx: Context, tagged_PIF: str, tag: int, network: str) -> tuple[str, str]:
    """Xapi_vlan.create_internal: the VLAN PIF (device, MTU and metrics of the tagged PIF) and the VLAN."""
    tagged = ctx.store.record("PIF", tagged_PIF)
    untagged = ctx.store.create("PIF", device=tagged["device"], host=tagged["host"], network=network, MAC=VLAN_MAC,
                                MTU=tagged["MTU"], VLAN=tag, metrics=tagged["metrics"])
    vlan = ctx.store.create("VLAN", tagged_PIF=tagged_PIF, untagged_PIF=untagged, tag=tag)
    ctx.store.update(untagged, VLAN_master_of=vlan)
    return vlan, untagged


@api("VLAN.destroy")
def destroy(ctx: Context, self_: Any) -> None:
    """Xapi_vlan.destroy: never the management PIF or a physical one; Xapi_pif.unplug (VIF_IN_USE), then the
    VLAN and its PIF go. A VLAN whose PIF is gone already is an orphan: just the record goes."""
    untagged = ctx.store.record("VLAN", self_)["untagged_PIF"]
    if untagged not in ctx.store.refs("PIF"):
        ctx.store.delete(self_)
        return
    record = ctx.store.record("PIF", untagged)
    if record["management"]:
        raise XapiFailure("PIF_IS_MANAGEMENT_INTERFACE", untagged)
    if record["VLAN"] < 0:
        raise XapiFailure("PIF_IS_PHYSICAL")
    pif.unplug(ctx, untagged)
    ctx.store.delete(self_)
    ctx.store.delete(untagged)

