"""network.*: private networks (bridge `xapiN`) and the pool-wide network of each NIC (`xenbrN`)."""

from __future__ import annotations

from typing import Any

from sdnctl.lab.xapi.context import Context, free_name
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import api
from sdnctl.lab.xapi.schema import record_values

_CREATE_FIELDS = ("name_label", "name_description", "MTU", "other_config", "bridge", "managed", "tags")


@api("network.create")
def create(ctx: Context, record: Any) -> str:
    """Xapi_network.create: the bridge is the first free `xapiN` unless the record names one."""
    values = record_values("network", record, _CREATE_FIELDS)
    bridge = values.pop("bridge", "") or free_name("xapi", [n["bridge"] for n in ctx.records("network")])
    if ctx.store.find("network", bridge=bridge):
        raise XapiFailure("BRIDGE_NAME_EXISTS", bridge)
    return ctx.store.create("network", **({"MTU": "1500", "managed": True} | values), bridge=bridge)


@api("network.destroy")
def destroy(ctx: Context, network: Any) -> None:
    """Xapi_network.destroy: refused while a VIF is attached or a PIF is on it; its VIFs go with it."""
    record = ctx.store.record("network", network)
    attached = [v for v in record["VIFs"] if ctx.store.record("VIF", v)["currently_attached"]]
    if attached:
        raise XapiFailure("NETWORK_CONTAINS_VIF", *attached)
    if record["PIFs"]:
        raise XapiFailure("NETWORK_CONTAINS_PIF", *record["PIFs"])
    for vif in list(record["VIFs"]):
        ctx.store.delete(vif)
    ctx.store.delete(network)


def physical(ctx: Context, device: str) -> str:
    """The pool-wide network of a NIC: bridge `xenbrN` for `ethN`, made by the first host that has it."""
    bridge = "xenbr" + device.removeprefix("eth")
    found = ctx.store.find("network", bridge=bridge)
    if found:
        return found[0]
    return ctx.store.create("network", name_label=f"Pool-wide network associated with {device}",
                            MTU="1500", bridge=bridge, managed=True)
