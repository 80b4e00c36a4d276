"""VM.*: the power cycle (start, migrate, shut down) and the VIFs that follow it."""

from __future__ import annotations

from typing import Any

from sdnctl.lab.xapi import vif
from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.errors import XapiFailure
from sdnctl.lab.xapi.messages import api
from sdnctl.lab.xapi.schema import NULL_REF, coerce
from sdnctl.lab.xapi.vm_lifecycle import assert_not_template, assert_power_state_in, update_allowed_operations


@api("VM.start")
def start(ctx: Context, vm: Any, start_paused: Any, force: Any) -> None:
    """Xapi_vm.start: on the master if it can, else the first live, enabled host."""
    assert_not_template(ctx, vm, "start")
    assert_power_state_in(ctx, vm, "Halted")
    candidates = [ctx.pool()["master"], *ctx.store.refs("host")]
    host = next((h for h in candidates if ctx.is_live(h) and ctx.store.record("host", h)["enabled"]), None)
    if host is None:
        raise XapiFailure("NO_HOSTS_AVAILABLE")
    _boot(ctx, vm, host, coerce("bool", start_paused, "start_paused"))


@api("VM.start_on")
def start_on(ctx: Context, vm: Any, host: Any, start_paused: Any, force: Any) -> None:
    assert_not_template(ctx, vm, "start_on")
    assert_power_state_in(ctx, vm, "Halted")
    if not ctx.store.record("host", host)["enabled"]:
        raise XapiFailure("HOST_DISABLED", host)
    ctx.assert_live(host)
    _boot(ctx, vm, host, coerce("bool", start_paused, "start_paused"))


@api("VM.pool_migrate")
def pool_migrate(ctx: Context, vm: Any, host: Any, options: Any) -> None:
    """Xapi_vm_migrate.pool_migrate: the attached VIFs leave the old host and come up on the new one."""
    record = assert_power_state_in(ctx, vm, "Running")
    coerce("map", options, "options")
    ctx.store.record("host", host)
    ctx.assert_live(record["resident_on"])
    ctx.assert_live(host)
    attached = [v for v in record["VIFs"] if ctx.store.record("VIF", v)["currently_attached"]]
    for ref in attached:
        vif.detach(ctx, ref)
    ctx.store.update(vm, resident_on=host, domid=ctx.dom0s[host].take_domid())
    update_allowed_operations(ctx, vm)
    for ref in attached:
        vif.attach(ctx, ref)


@api("VM.clean_shutdown")
def clean_shutdown(ctx: Context, vm: Any) -> None:
    ctx.assert_live(assert_power_state_in(ctx, vm, "Running")["resident_on"])
    halt(ctx, vm)


@api("VM.hard_shutdown")
def hard_shutdown(ctx: Context, vm: Any) -> None:
    ctx.assert_live(assert_power_state_in(ctx, vm, "Running", "Paused")["resident_on"])
    halt(ctx, vm)


@api("VM.destroy")
def destroy(ctx: Context, vm: Any) -> None:
    for ref in list(assert_power_state_in(ctx, vm, "Halted")["VIFs"]):
        ctx.store.delete(ref)
    ctx.store.delete(vm)
    ctx.guest_ips.pop(vm, None)


def create(ctx: Context, name_label: str, guest_ip: str | None) -> str:
    """A halted guest VM; `guest_ip` is what its VIFs carry in the lab's data plane."""
    vm = ctx.store.create("VM", name_label=name_label, power_state="Halted")
    update_allowed_operations(ctx, vm)
    ctx.guest_ips[vm] = guest_ip
    return vm


def halt(ctx: Context, vm: str) -> None:
    for ref in ctx.store.record("VM", vm)["VIFs"]:
        if ctx.store.record("VIF", ref)["currently_attached"]:
            vif.detach(ctx, ref)
    ctx.store.update(vm, power_state="Halted", resident_on=NULL_REF, domid=-1)
    update_allowed_operations(ctx, vm)


def _boot(ctx: Context, vm: str, host: str, paused: bool) -> None:
    ctx.store.update(vm, power_state="Paused" if paused else "Running", resident_on=host,
                     domid=ctx.dom0s[host].take_domid())
    update_allowed_operations(ctx, vm)
    for ref in ctx.store.record("VM", vm)["VIFs"]:
        vif.attach(ctx, ref)
