"""The data model: every field xapi's datamodel declares for each class the lab has, with its default.

One table (ocaml/idl/datamodel.ml, datamodel_host.ml, datamodel_vm.ml, datamodel_pool.ml): a field is
`"kind[ rw][ =default]"`; kinds are str, int, float, bool, ref, datetime, set (of strings), intset
and map (string to string). Enums are str. A default is a Python literal; without one it is the kind's.
"""

from __future__ import annotations

import ast
import dataclasses
import ipaddress
import random
import re
import time
import xmlrpc.client
from typing import Any

from sdnctl.lab.xapi.errors import XapiFailure

NULL_REF = "OpaqueRef:NULL"
_EPOCH_DATE = "19700101T00:00:00Z"


@dataclasses.dataclass(frozen=True)
class Field:
    kind: str
    writable: bool
    default: Any


def _field(spec: str) -> Field:
    head, _, literal = spec.partition(" =")
    kind, *flags = head.split()
    return Field(kind, "rw" in flags, ast.literal_eval(literal) if literal else _KIND_DEFAULTS[kind])


_KIND_DEFAULTS: dict[str, Any] = {"str": "", "int": 0, "float": 0.0, "bool": False, "ref": NULL_REF,
                                  "datetime": _EPOCH_DATE, "set": [], "intset": [], "map": {}}

_NAMES = {"name_label": "str rw", "name_description": "str rw"}
_OPERATIONS = {"allowed_operations": "set", "current_operations": "map"}

_SPECS: dict[str, dict[str, str]] = {
    # datamodel_pool.ml
    "pool": _NAMES | _OPERATIONS | {
        "master": "ref", "default_SR": "ref rw", "suspend_image_SR": "ref rw", "crash_dump_SR": "ref rw",
        "other_config": "map rw", "ha_enabled": "bool", "ha_configuration": "map", "ha_statefiles": "set",
        "ha_host_failures_to_tolerate": "int", "ha_plan_exists_for": "int", "ha_allow_overcommit": "bool",
        "ha_overcommitted": "bool", "blobs": "map", "tags": "set rw", "gui_config": "map rw",
        "health_check_config": "map rw", "wlb_url": "str", "wlb_username": "str", "wlb_enabled": "bool rw",
        "wlb_verify_cert": "bool rw", "redo_log_enabled": "bool", "redo_log_vdi": "ref",
        "vswitch_controller": "str", "restrictions": "map", "metadata_VDIs": "set",
        "ha_cluster_stack": "str ='xhad'", "guest_agent_config": "map", "cpu_info": "map",
        "policy_no_vendor_device": "bool rw", "live_patching_disabled": "bool rw",
        "igmp_snooping_enabled": "bool", "uefi_certificates": "str", "custom_uefi_certificates": "str",
        "is_psr_pending": "bool", "tls_verification_enabled": "bool", "repositories": "set",
        "client_certificate_auth_enabled": "bool", "client_certificate_auth_name": "str",
        "repository_proxy_url": "str", "repository_proxy_username": "str", "repository_proxy_password": "ref",
        "migration_compression": "bool rw", "coordinator_bias": "bool rw =True", "telemetry_uuid": "ref",
        "telemetry_frequency": "str ='weekly'", "telemetry_next_collection": "datetime",
        "last_update_sync": "datetime", "update_sync_frequency": "str ='weekly'", "update_sync_day": "int",
        "update_sync_enabled": "bool", "recommendations": "map", "license_server": "map",
        "ha_reboot_vm_on_internal_shutdown": "bool =True", "ext_auth_max_threads": "int =1",
        "local_auth_max_threads": "int =8", "ext_auth_cache_enabled": "bool", "ext_auth_cache_size": "int =50",
        "ext_auth_cache_expiry": "int =300"},
    # datamodel_host.ml
    "host": _NAMES | _OPERATIONS | {
        "memory_overhead": "int", "API_version_major": "int", "API_version_minor": "int",
        "API_version_vendor": "str ='XenSource'", "API_version_vendor_implementation": "map",
        "enabled": "bool", "software_version": "map", "other_config": "map rw", "capabilities": "set",
        "cpu_configuration": "map", "sched_policy": "str ='credit'", "supported_bootloaders": "set",
        "resident_VMs": "set", "logging": "map rw", "PIFs": "set", "suspend_image_sr": "ref rw",
        "crash_dump_sr": "ref rw", "crashdumps": "set", "patches": "set", "updates": "set", "PBDs": "set",
        "host_CPUs": "set", "cpu_info": "map", "hostname": "str", "address": "str", "metrics": "ref",
        "license_params": "map", "ha_statefiles": "set", "ha_network_peers": "set", "blobs": "map",
        "tags": "set rw", "external_auth_type": "str", "external_auth_service_name": "str",
        "external_auth_configuration": "map", "edition": "str ='xcp-ng'", "license_server": "map rw",
        "bios_strings": "map", "power_on_mode": "str", "power_on_config": "map", "local_cache_sr": "ref",
        # Create_misc fills chipset_info at start of day; the lab's hosts have no IOMMU.
        "chipset_info": "map ={'iommu': 'false'}", "PCIs": "set", "PGPUs": "set", "PUSBs": "set",
        "ssl_legacy": "bool", "guest_VCPUs_params": "map rw", "display": "str ='enabled'",
        "virtual_hardware_platform_versions": "intset =[0, 1, 2]", "control_domain": "ref",
        "updates_requiring_reboot": "set", "features": "set", "iscsi_iqn": "str", "multipathing": "bool",
        "uefi_certificates": "str", "certificates": "set", "editions": "set", "pending_guidances": "set",
        "tls_verification_enabled": "bool", "last_software_update": "datetime", "https_only": "bool",
        "latest_synced_updates_applied": "str ='unknown'", "numa_affinity_policy": "str ='default_policy'",
        "pending_guidances_recommended": "set", "pending_guidances_full": "set", "last_update_hash": "str"},
    "host_metrics": {"memory_total": "int", "memory_free": "int", "live": "bool", "last_updated": "datetime",
                     "other_config": "map rw"},
    # datamodel.ml
    "PIF": {"device": "str", "network": "ref", "host": "ref", "MAC": "str", "MTU": "int", "VLAN": "int =-1",
            "metrics": "ref", "physical": "bool", "currently_attached": "bool",
            "ip_configuration_mode": "str ='None'", "IP": "str", "netmask": "str", "gateway": "str",
            "DNS": "str", "bond_slave_of": "ref", "bond_master_of": "set", "VLAN_master_of": "ref",
            "VLAN_slave_of": "set", "management": "bool", "other_config": "map rw", "disallow_unplug": "bool rw",
            "tunnel_access_PIF_of": "set", "tunnel_transport_PIF_of": "set",
            "ipv6_configuration_mode": "str ='None'", "IPv6": "set", "ipv6_gateway": "str",
            "primary_address_type": "str ='IPv4'", "managed": "bool =True", "properties": "map",
            "capabilities": "set", "igmp_snooping_status": "str ='unknown'", "sriov_physical_PIF_of": "set",
            "sriov_logical_PIF_of": "set", "PCI": "ref"},
    "network": _NAMES | _OPERATIONS | {
        "VIFs": "set", "PIFs": "set", "MTU": "int rw =1500", "other_config": "map rw", "bridge": "str",
        "managed": "bool =True", "blobs": "map", "tags": "set rw", "default_locking_mode": "str ='unlocked'",
        "assigned_ips": "map", "purpose": "set"},
    # Bond.slaves is what xapi computes from PIF.bond_slave_of; mode and properties change by Bond.set_mode and
    # Bond.set_property, not generated setters.
    "Bond": {"master": "ref", "slaves": "set", "other_config": "map rw", "primary_slave": "ref",
             "mode": "str ='balance-slb'", "properties": "map", "links_up": "int", "auto_update_mac": "bool =True"},
    "VLAN": {"tagged_PIF": "ref", "untagged_PIF": "ref", "tag": "int =-1", "other_config": "map rw"},
    "tunnel": {"access_PIF": "ref", "transport_PIF": "ref", "status": "map rw", "other_config": "map rw",
               "protocol": "str rw ='gre'"},
    "VIF": _OPERATIONS | {
        "device": "str", "network": "ref", "VM": "ref", "MAC": "str", "MTU": "int", "other_config": "map rw",
        "currently_attached": "bool", "status_code": "int", "status_detail": "str",
        "runtime_properties": "map", "qos_algorithm_type": "str rw", "qos_algorithm_params": "map rw",
        "qos_supported_algorithms": "set", "metrics": "ref", "MAC_autogenerated": "bool",
        "locking_mode": "str ='network_default'", "ipv4_allowed": "set", "ipv6_allowed": "set",
        "ipv4_configuration_mode": "str ='None'", "ipv4_addresses": "set", "ipv4_gateway": "str",
        "ipv6_configuration_mode": "str ='None'", "ipv6_addresses": "set", "ipv6_gateway": "str"},
    # datamodel_vm.ml
    "VM": _NAMES | _OPERATIONS | {
        "power_state": "str ='Halted'", "user_version": "int rw =1", "is_a_template": "bool rw",
        "is_default_template": "bool", "suspend_VDI": "ref", "resident_on": "ref", "scheduled_to_be_resident_on": "ref",
        "affinity": "ref rw", "memory_overhead": "int", "memory_target": "int", "memory_static_max": "int rw",
        "memory_dynamic_max": "int rw", "memory_dynamic_min": "int rw", "memory_static_min": "int rw",
        "VCPUs_params": "map rw", "VCPUs_max": "int =1", "VCPUs_at_startup": "int =1",
        "actions_after_softreboot": "str rw ='soft_reboot'", "actions_after_shutdown": "str rw ='destroy'",
        "actions_after_reboot": "str rw ='restart'", "actions_after_crash": "str rw ='restart'",
        "consoles": "set", "VIFs": "set", "VBDs": "set", "VUSBs": "set", "crash_dumps": "set", "VTPMs": "set",
        "PV_bootloader": "str rw", "PV_kernel": "str rw", "PV_ramdisk": "str rw", "PV_args": "str rw",
        "PV_bootloader_args": "str rw", "PV_legacy_args": "str rw", "HVM_boot_policy": "str rw",
        "HVM_boot_params": "map rw", "HVM_shadow_multiplier": "float rw =1.0", "platform": "map rw",
        "PCI_bus": "str rw", "other_config": "map rw", "domid": "int =-1", "domarch": "str",
        "last_boot_CPU_flags": "map", "is_control_domain": "bool", "metrics": "ref", "guest_metrics": "ref",
        "last_booted_record": "str", "recommendations": "str rw", "xenstore_data": "map rw",
        "ha_always_run": "bool", "ha_restart_priority": "str rw", "is_a_snapshot": "bool",
        "snapshot_of": "ref", "snapshots": "set", "snapshot_time": "datetime", "transportable_snapshot_id": "str",
        "blobs": "map", "tags": "set rw", "blocked_operations": "map rw", "snapshot_info": "map",
        "snapshot_metadata": "str", "parent": "ref", "children": "set", "bios_strings": "map",
        "protection_policy": "ref", "is_snapshot_from_vmpp": "bool", "snapshot_schedule": "ref rw",
        "is_vmss_snapshot": "bool", "appliance": "ref rw", "start_delay": "int rw", "shutdown_delay": "int rw",
        "order": "int rw", "VGPUs": "set", "attached_PCIs": "set", "suspend_SR": "ref rw", "version": "int",
        "generation_id": "str", "hardware_platform_version": "int rw", "has_vendor_device": "bool rw",
        "requires_reboot": "bool", "reference_label": "str", "domain_type": "str ='unspecified'",
        "NVRAM": "map rw", "pending_guidances": "set", "pending_guidances_recommended": "set",
        "pending_guidances_full": "set"},
    "SDN_controller": {"protocol": "str ='ssl'", "address": "str", "port": "int"},
    "Certificate": {"name": "str", "type": "str ='host'", "host": "ref", "not_before": "datetime",
                    "not_after": "datetime", "fingerprint": "str", "fingerprint_sha256": "str",
                    "fingerprint_sha1": "str", "purpose": "set"},
    # datamodel.ml's task: what Async.* calls report
    "task": _NAMES | _OPERATIONS | {
        "created": "datetime", "finished": "datetime", "status": "str ='pending'", "resident_on": "ref",
        "progress": "float", "type": "str", "result": "str", "error_info": "set", "other_config": "map rw",
        "subtask_of": "ref", "subtasks": "set", "backtrace": "str ='()'"},
}

SCHEMA: dict[str, dict[str, Field]] = {cls: {name: _field(spec) for name, spec in fields.items()}
                                       for cls, fields in _SPECS.items()}

# One-to-many links xapi keeps on both sides: (class, ref field) -> the set field of the target.
BACKREFS: dict[str, dict[str, str]] = {
    "PIF": {"host": "PIFs", "network": "PIFs", "bond_slave_of": "slaves"},
    "Bond": {"master": "bond_master_of"},
    "VLAN": {"tagged_PIF": "VLAN_slave_of"},
    "VIF": {"VM": "VIFs", "network": "VIFs"},
    "VM": {"resident_on": "resident_VMs"},
    "tunnel": {"access_PIF": "tunnel_access_PIF_of", "transport_PIF": "tunnel_transport_PIF_of"},
    "Certificate": {"host": "certificates"},
}
CLASSES_BY_NAME_LABEL = {"host", "network", "VM", "task"}


class Int32(int):
    """An int xapi marshals as an XML-RPC <int> (event.from's valid_ref_counts), not as a string."""


def fresh(field: Field) -> Any:
    """A new copy of the field's default, safe to store."""
    if field.kind == "datetime":
        return xmlrpc.client.DateTime(field.default)
    return list(field.default) if isinstance(field.default, list) else \
        dict(field.default) if isinstance(field.default, dict) else field.default


def coerce(kind: str, value: Any, field: str) -> Any:
    """A wire value checked (FIELD_TYPE_ERROR) and put in the form the store keeps: ints as ints.

    Over XML-RPC xapi's ints travel as decimal strings, over JSON-RPC as numbers: both are accepted.
    """
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            return int(value)
    elif kind == "float" and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    elif kind == "bool" and isinstance(value, bool):
        return value
    elif kind in ("str", "ref") and isinstance(value, str):
        return value
    elif kind == "set" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    elif kind == "intset" and isinstance(value, list):
        return [coerce("int", v, field) for v in value]
    elif kind == "map" and isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return dict(value)
    elif kind == "datetime" and isinstance(value, (str, xmlrpc.client.DateTime)):
        return xmlrpc.client.DateTime(value if isinstance(value, str) else value.value)
    raise XapiFailure("FIELD_TYPE_ERROR", field)


def record_values(cls: str, record: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """The given fields of a create() record, coerced; absent fields keep their defaults."""
    if not isinstance(record, dict):
        raise XapiFailure("FIELD_TYPE_ERROR", "args")
    return {f: coerce(SCHEMA[cls][f].kind, record[f], f) for f in fields if f in record}


def assert_ipv4(value: Any, error: Exception) -> None:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise error from None


def now() -> xmlrpc.client.DateTime:
    return xmlrpc.client.DateTime(time.strftime("%Y%m%dT%H:%M:%SZ", time.gmtime()))


def date(moment) -> xmlrpc.client.DateTime:
    return xmlrpc.client.DateTime(moment.strftime("%Y%m%dT%H:%M:%SZ"))


def random_mac() -> str:
    octets = [0x02 | (random.getrandbits(8) & 0xFC)] + [random.getrandbits(8) for _ in range(5)]
    return ":".join(f"{o:02x}" for o in octets)
