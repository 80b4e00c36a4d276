"""Traffic rules end to end: CLI -> XAPI -> daemon -> OpenFlow -> the real switch's flow table."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.integration.conftest import run_cli, xapi, xapi_call
from tests.integration.test_private_networks import create_network
from tests.waiting import wait_for

COOKIE = "0x5dc1"


def flows(lab, host_name: str, bridge: str) -> list[str]:
    """sdnctl's flows on a bridge, read back with ovs-ofctl (durations and counters stripped)."""
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", lab.host(host_name).mgmt(bridge)],
                         capture_output=True, text=True, timeout=10).stdout
    return sorted(line.strip() for line in out.splitlines() if f"cookie={COOKIE}" in line)


def all_flows(lab, host_name: str, bridge: str) -> list[str]:
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", lab.host(host_name).mgmt(bridge)],
                         capture_output=True, text=True, timeout=10).stdout
    return [line.strip() for line in out.splitlines() if "cookie=" in line]


def trace(lab, host_name: str, bridge: str, packet: str) -> str:
    host = lab.host(host_name)
    out = subprocess.run(["ovs-appctl", "-t", str(host.dir / "ovs-vswitchd.ctl"), "ofproto/trace", bridge, packet],
                         capture_output=True, text=True, timeout=10)
    return out.stdout + out.stderr


def dropped(trace_text: str) -> bool:
    return "Datapath actions: drop" in trace_text


class Guests:
    """VMs with one VIF each on a network, started on chosen hosts, driven through XAPI."""

    def __init__(self, lab, network: str):
        self.lab, self.network = lab, network
        self.vms: dict[str, str] = {}

    def start(self, name: str, host_name: str, mac: str, ip: str | None = None) -> str:
        session = xapi(self.lab)
        api = session.xenapi
        try:
            vm = self.lab.pools["pool1"].sim.create_vm(name, ip)
            vif = api.VIF.create({"device": "0", "network": api.network.get_by_name_label(self.network)[0], "VM": vm,
                                  "MAC": mac, "other_config": {}, "MTU": "1400"})
            api.VM.start_on(vm, api.host.get_by_name_label(host_name)[0], False, False)
            self.vms[name] = vm
            return api.VIF.get_uuid(vif)
        finally:
            api.session.logout()

    def call(self, method: str, *args):
        return xapi_call(self.lab, method, *args)

    def host_of(self, name: str) -> str:
        return self.call("host.get_name_label", self.call("VM.get_resident_on", self.vms[name]))

    def ofport(self, name: str) -> int:
        host = self.lab.host(self.host_of(name))
        domid = self.call("VM.get_domid", self.vms[name])
        return int(host.vsctl("get", "Interface", f"vif{domid}.0", "ofport").strip())


def bridge_of(lab, network: str) -> str:
    session = xapi(lab)
    try:
        return session.xenapi.network.get_bridge(session.xenapi.network.get_by_name_label(network)[0])
    finally:
        session.xenapi.session.logout()


@pytest.fixture
def rules_lab(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=2)
    daemon = make_daemon(lab)
    create_network(lab, "net", topology="mesh")
    guests = Guests(lab, "net")
    return lab, daemon, guests, bridge_of(lab, "net")


@pytest.mark.parametrize("args,message", [
    (["--protocol", "icmp", "--port", "22"], "port"),
    (["--protocol", "tcp", "--port", "70000"], "65535"),
    (["--protocol", "tcp", "--ip-range", "10.0.0.300/8"], "ipRange"),
    (["--protocol", "gre"], "protocol"),
    (["--protocol", "tcp", "--direction", "sideways"], "direction"),
], ids=["port-without-tcp", "port-range", "bad-cidr", "protocol", "direction"])
def test_invalid_rules_are_refused_and_nothing_changes(make_lab, args, message):
    lab = make_lab(pools=1, hosts=1)
    run_cli("network", "create", "--name", "net", "--pool", "pool1", "--pif-device", "eth0", config=lab.config_path)
    before = run_cli("network", "show", "net", config=lab.config_path).stdout
    result = run_cli("rule", "add", "--network", "net", "--deny", *args, config=lab.config_path, check=False)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert run_cli("network", "show", "net", config=lab.config_path).stdout == before


def test_vif_rule_drops_what_it_denies_and_a_new_mac_does_not_escape(rules_lab):
    lab, daemon, guests, bridge = rules_lab
    vif = guests.start("vm1", "p1h1", "02:00:00:00:00:01")
    guests.start("vm2", "p1h1", "02:00:00:00:00:02")
    run_cli("rule", "add", "--vif", vif, "--deny", "--protocol", "tcp", "--port", "22", "--direction", "from",
            config=lab.config_path)
    wait_for(lambda: any("tp_dst=22" in f and "drop" in f for f in flows(lab, "p1h1", bridge)), what="deny flow")
    port = guests.ofport("vm1")
    base = f"in_port={port},dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,tcp,nw_src=192.0.2.1,nw_dst=192.0.2.2"
    # The network is a mesh, so its bridge runs RSTP: a new VIF port forwards once RSTP sees it is an edge port.
    wait_for(lambda: not dropped(trace(lab, "p1h1", bridge, base + ",tp_dst=80")), what="port 80 forwarded")
    assert dropped(trace(lab, "p1h1", bridge, base + ",tp_dst=22"))
    spoofed = base.replace("dl_src=02:00:00:00:00:01", "dl_src=02:00:00:00:00:99")
    assert dropped(trace(lab, "p1h1", bridge, spoofed + ",tp_dst=22"))
    assert "deny tcp 22" in run_cli("rule", "list", "--vif", vif, config=lab.config_path).stdout
    deleted = run_cli("rule", "delete", "--vif", vif, "--protocol", "tcp", "--port", "22", "--direction", "from",
                      config=lab.config_path).stdout
    assert "deleted: deny tcp 22" in deleted     # the rule as it was, though --deny was not given
    wait_for(lambda: not any("tp_dst=22" in f for f in flows(lab, "p1h1", bridge)), what="deny flow removed")
    assert not dropped(trace(lab, "p1h1", bridge, base + ",tp_dst=22"))


def test_rules_follow_unplug_plug_migration_and_ovs_restart(rules_lab):
    lab, daemon, guests, bridge = rules_lab
    vif = guests.start("vm1", "p1h1", "02:00:00:00:00:01")
    run_cli("rule", "add", "--vif", vif, "--deny", "--protocol", "icmp", config=lab.config_path)

    def has_rule(host):
        return any("icmp" in f and "drop" in f for f in flows(lab, host, bridge))

    def has_port_rule(host):   # the `from` half matches the VIF's port; the `to` half only its MAC
        return any("icmp" in f and "drop" in f and "in_port" in f for f in flows(lab, host, bridge))

    wait_for(lambda: has_port_rule("p1h1"), what="rule on p1h1")
    vif_ref = guests.call("VIF.get_by_uuid", vif)
    guests.call("VIF.unplug", vif_ref)
    # The port's flows go; the `to` flows stay while the VM stays on p1h1, ready for the next plug.
    wait_for(lambda: not has_port_rule("p1h1") and has_rule("p1h1"), what="port rule gone on unplug")
    guests.call("VIF.plug", vif_ref)
    wait_for(lambda: has_port_rule("p1h1"), what="rule back on plug")
    guests.call("VM.pool_migrate", guests.vms["vm1"], guests.call("host.get_by_name_label", "p1h2")[0], {})
    wait_for(lambda: has_rule("p1h2") and not has_rule("p1h1"), what="rule moved with the VM")
    before = flows(lab, "p1h2", bridge)
    lab.host("p1h2").crash()
    lab.host("p1h2").recover()
    wait_for(lambda: flows(lab, "p1h2", bridge) == before, timeout=30, what="flows restored after an OVS restart")


def test_network_rule_applies_to_every_vif_and_foreign_flows_survive_a_restart(rules_lab):
    lab, daemon, guests, bridge = rules_lab
    guests.start("vm1", "p1h1", "02:00:00:00:00:01")
    guests.start("vm2", "p1h2", "02:00:00:00:00:02")
    run_cli("rule", "add", "--network", "net", "--deny", "--protocol", "udp", "--port", "53", config=lab.config_path)
    for host in ("p1h1", "p1h2"):
        wait_for(lambda: any("tp_dst=53" in f for f in flows(lab, host, bridge)), what=f"network rule on {host}")
    foreign = "cookie=0x1234,priority=5,table=0,dl_type=0x88cc,actions=drop"
    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-flow", lab.host("p1h1").mgmt(bridge), foreign], check=True)
    ours = flows(lab, "p1h1", bridge)
    daemon.kill()
    (daemon.state_dir / "status.json").unlink(missing_ok=True)
    daemon.start()

    def settled():
        hosts = daemon.status().get("hosts", {})
        return len(hosts) == 2 and all(h["connected"] and h.get("openflow_synced") for h in hosts.values()) and hosts

    hosts = wait_for(settled, what="restarted daemon re-synced its flows")
    assert all(h["flows_added"] == 0 and h["flows_deleted"] == 0 for h in hosts.values()), hosts
    assert flows(lab, "p1h1", bridge) == ours
    assert any("cookie=0x1234" in f for f in all_flows(lab, "p1h1", bridge))


def test_xen_orchestra_rules_are_read(rules_lab):
    lab, daemon, guests, bridge = rules_lab
    vif = guests.start("vm1", "p1h1", "02:00:00:00:00:01")
    xo_rules = json.dumps([json.dumps({"allow": False, "protocol": "TCP", "port": 3389, "ipRange": "",
                                       "direction": "from/to"})])
    guests.call("VIF.add_to_other_config", guests.call("VIF.get_by_uuid", vif), "xo:sdn-controller:of-rules", xo_rules)
    wait_for(lambda: sum("tp_dst=3389" in f for f in flows(lab, "p1h1", bridge)) == 2, what="XO rule, both directions")


def test_malformed_rules_are_reported_and_other_rules_still_apply(rules_lab):
    lab, daemon, guests, bridge = rules_lab
    bad = guests.start("vm1", "p1h1", "02:00:00:00:00:01")
    good = guests.start("vm2", "p1h1", "02:00:00:00:00:02")
    guests.call("VIF.add_to_other_config", guests.call("VIF.get_by_uuid", bad), "sdnctl:of-rules", "[not json")
    run_cli("rule", "add", "--vif", good, "--deny", "--protocol", "udp", "--port", "161", config=lab.config_path)
    wait_for(lambda: any("tp_dst=161" in f for f in flows(lab, "p1h1", bridge)), what="the good VIF's rule")
    wait_for(lambda: bad in daemon.status().get("rule_errors", {}), what="the bad VIF's error in status")
    result = run_cli("status", config=lab.config_path, check=False)
    assert "rules MALFORMED" in result.stdout
    assert result.returncode == 3 and f"rules malformed on {bad}" in result.stderr
    assert daemon.proc.poll() is None


def test_xo6_rules_with_priority_and_cookie_apply_and_stay_under_xo_key_after_sdnctl_edits(rules_lab):
    lab, daemon, guests, bridge = rules_lab
    vif = guests.start("vm1", "p1h1", "02:00:00:00:00:01")
    xo = json.dumps([json.dumps({"allow": False, "protocol": "TCP", "port": 3389, "ipRange": "",
                                 "direction": "from/to", "priority": 200, "cookie": "0x1f"})])
    ref = guests.call("VIF.get_by_uuid", vif)
    guests.call("VIF.add_to_other_config", ref, "xo:sdn-controller:of-rules", xo)
    wait_for(lambda: sum("tp_dst=3389" in f for f in flows(lab, "p1h1", bridge)) == 2, what="XO 6 rule applied")
    assert daemon.status().get("rule_errors", {}) == {}
    run_cli("rule", "add", "--vif", vif, "--deny", "--protocol", "udp", "--port", "161", config=lab.config_path)
    other_config = guests.call("VIF.get_other_config", ref)
    assert "sdnctl:of-rules" not in other_config
    kept = [json.loads(r) for r in json.loads(other_config["xo:sdn-controller:of-rules"])]
    assert kept[0] == {"allow": False, "protocol": "TCP", "port": 3389, "ipRange": "", "direction": "from/to",
                       "priority": 200, "cookie": "0x1f"}
    assert kept[1]["port"] == 161
    wait_for(lambda: any("tp_dst=161" in f for f in flows(lab, "p1h1", bridge)), what="the rule sdnctl added")


def test_inventory_shows_each_vif_with_its_port_mac_and_rules_in_force(rules_lab):
    lab, daemon, guests, bridge = rules_lab
    web = guests.start("web1", "p1h1", "02:00:00:00:00:11")
    guests.start("db1", "p1h2", "02:00:00:00:00:12")
    run_cli("rule", "add", "--vif", web, "--deny", "--protocol", "tcp", "--port", "22", config=lab.config_path)
    run_cli("rule", "add", "--network", "net", "--deny", "--protocol", "udp", "--port", "161", config=lab.config_path)

    def listed():
        rows = json.loads(run_cli("inventory", "--json", config=lab.config_path).stdout)
        web_row = next((r for r in rows if r["vm"] == "web1"), None)
        return len(rows) == 2 and web_row and web_row["vif_rules"] and web_row["network_rules"] and rows

    rows = wait_for(listed, what="both VIFs in the inventory with their rules")
    web_row = next(r for r in rows if r["vm"] == "web1")
    assert (web_row["network"], web_row["host"], web_row["vif"], web_row["mac"], web_row["ofport"]) == \
        ("net", "p1h1", web, "02:00:00:00:00:11", guests.ofport("web1"))
    assert web_row["vif_rules"] == ["deny tcp 22 to/from anywhere (both ways)"]
    assert web_row["network_rules"] == ["deny udp 161 to/from anywhere (both ways)"]
    assert web_row["rule_error"] is None and isinstance(web_row["ofport"], int)

    text = run_cli("inventory", "--vm", "web1", config=lab.config_path).stdout
    assert "network net (" in text and "HOST" in text and web in text and "db1" not in text
    assert "deny tcp 22" in text and "deny udp 161 to/from anywhere (both ways) [network]" in text
    assert "db1" in run_cli("inventory", "--host", "p1h2", config=lab.config_path).stdout
    wrong = run_cli("inventory", "--vm", "web", config=lab.config_path, check=False)
    assert wrong.returncode == 1 and "did you mean 'web1'?" in wrong.stderr
