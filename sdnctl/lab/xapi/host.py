"""host.*, and a host's life in the lab: it joins, crashes and recovers."""

from __future__ import annotations

import random
from typing import Any

from sdnctl.errors import LabError
from sdnctl.lab.xapi import certificate, networkd, pif, pool, session, tunnel
from sdnctl.lab.xapi.context import Context, Dom0
from sdnctl.lab.xapi.messages import api
from sdnctl.lab.xapi.networkd import SwitchBackend
from sdnctl.lab.xapi.schema import NULL_REF, assert_ipv4, now

MEMORY_TOTAL = 16 << 30
SOFTWARE_VERSION = {"product_brand": "XCP-ng", "product_version": "8.3.0", "platform_version": "3.4.0",
                    "xapi": "24.19", "network_backend": "openvswitch"}


@api("host.get_server_certificate")
def get_server_certificate(ctx: Context, host: Any) -> str:
    ctx.store.record("host", host)
    backend = ctx.dom0s[host].backend
    return backend.cert_pem if backend is not None else ""


def introduce(ctx: Context, backend: SwitchBackend | None, *, name: str, address: str,
              pifs: dict[str, str | None], master: bool) -> str:
    """A host joins, first step (Xapi_pool.create_or_get_host_on_master): its records, not yet enabled.

    The first host becomes the master whatever `master` says; a later `master=True` host takes over.
    """
    ips = {"eth0": address} | pifs
    if ips["eth0"] != address:
        raise LabError(f"{name}: eth0 is the management interface, its IP must be {address}, not {ips['eth0']}")
    for configured in filter(None, ips.values()):
        assert_ipv4(configured, LabError(f"{name}: {configured!r} is not an IPv4 address"))
    if ctx.store.find("host", address=address):
        raise LabError(f"{name}: address {address} is already a host of pool {ctx.name}")
    host = _create(ctx, backend, name, address)
    if master or ctx.pool()["master"] == NULL_REF:
        pool.make_master(ctx, host)
    return host


def introduce_pifs(ctx: Context, host: str, pifs: dict[str, str | None]) -> None:
    """Second step: the slave's first boot scans its NICs (Xapi_pif.scan); eth0 is the management PIF."""
    ips = {"eth0": ctx.store.record("host", host)["address"]} | pifs
    for device, ip in sorted(ips.items()):
        pif.introduce_physical(ctx, host, device, ip)


def sync_tunnels(ctx: Context, host: str) -> None:
    """Third step, Xapi_host.sync_tunnels: for each of the master's tunnel access PIFs, a tunnel on the
    slave's PIF on the same network as the master's transport PIF, its access PIF created unplugged
    (Xapi_tunnel.create_internal): whoever manages the network plugs it (Xen Orchestra, sdnctl)."""
    master = ctx.pool()["master"]
    for access in ctx.records("PIF", host=master):
        for model in access["tunnel_access_PIF_of"]:
            record = ctx.store.record("tunnel", model)
            transport_network = ctx.store.record("PIF", record["transport_PIF"])["network"]
            mine = ctx.store.find("PIF", host=host, network=transport_network)
            if mine and not ctx.store.find("PIF", host=host, network=access["network"]):
                tunnel.create_internal(ctx, mine[0], access["network"], record["protocol"])


def start_of_day(ctx: Context, host: str) -> None:
    """Last step: the host's certificate, its switch's pssl listener, enabled (Xapi_host.enable), on the wire."""
    backend = ctx.dom0s[host].backend
    if backend is not None:
        certificate.add(ctx, backend.cert_pem, type="host", host=host)
    networkd.update_vswitch_controller(ctx, host)
    ctx.store.update(host, enabled=True)
    listen(ctx, host)


def listen(ctx: Context, host: str) -> None:
    """The host's xapi answers on its address, each listener with the view of the pool that knows its host."""
    ctx.listeners.open(ctx.serving(host), host)


def _create(ctx: Context, backend: SwitchBackend | None, name: str, address: str) -> str:
    """The host's records: host (disabled until start of day), host_metrics (live) and its control domain."""
    metrics = ctx.store.create("host_metrics", live=True, memory_total=str(MEMORY_TOTAL),
                               memory_free=str(MEMORY_TOTAL * 3 // 4), last_updated=now())
    host = ctx.store.create("host", name_label=name, hostname=name, address=address, enabled=False,
                            API_version_major="2", API_version_minor="21",
                            software_version=dict(SOFTWARE_VERSION), metrics=metrics)
    ctx.dom0s[host] = Dom0(backend)
    dom0 = ctx.store.create("VM", name_label=f"Control domain on host: {name}", power_state="Running",
                            domid="0", is_control_domain=True, resident_on=host)
    ctx.store.update(host, control_domain=dom0)
    return host


def refresh_metrics(ctx: Context) -> None:
    """xcp-rrdd's memory monitor, written by the master (Monitor_dbcalls): every live host's memory_free
    moves a little and last_updated follows. With the master dead nobody writes the database."""
    if not ctx.is_live(ctx.pool()["master"]):
        return
    for host in ctx.store.refs("host"):
        if ctx.is_live(host):
            metrics = ctx.store.record("host", host)["metrics"]
            free = int(ctx.store.record("host_metrics", metrics)["memory_free"])
            free = min(MEMORY_TOTAL, max(MEMORY_TOTAL // 4, free + random.randint(-64, 64) * (1 << 20)))
            ctx.store.update(metrics, memory_free=str(free), last_updated=now())


def crash(ctx: Context, host: str) -> None:
    """The host dies: its switch is killed, it stops answering, host_metrics.live turns false."""
    record = ctx.store.record("host", host)
    if not ctx.is_live(host):
        return
    backend = ctx.dom0s[host].backend
    if backend is not None:
        backend.crash()
    ctx.store.update(record["metrics"], live=False, last_updated=now())
    ctx.listeners.close(host)
    ctx.cond.notify_all()
    if host == ctx.pool()["master"]:
        pool.master_died(ctx)


def recover(ctx: Context, host: str) -> None:
    """The host boots again: switch restarted on its database, live again, its PIFs brought up at start of
    day (Xapi_pif.start_of_day_best_effort_bring_up) but tunnel access PIFs whose transport PIF has no IP,
    which stay unplugged (Xapi_tunnel: TRANSPORT_PIF_NOT_CONFIGURED).

    A master that comes back restarts xapi: no session survives. A master replaced meanwhile is a slave.
    """
    record = ctx.store.record("host", host)
    if ctx.is_live(host):
        return
    backend = ctx.dom0s[host].backend
    if backend is not None:
        backend.recover()
    ctx.store.update(record["metrics"], live=True, last_updated=now())
    for ref in record["PIFs"]:
        for tunnel_ref in ctx.store.record("PIF", ref)["tunnel_access_PIF_of"]:
            transport = ctx.store.record("PIF", ctx.store.record("tunnel", tunnel_ref)["transport_PIF"])
            if transport["ip_configuration_mode"] == "None":
                pif.bring_down(ctx, ref)
    for ref in record["PIFs"]:
        if ctx.store.record("PIF", ref)["currently_attached"]:
            networkd.ensure_bridge(ctx, host, ctx.store.record("PIF", ref)["network"])
    listen(ctx, host)
    if host == ctx.pool()["master"]:
        session.restart(ctx)
