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
