"""Real packets: VMs on three hosts of two pools ping over the tunnels the controller built."""

from __future__ import annotations

import itertools
import subprocess
import time

import pytest

from tests.integration.conftest import run_cli, xapi
from tests.waiting import wait_for

pytestmark = pytest.mark.netns

GUESTS = {"p1h1": "192.0.2.11", "p1h2": "192.0.2.12", "p2h1": "192.0.2.21"}


def ping(vm_ns: str, address: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", vm_ns, "ping", "-c1", "-W1", address],
                          capture_output=True).returncode == 0


def boot_guest(lab, network_name: str, host_name: str, ip: str) -> tuple[str, str]:
    """A VM with one VIF on the network, started on the host: (its namespace, its VIF uuid)."""
    pool = "pool" + host_name[1]
    session = xapi(lab, pool)
    api = session.xenapi
    try:
        vm = lab.pools[pool].sim.create_vm(f"vm-{host_name}", f"{ip}/24")
        vif = api.VIF.create({"device": "0", "network": api.network.get_by_name_label(network_name)[0], "VM": vm,
                              "other_config": {}, "MTU": "1400",
                              "MAC": "02:00:00:00:%02x:%02x" % (int(host_name[1]), int(host_name[3]))})
        api.VM.start_on(vm, api.host.get_by_name_label(host_name)[0], False, False)
        return lab.host(host_name).vm_netns(api.VM.get_uuid(vm)), api.VIF.get_uuid(vif)
    finally:
        api.session.logout()


def start_guests(lab, network_name: str) -> dict[str, str]:
    """One VM per host in GUESTS, on the private network; host name -> the VM's namespace."""
    return {host_name: boot_guest(lab, network_name, host_name, ip)[0] for host_name, ip in GUESTS.items()}


def all_ping(namespaces: dict[str, str]) -> bool:
    return all(ping(namespaces[a], GUESTS[b]) for a, b in itertools.permutations(namespaces, 2))


@pytest.mark.parametrize("encapsulation", ["gre", "vxlan"])
def test_guests_ping_across_pools_and_survive_center_crash_and_eject(make_lab, make_daemon, encapsulation):
    lab = make_lab(pools=2, hosts=2, dataplane=True)
    make_daemon(lab)
    run_cli("network", "create", "--name", "dp", "--pool", "pool1", "--pool", "pool2", "--pif-device", "eth1",
            "--encapsulation", encapsulation, "--topology", "star", "--preferred-center", "p2h2",
            config=lab.config_path)
    vms = start_guests(lab, "dp")
    wait_for(lambda: all_ping(vms), timeout=30, what="every guest pings every other")
    lab.host_crash("p2h2")  # the star's center, which hosts no guest
    wait_for(lambda: all_ping(vms), timeout=30, what="pings after the center crashed")
    lab.host_eject("p1h2")
    del vms["p1h2"]
    wait_for(lambda: all_ping(vms), timeout=30, what="pings after an eject")


def nc_connects(vm_ns: str, address: str, port: int) -> bool:
    return subprocess.run(["ip", "netns", "exec", vm_ns, "nc", "-z", "-w", "1", address, str(port)],
                          capture_output=True).returncode == 0


def test_rules_stop_and_restore_real_traffic(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=2, dataplane=True)
    make_daemon(lab)
    run_cli("network", "create", "--name", "dp", "--pool", "pool1", "--pif-device", "eth1", "--topology", "mesh",
            config=lab.config_path)
    vms, vifs = {}, {}
    for index, host_name in ((1, "p1h1"), (2, "p1h2")):
        vms[index], vifs[index] = boot_guest(lab, "dp", host_name, f"192.0.2.{index}")
    wait_for(lambda: ping(vms[1], "192.0.2.2"), timeout=30, what="ping before any rule")
    run_cli("rule", "add", "--vif", vifs[2], "--deny", "--protocol", "icmp", config=lab.config_path)
    wait_for(lambda: not ping(vms[1], "192.0.2.2"), what="deny icmp stops ping")
    run_cli("rule", "delete", "--vif", vifs[2], "--protocol", "icmp", config=lab.config_path)
    wait_for(lambda: ping(vms[1], "192.0.2.2"), what="ping restored")

    server = subprocess.Popen(["ip", "netns", "exec", vms[2], "nc", "-l", "-k", "22"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: nc_connects(vms[1], "192.0.2.2", 22), what="nc to port 22 before rules")
        run_cli("rule", "add", "--vif", vifs[2], "--allow", "--protocol", "tcp", "--port", "22", "--direction", "to",
                config=lab.config_path)
        run_cli("rule", "add", "--vif", vifs[2], "--deny", "--protocol", "ip", "--direction", "to",
                config=lab.config_path)
        wait_for(lambda: not ping(vms[1], "192.0.2.2"), what="deny ip stops ping")
        assert nc_connects(vms[1], "192.0.2.2", 22)
    finally:
        server.kill()
        server.wait(timeout=5)


def _vif_tx(lab, host: str, bridge: str) -> int:
    """Packets the bridge sent to the host's VM (its vif port)."""
    vif = next(p for p in lab.host(host).vsctl("list-ports", bridge).split() if p.startswith("vif"))
    return int(lab.host(host).vsctl("get", "Interface", vif, "statistics:tx_packets").strip())


def test_a_four_host_mesh_has_split_horizon_no_rstp_and_a_vif_forwards_at_once(make_lab, make_daemon):
    lab = make_lab(pools=1, hosts=4, dataplane=True)
    make_daemon(lab)
    run_cli("network", "create", "--name", "mesh", "--pool", "pool1", "--pif-device", "eth1", "--topology", "mesh",
            config=lab.config_path)
    hosts = [f"p1h{i}" for i in (1, 2, 3, 4)]
    vms = {i: boot_guest(lab, "mesh", f"p1h{i}", f"192.0.2.{i}")[0] for i in (1, 2, 3)}
    session = xapi(lab)
    try:
        bridge = session.xenapi.network.get_bridge(session.xenapi.network.get_by_name_label("mesh")[0])
    finally:
        session.xenapi.session.logout()

    def split_horizon(name: str) -> bool:
        host = lab.host(name)
        tunnels = [p for p in host.vsctl("list-ports", bridge).split() if p.startswith("sdn")]
        return (len(tunnels) == 3 and host.vsctl("get", "Bridge", bridge, "rstp_enable").strip() == "false"
                and all(host.vsctl("get", "Port", t, "protected").strip() == "true" for t in tunnels))

    for name in hosts:
        wait_for(lambda: split_horizon(name), what=f"protected tunnels and no RSTP on {name}")
    # Every pair reaches the other over their own tunnel: a frame never transits a third host,
    # since no host forwards from one tunnel to another.
    wait_for(lambda: all(ping(vms[a], f"192.0.2.{b}") for a, b in itertools.permutations(vms, 2)),
             timeout=20, what="all pairs ping across the mesh")
    # No storm: with the pings over, the VMs' ports go quiet (a loop would keep a broadcast circling).
    ping(vms[1], "192.0.2.255")
    before = {i: _vif_tx(lab, f"p1h{i}", bridge) for i in vms}
    wait_for(lambda: all(_vif_tx(lab, f"p1h{i}", bridge) - before[i] < 20 for i in vms), what="quiet ports")
    # A VIF plugged now forwards at once: no RSTP learning delay (about 3 s before split horizon).
    plugged = time.monotonic()
    fourth, _ = boot_guest(lab, "mesh", "p1h4", "192.0.2.4")
    wait_for(lambda: ping(fourth, "192.0.2.1"), timeout=20, what="the new VM pinging")
    first_ping = time.monotonic() - plugged
    print(f"VM start (with the lab's 1 s domain build) to first ping: {first_ping:.2f} s")
    assert first_ping < 2.9, "the new VIF waited as long as RSTP's forwarding delay"
