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
    source = record["resident_on"]
    _schedule(ctx, vm, host, "Running", source)
    attached = [v for v in record["VIFs"] if ctx.store.record("VIF", v)["currently_attached"]]
    for ref in attached:
        vif.detach(ctx, ref)
    # (xenopsd plugs the destination's VIF ports before the source's go; here they go first, then come back.)
    ctx.store.update(vm, resident_on=host, domid=ctx.dom0s[host].take_domid())
    update_allowed_operations(ctx, vm)
    for ref in attached:
        vif.attach(ctx, ref)
    ctx.store.update(vm, scheduled_to_be_resident_on=NULL_REF)


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


def _schedule(ctx: Context, vm: str, host: str, power_state: str, resident_on: str) -> None:
    """xapi's order on start, resume and migration: the master sets `scheduled_to_be_resident_on` to the host
    (message_forwarding.ml, allocate_vm_to_host, from forward_to_suitable_host / reserve_memory_for_vm) before it
    forwards the call; xenopsd then builds the domain and plugs its VIFs (Xapi_xenops.start: Client.VM.start),
    and only then `resident_on` is set (Xapi_xenops.set_resident_on) and `scheduled_to_be_resident_on` cleared
    (the `finally` of reserve_memory_for_vm). The build takes `ctx.domain_build` seconds, the lock let go."""
    ctx.store.update(vm, scheduled_to_be_resident_on=host)
    ctx.pause(ctx.domain_build)
    record = ctx.store.record("VM", vm)
    if record["power_state"] != power_state or record["resident_on"] != resident_on or not ctx.is_live(host):
        ctx.store.update(vm, scheduled_to_be_resident_on=NULL_REF)
        ctx.assert_live(host)
        raise XapiFailure("VM_BAD_POWER_STATE", vm, power_state.lower(), record["power_state"].lower())


def _boot(ctx: Context, vm: str, host: str, paused: bool) -> None:
    _schedule(ctx, vm, host, "Halted", NULL_REF)
    ctx.store.update(vm, domid=ctx.dom0s[host].take_domid())
    for ref in ctx.store.record("VM", vm)["VIFs"]:
        vif.attach(ctx, ref, host)      # the VIF ports appear before resident_on is set
    ctx.store.update(vm, power_state="Paused" if paused else "Running", resident_on=host,
                     scheduled_to_be_resident_on=NULL_REF)
    update_allowed_operations(ctx, vm)
