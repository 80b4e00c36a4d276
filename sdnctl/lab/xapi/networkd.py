"""xcp-networkd's side of each call: bridges, VIF ports and the pssl listener on a host's switch.

A host whose switch is None, or which is not live, gets none of these (nobody reaches a dead host).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.schema import NULL_REF

SDN_CA_NAME = "sdn-controller-ca.pem"       # the pool CA certificate the pssl listener trusts


class SwitchBackend(Protocol):
    """What the simulator asks of a host's switch; `sdnctl.lab.ovshost.OvsHost` provides it."""

    cert_pem: str
    cert_path: str | Path
    key_path: str | Path

    def ensure_bridge(self, bridge: str, network_uuid: str) -> None: ...
    def ensure_bond(self, bridge: str, network_uuid: str, bond: str, members: list[str], mode: str) -> None: ...
    def ensure_vlan_bridge(self, bridge: str, network_uuid: str, parent: str, tag: int) -> None: ...
    def set_bridge_ip(self, bridge: str, ip: str | None) -> None: ...
    def remove_bridge(self, bridge: str) -> None: ...
    def add_vif(self, bridge: str, port: str, *, vif_uuid: str, vm_uuid: str, network_uuid: str, mac: str,
                guest_ip: str | None) -> None: ...
    def remove_vif(self, port: str) -> None: ...
    def configure_manager(self, ca_pem: str | None) -> None: ...
    def set_transport_ip(self, device: str, ip: str | None) -> None: ...
    def vsctl(self, *args: str, check: bool = True) -> str: ...
    def mgmt(self, bridge: str) -> str: ...
    def crash(self) -> None: ...
    def recover(self) -> None: ...


def vif_port(domid: str, device: str) -> str:
    """The port the vif hotplug script names: `vif<domid>.<device>`."""
    return f"vif{domid}.{device}"


def ensure_bridge(ctx: Context, host: str, network: str) -> None:
    """The network's bridge as the host's PIF on it needs it: an OVS bond port for a bond master
    (`ovs-vsctl add-bond`), a fake bridge `add-br BRIDGE PARENT TAG` for a VLAN PIF, else a bridge
    (with its NIC on `xenbrN`). A bond master's or VLAN PIF's IP sits on that bridge's internal port."""
    switch = ctx.switch(host)
    if switch is None:
        return
    net = ctx.store.record("network", network)
    pif = next(iter(ctx.records("PIF", host=host, network=network)), None)
    if pif is not None and pif["bond_master_of"]:
        bond = ctx.store.record("Bond", pif["bond_master_of"][0])
        members = sorted(ctx.store.record("PIF", slave)["device"] for slave in bond["slaves"])
        switch.ensure_bond(net["bridge"], net["uuid"], pif["device"], members, bond["mode"])
    elif pif is not None and pif["VLAN_master_of"] != NULL_REF:
        vlan = ctx.store.record("VLAN", pif["VLAN_master_of"])
        parent = ctx.store.record("network", ctx.store.record("PIF", vlan["tagged_PIF"])["network"])
        switch.ensure_vlan_bridge(net["bridge"], net["uuid"], parent["bridge"], vlan["tag"])
    else:
        switch.ensure_bridge(net["bridge"], net["uuid"])


def release_bridge(ctx: Context, host: str, network: str) -> None:
    """xcp-networkd drops a bridge once no plugged PIF and no attached VIF on the host uses it."""
    switch = ctx.switch(host)
    if switch is None:
        return
    pif_plugged = any(p["host"] == host and p["currently_attached"] for p in ctx.records("PIF", network=network))
    vif_attached = any(v["currently_attached"] and ctx.store.record("VM", v["VM"])["resident_on"] == host
                       for v in ctx.records("VIF", network=network))
    if not pif_plugged and not vif_attached:
        switch.remove_bridge(ctx.store.record("network", network)["bridge"])


def add_vif_port(ctx: Context, vif: dict[str, Any], vm: dict[str, Any]) -> None:
    """The vif hotplug script: the VIF's port on the network's bridge, with its external_ids."""
    switch = ctx.switch(vm["resident_on"])
    if switch is not None:
        net = ctx.store.record("network", vif["network"])
        ensure_bridge(ctx, vm["resident_on"], vif["network"])
        switch.add_vif(net["bridge"], vif_port(vm["domid"], vif["device"]), vif_uuid=vif["uuid"],
                       vm_uuid=vm["uuid"], network_uuid=net["uuid"], mac=vif["MAC"],
                       guest_ip=ctx.guest_ips.get(vif["VM"]))


def remove_vif_port(ctx: Context, vif: dict[str, Any], vm: dict[str, Any]) -> None:
    switch = ctx.switch(vm["resident_on"])
    if switch is not None:
        switch.remove_vif(vif_port(vm["domid"], vif["device"]))
    release_bridge(ctx, vm["resident_on"], vif["network"])


def set_transport_ip(ctx: Context, pif: dict[str, Any], ip: str | None) -> None:
    """A PIF's address on the host: a NIC's on its `xenbrN`, a bond master's or VLAN PIF's on its network's
    bridge (OVS's internal port, where the netdev datapath routes tunnels from)."""
    switch = ctx.switch(pif["host"])
    if switch is None:
        return
    if pif["physical"]:
        switch.set_transport_ip(pif["device"], ip)
    else:
        switch.set_bridge_ip(ctx.store.record("network", pif["network"])["bridge"], ip)


def update_vswitch_controller(ctx: Context, host: str) -> None:
    """openvswitch-config-update on one host (xapi's Helpers.update_vswitch_controller): the pssl
    listener, trusting the pool's SDN CA if any."""
    controller, switch = ctx.sdn_controller(), ctx.switch(host)
    if controller is not None and controller["protocol"] == "pssl" and switch is not None:
        switch.configure_manager(ctx.ca_certs.get(SDN_CA_NAME))


def update_vswitch_controllers(ctx: Context) -> None:
    for host in ctx.store.refs("host"):
        update_vswitch_controller(ctx, host)


def controller_changed(ctx: Context) -> None:
    """openvswitch-config-update when the pool's SDN controller changes: `ovs-vsctl emer-reset` on every
    live host (its Controller rows, manager, SSL and fail_mode go; bridges and ports stay), then the
    listener the new controller asks for, if any."""
    controller = ctx.sdn_controller()
    for host in ctx.store.refs("host"):
        switch = ctx.switch(host)
        if switch is None:
            continue
        switch.vsctl("--no-wait", "emer-reset")
        if controller is None:
            switch.configure_manager(None)
        else:
            update_vswitch_controller(ctx, host)


def host_leaves(ctx: Context, switch: SwitchBackend, pifs: list[dict[str, Any]]) -> None:
    """An ejected host's switch loses its plugged PIFs' bridges, and its listener if xapi had set one."""
    plugged = {p["network"] for p in pifs if p["currently_attached"]}
    for bridge in sorted({ctx.store.record("network", network)["bridge"] for network in plugged}):
        switch.remove_bridge(bridge)
    if ctx.sdn_controller() is not None:
        switch.configure_manager(None)
