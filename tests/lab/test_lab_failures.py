"""The lab's failure modes and master changes, over the wire with the real XenAPI client.

A silently dead host, planned / emergency / HA master changes, what a xapi restart keeps, calls on a
slave, host_metrics churn, a join as a sequence of events, and a host reboot's tunnel PIFs.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
import xmlrpc.client
from pathlib import Path

import pytest
import XenAPI

from sdnctl.lab.lab import Lab
from tests.waiting import wait_for

ROOT = Path("/run/sdnctl-test-lab")
CONNECT_BOUND = 2.0


@pytest.fixture
def make_lab():
    """Start labs (each on its own octet); every one is torn down, even on failure."""
    started: list[Lab] = []

    def make(octet: int, **kwargs) -> Lab:
        lab = Lab(octet=octet, root=ROOT, **kwargs)
        started.append(lab)
        lab.up()
        return lab

    yield make
    for lab in started:
        lab.down()


def login(lab: Lab, host: str) -> XenAPI.Session:
    session = XenAPI.Session(lab.host_url(lab.host(host).address), ignore_ssl=True)
    session.login_with_password("root", lab.pools["pool1"].password, "1.0", "test")
    return session


def failure(call, *args) -> list[str]:
    with pytest.raises(XenAPI.Failure) as caught:
        call(*args)
    return caught.value.details


def raw_failure(lab: Lab, host: str, method: str, *params) -> list[str]:
    """One XML-RPC call without the XenAPI client's relogin on SESSION_INVALID: its ErrorDescription."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    proxy = xmlrpc.client.ServerProxy(lab.host_url(lab.host(host).address), context=context)
    result = getattr(proxy, method)(*params)
    assert result["Status"] == "Failure", result
    return result["ErrorDescription"]


def connect_outcome(address: str, port: int) -> str:
    """"refused", "open", or "silent" if nothing answered within CONNECT_BOUND seconds."""
    with socket.socket() as sock:
        sock.settimeout(CONNECT_BOUND)
        try:
            sock.connect((address, port))
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "silent"
    return "open"


def ref_of(lab: Lab, host: str) -> str:
    return lab.pools["pool1"].host_refs[host]


def test_silent_crash_answers_nothing_and_recover_restores(make_lab):
    lab = make_lab(71, hosts=2)
    address = lab.host("p1h2").address
    x = login(lab, "p1h1").xenapi
    x.pool.certificate_install("sdn-controller-ca.pem", lab.host("p1h1").cert_pem)
    x.SDN_controller.introduce("pssl", "", "0")            # p1h2's ovsdb-server listens on 6640
    wait_for(lambda: connect_outcome(address, 6640) == "open", what="pssl:6640 on p1h2")
    held = socket.create_connection((address, 443), timeout=CONNECT_BOUND)   # open before the crash
    try:
        lab.host_crash("p1h2", silent=True)
        assert [connect_outcome(address, port) for port in (443, 80, 6640)] == ["silent"] * 3
        held.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        with pytest.raises(TimeoutError):                # no RST, no FIN: the read hangs
            held.recv(1)
        assert not lab.status()["pools"][0]["hosts"][1]["live"]
        lab.host_recover("p1h2")
        assert connect_outcome(address, 443) == "open"
        assert failure(login, lab, "p1h2")[0] == "HOST_IS_SLAVE"
    finally:
        held.close()
    lab.host_crash("p1h2")                                 # the ordinary crash still refuses at once
    assert connect_outcome(address, 443) == "refused"


def test_designate_new_master_and_the_old_master_is_a_slave(make_lab):
    lab = make_lab(72, hosts=3)
    session = login(lab, "p1h1")
    lab.designate_new_master("p1h2")
    new = lab.host("p1h2").address
    assert failure(XenAPI.Session(lab.host_url(lab.host("p1h1").address), ignore_ssl=True).login_with_password,
                   "root", lab.pools["pool1"].password, "1.0", "t") == ["HOST_IS_SLAVE", new]
    assert failure(session.xenapi.pool.get_all) == ["HOST_IS_SLAVE", new]   # relogin lands on a slave
    x = login(lab, "p1h2").xenapi
    assert x.pool.get_master(x.pool.get_all()[0]) == ref_of(lab, "p1h2")
    wait_for(lambda: lab.read_state()["pools"][0]["master"] == "p1h2", what="the state file's master")


def test_emergency_transition_on_a_slave_while_the_master_is_dead(make_lab):
    lab = make_lab(73, hosts=3)
    master_address = lab.host("p1h1").address
    lab.host_crash("p1h1", silent=True)
    slave = XenAPI.Session(lab.host_url(lab.host("p1h2").address), ignore_ssl=True)
    assert failure(slave.login_with_password, "root", lab.pools["pool1"].password, "1.0", "t") == \
        ["HOST_IS_SLAVE", master_address]                 # slaves still name the dead master
    local = XenAPI.Session(lab.host_url(lab.host("p1h3").address), ignore_ssl=True)
    local.slave_local_login_with_password("root", lab.pools["pool1"].password)
    handle = local.handle
    assert local.xenapi.host.get_all()                    # a local session works on its own host ...
    assert raw_failure(lab, "p1h2", "host.get_all", handle) == ["SESSION_INVALID", handle]   # ... nowhere else
    lab.emergency_transition_to_master("p1h2")
    x = login(lab, "p1h2").xenapi
    assert x.pool.get_master(x.pool.get_all()[0]) == ref_of(lab, "p1h2")
    lab.host_recover("p1h1")                              # the old master comes back as a slave
    assert failure(login, lab, "p1h1") == ["HOST_IS_SLAVE", lab.host("p1h2").address]
    assert lab.status()["pools"][0]["master"] == "p1h2"


def test_ha_elects_a_live_slave_after_the_delay_and_refuses_manual_changes(make_lab):
    lab = make_lab(74, hosts=3, ha=True, ha_delay=1.0)
    x = login(lab, "p1h1").xenapi
    assert failure(x.pool.designate_new_master, ref_of(lab, "p1h2")) == ["HA_IS_ENABLED"]
    lab.host_crash("p1h1", silent=True)
    assert lab.status()["pools"][0]["master"] == "p1h1"  # not before the delay
    wait_for(lambda: lab.status()["pools"][0]["master"] == "p1h2", timeout=10, what="HA's new master")
    wait_for(lambda: lab.read_state()["pools"][0]["master"] == "p1h2", what="the state file's master")
    x = login(lab, "p1h2").xenapi
    assert x.pool.get_master(x.pool.get_all()[0]) == ref_of(lab, "p1h2")


def test_restart_keeps_tokens_in_xapi_format_and_drops_sessions(make_lab):
    lab = make_lab(75, hosts=2)
    session = login(lab, "p1h1")
    x = session.xenapi
    token = x.event_from(["pool"], "", 0.0)["token"]
    assert re.fullmatch(r"\d{20},\d{20}", token) and token.endswith("," + "0" * 20)
    old = session.handle
    lab.xapi_restart("pool1")
    assert raw_failure(lab, "p1h1", "pool.get_all", old) == ["SESSION_INVALID", old]
    x.pool.set_name_description(x.pool.get_all()[0], "after the restart")   # the client logs in again
    events = x.event_from(["pool"], token, 0.0)["events"]                  # the old token is good
    assert [(e["class"], e["operation"]) for e in events] == [("pool", "mod")]


def test_a_pool_session_on_a_slave_gets_host_is_slave_on_every_call(make_lab):
    lab = make_lab(76, hosts=2)
    handle = login(lab, "p1h1").handle
    master = lab.host("p1h1").address
    for method, params in (("pool.get_all", ()), ("host.get_all_records", ()), ("event.from", (["host"], "", 0.0))):
        assert raw_failure(lab, "p1h2", method, handle, *params) == ["HOST_IS_SLAVE", master], method


def test_host_metrics_churn_and_a_library_of_templates(make_lab):
    lab = make_lab(77, hosts=2)
    x = login(lab, "p1h1").xenapi
    first = x.event_from(["vm"], "", 0.0)
    templates = [e for e in first["events"] if e["snapshot"]["is_a_template"]]
    assert len(templates) >= 30 and all(e["snapshot"]["resident_on"] == "OpaqueRef:NULL" for e in templates)
    token, mods = x.event_from(["host_metrics"], "", 0.0)["token"], []
    deadline = time.monotonic() + 13.0                     # two and a half METRICS_INTERVALs
    while time.monotonic() < deadline:
        result = x.event_from(["host_metrics"], token, max(0.1, deadline - time.monotonic()))
        token = result["token"]
        mods += [e["ref"] for e in result["events"] if e["operation"] == "mod"]
    metrics = {x.host.get_metrics(h) for h in x.host.get_all()}
    assert all(mods.count(m) >= 2 for m in metrics), mods


def test_a_join_arrives_as_host_then_pifs_then_tunnels_then_start_of_day(make_lab):
    lab = make_lab(78, hosts=2)
    x = login(lab, "p1h1").xenapi
    network = x.network.create({"name_label": "priv", "name_description": "", "MTU": "1400",
                                "other_config": {}, "tags": []})
    eth1 = {h: next(p for p in x.host.get_PIFs(h) if x.PIF.get_device(p) == "eth1") for h in x.host.get_all()}
    for transport in eth1.values():
        x.tunnel.create(transport, network, "gre")
    token = x.event_from(["host", "pif", "tunnel"], "", 0.0)["token"]
    batches: list[list[dict]] = []
    stop = threading.Event()

    def watch() -> None:
        nonlocal token
        watcher = login(lab, "p1h1").xenapi
        while not stop.is_set():
            result = watcher.event_from(["host", "pif", "tunnel"], token, 1.0)
            token = result["token"]
            if result["events"]:
                batches.append(result["events"])

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        joined = lab.host_join("pool1")
        new = ref_of(lab, joined)
        wait_for(lambda: any(e["class"] == "host" and e["snapshot"]["enabled"] for b in batches for e in b
                             if e["ref"] == new), what="the joined host enabled")
    finally:
        stop.set()
        thread.join(5.0)

    def step(batch: list[dict]) -> str:
        classes = {e["class"] for e in batch}
        host = next((e for e in batch if e["ref"] == new), None)
        return ("host" if host and host["operation"] == "add" else "tunnel" if "tunnel" in classes
                else "enabled" if host and host["snapshot"]["enabled"] else "pif" if "pif" in classes else "?")

    assert [step(b) for b in batches] == ["host", "pif", "tunnel", "enabled"], batches
    (access,) = [p for p in x.network.get_PIFs(network) if x.PIF.get_host(p) == new]
    assert x.PIF.get_currently_attached(access) is False    # sync_tunnels leaves it for the controller


def test_a_rebooted_host_keeps_access_pifs_without_transport_ip_unplugged(make_lab):
    lab = make_lab(79, hosts=2)
    x = login(lab, "p1h1").xenapi
    host = ref_of(lab, "p1h2")
    network = x.network.create({"name_label": "priv", "name_description": "", "MTU": "1400",
                                "other_config": {}, "tags": []})
    transport = next(p for p in x.host.get_PIFs(host) if x.PIF.get_device(p) == "eth1")
    access = x.tunnel.get_access_PIF(x.tunnel.create(transport, network, "gre"))
    assert x.PIF.get_currently_attached(access) is True
    x.PIF.reconfigure_ip(transport, "None", "", "", "", "")
    assert x.PIF.get_currently_attached(access) is True     # nothing unplugs it while the host runs
    lab.host_crash("p1h2")
    lab.host_recover("p1h2")
    x = login(lab, "p1h1").xenapi
    assert x.PIF.get_currently_attached(access) is False
