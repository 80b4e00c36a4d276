"""The simulator's order of a VM start and a migration, as xapi's: `scheduled_to_be_resident_on` first, for as
long as xenopsd takes to build the domain (the VIF is not attached yet, its port not on the switch), then the
VIF ports and `resident_on`, then `scheduled_to_be_resident_on` cleared (message_forwarding.ml
allocate_vm_to_host / reserve_memory_for_vm; Xapi_xenops.start then set_resident_on). sdnctl puts a ruled
VIF's `to` rules on the scheduled host in that window (docs/rules.md, Admission)."""

from __future__ import annotations

import threading
import time


from tests.lab.test_xapi_sim import private_network
from tests.waiting import wait_for

NULL = "OpaqueRef:NULL"


def _in_background(call, *args) -> threading.Thread:
    thread = threading.Thread(target=call, args=args, daemon=True)
    thread.start()
    return thread


def _vm_with_a_vif(sim_pool) -> tuple:
    """(a session, the pool's two hosts, a halted VM, its VIF on a private network)."""
    x = sim_pool.login().xenapi
    first, second = sim_pool.hosts
    vm = sim_pool.sim.create_vm("web", "192.168.7.10")
    vif = x.VIF.create({"device": "0", "network": private_network(x), "VM": vm, "MAC": "", "MTU": "1400",
                        "other_config": {}})
    return x, first, second, vm, vif


def test_a_start_schedules_the_vm_on_its_host_before_its_vifs_come_up(sim_pool):
    x, first, second, vm, vif = _vm_with_a_vif(sim_pool)
    started = time.monotonic()
    # A session per thread: XenAPI's is not thread-safe.
    starter = _in_background(sim_pool.login().xenapi.VM.start_on, vm, second, False, False)
    wait_for(lambda: x.VM.get_scheduled_to_be_resident_on(vm) == second, timeout=5, what="VM scheduled on host 2")
    during = x.VM.get_record(vm)
    assert (during["power_state"], during["resident_on"]) == ("Halted", NULL)
    assert x.VIF.get_currently_attached(vif) is False        # no port yet: the domain is being built
    starter.join(timeout=10)
    assert time.monotonic() - started >= 0.5
    after = x.VM.get_record(vm)
    assert (after["power_state"], after["resident_on"], after["scheduled_to_be_resident_on"]) == (
        "Running", second, NULL)
    assert x.VIF.get_currently_attached(vif) is True


def test_a_migration_schedules_the_vm_on_its_destination_while_it_still_runs_on_its_source(sim_pool):
    x, first, second, vm, vif = _vm_with_a_vif(sim_pool)
    x.VM.start_on(vm, first, False, False)
    migrator = _in_background(sim_pool.login().xenapi.VM.pool_migrate, vm, second, {})
    wait_for(lambda: x.VM.get_scheduled_to_be_resident_on(vm) == second, timeout=5, what="VM scheduled on host 2")
    assert (x.VM.get_resident_on(vm), x.VIF.get_currently_attached(vif)) == (first, True)
    migrator.join(timeout=10)
    assert (x.VM.get_resident_on(vm), x.VM.get_scheduled_to_be_resident_on(vm)) == (second, NULL)


def test_event_from_sees_the_scheduling_in_its_own_batch_before_the_vif_is_attached(sim_pool):
    x = sim_pool.login().xenapi
    first, _ = sim_pool.hosts
    vm = sim_pool.sim.create_vm("web", "192.168.7.10")
    vif = x.VIF.create({"device": "0", "network": private_network(x), "VM": vm, "MAC": "", "MTU": "1400",
                        "other_config": {}})
    token = x.event_from(["vm", "vif"], "", 0.0)["token"]
    starter = _in_background(sim_pool.login().xenapi.VM.start_on, vm, first, False, False)
    batch = x.event_from(["vm", "vif"], token, 5.0)
    snapshots = {e["class"].lower(): e["snapshot"] for e in batch["events"] if e["ref"] in (vm, vif)}
    assert snapshots["vm"]["scheduled_to_be_resident_on"] == first and snapshots["vm"]["resident_on"] == NULL
    assert "vif" not in snapshots or snapshots["vif"]["currently_attached"] is False
    starter.join(timeout=10)
