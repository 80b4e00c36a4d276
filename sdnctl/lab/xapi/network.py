"""network.*: private networks (bridge `xapiN`) and the pool-wide network of each NIC (`xenbrN`)."""

from __future__ import annotations

import weakref
from typing import Any

from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import api
from sdnctl.lab.xapi.schema import record_values

_REQUIRED = ("name_label", "name_description", "other_config")
_CREATE_FIELDS = (*_REQUIRED, "MTU", "bridge", "managed", "tags")
_RESERVED_BRIDGE_PREFIXES = ("xen", "xapi", "vif", "tap", "eth")     # Xapi_network.bridge_blacklist
_MAX_BRIDGE_NAME = 15                                              # IFNAMSIZ - 1
# Xapi_network.counter: one per xapi process, never reset while it runs, so `xapiN` is never reused.
_bridge_counters: weakref.WeakKeyDictionary[Context, int] = weakref.WeakKeyDictionary()


@api("network.create")
def create(ctx: Context, record: Any) -> str:
    """Xapi_network.create: MTU <= 0 means 1500; a given bridge must be a legal, unused name."""
    values = record_values("network", record, _CREATE_FIELDS)
    missing = next((f for f in _REQUIRED if f not in values), None)
    if missing is not None:
        raise XapiFailure("FIELD_TYPE_ERROR", missing)
    if values.get("MTU", 1500) <= 0:
        values["MTU"] = 1500
    bridges = [n["bridge"] for n in ctx.records("network")]
    bridge = values.pop("bridge", "")
    if not bridge:
        bridge = _choose_bridge_name(ctx, bridges)
    elif len(bridge) > _MAX_BRIDGE_NAME or bridge.startswith(_RESERVED_BRIDGE_PREFIXES):
        raise XapiFailure("INVALID_VALUE", "bridge", bridge)
    elif bridge in bridges:
        raise XapiFailure("BRIDGE_NAME_EXISTS", bridge)
    return ctx.store.create("network", **values, bridge=bridge)


def _choose_bridge_name(ctx: Context, bridges: list[str]) -> str:
    """Xapi_network.choose_bridge_name: the counter's next `xapiN` not in use."""
    while True:
        n = _bridge_counters.get(ctx, 0)
        _bridge_counters[ctx] = n + 1
        if f"xapi{n}" not in bridges:
            return f"xapi{n}"


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
                            bridge=bridge)
