"""pool.*: who is master, and a host leaving the pool (pool.eject)."""

from __future__ import annotations

from typing import Any

from sdnctl.lab.xapi import networkd, vm
from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import api
from sdnctl.lab.xapi.schema import NULL_REF


@api("pool.designate_new_master")
def designate_new_master(ctx: Context, host: Any) -> None:
    """Xapi_pool.designate_new_master: the old master answers HOST_IS_SLAVE, every session is invalid."""
    ctx.store.record("host", host)
    ctx.assert_live(host)
    make_master(ctx, host)


def make_master(ctx: Context, host: str) -> None:
    if ctx.pool()["master"] != NULL_REF:
        ctx.sessions.clear()
        ctx.cond.notify_all()
    ctx.store.update(ctx.pool_ref, master=host)


@api("pool.eject")
def eject(ctx: Context, host: Any) -> None:
    """Xapi_pool.eject: the host's VMs halt, its bridges go, and it leaves the database and the wire."""
    record = ctx.store.record("host", host)
    if host == ctx.pool()["master"]:
        raise XapiFailure("HOST_CANNOT_DESTROY_SELF", host)
    for ref in list(record["resident_VMs"]):
        if not ctx.store.record("VM", ref)["is_control_domain"]:
            vm.halt(ctx, ref)
    switch = ctx.switch(host)
    pifs = [ctx.store.record("PIF", pif) | {"ref": pif} for pif in record["PIFs"]]
    for pif in pifs:
        for tunnel in list(pif["tunnel_access_PIF_of"]):
            ctx.store.delete(tunnel)
    if switch is not None:
        networkd.host_leaves(ctx, switch, pifs)
    for pif in pifs:
        ctx.store.delete(pif["ref"])
    for cert in list(record["certificates"]):
        ctx.store.delete(cert)
    ctx.store.delete(record["control_domain"])
    ctx.store.delete(record["metrics"])
    ctx.store.delete(host)
    ctx.listeners.close(host)
    ctx.cond.notify_all()
    del ctx.dom0s[host]
