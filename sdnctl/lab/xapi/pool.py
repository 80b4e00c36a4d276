"""pool.*: who is master (planned, emergency, HA), and a host leaving the pool (pool.eject)."""

from __future__ import annotations

import time
from typing import Any

from sdnctl.lab.xapi import networkd, vm
from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import api
from sdnctl.lab.xapi.schema import NULL_REF


@api("pool.designate_new_master")
def designate_new_master(ctx: Context, host: Any) -> None:
    """Xapi_pool.designate_new_master: refused under HA; a no-op on the master itself; else the new master
    takes over (Xapi_pool_transition.attempt_two_phase_commit_of_new_master) and every xapi restarts."""
    ctx.store.record("host", host)
    if ctx.ha.enabled:
        raise XapiFailure("HA_IS_ENABLED")
    if host == ctx.pool()["master"]:
        return
    ctx.assert_live(host)
    make_master(ctx, host)


@api("pool.emergency_transition_to_master")
def emergency_transition_to_master(ctx: Context) -> None:
    """Xapi_pool.emergency_transition_to_master: refused under HA; the host serving the call (a slave, reached
    with a slave-local session) becomes master on its copy of the database (Xapi_pool_transition.become_master).
    Like xapi it does not check that the old master is dead: the operator vouches for that."""
    if ctx.ha.enabled:
        raise XapiFailure("HA_IS_ENABLED")
    if ctx.host is not None and ctx.host != ctx.pool()["master"]:
        make_master(ctx, ctx.host)


def make_master(ctx: Context, host: str) -> None:
    """pool.master moves; a master change restarts xapi on every host, so no session survives it.
    The old master, if it answers at all, is a slave: HOST_IS_SLAVE naming the new one."""
    if ctx.pool()["master"] != NULL_REF:
        ctx.sessions.clear()
        ctx.cond.notify_all()
    ctx.ha.due = None
    ctx.store.update(ctx.pool_ref, master=host)
    ctx.on_master_change()


def master_died(ctx: Context) -> None:
    """Xapi_ha: xhad sees the master leave the liveset; after the HA timeout a survivor takes over."""
    if ctx.ha.enabled:
        ctx.ha.due = time.monotonic() + ctx.ha.delay


def ha_elect(ctx: Context, now: float) -> None:
    """Xapi_ha.on_master_failure, once the delay is over: the first live host (in join order) becomes master."""
    if ctx.ha.due is None or now < ctx.ha.due:
        return
    ctx.ha.due = None
    survivor = next((h for h in ctx.store.refs("host") if ctx.is_live(h)), None)
    if survivor is not None and not ctx.is_live(ctx.pool()["master"]):
        make_master(ctx, survivor)


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
