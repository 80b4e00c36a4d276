"""The XAPI simulator, driven by the real XenAPI client (and JSON-RPC over urllib).

API-only pools use hosts without a switch (backend None); the switch side effects are checked on
real OvsHost processes, read back with ovs-vsctl. Every test listens on its own loopback subnet.
"""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
import xmlrpc.client
from collections.abc import Callable

import pytest
import XenAPI

from sdnctl import certs, tls
from sdnctl.lab.ovshost import OVSDB_PORT, OvsHost
from sdnctl.lab.xapi import SDN_CA_NAME, PoolSimulator
from tests.lab.simpool import HTTPS_PORT, PASSWORD, SimPool, next_subnet
from tests.waiting import wait_for

NOW = datetime.datetime.now(datetime.timezone.utc)


@pytest.fixture
def ovs_pool(make_sim_pool, ovs_hosts) -> Callable[[int], tuple[SimPool, list[OvsHost]]]:
    """A pool whose hosts have real switches, at 127.78.N.H."""
    def make(host_count: int = 2) -> tuple[SimPool, list[OvsHost]]:
        subnet = f"127.78.{next_subnet()}"
        backends = [ovs_hosts(f"h{h}", f"{subnet}.{h}") for h in range(1, host_count + 1)]
        return make_sim_pool(host_count, backends=backends, subnet=subnet), backends

    return make


# --- helpers -----------------------------------------------------------------------------------
def failure(call: Callable, *args) -> list[str]:
    with pytest.raises(XenAPI.Failure) as caught:
        call(*args)
    return caught.value.details


class Background:
    """A call on its own thread; `result(timeout)` returns its value (or raises), failing if still blocked."""

    def __init__(self, call: Callable, *args):
        self._outcome: dict = {}
        self.thread = threading.Thread(target=self._run, args=(call, args), daemon=True)
        self.thread.start()

    def _run(self, call, args) -> None:
        try:
            self._outcome["value"] = call(*args)
        except BaseException as exc:
            self._outcome["error"] = exc

    def result(self, timeout: float):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the call is still blocked after {timeout}s"
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["value"]


def raw_call(url: str, method: str, *params):
    """One XML-RPC call without the XenAPI client's retry-on-SESSION_INVALID."""
    return getattr(xmlrpc.client.ServerProxy(url), method)(*params)


def vsctl(host: OvsHost, *args: str) -> str:
    return subprocess.run(["ovs-vsctl", f"--db=unix:{host.dir}/db.sock", "--timeout=10", *args],
                          capture_output=True, text=True, check=True, timeout=20).stdout.strip()


def bridges(host: OvsHost) -> set[str]:
    return set(vsctl(host, "list-br").split())


def interface_external_ids(host: OvsHost, port: str) -> dict[str, str]:
    table = json.loads(vsctl(host, "--format=json", "--columns=external_ids", "list", "Interface", port))
    return dict(table["data"][0][0][1])


def pif_on(x, host: str, device: str) -> str:
    return next(ref for ref, pif in x.PIF.get_all_records().items() if pif["host"] == host and pif["device"] == device)


def private_network(x) -> str:
    return x.network.create({"name_label": "private", "name_description": "", "MTU": "1400",
                             "other_config": {"xo:sdn-controller:vni": "7"}})


def check_wire_types(value, path: str = "") -> None:
    """What xapi sends over XML-RPC: strings (ints too), booleans, doubles, lists and string-keyed maps;
    never None or an int."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), path
            check_wire_types(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            check_wire_types(item, path)
    else:
        assert isinstance(value, (str, bool, float, xmlrpc.client.DateTime)), f"{path} = {value!r}"


# --- records and the wire ----------------------------------------------------------------------
def test_records_travel_as_xapi_sends_them(sim_pool):
    x = sim_pool.login().xenapi
    for cls in ("pool", "host", "host_metrics", "PIF", "network", "VM"):
        records = getattr(x, cls).get_all_records()
        assert records, cls
        check_wire_types(records, cls)
        assert all(ref.startswith("OpaqueRef:") for ref in records)
    pool = next(iter(x.pool.get_all_records().values()))
    assert pool["master"] == sim_pool.hosts[0]
    eth1 = x.PIF.get_record(pif_on(x, sim_pool.hosts[1], "eth1"))
    assert (eth1["MTU"], eth1["VLAN"], eth1["IP"], eth1["currently_attached"]) == ("1500", "-1", "10.77.99.2", True)
    assert x.network.get_record(eth1["network"])["bridge"] == "xenbr1"
    host = x.host.get_record(sim_pool.hosts[1])
    assert eth1["uuid"] in {x.PIF.get_uuid(p) for p in host["PIFs"]}
    assert x.host_metrics.get_live(host["metrics"]) is True
    dom0 = x.VM.get_record(host["resident_VMs"][0])
    assert (dom0["is_control_domain"], dom0["domid"], dom0["power_state"]) == (True, "0", "Running")


def test_jsonrpc_shares_the_dispatcher(sim_pool):
    def post(method, *params):
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 7}).encode()
        request = urllib.request.Request(sim_pool.url() + "jsonrpc", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Type"] == "application/json"
            return json.loads(response.read())

    session = post("session.login_with_password", "root", PASSWORD, "1.0", "xo")["result"]
    networks = post("network.get_all_records", session)
    assert networks["id"] == 7 and {n["bridge"] for n in networks["result"].values()} == {"xenbr0", "xenbr1"}
    assert post("network.get_all", "OpaqueRef:nope") == {
        "jsonrpc": "2.0", "id": 7,
        "error": {"code": 1, "message": "SESSION_INVALID", "data": ["OpaqueRef:nope"]}}


def test_login_rejects_bad_credentials(sim_pool):
    session = XenAPI.Session(sim_pool.url())
    assert failure(session.login_with_password, "root", "wrong", "1.0", "test")[0] == \
        "SESSION_AUTHENTICATION_FAILED"


def test_login_on_a_slave_names_the_master(sim_pool):
    session = XenAPI.Session(sim_pool.url(1))
    assert failure(session.login_with_password, "root", PASSWORD, "1.0", "test") == \
        ["HOST_IS_SLAVE", sim_pool.addresses[0]]


@pytest.mark.parametrize("call, expected", [
    (lambda x, pool: x.PIF.get_record("OpaqueRef:missing"), ["HANDLE_INVALID", "PIF", "OpaqueRef:missing"]),
    (lambda x, pool: x.VM.get_record(pool.hosts[0]), ["HANDLE_INVALID", "VM", "{host0}"]),
    (lambda x, pool: x.VM.frobnicate(), ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"]),
    (lambda x, pool: x.network.set_bridge(pool.hosts[0], "b"), ["MESSAGE_METHOD_UNKNOWN", "network.set_bridge"]),
    (lambda x, pool: x.VM.get_record(), ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "2", "1"]),
    (lambda x, pool: x.host.get_by_uuid("nope"), ["UUID_INVALID", "host", "nope"]),
    (lambda x, pool: x.host.set_name_label(pool.hosts[0], 5), ["FIELD_TYPE_ERROR", "name_label"]),
    (lambda x, pool: x.event_from(["*"], "garbage", 0.0), ["EVENT_FROM_TOKEN_PARSE_FAILURE", "garbage"]),
], ids=["unknown-ref", "ref-of-another-class", "unknown-message", "read-only-field", "parameter-count",
        "unknown-uuid", "field-type", "token-parse"])
def test_xapi_errors(sim_pool, call, expected):
    x = sim_pool.login().xenapi
    assert failure(call, x, sim_pool) == [e.replace("{host0}", sim_pool.hosts[0]) for e in expected]


def test_map_fields_edit_like_xapi(sim_pool):
    x = sim_pool.login().xenapi
    network = private_network(x)
    x.network.add_to_other_config(network, "owner", "sdnctl")
    assert failure(x.network.add_to_other_config, network, "owner", "other") == \
        ["MAP_DUPLICATE_KEY", "network", "other_config", x.network.get_uuid(network), "owner"]
    x.network.remove_from_other_config(network, "xo:sdn-controller:vni")
    x.network.remove_from_other_config(network, "absent")
    assert x.network.get_other_config(network) == {"owner": "sdnctl"}
    assert x.network.get_by_name_label("private") == [network]


def test_logout_invalidates_the_session(sim_pool):
    session = sim_pool.login()
    handle = session.handle
    session.xenapi.session.logout()
    assert raw_call(sim_pool.url(), "pool.get_all", handle) == \
        {"Status": "Failure", "ErrorDescription": ["SESSION_INVALID", handle]}


# --- event.from ------------------------------------------------------------------------------
def test_event_from_empty_token_returns_every_object_as_add(sim_pool):
    x = sim_pool.login().xenapi
    result = x.event_from(["PIF", "VM"], "", 0.0)
    assert set(result) == {"events", "valid_ref_counts", "token"} and result["token"]
    by_class = {cls: {e["ref"]: e for e in result["events"] if e["class"] == cls} for cls in ("pif", "vm")}
    assert set(by_class["pif"]) == set(x.PIF.get_all()) and set(by_class["vm"]) == set(x.VM.get_all())
    assert {e["class"] for e in result["events"]} == {"pif", "vm"}
    for event in result["events"]:
        assert event["operation"] == "add"
        assert set(event) == {"id", "timestamp", "class", "operation", "ref", "snapshot"}
    some_pif = x.PIF.get_all()[0]
    assert by_class["pif"][some_pif]["snapshot"] == x.PIF.get_record(some_pif)


def test_event_from_coalesces_changes_into_one_snapshot(sim_pool):
    x = sim_pool.login().xenapi
    network = private_network(x)
    token = x.event_from(["network"], "", 0.0)["token"]
    x.network.set_name_label(network, "first")
    x.network.set_name_label(network, "second")
    x.network.add_to_other_config(network, "k", "v")
    events = x.event_from(["network"], token, 0.0)["events"]
    assert [(e["operation"], e["ref"]) for e in events] == [("mod", network)]
    assert events[0]["snapshot"]["name_label"] == "second" and events[0]["snapshot"]["other_config"]["k"] == "v"


def test_event_del_has_no_snapshot(sim_pool):
    x = sim_pool.login().xenapi
    network = private_network(x)
    token = x.event_from(["network"], "", 0.0)["token"]
    x.network.destroy(network)
    (event,) = x.event_from(["network"], token, 0.0)["events"]
    assert (event["operation"], event["ref"], "snapshot" in event) == ("del", network, False)


def test_event_created_and_deleted_inside_the_window_yields_nothing(sim_pool):
    x = sim_pool.login().xenapi
    token = x.event_from(["network"], "", 0.0)["token"]
    x.network.destroy(private_network(x))
    result = x.event_from(["network"], token, 0.0)
    assert result["events"] == [] and result["token"] >= token


def test_event_subscription_to_one_object(sim_pool):
    x = sim_pool.login().xenapi
    watched, other = private_network(x), private_network(x)
    token = x.event_from(["network"], "", 0.0)["token"]
    x.network.set_MTU(other, "1450")
    x.network.set_MTU(watched, "1450")
    events = x.event_from([f"network/{watched}"], token, 0.0)["events"]
    assert [e["ref"] for e in events] == [watched]


def test_event_from_times_out_with_no_events_and_a_token(sim_pool):
    x = sim_pool.login().xenapi
    token = x.event_from(["vm"], "", 0.0)["token"]
    x.network.create({"name_label": "unwatched", "name_description": "", "other_config": {}})
    started = time.monotonic()
    result = x.event_from(["vm"], token, 0.3)
    assert 0.25 <= time.monotonic() - started < 3.0
    assert result["events"] == [] and result["token"]


def test_event_from_wakes_up_on_a_change(sim_pool):
    watcher, x = sim_pool.login().xenapi, sim_pool.login().xenapi
    token = x.event_from(["network"], "", 0.0)["token"]
    waiting = Background(watcher.event_from, ["network"], token, 10.0)
    x.pool.get_all()
    network = private_network(x)
    started = time.monotonic()
    events = waiting.result(timeout=5.0)["events"]
    assert time.monotonic() - started < 5.0
    assert [(e["operation"], e["ref"]) for e in events] == [("add", network)]


def test_a_blocked_event_from_does_not_stall_other_calls(sim_pool):
    watcher, x = sim_pool.login().xenapi, sim_pool.login().xenapi
    token = x.event_from(["vm"], "", 0.0)["token"]
    waiting = Background(watcher.event_from, ["vm"], token, 5.0)
    started = time.monotonic()
    assert x.PIF.get_all_records()
    assert time.monotonic() - started < 1.0
    assert waiting.thread.is_alive()
    vm = sim_pool.sim.create_vm("wake-up")
    assert [e["ref"] for e in waiting.result(timeout=4.0)["events"]] == [vm]


def test_event_inject_bumps_the_object(sim_pool):
    x = sim_pool.login().xenapi
    pool_ref = x.pool.get_all()[0]
    token = x.event.inject("pool", pool_ref)
    events = x.event_from(["pool"], token, 0.0)["events"]
    assert [(e["class"], e["operation"], e["ref"]) for e in events] == [("pool", "mod", pool_ref)]


def test_stop_releases_blocked_event_from_callers(make_sim_pool):
    pool = make_sim_pool(1)
    watcher, x = pool.login().xenapi, pool.login().xenapi
    waiting = Background(watcher.event_from, ["vm"], x.event_from(["vm"], "", 0.0)["token"], 30.0)
    x.pool.get_all()
    pool.sim.stop()
    with pytest.raises(OSError):              # the connection closes, as a dying xapi's would
        waiting.result(timeout=5.0)


# --- sessions across restarts and master changes -----------------------------------------------
def test_restart_invalidates_sessions_but_not_event_tokens(sim_pool):
    session = sim_pool.login()
    old_handle = session.handle
    token = session.xenapi.event_from(["vm"], "", 0.0)["token"]
    sim_pool.sim.restart()
    assert raw_call(sim_pool.url(), "VM.get_all", old_handle)["ErrorDescription"] == ["SESSION_INVALID", old_handle]
    assert session.xenapi.VM.get_all()                         # the client logs in again by itself
    assert session.handle != old_handle
    assert session.xenapi.event_from(["vm"], token, 0.0)["token"]  # the database outlived xapi: no EVENTS_LOST


def test_designate_new_master_moves_the_api(sim_pool):
    session = sim_pool.login()
    new_master = sim_pool.hosts[1]
    session.xenapi.pool.designate_new_master(new_master)
    # The old session is gone; the client logs in again on the old master, which now redirects.
    assert failure(session.xenapi.pool.get_all) == ["HOST_IS_SLAVE", sim_pool.addresses[1]]
    x = sim_pool.login(1).xenapi
    assert x.pool.get_master(x.pool.get_all()[0]) == new_master == sim_pool.sim.master_ref


def test_lab_verbs_need_no_session(make_sim_pool):
    class Admin:
        def __init__(self):
            self.sim: PoolSimulator | None = None

        def vm_create(self, name, guest_ip):
            return self.sim.create_vm(name, guest_ip)

    admin = Admin()
    pool = make_sim_pool(1, admin=admin)
    admin.sim = pool.sim
    proxy = xmlrpc.client.ServerProxy(pool.url())
    created = proxy.lab.vm_create("web", "192.168.7.10")
    assert created["Status"] == "Success"
    assert pool.login().xenapi.VM.get_power_state(created["Value"]) == "Halted"
    assert proxy.lab._private()["ErrorDescription"] == ["MESSAGE_METHOD_UNKNOWN", "lab._private"]


# --- networks and tunnels ----------------------------------------------------------------------
def test_tunnel_create_plugs_an_access_pif(sim_pool):
    x = sim_pool.login().xenapi
    network = private_network(x)
    transport = pif_on(x, sim_pool.hosts[0], "eth1")
    tunnel = x.tunnel.create(transport, network, "vxlan")
    record = x.tunnel.get_record(tunnel)
    access = x.PIF.get_record(record["access_PIF"])
    assert (record["transport_PIF"], record["protocol"], record["status"]) == (transport, "vxlan", {"active": "false"})
    assert (access["device"], access["VLAN"], access["network"], access["host"]) == \
        ("tunnel0", "-1", network, sim_pool.hosts[0])
    assert access["currently_attached"] and access["tunnel_access_PIF_of"] == [tunnel]
    assert x.PIF.get_tunnel_transport_PIF_of(transport) == [tunnel]
    assert x.network.get_PIFs(network) == [record["access_PIF"]]
    x.tunnel.add_to_status(tunnel, "key", "7")
    assert x.tunnel.get_status(tunnel) == {"active": "false", "key": "7"}
    assert failure(x.tunnel.create, transport, network, "gre") == \
        ["NETWORK_ALREADY_CONNECTED", sim_pool.hosts[0], record["access_PIF"]]     # Xapi_pif.assert_no_other_local_pifs


def test_tunnel_create_needs_a_configured_transport_pif(make_sim_pool):
    """Xapi_tunnel.create: the tunnel and its access PIF exist before Xapi_pif.plug refuses; they stay."""
    pool = make_sim_pool(1, eth1=False)
    x = pool.login().xenapi
    transport, network = pif_on(x, pool.hosts[0], "eth1"), private_network(x)
    assert failure(x.tunnel.create, transport, network, "gre") == ["TRANSPORT_PIF_NOT_CONFIGURED", transport]
    (tunnel,) = x.tunnel.get_all()
    access = x.tunnel.get_access_PIF(tunnel)
    assert x.network.get_PIFs(network) == [access]
    assert x.PIF.get_currently_attached(access) is False
    assert failure(x.PIF.plug, access) == ["TRANSPORT_PIF_NOT_CONFIGURED", transport]


def test_network_destroy_refuses_a_network_in_use(sim_pool):
    x = sim_pool.login().xenapi
    network = private_network(x)
    tunnel = x.tunnel.create(pif_on(x, sim_pool.hosts[0], "eth1"), network, "gre")
    access = x.tunnel.get_access_PIF(tunnel)
    assert failure(x.network.destroy, network) == ["NETWORK_CONTAINS_PIF", access]
    x.tunnel.destroy(tunnel)
    assert failure(x.PIF.get_record, access)[0] == "HANDLE_INVALID"
    x.network.destroy(network)
    assert network not in x.network.get_all()


def test_a_joining_host_gets_access_pifs_for_tunnel_networks(sim_pool):
    x = sim_pool.login().xenapi
    network = private_network(x)
    for host in sim_pool.hosts:
        x.tunnel.create(pif_on(x, host, "eth1"), network, "vxlan")
    joined, unconfigured = sim_pool.join(), sim_pool.join(eth1_configured=False)
    # Xapi_host.sync_tunnels creates a joining host's access PIFs unplugged, configured transport or not.
    for host, plugged in ((joined, False), (unconfigured, False)):
        (access,) = [x.PIF.get_record(p) for p in x.network.get_PIFs(network) if x.PIF.get_host(p) == host]
        tunnel = x.tunnel.get_record(access["tunnel_access_PIF_of"][0])
        assert (access["device"], access["currently_attached"]) == ("tunnel0", plugged)
        assert (tunnel["transport_PIF"], tunnel["protocol"]) == (pif_on(x, host, "eth1"), "vxlan")
    assert failure(sim_pool.login, 2) == ["HOST_IS_SLAVE", sim_pool.addresses[0]]   # the joined host listens


def test_unplugging_a_transport_pif_unplugs_its_tunnels(sim_pool):
    x = sim_pool.login().xenapi
    transport = pif_on(x, sim_pool.hosts[0], "eth1")
    access = x.tunnel.get_access_PIF(x.tunnel.create(transport, private_network(x), "gre"))
    x.PIF.unplug(transport)
    assert (x.PIF.get_currently_attached(transport), x.PIF.get_currently_attached(access)) == (False, False)
    x.PIF.plug(access)                                        # brings its transport PIF up first
    assert (x.PIF.get_currently_attached(transport), x.PIF.get_currently_attached(access)) == (True, True)
    management = pif_on(x, sim_pool.hosts[0], "eth0")
    assert failure(x.PIF.unplug, management) == ["PIF_IS_MANAGEMENT_INTERFACE", management]


def test_pif_reconfigure_ip(sim_pool):
    x = sim_pool.login().xenapi
    pif = pif_on(x, sim_pool.hosts[1], "eth1")
    x.PIF.reconfigure_ip(pif, "Static", "10.9.9.9", "255.255.0.0", "", "")
    record = x.PIF.get_record(pif)
    assert (record["ip_configuration_mode"], record["IP"], record["netmask"]) == ("Static", "10.9.9.9", "255.255.0.0")
    assert failure(x.PIF.reconfigure_ip, pif, "Static", "10.9.9.300", "255.255.0.0", "", "") == \
        ["INVALID_IP_ADDRESS_SPECIFIED", "IP"]
    x.PIF.reconfigure_ip(pif, "None", "", "", "", "")
    assert (x.PIF.get_ip_configuration_mode(pif), x.PIF.get_IP(pif)) == ("None", "")


# --- hosts come and go -------------------------------------------------------------------------
def test_eject_removes_the_host_and_halts_its_vms(make_sim_pool):
    pool = make_sim_pool(3)
    x = pool.login().xenapi
    leaving = pool.hosts[2]
    network = private_network(x)
    x.tunnel.create(pif_on(x, leaving, "eth1"), network, "gre")
    vm = pool.sim.create_vm("guest")
    x.VM.start_on(vm, leaving, False, False)
    pifs, metrics = x.host.get_PIFs(leaving), x.host.get_metrics(leaving)
    x.pool.eject(leaving)
    assert leaving not in x.host.get_all() and not set(pifs) & set(x.PIF.get_all())
    assert metrics not in x.host_metrics.get_all() and x.network.get_PIFs(network) == []
    assert (x.VM.get_power_state(vm), x.VM.get_resident_on(vm)) == ("Halted", "OpaqueRef:NULL")
    with pytest.raises(ConnectionRefusedError):
        XenAPI.Session(pool.url(2)).login_with_password("root", PASSWORD, "1.0", "test")
    assert failure(x.pool.eject, pool.hosts[0]) == ["HOST_CANNOT_DESTROY_SELF", pool.hosts[0]]


def test_crash_and_recover_a_host(sim_pool):
    x = sim_pool.login().xenapi
    host = sim_pool.hosts[1]
    vm = sim_pool.sim.create_vm("guest")
    x.VM.start_on(vm, host, False, False)
    sim_pool.sim.crash_host(host)
    assert x.host_metrics.get_live(x.host.get_metrics(host)) is False
    assert x.VM.get_power_state(vm) == "Running"               # nobody told xapi the domain died
    assert failure(x.VM.start_on, sim_pool.sim.create_vm("other"), host, False, False) == ["HOST_OFFLINE", host]
    with pytest.raises(ConnectionRefusedError):
        XenAPI.Session(sim_pool.url(1)).login_with_password("root", PASSWORD, "1.0", "test")
    sim_pool.sim.recover_host(host)
    assert x.host_metrics.get_live(x.host.get_metrics(host)) is True
    assert failure(sim_pool.login, 1)[0] == "HOST_IS_SLAVE"


# --- VMs and VIFs ---------------------------------------------------------------------------------
def test_vm_start_migrate_and_shutdown_bookkeeping(sim_pool):
    x = sim_pool.login().xenapi
    first, second = sim_pool.hosts
    network = private_network(x)
    vm = sim_pool.sim.create_vm("web", "192.168.7.10")
    vif = x.VIF.create({"device": "0", "network": network, "VM": vm, "MAC": "", "MTU": "1400", "other_config": {}})
    assert failure(x.VIF.create, {"device": "0", "network": network, "VM": vm}) == ["DEVICE_ALREADY_EXISTS", "0"]
    x.VM.start(vm, False, False)
    state = x.VM.get_record(vm)
    assert (state["power_state"], state["resident_on"], state["domid"]) == ("Running", first, "1")
    assert x.VIF.get_currently_attached(vif) and vm in x.host.get_resident_VMs(first)
    assert failure(x.VM.start, vm, False, False) == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    x.VM.pool_migrate(vm, second, {"live": "true"})
    state = x.VM.get_record(vm)
    assert (state["resident_on"], state["domid"]) == (second, "1") and vm not in x.host.get_resident_VMs(first)
    x.VM.start_on(sim_pool.sim.create_vm("db"), second, False, False)
    assert x.VM.get_domid(x.VM.get_by_name_label("db")[0]) == "2"
    x.VIF.unplug(vif)
    assert failure(x.VIF.unplug, vif) == ["DEVICE_ALREADY_DETACHED", vif]
    x.VIF.plug(vif)
    x.VM.clean_shutdown(vm)
    state = x.VM.get_record(vm)
    assert (state["power_state"], state["resident_on"], state["domid"]) == ("Halted", "OpaqueRef:NULL", "-1")
    assert x.VIF.get_currently_attached(vif) is False
    assert failure(x.VM.hard_shutdown, vm) == ["VM_BAD_POWER_STATE", vm, "running", "halted"]
    assert failure(x.VIF.plug, vif) == ["VM_BAD_POWER_STATE", vm, "running", "halted"]


# --- certificates and the SDN controller -----------------------------------------------------------
def test_ca_certificates_install_list_and_uninstall(sim_pool):
    x = sim_pool.login().xenapi
    ca = certs.make_ca("sdnctl test CA", NOW)
    x.pool.install_ca_certificate(SDN_CA_NAME, ca.cert_pem)
    assert x.pool.certificate_list() == [SDN_CA_NAME]
    (record,) = [c for c in x.Certificate.get_all_records().values() if c["type"] == "ca"]
    assert (record["name"], record["fingerprint"], record["host"]) == \
        (SDN_CA_NAME, certs.fingerprint(ca.cert_pem), "OpaqueRef:NULL")
    assert failure(x.pool.certificate_install, SDN_CA_NAME, ca.cert_pem) == ["CERTIFICATE_ALREADY_EXISTS", SDN_CA_NAME]
    assert failure(x.pool.certificate_install, "junk.pem", "not a certificate") == ["CA_CERTIFICATE_INVALID"]
    x.pool.certificate_sync()
    x.pool.certificate_uninstall(SDN_CA_NAME)
    assert x.pool.certificate_list() == [] and x.Certificate.get_all() == []
    assert failure(x.pool.uninstall_ca_certificate, SDN_CA_NAME) == ["CERTIFICATE_DOES_NOT_EXIST", SDN_CA_NAME]


def test_sdn_controller_introduce_and_forget(sim_pool):
    x = sim_pool.login().xenapi
    assert failure(x.SDN_controller.introduce, "pssl", "10.0.0.1", "0") == ["INVALID_VALUE", "address", "10.0.0.1"]
    controller = x.SDN_controller.introduce("pssl", "", "0")
    assert x.SDN_controller.get_record(controller) | {"uuid": ""} == \
        {"uuid": "", "protocol": "pssl", "address": "", "port": "0"}
    assert failure(x.SDN_controller.introduce, "pssl", "", "0")[0] == "OPERATION_NOT_ALLOWED"
    x.SDN_controller.forget(controller)
    assert x.SDN_controller.get_all() == []


# --- real switches ----------------------------------------------------------------------------------
def test_plugs_create_bridges_on_the_hosts_switch(ovs_pool):
    pool, (first, second) = ovs_pool(2)
    x = pool.login().xenapi
    assert {"xenbr0", "xenbr1"} <= bridges(first)
    network = private_network(x)
    bridge, network_uuid = x.network.get_bridge(network), x.network.get_uuid(network)
    tunnel = x.tunnel.create(pif_on(x, pool.hosts[0], "eth1"), network, "gre")
    assert bridge in bridges(first) and bridge not in bridges(second)
    assert vsctl(first, "br-get-external-id", bridge, "xs-network-uuids") == network_uuid
    x.PIF.unplug(pif_on(x, pool.hosts[0], "eth1"))           # takes the tunnel's access PIF down too
    assert bridge not in bridges(first)
    x.PIF.plug(x.tunnel.get_access_PIF(tunnel))
    assert bridge in bridges(first)
    x.tunnel.destroy(tunnel)
    assert bridge not in bridges(first)


def test_vif_ports_follow_the_vm(ovs_pool):
    pool, (first, second) = ovs_pool(2)
    x = pool.login().xenapi
    network = private_network(x)
    bridge = x.network.get_bridge(network)
    for host in pool.hosts:
        x.tunnel.create(pif_on(x, host, "eth1"), network, "vxlan")
    vm = pool.sim.create_vm("web")
    vif = x.VIF.create({"device": "0", "network": network, "VM": vm, "MAC": "02:aa:bb:cc:dd:01", "MTU": "1400",
                        "other_config": {}})
    x.VM.start_on(vm, pool.hosts[0], False, False)
    assert vsctl(first, "list-ports", bridge).split() == ["vif1.0"]
    assert interface_external_ids(first, "vif1.0") == {
        "xs-vif-uuid": x.VIF.get_uuid(vif), "xs-vm-uuid": x.VM.get_uuid(vm),
        "xs-network-uuid": x.network.get_uuid(network), "attached-mac": "02:aa:bb:cc:dd:01"}
    x.VM.start_on(pool.sim.create_vm("other"), pool.hosts[1], False, False)
    x.VM.pool_migrate(vm, pool.hosts[1], {})
    assert vsctl(first, "list-ports", bridge) == ""
    assert vsctl(second, "list-ports", bridge).split() == ["vif2.0"]
    x.VM.clean_shutdown(vm)
    assert vsctl(second, "list-ports", bridge) == ""


def test_sdn_controller_configures_the_ovsdb_tls_listener(ovs_pool, ovs_hosts, tmp_path):
    pool, (first, second) = ovs_pool(2)
    x = pool.login().xenapi
    ca = certs.make_ca("sdnctl test CA", NOW)
    client = certs.issue_leaf(ca, "sdnctl", NOW, client=True, server=False)
    (tmp_path / "client.crt").write_text(client.cert_pem)
    (tmp_path / "client.key").write_text(client.key_pem)
    controller = x.SDN_controller.introduce("pssl", "", "0")
    assert vsctl(first, "get-manager") == ""                  # no CA installed yet: nobody to trust
    x.pool.certificate_install(SDN_CA_NAME, ca.cert_pem)
    for host in (first, second):
        assert vsctl(host, "get-manager") == f"pssl:{OVSDB_PORT}:{host.address}"
    vsctl(second, "del-manager")
    x.pool.certificate_sync()                                 # pushes the CA and the listener again
    assert vsctl(second, "get-manager") == f"pssl:{OVSDB_PORT}:{second.address}"
    host_cert = x.host.get_server_certificate(pool.hosts[0])
    assert host_cert == first.cert_pem

    def ovsdb_echo() -> bool:
        context = tls.pinned_client_context(host_cert, str(tmp_path / "client.crt"), str(tmp_path / "client.key"))
        try:
            with socket.create_connection((first.address, OVSDB_PORT), timeout=5) as raw, \
                    context.wrap_socket(raw, server_hostname=first.address) as channel:
                channel.sendall(json.dumps({"method": "echo", "params": ["hi"], "id": 1}).encode())
                return json.loads(channel.recv(4096))["result"] == ["hi"]
        except (OSError, ValueError) as exc:      # the listener is not up yet: wait_for retries on this
            raise AssertionError(f"no echo yet: {exc!r}") from exc

    wait_for(ovsdb_echo, timeout=10.0, what="an OVSDB echo over TLS with a CA-signed client certificate")
    joined = ovs_hosts("h3", f"{pool.subnet}.3")
    pool.join(joined)
    assert vsctl(joined, "get-manager") == f"pssl:{OVSDB_PORT}:{joined.address}"
    x.SDN_controller.forget(controller)
    assert vsctl(first, "get-manager") == ""


def test_https_presents_the_host_certificate(ovs_pool):
    pool, (first, _) = ovs_pool(2)
    pinned = pool.login().xenapi.host.get_server_certificate(pool.hosts[0])
    context = ssl.create_default_context(cadata=pinned)
    session = XenAPI.Session(f"https://{first.address}:{HTTPS_PORT}/",
                             transport=xmlrpc.client.SafeTransport(context=context))
    session.login_with_password("root", PASSWORD, "1.0", "test")
    assert session.xenapi.host.get_address(pool.hosts[0]) == first.address


def test_crash_kills_the_switch_and_recover_restores_it(ovs_pool):
    pool, (_, second) = ovs_pool(2)
    x = pool.login().xenapi
    network = private_network(x)
    x.tunnel.create(pif_on(x, pool.hosts[1], "eth1"), network, "gre")
    pool.sim.crash_host(pool.hosts[1])
    assert not second.running
    pool.sim.recover_host(pool.hosts[1])
    assert second.running and x.network.get_bridge(network) in bridges(second)
    pool.sim.eject_host(pool.hosts[1])
    assert bridges(second) == set()
