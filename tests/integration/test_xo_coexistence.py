"""Coexistence with Xen Orchestra's SDN controller, both ways, in the exact formats XO writes.

XO's formats are taken from its source (xo-server-sdn-controller): network other_config from
`_createPrivateNetwork` (index.js), OVS ports from `addInterfaceAndPort` (protocol/ovsdb-client.js).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess

import pytest

from tests.integration.conftest import run_cli, xapi_call
from tests.integration.test_dataplane import boot_guest, ping
from tests.waiting import wait_for

XO = "xo:sdn-controller:"


def test_export_xo_writes_xos_keys_and_moves_the_rules(make_lab):
    lab = make_lab(pools=1, hosts=2)
    run_cli("network", "create", "--name", "net1", "--pool", "pool1", "--pif-device", "eth0", "--vni", "7",
            "--preferred-center", "p1h2", config=lab.config_path)
    run_cli("rule", "add", "--network", "net1", "--deny", "--protocol", "tcp", "--port", "22", config=lab.config_path)
    ref = xapi_call(lab, "network.get_by_name_label", "net1")[0]
    before = xapi_call(lab, "network.get_other_config", ref)
    host = next(h for h in xapi_call(lab, "host.get_all_records").values() if h["name_label"] == "p1h2")

    preview = run_cli("network", "export-xo", "net1", "--dry-run", config=lab.config_path).stdout
    assert "would write" in preview
    assert xapi_call(lab, "network.get_other_config", ref) == before

    run_cli("network", "export-xo", "net1", config=lab.config_path)
    after = xapi_call(lab, "network.get_other_config", ref)
    xo_keys = {k: v for k, v in after.items() if k.startswith(XO) and k != XO + "of-rules"}
    # What XO's _createPrivateNetwork writes for an unencrypted GRE network on eth0 without VLAN.
    assert xo_keys == {XO + "encapsulation": "gre", XO + "pif-device": "eth0",
                       XO + "private-network-uuid": before["sdnctl:private-network-uuid"],
                       XO + "vlan": "-1", XO + "vni": "7", XO + "preferred-center": host["uuid"]}
    rules = [json.loads(r) for r in json.loads(after[XO + "of-rules"])]
    assert rules == [{"allow": False, "protocol": "TCP", "port": 22, "ipRange": "", "direction": "from/to"}]
    assert "sdnctl:of-rules" not in after
    assert after["sdnctl:private-network-uuid"] == before["sdnctl:private-network-uuid"]   # still sdnctl's

    again = run_cli("network", "export-xo", "net1", config=lab.config_path)
    assert xapi_call(lab, "network.get_other_config", ref) == after, again.stdout   # idempotent


def test_export_xo_release_lets_go_and_the_daemon_sweeps_its_ports(make_lab, make_daemon):
    from tests.integration.conftest import tunnel_ports

    lab = make_lab(pools=1, hosts=2)
    make_daemon(lab)
    run_cli("network", "create", "--name", "net1", "--pool", "pool1", "--pif-device", "eth0", config=lab.config_path)
    wait_for(lambda: all(len(tunnel_ports(lab, h)) == 1 for h in ("p1h1", "p1h2")), what="the network built")
    run_cli("network", "export-xo", "net1", "--release", config=lab.config_path)
    wait_for(lambda: all(not tunnel_ports(lab, h) for h in ("p1h1", "p1h2")), what="sdnctl's ports swept")
    ref = xapi_call(lab, "network.get_by_name_label", "net1")[0]
    other_config = xapi_call(lab, "network.get_other_config", ref)
    assert {k for k in other_config if k.startswith("sdnctl:")} == {"sdnctl:managed"}
    assert other_config[XO + "private-network-uuid"] and other_config[XO + "vni"]
    assert "no private networks" in run_cli("network", "list", config=lab.config_path).stdout


def test_export_xo_refuses_a_mesh(make_lab):
    lab = make_lab(pools=1, hosts=2)
    run_cli("network", "create", "--name", "net1", "--pool", "pool1", "--pif-device", "eth0", "--topology", "mesh",
            config=lab.config_path)
    result = run_cli("network", "export-xo", "net1", config=lab.config_path, check=False)
    assert result.returncode != 0 and "builds only stars" in result.stderr


# --- adoption, at the OVS level --------------------------------------------------------------------

def _xo_network(lab, name: str, vni: int, center: str) -> tuple[str, str]:
    """A network as Xen Orchestra's _createPrivateNetwork makes it, with its tunnels: (private uuid, bridge)."""
    import uuid

    private = str(uuid.uuid4())
    host_uuid = xapi_call(lab, "host.get_uuid", xapi_call(lab, "host.get_by_name_label", center)[0])
    ref = xapi_call(lab, "network.create", {
        "name_label": name, "name_description": "made by Xen Orchestra", "MTU": "1450", "tags": [],
        "other_config": {"automatic": "false", XO + "encapsulation": "gre", XO + "pif-device": "eth1",
                         XO + "preferred-center": host_uuid, XO + "private-network-uuid": private,
                         XO + "vlan": "-1", XO + "vni": str(vni)}})
    for host in xapi_call(lab, "host.get_all"):
        pif = next(p for p in xapi_call(lab, "host.get_PIFs", host) if xapi_call(lab, "PIF.get_device", p) == "eth1"
                   and xapi_call(lab, "PIF.get_VLAN", p) == "-1")
        xapi_call(lab, "tunnel.create", pif, ref, "gre")
    return private, xapi_call(lab, "network.get_bridge", ref)


def _xo_tunnels(lab, private: str, bridge: str, vni: int, center: str, spokes: list[str]) -> None:
    """XO's OVS rows, as addInterfaceAndPort and setBridgeController write them (protocol/ovsdb-client.js):
    Interface <bridge>_iface<N>, Port <bridge>_port<N> with XO's other_config, and one `pssl:` Controller
    with OpenFlow11 on every bridge of the host."""
    pairs = [(center, s) for s in spokes] + [(s, center) for s in spokes]
    counters: dict[str, int] = {}
    for local, remote in pairs:
        n = counters[local] = counters.get(local, 0) + 1
        ip = lab.host(remote).pif_ips["eth1"]
        lab.host(local).vsctl(
            "--", "--id=@i", "create", "Interface", f"name={bridge}_iface{n}", "type=gre",
            f"options:remote_ip={ip}", f"options:key={vni}",
            "--", "--id=@p", "create", "Port", f"name={bridge}_port{n}", "interfaces=@i",
            f'other_config:"{XO}private-network-uuid"={private}',
            "--", "add", "Bridge", bridge, "ports", "@p")
    for host in [center, *spokes]:
        bridges = lab.host(host).vsctl("list-br").split()
        args = ["--", "--id=@c", "create", "Controller", 'target="pssl:"']
        for b in bridges:
            args += ["--", "add", "Bridge", b, "controller", "@c", "--", "add", "Bridge", b, "protocols", "OpenFlow11"]
        lab.host(host).vsctl(*args)


def _ports(lab, host: str, bridge: str) -> list[str]:
    return sorted(p for p in lab.host(host).vsctl("list-ports", bridge).split() if not p.startswith("vif"))


@pytest.mark.netns
def test_adoption_replaces_xos_ports_in_one_transaction_per_host_with_a_short_ping_gap(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=3, dataplane=True)
    # XO introduces itself first (SDN_controller.introduce runs emer-reset on the hosts), then builds.
    xapi_call(lab, "SDN_controller.introduce", "pssl", "", "0")
    private, bridge = _xo_network(lab, "xo-net", 4242, center="p1h1")
    spokes = ["p1h2", "p1h3"]
    _xo_tunnels(lab, private, bridge, 4242, "p1h1", spokes)
    ns_a, _ = boot_guest(lab, "xo-net", "p1h2", "192.0.2.2")
    boot_guest(lab, "xo-net", "p1h3", "192.0.2.3")
    wait_for(lambda: ping(ns_a, "192.0.2.3"), timeout=60, what="XO's star carrying pings (standalone, no controller)")
    pinger = subprocess.Popen(["ip", "netns", "exec", ns_a, "ping", "-i", "0.01", "-W", "1", "192.0.2.3"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        daemon = make_daemon(lab)
        hosts = ["p1h1", *spokes]
        wait_for(lambda: all(ports and all(p.startswith("sdn") for p in ports)
                             for ports in (_ports(lab, h, bridge) for h in hosts)), timeout=30,
                 what="XO's ports replaced by sdnctl's")
        wait_for(lambda: ping(ns_a, "192.0.2.3"), what="pings after adoption")
        # The status once it counts every host's replacement (it is written a little after the commits).
        stats = wait_for(lambda: (seen := daemon.status().get("hosts", {})) and sum(
            h["ports_added"] for h in seen.values()) >= 4 and seen, what="the status counting the new ports")
    finally:
        pinger.send_signal(signal.SIGINT)
        out, _ = pinger.communicate(timeout=10)
    sent, received = (int(x) for x in re.search(r"(\d+) packets transmitted, (\d+) received", out).groups())
    # The gap is a measurement (docs/migrating-from-xo.md), not a pass mark: it depends on the machine's load.
    print(f"adoption ping gap: {sent - received} of {sent} pings lost at 10 ms, about {(sent - received) * 10} ms")
    assert received > 0, out
    by_name = {h["name"]: h for h in stats.values()}
    # One transaction per host replaced XO's ports (deleted) with sdnctl's (added): never both, never twice.
    assert {n: (by_name[n]["ports_deleted"], by_name[n]["ports_added"]) for n in hosts} == {
        "p1h1": (2, 2), "p1h2": (1, 1), "p1h3": (1, 1)}
    assert all(by_name[n]["transactions"] == 1 for n in hosts), {n: by_name[n]["transactions"] for n in hosts}
    for host in hosts:
        ours = lab.host(host).vsctl("get", "Bridge", bridge, "controller").strip()
        targets = {lab.host(host).vsctl("get", "Controller", uuid.strip(), "target").strip().strip('"')
                   for uuid in ours.strip("[]").split(",") if uuid.strip()}
        assert "pssl:" not in targets and all(not t.startswith("pssl:6653:") for t in targets), targets
        assert "pssl:" in lab.host(host).vsctl("get", "Controller", lab.host(host).vsctl(
            "get", "Bridge", "xenbr0", "controller").strip().strip("[]"), "target")   # XO's elsewhere: left
    assert all(n["center_name"] == "p1h1" for n in daemon.status()["networks"])


def test_flows_of_xo_6_rules_are_deleted_by_their_cookies_and_the_rules_enforced(make_lab, make_daemon):
    """XO 6's UI adds a rule through the host plugin (flows tagged with the rule's cookie) on a bridge sdnctl
    already controls: sdnctl deletes those flows by their cookie and enforces the rule in its own pipeline.
    (When sdnctl first takes a bridge, OVS flushes its flow table anyway: fail_mode standalone -> secure
    without an active controller, connmgr_set_fail_mode.)"""
    lab = make_lab(pools=1, hosts=2)
    xapi_call(lab, "SDN_controller.introduce", "pssl", "", "0")
    private, bridge = _xo_network(lab, "xo-net", 77, center="p1h1")
    _xo_tunnels(lab, private, bridge, 77, "p1h1", ["p1h2"])
    _, vif = boot_guest(lab, "xo-net", "p1h1", "192.0.2.1")
    mac = xapi_call(lab, "VIF.get_MAC", xapi_call(lab, "VIF.get_by_uuid", vif))
    host = lab.host("p1h1")

    def ofctl(*args: str) -> str:
        return subprocess.run(["ovs-ofctl", "-O", "OpenFlow11", *args], capture_output=True, text=True, check=True,
                              timeout=10).stdout

    def flows() -> list[str]:
        try:
            dump = ofctl("dump-flows", "--no-stats", host.mgmt(bridge))
        except subprocess.CalledProcessError as exc:
            # vswitchd re-creates the bridge's management socket while it reconfigures (controller, fail_mode).
            raise AssertionError(f"ovs-ofctl failed: {exc.stderr.strip()}") from None
        return [line for line in dump.splitlines() if "cookie=" in line]

    make_daemon(lab)
    wait_for(lambda: any("cookie=0x5dc1" in f for f in flows()), what="sdnctl controlling the bridge")
    # What XO 6's host plugin leaves for the rule (ovs-ofctl -O OpenFlow11, cookie 0x1f), and someone else's flow.
    ofctl("add-flow", host.mgmt(bridge), f"cookie=0x1f,priority=40000,icmp,dl_dst={mac},actions=NORMAL")
    ofctl("add-flow", host.mgmt(bridge), "cookie=0x99,priority=5,arp,actions=NORMAL")
    rule = {"allow": False, "protocol": "ICMP", "ipRange": "", "direction": "to", "priority": 40000, "cookie": "0x1f"}
    xapi_call(lab, "VIF.add_to_other_config", xapi_call(lab, "VIF.get_by_uuid", vif), XO + "of-rules",
              json.dumps([json.dumps(rule)]))
    wait_for(lambda: not any("cookie=0x1f," in f for f in flows()), what="XO's flows deleted")
    wait_for(lambda: any("icmp" in f and "drop" in f and "cookie=0x5dc1" in f for f in flows()),
             what="sdnctl enforcing XO's rule")
    assert any("cookie=0x99," in f for f in flows()), flows()   # someone else's flow is left alone
