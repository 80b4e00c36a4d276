"""Which power states allow an operation (xapi's Xapi_vm_lifecycle)."""

from __future__ import annotations

from typing import Any

from sdnctl.lab.xapi.context import Context
from sdnctl.lab.xapi.errors import XapiFailure


def assert_power_state_in(ctx: Context, vm: Any, *allowed: str) -> dict[str, Any]:
    """Xapi_vm_lifecycle.assert_initial_power_state_in; dom0 is never operated on. Returns the record."""
    record = ctx.store.record("VM", vm)
    if record["is_control_domain"]:
        raise XapiFailure("OPERATION_NOT_ALLOWED", "Operations on the control domain are not allowed")
    if record["power_state"] not in allowed:
        raise XapiFailure("VM_BAD_POWER_STATE", vm, allowed[0].lower(), record["power_state"].lower())
    return record


def assert_not_template(ctx: Context, vm: Any, op: str) -> None:
    """Xapi_vm_lifecycle.check_template and check_snapshot: a template or a snapshot cannot be started."""
    record = ctx.store.record("VM", vm)
    if record["is_a_template"]:
        raise XapiFailure("VM_IS_TEMPLATE", vm, op)
    if record["is_a_snapshot"]:
        raise XapiFailure("VM_IS_SNAPSHOT", vm, op)


# The operations of the lab's own VM messages each power state allows (Xapi_vm_lifecycle.allowed_power_states).
_ALLOWED = {"Halted": ["start", "start_on", "destroy"],
            "Running": ["clean_shutdown", "hard_shutdown", "pool_migrate"], "Paused": ["hard_shutdown"]}


def update_allowed_operations(ctx: Context, vm: str) -> None:
    """Xapi_vm_lifecycle.update_allowed_operations: what the VM's power state allows (none for dom0)."""
    record = ctx.store.record("VM", vm)
    allowed = [] if record["is_control_domain"] else _ALLOWED.get(record["power_state"], [])
    if record["allowed_operations"] != allowed:
        ctx.store.update(vm, allowed_operations=list(allowed))
