"""host.*, and a host's life in the lab: it joins, crashes and recovers."""

from __future__ import annotations

from typing import Any

from sdnctl.errors import LabError
from sdnctl.lab.xapi import certificate, networkd, pif, pool, session, tunnel
from sdnctl.lab.xapi.context import Context, Dom0
from sdnctl.lab.xapi.messages import api
from sdnctl.lab.xapi.networkd import SwitchBackend
from sdnctl.lab.xapi.schema import NULL_REF, assert_ipv4, now

SOFTWARE_VERSION = {"product_brand": "XCP-ng", "product_version": "8.3.0", "platform_version": "3.4.0",
                    "xapi": "24.19", "network_backend": "openvswitch"}


@api("host.get_server_certificate")
def get_server_certificate(ctx: Context, host: Any) -> str:
    ctx.store.record("host", host)
    backend = ctx.dom0s[host].backend
    return backend.cert_pem if backend is not None else ""


def join(ctx: Context, backend: SwitchBackend | None, *, name: str, address: str, pifs: dict[str, str | None],
         master: bool) -> str:
    """A host joins: its PIFs (eth0 = management, IP `address`), dom0, tunnels and SDN listener.

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
    for device, ip in sorted(ips.items()):
        pif.introduce_physical(ctx, host, device, ip)
    if backend is not None:
        certificate.add(ctx, backend.cert_pem, type="host", host=host)
    tunnel.join(ctx, host)
    networkd.update_vswitch_controller(ctx, host)
    ctx.listeners.open(ctx, host)
    return host


def _create(ctx: Context, backend: SwitchBackend | None, name: str, address: str) -> str:
    """The host's records: host, host_metrics (live) and its control domain."""
    metrics = ctx.store.create("host_metrics", live=True, memory_total=str(16 << 30),
                               memory_free=str(12 << 30), last_updated=now())
    host = ctx.store.create("host", name_label=name, hostname=name, address=address, enabled=True,
                            API_version_major="2", API_version_minor="21",
                            software_version=dict(SOFTWARE_VERSION), metrics=metrics)
    ctx.dom0s[host] = Dom0(backend)
    dom0 = ctx.store.create("VM", name_label=f"Control domain on host: {name}", power_state="Running",
                            domid="0", is_control_domain=True, resident_on=host)
    ctx.store.update(host, control_domain=dom0)
    return host


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


def recover(ctx: Context, host: str) -> None:
    """The host is back: switch restarted on its database, bridges re-ensured, live again.

    A recovering master restarts xapi: sessions and older event tokens are gone.
    """
    record = ctx.store.record("host", host)
    if ctx.is_live(host):
        return
    backend = ctx.dom0s[host].backend
    if backend is not None:
        backend.recover()
    ctx.store.update(record["metrics"], live=True, last_updated=now())
    for ref in record["PIFs"]:
        if ctx.store.record("PIF", ref)["currently_attached"]:
            networkd.ensure_bridge(ctx, host, ctx.store.record("PIF", ref)["network"])
    ctx.listeners.open(ctx, host)
    if host == ctx.pool()["master"]:
        session.restart(ctx)
