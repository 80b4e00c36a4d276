"""Private networks converge on the real OVSDB of every lab host, and stay converged as pools change."""

from __future__ import annotations

import json

import pytest

from sdnctl.core.model import tunnel_port_name
from tests.integration.conftest import run_cli, tunnel_ports, xapi
from tests.waiting import wait_for


def hosts_by_name(lab) -> dict[str, dict]:
    return {h["name"]: {**h, "pool": p["name"]} for p in lab.status()["pools"] for h in p["hosts"]}


def transport_ip(lab, host_name: str, device: str) -> str:
    return lab.host(host_name).pif_ips[device]


def expected_ports(lab, net_id: str, names: list[str], topology: str, center: str | None,
                   device: str = "eth0") -> dict[str, dict[str, str]]:
    """host name -> {port name: remote_ip} for a network over these hosts."""
    hosts = hosts_by_name(lab)
    pairs = ([(a, b) for a in names for b in names if a != b] if topology == "mesh"
             else [(center, x) for x in names if x != center] + [(x, center) for x in names if x != center])
    expected: dict[str, dict[str, str]] = {name: {} for name in names}
    for local, remote in pairs:
        expected[local][tunnel_port_name(net_id, hosts[remote]["uuid"])] = transport_ip(lab, remote, device)
    return expected


def observed_ports(lab, names: list[str]) -> dict[str, dict[str, str]]:
    return {name: {port: row["options"]["remote_ip"] for port, row in tunnel_ports(lab, name).items()}
            for name in names}


def converged(lab, expected):
    observed = observed_ports(lab, list(expected))
    assert observed == expected, observed
    return True


def network_id(lab, name: str, pool: str = "pool1") -> str:
    session = xapi(lab, pool)
    try:
        ref = session.xenapi.network.get_by_name_label(name)[0]
        return session.xenapi.network.get_other_config(ref)["sdnctl:private-network-uuid"]
    finally:
        session.xenapi.session.logout()


@pytest.mark.parametrize("encapsulation,topology", [("gre", "star"), ("vxlan", "mesh")], ids=["gre-star", "vxlan-mesh"])
def test_network_converges_in_one_pool(make_lab, make_daemon, encapsulation, topology):
    lab = make_lab(pools=1, hosts=3)
    daemon = make_daemon(lab)
    run_cli("network", "create", "--name", "net1", "--pool", "pool1", "--pif-device", "eth0",
            "--encapsulation", encapsulation, "--topology", topology, "--preferred-center", "p1h2",
            config=lab.config_path)
    net_id = network_id(lab, "net1")
    names = ["p1h1", "p1h2", "p1h3"]
    expected = expected_ports(lab, net_id, names, topology, "p1h2")
    wait_for(lambda: converged(lab, expected), what="tunnel ports", timeout=30)
    row = next(iter(tunnel_ports(lab, "p1h2").values()))
    assert row["type"] == encapsulation
    assert row["options"]["key"] == "1"
    assert row["external_ids"]["sdnctl-network"] == net_id
    assert daemon.proc.poll() is None

    def tunnel_statuses():
        session = xapi(lab)
        try:
            return sorted((s.get("active", ""), s.get("key", "")) for s in   # "": not written yet
                          (r["status"] for r in session.xenapi.tunnel.get_all_records().values()))
        finally:
            session.xenapi.session.logout()

    wait_for(lambda: tunnel_statuses() == [("true", "1")] * 3, what="tunnel.status active with the key")


def interface_uuids(lab, names: list[str]) -> dict[tuple[str, str], str]:
    """(host, port) -> the Interface row's _uuid: a port deleted and re-created gets a new one."""
    result = {}
    for name in names:
        out = lab.host(name).vsctl("--format=json", "--columns=_uuid,name,external_ids", "list", "Interface")
        table = json.loads(out)
        for uuid, port, ids in table["data"]:
            if any(k == "sdnctl-network" for k, _ in ids[1]):
                result[(name, port)] = uuid[1]
    return result


def create_network(lab, name="net1", *, pools=("pool1",), device="eth0", encapsulation="gre",
                   topology="mesh", center=None) -> str:
    args = ["network", "create", "--name", name, "--pif-device", device, "--encapsulation", encapsulation,
            "--topology", topology]
    for pool in pools:
        args += ["--pool", pool]
    if center:
        args += ["--preferred-center", center]
    run_cli(*args, config=lab.config_path)
    return network_id(lab, name, pools[0])


def daemon_center(daemon, net_id: str) -> str | None:
    for network in daemon.status().get("networks", []):
        if network["id"] == net_id:
            return network["center_name"] or None
    return None


def test_cross_pool_star_converges(make_lab, make_daemon):
    lab = make_lab(pools=2, hosts=2)
    make_daemon(lab)
    net_id = create_network(lab, pools=("pool1", "pool2"), topology="star", center="p2h1")
    expected = expected_ports(lab, net_id, ["p1h1", "p1h2", "p2h1", "p2h2"], "star", "p2h1")
    wait_for(lambda: converged(lab, expected), what="cross-pool star", timeout=30)


def test_host_join_adds_its_tunnels_and_changes_nothing_else(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=2)
    make_daemon(lab)
    net_id = create_network(lab, topology="mesh")
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, ["p1h1", "p1h2"], "mesh", None)), what="2 hosts")
    before = interface_uuids(lab, ["p1h1", "p1h2"])
    assert lab.host_join("pool1") == "p1h3"
    names = ["p1h1", "p1h2", "p1h3"]
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, names, "mesh", None)), what="joined host")
    after = interface_uuids(lab, names)
    assert {k: v for k, v in after.items() if k in before} == before
    assert len(after) - len(before) == 4  # p1h3 <-> p1h1 and p1h3 <-> p1h2, both ends


def test_host_eject_removes_its_tunnels_everywhere(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=3)
    make_daemon(lab)
    net_id = create_network(lab, topology="mesh")
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, ["p1h1", "p1h2", "p1h3"], "mesh", None)),
             what="3 hosts")
    lab.host_eject("p1h3")
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, ["p1h1", "p1h2"], "mesh", None)), what="eject")


def test_center_crash_moves_only_the_centers_tunnels(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=4)
    daemon = make_daemon(lab)
    names = ["p1h1", "p1h2", "p1h3", "p1h4"]
    survivors = ["p1h1", "p1h3", "p1h4"]  # p1h1 is the pool master: XAPI stays up
    net_id = create_network(lab, topology="star", center="p1h2")
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, names, "star", "p1h2")), what="star on p1h2")
    before = interface_uuids(lab, survivors)
    lab.host_crash("p1h2")
    new_center = wait_for(lambda: daemon_center(daemon, net_id) not in (None, "p1h2") and daemon_center(daemon, net_id),
                          what="a new center")
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, survivors, "star", new_center)), what="new star")
    after = interface_uuids(lab, survivors)
    deleted = set(before) - set(after)
    added = set(after) - set(before)
    kept = {k for k in set(before) & set(after) if before[k] == after[k]}
    # The three survivors each drop their tunnel to p1h2; the new center gains two spokes,
    # and the two spokes gain one tunnel each. Nothing is rebuilt that did not have to be.
    assert (len(deleted), len(added), len(kept)) == (3, 4, 0)
    lab.host_recover("p1h2")
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, names, "star", new_center)),
             what="recovered host joins the sticky center")
    assert daemon_center(daemon, net_id) == new_center


def _pif(session, host_name: str, device: str) -> str:
    api = session.xenapi
    host = api.host.get_by_name_label(host_name)[0]
    return next(ref for ref in api.host.get_PIFs(host)
                if api.PIF.get_device(ref) == device and api.PIF.get_VLAN(ref) == "-1")


@pytest.fixture
def eth1_mesh(make_lab, make_daemon):
    """Three hosts of one pool joined in a converged mesh over eth1 (not the management NIC)."""
    lab = make_lab(pools=1, hosts=3)
    daemon = make_daemon(lab)
    names = ["p1h1", "p1h2", "p1h3"]
    net_id = create_network(lab, device="eth1", topology="mesh")
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, names, "mesh", None, "eth1")), what="mesh on eth1")
    return lab, daemon, names, net_id


def test_transport_pif_unplug_then_plug(eth1_mesh):
    lab, _, names, net_id = eth1_mesh
    session = xapi(lab)
    try:
        pif = _pif(session, "p1h3", "eth1")
        session.xenapi.PIF.unplug(pif)
        wait_for(lambda: converged(lab, {**expected_ports(lab, net_id, names[:2], "mesh", None, "eth1"), "p1h3": {}}),
                 what="unplugged host dropped")
        session.xenapi.PIF.plug(pif)
        wait_for(lambda: converged(lab, expected_ports(lab, net_id, names, "mesh", None, "eth1")), what="replugged")
    finally:
        session.xenapi.session.logout()


def test_transport_ip_change_replaces_tunnels(eth1_mesh):
    lab, _, names, net_id = eth1_mesh
    session = xapi(lab)
    try:
        session.xenapi.PIF.reconfigure_ip(_pif(session, "p1h2", "eth1"), "Static", "198.18.1.99", "255.255.0.0", "", "")
    finally:
        session.xenapi.session.logout()
    assert lab.host("p1h2").pif_ips["eth1"] == "198.18.1.99"
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, names, "mesh", None, "eth1")), what="new IP")
    local_ips = {row["options"].get("local_ip") for row in tunnel_ports(lab, "p1h2").values()}
    assert local_ips == {"198.18.1.99"}


def test_drift_is_repaired_and_foreign_ports_are_left_alone(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=2)
    make_daemon(lab)
    names = ["p1h1", "p1h2"]
    net_id = create_network(lab, topology="mesh")
    expected = expected_ports(lab, net_id, names, "mesh", None)
    wait_for(lambda: converged(lab, expected), what="mesh")
    host = lab.host("p1h1")
    bridge = host.vsctl("port-to-br", next(iter(expected["p1h1"]))).strip()
    host.vsctl("add-port", bridge, "foreign0", "--", "set", "Interface", "foreign0", "type=gre",
               "options:remote_ip=192.0.2.77", "options:key=99")
    host.vsctl("del-port", next(iter(expected["p1h1"])))
    wait_for(lambda: converged(lab, expected), what="deleted port re-created")
    assert "foreign0" in host.vsctl("list-ports", bridge).split()


def test_controller_restart_changes_nothing(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=3)
    daemon = make_daemon(lab)
    names = ["p1h1", "p1h2", "p1h3"]
    net_id = create_network(lab, topology="star")
    center = wait_for(lambda: daemon_center(daemon, net_id), what="a center")
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, names, "star", center)), what="star")
    before = interface_uuids(lab, names)
    daemon.kill()
    (daemon.state_dir / "status.json").unlink(missing_ok=True)
    daemon.start()

    def settled():
        status = daemon.status()
        hosts = status.get("hosts", {})
        return len(hosts) == 3 and all(h["connected"] for h in hosts.values()) and all(
            t["observed"] and t["desired"] for n in status["networks"] for h in n["hosts"] for t in h["tunnels"]) and status

    status = wait_for(settled, what="restarted daemon settled")
    assert interface_uuids(lab, names) == before
    assert all(h["transactions"] == 0 for h in status["hosts"].values())
    assert daemon_center(daemon, net_id) == center


def test_host_with_unexpected_certificate_is_refused(make_lab, make_daemon):
    import datetime

    from sdnctl import certs

    lab = make_lab(pools=1, hosts=2)
    daemon = make_daemon(lab)
    net_id = create_network(lab, topology="mesh")
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, ["p1h1", "p1h2"], "mesh", None)), what="mesh")
    impostor = lab.host("p1h2")
    fake = certs.make_self_signed_server("impostor", [impostor.address], datetime.datetime.now(datetime.timezone.utc))
    certs.write_public(impostor.dir / "fake.crt", fake.cert_pem)
    certs.write_private(impostor.dir / "fake.key", fake.key_pem)
    impostor.vsctl("set-ssl", str(impostor.dir / "fake.key"), str(impostor.dir / "fake.crt"),
                   str(impostor.dir / "sdn-controller-ca.pem"))
    daemon.kill()
    daemon.start()

    def refused():
        host = next((h for h in daemon.status().get("hosts", {}).values() if h["name"] == "p1h2"), None)
        return host and not host["connected"] and host["error"] and "does not match" in host["error"] and host

    wait_for(refused, what="p1h2 refused for its certificate")
    assert "p1h2" in daemon.log_text() and "does not match" in daemon.log_text()


def test_xapi_restart_is_followed_by_resync(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=3)
    daemon = make_daemon(lab)
    net_id = create_network(lab, topology="mesh")
    names = ["p1h1", "p1h2", "p1h3"]
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, names, "mesh", None)), what="mesh")
    resyncs = wait_for(lambda: daemon.status().get("pools", [{}])[0].get("resyncs"), what="status")
    lab.xapi_restart("pool1")
    lab.host_eject("p1h3")
    wait_for(lambda: daemon.status()["pools"][0]["resyncs"] > resyncs, what="a resync")
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, names[:2], "mesh", None)), what="after resync")


def test_xen_orchestra_network_is_adopted_without_recreation(make_lab, make_daemon):
    import uuid

    lab = make_lab(pools=1, hosts=3)
    session = xapi(lab)
    api = session.xenapi
    private_id = str(uuid.uuid4())
    center = api.host.get_uuid(api.host.get_by_name_label("p1h3")[0])
    network = api.network.create({"name_label": "xo-net", "name_description": "made by XO", "MTU": "1456",
                                  "other_config": {"automatic": "false",
                                                   "xo:sdn-controller:private-network-uuid": private_id,
                                                   "xo:sdn-controller:encapsulation": "vxlan",
                                                   "xo:sdn-controller:encrypted": "false",
                                                   "xo:sdn-controller:vni": "4242",
                                                   "xo:sdn-controller:preferred-center": center}, "tags": []})
    for host in api.host.get_all():
        api.tunnel.create(_pif(session, api.host.get_name_label(host), "eth0"), network, "vxlan")
    networks_before = sorted(api.network.get_all())
    make_daemon(lab)
    names = ["p1h1", "p1h2", "p1h3"]
    wait_for(lambda: converged(lab, expected_ports(lab, private_id, names, "star", "p1h3")), what="adopted star")
    row = next(iter(tunnel_ports(lab, "p1h1").values()))
    assert (row["type"], row["options"]["key"]) == ("vxlan", "4242")
    assert sorted(api.network.get_all()) == networks_before
    assert api.network.get_other_config(network)["xo:sdn-controller:vni"] == "4242"
    session.xenapi.session.logout()


@pytest.mark.parametrize("key,value,message", [
    ("sdnctl:vni", "abc", "is not an integer"),
    ("sdnctl:vni", "99999999999", "out of range"),
    ("sdnctl:encapsulation", "geneve", "is not one of"),
], ids=["vni-not-int", "vni-range", "encapsulation"])
def test_malformed_network_is_reported_and_others_converge(make_lab, make_daemon, key, value, message):
    lab = make_lab(pools=1, hosts=2)
    daemon = make_daemon(lab)
    good = create_network(lab, "good", topology="mesh")
    bad = create_network(lab, "bad", topology="mesh")
    names = ["p1h1", "p1h2"]
    both = {n: {**expected_ports(lab, good, names, "mesh", None)[n], **expected_ports(lab, bad, names, "mesh", None)[n]}
            for n in names}
    wait_for(lambda: converged(lab, both), what="both networks")
    session = xapi(lab)
    ref = session.xenapi.network.get_by_name_label("bad")[0]
    session.xenapi.network.remove_from_other_config(ref, key)
    session.xenapi.network.add_to_other_config(ref, key, value)
    session.xenapi.session.logout()

    def reported():
        net = next((n for n in daemon.status().get("networks", []) if n["id"] == bad), None)
        return net and net["error"] and message in net["error"] and net

    wait_for(reported, what="error in status")
    result = run_cli("status", config=lab.config_path, check=False)
    assert message in result.stdout
    # The malformed network keeps its ports (no destruction over a typo); a new host still joins the good one.
    lab.host_join("pool1")
    grown = expected_ports(lab, good, names + ["p1h3"], "mesh", None)
    for name in names:
        grown[name].update(expected_ports(lab, bad, names, "mesh", None)[name])
    wait_for(lambda: converged(lab, grown), what="good network grows, bad one frozen")


def test_plan_shows_pending_changes_and_changes_nothing(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=2)
    daemon = make_daemon(lab)
    net_id = create_network(lab, topology="mesh")
    expected = expected_ports(lab, net_id, ["p1h1", "p1h2"], "mesh", None)
    wait_for(lambda: converged(lab, expected), what="mesh")
    wait_for(lambda: len(hosts := daemon.status().get("hosts", {})) == 2 and all(
        h["openflow_synced"] for h in hosts.values()), what="every host's flows synced")
    assert "0 change(s) pending" in run_cli("plan", config=lab.config_path).stdout
    daemon.kill()
    port = next(iter(expected["p1h1"]))
    lab.host("p1h1").vsctl("del-port", port)
    pending = run_cli("plan", config=lab.config_path, check=False)
    assert pending.returncode == 2, pending.stderr     # changes pending, like terraform's -detailed-exitcode
    # The port itself, and the admission flow of its old ofport, which went with it.
    assert f"p1h1: + {port} gre" in pending.stdout and "2 change(s) pending" in pending.stdout, pending.stdout
    assert "p1h1: - flow" in pending.stdout and "priority 10 in_port=" in pending.stdout, pending.stdout
    assert port not in tunnel_ports(lab, "p1h1")


def test_transport_pif_without_ip_makes_its_host_ineligible_until_it_has_one(eth1_mesh):
    lab, daemon, names, net_id = eth1_mesh
    session = xapi(lab)
    try:
        session.xenapi.PIF.reconfigure_ip(_pif(session, "p1h3", "eth1"), "None", "", "", "", "")
    finally:
        session.xenapi.session.logout()
    wait_for(lambda: converged(lab, {**expected_ports(lab, net_id, names[:2], "mesh", None, "eth1"), "p1h3": {}}),
             what="the host without an IP left the mesh")

    def reported():
        network = next((n for n in daemon.status().get("networks", []) if n["id"] == net_id), None)
        host = network and next(h for h in network["hosts"] if h["name"] == "p1h3")
        return host and not host["eligible"] and host["transport_ip"] is None

    wait_for(reported, what="status shows p1h3 ineligible")
    assert "INELIGIBLE (no IP on its transport PIF)" in run_cli("status", config=lab.config_path, check=False).stdout

    # Created now, net2 gets p1h3's tunnel anyway (XAPI: TRANSPORT_PIF_NOT_CONFIGURED, access PIF left unplugged).
    created = run_cli("network", "create", "--name", "net2", "--pool", "pool1", "--pif-device", "eth1",
                      "--topology", "mesh", config=lab.config_path)
    assert "p1h3: eth1 has no IP" in created.stdout and "daemon plugs the tunnel" in created.stdout
    assert "recreate" not in created.stdout
    net2 = network_id(lab, "net2")

    def both(hosts):
        first, second = (expected_ports(lab, n, hosts, "mesh", None, "eth1") for n in (net_id, net2))
        return {name: first[name] | second[name] for name in hosts}

    wait_for(lambda: converged(lab, {**both(names[:2]), "p1h3": {}}), what="net2 without p1h3")
    session = xapi(lab)
    try:
        api = session.xenapi
        api.PIF.reconfigure_ip(_pif(session, "p1h3", "eth1"), "Static", "198.18.1.3", "255.255.0.0", "", "")
        wait_for(lambda: converged(lab, both(names)), what="p1h3 back in both networks once its PIF has an IP")
        access = [ref for ref in api.network.get_PIFs(api.network.get_by_name_label("net2")[0])
                  if api.PIF.get_host(ref) == api.host.get_by_name_label("p1h3")[0]]
        assert [api.PIF.get_currently_attached(ref) for ref in access] == [True]
        assert "plugged the tunnel access PIF of host p1h3" in daemon.log_text()   # the daemon did, not XAPI
    finally:
        session.xenapi.session.logout()


def test_a_host_refusing_the_transaction_is_retried_while_others_converge(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=3)
    daemon = make_daemon(lab)
    names = ["p1h1", "p1h2", "p1h3"]
    hosts = hosts_by_name(lab)
    session = xapi(lab)
    try:  # a network object first, so the squatter can sit on its bridge before sdnctl gets there
        network = session.xenapi.network.create({"name_label": "pre", "name_description": "", "MTU": "1456",
                                                 "other_config": {}, "tags": []})
        bridge = session.xenapi.network.get_bridge(network)
    finally:
        session.xenapi.session.logout()
    import uuid as uuidlib
    net_id = str(uuidlib.uuid4())
    squatter = tunnel_port_name(net_id, hosts["p1h1"]["uuid"])
    lab.host("p1h3").vsctl("add-br", bridge, "--", "add-port", bridge, squatter)  # same name, not sdnctl's
    session = xapi(lab)
    try:
        api = session.xenapi
        api.network.set_other_config(network, {"sdnctl:private-network-uuid": net_id, "sdnctl:encapsulation": "gre",
                                               "sdnctl:vni": "9", "sdnctl:topology": "mesh"})
        for name in names:
            api.tunnel.create(_pif(session, name, "eth0"), network, "gre")
    finally:
        session.xenapi.session.logout()
    expected = expected_ports(lab, net_id, names, "mesh", None)
    wait_for(lambda: converged(lab, {n: expected[n] for n in ("p1h1", "p1h2")} | {"p1h3": {}}),
             what="the other hosts converge")

    def refused():
        host = next((h for h in daemon.status().get("hosts", {}).values() if h["name"] == "p1h3"), None)
        return host and host["error"] and "transaction" in host["error"]

    wait_for(refused, what="p1h3's refusal in status")
    lab.host("p1h3").vsctl("del-port", squatter)
    wait_for(lambda: converged(lab, expected), timeout=30, what="p1h3 converges after the conflict is gone")


def test_restart_with_a_pool_unreachable_changes_nothing_until_it_answers(make_lab, make_daemon):
    lab = make_lab(pools=2, hosts=2)
    daemon = make_daemon(lab)
    names = ["p1h1", "p1h2", "p2h1", "p2h2"]
    net_id = create_network(lab, pools=("pool1", "pool2"), topology="star", center="p2h1")
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, names, "star", "p2h1")), what="cross-pool star")
    before = interface_uuids(lab, names)
    daemon.kill()
    (daemon.state_dir / "status.json").unlink(missing_ok=True)
    lab.pools["pool2"].sim.stop()  # pool2's XAPI (and so the center's pool) is unreachable
    daemon.start()

    def pool1_handled():
        status = daemon.status()
        hosts = [h for h in status.get("hosts", {}).values() if h["name"].startswith("p1")]
        pools = {p["name"]: p["synced"] for p in status.get("pools", [])}
        return pools == {"pool1": True, "pool2": False} and len(hosts) == 2 and all(h["connected"] for h in hosts)

    wait_for(pool1_handled, what="pool1 reconciled while pool2 is away")
    assert interface_uuids(lab, names) == before  # no second center, nothing torn down
    lab.pools["pool2"].sim.start()
    wait_for(lambda: all(p["synced"] for p in daemon.status().get("pools", [])), what="pool2 back")
    wait_for(lambda: converged(lab, expected_ports(lab, net_id, names, "star", "p2h1")), what="still the same star")
    assert interface_uuids(lab, names) == before
