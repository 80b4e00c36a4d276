"""XAPI's call semantics, wire and records in the simulator, over the wire with the real XenAPI client.

Each test names the xen-api function whose behaviour it asserts. Pools listen on 127.83.N (octet 83).
"""

from __future__ import annotations

import datetime
import itertools
import json
import subprocess
import urllib.request
import xmlrpc.client

import pytest
from cryptography import x509

from sdnctl import certs
from sdnctl.lab.xapi.schema import SCHEMA
from tests.lab.simpool import PASSWORD
from tests.lab.test_xapi_sim import failure, pif_on, private_network, vsctl
from tests.waiting import wait_for

NOW = datetime.datetime.now(datetime.timezone.utc)
_subnets = itertools.count(1)


@pytest.fixture
def pool(make_sim_pool):
    return make_sim_pool(2, subnet=f"127.83.{next(_subnets)}")


@pytest.fixture
def ovs_pool(make_sim_pool, ovs_hosts):
    subnet = f"127.83.{100 + next(_subnets)}"
    backends = [ovs_hosts(f"h{h}", f"{subnet}.{h}") for h in (1, 2)]
    return make_sim_pool(2, backends=backends, subnet=subnet), backends


def jsonrpc(pool, method, *params):
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}).encode()
    request = urllib.request.Request(pool.url() + "jsonrpc", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def running_vm_on_tunnel(pool, x):
    """A running VM on host 1 with a VIF on a private network whose tunnel sits on host 1's eth1."""
    network = private_network(x)
    tunnel = x.tunnel.create(pif_on(x, pool.hosts[0], "eth1"), network, "gre")
    vm = pool.sim.create_vm("guest")
    vif = x.VIF.create({"device": "0", "network": network, "VM": vm, "MAC": "", "MTU": "1400",
                        "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
    x.VM.start_on(vm, pool.hosts[0], False, False)
    return network, tunnel, vm, vif


# --- the wire ------------------------------------------------------------------------------------
def test_ints_are_json_numbers_and_xmlrpc_strings(pool):
    """xen-api's JSON-RPC marshals int64 as numbers; only XML-RPC carries them as strings."""
    session = jsonrpc(pool, "session.login_with_password", "root", PASSWORD, "1.0", "xo")["result"]
    eth1 = pif_on(pool.login().xenapi, pool.hosts[0], "eth1")
    record = jsonrpc(pool, "PIF.get_record", session, eth1)["result"]
    assert (record["MTU"], record["VLAN"]) == (1500, -1)
    controller = jsonrpc(pool, "SDN_controller.introduce", session, "pssl")["result"]
    assert jsonrpc(pool, "SDN_controller.get_port", session, controller)["result"] == 0    # XO: port === 0
    x = pool.login().xenapi
    assert (x.PIF.get_MTU(eth1), x.SDN_controller.get_port(controller)) == ("1500", "0")
    assert x.host.get_virtual_hardware_platform_versions(pool.hosts[0]) == ["0", "1", "2"]


def test_system_list_methods_on_both_wires(pool):
    """system.listMethods needs no session and names hand-written and generated messages alike."""
    methods = xmlrpc.client.ServerProxy(pool.url()).system.listMethods()["Value"]
    assert {"VM.get_platform", "VM.set_platform", "VM.add_to_platform", "pool.get_ha_statefiles",
            "Async.VM.start", "Async.VIF.plug", "host.call_plugin", "session.get_this_host"} <= set(methods)
    assert "network.set_bridge" not in methods
    assert jsonrpc(pool, "system.listMethods")["result"] == methods
    assert pool.login().xenapi.system.listMethods() == methods      # the SDK sends its session: ignored


def test_session_get_this_host(pool):
    """Db.Session.get_this_host: the host the session logged in to, the master."""
    session = pool.login()
    assert session.xenapi.session.get_this_host(session.handle) == pool.hosts[0]
    assert failure(session.xenapi.session.get_this_host, "OpaqueRef:nope") == \
        ["HANDLE_INVALID", "session", "OpaqueRef:nope"]


def test_event_from_counts_every_class(pool):
    """Xapi_event.from: valid_ref_counts counts the objects of every table, whatever was subscribed."""
    x = pool.login().xenapi
    result = x.event_from(["network"], "", 0.0)
    counts = {cls: int(n) for cls, n in result["valid_ref_counts"].items()}
    assert counts["host"] == len(x.host.get_all()) and counts["network"] == len(x.network.get_all())
    assert counts["vm"] == len(x.VM.get_all()) and set(counts) >= {"pif", "tunnel", "vif", "task", "pool"}


def test_a_template_cannot_start(pool):
    """Xapi_vm_lifecycle.check_template: VM_IS_TEMPLATE [vm; operation]."""
    x = pool.login().xenapi
    template = pool.sim.create_vm("a template")
    x.VM.set_is_a_template(template, True)
    assert failure(x.VM.start, template, False, False) == ["VM_IS_TEMPLATE", template, "start"]
    assert failure(x.VM.start_on, template, pool.hosts[0], False, False) == ["VM_IS_TEMPLATE", template, "start_on"]


# --- records -------------------------------------------------------------------------------------
def test_records_carry_every_datamodel_field_with_its_default(pool):
    """ocaml/idl/datamodel*.ml: every field of each class, with xapi's defaults; getters for all."""
    x = pool.login().xenapi
    for cls in ("pool", "host", "host_metrics", "PIF", "network", "VM", "Certificate"):
        for record in getattr(x, cls).get_all_records().values():
            assert set(record) == {"uuid", *SCHEMA[cls]}, cls
    pool_record = x.pool.get_record(x.pool.get_all()[0])
    assert (pool_record["ha_statefiles"], pool_record["restrictions"], pool_record["ha_cluster_stack"]) == \
        ([], {}, "xhad")
    host = x.host.get_record(pool.hosts[0])
    assert host["chipset_info"] == {"iommu": "false"} and host["software_version"]["product_brand"] == "XCP-ng"
    vm = pool.sim.create_vm("guest")
    record = x.VM.get_record(vm)
    assert (record["allowed_operations"], record["current_operations"], record["platform"]) == \
        (["start", "start_on", "destroy"], {}, {})
    assert (record["HVM_shadow_multiplier"], record["actions_after_crash"], record["domid"]) == (1.0, "restart", "-1")
    x.VM.add_to_platform(vm, "viridian", "true")
    assert x.VM.get_platform(vm) == {"viridian": "true"}
    x.VM.set_HVM_boot_policy(vm, "BIOS order")
    assert x.VM.get_HVM_boot_policy(vm) == "BIOS order"


# --- network.create, tunnel.create, PIFs ---------------------------------------------------------
def test_network_create_checks_like_xapi(pool):
    """Xapi_network.create: MTU <= 0 is 1500, bridge names from a counter never reused, bad bridges refused."""
    x = pool.login().xenapi

    def create(**fields):
        return x.network.create({"name_label": "n", "name_description": "", "other_config": {}} | fields)

    first = create(MTU="-5")
    assert (x.network.get_MTU(first), x.network.get_bridge(first)) == ("1500", "xapi0")
    x.network.destroy(first)
    assert x.network.get_bridge(create()) == "xapi1"                # xapi0 is free again, but not reused
    for bridge in ("xenbr9", "xapi7", "vif1", "tap0", "eth5", "b" * 16):
        assert failure(lambda: create(bridge=bridge)) == ["INVALID_VALUE", "bridge", bridge]
    assert x.network.get_bridge(create(bridge="mybr0")) == "mybr0"
    assert failure(lambda: create(bridge="mybr0")) == ["BRIDGE_NAME_EXISTS", "mybr0"]
    for missing in ("name_description", "other_config"):
        record = {"name_label": "n", "name_description": "", "other_config": {}}
        del record[missing]
        assert failure(x.network.create, record) == ["FIELD_TYPE_ERROR", missing]


def test_vif_in_use_blocks_unplug_and_tunnel_destroy(pool):
    """Xapi_network_attach_helpers.assert_network_has_no_vifs_in_use_on_me, via Xapi_pif.unplug and
    Xapi_tunnel.destroy: VIF_IN_USE [network; VIF] while a running VM's VIF is on the network."""
    x = pool.login().xenapi
    network, tunnel, vm, vif = running_vm_on_tunnel(pool, x)
    access = x.tunnel.get_access_PIF(tunnel)
    assert failure(x.PIF.unplug, access) == ["VIF_IN_USE", network, vif]
    assert failure(x.tunnel.destroy, tunnel) == ["VIF_IN_USE", network, vif]
    assert failure(x.PIF.unplug, x.tunnel.get_transport_PIF(tunnel)) == ["VIF_IN_USE", network, vif]
    assert x.PIF.get_currently_attached(access) is True
    x.VM.hard_shutdown(vm)
    x.tunnel.destroy(tunnel)
    assert x.tunnel.get_all() == []


def test_management_pif_keeps_its_ip(pool):
    """Xapi_pif.reconfigure_ip: PIF_IS_MANAGEMENT_INTERFACE for mode None on the management PIF."""
    x = pool.login().xenapi
    eth0 = pif_on(x, pool.hosts[1], "eth0")
    assert failure(x.PIF.reconfigure_ip, eth0, "None", "", "", "", "") == ["PIF_IS_MANAGEMENT_INTERFACE", eth0]
    assert x.PIF.get_ip_configuration_mode(eth0) == "Static"


# --- certificates and the SDN controller ---------------------------------------------------------
def test_ca_certificates_are_validated(pool):
    """Certificates.validate_name and Gencertlib.Lib.validate_not_expired with the CA errors."""
    x = pool.login().xenapi
    ca = certs.make_ca("test CA", NOW)
    assert failure(x.pool.install_ca_certificate, "sdn-ca", ca.cert_pem) == ["CERTIFICATE_NAME_INVALID", "sdn-ca"]
    expired = certs.make_ca("old CA", NOW - datetime.timedelta(days=4000))
    details = failure(x.pool.install_ca_certificate, "old.pem", expired.cert_pem)
    not_after = x509.load_pem_x509_certificate(expired.cert_pem.encode()).not_valid_after_utc
    assert details[0] == "CA_CERTIFICATE_EXPIRED" and details[2] == not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    future = certs.make_ca("new CA", NOW + datetime.timedelta(days=2))
    assert failure(x.pool.install_ca_certificate, "new.pem", future.cert_pem)[0] == "CA_CERTIFICATE_NOT_VALID_YET"
    assert failure(x.pool.install_ca_certificate, "bad.pem", "-----BEGIN CERTIFICATE-----\nxx") == \
        ["CA_CERTIFICATE_INVALID"]
    x.pool.install_ca_certificate("good.pem", ca.cert_pem)
    assert x.pool.certificate_list() == ["good.pem"]
    (record,) = [r for r in x.Certificate.get_all_records().values() if r["name"] == "good.pem"]
    assert (record["type"], record["purpose"], len(record["fingerprint_sha1"].split(":"))) == ("ca", [], 20)


def test_sdn_controller_introduce_arguments(pool):
    """Xapi_sdn_controller.introduce: optional address and port; its argument errors."""
    x = pool.login().xenapi
    assert failure(x.SDN_controller.introduce, "ssl") == ["INVALID_VALUE", "address", ""]
    assert failure(x.SDN_controller.introduce, "ssl", "10.0.0") == ["INVALID_IP_ADDRESS_SPECIFIED", "address"]
    assert failure(x.SDN_controller.introduce, "pssl", "10.0.0.1") == ["INVALID_VALUE", "address", "10.0.0.1"]
    assert failure(x.SDN_controller.introduce, "pssl", "", "6640") == ["INVALID_VALUE", "port", "6640"]
    assert failure(x.SDN_controller.introduce, "ssl", "10.0.0.1", "70000") == ["INVALID_VALUE", "port", "70000"]
    assert failure(x.SDN_controller.introduce, "pssl", "", "0", "x") == \
        ["MESSAGE_PARAMETER_COUNT_MISMATCH", "SDN_controller.introduce", "4", "5"]
    active = x.SDN_controller.introduce("ssl", "10.0.0.1")
    assert (x.SDN_controller.get_address(active), x.SDN_controller.get_port(active)) == ("10.0.0.1", "6632")
    assert failure(x.SDN_controller.introduce, "pssl")[0] == "OPERATION_NOT_ALLOWED"
    x.SDN_controller.forget(active)
    passive = x.SDN_controller.introduce("pssl")
    assert x.SDN_controller.get_record(passive) | {"uuid": ""} == \
        {"uuid": "", "protocol": "pssl", "address": "", "port": "0"}


def test_a_controller_change_resets_the_switches(ovs_pool):
    """openvswitch-config-update runs `ovs-vsctl emer-reset` when the pool's controller changes."""
    pool, (first, _) = ovs_pool
    x = pool.login().xenapi
    controller = x.SDN_controller.introduce("pssl")
    vsctl(first, "set-controller", "xenbr0", "pssl:6653:" + first.address)
    vsctl(first, "set", "bridge", "xenbr0", "fail_mode=secure")
    x.SDN_controller.forget(controller)
    assert (vsctl(first, "get-controller", "xenbr0"), vsctl(first, "get-fail-mode", "xenbr0")) == ("", "")
    assert "xenbr0" in vsctl(first, "list-br").split()             # bridges and ports stay


# --- tasks ---------------------------------------------------------------------------------------
def finished(x, task):
    return wait_for(lambda: x.task.get_status(task) != "pending" and x.task.get_record(task),
                    timeout=10.0, what=f"task {task} to finish")


def test_async_calls_run_as_tasks(pool):
    """Server_helpers.exec_with_new_task: Async.* returns a task; it ends success or failure."""
    x = pool.login().xenapi
    network, _, vm, vif = running_vm_on_tunnel(pool, x)
    x.VIF.unplug(vif)
    task = x.Async.VIF.plug(vif)
    record = finished(x, task)
    assert (record["name_label"], record["status"], record["result"], record["progress"]) == \
        ("Async.VIF.plug", "success", "", 1.0)
    assert x.VIF.get_currently_attached(vif) is True and x.VIF.get_current_operations(vif) == {}
    record = finished(x, x.Async.VM.pool_migrate(vm, pool.hosts[1], {}))
    assert record["status"] == "success" and x.VM.get_resident_on(vm) == pool.hosts[1]
    assert x.VM.get_current_operations(vm) == {}
    task = x.Async.VM.start(vm, False, False)
    record = finished(x, task)
    assert (record["status"], record["error_info"]) == ("failure", ["VM_BAD_POWER_STATE", vm, "halted", "running"])
    assert x.task.get_by_name_label("Async.VM.start") == [task]


# --- host.call_plugin ----------------------------------------------------------------------------
def ofctl_flows(host, bridge):
    dumped = subprocess.run(["ovs-ofctl", "-O", "OpenFlow11", "dump-flows", host.mgmt(bridge)],
                            capture_output=True, text=True, check=True, timeout=20).stdout
    return [line.split(" actions=")[0].split(", ")[-1] + " actions=" + line.split(" actions=")[1]
            for line in dumped.splitlines() if "actions=" in line and "priority=200" in line]


def test_call_plugin_sdncontroller_rules(ovs_pool):
    """xcp-ng-xapi-plugins' sdncontroller.py: add-rule, del-rule and dump-flows via ovs-ofctl."""
    pool, (first, _) = ovs_pool
    x = pool.login().xenapi
    host = pool.hosts[0]
    rule = {"bridge": "xenbr1", "mac": "02:00:00:00:00:01", "direction": "from/to", "protocol": "tcp",
            "iprange": "192.0.2.0/24", "port": "22", "allow": "false", "priority": "200"}
    assert x.host.call_plugin(host, "sdncontroller.py", "add-rule", rule) == "true"
    assert sorted(ofctl_flows(first, "xenbr1")) == [
        "priority=200,tcp,dl_dst=02:00:00:00:00:01,nw_src=192.0.2.0/24,tp_src=22 actions=drop",
        "priority=200,tcp,dl_src=02:00:00:00:00:01,nw_dst=192.0.2.0/24,tp_dst=22 actions=drop"]
    dumped = json.loads(x.host.call_plugin(host, "sdncontroller.py", "dump-flows", {"bridge": "xenbr1"}))
    assert dumped["returncode"] == 0 and dumped["stdout"].count("actions=drop") == 2
    del_rule = {k: v for k, v in rule.items() if k not in ("allow", "priority")} | {"direction": "to"}
    assert x.host.call_plugin(host, "sdncontroller.py", "del-rule", del_rule) == "true"
    assert [f.split(",")[2] for f in ofctl_flows(first, "xenbr1")] == ["dl_dst=02:00:00:00:00:01"]
    assert failure(x.host.call_plugin, host, "sdncontroller.py", "add-rule", rule | {"port": "99999"}) == \
        ["XENAPI_PLUGIN_FAILURE", "fault", "1", "[\"'99999' is not a valid port\"]"]
    assert failure(x.host.call_plugin, host, "sdncontroller.py", "add-rule",
                   {k: v for k, v in rule.items() if k != "port"})[:3] == ["XENAPI_PLUGIN_FAILURE", "fault", "2"]
    assert failure(x.host.call_plugin, host, "nope.py", "x", {}) == ["XENAPI_MISSING_PLUGIN", "nope.py"]
